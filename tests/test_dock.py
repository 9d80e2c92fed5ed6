"""`sealcam dock` and `sealcam checkout` end to end over a real pty, against the virtual
recorder (`python -m sim.serve`, the real firmware): check-out assigns an officer, the dock
cycle offloads, calibrates the clock, releases the officer and runs the self-check; a
recorder whose clock drifts is flagged; a NOT_READY recorder is not assigned unless
forced. Drift rates themselves are measured exactly in tests/firmware/test_link.py (a
simulated clock); here, over seconds of real time, only the flag of a gross drift is
deterministic.
"""
import json
import os
import sqlite3
import subprocess
import sys
import time

import cbor2
import pytest

from host_tools import station
from host_tools.link import Client
from host_tools.verify import OK

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
from test_offload import HAVE_SIM, Sim, _flash  # noqa: E402

pytestmark = pytest.mark.skipif(not HAVE_SIM, reason="no virtual recorder")

DEV = "SC-SIM0001"
ASSIGN, SELF_CHECK, TIME_SET = 14, 15, 9


def sealcam(verb, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "host_tools.cli", verb] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def run_json(verb, *args, want=None):
    p = sealcam(verb, *args, "--json")
    if want is not None:
        assert p.returncode == want, p.stdout + p.stderr
    return p.returncode, json.loads(p.stdout), p.stderr


@pytest.fixture
def arch(tmp_path):
    station.init(tmp_path / "arch")
    return tmp_path / "arch"


def register(arch, card):
    station.register(arch, DEV, os.path.join(_flash(card), "device.pub"))


def archived(arch, rtype):
    """Bodies of the archive's records of one type, in seq order."""
    c = sqlite3.connect(os.path.join(arch, "archive.sqlite"))
    rows = c.execute("SELECT data FROM records WHERE device = ? AND type = ? ORDER BY seq",
                     (DEV, rtype)).fetchall()
    c.close()
    return [cbor2.loads(cbor2.loads(d).value[2]) for (d,) in rows]


def status(port, arch):
    """STATUS needs AUTH (SPEC §8.2), the recorder's proof checked with the registered key."""
    from host_tools.archive import Archive
    with Client(port) as c, Archive(arch) as a:
        c.hello("test")
        res = c.auth(a.station_key())
        c.check_device_proof(a.device(DEV)["pubkey"], res)
        return c.status()


