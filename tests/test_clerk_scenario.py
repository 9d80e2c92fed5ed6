"""Issue 11's "Done when" scenario, on SQLite and on a real PostgreSQL: one incident from
offload to the end of its retention, driven through the real `sealcam` command as the
archive's clerks would (host_tools.cli.main with its argv; passwords from SEALCAM_PASSWORD
and SEALCAM_NEW_PASSWORD).

The archive (tests/test_clerk_common.py, built once a run): two reference recorders offloaded
over a pty the station's way. Recorder A (officer OFC-0001) records a1, is interrupted
(weather: the officer states it by voice in a2), records a2, which is interrupted by a
device fault never resumed (explained in writing); recorder B (OFC-0002) filmed the same
incident from another angle (b1, R22).

The clerks: the first user (a bureau chief) added by the station key's holder; it adds a
clerk, an archive head and a unit leader. The incident: a2 and b1 are tagged, numbered and
filed into an open case with the written explanation (a real PDF) of a2's interruption;
a1, an ordinary recording of the same party never filed, expires 24 months after it ended
and is disposed of on request and approval 25 months later, while the case's recordings
are held. Then `sealcam verify` (OK, a1 disposed with approval), `sealcam catalogue check`
(OK) and the station log (every clerk event names its user).
"""
import json
import os
import re
import subprocess
import sys

import pytest

from test_clerk_common import A, B, real_archive
from host_tools import cli
from host_tools.archive import Archive
from sim.demo_clerk import explanation_pdf

CASE = "FZ-2023-017"
PW = {"chen.chief": "chief pass 2023", "li.na": "clerk pass 2023",
      "wang.head": "head pass 2023", "zhao.lead": "leader pass 2023"}
ROLE = {"li.na": "clerk", "wang.head": "archive_head", "zhao.lead": "unit_leader"}


