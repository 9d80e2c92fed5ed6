"""The offline verifier on the officer-workflow records (SPEC §10, record types 10-16, keys
30-42, flag DRIFT, chunk mark X), on stores built by the reference writer: for every check a
passing and a failing case (the failure names the record and the reason); a released
segment's media; and the bodies of the new types (and ops 11-13) against schema.cddl."""
import json
import os
import sys

import cbor2
import pytest

from host_tools.cli import main
from host_tools.verify import NOT_OK, OK, OK_WITH_MISSING_INFO, verify_store

HERE = os.path.dirname(os.path.abspath(__file__))
import refwriter as rw  # noqa: E402
from test_verify import check as _check  # noqa: E402

SCHEMA = open(os.path.join(HERE, "..", "protocol", "schema.cddl")).read()
C = 4096


def media(n, seed=0):
    return bytes((seed + i * 7) & 0xFF for i in range(n))


def verify(s):
    return verify_store(s.root, s.pubkey)          # pinned: origin checked


def check(rep, verdict, seq=None, words=()):
    """test_verify's check; for NOT_OK the first failure's reason also names record seq."""
    _check(rep, verdict, "any" if seq is None else seq, words=words)
    if verdict == NOT_OK and seq is not None:
        assert ("seq %d " % seq) in rep.first_failure["reason"], rep.first_failure


def row(rep, seq):
    return [r for r in rep.records if r.seq == seq][0]


def seg(rep, n):
    return [s for s in rep.segments if s.segment == n][0]


@pytest.fixture
def s(tmp_path):
    """BOOT 0, ASSIGN 1, SELF_CHECK 2, REC_START 3 (open, 10000 bytes written)."""
    st = rw.RefStore(tmp_path / "sd", officer=None)
    st.boot()
    st.assign("OFC-0007", "UNIT-3")
    st.self_check()
    st.rec_start(prerecord=30_000)
    st.write(media(10_000))
    st.checkpoint()
    return st


def shift(s):
    """An interruption, a resume and its voice annotation; returns the INTERRUPTION seq."""
    s.mark("important")
    s.mark("notice_given", phrase=True)
    i = s.interrupt("weather").seq
    s.rec_start("resume")
    s.write(media(5000, 1))
    pressed = s.position()
    s.write(media(9000, 2))
    s.voice_annotation(i, start=pressed, duration=1800)
    s.write(media(1000, 3))
    s.close()
    s.rec_stop()
    return i


# --- a whole shift ------------------------------------------------------------------------

def test_shift_ok_with_report_lists(s, capsys):
    i = shift(s)
    s.time_set(error=40)
    s.assign(None)
    s.self_check(False, ["battery"], {1: 30, 2: 900})
    rep = verify(s)
    check(rep, OK)
    types = {r.type for r in rep.records}
    assert {"ASSIGN", "SELF_CHECK", "MARK", "INTERRUPTION", "VOICE_ANNOTATION",
            "TIME_SET"} <= types
    assert [d["status"] for d in rep.interruptions] == ["annotated"]
    d = rep.interruptions[0]
    assert d["seq"] == i and d["reason"] == "weather" and d["segment"] == 3
    assert d["annotations"] == [i + 4]
    assert [m["kind"] for m in rep.marks] == ["important", "notice_given"]
    assert rep.marks[1]["phrase"] is True and rep.marks[0]["at"][0] == 3
    assert [(a["officer"], a["unit"]) for a in rep.assignments] == \
        [("OFC-0007", "UNIT-3"), (None, None)]
    assert [c["ready"] for c in rep.self_checks] == [True, False]
    assert rep.time_sets[0]["drift"] is None            # first calibration
    assert "explains seq %d" % i in row(rep, i + 4).info
    assert "important at segment 3" in row(rep, 5).info
    json.dumps(rep.to_json())
    assert main(["verify", s.root, "--key", _keyfile(s)]) == 0
    out = capsys.readouterr().out
    assert "interruption seq %d: weather (segment 3); annotated: voice annotation seq" % i in out


def _keyfile(s):
    p = os.path.join(s.root, "..", "device.pub")
    with open(p, "w") as f:
        f.write(s.pubkey.hex() + "\n")
    return p