def test_checkout_then_dock_cycle(tmp_path, arch):
    card = tmp_path / "card"
    sim = Sim(card, trust=arch / "station.pub", record=5)
    try:
        # not registered: neither verb does anything
        rc, j, err = run_json("dock", "--port", sim.port, "--archive", arch, want=4)
        assert j["status"] == "unknown_device" and "unknown device %s" % DEV in err
        assert j["clock"] is None and j["check"] is None
        rc, j, err = run_json("checkout", "--port", sim.port, "--archive", arch, "--officer",
                              "PC-4711", "--unit", "unit-7", want=4)
        assert not j["assigned"] and "a technician registers it first" in err
        register(arch, card)

        # the first dock: offload + receipt, the first calibration (no drift yet), release,
        # READY
        rc, j, err = run_json("dock", "--port", sim.port, "--archive", arch, want=0)
        assert j["status"] == "ok" and j["errors"] == []
        assert j["offload"]["verdict"] == OK and j["offload"]["receipt"]["number"] == 1
        # the last pass archived what the cycle wrote, under receipt 2
        fo = j["final_offload"]
        assert fo["verdict"] == OK and fo["receipt"]["number"] == 2
        assert fo["receipt"]["covered"] == j["check"]["seq"]
        ck = j["clock"]
        assert ck["drift_ms_per_day"] is None and ck["since_ms"] is None
        assert ck["drift_flagged"] is False
        assert ck["correction_ms"] == ck["new"] - ck["old"] and abs(ck["correction_ms"]) < 60000
        assert abs(ck["new"] - time.time() * 1000) < 60000
        assert j["officer_before"] is None and j["state"] == "standby"
        assert j["assign"]["officer"] is None and j["assign"]["seq"] == ck["seq"] + 1
        ch = j["check"]
        assert ch["ready"] is True and ch["reasons"] == [] and ch["seq"] == ck["seq"] + 2
        assert ch["facts"]["battery_percent"] == 87 and ch["facts"]["clock_error_ms"] == 0
        st = status(sim.port, arch)
        assert st[4] == {1: True, 2: [], 3: st[4][3], 4: ch["seq"]}

        # check-out: calibrated again, READY, assigned
        rc, j, err = run_json("checkout", "--port", sim.port, "--archive", arch, "--officer",
                              "PC-4711", "--unit", "unit-7", want=0)
        assert j["status"] == "assigned" and j["assigned"] and not j["forced"]
        assert j["check"]["ready"] is True
        assert j["assign"] == {"officer": "PC-4711", "unit": "unit-7",
                               "seq": j["check"]["seq"] + 1}
        # a second calibration seconds after the first: too soon to measure a drift (the
        # link's latency would pass for one); the correction is summed for later
        assert j["clock"]["drift_ms_per_day"] is None and not j["clock"]["drift_flagged"]
        st = status(sim.port, arch)
        assert (st[1], st[2], st[3]) == ("standby", "PC-4711", "unit-7")
        assign_seq = j["assign"]["seq"]

        # the text output of checkout, once more (the same officer)
        p = sealcam("checkout", "--port", sim.port, "--archive", arch, "--officer", "PC-4711",
                    "--unit", "unit-7")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "READY" in p.stdout and "PC-4711 (unit-7) assigned" in p.stdout

        # the dock cycle at check-in: the officer is released
        time.sleep(1)
        rc, j, err = run_json("dock", "--port", sim.port, "--archive", arch)
        assert j["offload"]["verdict"] == OK and j["offload"]["receipt"]["number"] == 3
        assert j["final_offload"]["receipt"]["number"] == 4
        assert (j["officer_before"], j["unit_before"]) == ("PC-4711", "unit-7")
        assert j["assign"]["officer"] is None
        ck = j["clock"]
        assert ck["drift_ms_per_day"] is None and not ck["drift_flagged"]
        assert j["check"]["ready"] is True
        assert rc == 0 and j["status"] == "ok", (rc, j)
        st = status(sim.port, arch)
        assert (st[2], st[3]) == (None, None)

        # the archive holds the ASSIGN record of the check-out, with the officer
        assigns = archived(arch, ASSIGN)
        assert [(b[1], b[7], b.get(30)) for b in assigns] == [
            (assigns[0][1], None, None), (assign_seq, "PC-4711", "unit-7"),
            (assigns[2][1], "PC-4711", "unit-7"), (j["assign"]["seq"], None, None)]
        # records after it carry the officer (the TIME_SETs of the second check-out and of
        # the dock); the last dock's TIME_SET, ASSIGN null and SELF_CHECK are archived too
        ts = archived(arch, TIME_SET)
        assert len(ts) == 4 and ts[-1][7] == "PC-4711" and ts[-1][30] == "unit-7"
        assert ts[-1][1] == j["clock"]["seq"]
        assert ts[0][7] is None and not any(39 in t for t in ts)   # all within an hour
        assert [b[1] for b in archived(arch, SELF_CHECK)][-1] == j["check"]["seq"]
        assert len(archived(arch, SELF_CHECK)) == 4
        p = sealcam("dock", "--port", sim.port, "--archive", arch, "--no-offload")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "released" in p.stdout and "RESULT" in p.stdout and "VERDICT" not in p.stdout
    finally:
        assert sim.stop() == 0


