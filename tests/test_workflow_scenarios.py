"""The officer's shift on the virtual recorder (SPEC §10), on CPython and on the MicroPython VM.

Each scenario is a script of button presses, sensor readings, power cuts and dock visits
run by sim/hal/simdevice.py on the real firmware. The records it leaves are read back with
cbor2 (independent of the firmware) and checked against what the script did; the card is
verified with `sealcam verify`'s code and a pinned device key. Both runtimes must leave
the same records.
"""
import glob
import io
import os
import zlib

import cbor2
import pytest

from host_tools.verify import NOT_OK, OK, OK_WITH_MISSING_INFO, verify_store
from sim.record import run_job

BOOT, REC_START, CHECKPOINT, SEGMENT, REC_STOP, REFUSAL, RECOVERY, RECEIPT, TIME_SET = range(1, 10)
INTERRUPTION, VOICE_ANNOTATION, ANNOTATION_MISSING, MARK, ASSIGN, SELF_CHECK, RELEASE = range(10, 17)
F_NO_OFFICER, F_DRIFT = 0x01, 0x08
RUNTIMES = ["cpython", "micropython"]
SLOW = dict(bitrate=200000, heap=4 << 20)   # 25 kB/s and a small heap keep the VM quick
SETTINGS = {"bitrate": 200000, "prerecord_s": 5, "annotation_s": 30, "checkpoint_s": 5}


def chain(sd):
    """Record bodies in seq order (logs by (N, K); a torn tail ends a file)."""
    def key(p):
        b = os.path.basename(p)[:-4]
        n, _, k = b.partition("_")
        return int(n), int(k or 0)
    out = []
    for f in sorted(glob.glob(os.path.join(sd, "rec", "*.log")), key=key):
        data = open(f, "rb").read()
        b = io.BytesIO(data)
        while b.tell() < len(data):
            try:
                item = cbor2.load(b)
            except Exception:
                break
            out.append(cbor2.loads(item.value[2]))
    assert [r[1] for r in out] == list(range(len(out))), "the chain has gaps or forks"
    return out


def of(recs, t):
    return [r for r in recs if r[0] == t]


def run(tmp_path, runtime, steps, settings=SETTINGS, **job):
    sd = str(tmp_path / runtime)
    # each recorder its own key: the station refuses one key under two ids (SPEC §9.1)
    seed = 7 if "device" not in job else 7 + zlib.crc32(job["device"].encode()) % 1000
    j = dict({"sd_host": sd, "flash_host": sd + ".flash", "steps": steps,
              "settings": settings, "seed": seed}, **SLOW)
    j.update(job)
    sm = run_job(j, runtime)
    assert sm.get("cut") is None, sm
    return sd, sm, chain(sd)


def verdict(sd, sm):
    return verify_store(sd, pinned_key=bytes.fromhex(sm["pubkey"]))


# -------------------------------------------------------------------------- scenarios

