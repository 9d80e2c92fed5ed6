"""Impersonation (issue 8): a fake recorder on a real pty that replays what any host could
learn of a registered recorder (its id, public key and signed head, even a copy of its
card or a device signature from an earlier session) cannot get anything stored, and the
real recorder is not refused afterwards. The recorder proves it holds its key in every
session (SPEC §8.3); the station checks that proof with the registered key before it
accepts anything.
"""
import os
import sqlite3
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from host_tools import station
from host_tools.archive import Archive
from host_tools.offload import offload
from host_tools.verify import OK, verify_store

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
import fakedev  # noqa: E402
import refwriter as rw  # noqa: E402
from test_offload import DEV, shift  # noqa: E402


@pytest.fixture
def arch(tmp_path):
    station.init(tmp_path / "arch")
    return tmp_path / "arch"


@pytest.fixture
def devs(arch):
    made = []

    def make(store, **kw):
        d = fakedev.FakeDevice(store, trust=[station.station_pub(arch)], **kw).start()
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()


def snapshot(arch):
    """What the archive holds for the device: records, segments, receipts, objects."""
    c = sqlite3.connect(os.path.join(arch, "archive.sqlite"))
    try:
        out = {t: c.execute("SELECT * FROM %s ORDER BY 1, 2" % t).fetchall()
               for t in ("records", "segments", "receipts", "devices")}
    finally:
        c.close()
    out["objects"] = sorted(f for _, _, fs in os.walk(os.path.join(arch, "objects"))
                            for f in fs)
    return out


def real_first(tmp_path, arch, devs):
    """The real recorder: a first offload registers it; then it records more."""
    s = shift(tmp_path / "sd", segments=1)
    d = devs(s)
    sm = offload(d.port, arch, register=True)
    assert sm.exit_code == 0 and sm.verdict == OK, sm.errors
    d.stop()
    s.rec_start()
    s.write(os.urandom(5000))
    s.checkpoint()
    s.close()
    s.rec_stop()
    return s


def forged_store(tmp_path, real):
    """An impostor's card: the same device id, a chain signed by another key (a fork)."""
    f = rw.RefStore(tmp_path / "forged", seed=b"\x66" * 32, device=DEV)
    f.boot()
    f.rec_start()
    f.write(os.urandom(3000))
    f.close()
    f.rec_stop()
    return f


IMPOSTORS = {
    # a copy of the real card, but a proof signed with another key
    "copied-card-own-key": lambda tmp, real: dict(store=real, proof=Ed25519PrivateKey.generate()),
    # a copy of the real card, no proof at all
    "copied-card-no-proof": lambda tmp, real: dict(store=real, proof="none"),
    # a forked chain presented under the real key and head, proof signed with its own key
    "forked-chain-real-key-and-head": lambda tmp, real: dict(
        store=forged_store(tmp, real), present_key=real.pubkey,
        head_override=real.records[-1].data, proof=Ed25519PrivateKey.generate()),
    # 64 random bytes as the proof
    "random-proof": lambda tmp, real: dict(store=real, proof=os.urandom(64)),
}


@pytest.mark.parametrize("kind", sorted(IMPOSTORS))
def test_impostor_stores_nothing_and_the_real_recorder_still_offloads(tmp_path, arch, devs,
                                                                      kind):
    real = real_first(tmp_path, arch, devs)
    before = snapshot(arch)
    kw = IMPOSTORS[kind](tmp_path, real)
    fake = devs(kw.pop("store"), **kw)
    sm = offload(fake.port, arch)
    assert sm.exit_code == 5 and sm.status == "device_not_proven", (sm.exit_code, sm.errors)
    assert "did not prove it holds the registered key of %s" % DEV in sm.errors[0] \
        or "sent no device signature" in sm.errors[0]
    assert fake.ops == [1, 2]                  # nothing asked after AUTH
    assert snapshot(arch) == before            # nothing stored
    fake.stop()
    # the real recorder is not refused afterwards
    d = devs(real)
    sm = offload(d.port, arch)
    assert sm.exit_code == 0 and sm.verdict == OK and sm.receipt, sm.errors
    with Archive(arch) as a:
        assert a.max_seq(DEV) == real.records[-1].seq      # up to its RECEIPT record
        assert verify_store(a.view_dir(DEV), real.pubkey, progress=False).verdict == OK


