"""`sealcam report`: the compliance report over a station archive (host_tools/report.py).

The archives are built without a device: records written by the reference writer
(tests/refwriter.py, its generic ``record(rtype, fields)`` for the officer-workflow types of
SPEC §3.2), stored with Archive.add_records. The facts asserted below (seqs, reasons, spans,
byte offsets, delays) follow from how the fixture builds them.
"""
import argparse
import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import os
import sqlite3

import pytest

from host_tools import report
from host_tools.archive import Archive
from host_tools.archive import chain as _archive_chain

HERE = os.path.dirname(os.path.abspath(__file__))
import refwriter as rw  # noqa: E402

A, B = "SC-00A1B2C3", "SC-00B00002"
BOOT, REC_START, CHECKPOINT, SEGMENT, REC_STOP, REFUSAL, RECOVERY = range(1, 8)
TIME_SET, INTERRUPTION, VOICE, MISSING, MARK, ASSIGN, SELF_CHECK, RELEASE = range(9, 17)
NO_OFFICER, DRIFT = 0x01, 0x08
DAY = 86_400_000
HOUR = 3_600_000
STATION_FP = "0123:4567:89ab:cdef:0123:4567:89ab:cdef"


def ms(y, mo, d, h=0, mi=0, s=0):
    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.timezone.utc).timestamp() * 1000)


def iso(t):
    return report._iso(t)


def stored_text(t):
    """An archive stored_at value (as Archive.utcnow writes it) for the time t (ms)."""
    return dt.datetime.fromtimestamp(t / 1000, dt.timezone.utc).isoformat(
        timespec="milliseconds")


T0 = ms(2024, 3, 1, 8)       # day 1 starts at 08:00 UTC


class Dev(rw.RefStore):
    """The reference writer, plus key 30 (unit) in every record made while assigned."""

    def __init__(self, root, **kw):
        kw.setdefault("officer", None)
        super().__init__(root, **kw)
        self.unit = None
        self.rtc0 = T0 - 10_000_000          # the first boot adds 10,000,000 ms

    def body(self, rtype, fields=None):
        b = super().body(rtype)
        if self.officer is not None and self.unit is not None:
            b[30] = self.unit
        b.update(fields or {})
        return b

    def clock(self, old_minus_new, fields=None):
        """A TIME_SET whose `new` is the record's own rtc and `old` = new + old_minus_new
        (made with the generic writer, whatever the refwriter's own TIME_SET does)."""
        b = self.body(TIME_SET, fields)
        b[29], b[28] = b[4], b[4] + old_minus_new
        return self.append_raw(rw.sign_record(b, self.key), b[1], TIME_SET).seq

    def assign(self, officer, unit):
        self.officer, self.unit = officer, unit
        return self.record(ASSIGN, {24: STATION_FP}).seq


def _rows(s):
    return [(r.seq, r.data, rw.decode_record(r.data)) for r in s.records]


def _rtc(s, seq):
    return rw.decode_record(s.by_seq(seq).data)[4]


def build_device_a(root):
    """Two shifts of device A. Returns (store, facts) with the seqs the tests assert on."""
    s = Dev(root)
    f = {}
    s.boot()                                                          # 0, unassigned
    f["check_not_ready"] = s.record(SELF_CHECK, {36: False, 37: ["clock_uncalibrated"],
                                                 38: {1: 80, 2: 500}}).seq
    f["ts1"] = s.clock(-1500)                                         # first calibration
    f["check_ready"] = s.record(SELF_CHECK, {36: True, 37: [], 38: {1: 80, 2: 500}}).seq
    f["assign1"] = s.assign("OFC-0042", "U-7")
    # segment 1: a notice mark, then an interruption (weather) that gets annotated
    f["seg1"] = s.rec_start().seq
    s.write(bytes(10_000))                                           # 2 chunks + 1808 bytes
    s.checkpoint()
    f["mark_notice"] = s.record(MARK, {33: "notice_given", 34: [f["seg1"], 2, 100],
                                       42: True}).seq
    f["int_weather"] = s.record(INTERRUPTION, {17: "weather", 10: f["seg1"],
                                               34: [f["seg1"], 2, 1808]}).seq
    s.close()
    s.rec_stop("interrupted")
    # segment 2: resume, voice annotation, then battery_low (annotation missing later)
    f["seg2"] = s.rec_start("resume").seq
    s.write(bytes(20_000))                                           # 4 chunks + 3616 bytes
    f["voice"] = s.record(VOICE, {31: f["int_weather"], 32: [f["seg2"], 1, 100, 3, 50],
                                  35: 3500}).seq
    s.checkpoint()
    f["int_battery"] = s.record(INTERRUPTION, {17: "battery_low", 10: f["seg2"],
                                               34: [f["seg2"], 4, 3616]}).seq
    s.close()
    f["offload1_last"] = s.rec_stop("interrupted").seq
    # segment 3: resume, no annotation in time, an important mark, a refused delete, then
    # overheat, and the shift ends without resuming (unexplained)
    f["seg3"] = s.rec_start("resume").seq
    s.write(bytes(5_000))
    f["missing"] = s.record(MISSING, {31: f["int_battery"], 35: 120_000}).seq
    f["mark_important"] = s.record(MARK, {33: "important", 34: [f["seg3"], 0, 4000]}).seq
    f["refusal"] = s.refusal("delete", "m/%08d.mkv" % f["seg1"], "usb").seq
    f["int_overheat"] = s.record(INTERRUPTION, {17: "overheat", 10: f["seg3"],
                                                34: [f["seg3"], 1, 904]}).seq
    s.close()
    s.rec_stop("interrupted")
    f["release1"] = s.assign(None, None)
    f["ts2"] = s.clock(4200, {39: 4200, 40: DAY, 43: 4200, 9: NO_OFFICER | DRIFT})
    # day 2: first some recording while unassigned (NO_OFFICER), then shift 2
    s.rtc0 += DAY
    f["seg_unassigned"] = s.rec_start().seq
    s.write(bytes(4096))
    s.checkpoint()
    s.close()
    s.rec_stop()
    f["assign2"] = s.assign("OFC-0077", "U-9")
    f["release_rec"] = s.record(RELEASE, {10: f["seg1"], 11: "m/%08d.mkv" % f["seg1"],
                                          13: 10_000, 27: 1}).seq
    f["seg4"] = s.rec_start().seq
    s.write(bytes(9_000))
    s.checkpoint()
    f["mark_bookmark"] = s.record(MARK, {33: "bookmark", 34: [f["seg4"], 2, 0]}).seq
    f["int_place"] = s.record(INTERRUPTION, {17: "place_change", 10: f["seg4"],
                                             34: [f["seg4"], 2, 808]}).seq
    s.close()
    s.rec_stop("interrupted")
    # segment 5: resumed, power lost while the place_change waits for its annotation
    f["seg5"] = s.rec_start("resume").seq
    s.write(bytes(6_000))
    s.checkpoint()
    s.power_cut()
    f["boot2"] = s.boot().seq
    f["recovery"] = f["boot2"] - 1
    f["int_power"] = s.record(INTERRUPTION, {17: "power_loss", 10: f["seg5"],
                                             31: f["recovery"],
                                             34: [f["seg5"], 1, 1904]}).seq
    f["last"] = f["int_power"]
    return s, f


