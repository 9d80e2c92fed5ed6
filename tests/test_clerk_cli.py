"""The filing verbs (host_tools/catalogue/filing_cli.py): tag, tag-history, number,
number-show, number-due, case, doc, run through their argparse parsers on a real archive
(SQLite) with users bound to the OS account running the tests: exit codes, one-line
refusals, JSON output, and the terminal never given a control character."""
import argparse
import json
import struct
import zlib

import pytest

from test_clerk_common import A, B, real_archive
from host_tools.catalogue import filing_cli, users
from host_tools.catalogue.store import Catalogue


@pytest.fixture
def world(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.delenv("SEALCAM_PASSWORD", raising=False)
    arch, f = real_archive(tmp_path, tmp_path_factory)
    with Catalogue(arch) as cat:
        root = users.bootstrap_user(cat)
        cat.act(root, users.add_event("li.na", "clerk", os_account=users.os_login()))
    p = argparse.ArgumentParser(prog="sealcam")
    sub = p.add_subparsers(dest="verb")
    filing_cli.add_parsers(sub, argparse.HelpFormatter)

    def run(*argv, user="li.na", json_out=False):
        extra = ["--archive", str(arch)] + (["--user", user] if user else []) + (
            ["--json"] if json_out else [])
        args = p.parse_args([str(a) for a in argv] + extra)
        return args.func(args)
    return run, f, tmp_path


def _png(path):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0,
                                                                      0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 72)) + chunk(b"IEND", b""))
    return path


def test_filing_verbs_end_to_end(world, capsys):
    run, f, tmp = world
    a1, a2, b1 = "%s/%d" % (A, f["a1"]), "%s/%d" % (A, f["a2"]), "%s/%d" % (B, f["b1"])
    assert run("tag", a1, "--party", "张三", "--event-type", "inspection",
               "--item-class", "约谈类") == 0
    assert run("tag", a1, "--party", "李四") == 3
    assert "a correction needs a reason" in capsys.readouterr().err
    assert run("tag", a1, "--party", "李四", "--reason", "typo") == 0
    assert run("tag", b1, "--party", "李四") == 0
    capsys.readouterr()
    assert run("tag-history", a1, user=None, json_out=True) == 0
    h = json.loads(capsys.readouterr().out)["history"]
    assert [(r["field"], r["value"], r["current"]) for r in h] == [
        ("party", "张三", False), ("event_type", "inspection", True),
        ("item_class", "interview", True), ("party", "李四", True)]
    assert run("number-due", user=None, json_out=True) == 0
    due = {(r["device"], r["segment"]) for r in json.loads(capsys.readouterr().out)[
        "unnumbered"]}
    assert due == {(A, f["a1"]), (A, f["a2"]), (B, f["b1"])}      # rtc of 2023: long due
    assert run("number", a1, a2, b1 + ":0-50", "--party", "李四", "--step", "检查",
               json_out=True) == 0
    num = json.loads(capsys.readouterr().out)
    assert num["number"] == "AGENCY-20231115-李四-检查-0001" and len(num["items"]) == 3
    assert run("number-show", num["number"], user=None) == 0
    assert "SC-00CLK0B2/2 0-50 ms" in capsys.readouterr().out
    assert run("case", "open", "FZ-1", "--title", "五一路\x1b[2J") == 3
    assert "control character" in capsys.readouterr().err
    assert run("case", "open", "FZ-1", "--title", "五一路") == 0
    assert run("case", "link", "FZ-1", a1) == 0
    assert run("case", "link", "FZ-1", b1, "--role", "angle") == 0
    scan = _png(tmp / "说明.png")
    assert run("doc", "add", scan, "--kind", "explanation", "--device", A,
               "--interruption", f["int_fault"], "--case", "FZ-1") == 0
    fake = tmp / "fake.pdf"
    fake.write_bytes(b"MZ" + b"\x00" * 200)
    assert run("doc", "add", fake, "--kind", "other") == 3
    assert "not a whole PDF, JPEG or PNG" in capsys.readouterr().err
    assert run("doc", "explanations", A, f["int_fault"], user=None) == 0
    assert "说明.png li.na" in capsys.readouterr().out
    assert run("case", "close", "FZ-1", "--reason", "决定已送达") == 0
    assert run("case", "archive", "FZ-1", "--year", "2020") == 3
    assert "archived at the end of" in capsys.readouterr().err
    assert run("case", "show", "FZ-1", user=None, json_out=True) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["state"] == "closed" and s["numbers"] == [num["number"]]
    assert [(r["device"], r["role"]) for r in s["recordings"]] == [(A, "primary"),
                                                                   (B, "angle")]
    assert [h["what"] for h in s["history"]] == ["opened", "linked", "linked", "linked",
                                                 "closed"]
    assert run("case", "show", "FZ-1", user=None) == 0
    out = capsys.readouterr().out
    assert "case FZ-1 (closed): 五一路" in out and "决定已送达" in out
    assert run("case", "incident", a1, user=None) == 0
    assert "SC-00CLK0B2/2 OFC-0002 case FZ-1; same time and party" in capsys.readouterr().out