POWER_LOSS = [
    ["dock", {"time": "true", "assign": ["P-1001", "Unit 3"], "check": True}],
    ["run", 6],                           # standby: the pre-record ring fills
    ["press", "record"], ["run", 4],
    ["press", "notice"], ["press", "mark"], ["hold", "mark", 2],
    ["run", 8],
    ["powercut"],                         # the battery is pulled mid-recording
    ["run", 2],
    ["press", "record"], ["run", 3],      # resume: the officer is prompted
    ["hold", "voice", 3],                 # ... and states the reason
    ["run", 2], ["press", "record"],
]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_power_loss_then_resume_demands_an_annotation(tmp_path, runtime):
    sd, sm, recs = run(tmp_path, runtime, POWER_LOSS)
    # the cut segment was recovered at boot, and the loss is an interruption pointing at it
    (rcv,) = of(recs, RECOVERY)
    (intr,) = of(recs, INTERRUPTION)
    assert intr[17] == "power_loss" and intr[31] == rcv[1] and intr[10] == rcv[10]
    assert recs[intr[1] - 1][0] == BOOT and intr[1] > rcv[1]
    # the next start is a resume, and the officer was prompted (three beeps, long vibration)
    starts = of(recs, REC_START)
    assert [s[17] for s in starts] == ["button", "resume"]
    resume = starts[1]
    assert resume[1] > intr[1]
    prompt = [e for e in sm["ui"] if e[1] == "beep" and e[2] == 3]
    assert prompt and any(e[1] == "vibrate" and e[2] >= 800 for e in sm["ui"])
    # the voice annotation points at the interruption and at the bytes spoken over
    (ann,) = of(recs, VOICE_ANNOTATION)
    assert ann[31] == intr[1] and ann[35] == 3000
    seg, c0, o0, c1, o1 = ann[32]
    chunk = resume[12]
    assert seg == resume[1]
    start, end = c0 * chunk + o0, c1 * chunk + o1
    # the span is whole Matroska blocks (or starts a Cluster): 3 s of frames at 10 frames/s
    # and of audio in 100 ms blocks (3200 bytes), give or take the tick it was seen in
    spoken = open(os.path.join(sd, resume[11]), "rb").read()[start:end]
    assert spoken[:1] == b"\xa3" or spoken[:4] == b"\x1f\x43\xb6\x75", spoken[:8]
    assert 29 <= spoken.count(b" frame=") <= 31
    assert 29 <= spoken.count(b"\xa3\x10\x00\x0c\x84\x82") <= 31   # SimpleBlock, track 2
    (close,) = [r for r in of(recs, SEGMENT) if r[10] == seg]
    assert end <= close[13]
    assert not of(recs, ANNOTATION_MISSING) and sm["waiting"] == []
    # marks, with where they were made in the first segment
    marks = of(recs, MARK)
    assert [m[33] for m in marks] == ["notice_given", "bookmark", "important"]
    assert marks[0][42] is True and all(m[34][0] == starts[0][1] for m in marks)
    assert any(e[1] == "say" and e[2] == "notice" for e in sm["ui"])
    # pre-record: the first segment starts with the standby seconds before the press
    assert 4500 <= starts[0][41] <= 5000
    media = open(os.path.join(sd, starts[0][11]), "rb").read(2000)
    rtc0 = int(media.split(b"rtc=")[1].split(b"\xff")[0].rstrip(b"\x00"))
    assert rtc0 <= starts[0][4] - 4500
    # shift assignment: every record after ASSIGN carries the officer and unit
    (asg,) = of(recs, ASSIGN)
    for r in recs[asg[1]:]:
        assert r[7] == "P-1001" and r[30] == "Unit 3" and not r.get(9, 0) & F_NO_OFFICER, r[1]
    assert recs[0][7] is None and recs[0][9] & F_NO_OFFICER
    # the card verifies; the cut tail was sealed at boot, so: OK with missing info
    rep = verdict(sd, sm)
    assert rep.verdict in (OK, OK_WITH_MISSING_INFO), rep.errors


UNANNOTATED = [
    ["press", "record"], ["run", 3],
    ["hold", "record", 2],                 # choose a reason: weather ...
    ["press", "mark"],                     # ... place_change
    ["press", "record"],                   # confirm: INTERRUPTION place_change
    ["run", 1], ["press", "record"],       # resume, but say nothing
    ["run", 32], ["press", "record"],      # annotation_s (30) passes
    ["run", 1], ["press", "record"], ["run", 2],
    ["hold", "record", 2], ["run", 11],    # chooses, then lets the menu time out
    ["battery", 3], ["run", 1],            # battery low: stops, never resumed
]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_interruption_left_unannotated(tmp_path, runtime):
    sd, sm, recs = run(tmp_path, runtime, UNANNOTATED)
    intr = of(recs, INTERRUPTION)
    assert [i[17] for i in intr] == ["place_change", "battery_low"]
    (miss,) = of(recs, ANNOTATION_MISSING)
    assert miss[31] == intr[0][1] and 30000 <= miss[35] <= 30400
    assert not of(recs, VOICE_ANNOTATION)
    # the battery interruption waits (no resume), the timed-out menu interrupted nothing
    assert sm["waiting"] == [intr[1][1]]
    stops = of(recs, REC_STOP)
    assert [s[17] for s in stops] == ["interrupted", "button", "interrupted"]
    rep = verdict(sd, sm)
    assert rep.verdict in (OK, OK_WITH_MISSING_INFO), rep.errors