def build_device_b(root):
    """A clean shift: no interruption, everything offloaded in time."""
    s = Dev(root, seed=b"\x22" * 32, device=B)
    s.boot()
    s.assign("OFC-0042", "U-7")
    seg = s.rec_start().seq
    s.write(bytes(5000))
    s.checkpoint()
    s.record(MARK, {33: "bookmark", 34: [seg, 1, 0]})
    s.close()
    s.rec_stop()
    s.assign(None, None)
    return s


def _signed_archive(root):
    """A station's archive (station key, signed log), open for writing."""
    from host_tools import station
    station.init(root)
    return Archive(root)


def _archive_device_a(root, s):
    """A station's archive at root holding every record of store s as device A's."""
    with _signed_archive(root) as arch:
        arch.register(A, s.pubkey)
        arch.add_records(A, _rows(s))


@contextlib.contextmanager
def stored_at(t):
    """The archive's clock reads t (ms) while records are added: archive.sqlite and the
    station log (which the report trusts) both say the records were stored then."""
    real = _archive_chain.utcnow
    _archive_chain.utcnow = lambda: stored_text(t)
    try:
        yield
    finally:
        _archive_chain.utcnow = real


def make_archive(root, tmp):
    """Archive with devices A and B. Device A went to the dock twice: seq 0..offload1_last
    2 h after the last of them was made; the rest 2 h after its last record (day 2), so its
    segment 3 (day 1) is late by more than 24 h. Device B was offloaded after 1 h."""
    a_store, f = build_device_a(os.path.join(tmp, "sd-a"))
    b_store = build_device_b(os.path.join(tmp, "sd-b"))
    f["off1"] = _rtc(a_store, f["offload1_last"]) + 2 * HOUR
    f["off2"] = _rtc(a_store, f["last"]) + 2 * HOUR
    f["offb"] = _rtc(b_store, b_store.records[-1].seq) + HOUR
    rows = _rows(a_store)
    with _signed_archive(root) as arch:
        arch.register(A, a_store.pubkey)
        with stored_at(f["off1"]):
            arch.add_records(A, [r for r in rows if r[0] <= f["offload1_last"]])
        with stored_at(f["off2"]):
            arch.add_records(A, [r for r in rows if r[0] > f["offload1_last"]])
        arch.register(B, b_store.pubkey)
        with stored_at(f["offb"]):
            arch.add_records(B, _rows(b_store))
    return a_store, b_store, f


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("report"))
    root = os.path.join(tmp, "arch")
    a_store, b_store, f = make_archive(root, tmp)
    return root, a_store, b_store, f


@pytest.fixture(scope="module")
def full(built):
    return report.build_report(built[0])


def _by_seq(items, device=A):
    return {it["seq"]: it for it in items if it["device"] == device}


# --- content ---------------------------------------------------------------------------

def test_fixture_is_what_the_tests_assume(built):
    _, a, b, f = built
    # guards against a refwriter change silently moving the facts the tests rely on
    assert (f["int_weather"], f["voice"], f["int_battery"], f["missing"]) == (8, 12, 14, 18)
    assert f["seg2"] == 11 and f["recovery"] + 1 == f["boot2"]
    body = rw.decode_record(a.by_seq(f["recovery"]).data)
    assert body[0] == RECOVERY and body[13] == 6000 and body[22] == 4096
    assert rw.decode_record(a.by_seq(f["ts1"]).data)[4] == \
        rw.decode_record(a.by_seq(f["ts1"]).data)[29]


def test_interruptions_joined_with_annotations(full, built):
    _, a, _, f = built
    ints = _by_seq(full["interruptions"])
    assert list(ints) == [f["int_weather"], f["int_battery"], f["int_overheat"],
                          f["int_place"], f["int_power"]]
    # the judgement verify makes too (host_tools/workflow.py): the power-loss interruption
    # is the device's last record: the recorder may still annotate it ("waiting", no problem)
    assert [ints[s]["status"] for s in ints] == ["annotated", "missing", "unexplained",
                                                 "unexplained", "waiting"]
    assert [ints[s]["reason"] for s in ints] == ["weather", "battery_low", "overheat",
                                                 "place_change", "power_loss"]

    w = ints[f["int_weather"]]
    assert w["officer"] == "OFC-0042" and w["unit"] == "U-7" and w["segment"] == f["seg1"]
    assert w["time"] == iso(_rtc(a, f["int_weather"]))
    assert w["at"] == [f["seg1"], 2, 1808] and w["at_byte"] == 10_000
    ann = w["annotation"]
    assert ann["seq"] == f["voice"] and ann["time"] == iso(_rtc(a, f["voice"]))
    assert ann["span"] == [f["seg2"], 1, 100, 3, 50]
    assert ann["span_bytes"] == [1 * 4096 + 100, 3 * 4096 + 50] == [4196, 12338]
    assert ann["duration_ms"] == 3500 and ann["duration_s"] == 3.5
    assert w["missing"] is None
    assert "bytes 4196-12338" in w["explanation"] and "3.5 s" in w["explanation"]

    m = ints[f["int_battery"]]
    assert m["annotation"] is None
    assert m["missing"] == {"seq": f["missing"], "time": iso(_rtc(a, f["missing"])),
                            "waited_ms": 120_000, "waited_s": 120}
    assert m["explanation"].startswith("missing, waited 120 s")
    assert m["at_byte"] == 4 * 4096 + 3616 == 20_000

    o = ints[f["int_overheat"]]
    assert o["annotation"] is None and o["missing"] is None
    assert o["explanation"].startswith("unexplained: no annotation and no missing record")
    assert "shift ended at ASSIGN seq %d before" % f["release1"] in o["explanation"]
    p = ints[f["int_place"]]
    assert "restarted at BOOT seq %d before" % f["boot2"] in p["explanation"]
    assert p["officer"] == "OFC-0077" and p["unit"] == "U-9"
    pw = ints[f["int_power"]]
    assert pw["refers"] == f["recovery"] and pw["segment"] == f["seg5"]
    assert pw["explanation"].startswith("waiting: no annotation yet")
    assert "none in the archive up to seq %d, its last record" % f["last"] in pw["explanation"]
    assert _by_seq(full["interruptions"], B) == {}