def test_drifting_clock_is_flagged(tmp_path, arch):
    card = tmp_path / "card"
    # 20 % fast: over a few seconds far beyond 3,000 ms/day, whatever the link's latency
    # (measured over seconds here, not the default hour)
    sim = Sim(card, trust=arch / "station.pub", record=3,
              extra=["--drift-ppm", "200000", "--setting", "drift_min_s=1"])
    try:
        register(arch, card)
        rc, j, err = run_json("checkout", "--port", sim.port, "--archive", arch, "--officer",
                              "PC-1", "--unit", "u", want=0)
        assert j["clock"]["drift_ms_per_day"] is None and not j["clock"]["drift_flagged"]
        time.sleep(2)
        rc, j, err = run_json("dock", "--port", sim.port, "--archive", arch, "--no-offload",
                              want=1)
        ck = j["clock"]
        assert j["status"] == "drift_flagged" and ck["drift_flagged"] is True
        assert j["offload"] is None
        assert ck["since_ms"] > 2000
        assert ck["correction_ms"] < -300                      # the recorder was fast
        assert 10_000_000 < ck["drift_ms_per_day"] < 25_000_000, ck   # ~17,280,000
        assert "drifts" in err and "flagged DRIFT" in err
        assert j["check"]["ready"] is True        # just calibrated: no clock error yet
        assert j["officer_before"] == "PC-1" and j["assign"]["officer"] is None
        p = sealcam("dock", "--port", sim.port, "--archive", arch, "--no-offload")
        assert "drift" in p.stdout and "RESULT" in p.stdout
    finally:
        assert sim.stop() == 0
    # the flagged TIME_SET is on the card
    from host_tools.verify import verify_store
    rep = verify_store(str(card), None)
    flagged = [t for t in rep.time_sets if t.get("drift") is not None and
               abs(t["drift"]) > 3000]
    assert flagged, rep.time_sets


def test_not_ready_is_not_assigned_unless_forced(tmp_path, arch):
    card = tmp_path / "card"
    sim = Sim(card, trust=arch / "station.pub", record=3, extra=["--battery", "20"])
    try:
        register(arch, card)
        p = sealcam("checkout", "--port", sim.port, "--archive", arch, "--officer", "PC-2",
                    "--unit", "u2")
        assert p.returncode == 2, p.stdout + p.stderr
        assert "NOT_READY" in p.stdout and "not assigned" in p.stderr and "battery" in p.stderr
        assert status(sim.port, arch)[2] is None
        rc, j, err = run_json("checkout", "--port", sim.port, "--archive", arch, "--officer",
                              "PC-2", "--unit", "u2", "--force", want=0)
        assert j["assigned"] and j["forced"] and j["check"]["reasons"] == ["battery"]
        assert "--force" in err
        assert status(sim.port, arch)[2] == "PC-2"
        rc, j, err = run_json("dock", "--port", sim.port, "--archive", arch)
        assert (rc, j["status"]) == (2, "not_ready"), j
        assert j["check"]["reasons"] == ["battery"]
        assert j["offload"]["verdict"] == OK and j["assign"]["officer"] is None
        assert "NOT_READY" in err and "battery" in err
        # officer ids are checked before anything is sent
        p = sealcam("checkout", "--port", sim.port, "--archive", arch, "--officer", "x" * 65,
                    "--unit", "u")
        assert p.returncode != 0 and "64" in p.stderr
    finally:
        assert sim.stop() == 0


def test_untrusted_station_exit_5(tmp_path, arch):
    card = tmp_path / "card"
    sim = Sim(card, trust=None, record=2)
    try:
        register(arch, card)
        rc, j, err = run_json("checkout", "--port", sim.port, "--archive", arch, "--officer",
                              "PC-3", "--unit", "u", want=5)
        assert "does not trust this station" in err and not j["assigned"]
        rc, j, err = run_json("dock", "--port", sim.port, "--archive", arch, "--no-offload",
                              want=5)
        assert j["clock"] is None
        rc, j, err = run_json("dock", "--port", sim.port, "--archive", arch, want=5)
        assert j["offload"]["status"] == "auth_failed" and j["clock"] is None
    finally:
        assert sim.stop() == 0