STORAGE_FULL = [
    ["press", "record"], ["run", 120],    # 25 kB/s into a 2 MB card
    ["press", "record"], ["run", 1],      # a start on a full card is refused
]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_storage_full_stops_and_deletes_nothing(tmp_path, runtime):
    sd, sm, recs = run(tmp_path, runtime, STORAGE_FULL, capacity=2_000_000)
    (intr,) = of(recs, INTERRUPTION)
    assert intr[17] == "storage_full"
    assert len(of(recs, REC_START)) == 1 and not of(recs, RELEASE)
    assert "STORAGE FULL" in [e[2] for e in sm["ui"] if e[1] == "show"]
    (seg,) = of(recs, SEGMENT)
    assert os.path.getsize(os.path.join(sd, of(recs, REC_START)[0][11])) == seg[13]
    rep = verdict(sd, sm)
    assert rep.verdict == OK, rep.errors


RELEASE_STEPS = [       # 25 kB/s of video and 32 kB/s of audio
    ["press", "record"], ["run", 13], ["press", "record"],   # segment A (~750 kB)
    ["press", "record"], ["run", 13], ["press", "record"],   # segment B
    ["dock", {"receipt": True}],                             # the station holds A and B
    ["press", "record"], ["run", 13], ["press", "record"],   # C: not covered
    ["press", "record"], ["run", 30],                        # D fills the card
]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_release_only_what_a_receipt_covers(tmp_path, runtime):
    settings = dict(SETTINGS, low_water=400_000, prerecord_s=0)
    sd, sm, recs = run(tmp_path, runtime, RELEASE_STEPS, settings, capacity=2_600_000)
    (rcpt,) = of(recs, RECEIPT)
    rel = of(recs, RELEASE)
    starts = [s[1] for s in of(recs, REC_START)]
    a, b, c = starts[:3]
    assert [r[10] for r in rel] == [a, b][:len(rel)] and rel, rel   # oldest first
    for r in rel:
        assert r[1] > rcpt[1] and r[27] == rcpt[27]
        assert not os.path.exists(os.path.join(sd, r[11]))
    # what no receipt covers is never released: the card fills and recording stops
    assert os.path.exists(os.path.join(sd, "m/%08d.mkv" % c))
    assert [i[17] for i in of(recs, INTERRUPTION)] == ["storage_full"]
    rep = verdict(sd, sm)
    assert rep.verdict == OK_WITH_MISSING_INFO, rep.errors
    assert any("released" in w for w in rep.reasons + rep.notes), (rep.reasons, rep.notes)
    marks = {g.segment: g.marks for g in rep.segments}
    for r in rel:
        assert marks[r[10]] and set(marks[r[10]]) == {"X"}, marks


def test_no_release_without_a_receipt(tmp_path):
    steps = [s for s in RELEASE_STEPS if s[0] != "dock"]
    settings = dict(SETTINGS, low_water=400_000, prerecord_s=0)
    sd, sm, recs = run(tmp_path, "cpython", steps, settings, capacity=2_600_000)
    assert not of(recs, RELEASE)
    assert [i[17] for i in of(recs, INTERRUPTION)] == ["storage_full"]
    assert verdict(sd, sm).verdict == OK