@pytest.fixture
def world(tmp_path, tmp_path_factory, catalogue_url, monkeypatch, capsys):
    for k in ("SEALCAM_USER", "SEALCAM_PASSWORD", "SEALCAM_NEW_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    arch, f = real_archive(tmp_path, tmp_path_factory)
    arch = str(arch)

    def sealcam(*argv, user=None, json_out=False, db=True, new_password=None):
        """`sealcam ARGV --archive ARCH --db URL [--user U] [--json]`: (exit, out, err)."""
        argv = [str(a) for a in argv]
        if db:
            argv += ["--archive", arch, "--db", catalogue_url]
        if user:
            argv += ["--user", user]
            monkeypatch.setenv("SEALCAM_PASSWORD", PW[user])
        else:
            monkeypatch.delenv("SEALCAM_PASSWORD", raising=False)
        if new_password:
            monkeypatch.setenv("SEALCAM_NEW_PASSWORD", new_password)
        else:
            monkeypatch.delenv("SEALCAM_NEW_PASSWORD", raising=False)
        if json_out:
            argv.append("--json")
        capsys.readouterr()
        code = cli.main(argv)
        out, err = capsys.readouterr()
        return code, out, err

    return sealcam, arch, f, tmp_path, catalogue_url


def _recs(out):
    """The (device, segment) set of a `sealcam search --json` output."""
    j = json.loads(out)
    assert j["count"] == len(j["recordings"])
    return {(r["device"], r["segment"]) for r in j["recordings"]}


def _ok(res):
    code, out, err = res
    assert code == 0, (code, out, err)
    return out


def _pdf_is_whole(data):
    """The scan is a real PDF: header, objects where its xref says, trailer, %%EOF."""
    assert data.startswith(b"%PDF-1.4\n") and data.endswith(b"%%EOF\n")
    start = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert data[start:start + 5] == b"xref\n"
    rows = data[start:].split(b"\n")[3:]
    for n in range(1, 6):
        off = int(rows[n - 1][:10])
        assert data[off:].startswith(b"%d 0 obj\n" % n)
    assert b"/Root 1 0 R" in data and b"/Type /Catalog" in data


def test_one_incident_from_offload_to_the_end_of_its_retention(world):
    sealcam, arch, f, tmp, catalogue_url = world
    a1, a2, b1 = (A, f["a1"]), (A, f["a2"]), (B, f["b1"])
    r = "%s/%d".__mod__

    # -- users: the station key's holder adds the first; the bureau chief adds the others
    out = _ok(sealcam("user", "add", "chen.chief", "--role", "bureau_chief",
                      "--display", "陈局长", json_out=True, new_password=PW["chen.chief"]))
    assert json.loads(out)["by"].startswith("os:")
    code, out, err = sealcam("user", "add", "li.na", "--role", "clerk",
                             new_password=PW["li.na"])
    assert code == 5 and "sign in as one of them" in err    # the archive has users now
    for name in ("li.na", "wang.head", "zhao.lead"):
        _ok(sealcam("user", "add", name, "--role", ROLE[name], user="chen.chief",
                    new_password=PW[name]))
    code, out, err = sealcam("user", "add", "ma.temp", "--role", "clerk", user="li.na",
                             new_password="temp pass 2023")
    assert code == 5, (code, out, err)               # a clerk manages no users

    # -- tagging: party, place, event type, item class; a correction says why
    _ok(sealcam("tag", r(a2), "--party", "x", user="li.na"))
    code, out, err = sealcam("tag", r(a2), "--party", "张三", user="li.na")
    assert code == 3 and "a correction needs a reason" in err, (code, out, err)
    _ok(sealcam("tag", r(a2), "--party", "张三", "--place", "五一路12号", "--event-type",
                "inspection", "--item-class", "001-09", "--reason", "the party's name",
                user="li.na"))
    _ok(sealcam("tag", r(b1), "--party", "张三", "--place", "五一路12号", "--event-type",
                "inspection", "--item-class", "001-10", user="li.na"))
    _ok(sealcam("tag", r(a1), "--party", "李四", "--event-type", "patrol",
                "--item-class", "scene", user="li.na"))
    out = _ok(sealcam("tag-history", r(a2), json_out=True))
    hist = json.loads(out)["history"]
    assert [(h["field"], h["value"], h["current"]) for h in hist if h["field"] == "party"] \
        == [("party", "x", False), ("party", "张三", True)]

    # -- archive number of the incident's two recordings (R11)
    out = _ok(sealcam("number", r(a2), r(b1), "--party", "张三", "--step", "检查",
                      user="li.na", json_out=True))
    number = json.loads(out)["number"]
    assert re.fullmatch(r"AGENCY-2023111[45]-张三-检查-0001", number), number
    assert {(i["device"], i["segment"]) for i in json.loads(out)["items"]} == {a2, b1}
    code, out, err = sealcam("number", r(a2), "--party", "张三", "--step", "检查",
                             user="li.na")
    assert code == 3, (code, out, err)               # numbered once

    # -- the case: the main recording, the second angle (R22), the written explanation (R3)
    _ok(sealcam("case", "open", CASE, "--title", "违法建设 五一路12号", user="li.na"))
    _ok(sealcam("case", "link", CASE, r(a2), user="li.na"))
    _ok(sealcam("case", "link", CASE, r(b1), "--role", "angle", user="li.na"))
    out = _ok(sealcam("case", "incident", r(a2), json_out=True))
    assert (B, f["b1"]) in {(x["device"], x["segment"]) for x in json.loads(out)["incident"]}
    scan = tmp / "情况说明.pdf"
    scan.write_bytes(explanation_pdf([
        "Written explanation of interruption #%d" % f["int_fault"],
        "Recorder %s stopped: device fault. Officer OFC-0001." % A]))
    _pdf_is_whole(scan.read_bytes())
    code, out, err = sealcam("doc", "add", scan, "--kind", "explanation", "--device", A,
                             "--interruption", f["a2"], user="li.na")
    assert code == 3, (code, out, err)               # a REC_START is no INTERRUPTION
    out = _ok(sealcam("doc", "add", scan, "--kind", "explanation", "--device", A,
                      "--interruption", f["int_fault"], "--case", CASE, user="li.na",
                      json_out=True))
    doc = json.loads(out)
    assert doc["media_type"] == "application/pdf" and doc["cases"] == [CASE]
    out = _ok(sealcam("doc", "explanations", A, f["int_fault"], json_out=True))
    assert [x["sha256"] for x in json.loads(out)["explanations"]] == [doc["sha256"]]
    out = _ok(sealcam("case", "show", CASE, json_out=True))
    show = json.loads(out)
    assert show["state"] == "open" and show["numbers"] == [number]
    assert sorted((x["device"], x["segment"], x["role"]) for x in show["recordings"]) == [
        (A, f["a2"], "primary"), (B, f["b1"], "angle")]
    assert [x["sha256"] for x in show["documents"]] == [doc["sha256"]]

    # -- search: exactly the right recordings
    def search(*flt):
        return _recs(_ok(sealcam("search", *flt, json_out=True)))
    assert search() == {a1, a2, b1}
    assert search("--party", "张三") == {a2, b1}
    assert search("--party", "李四") == {a1}
    assert search("--archive-number", number) == {a2, b1}
    assert search("--case", CASE) == {a2, b1}
    assert search("--interruption", "stated") == {a1}
    assert search("--interruption", "unstated") == {a2}
    assert search("--interruption", "any") == {a1, a2}
    assert search("--item-class", "001-09") == {a2}
    # a record class finds its items too: 001-09 is a scene item (R18)
    assert search("--item-class", "scene") == {a1, a2}
    assert search("--place", "五一路12号", "--device", B) == {b1}
    assert search("--party", "张三", "--interruption", "stated") == set()

    # -- retention: 23 months on nothing is due; 25 months on the unfiled a1 is
    out = _ok(sealcam("retention", "due", "--today", "2025-10-14", json_out=True))
    assert json.loads(out)["recordings"] == []
    _ok(sealcam("retention", "hold", "case:" + CASE, "--kind", "case", "--reason",
                "case open", user="zhao.lead"))
    out = _ok(sealcam("retention", "due", "--today", "2025-12-15", json_out=True))
    due = json.loads(out)["recordings"]
    assert [(x["device"], x["segment"], x["class"], x["status"]) for x in due] == [
        (A, f["a1"], "ordinary", "due")]
    out = _ok(sealcam("retention", "due", "--today", "2025-12-15", "--all", json_out=True))
    status = {(x["device"], x["segment"]): x["status"]
              for x in json.loads(out)["recordings"]}
    assert status == {a1: "due", a2: "held", b1: "held"}
    code, out, err = sealcam("retention", "request", r(a2), "--reason", "24 months ended",
                             user="li.na")
    assert code == 3 and CASE in err, (code, out, err)      # held by its case
    # two users: whoever asks never approves (the head's own request, refused, then the
    # clerk's: the clerk may not approve, the head does, from a process of its own)
    rq0 = json.loads(_ok(sealcam("retention", "request", r(a1), "--reason", "expired",
                                 user="wang.head", json_out=True)))["request"]
    code, out, err = sealcam("retention", "approve", rq0, user="wang.head")
    assert code == 5 and "another user must" in err, (code, out, err)
    _ok(sealcam("retention", "refuse", rq0, "--reason", "the clerk files the request",
                user="zhao.lead"))
    out = _ok(sealcam("retention", "request", r(a1), "--reason", "24 months ended",
                      user="li.na", json_out=True))
    rq = json.loads(out)["request"]
    code, out, err = sealcam("retention", "approve", rq, user="li.na")
    assert code == 5 and "may not" in err, (code, out, err)   # the clerk approves nothing
    mkv = os.path.join(arch, "devices", A, "m", "%08d.mkv" % f["a1"])
    assert os.path.exists(mkv)
    env = dict(os.environ, SEALCAM_PASSWORD=PW["wang.head"], SEALCAM_USER="wang.head")
    p = subprocess.run([sys.executable, "-m", "host_tools.cli", "retention", "approve", rq,
                        "--archive", arch, "--db", catalogue_url, "--json"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    e = json.loads(p.stdout)
    assert (e["device"], e["segment"], e["requested_by"], e["approved_by"]) == (
        A, f["a1"], "li.na", "wang.head")
    assert not os.path.exists(mkv)
    for other in (a2, b1):
        assert os.path.exists(os.path.join(arch, "devices", other[0], "m",
                                           "%08d.mkv" % other[1]))
    out = _ok(sealcam("retention", "requests", json_out=True))
    assert [(x["id"], x["state"], x["decided_by"]) for x in json.loads(out)["requests"]] \
        == [(rq0, "refused", "zhao.lead"), (rq, "approved", "wang.head")]
    assert search("--state", "disposed") == {a1}
    assert search("--party", "李四") == {a1}        # the signed records and tags stay

    # -- verify: OK; a1 disposed with approval, the others checked whole
    code, out, err = sealcam("verify", arch, db=False)
    assert code == 0, (out, err)
    assert "OVERALL: OK" in out
    assert re.search(r"segment %d disposed with approval \(request %s by li\.na, approved "
                     r"by wang\.head" % (f["a1"], rq), out), out
    code, out, err = sealcam("verify", arch, "--json", db=False)
    assert code == 0
    v = json.loads(out)
    devs = {d["device"]: d for d in v["devices"]} if isinstance(v["devices"], list) \
        else v["devices"]
    assert [(x["segment"], x["approved_by"]) for x in devs[A]["disposed"]] == [
        (f["a1"], "wang.head")]
    assert devs[B]["disposed"] == []
    out = _ok(sealcam("catalogue", "check"))
    assert "OK" in out
    out = _ok(sealcam("catalogue", "reindex", json_out=True))      # rebuilt from the log
    assert json.loads(out)["problems"] == []
    assert search("--case", CASE) == {a2, b1} and search("--state", "disposed") == {a1}
    assert json.loads(_ok(sealcam("catalogue", "check", json_out=True)))["problems"] == []

    # -- the station log: every clerk event names its user
    lg = Archive(arch).log()
    events = [e for _i, _raw, e in lg.entries(0, lg.size)
              if e.get("type") in ("user_added", "tag", "number_assigned", "case_opened",
                                   "case_linked", "document_added", "hold_placed",
                                   "disposal_requested", "disposal_refused",
                                   "segment_disposed")]
    who = [(e["type"], e.get("by") or e.get("approved_by")) for e in events]
    assert who[0][0] == "user_added" and who[0][1].startswith("os:")
    assert who[1:] == [("user_added", "chen.chief")] * 3 + [("tag", "li.na")] * 4 + [
        ("number_assigned", "li.na"), ("case_opened", "li.na"), ("case_linked", "li.na"),
        ("case_linked", "li.na"), ("document_added", "li.na"), ("hold_placed", "zhao.lead"),
        ("disposal_requested", "wang.head"), ("disposal_refused", "zhao.lead"),
        ("disposal_requested", "li.na"), ("segment_disposed", "wang.head")]
    assert [e["user"] for e in events if e["type"] == "user_added"] == [
        "chen.chief", "li.na", "wang.head", "zhao.lead"]