def test_micropython_runtime(tmp_path, arch):
    t0 = time.monotonic()
    card = tmp_path / "card"
    sim = Sim(card, trust=arch / "station.pub", record=3, runtime="micropython")
    try:
        register(arch, card)
        rc, j, err = run_json("checkout", "--port", sim.port, "--archive", arch, "--officer",
                              "PC-9", "--unit", "u9", want=0)
        assert j["assigned"] and j["check"]["ready"]
        rc, j, err = run_json("dock", "--port", sim.port, "--archive", arch)
        assert rc in (0, 1) and rc == (1 if j["clock"]["drift_flagged"] else 0), (rc, j, err)
        assert j["offload"]["verdict"] == OK and j["officer_before"] == "PC-9"
        assert j["check"]["ready"] is True
    finally:
        assert sim.stop() == 0
    # the check-out's ASSIGN and the dock's release, archived by the dock's last pass
    assert [(b[7], b.get(30)) for b in archived(arch, ASSIGN)] == [("PC-9", "u9"), (None, None)]
    assert time.monotonic() - t0 < 90


def test_status_shows_officer_check_and_waiting_interruptions(tmp_path, arch):
    from sim.record import run_job
    card = tmp_path / "card"
    # a recording cut by a power loss: at the next boot its interruption waits
    sm = run_job({"sd_host": str(card), "flash_host": _flash(card), "cut_at": 60,
                  "steps": [["start"], ["run", 30], ["stop"]], "bitrate": 200000,
                  "settings": {"prerecord_s": 0}, "device": DEV,
                  "rtc_ms": int(time.time() * 1000) - 60000})
    assert sm["cut"]
    sim = Sim(card, trust=arch / "station.pub")
    try:
        # STATUS needs AUTH: an unknown recorder tells nothing
        p = sealcam("status", "--port", sim.port, "--archive", arch)
        assert p.returncode == 4 and "unknown device %s" % DEV in p.stderr, p.stdout + p.stderr
        assert p.stdout == ""
        register(arch, card)
        p = sealcam("status", "--port", sim.port, "--archive", arch)
        assert p.returncode == 2, p.stdout + p.stderr
        assert "wait for the officer's voice annotation" in p.stdout and "unassigned" in p.stdout
        rc, j, err = run_json("checkout", "--port", sim.port, "--archive", arch, "--officer",
                              "PC-5", "--unit", "u5", want=0)
        rc, st, err = run_json("status", "--port", sim.port, "--archive", arch, want=2)
        assert (st["device"], st["state"], st["officer"], st["unit"]) == (DEV, "standby",
                                                                          "PC-5", "u5")
        assert st["last_check"]["ready"] is True and st["last_check"]["seq"] == j["check"]["seq"]
        (w,) = st["waiting_interruptions"]
        assert isinstance(w, int) and st["battery_percent"] == 87
    finally:
        assert sim.stop() == 0


def recording_hook(s, arch, officer_of=None):
    """A FakeDevice hook that answers TIME_SET, ASSIGN and CHECK as the firmware does:
    each writes its signed record into the refwriter store ``s`` (which the FakeDevice
    serves to GET) and the answer names it. ``officer_of(officer)``: the officer the
    recorder actually records (a rewritten request), default the one asked for."""
    from host_tools import keys
    fp = keys.fingerprint(station.station_pub(arch))

    def hook(dev, req):
        op, args = req.get(1), req.get(2) or {}
        if not dev.authed or op not in (7, 11, 13):
            return None
        if op == 7:
            rec = s.time_set(args[1])
            body = cbor2.loads(cbor2.loads(rec.data).value[2])
            res = {1: body[28], 2: body[29], 3: rec.seq, 4: None, 5: None, 6: False}
        elif op == 11:
            who = args.get(1) if officer_of is None else officer_of(args.get(1))
            rec = s.assign(who, args.get(2) if who is not None else None, station=fp)
            res = {1: rec.seq}
        else:
            rec = s.self_check(True, [], {1: 80})
            res = {1: True, 2: [], 3: {1: 80}, 4: rec.seq}
        return {0: req[0], 1: 0, 2: res}
    return hook