def test_unit_only_with_an_officer(s):
    s.close()
    s.refusal()
    check(verify(s), OK)
    s.officer, s.unit = None, None
    r = s.record(rw.REFUSAL, {17: "x", 19: "delete", 20: "m", 21: "api", 30: "UNIT-3"})
    check(verify(s), NOT_OK, r.seq, ["unit (key 30)", "without an officer"])


def test_unit_wrong_type(s):
    r = s.record(rw.REFUSAL, {17: "x", 19: "delete", 20: "m", 21: "api", 30: 5})
    check(verify(s), NOT_OK, r.seq, ["key 30 (unit) has the wrong type"])


def test_assign_release_and_failures(tmp_path):
    s = rw.RefStore(tmp_path / "a")
    s.boot()
    s.assign("OFC-1")                     # no unit
    s.assign(None)
    rep = verify(s)
    check(rep, OK)
    assert "released from its officer" in row(rep, 2).info
    r = s.record(rw.ASSIGN, {})          # no station
    check(verify(s), NOT_OK, r.seq, ["ASSIGN body lacks key 24 (station)"])


def test_assign_with_unit_but_no_officer(tmp_path):
    s = rw.RefStore(tmp_path / "a", officer=None)
    s.boot()
    r = s.record(rw.ASSIGN, {24: s.station_fingerprint(), 30: "UNIT-9"})
    check(verify(s), NOT_OK, r.seq, ["ASSIGN", "unit (key 30)", "without an officer"])


def test_records_after_assign_carry_its_officer_else_a_note(s):
    s.close()
    s.refusal()
    assert not [n for n in verify(s).notes if "last ASSIGN" in n]
    s.officer = "SOMEONE-ELSE"
    r = s.refusal()
    rep = verify(s)
    check(rep, OK)
    assert any("seq %d (REFUSAL) carries officer 'SOMEONE-ELSE'" % r.seq in n
               for n in rep.notes), rep.notes


# --- SELF_CHECK -----------------------------------------------------------------------------

def test_self_check_ok_not_ready(s):
    s.close()
    r = s.self_check(False, ["battery", "clock_uncalibrated"], {1: 12, 2: 30, 4: 90_000})
    rep = verify(s)
    check(rep, OK)
    assert row(rep, r.seq).info.startswith("NOT_READY: battery, clock_uncalibrated")


@pytest.mark.parametrize("fields,words", [
    ({36: True, 37: [], 38: {1: True}}, ["key 38 (facts) has the wrong type"]),
    ({36: True, 37: [], 38: {1: 2.5}}, ["key 38 (facts) has the wrong type"]),
    ({36: True, 37: "battery", 38: {}}, ["key 37 (reasons) has the wrong type"]),
    ({36: 1, 37: [], 38: {}}, ["key 36 (ready) has the wrong type"]),
    ({37: [], 38: {}}, ["lacks key 36 (ready)"]),
    ({36: True, 37: ["battery"], 38: {}}, ["READY but gives NOT_READY reasons battery"]),
    ({36: False, 37: [], 38: {}}, ["NOT_READY but gives no reason"]),
])
def test_self_check_failures(s, fields, words):
    r = s.record(rw.SELF_CHECK, fields)
    check(verify(s), NOT_OK, r.seq, ["SELF_CHECK"] + words)


# --- TIME_SET with drift, flag DRIFT ----------------------------------------------------------

def test_time_set_drift_and_flag(s):
    s.close()
    s.time_set(error=0)                      # first calibration: the measurement base
    s.mono += 600_000
    r0 = s.time_set(error=300)               # 10 min later: too soon to measure, summed
    assert 39 not in rw.decode_record(r0.data)
    s.mono += 3_100_000                      # over an hour after the base, 1 s fast in all
    r = s.time_set(error=700)
    b = rw.decode_record(r.data)
    assert b[43] == 1000 and b[9] & rw.DRIFT and b[39] == 1000 * 86_400_000 // b[40]
    assert 3_600_000 <= b[40] < 3_710_000 and 23_300 < b[39] <= 24_000
    s.mono += 3_700_000
    r2 = s.time_set(error=-50)               # 1.2 s/day slow: within the limit, no flag
    assert not rw.decode_record(r2.data).get(9, 0) & rw.DRIFT
    rep = verify(s)
    check(rep, OK)
    assert [t["drift_flag"] for t in rep.time_sets] == [False, False, True, False]
    assert rep.time_sets[2]["drift"] == b[39]
    assert "drift +%d ms/day" % b[39] in row(rep, r.seq).info
    assert "flag DRIFT" in row(rep, r.seq).info
    assert rep.time_sets[3]["drift"] < 0