def test_late_offload_found_per_segment(full, built):
    _, a, _, f = built
    late = full["late_offloads"]
    assert [(x["device"], x["segment"]) for x in late] == [(A, f["seg3"])]
    x = late[0]
    start = _rtc(a, f["seg3"])
    assert x["capture"] == iso(start) and x["offloaded"] == iso(f["off2"])
    assert x["delay_h"] == round((f["off2"] - start) / HOUR, 2) and x["delay_h"] > 28
    assert x["worst_seq"] == f["seg3"] and x["limit_h"] == 24
    assert x["officer"] == "OFC-0042" and x["unit"] == "U-7"
    # segments 1 and 2 went in the first offload, 2 h after they were made
    kinds = {(p["kind"], p["seq"]) for p in full["problems"] if p["device"] == A}
    assert ("late_offload", f["seg3"]) in kinds
    assert not any(k == "late_offload" and s != f["seg3"] for k, s in kinds)


def test_offload_limit_is_an_option(built):
    root, _, _, f = built
    rep = report.build_report(root, offload_limit_h=30)
    assert rep["late_offloads"] == [] and rep["filters"]["offload_limit_h"] == 30
    assert not any(p["kind"] == "late_offload" for p in rep["problems"])
    rep = report.build_report(root, offload_limit_h=1.5)
    # with 1.5 h every segment of A is late (offloaded >= 2 h after), none of B (1 h)
    segs = [x["segment"] for x in rep["late_offloads"]]
    assert segs == [f["seg1"], f["seg2"], f["seg3"], f["seg_unassigned"], f["seg4"],
                    f["seg5"]]


def test_late_offload_uses_the_first_stored_at(tmp_path):
    """A segment half offloaded in time and half late: offloaded = the first stored_at,
    the delay is the worst record's."""
    s = Dev(tmp_path / "sd")
    s.boot()
    seg = s.rec_start().seq
    s.write(bytes(5000))
    ck = s.checkpoint().seq
    s.close()
    close = s.records[-1].seq
    stop = s.rec_stop().seq
    # a RELEASE of the segment, days later: it names the segment (key 10) but is not its
    # media; that it reached the archive late does not make the segment late
    rel = s.record(RELEASE, {10: seg, 11: "m/%08d.mkv" % seg, 13: 5000, 27: 1}).seq
    root = tmp_path / "arch"
    first, later = _rtc(s, seg) + HOUR, _rtc(s, close) + 30 * HOUR
    rows = _rows(s)
    with _signed_archive(root) as arch:
        arch.register(A, s.pubkey)
        with stored_at(first):
            arch.add_records(A, [r for r in rows if r[0] <= ck])
        with stored_at(later):
            arch.add_records(A, [r for r in rows if ck < r[0] < stop])
        with stored_at(_rtc(s, rel) + 100 * HOUR):
            arch.add_records(A, [r for r in rows if r[0] >= stop])
    (x,) = report.build_report(root)["late_offloads"]
    assert x["segment"] == seg and x["offloaded"] == iso(first)
    assert x["worst_seq"] == close and x["delay_h"] == 30.0
    assert report.build_report(root, offload_limit_h=31)["late_offloads"] == []


def test_clock_adjustments_and_drift_flag(full, built):
    _, a, _, f = built
    clk = _by_seq(full["clock_adjustments"])
    assert list(clk) == [f["ts1"], f["ts2"]]
    c1, c2 = clk[f["ts1"]], clk[f["ts2"]]
    t1, t2 = _rtc(a, f["ts1"]), _rtc(a, f["ts2"])
    assert (c1["old_rtc"], c1["new_rtc"], c1["correction_ms"]) == (t1 - 1500, t1, 1500)
    assert c1["old"] == iso(t1 - 1500) and c1["new"] == iso(t1)
    assert c1["drift_ms_per_day"] is None and c1["since_ms"] is None
    assert c1["drift_flag"] is False
    assert c2["correction_ms"] == -4200 and c2["drift_ms_per_day"] == 4200
    assert c2["since_ms"] == DAY and c2["drift_flag"] is True
    drift = [p for p in full["problems"] if p["kind"] == "clock_drift"]
    assert [(p["device"], p["seq"]) for p in drift] == [(A, f["ts2"])]
    assert "%s seq %d" % (A, f["ts2"]) in drift[0]["message"]


def test_refusals_recoveries_marks_checks_releases(full, built):
    _, a, _, f = built
    (r,) = full["refusals"]
    assert (r["device"], r["seq"], r["op"], r["target"], r["source"]) == \
        (A, f["refusal"], "delete", "m/%08d.mkv" % f["seg1"], "usb")
    (rc,) = full["recoveries"]
    assert (rc["seq"], rc["segment"], rc["length"], rc["signed"], rc["unsigned_tail"]) == \
        (f["recovery"], f["seg5"], 6000, 4096, 1904)
    assert rc["recovered"] is True and rc["mismatch"] is False and rc["flags"] == 0x02
    marks = _by_seq(full["marks"])
    assert {s: m["kind"] for s, m in marks.items()} == {
        f["mark_notice"]: "notice_given", f["mark_important"]: "important",
        f["mark_bookmark"]: "bookmark"}
    n = marks[f["mark_notice"]]
    assert n["phrase"] is True and n["at"] == [f["seg1"], 2, 100] and n["at_byte"] == 8292
    assert marks[f["mark_important"]]["phrase"] is None
    assert marks[f["mark_important"]]["at_byte"] == 4000
    assert len(_by_seq(full["marks"], B)) == 1
    checks = _by_seq(full["self_checks"])
    assert checks[f["check_not_ready"]]["ready"] is False
    assert checks[f["check_not_ready"]]["reasons"] == ["clock_uncalibrated"]
    assert checks[f["check_ready"]]["ready"] is True and checks[f["check_ready"]]["reasons"] \
        == []
    assert checks[f["check_ready"]]["facts"] == {
        "battery_pct": 80, "storage_min": 500, "clock_error_ms": None,
        "oldest_unreceipted_s": None, "since_calibration_ms": None}
    (rel,) = full["releases"]
    assert (rel["seq"], rel["segment"], rel["media"], rel["length"], rel["number"]) == \
        (f["release_rec"], f["seg1"], "m/%08d.mkv" % f["seg1"], 10_000, 1)


