"""host_tools.catalogue.recordings: one recording per archived segment, its facts taken from
the archive's verified records only.

The archive is made the station's way: two recorders written by the reference writer
(tests/refwriter.py) offloaded over a pty by host_tools.offload (tests/fakedev.py serves
the store). Device A records two shifts: an annotated interruption, one whose statement is
missing, one left unexplained by the end of the shift, marks of every kind, a power loss
(RECOVERY, a waiting power_loss interruption), and a segment still open at the offload.
Device B records unassigned. The expected facts are read back from the records the writer
made (their rtc, length, officer, unit), never from the archive.
"""
import os
import random
import shutil
import sqlite3
import time

import pytest

import fakedev
import refwriter as rw
from host_tools import report, report_items, station
from host_tools.catalogue import recordings
from host_tools.offload import offload

A, B = "SC-00REC0A1", "SC-00REC0B2"
DAY = 86_400_000


def _body(s, seq):
    return rw.decode_record(s.by_seq(seq).data)


def build_a(root):
    rnd = random.Random(11)
    s = rw.RefStore(root, seed=b"\x31" * 32, device=A, officer=None, chunk=4096)
    f = {}
    s.boot()
    s.assign("OFC-0001", "U-1")
    # seg1: two marks, interrupted (weather), annotated in seg2
    f["seg1"] = s.rec_start().seq
    s.write(rnd.randbytes(10_000))
    s.checkpoint()
    s.mark("notice_given", phrase=True)
    s.mark("bookmark")
    f["int_weather"] = s.interrupt("weather").seq
    # seg2: resumed, the statement, then battery_low (its statement goes missing in seg3)
    f["seg2"] = s.rec_start("resume").seq
    start = s.position()
    s.write(rnd.randbytes(9_000))
    s.voice_annotation(f["int_weather"], start=start, duration=2500)
    f["int_battery"] = s.interrupt("battery_low").seq
    # seg3: resumed, ANNOTATION_MISSING, two important marks, stopped by the officer
    f["seg3"] = s.rec_start("resume").seq
    s.write(rnd.randbytes(3_000))
    s.annotation_missing(f["int_battery"])
    s.mark("important")
    s.mark("important")
    s.close()
    s.rec_stop()
    # seg4 (next day): overheat, and the shift ends unresumed: unexplained
    s.rtc0 += DAY
    f["seg4"] = s.rec_start().seq
    s.write(rnd.randbytes(5_000))
    s.checkpoint()
    f["int_overheat"] = s.interrupt("overheat").seq
    s.assign(None)
    # shift 2: seg5 cut by a power loss (RECOVERY at the next boot, power_loss waiting)
    s.assign("OFC-0002", "U-2")
    f["seg5"] = s.rec_start().seq
    s.write(rnd.randbytes(6_000))
    s.checkpoint()
    s.write(rnd.randbytes(1_000))
    s.power_cut()
    s.boot()
    f["recovery"] = [r.seq for r in s.records if r.type == rw.RECOVERY][-1]
    f["int_power"] = s.power_loss_interruption().seq
    # seg6: still open when the recorder is docked
    f["seg6"] = s.rec_start().seq
    s.write(rnd.randbytes(9_000))
    f["ck6"] = s.checkpoint().seq
    s.mark("bookmark")
    return s, f


def build_b(root):
    s = rw.RefStore(root, seed=b"\x32" * 32, device=B, officer=None, chunk=4096)
    s.boot()
    seg = s.rec_start().seq
    s.write(random.Random(12).randbytes(4_500))
    s.close()
    s.rec_stop()
    return s, {"seg": seg}


def _offload(s, arch):
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)]).start()
    try:
        sm = offload(d.port, str(arch), register=True, progress=False)
    finally:
        d.stop()
    assert sm.exit_code == 0, sm.errors


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recordings")
    arch = tmp / "arch"
    station.init(arch)
    a, fa = build_a(tmp / "sd-a")
    b, fb = build_b(tmp / "sd-b")
    before = report_items._iso(int(time.time() * 1000) - 1)
    _offload(a, arch)
    _offload(b, arch)
    after = report_items._iso(int(time.time() * 1000) + 1)
    recs = recordings.collect(arch)
    return {"arch": arch, "offloaded": (before, after), "a": a, "fa": fa, "b": b, "fb": fb, "recs": recs,
            "by": {(r["device"], r["segment"]): r for r in recs}}