@pytest.mark.parametrize("fields,words", [
    ({39: 5}, ["key 39 without the rest of drift (39), since (40) and error (43)"]),
    ({40: 5, 43: 1}, ["key 40, key 43 without the rest"]),
    ({39: 5, 40: -1, 43: 1}, ["key 40 (since) has the wrong type"]),
    ({39: "5", 40: 1, 43: 1}, ["key 39 (drift) has the wrong type"]),
    ({39: 999, 40: 3_600_000, 43: 1000}, ["drift 999 ms/day does not match error x "
                                          "86,400,000 / since = 24000.0"]),
    ({39: 0, 40: 0, 43: 0}, ["since = 0"]),
])
def test_time_set_failures(s, fields, words):
    s.close()
    s.time_set()
    r = s.record(rw.TIME_SET, {28: 1_000_000, 29: 999_000, **fields})
    check(verify(s), NOT_OK, r.seq, ["TIME_SET"] + words)


def test_drift_flag_without_measured_drift_is_accepted(s):
    s.close()
    r = s.record(rw.TIME_SET, {28: 5, 29: 6, 9: rw.DRIFT})
    rep = verify(s)
    check(rep, OK)
    assert "flag DRIFT" in row(rep, r.seq).info


# --- REC_START prerecord --------------------------------------------------------------------

def test_prerecord(s):
    s.close()
    check(verify(s), OK)
    assert rw.decode_record(s.by_seq(3).data)[41] == 30_000
    s.rec_start(prerecord=0)
    s.close()
    check(verify(s), OK)
    body = s.body(rw.REC_START, {10: s.seq, 11: "m/x.mkv", 12: C, 17: "button",
                                 23: "video/x-matroska", 41: -1})
    s.append_raw(rw.sign_record(body, s.key), body[1], rw.REC_START)
    check(verify(s), NOT_OK, body[1], ["key 41 (prerecord) has the wrong type"])


# --- MARK -----------------------------------------------------------------------------------

def test_marks_ok(s):
    s.mark("bookmark")
    s.mark("important")
    s.mark("notice_given", phrase=False)
    s.close()
    s.mark("bookmark")                      # not recording: no `at`
    rep = verify(s)
    check(rep, OK)
    assert [m["kind"] for m in rep.marks] == ["bookmark", "important", "notice_given",
                                              "bookmark"]
    assert rep.marks[0]["at"] == [3, 2, 1808] and rep.marks[3]["at"] is None


@pytest.mark.parametrize("kw,words", [
    ({"kind": "urgent"}, ["MARK kind 'urgent' is not one of important, notice_given, bookmark"]),
    ({"kind": "bookmark", "phrase": True}, ["phrase (key 42) on a MARK 'bookmark'"]),
    ({"kind": "bookmark", "at": [3, 99, 0]}, ["at (key 34): byte 405504", "beyond segment 3's "
                                              "signed length of 10000 bytes"]),
    ({"kind": "bookmark", "at": [3, 0, C]}, ["offset 4096 is not inside a chunk of 4096"]),
    ({"kind": "bookmark", "at": [7, 0, 0]}, ["at (key 34) names segment 7, which has no "
                                             "REC_START record before it"]),
    ({"kind": "bookmark", "at": [3, 0]}, ["key 34 (at) has the wrong type"]),
    ({"kind": 3}, ["MARK body key 33 (kind) has the wrong type"]),
])
def test_mark_failures(s, kw, words):
    r = s.mark(**kw)
    s.close()
    check(verify(s), NOT_OK, r.seq, words)


# --- INTERRUPTION ---------------------------------------------------------------------------

@pytest.mark.parametrize("reason", ["battery_low", "storage_full", "device_fault", "overheat",
                                    "weather", "place_change", "other"])
def test_interruption_reasons_ok(s, reason):
    i = s.interrupt(reason)
    rep = verify(s)
    check(rep, OK)
    b = rw.decode_record(i.data)
    assert b[10] == 3 and b[34] == [3, 2, 1808]
    assert rep.interruptions[0]["status"] == "waiting"