DRIFT = [
    ["dock", {"check": True}],                       # never calibrated: NOT_READY
    ["dock", {"time": "true", "check": True}],       # first calibration
    ["run", 7200],                                   # two hours in standby
    ["dock", {"time": "true", "check": True}],       # the station corrects it
    ["run", 7200],
    ["dock", {"check": True}],                       # the estimated error is too large
]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_clock_drift_past_the_limit_is_flagged(tmp_path, runtime):
    settings = dict(SETTINGS, prerecord_s=0, tick_ms=60000)   # standby: a tick a minute
    sd, sm, recs = run(tmp_path, runtime, DRIFT, settings, drift_ppm=200)
    t1, t2 = of(recs, TIME_SET)
    assert 39 not in t1 and not t1.get(9, 0) & F_DRIFT           # nothing to compare yet
    # 200 ppm = 17,280 ms/day, far past the 3,000 ms/day limit
    assert t2[28] - t2[29] == 1440 and t2[40] == 7200000
    assert t2[39] == 17280 and t2[43] == 1440 and t2[9] & F_DRIFT
    checks = of(recs, SELF_CHECK)
    assert [c[36] for c in checks] == [False, True, True, False]
    assert checks[0][37] == ["clock_uncalibrated"] and checks[3][37] == ["clock"]
    # 2 h more at the measured rate (the RTC counts 7,201,440 ms of them)
    assert checks[3][38][3] == 1440 and checks[3][38][5] == 7201440
    assert [r[0] for r in sm["checks"]] == [False, True, True, False]
    assert verdict(sd, sm).verdict == OK


def test_runtimes_leave_the_same_records(tmp_path):
    a = run(tmp_path / "a", "cpython", POWER_LOSS)[2]
    b = run(tmp_path / "b", "micropython", POWER_LOSS)[2]
    assert a == b


# ------------------------------------------------- the same shifts, offloaded and reported

def _offload(sd, arch, device):
    """Dock the card: the virtual recorder (CPython) serves it, `offload` pulls it."""
    from host_tools.offload import offload
    from test_offload import Sim
    sim = Sim(sd, trust=os.path.join(arch, "station.pub"), extra=("--device", device))
    try:
        sm = offload(sim.port, arch, register=True)
    finally:
        sim.stop()
    assert sm.exit_code == 0, sm.errors
    return sm