def test_filing_verbs_refuse_bad_arguments(world, capsys, monkeypatch):
    run, f, tmp = world
    with pytest.raises(SystemExit):
        run("tag", "%s#%d" % (A, f["a1"]), "--party", "x")     # not DEVICE/SEGMENT
    assert "is not DEVICE/SEGMENT" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("case", "link", "FZ-1", "%s/%d" % (A, f["a1"]), "--document", "ab" * 32)
    monkeypatch.setenv("SEALCAM_PASSWORD", "not-the-password")
    assert run("tag", "%s/%d" % (A, f["a1"]), "--party", "x", user="nobody") == 5
    assert "could not be signed in" in capsys.readouterr().err
    monkeypatch.delenv("SEALCAM_PASSWORD")
    assert run("number", "%s/%d" % (A, f["a1"]), "--party", "a-b", "--step", "s") == 3
    assert "ambiguous" in capsys.readouterr().err
    assert run("number-show", "AGENCY-1", user=None) == 3
    assert "no archive number AGENCY-1" in capsys.readouterr().err


def test_a_new_users_password_is_never_the_signers(tmp_path, monkeypatch, capsys):
    """`user add` / `user passwd` take the new password from SEALCAM_NEW_PASSWORD (or ask
    for it), never from SEALCAM_PASSWORD, the signer's own: without one nothing is added,
    and the signer's own given as the new one is refused (newcomer's run: it was taken)."""
    import io
    from host_tools import station
    from host_tools.cli import main as cli
    arch = str(tmp_path / "arch")
    station.init(arch)
    monkeypatch.delenv("SEALCAM_USER", raising=False)
    monkeypatch.setenv("SEALCAM_NEW_PASSWORD", "head pass 2026")
    assert cli(["user", "add", "wang.head", "--role", "archive_head", "--archive", arch]) == 0
    monkeypatch.setenv("SEALCAM_PASSWORD", "head pass 2026")
    monkeypatch.delenv("SEALCAM_NEW_PASSWORD")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    head = ["--archive", arch, "--user", "wang.head"]
    assert cli(["user", "add", "zhao.min", "--role", "clerk"] + head) != 0
    monkeypatch.setenv("SEALCAM_NEW_PASSWORD", "head pass 2026")
    assert cli(["user", "add", "zhao.min", "--role", "clerk"] + head) == 3
    assert "SEALCAM_NEW_PASSWORD" in capsys.readouterr().err
    monkeypatch.setenv("SEALCAM_NEW_PASSWORD", "her own pass 2026")
    assert cli(["user", "add", "zhao.min", "--role", "clerk"] + head) == 0
    assert cli(["user", "passwd", "zhao.min"] + head) == 0       # the same, not the signer's
    capsys.readouterr()
    monkeypatch.setenv("SEALCAM_PASSWORD", "her own pass 2026")
    assert cli(["case", "open", "X-1", "--title", "t", "--archive", arch,
                "--user", "zhao.min"]) == 0                        # her own password
    monkeypatch.setenv("SEALCAM_PASSWORD", "head pass 2026")
    assert cli(["case", "open", "X-2", "--title", "t", "--archive", arch,
                "--user", "zhao.min"]) == 5                        # not her password
    assert "could not be signed in" in capsys.readouterr().err