def test_power_loss_interruption_ok(s):
    s.power_cut()
    s.boot()
    r = s.power_loss_interruption()
    rep = verify(s)
    check(rep, OK_WITH_MISSING_INFO, words=["recovered after power loss"])
    assert rep.interruptions[0]["refers"] == r.seq - 2          # RECOVERY, BOOT, INTERRUPTION
    assert "recovery seq" in row(rep, r.seq).info


@pytest.mark.parametrize("case,words", [
    ("refers_boot", ["INTERRUPTION refers (key 31) to seq 6, a BOOT, not a RECOVERY"]),
    ("refers_later", ["refers (key 31) to seq 99, which does not come before it"]),
    ("refers_weather", ["refers (key 31) on an INTERRUPTION with reason 'weather'"]),
    ("other_segment", ["INTERRUPTION names segment 0, but the RECOVERY it refers to (seq 5) "
                       "recovered segment 3"]),
    ("no_segment", ["INTERRUPTION segment (key 10) names segment 4, which has no REC_START"]),
    ("at_mismatch", ["at (key 34) is in segment 0, but its segment (key 10) is 3"]),
])
def test_interruption_failures(s, case, words):
    s.power_cut()
    s.boot()                                 # RECOVERY 5, BOOT 6
    kw = {"refers_boot": dict(reason="power_loss", segment=3, refers=6),
          "refers_later": dict(reason="power_loss", segment=3, refers=99),
          "refers_weather": dict(reason="weather", segment=3, refers=5),
          "other_segment": dict(reason="power_loss", segment=0, refers=5),
          "no_segment": dict(reason="power_loss", segment=4),
          "at_mismatch": dict(reason="other", segment=3, at=[0, 0, 0])}[case]
    r = s.interruption(**kw)
    check(verify(s), NOT_OK, r.seq, words)


# --- VOICE_ANNOTATION / ANNOTATION_MISSING ----------------------------------------------------

def test_annotation_missing_ok(s):
    i = s.interrupt("overheat").seq
    s.rec_start("resume")
    s.write(media(100))
    m = s.annotation_missing(i, 120_000)
    s.close()
    rep = verify(s)
    check(rep, OK)
    assert rep.interruptions[0]["status"] == "missing"
    assert rep.interruptions[0]["missing"] == m.seq
    assert "no voice annotation for seq %d (waited 120000 ms)" % i == row(rep, m.seq).info


def test_voice_annotation_for_several_waiting_interruptions(s):
    a = s.interrupt("weather").seq
    s.rec_start("resume")
    s.write(media(10))
    b = s.interrupt("place_change").seq
    s.rec_start("resume")
    p = s.position()
    s.write(media(C * 2 + 5))
    s.voice_annotation(a, start=p)
    s.voice_annotation(b, start=p)
    s.close()
    rep = verify(s)
    check(rep, OK)
    assert [d["status"] for d in rep.interruptions] == ["annotated", "annotated"]


def test_voice_annotation_span_to_the_end_of_a_chunk_ok(s):
    i = s.interrupt().seq
    s.rec_start("resume")
    s.write(media(C))
    r = s.voice_annotation(i, span=[s.seg.seq, 0, 0, 0, C])      # end offset == chunk
    s.close()
    check(verify(s), OK)
    assert r


def _interrupted_and_resumed(s):
    i = s.interrupt("weather").seq
    new = s.rec_start("resume").seq
    s.write(media(3 * C + 100))
    return i, new


@pytest.mark.parametrize("case,words", [
    ("refers_mark", ["VOICE_ANNOTATION refers (key 31) to seq 5, a MARK, not an "
                     "INTERRUPTION"]),
    ("refers_missing", ["VOICE_ANNOTATION refers (key 31) to seq 99, which does not come "
                        "before it"]),
    ("no_segment", ["span (key 32) names segment 4, which has no REC_START record before it"]),
    ("reversed", ["span (key 32) starts after it ends (byte 8192 > byte 4096 of segment"]),
    ("beyond", ["span (key 32) end: byte 40960 (chunk 10 offset 0) lies beyond segment",
                "signed length of 12388 bytes"]),
    ("offset", ["span (key 32) start: offset 5000 is not inside a chunk of 4096 bytes"]),
    ("shape", ["key 32 (span) has the wrong type"]),
    ("no_duration", ["VOICE_ANNOTATION body lacks key 35 (duration)"]),
])
def test_voice_annotation_failures(s, case, words):
    m = s.mark()                                               # seq 5
    i, new = _interrupted_and_resumed(s)
    spans = {"no_segment": [4, 0, 0, 0, 10], "reversed": [new, 2, 0, 1, 0],
             "beyond": [new, 0, 0, 10, 0], "offset": [new, 0, 5000, 1, 0],
             "shape": [new, 0, 0, 1]}
    if case == "no_duration":
        r = s.record(rw.VOICE_ANNOTATION, {31: i, 32: [new, 0, 0, 1, 0]})
    else:
        refers = {"refers_mark": m.seq, "refers_missing": 99}.get(case, i)
        r = s.voice_annotation(refers, span=spans.get(case, [new, 0, 0, 1, 0]))
    s.close()
    check(verify(s), NOT_OK, r.seq, words)