def test_shifts_and_unassigned_recording(full, built):
    _, a, b, f = built
    sh = _by_seq(full["shifts"])
    assert list(sh) == [f["assign1"], f["assign2"]]
    s1, s2 = sh[f["assign1"]], sh[f["assign2"]]
    assert (s1["officer"], s1["unit"], s1["station"]) == ("OFC-0042", "U-7", STATION_FP)
    assert s1["start"] == iso(_rtc(a, f["assign1"])) and s1["end"] == iso(
        _rtc(a, f["release1"]))
    assert s1["end_seq"] == f["release1"] and s1["open"] is False
    assert (s1["segments"], s1["interruptions"], s1["marks"]) == (3, 3, 2)
    assert (s2["officer"], s2["unit"], s2["open"], s2["end"], s2["end_seq"]) == \
        ("OFC-0077", "U-9", True, None, None)
    assert (s2["segments"], s2["interruptions"], s2["marks"]) == (2, 2, 1)
    (bs,) = [x for x in full["shifts"] if x["device"] == B]
    assert bs["open"] is False and (bs["segments"], bs["interruptions"], bs["marks"]) == \
        (1, 0, 1)
    # REC_START, CHECKPOINT and SEGMENT of the segment recorded while unassigned; not the
    # BOOT, SELF_CHECKs, TIME_SETs or REC_STOP (flagged NO_OFFICER but not recording)
    (u,) = full["unassigned_recording"]
    assert (u["device"], u["records"], u["segments"], u["first_seq"], u["last_seq"]) == \
        (A, 3, 1, f["seg_unassigned"], f["seg_unassigned"] + 2)


def test_summary_counts(full, built):
    _, a, b, f = built
    sa, sb = full["summary"][A], full["summary"][B]
    assert full["devices"] == [A, B]
    assert sa["records"] == len(a.records) and sb["records"] == len(b.records)
    assert sa["segments"] == 6 and sb["segments"] == 1
    assert sa["interruptions"] == {"total": 5, "annotated": 1, "missing": 1,
                                   "unexplained": 2, "waiting": 1}
    assert sa["verified_through"] == f["last"]
    assert (sa["late_segments"], sa["clock_adjustments"], sa["drift_flags"]) == (1, 2, 1)
    assert (sa["refusals"], sa["recoveries"], sa["releases"]) == (1, 1, 1)
    assert sa["marks"] == {"important": 1, "notice_given": 1, "bookmark": 1, "other": 0}
    assert (sa["shifts"], sa["unassigned_records"]) == (2, 3)
    assert (sa["self_checks"], sa["self_checks_not_ready"]) == (2, 1)
    # problems: 2 unexplained + 1 missing + 1 late + 1 drift (waiting is not one)
    assert sa["problems"] == 5 == len(full["problems"])
    assert sb == {"records": len(b.records), "segments": 1,
                  "interruptions": {"total": 0, "annotated": 0, "missing": 0,
                                    "unexplained": 0, "waiting": 0},
                  "verified_through": len(b.records) - 1,
                  "late_segments": 0, "clock_adjustments": 0, "drift_flags": 0,
                  "refusals": 0, "recoveries": 0,
                  "marks": {"important": 0, "notice_given": 0, "bookmark": 1, "other": 0},
                  "shifts": 1, "unassigned_records": 0, "self_checks": 0,
                  "self_checks_not_ready": 0, "releases": 0, "problems": 0}


def test_problems_name_device_and_seq(full, built):
    f = built[3]
    probs = [(p["kind"], p["seq"]) for p in full["problems"]]
    assert probs == sorted(probs, key=lambda x: x[1])
    assert set(probs) == {("annotation_missing", f["int_battery"]),
                          ("interruption_unexplained", f["int_overheat"]),
                          ("late_offload", f["seg3"]),
                          ("clock_drift", f["ts2"]),
                          ("interruption_unexplained", f["int_place"])}
    for p in full["problems"]:
        assert p["device"] == A
        assert p["message"].startswith("%s seq %d" % (A, p["seq"])) or \
            p["message"].startswith("%s segment %d (REC_START seq %d)" % (A, p["seq"],
                                                                         p["seq"]))


# --- filters -----------------------------------------------------------------------------

def test_filter_by_officer(built):
    root, _, _, f = built
    rep = report.build_report(root, officer="OFC-0077")
    assert rep["filters"]["officer"] == "OFC-0077"
    assert [i["seq"] for i in rep["interruptions"]] == [f["int_place"], f["int_power"]]
    assert [m["seq"] for m in rep["marks"]] == [f["mark_bookmark"]]
    assert [s["seq"] for s in rep["shifts"]] == [f["assign2"]]
    assert [r["seq"] for r in rep["releases"]] == [f["release_rec"]]
    assert rep["refusals"] == [] and rep["clock_adjustments"] == []   # TIME_SETs unassigned
    assert rep["late_offloads"] == [] and rep["unassigned_recording"] == []
    assert rep["summary"][B]["records"] == 0 and rep["summary"][B]["shifts"] == 0
    assert {p["kind"] for p in rep["problems"]} == {"interruption_unexplained"}
    rep = report.build_report(root, officer="OFC-0042")
    assert [i["seq"] for i in rep["interruptions"]] == [f["int_weather"], f["int_battery"],
                                                        f["int_overheat"]]
    # the annotation of an OFC-0042 interruption is found whatever the filter
    assert rep["interruptions"][0]["annotation"]["seq"] == f["voice"]
    assert [(s["device"], s["seq"]) for s in rep["shifts"]] == [(A, f["assign1"]), (B, 1)]
    assert [x["segment"] for x in rep["late_offloads"]] == [f["seg3"]]


