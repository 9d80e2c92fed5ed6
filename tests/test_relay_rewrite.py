"""A keyless relay on the cable rewrites the station's requests after AUTH (SPEC §8.3):
frames are not authenticated one by one, so the real firmware (`python -m sim.serve`) obeys
the rewritten ASSIGN or TIME_SET. The station reads back the signed record each answer names
(host_tools/readback.py) and says so: exit 1, one line naming the tampering; a checkout
whose ASSIGN reads back wrong releases the recorder. The firmware itself refuses a TIME_SET
outside 2020..2100, so the 2^63-1 route that poisoned every later offload is closed.
(Models attack2 r2_relay_rewrite_assign.py and r3_relay_timeset_dos.py.)"""
import binascii
import os
import select
import threading
import tty

import cbor2
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
from test_dock import register, sealcam, status  # noqa: E402
from test_offload import HAVE_SIM, Sim  # noqa: E402

from host_tools import station  # noqa: E402
from host_tools.link import ASSIGN, TIME_SET  # noqa: E402

pytestmark = pytest.mark.skipif(not HAVE_SIM, reason="no virtual recorder")

MAGIC = b"\xc5\x1a"


def _frame(obj):
    p = cbor2.dumps(obj, canonical=True)
    hdr = len(p).to_bytes(4, "big")
    return MAGIC + hdr + p + (binascii.crc32(hdr + p) & 0xFFFFFFFF).to_bytes(4, "big")


class RewritingRelay:
    """Sits between a station (``port``, a new pty) and the recorder's pty; passes every
    byte, except that each station request ``rewrite(req)`` changes (returns a new request
    map, or None to pass it as it is) is sent re-framed with a valid CRC. Holds no key."""

    def __init__(self, device_port, rewrite):
        self.rewrite, self.log = rewrite, []
        self.dev = os.open(device_port, os.O_RDWR | os.O_NOCTTY)
        self.m, self.s = os.openpty()
        tty.setraw(self.s)
        self.port = os.ttyname(self.s)
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self):
        buf = bytearray()
        while not self.stop_ev.is_set():
            r, _, _ = select.select([self.m, self.dev], [], [], 0.05)
            try:
                if self.dev in r:
                    os.write(self.m, os.read(self.dev, 65536))
                if self.m in r:
                    buf += os.read(self.m, 65536)
            except OSError:
                return
            while True:
                i = buf.find(MAGIC)
                if i < 0 or len(buf) - i < 6:
                    break
                n = int.from_bytes(buf[i + 2:i + 6], "big")
                if len(buf) - i < 10 + n:
                    break
                raw = bytes(buf[i:i + 10 + n])
                del buf[:i + 10 + n]
                try:
                    req = cbor2.loads(raw[6:6 + n])
                    new = self.rewrite(req) if isinstance(req, dict) else None
                except Exception:
                    new = None
                if new is not None:
                    self.log.append((req.get(1), req.get(2), new.get(2)))
                    raw = _frame(new)
                os.write(self.dev, raw)

    def close(self):
        if self.stop_ev.is_set():
            return
        self.stop_ev.set()
        self.t.join(5)
        for fd in (self.m, self.s, self.dev):
            os.close(fd)


def rewrite_assign(req):
    """ASSIGN of an officer -> OFC-FRAMED / UNIT-X (a release passes)."""
    if req.get(1) == ASSIGN and isinstance(req.get(2), dict) and req[2].get(1):
        return {**req, 2: {1: "OFC-FRAMED", 2: "UNIT-X"}}
    return None


def rewrite_time(to):
    def rw(req):
        if req.get(1) == TIME_SET and isinstance(req.get(2), dict):
            return {**req, 2: {1: to(req[2][1])}}
        return None
    return rw