@pytest.mark.parametrize("case,words", [
    ("refers_boot", ["ANNOTATION_MISSING refers (key 31) to seq 0, a BOOT, not an "
                     "INTERRUPTION"]),
    ("refers_gap", ["ANNOTATION_MISSING refers (key 31) to seq 99, which does not come"]),
    ("no_duration", ["ANNOTATION_MISSING body lacks key 35 (duration)"]),
])
def test_annotation_missing_failures(s, case, words):
    i, _ = _interrupted_and_resumed(s)
    if case == "no_duration":
        r = s.record(rw.ANNOTATION_MISSING, {31: i})
    else:
        r = s.annotation_missing({"refers_boot": 0, "refers_gap": 99}[case])
    s.close()
    check(verify(s), NOT_OK, r.seq, words)


def test_waiting_interruption_lost_at_power_cut_is_unexplained(s):
    i, _ = _interrupted_and_resumed(s)
    s.power_cut()
    s.boot()
    rep = verify(s)
    check(rep, OK_WITH_MISSING_INFO, words=["recovered after power loss"])
    assert rep.interruptions[0]["status"] == "unexplained"
    assert any("interruption seq %d (weather) was never explained" % i in n for n in rep.notes)


# --- RELEASE against a custody receipt --------------------------------------------------------

def _closed_and_receipted(s):
    s.write(media(2 * C))
    s.close()                        # SEGMENT 5
    s.rec_stop()
    return s.receipt()               # RECEIPT 7, number 1, covers 0..6