def test_filter_by_dates(built):
    root, _, _, f = built
    day2 = report.build_report(root, since="2024-03-02")
    assert [i["seq"] for i in day2["interruptions"]] == [f["int_place"], f["int_power"]]
    assert day2["clock_adjustments"] == [] and day2["late_offloads"] == []
    assert [s["seq"] for s in day2["shifts"]] == [f["assign2"]]
    assert [u["records"] for u in day2["unassigned_recording"]] == [3]
    assert day2["summary"][B]["records"] == 0
    day1 = report.build_report(root, since=dt.date(2024, 3, 1), until="2024-03-01")
    assert [i["seq"] for i in day1["interruptions"]] == [f["int_weather"], f["int_battery"],
                                                         f["int_overheat"]]
    assert [c["seq"] for c in day1["clock_adjustments"]] == [f["ts1"], f["ts2"]]
    assert [x["segment"] for x in day1["late_offloads"]] == [f["seg3"]]
    assert day1["unassigned_recording"] == [] and day1["releases"] == []
    assert [(s["device"], s["seq"]) for s in day1["shifts"]] == [(A, f["assign1"]), (B, 1)]
    assert day1["filters"]["from"] == day1["filters"]["to"] == "2024-03-01"
    # the open shift of day 2 overlaps every later day; nothing else does
    later = report.build_report(root, since="2024-03-05", until="2024-03-06")
    assert [s["seq"] for s in later["shifts"]] == [f["assign2"]]
    assert later["interruptions"] == [] and later["problems"] == []
    before = report.build_report(root, until="2024-02-29")
    assert before["shifts"] == [] and before["summary"][A]["records"] == 0


def test_filter_by_device(built):
    root, _, _, f = built
    rep = report.build_report(root, device=B)
    assert rep["devices"] == [B] and list(rep["summary"]) == [B]
    assert rep["interruptions"] == [] and rep["problems"] == []
    assert [m["device"] for m in rep["marks"]] == [B]
    rep = report.build_report(root, device=[B, A])
    assert rep["devices"] == [A, B]
    with pytest.raises(report.ReportError, match="SC-NOPE is not in the archive"):
        report.build_report(root, device=["SC-NOPE"])


def test_usage_errors(built, tmp_path):
    root = built[0]
    with pytest.raises(report.ReportError, match="after --to"):
        report.build_report(root, since="2024-03-02", until="2024-03-01")
    with pytest.raises(report.ReportError, match="not a date"):
        report.build_report(root, since="2024-3-1")
    with pytest.raises(report.ReportError, match="not a date"):
        report.build_report(root, until="2024-W09-5")
    with pytest.raises(report.ReportError, match="must be > 0"):
        report.build_report(root, offload_limit_h=0)
    with pytest.raises(report.ReportError, match="%s is not a sealcam archive" % tmp_path):
        report.build_report(tmp_path)
    with pytest.raises(report.ReportError, match="no such directory"):
        report.build_report(tmp_path / "nowhere")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "archive.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(report.ReportError, match="not a readable sealcam archive"):
        report.build_report(tmp_path / "x")


# --- read-only, robustness ---------------------------------------------------------------

def _tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for fn in files:
            p = os.path.join(d, fn)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def test_report_does_not_change_the_archive(built):
    root = built[0]
    before = _tree(root)
    report.build_report(root)
    assert _tree(root) == before


def test_record_that_does_not_verify_is_left_out_and_named(tmp_path):
    """The report reads only what verifies: a device's records from the first one that
    does not verify (here: garbage in seq 1's row) are left out, and that is a problem."""
    s = Dev(tmp_path / "sd")
    s.boot()
    s.record(INTERRUPTION, {17: "device_fault"})
    s.record(INTERRUPTION, {17: "weather"})
    root = tmp_path / "arch"
    _archive_device_a(root, s)
    db = sqlite3.connect(root / "archive.sqlite")
    with db:
        db.execute("UPDATE records SET data = ? WHERE device = ? AND seq = 1",
                   (b"\xd2\x84garbage", A))
    db.close()
    rep = report.build_report(root)
    assert rep["unverified"] == [{"device": A, "first_seq": 1, "records": 2,
                                  "reason": "not a record: not CBOR"}]
    assert rep["interruptions"] == [] and rep["summary"][A]["verified_through"] == 0
    (p,) = rep["problems"]
    assert p["kind"] == "not_verified" and "only records 0..0, which verify" in p["message"]
    assert report.exit_code(rep) == 1


@pytest.mark.parametrize("edit", ["resign", "body", "drop_newest"])
def test_archive_edits_are_not_reported_as_facts(tmp_path, edit):
    """A row re-signed by another key, a body edited in place, the newest rows dropped
    while the station's last head says more: the report says so instead of listing them."""
    s = Dev(tmp_path / "sd")
    s.boot()
    s.record(INTERRUPTION, {17: "weather"})
    s.record(MARK, {33: "bookmark"})
    root = tmp_path / "arch"
    _archive_device_a(root, s)
    db = sqlite3.connect(root / "archive.sqlite")
    with db:
        if edit == "resign":
            body = rw.decode_record(s.by_seq(1).data)
            body[17] = "place_change"
            data = rw.sign_record(body, rw.key_from_seed(b"\x07" * 32))
            db.execute("UPDATE records SET data = ? WHERE device = ? AND seq = 1", (data, A))
        elif edit == "body":
            data = s.by_seq(1).data.replace(b"weather", b"weathex")
            db.execute("UPDATE records SET data = ? WHERE device = ? AND seq = 1", (data, A))
        else:
            db.execute("UPDATE devices SET last_head_seq = 2 WHERE id = ?", (A,))
            db.execute("DELETE FROM records WHERE device = ? AND seq = 2", (A,))
    db.close()
    rep = report.build_report(root)
    (u,) = rep["unverified"]
    assert u["first_seq"] == (2 if edit == "drop_newest" else 1)
    assert rep["problems"][-1]["kind"] == "not_verified"
    if edit == "drop_newest":
        assert "records removed" in u["reason"]
    else:
        assert rep["interruptions"] == [] and "signature" in u["reason"]