@pytest.fixture
def docked(tmp_path):
    arch = tmp_path / "arch"
    station.init(arch)
    card = tmp_path / "card"
    sim = Sim(card, trust=arch / "station.pub", record=2, extra=["--officer", "OFC-PREV"])
    register(arch, card)
    relays = []

    def relay(rewrite):
        r = RewritingRelay(sim.port, rewrite)
        relays.append(r)
        return r
    try:
        yield arch, sim, relay
    finally:
        for r in relays:
            r.close()
        assert sim.stop() == 0


def _one_line(p, *needles):
    lines = p.stderr.strip().splitlines()
    assert "Traceback" not in p.stderr
    assert any(all(n in ln for n in needles) for ln in lines), p.stderr
    return lines


def _checkout_honest(via, arch):
    """`sealcam checkout` of OFC-HONEST with UNIT-1 through via (a relay or the sim)."""
    return sealcam("checkout", "--port", via.port, "--archive", arch, "--officer",
                   "OFC-HONEST", "--unit", "UNIT-1")


def test_checkout_through_a_relay_that_rewrites_assign_fails_and_releases(docked):
    arch, sim, relay = docked
    r = relay(rewrite_assign)
    p = _checkout_honest(r, arch)
    assert p.returncode == 1, p.stdout + p.stderr
    _one_line(p, "signed ASSIGN record", "says officer OFC-FRAMED, not OFC-HONEST",
              "the link was tampered with (a relay?)", "the recorder was released")
    assert "ASSIGNED" not in p.stdout
    assert [x[0] for x in r.log] == [ASSIGN]          # the relay did rewrite it
    r.close()
    st = status(sim.port, arch)                        # directly, no relay
    assert st[2] is None and st[3] is None             # released, not framed