def test_release_removes_media_marks_x(s, capsys):
    _closed_and_receipted(s)
    rel = s.release(3)
    assert not os.path.exists(s.path("m/00000003.mkv"))
    assert not os.path.exists(s.path("m/00000003.idx"))
    rep = verify(s)
    check(rep, OK_WITH_MISSING_INFO, words=["segment 3 released against receipt 1"])
    assert rep.reasons == [r for r in rep.reasons if "released" in r]   # the only reason
    sg = seg(rep, 3)
    assert sg.marks == "X" * 5 and sg.chunks == 5 and sg.file_size is None
    assert sg.verdict == OK_WITH_MISSING_INFO and "released against receipt 1" in sg.reason
    assert rep.releases == [{"seq": rel.seq, "segment": 3, "media": "m/00000003.mkv",
                             "length": 18192, "number": 1, "receipt_seq": rel.seq - 1,
                             "valid": True}]
    assert main(["verify", s.root, "--key", _keyfile(s)]) == 0
    out = capsys.readouterr().out
    assert "XXXXX" in out and "X released against a receipt" in out
    assert main(["verify", s.root, "--key", _keyfile(s), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["segments"][0]["marks"] == "XXXXX" and d["releases"][0]["valid"]


def test_release_of_a_recovered_segment(s):
    s.write(media(100))
    s.power_cut()
    s.boot()                          # RECOVERY 5, BOOT 6
    s.receipt()
    s.release(3)
    rep = verify(s)
    check(rep, OK_WITH_MISSING_INFO, words=["segment 3 released against receipt 1"])
    assert seg(rep, 3).marks == "XXX"
    assert not [r for r in rep.reasons if "recovered after power loss" in r]


def test_released_media_still_present_is_verified(s):
    _closed_and_receipted(s)
    s.release(3, remove=False)        # power cut between RELEASE and removal; or an archive
    rep = verify(s)
    check(rep, OK)
    assert seg(rep, 3).marks == "....."
    assert any("released by seq 8 (RELEASE), but its media is still present" in n
               for n in rep.notes)
    with open(s.path("m/00000003.mkv"), "r+b") as f:
        f.seek(5)
        f.write(b"\xff")
    check(verify(s), NOT_OK, words=["chunk 0 of m/00000003.mkv"])


def test_release_index_left_behind(s):
    _closed_and_receipted(s)
    s.release(3, remove=False)
    os.remove(s.path("m/00000003.mkv"))    # cut between removing the media and the index
    rep = verify(s)
    check(rep, OK_WITH_MISSING_INFO, words=["segment 3 released against receipt 1"])
    assert seg(rep, 3).marks == "XXXXX"


def test_release_twice_is_noted(s):
    _closed_and_receipted(s)
    s.release(3, remove=False)
    s.release(3)
    rep = verify(s)
    check(rep, OK_WITH_MISSING_INFO, words=["segment 3 released against receipt 1"])
    assert any("released again by seq 9" in n for n in rep.notes)


def test_release_before_a_covering_receipt(s):
    s.write(media(2 * C))
    s.close()
    s.rec_stop()
    r = s.release(3, number=1)
    rep = verify(s)
    check(rep, NOT_OK, r.seq, ["RELEASE", "segment 3 released without a covering receipt",
                               "no RECEIPT record numbered 1 before it"])
    assert seg(rep, 3).verdict == NOT_OK and "X" not in seg(rep, 3).marks
    assert any("media file m/00000003.mkv is missing" in x for x in rep.reasons)
    s.receipt()                       # a receipt after the release does not help
    check(verify(s), NOT_OK, r.seq, ["released without a covering receipt"])


def test_release_with_a_receipt_not_covering_the_close(s):
    s.write(media(2 * C))
    rc = s.receipt()                  # covers 0..4: the segment is still open
    s.close()
    s.rec_stop()
    r = s.release(3)
    check(verify(s), NOT_OK, r.seq, [
        "segment 3 released without a covering receipt: receipt 1 (seq %d) covers records "
        "0..4, but the segment is closed by seq 6 (SEGMENT)" % rc.seq])


def test_release_of_an_open_segment(s):
    s.receipt()
    r = s.release(3, remove=False)
    check(verify(s), NOT_OK, r.seq, ["released without a covering receipt: the segment is "
                                     "not closed"])


def test_release_naming_another_receipt_number(s):
    _closed_and_receipted(s)
    r = s.release(3, number=5)
    check(verify(s), NOT_OK, r.seq, ["no RECEIPT record numbered 5 before it"])


@pytest.mark.parametrize("fields,words", [
    ({11: "m/00000000.mkv"}, ["RELEASE media 'm/00000000.mkv' is not segment 3's media"]),
    ({13: 5}, ["RELEASE length 5 is not segment 3's signed length 18192 (seq 5 SEGMENT)"]),
    ({10: 2}, ["RELEASE segment (key 10) names segment 2, which has no REC_START"]),
    ({27: -1}, ["RELEASE body key 27 (number) has the wrong type"]),
])
def test_release_failures(s, fields, words):
    _closed_and_receipted(s)
    r = s.release(3, fields=fields, remove=False)
    check(verify(s), NOT_OK, r.seq, words)


# --- CDDL ---------------------------------------------------------------------------------------

def _rule(pycddl, name):
    return pycddl.Schema("root = %s\n%s" % (name, SCHEMA))


RULES = {rw.INTERRUPTION: "interruption", rw.VOICE_ANNOTATION: "voice-annotation",
         rw.ANNOTATION_MISSING: "annotation-missing", rw.MARK: "mark", rw.ASSIGN: "assign-rec",
         rw.SELF_CHECK: "self-check", rw.RELEASE: "release", rw.TIME_SET: "time-set",
         rw.RECEIPT: "receipt-rec", rw.REC_START: "rec-start"}


def test_new_record_bodies_match_the_cddl(s):
    pycddl = pytest.importorskip("pycddl")
    i = shift(s)
    s.annotation_missing(i)
    s.mark("bookmark")
    s.time_set()
    s.mono += 3_700_000
    s.time_set(error=5000)
    s.receipt()
    s.release(3)
    s.self_check(False, ["storage", "clock"], {1: 90, 2: 10, 3: -1500, 4: 7, 5: 3_600_000})
    s.assign(None)
    s.rec_start()
    s.write(media(100))
    s.power_cut()
    s.boot()
    s.power_loss_interruption()
    check(verify(s), OK_WITH_MISSING_INFO, words=["released against receipt"])
    body_rule, rec_rule = _rule(pycddl, "record-body"), _rule(pycddl, "record")
    payload_rule = _rule(pycddl, "payload-bytes")
    rules = {t: _rule(pycddl, n) for t, n in RULES.items()}
    seen = set()
    for r in s.records:
        rec_rule.validate_cbor(r.data)
        payload = cbor2.loads(r.data).value[2]
        payload_rule.validate_cbor(cbor2.dumps(payload))
        body_rule.validate_cbor(payload)
        if r.type in rules:
            rules[r.type].validate_cbor(payload)
        seen.add(r.type)
    assert set(range(10, 17)) <= seen
    assert any(30 in rw.decode_record(r.data) for r in s.records)
    assert any(41 in rw.decode_record(r.data) for r in s.records)
    assert any(39 in rw.decode_record(r.data) and 43 in rw.decode_record(r.data)
               for r in s.records)
    _rule(pycddl, "head").validate_cbor(open(s.path("head.cbor"), "rb").read())


@pytest.mark.parametrize("body", [
    {0: 13, 33: "urgent"},
    {0: 13, 33: "bookmark", 34: [1, 2]},
    {0: 11, 31: 1, 32: [1, 2, 3, 4], 35: 1},
    {0: 12, 31: 1},
    {0: 15, 36: True, 37: [], 38: {1: "x"}},
    {0: 16, 10: 1, 11: "m", 13: 1},
    {0: 9, 28: 1, 29: 2, 40: -1},
    {0: 14},
    {0: 10},
])
def test_cddl_rejects_bad_workflow_bodies(body):
    pycddl = pytest.importorskip("pycddl")
    full = {1: 1, 2: bytes(32), 3: "SC-1", 4: 1, 5: 1, 6: 1, 7: "O", 8: "fw"}
    full.update(body)
    with pytest.raises(Exception):
        _rule(pycddl, "record-body").validate_cbor(cbor2.dumps(full, canonical=True))


@pytest.mark.parametrize("name,value,ok", [
    ("request", {0: 1, 1: 11, 2: {1: "OFC-1", 2: "UNIT-3"}}, True),
    ("request", {0: 2, 1: 12}, True),
    ("request", {0: 3, 1: 13}, True),
    ("request", {0: 3, 1: 14}, True),         # EXPOSE (§8.8)
    ("request", {0: 3, 1: 15}, False),
    ("assign-args", {1: "OFC-1", 2: "UNIT-3"}, True),
    ("assign-args", {1: None, 2: None}, True),
    ("assign-args", {1: 5, 2: None}, False),
    ("assign-result", {1: 12}, True),
    ("status-result", {1: "standby", 2: None, 3: None, 4: None, 5: [], 6: [1, 2]}, True),
    ("status-result", {1: "choosing", 2: "OFC-1", 3: "U", 5: [4, 9], 6: [1, 2],
                       4: {1: False, 2: ["battery"], 3: {1: 20, 3: -5}, 4: 17}}, True),
    ("status-result", {1: "asleep", 2: None, 3: None, 4: None, 5: [], 6: [1, 2]}, False),
    ("check-result", {1: True, 2: [], 3: {1: 90, 2: 500}, 4: 3}, True),
    ("check-result", {1: True, 2: [], 3: {1: 90}}, False),
    ("time-set-args", {1: 1_700_000_000_000}, True),
    ("time-set-result", {1: 5, 2: 6, 3: 7, 4: None, 5: None, 6: False}, True),
    ("time-set-result", {1: 5, 2: 6, 3: 7, 4: -2400, 5: 86_400_000, 6: False}, True),
    ("time-set-result", {1: 5, 2: 6, 3: 7}, False),
])
def test_cddl_ops_11_to_13_and_time_set_result(name, value, ok):
    pycddl = pytest.importorskip("pycddl")
    rule = _rule(pycddl, name)
    data = cbor2.dumps(value, canonical=True)
    if ok:
        rule.validate_cbor(data)
    else:
        with pytest.raises(Exception):
            rule.validate_cbor(data)