def test_control_characters_are_escaped_in_every_output(tmp_path, capsys):
    s = Dev(tmp_path / "sd")
    s.boot()
    s.refusal("delete", "m/\x1b[2J\x1b]0;pwned\x07\u202e.mkv", "usb")
    s.record(INTERRUPTION, {17: "weather\x1b[31m"})
    root = tmp_path / "arch"
    _archive_device_a(root, s)
    for fmt in ([], ["--json"], ["--csv"]):
        rc, out, err = cli(["--archive", str(root)] + fmt, capsys)
        assert rc in (0, 1), err
        for c in ("\x1b", "\x07", "\u202e"):
            assert c not in out, (fmt, c)
    rc, out, _ = cli(["--archive", str(root)], capsys)
    assert "m/\\x1b[2J" in out and "\\u202e" in out


# --- command line: text, JSON, CSV, exit codes -------------------------------------------

class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):          # as the sealcam CLI does: a usage error, exit code 3
        raise _UsageError(message)


def cli(argv, capsys):
    p = report.add_arguments(_Parser(prog="sealcam report"))
    try:
        args = p.parse_args(argv)
    except _UsageError as e:
        return 3, "", str(e)
    rc = report.run(args)
    out, err = capsys.readouterr()
    return rc, out, err


JSON_KEYS = {"format", "archive", "archive_id", "generated_at", "filters", "integrity",
             "devices", "summary", "interruptions", "late_offloads", "clock_adjustments",
             "refusals", "recoveries", "marks", "shifts", "unassigned_recording",
             "self_checks", "releases", "statements", "unverified", "notes", "problems"}


def test_cli_json(built, capsys):
    root, _, _, f = built
    rc, out, err = cli(["--archive", root, "--json"], capsys)
    assert rc == 1 and err == ""
    rep = json.loads(out)
    assert set(rep) == JSON_KEYS and rep["format"] == "sealcam-report-2"
    assert rep["archive"] == os.path.abspath(root)
    assert "sealcam verify %s" % os.path.abspath(root) in rep["integrity"]
    assert rep["filters"] == {"devices": None, "officer": None, "from": None, "to": None,
                              "offload_limit_h": 24}
    assert len(rep["problems"]) == 5
    assert set(rep["interruptions"][0]) == {
        "device", "seq", "time", "officer", "unit", "reason", "segment", "at", "at_byte",
        "refers", "status", "annotation", "missing", "explanation", "written"}
    assert set(rep["interruptions"][0]["annotation"]) == {
        "seq", "time", "span", "span_bytes", "duration_ms", "duration_s", "parts"}
    assert set(rep["problems"][0]) == {"device", "seq", "kind", "message"}
    # JSON equals the library's dict (apart from the time it was made)
    lib = report.build_report(root)
    rep.pop("generated_at"), lib.pop("generated_at")
    assert rep == json.loads(json.dumps(lib))


def test_cli_exit_0_when_clean(built, capsys):
    root = built[0]
    rc, out, _ = cli(["--archive", root, "--device", B, "--json"], capsys)
    assert rc == 0 and json.loads(out)["problems"] == []
    rc, out, _ = cli(["--archive", root, "--device", A, "--device", B, "--from",
                      "2024-03-05", "--json"], capsys)
    assert rc == 0 and json.loads(out)["filters"]["devices"] == [A, B]
    rc, out, _ = cli(["--archive", root, "--device", B], capsys)
    assert rc == 0 and "no compliance problem in the selected records" in out


def test_cli_text(built, capsys):
    root, _, _, f = built
    rc, out, _ = cli(["--archive", root, "--officer", "OFC-0042", "--offload-limit-h", "24"],
                     capsys)
    assert rc == 1
    assert "sealcam verify %s" % os.path.abspath(root) in out
    assert "selection:  officer OFC-0042" in out
    for title in ("SUMMARY", "INTERRUPTIONS (3)", "LATE OFFLOADS (1)", "CLOCK ADJUSTMENTS (0)",
                  "REFUSED OPERATIONS (1)", "MARKS (3)", "SHIFTS (2)", "PROBLEMS (3)"):
        assert "\n" + title + "\n" in out
    lines = out.splitlines()
    hdr = next(i for i, l in enumerate(lines) if l == "INTERRUPTIONS (3)") + 1
    header = lines[hdr]
    # aligned columns: each value starts under its header
    col = header.index("reason")
    rows = lines[hdr + 1:hdr + 4]
    assert [r[col:].split()[0] for r in rows] == ["weather", "battery_low", "overheat"]
    assert "missing, waited 120 s" in rows[1]
    assert "unexplained: no annotation and no missing record" in rows[2]
    assert "(bytes 4196-12338)" in rows[0]
    probs = lines[lines.index("PROBLEMS (3)") + 1:]
    assert any(l.strip().startswith("%s seq %d:" % (A, f["int_overheat"])) for l in probs)
    assert any("%s segment %d (REC_START seq %d)" % (A, f["seg3"], f["seg3"]) in l
               for l in probs)


def test_cli_csv(built, capsys):
    root, _, _, f = built
    rc, out, _ = cli(["--archive", root, "--csv"], capsys)
    assert rc == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == report.CSV_COLUMNS and report.CSV_COLUMNS[0] == "section"
    count = {}
    for r in rows:
        count[r["section"]] = count.get(r["section"], 0) + 1
    assert count == {"summary": 2, "interruption": 5, "late_offload": 1,
                     "clock_adjustment": 2, "refusal": 1, "recovery": 1, "mark": 4,
                     "shift": 3, "unassigned_recording": 1, "self_check": 2, "release": 1,
                     "statement": 1,
                     "problem": 5}
    w = next(r for r in rows if r["section"] == "interruption"
             and r["seq"] == str(f["int_weather"]))
    assert (w["device"], w["status"], w["annotation_seq"], w["annotation_span"],
            w["annotation_span_bytes"]) == (A, "annotated", str(f["voice"]),
                                            "[%d,1,100,3,50]" % f["seg2"], "[4196,12338]")
    s = next(r for r in rows if r["section"] == "summary" and r["device"] == A)
    assert (s["interruptions_total"], s["interruptions_unexplained"], s["late_segments"],
            s["drift_flags"], s["marks_important"]) == ("5", "2", "1", "1", "1")
    assert s["interruptions_waiting"] == "1" and s["verified_through"] == str(f["last"])
    late = next(r for r in rows if r["section"] == "late_offload")
    assert late["segment"] == str(f["seg3"]) and float(late["delay_h"]) > 28
    c = next(r for r in rows if r["section"] == "clock_adjustment" and r["drift_flag"]
             == "true")
    assert c["seq"] == str(f["ts2"])


