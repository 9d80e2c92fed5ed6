"""`sealcam access` (host_tools/catalogue/access_cli.py) through its argparse parser on a
real archive (SQLite), users bound to the OS account running the tests: request, approve,
refuse, show, list, register as a table, JSON and a PDF; exit codes and one-line
refusals."""
import argparse
import json

import pytest

from test_access_common import CASE
from test_clerk_common import A, B, real_archive
from host_tools.catalogue import access, access_cli, cases, users
from host_tools.catalogue.store import Catalogue


@pytest.fixture
def world(tmp_path, tmp_path_factory, monkeypatch, capsys):
    monkeypatch.delenv("SEALCAM_PASSWORD", raising=False)
    monkeypatch.delenv("SEALCAM_USER", raising=False)
    arch, f = real_archive(tmp_path, tmp_path_factory)
    me = users.os_login()
    with Catalogue(arch) as cat:
        root = users.bootstrap_user(cat)
        cat.act(root, users.add_event("wang.head", "archive_head", os_account=me))
        head = users.User("wang.head", "archive_head", how="os")
        for name, role, unit in (("li.na", "clerk", None), ("wu.head", "archive_head", None),
                                 ("zhao.lead", "unit_leader", "U-1"),
                                 ("qian.lead", "unit_leader", "U-2")):
            cat.act(head, users.add_event(name, role, os_account=me, unit=unit))
        clerk = users.User("li.na", "clerk", how="os")
        cat.act(clerk, cases.opened_event(CASE, "现场检查 五一路", unit="U-1"))
        cat.act(clerk, cases.linked_event(CASE, device=A, segment=f["a1"]))
    p = argparse.ArgumentParser(prog="sealcam")
    sub = p.add_subparsers(dest="verb")
    access_cli.add_parsers(sub, argparse.HelpFormatter)

    def run(*argv, user="li.na", json_out=False):
        extra = ["--archive", str(arch)] + (["--user", user] if user else []) + (
            ["--json"] if json_out else [])
        args = p.parse_args(["access"] + [str(a) for a in argv] + extra)
        code = args.func(args)
        out = capsys.readouterr()
        return code, out.out, out.err
    return run, f, arch, tmp_path


def test_r15_access_verbs_end_to_end(world):
    run, f, arch, tmp = world
    rec = "%s:%d" % (A, f["a1"])
    code, out, err = run("request", "--case", CASE, "--recording", rec, "--purpose",
                         "行政复议 review", "--action", "view,copy", json_out=True)
    assert code == 0, err
    st = json.loads(out)
    rid = st["id"]
    assert st["state"] == "requested" and st["missing"] == ["archive_head", "unit_leader"]
    assert st["recordings"] == [{"device": A, "segment": f["a1"]}]
    # the wrong unit's leader: refused by the rules (exit 5), one line
    code, out, err = run("approve", rid, user="qian.lead")
    assert code == 5 and "leads unit U-2, not U-1" in err and err.count("\n") == 1
    code, out, err = run("approve", rid, user="li.na")
    assert code == 5 and "may not do this" in err
    code, out, err = run("approve", rid, user="wu.head")
    assert code == 0 and "still needs: unit_leader" in out
    code, out, err = run("approve", rid, "--reason", "ok", user="zhao.lead")
    assert code == 0 and "it is approved" in out
    code, out, err = run("show", rid)
    assert code == 0 and "approved by zhao.lead (unit_leader)" in out and rec in out
    code, out, err = run("list", "--state", "approved", json_out=True)
    assert [r["id"] for r in json.loads(out)["requests"]] == [rid]
    # a use (as the copies module records it), then the register
    with Catalogue(arch) as cat:
        clerk = users.User("li.na", "clerk", how="os")
        access.authorize(cat, clerk, rid, "view", A, f["a1"])
        access.record_use(cat, clerk, rid, "view", device=A, segment=f["a1"])
    code, out, err = run("register")
    assert code == 0 and rid in out and "wu.head (archive_head)" in out and "1 accesses" in out
    code, out, err = run("register", "--from", "2000-01-01", "--to", "2000-01-02",
                         json_out=True)
    assert code == 0 and json.loads(out)["accesses"] == []
    pdf = tmp / "reg.pdf"
    code, out, err = run("register", "--pdf", pdf)
    assert code == 0 and str(pdf) in out and pdf.read_bytes().startswith(b"%PDF-")
    code, out, err = run("register", "--pdf", pdf)
    assert code == 3 and "exists already" in err
    # refusal ends a request; a refusal needs a reason (argparse: usage, exit 2)
    code, out, err = run("request", "--case", CASE, "--whole-case", "--purpose", "x",
                         "--action", "print", "--agency", "某某法院", json_out=True)
    rid2 = json.loads(out)["id"]
    assert rid2 != rid and json.loads(out)["agency"] == "某某法院"
    code, out, err = run("refuse", rid2, "--reason", "no grounds", user="wang.head")
    assert code == 0 and "refused by wang.head" in out
    code, out, err = run("approve", rid2, user="zhao.lead")
    assert code == 5 and "refused" in err