def test_dock_through_a_relay_that_rewrites_the_release(docked):
    arch, sim, relay = docked
    r = relay(lambda req: {**req, 2: {1: "OFC-FRAMED", 2: "UNIT-X"}}
              if req.get(1) == ASSIGN else None)
    p = sealcam("dock", "--port", r.port, "--archive", arch, "--no-offload", "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    _one_line(p, "says officer OFC-FRAMED, not none", "tampered with")
    import json
    j = json.loads(p.stdout)
    assert j["status"] == "tampered" and j["exit_code"] == 1 and j["assign"] is None
    p = sealcam("dock", "--port", r.port, "--archive", arch, "--no-offload")
    assert p.returncode == 1 and "released" not in p.stdout, p.stdout
    assert "RESULT   TAMPERED" in p.stdout


def test_checkout_through_a_relay_that_moves_the_clock_a_day(docked):
    arch, sim, relay = docked
    relay_ = relay(rewrite_time(lambda t: t + 86_400_000))
    p = _checkout_honest(relay_, arch)
    assert p.returncode == 1, p.stdout + p.stderr
    _one_line(p, "signed TIME_SET record", "not the", "tampered with")
    relay_.close()
    st = status(sim.port, arch)
    assert st[2] == "OFC-PREV"                         # nothing assigned after it


@pytest.mark.parametrize("bad", [(1 << 63) - 1, (1 << 63) + 1_700_000_000_000, 0])
def test_time_set_out_of_range_through_a_relay_is_refused_by_the_firmware(docked, bad):
    arch, sim, relay = docked
    r = relay(rewrite_time(lambda t: bad))
    p = _checkout_honest(r, arch)
    assert p.returncode == 1, p.stdout + p.stderr
    _one_line(p, "refused TIME_SET", "out of range", "tampered with")
    r.close()
    st = status(sim.port, arch)
    rtc = st[6][0]
    assert 1577836800000 <= rtc < 4102444800000        # the clock was not moved
    # and the recorder still offloads (the 2^63-1 rtc used to poison every later offload)
    p = sealcam("offload", "--port", sim.port, "--archive", arch, "--no-progress")
    assert p.returncode == 0, p.stdout + p.stderr


def test_checkout_through_an_honest_relay_succeeds(docked):
    arch, sim, relay = docked
    r = relay(lambda req: None)
    p = _checkout_honest(r, arch)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ASSIGNED" in p.stdout and p.stderr == ""
    r.close()
    assert status(sim.port, arch)[2] == "OFC-HONEST"


# --- answers rewritten: the relay changes what the recorder answers ----------------------------
# (a FakeDevice over the refwriter store stands in for recorder + relay: its records are
# real and signed by the device key, its answers are whatever the relay makes of them)

def _fake(tmp_path, arch_dir, answer):
    """A registered FakeDevice whose TIME_SET, ASSIGN and CHECK write their signed records
    as the firmware does; ``answer(op, res, s)`` may change the answer the station sees."""
    import fakedev
    from test_dock import recording_hook
    from test_offload import shift
    from host_tools.archive import Archive
    station.init(arch_dir)
    s = shift(tmp_path / "sd", segments=1)
    with Archive(arch_dir) as a:
        a.register(s.device, s.pubkey)
    inner = recording_hook(s, arch_dir)

    def hook(dev, req):
        out = inner(dev, req)
        if out is not None:
            out = dict(out)
            out[2] = answer(req.get(1), dict(out[2]), s)
        return out
    return s, fakedev.FakeDevice(s, trust=[station.station_pub(arch_dir)], hook=hook).start()


def _checkout(d, arch_dir):
    return sealcam("checkout", "--port", d.port, "--archive", arch_dir, "--officer", "PC-1",
                   "--unit", "u1", "--timeout", "1")


def test_an_old_honest_assign_record_named_in_the_answer_is_refused(tmp_path):
    """The relay framed the officer, and answers with the seq of an earlier, honest ASSIGN
    of PC-1 (from before this session's TIME_SET): it is signed and says PC-1, but it is
    old."""
    from host_tools import keys
    arch_dir = tmp_path / "arch"
    old = {}

    def answer(op, res, s):
        if op == 11:
            return {1: old["seq"]}
        return res
    s, d = _fake(tmp_path, arch_dir, answer)
    fp = keys.fingerprint(station.station_pub(arch_dir))
    old["seq"] = s.assign("PC-1", "u1", station=fp).seq     # an earlier check-out
    s.assign(None, None, station=fp)
    try:
        p = _checkout(d, arch_dir)
    finally:
        d.stop()
    assert p.returncode == 1, p.stdout + p.stderr
    _one_line(p, "ASSIGN record (seq %d) is older than this session's TIME_SET" % old["seq"],
              "tampered with")


def test_a_ready_answer_over_a_not_ready_record_is_refused(tmp_path):
    """The relay turns CHECK's NOT_READY into READY (so the station would assign): the
    signed SELF_CHECK record says NOT_READY; nothing is assigned."""
    arch_dir = tmp_path / "arch"
    sent = []

    def answer(op, res, s):
        if op == 13:
            rec = s.self_check(False, ["battery"], {1: 10})
            return {1: True, 2: [], 3: {1: 90}, 4: rec.seq}
        if op == 11:
            sent.append(op)
        return res
    s, d = _fake(tmp_path, arch_dir, answer)
    try:
        p = _checkout(d, arch_dir)
    finally:
        d.stop()
    assert p.returncode == 1, p.stdout + p.stderr
    _one_line(p, "signed SELF_CHECK record", "says NOT_READY (battery), not the answered "
              "READY", "tampered with")
    assert sent == []                                       # no ASSIGN was sent


def test_a_time_set_answer_naming_another_record_is_refused(tmp_path):
    """TIME_SET's answer names a record that is not a TIME_SET (or no record at all)."""
    for bad in (0, 10 ** 6, -1):
        arch_dir = tmp_path / ("arch%d" % bad)

        def answer(op, res, s):
            if op == 7:
                res[3] = bad
            return res
        s, d = _fake(tmp_path / str(bad), arch_dir, answer)
        try:
            p = _checkout(d, arch_dir)
        finally:
            d.stop()
        assert p.returncode == 1, p.stdout + p.stderr
        _one_line(p, "tampered with")
        assert "ASSIGNED" not in p.stdout