@pytest.fixture
def arch(tmp_path):
    from host_tools import station
    station.init(tmp_path / "arch")
    return str(tmp_path / "arch")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_report_states_each_scenarios_facts(tmp_path, arch, runtime):
    import time
    from host_tools.report import build_report
    now = int(time.time() * 1000)
    # power loss + annotated resume, captured an hour ago: nothing late, nothing missing
    sd1, _, recs1 = run(tmp_path / "pl", runtime, POWER_LOSS, device="SC-PL0001",
                        rtc_ms=now - 3600_000)
    # the unannotated shift, captured days ago (the simulator's default clock): late
    sd2, _, recs2 = run(tmp_path / "un", runtime, UNANNOTATED, device="SC-UN0001")
    # the drifting clock
    sd3, _, recs3 = run(tmp_path / "dr", runtime, DRIFT, dict(SETTINGS, prerecord_s=0,
                        tick_ms=60000), device="SC-DR0001", drift_ppm=200,
                        rtc_ms=now - 5 * 3600_000)
    for sd, dev in ((sd1, "SC-PL0001"), (sd2, "SC-UN0001"), (sd3, "SC-DR0001")):
        _offload(sd, arch, dev)

    r = build_report(arch, device="SC-PL0001")
    (i,) = r["interruptions"]
    (ann,) = of(recs1, VOICE_ANNOTATION)
    (intr,) = of(recs1, INTERRUPTION)
    assert (i["seq"], i["reason"], i["status"]) == (intr[1], "power_loss", "annotated")
    assert i["annotation"]["seq"] == ann[1] and i["annotation"]["span"] == ann[32]
    seg, c0, o0, c1, o1 = ann[32]
    assert i["annotation"]["span_bytes"] == [c0 * 65536 + o0, c1 * 65536 + o1]
    assert [m["kind"] for m in r["marks"]] == ["notice_given", "bookmark", "important"]
    assert [(s["officer"], s["unit"]) for s in r["shifts"]] == [("P-1001", "Unit 3")]
    assert len(r["recoveries"]) == 1 and r["late_offloads"] == []
    assert r["problems"] == []

    r = build_report(arch, device="SC-UN0001")
    st = {i["reason"]: i["status"] for i in r["interruptions"]}
    assert st == {"place_change": "missing", "battery_low": "unexplained"}
    s = r["summary"]["SC-UN0001"]["interruptions"]
    assert (s["total"], s["annotated"], s["missing"], s["unexplained"]) == (2, 0, 1, 1)
    late = {x["segment"] for x in r["late_offloads"]}
    assert late == {x[1] for x in of(recs2, REC_START)} and \
        all(x["delay_h"] > 24 for x in r["late_offloads"])
    kinds = {p["kind"] for p in r["problems"]}
    assert kinds == {"annotation_missing", "interruption_unexplained", "late_offload"}

    r = build_report(arch, device="SC-DR0001")
    adj = r["clock_adjustments"]
    assert [a["drift_flag"] for a in adj] == [False, True]
    assert adj[1]["drift_ms_per_day"] == 17280 and adj[1]["correction_ms"] == -1440
    assert [c["ready"] for c in r["self_checks"]] == [False, True, True, False]
    assert {p["kind"] for p in r["problems"]} == {"clock_drift"}

    # the CLI: all three devices, JSON, exit 1 for the problems
    import json
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "host_tools.cli", "report", "--archive", arch,
                        "--json"], capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    j = json.loads(p.stdout)
    assert sorted(j["devices"]) == ["SC-DR0001", "SC-PL0001", "SC-UN0001"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_report_of_a_full_card_and_of_releases(tmp_path, arch, runtime):
    """A full card, and a card that frees space after a real offload: `sealcam offload`'s
    custody receipt lets the recorder release what the archive holds, nothing else."""
    import time
    from host_tools.report import build_report
    now = int(time.time() * 1000)
    sd1, _, recs1 = run(tmp_path / "sf", runtime, STORAGE_FULL, device="SC-SF0001",
                        capacity=2_000_000, rtc_ms=now - 3600_000)
    _offload(sd1, arch, "SC-SF0001")
    r = build_report(arch, device="SC-SF0001")
    (i,) = r["interruptions"]
    assert (i["reason"], i["status"], i["seq"]) == ("storage_full", "unexplained",
                                                    of(recs1, INTERRUPTION)[0][1])
    assert r["releases"] == []

    settings = dict(SETTINGS, low_water=400_000, prerecord_s=0)
    first, second = RELEASE_STEPS[:6], RELEASE_STEPS[7:]
    sd2, _, _ = run(tmp_path / "rl", runtime, first, settings, device="SC-RL0001",
                    capacity=2_600_000, rtc_ms=now - 7200_000)
    sm = _offload(sd2, arch, "SC-RL0001")          # the station now holds A and B
    assert sm.receipt["number"] == 1
    sd2b, _, recs2 = run(tmp_path / "rl", runtime, second, settings, device="SC-RL0001",
                         capacity=2_600_000, rtc_ms=now - 3600_000)
    assert sd2b == sd2
    _offload(sd2, arch, "SC-RL0001")
    rel = of(recs2, RELEASE)
    a, b = [x[1] for x in of(recs2, REC_START)][:2]
    assert rel and [x[10] for x in rel] == [a, b][:len(rel)]
    r = build_report(arch, device="SC-RL0001")
    assert [(x["seq"], x["segment"], x["number"]) for x in r["releases"]] == \
        [(x[1], x[10], 1) for x in rel]
    assert {i["reason"] for i in r["interruptions"]} == {"storage_full"}
    # the archive still holds the released media, verified
    from host_tools.verify import verify_store
    rep = verify_store(os.path.join(arch, "devices", "SC-RL0001"), pinned_key=None)
    assert all(set(g.marks) <= {"."} for g in rep.segments), [g.marks for g in rep.segments]