def _closing(s, seg):
    """The SEGMENT or RECOVERY record the writer made for seg, or None."""
    for r in s.records:
        b = rw.decode_record(r.data)
        if r.type in (rw.SEGMENT, rw.RECOVERY) and b[10] == seg:
            return b
    return None


def test_one_recording_per_segment_with_exactly_the_documented_keys(world):
    a, fa, fb = world["a"], world["fa"], world["fb"]
    segs_a = [r.seq for r in a.records if r.type == rw.REC_START]
    assert segs_a == [fa["seg%d" % i] for i in range(1, 7)]
    assert [(r["device"], r["segment"]) for r in world["recs"]] == \
        [(A, x) for x in segs_a] + [(B, fb["seg"])]
    for r in world["recs"]:
        assert tuple(r) == recordings.KEYS


def test_times_officer_unit_and_bytes_are_the_records(world):
    a, fa = world["a"], world["fa"]
    for i in range(1, 6):
        seg = fa["seg%d" % i]
        r, start, close = world["by"][A, seg], _body(a, seg), _closing(a, seg)
        assert r["start_ms"] == start[4]
        assert r["end_ms"] == close[4] and r["duration_ms"] == close[4] - start[4] > 0
        assert r["bytes"] == close[13] == a.segments[seg].length
        assert r["officer"] == start[7] and r["unit"] == start.get(30)
    assert [world["by"][A, fa["seg%d" % i]]["officer"] for i in (1, 4, 5)] == \
        ["OFC-0001", "OFC-0001", "OFC-0002"]
    assert world["by"][A, fa["seg5"]]["unit"] == "U-2"
    # seg5 was sealed at the next boot: its end is the RECOVERY's rtc, its bytes what the
    # RECOVERY signed (the 1,000 bytes after the last checkpoint included)
    assert _body(a, fa["recovery"])[13] == 6_000 + 1_000 == world["by"][A, fa["seg5"]]["bytes"]
    # seg6 is open: no end, the last checkpoint's length
    r6 = world["by"][A, fa["seg6"]]
    assert (r6["end_ms"], r6["duration_ms"]) == (None, None)
    assert r6["bytes"] == _body(a, fa["ck6"])[13] == 8192
    rb = world["by"][B, world["fb"]["seg"]]
    assert (rb["officer"], rb["unit"], rb["bytes"]) == (None, None, 4_500)


def test_state_complete_only_when_closed_and_held_whole(world):
    fa = world["fa"]
    states = {seg: world["by"][A, fa["seg%d" % seg]]["state"] for seg in range(1, 7)}
    assert states == {1: "complete", 2: "complete", 3: "complete", 4: "complete",
                      5: "complete", 6: "partial"}
    assert world["by"][B, world["fb"]["seg"]]["state"] == "complete"


def test_interruptions_counted_on_the_segment_they_interrupted(world):
    fa = world["fa"]

    def facts(i):
        r = world["by"][A, fa["seg%d" % i]]
        return (r["interruptions"], r["statements"], r["unstated"])
    # seg1 weather: annotated; seg2 battery_low: missing; seg3 none; seg4 overheat:
    # unexplained (the shift ended); seg5 power_loss: waiting (nothing ended the wait)
    assert [facts(i) for i in range(1, 7)] == [(1, 1, 0), (1, 0, 1), (0, 0, 0), (1, 0, 1),
                                               (1, 0, 0), (0, 0, 0)]