def test_dock_renews_a_session_the_recorder_ended(tmp_path, arch):
    """The recorder ends the offload's session (its idle timeout, SPEC §8.3) before the
    dock's STATUS: the station authenticates again and the cycle goes on."""
    import fakedev
    from host_tools.dock import dock
    from test_offload import shift
    s = shift(tmp_path / "sd", segments=1)
    hook = recording_hook(s, arch)

    from host_tools.archive import Archive
    with Archive(arch) as a:
        a.register(s.device, s.pubkey)
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)], hook=hook,
                           expire_before={12}).start()
    try:
        r = dock(d.port, arch)
        assert r.exit_code == 0 and r.status == "ok", r.errors
        i = d.ops.index(12)
        assert d.ops[i:i + 4] == [12, 1, 2, 12]
    finally:
        d.stop()


@pytest.mark.parametrize("mode", ["waiting_bignum", "storage_bignum", "waiting_negative",
                                  "waiting_many", "json"])
def test_status_malformed_answer_is_exit_3(tmp_path, arch, mode):
    """A recorder that proves its key but answers STATUS (or AUTH) with a bignum, a negative
    seq or thousands of waiting seqs: one line, exit 3, no traceback,
    nothing printed on stdout (also with --json)."""
    import fakedev
    from test_offload import shift
    s = shift(tmp_path / "sd", segments=1)
    big = 10 ** 400
    waiting = {"waiting_bignum": [big], "json": [big], "waiting_negative": [-3],
               "waiting_many": list(range(5000))}.get(mode)

    def hook(dev, req):
        if req.get(1) == 12 and dev.authed and waiting is not None:
            return {0: req[0], 1: 0, 2: {1: "standby", 2: "OFC", 3: None, 4: None,
                                         5: waiting, 6: [1_700_000_000_000, 1000]}}
        return None

    from host_tools.archive import Archive
    with Archive(arch) as a:
        a.register(s.device, s.pubkey)
    kw = {"capacity": (big, big)} if mode == "storage_bignum" else {}
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)], hook=hook, **kw).start()
    try:
        p = sealcam("status", "--port", d.port, "--archive", arch, "--timeout", "1",
                    *(["--json"] if mode == "json" else []))
    finally:
        d.stop()
    assert p.returncode == 3, p.stdout + p.stderr
    assert p.stdout == "" and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "answer is malformed" in lines[0], p.stderr
    assert s.device in lines[0]


def test_status_largest_int64_storage_is_printed(tmp_path, arch):
    """Storage 2^63-1 bytes (within the protocol's bounds): printed, exit 0."""
    import fakedev
    from test_offload import shift
    s = shift(tmp_path / "sd", segments=1)
    from host_tools.archive import Archive
    with Archive(arch) as a:
        a.register(s.device, s.pubkey)
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)],
                           capacity=((1 << 63) - 1, (1 << 63) - 1)).start()
    try:
        p = sealcam("status", "--port", d.port, "--archive", arch, "--timeout", "1")
    finally:
        d.stop()
    assert p.returncode in (0, 2), p.stdout + p.stderr
    assert "storage  9223372036854.7 MB free of 9223372036854.7 MB" in p.stdout, p.stdout
    assert "%d min of recording at 8 Mbit/s" % (((1 << 63) - 1) // 1_000_000 // 60) in p.stdout


@pytest.mark.parametrize("name", ["PC\x1b[2J", "PC\x07", "PC\u009b1m"])
def test_checkout_refuses_control_characters_in_a_name_before_any_port(tmp_path, name):
    """The recorder refuses an officer id or unit with control characters: the station
    says so as a usage error (exit 3) before it opens a port, with the name escaped."""
    p = sealcam("checkout", "--port", str(tmp_path / "no-port"), "--archive",
                str(tmp_path / "arch"), "--officer", name, "--unit", "u")
    assert p.returncode == 3, p.stderr
    assert "control characters" in p.stderr and "\x1b" not in p.stderr \
        and "\x07" not in p.stderr and "\u009b" not in p.stderr