def test_cli_usage_errors_exit_3(built, tmp_path, capsys):
    root = built[0]
    rc, out, err = cli(["--archive", str(tmp_path)], capsys)
    assert rc == 3 and out == ""
    assert "sealcam report: %s is not a sealcam archive" % tmp_path in err
    rc, _, err = cli(["--archive", root, "--device", "SC-NOPE"], capsys)
    assert rc == 3 and "device SC-NOPE is not in the archive" in err and A in err
    rc, _, err = cli(["--archive", root, "--from", "2024-03-02", "--to", "2024-03-01"],
                     capsys)
    assert rc == 3 and "--from 2024-03-02 is after --to 2024-03-01" in err
    rc, _, err = cli(["--archive", root, "--from", "yesterday"], capsys)
    assert rc == 3 and "not a date YYYY-MM-DD: 'yesterday'" in err
    rc, _, err = cli(["--archive", root, "--offload-limit-h", "-1"], capsys)
    assert rc == 3 and "must be > 0" in err
    rc, _, err = cli(["--archive", root, "--json", "--csv"], capsys)
    assert rc == 3 and "not allowed with" in err
    rc, _, err = cli(["--json"], capsys)
    assert rc == 3 and "--archive" in err


def test_archive_is_opened_read_only(built):
    root, db, notes = report._open_ro(built[0])
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.execute("UPDATE records SET stored_at = 'x'")
    finally:
        db.close()
    assert notes == []


def test_annotation_wins_over_a_missing_record(tmp_path):
    """A VOICE_ANNOTATION and an ANNOTATION_MISSING for the same interruption: it was
    explained (status annotated), and the missing record is still shown."""
    s = Dev(tmp_path / "sd")
    s.boot()
    s.assign("OFC-0042", "U-7")
    seg = s.rec_start(chunk=1000).seq
    s.write(bytes(2500))
    i = s.record(INTERRUPTION, {17: "device_fault", 10: seg, 34: [seg, 2, 500]}).seq
    s.close()
    s.rec_stop("interrupted")
    seg2 = s.rec_start("resume", chunk=2000).seq
    s.write(bytes(5000))
    m = s.record(MISSING, {31: i, 35: 90_500}).seq
    v = s.record(VOICE, {31: i, 32: [seg2, 2, 10, 2, 900], 35: 1200}).seq
    root = tmp_path / "arch"
    _archive_device_a(root, s)
    rep = report.build_report(root)
    (it,) = rep["interruptions"]
    assert it["status"] == "annotated" and it["at_byte"] == 2500
    assert it["annotation"]["seq"] == v and it["annotation"]["span_bytes"] == [4010, 4900]
    assert it["missing"]["seq"] == m and it["missing"]["waited_s"] == 90.5
    # (its records were stored now, long after 2024: late offloads are the only problems)
    assert {p["kind"] for p in rep["problems"]} == {"late_offload"}


def test_a_statement_across_a_rollover_is_one_annotation_in_two_parts(tmp_path):
    s = Dev(tmp_path / "sd")
    s.boot()
    seg = s.rec_start().seq
    s.write(bytes(5000))
    s.checkpoint()
    s.close()
    s.rec_stop()
    intr = s.record(INTERRUPTION, {17: "weather", 10: seg, 34: [seg, 1, 904]}).seq
    a = s.rec_start().seq
    s.write(bytes(9000))
    s.close()
    b = s.rec_start().seq
    s.write(bytes(3000))
    s.close()
    v1 = s.record(VOICE, {31: intr, 32: [a, 1, 100, 2, 808], 35: 4000}).seq
    v2 = s.record(VOICE, {31: intr, 32: [b, 0, 0, 0, 2500], 35: 4000}).seq
    root = tmp_path / "arch"
    _archive_device_a(root, s)
    (i,) = report.build_report(root)["interruptions"]
    chunk = rw.decode_record(s.by_seq(a).data)[12]
    assert i["status"] == "annotated" and i["annotation"]["seq"] == v1
    assert [p["seq"] for p in i["annotation"]["parts"]] == [v1, v2]
    assert i["annotation"]["parts"][1]["span_bytes"] == [0, 2500]
    assert i["annotation"]["span_bytes"] == [chunk + 100, 2 * chunk + 808]
    assert "continued in segment %d to chunk 0 offset 2500 (seq %d)" % (b, v2) \
        in i["explanation"]


# --- one interpretation: verify and report judge an interruption alike --------------------

def test_verify_and_report_judge_every_interruption_alike(tmp_path):
    """The same chain, verified as a card and reported from an archive: each interruption
    gets the same status from both (host_tools.workflow), including the one still waiting
    at the end (verify used to say "waiting" where the report said "unexplained")."""
    from host_tools.verify import verify_store
    s = rw.RefStore(tmp_path / "sd")
    s.boot()
    s.rec_start()
    s.write(bytes(5000))
    annotated = s.interrupt("weather").seq
    s.rec_start("resume")
    s.write(bytes(5000))
    s.voice_annotation(annotated)
    missing = s.interrupt("place_change").seq
    s.rec_start("resume")
    s.annotation_missing(missing)
    unexplained = s.interrupt("battery_low").seq
    s.boot()                                  # the recorder restarted: no annotation now
    s.rec_start()
    s.write(bytes(3000))
    waiting = s.interrupt("overheat").seq     # the chain's newest: may still be annotated
    rep = verify_store(s.root, s.pubkey)
    assert rep.verdict == "OK", rep.reasons
    by_verify = {i["seq"]: i["status"] for i in rep.interruptions}
    root = tmp_path / "arch"
    with _signed_archive(root) as arch:
        arch.register(s.device, s.pubkey)
        arch.add_records(s.device, _rows(s))
    by_report = {i["seq"]: i["status"] for i in report.build_report(root)["interruptions"]}
    assert by_verify == by_report == {annotated: "annotated", missing: "missing",
                                      unexplained: "unexplained", waiting: "waiting"}


# --- archive edits (issue 8): the report trusts the station log, not archive.sqlite -------