def test_access_verbs_refuse_bad_arguments(world, monkeypatch):
    run, f, arch, tmp = world
    code, out, err = run("request", "--case", CASE, "--recording", "nonsense", "--purpose",
                         "x", "--action", "view")
    assert code == 3 and "DEVICE/SEGMENT" in err
    code, out, err = run("request", "--case", "FZ-404", "--whole-case", "--purpose", "x",
                         "--action", "view")
    assert code == 3 and "no case FZ-404" in err
    code, out, err = run("request", "--case", CASE, "--recording", "%s:%d" % (B, f["b1"]),
                         "--purpose", "x", "--action", "view")
    assert code == 3 and "no recording filed in case" in err
    code, out, err = run("request", "--case", CASE, "--whole-case", "--purpose", "x",
                         "--action", "view,burn")
    assert code == 3 and "actions" in err
    code, out, err = run("show", "AR-1999-0001\x1b[2J")
    assert code == 3 and "\x1b" not in err and "no access request" in err
    code, out, err = run("register", "--from", "last week")
    assert code == 3 and "not a day" in err
    monkeypatch.setenv("SEALCAM_PASSWORD", "not a password")
    code, out, err = run("request", "--case", CASE, "--whole-case", "--purpose", "x",
                         "--action", "view", user="nobody")
    assert code == 5 and "could not be signed in" in err


def test_access_register_needs_a_signed_in_user_and_shows_its_part(world):
    """#03b: show, list and register sign in like the other verbs and show what the user
    may see; #17: revoke."""
    run, f, arch, tmp = world
    code, out, err = run("request", "--case", CASE, "--whole-case", "--purpose", "庭审",
                         "--action", "view", json_out=True)
    rid = json.loads(out)["id"]
    for argv in (("show", rid), ("list",), ("register",)):
        code, out, err = run(*argv, user=None)
        assert code == 5 and "--user" in err and err.count("\n") == 1 and not out, argv
    code, out, err = run("list", user="qian.lead", json_out=True)      # another unit's
    assert code == 0 and json.loads(out)["requests"] == []
    code, out, err = run("show", rid, user="qian.lead")
    assert code == 3 and "no access request %s" % rid in err
    for who in ("li.na", "zhao.lead", "wang.head"):
        code, out, err = run("list", user=who, json_out=True)
        assert [r["id"] for r in json.loads(out)["requests"]] == [rid], who
    code, out, err = run("approve", rid, user="wu.head")
    code, out, err = run("approve", rid, user="zhao.lead")
    assert code == 0 and "it is approved" in out
    code, out, err = run("revoke", rid, "--reason", "hearing cancelled", user="qian.lead")
    assert code == 5 and "neither approved" in err
    code, out, err = run("revoke", rid, "--reason", "hearing cancelled", user="zhao.lead")
    assert code == 0 and "revoked by zhao.lead" in out
    code, out, err = run("show", rid)
    assert code == 0 and "revoked by zhao.lead" in out and "hearing cancelled" in out
    code, out, err = run("list", "--state", "revoked", json_out=True)
    assert [r["id"] for r in json.loads(out)["requests"]] == [rid]