def test_interruption_judgement_is_the_reports(world):
    rep = report.build_report(world["arch"])
    st = {i["seq"]: i["status"] for i in rep["interruptions"] if i["device"] == A}
    fa = world["fa"]
    assert st == {fa["int_weather"]: "annotated", fa["int_battery"]: "missing",
                  fa["int_overheat"]: "unexplained", fa["int_power"]: "waiting"}
    ours = [r for r in world["recs"] if r["device"] == A]
    s = rep["summary"][A]["interruptions"]
    assert sum(r["interruptions"] for r in ours) == s["total"] == 4
    assert sum(r["statements"] for r in ours) == s["annotated"]
    assert sum(r["unstated"] for r in ours) == s["missing"] + s["unexplained"]


def test_marks_by_kind(world):
    fa = world["fa"]
    marks = [tuple(world["by"][A, fa["seg%d" % i]][k]
                   for k in ("marks_important", "marks_notice", "marks_bookmark"))
             for i in range(1, 7)]
    assert marks == [(0, 1, 1), (0, 0, 0), (2, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 1)]


def test_first_stored_at_is_the_first_media_record_stored(world):
    db = sqlite3.connect(os.path.join(world["arch"], "archive.sqlite"))
    try:
        for r in world["recs"]:
            (first,) = db.execute("SELECT MIN(stored_at) FROM records WHERE device = ? AND "
                                  "segment = ? AND type IN (2, 3, 4, 7)",
                                  (r["device"], r["segment"])).fetchone()
            assert r["first_stored_at"] == report._iso(report_items._stored_ms(first))
            lo, hi = world["offloaded"]
            assert lo <= r["first_stored_at"] <= hi and r["first_stored_at"].endswith("Z")
    finally:
        db.close()


def test_only_verified_records_count(world, tmp_path):
    """A record edited in archive.sqlite (the station log holds another hash) and every
    later one are left out: the segments they start are no recordings, and a segment whose
    closing record is left out is open."""
    arch = tmp_path / "arch"
    shutil.copytree(world["arch"], arch)
    fa = world["fa"]
    db = sqlite3.connect(os.path.join(arch, "archive.sqlite"))
    with db:
        (data,) = db.execute("SELECT data FROM records WHERE device = ? AND seq = ?",
                             (A, fa["int_overheat"])).fetchone()
        data = bytearray(data)
        data[-1] ^= 1
        db.execute("UPDATE records SET data = ? WHERE device = ? AND seq = ?",
                   (bytes(data), A, fa["int_overheat"]))
    db.close()
    recs = {(r["device"], r["segment"]): r for r in recordings.collect(arch)}
    assert sorted(s for d, s in recs if d == A) == [fa["seg%d" % i] for i in range(1, 5)]
    r4 = recs[A, fa["seg4"]]
    assert (r4["interruptions"], r4["end_ms"], r4["state"]) == (0, None, "partial")
    assert recs[A, fa["seg1"]] == world["by"][A, fa["seg1"]]
    assert (B, world["fb"]["seg"]) in recs


def test_devices_filter_and_unknown_device(world, tmp_path):
    assert [r["device"] for r in recordings.collect(world["arch"], devices=[B])] == [B]
    assert {r["device"] for r in recordings.collect(world["arch"], devices=A)} == {A}
    with pytest.raises(recordings.ReportError, match="SC-NOPE0000 is not in the archive"):
        recordings.collect(world["arch"], devices=["SC-NOPE0000"])
    with pytest.raises(recordings.ReportError, match="not a sealcam archive"):
        recordings.collect(tmp_path / "nothing")


def test_records_without_their_media_are_partial(world, tmp_path):
    """Records archived without the media (Archive.add_records, as test_report builds its
    archives): the segment is closed, but the archive does not hold it whole."""
    from host_tools.archive import Archive
    b = world["b"]
    station.init(tmp_path / "arch")
    with Archive(tmp_path / "arch") as arch:
        arch.register(B, b.pubkey)
        arch.add_records(B, [(r.seq, r.data, rw.decode_record(r.data)) for r in b.records])
    (r,) = recordings.collect(tmp_path / "arch")
    assert (r["segment"], r["bytes"], r["state"]) == (world["fb"]["seg"], 4_500, "partial")
    assert r["end_ms"] == _closing(b, r["segment"])[4]