def _edited_copy(built, tmp_path, *sql):
    import shutil
    root = tmp_path / "arch"
    shutil.copytree(built[0], root)
    db = sqlite3.connect(root / "archive.sqlite")
    with db:
        db.execute("PRAGMA foreign_keys = OFF")
        for q in sql:
            db.execute(*q)
    db.close()
    return root


def test_backdated_stored_at_does_not_hide_a_late_offload(built, tmp_path):
    f = built[3]
    root = _edited_copy(built, tmp_path, ("UPDATE records SET stored_at = ? WHERE device = ?",
                                          (stored_text(f["off1"]), A)))
    rep = report.build_report(root)
    assert [x["segment"] for x in rep["late_offloads"]] == [f["seg3"]]
    assert rep["late_offloads"][0]["offloaded"] == iso(f["off2"])     # the log's time


def test_deleted_interruption_row_is_named_not_hidden(built, tmp_path):
    f = built[3]
    root = _edited_copy(built, tmp_path, ("DELETE FROM records WHERE device = ? AND seq = ?",
                                          (A, f["int_overheat"])))
    rep = report.build_report(root)
    (u,) = rep["unverified"]
    assert u["device"] == A and u["first_seq"] == f["int_overheat"] + 1
    assert f["int_overheat"] not in _by_seq(rep["interruptions"])
    assert any(p["kind"] == "not_verified" for p in rep["problems"])


def test_deleted_recorder_is_named(built, tmp_path):
    root = _edited_copy(built, tmp_path, ("DELETE FROM records WHERE device = ?", (B,)),
                        ("DELETE FROM devices WHERE id = ?", (B,)))
    rep = report.build_report(root)
    assert rep["devices"] == [A]
    assert [u["device"] for u in rep["unverified"]] == [B]
    assert "missing from archive.sqlite" in rep["unverified"][0]["reason"]
    assert report.exit_code(rep) == 1


def test_signed_station_log_anchors_the_records(tmp_path):
    """With a station key, the log's checkpoint is signed: a record the log holds with its
    hash is only unpacked and chained (the station checked it when it arrived), and an
    edited row still fails."""
    from host_tools.cli import main
    s = Dev(tmp_path / "sd")
    s.boot()
    s.record(INTERRUPTION, {17: "weather"})
    s.record(MARK, {33: "bookmark"})
    root = tmp_path / "arch"
    assert main(["station", "init", "--archive", str(root)]) == 0
    with Archive(root) as arch:
        arch.register(A, s.pubkey)
        arch.add_records(A, _rows(s))
    st, notes, problems = report._station_facts(str(root))
    assert st is not None and st.signed and notes == problems == []
    rep = report.build_report(root)
    assert rep["unverified"] == [] and rep["summary"][A]["verified_through"] == 2
    data = s.by_seq(1).data.replace(b"weather", b"weathex")
    db = sqlite3.connect(root / "archive.sqlite")
    with db:
        db.execute("UPDATE records SET data = ? WHERE device = ? AND seq = 1", (data, A))
    db.close()
    rep = report.build_report(root)
    assert rep["unverified"][0]["first_seq"] == 1


def test_a_station_log_that_does_not_match_its_checkpoint_is_a_problem(tmp_path):
    from host_tools.cli import main
    s = Dev(tmp_path / "sd")
    s.boot()
    s.record(INTERRUPTION, {17: "weather"})
    root = tmp_path / "arch"
    assert main(["station", "init", "--archive", str(root)]) == 0
    with Archive(root) as arch:
        arch.register(A, s.pubkey)
        arch.add_records(A, _rows(s))
    entries = [os.path.join(d, f) for d, _, fs in os.walk(root / "log") for f in fs
               if "entries" in f]
    assert entries, os.listdir(root / "log")
    with open(entries[0], "r+b") as f:          # the newest entry cut off the log
        f.truncate(os.path.getsize(entries[0]) - 3)
    rep = report.build_report(root)
    kinds = [p["kind"] for p in rep["problems"]]
    assert "log_not_verified" in kinds and report.exit_code(rep) == 1
    assert rep["problems"][0]["device"] is None


def test_each_statement_says_how_to_hear_it(full, built, capsys):
    """Every VOICE_ANNOTATION is listed with the exact `sealcam clip` command that writes
    it as a clip (tests/test_clip.py runs such commands on real media)."""
    root, _, _, f = built
    (st,) = full["statements"]
    assert (st["device"], st["seq"], st["refers"], st["reason"]) == \
        (A, f["voice"], f["int_weather"], "weather")
    assert st["span"] == [f["seg2"], 1, 100, 3, 50] and st["duration_s"] == 3.5
    assert st["clip_command"] == "sealcam clip --archive %s --annotation %s:%d --out %s-%d.mkv" \
        % (os.path.abspath(root), A, f["voice"], A, f["voice"])
    rc, out, _ = cli(["--archive", root], capsys)
    assert "STATEMENTS: HOW TO HEAR THEM (1)" in out and st["clip_command"] in out


def test_clips_dir_names_a_statement_it_cannot_cut(built, tmp_path, capsys):
    """--clips DIR: the fixture archive holds records and no media, so no clip can be cut:
    the statement says why, in one line, and nothing half-written is left."""
    root, _, _, f = built
    rc, out, err = cli(["--archive", root, "--clips", str(tmp_path / "c"), "--json"], capsys)
    (st,) = json.loads(out)["statements"]
    assert st["clip_file"] is None and "not offloaded" in st["clip_error"], st
    assert st["clip_command"].endswith("--out %s" % (tmp_path / "c" / ("%s-%d.mkv"
                                                                       % (A, f["voice"]))))
    assert os.listdir(tmp_path / "c") == []


def test_officer_never_seen_is_said_plainly(built, capsys):
    root = built[0]
    rc, out, err = cli(["--archive", root, "--officer", "OFC-9999"], capsys)
    assert rc == 3 and out == ""
    assert "officer OFC-9999 is not in the archive" in err and "no record" in err
    with pytest.raises(report.ReportError):
        report.build_report(root, officer="OFC-9999", device=B)
    # an officer seen, but not on the selected days, is an empty report, not an error
    rep = report.build_report(root, officer="OFC-0077", since="2030-01-01")
    assert rep["interruptions"] == [] and rep["filters"]["officer"] == "OFC-0077"