def test_replayed_device_signature_from_an_earlier_session(tmp_path, arch, devs):
    """A device signature recorded from a real session cannot be replayed: the transcript
    binds both sessions' fresh nonces."""
    real = real_first(tmp_path, arch, devs)
    spy = devs(real)
    sm = offload(spy.port, arch)
    assert sm.exit_code == 0, sm.errors
    captured = spy.auth_sigs[-1]
    spy.stop()
    before = snapshot(arch)
    fake = devs(real, proof=captured)
    sm = offload(fake.port, arch)
    assert sm.exit_code == 5 and sm.status == "device_not_proven", sm.errors
    assert snapshot(arch) == before


def test_impostor_cli_one_line_exit_5(tmp_path, arch, devs):
    real = real_first(tmp_path, arch, devs)
    fake = devs(real, proof=Ed25519PrivateKey.generate())
    p = subprocess.run([sys.executable, "-m", "host_tools.cli", "offload", "--port", fake.port,
                        "--archive", arch, "--timeout", "1"], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    assert p.returncode == 5, p.stdout + p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("sealcam offload: ") \
        and "did not prove" in lines[0] and "Traceback" not in p.stderr, p.stderr


def test_status_and_checkout_refuse_an_impostor(tmp_path, arch, devs):
    real = real_first(tmp_path, arch, devs)
    fake = devs(real, proof=Ed25519PrivateKey.generate())
    for verb in (["status"], ["checkout", "--officer", "PC-1", "--unit", "u1"]):
        p = subprocess.run([sys.executable, "-m", "host_tools.cli", verb[0], "--port",
                            fake.port, "--archive", arch, "--timeout", "1"] + verb[1:],
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert p.returncode == 5 and "did not prove" in p.stderr, p.stdout + p.stderr
        assert p.stdout == "" if verb[0] == "status" else \
            "RESULT   DEVICE_NOT_PROVEN" in p.stdout and "officer" not in p.stdout
    assert 12 not in fake.ops and 11 not in fake.ops     # no STATUS, no ASSIGN


def test_register_refuses_a_small_order_key(tmp_path, arch, devs):
    """`--register` trusts the key a new recorder proves, but never a small-order key
    (under it one 64-byte "signature" verifies for every message)."""
    s = shift(tmp_path / "sd", segments=1)
    identity = b"\x01" + bytes(31)                # the neutral point: order 1
    d = devs(s, present_key=identity, proof=b"\x01" + bytes(63))
    sm = offload(d.port, arch, register=True)
    assert sm.exit_code == 1 and "cannot be registered" in sm.errors[0], sm.errors
    with Archive(arch) as a:
        assert a.device(DEV) is None and a.max_seq(DEV) is None


def test_impostor_of_the_real_firmware(tmp_path, arch, devs):
    """The real recorder (`sim serve`, the firmware) is offloaded; a fake recorder replays
    its id, key and signed head with a forked chain of its own and cannot get anything
    stored; the real recorder then offloads what it recorded since, OK."""
    from test_offload import HAVE_SIM, Sim
    if not HAVE_SIM:
        pytest.skip("no virtual recorder")
    sd = tmp_path / "card"
    sim = Sim(sd, trust=arch / "station.pub", record=3,
              extra=["--device", DEV, "--bitrate", "400000"])
    try:
        sm = offload(sim.port, arch, register=True)
        assert sm.exit_code == 0 and sm.verdict == OK, sm.errors
    finally:
        assert sim.stop() == 0
    with Archive(arch) as a:
        real_pub = a.device(DEV)["pubkey"]
        head = a.record(DEV, sm.head_seq)["data"]
    before = snapshot(arch)
    forged = rw.RefStore(tmp_path / "forged", seed=b"\x67" * 32, device=DEV)
    forged.boot()
    for _ in range(sm.head_seq + 3):
        forged.refusal()
    fake = devs(forged, present_key=real_pub, head_override=head,
                proof=Ed25519PrivateKey.generate())
    bad = offload(fake.port, arch)
    assert bad.exit_code == 5 and bad.status == "device_not_proven", bad.errors
    assert snapshot(arch) == before
    fake.stop()
    sim = Sim(sd, trust=arch / "station.pub", record=2,
              extra=["--device", DEV, "--bitrate", "400000"])
    try:
        sm2 = offload(sim.port, arch)
        assert sm2.exit_code == 0 and sm2.verdict == OK and sm2.receipt, sm2.errors
        assert sm2.head_seq > sm.head_seq and sm2.records_pulled > 0
    finally:
        assert sim.stop() == 0
