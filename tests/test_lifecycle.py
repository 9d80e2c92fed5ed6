"""The device lifecycle at the station (SPEC §9.1, §11.1): revoke, rekey, `station devices`,
the events in the signed station log, replayed by `sealcam verify ARCHIVE` and `station
reindex`.

Part 1 runs against tests/fakedev.py (the reference writer behind a real pty); part 2
against the virtual recorder (`python -m sim.serve`, the real firmware) over a real pty.
"""
import json
import os
import sqlite3
import subprocess
import sys

import cbor2
import pytest

from host_tools import keys, station
from host_tools.archive import Archive
from host_tools.archive_verify import verify_archive
from host_tools.offload import offload
from host_tools.tlog.replay import replay

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
import fakedev  # noqa: E402
import refwriter as rw  # noqa: E402

DEV = "SC-00A1B2C3"
SEALCAM = [sys.executable, "-m", "host_tools.cli"]
EXIT_REVOKED = 7


def sealcam(*args, timeout=120):
    return subprocess.run(SEALCAM + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def shift(root, seed=b"\x5e" * 32, segments=1):
    s = rw.RefStore(root, seed=seed)
    s.boot()
    rnd = __import__("random").Random(3)
    for _ in range(segments):
        s.rec_start()
        s.write(rnd.randbytes(150_000))
        s.checkpoint()
        s.close()
    s.rec_stop()
    return s


@pytest.fixture
def arch(tmp_path):
    station.init(tmp_path / "arch")
    return tmp_path / "arch"


@pytest.fixture
def devs(arch):
    started = []

    def make(store):
        d = fakedev.FakeDevice(store, trust=[station.station_pub(arch)]).start()
        started.append(d)
        return d
    yield make
    for d in started:
        d.stop()


def log_entries(arch):
    with Archive(arch, readonly=True) as a:
        return [e for _, _, e in a.log().entries(0, a.log().size)]


# --- part 1: the fake recorder -------------------------------------------------------------

def test_revoked_recorder_offload_goes_to_quarantine(tmp_path, arch, devs):
    s = shift(tmp_path / "sd")
    d = devs(s)
    sm = offload(d.port, arch, register=keys.fingerprint(s.pubkey))
    assert sm.exit_code == 0 and sm.receipt is not None, sm.errors
    with Archive(arch) as a:
        held = a.max_seq(DEV)
        receipts = len(a.receipts(DEV))
    s.rec_start()
    s.write(b"\x01" * 20_000)
    s.checkpoint()
    s.close()
    r = sealcam("station", "revoke", "--archive", arch, "--device", DEV, "--reason",
                "lost on patrol", "--by", "Sgt Zhang")
    assert r.returncode == 0 and "REVOKED" in r.stdout, r.stderr
    new = len(s.records) - 1 - held
    p = sealcam("offload", "--port", d.port, "--archive", arch, "--json")
    assert p.returncode == EXIT_REVOKED, p.stdout + p.stderr
    j = json.loads(p.stdout)
    assert j["status"] == "revoked" and j["receipt"] is None and j["verdict"] == "NOT_OK"
    assert "REVOKED" in j["errors"][0] and "Sgt Zhang" in j["errors"][0]
    assert j["fingerprint"] == keys.fingerprint(s.pubkey)      # it proved who it is
    # everything it sent is in quarantine, none of it in its history, no new receipt
    with Archive(arch) as a:
        assert a.max_seq(DEV) == held and len(a.receipts(DEV)) == receipts
        q = [x for x in a.quarantines() if x["id"] == j["quarantine"]]
        assert q and q[0]["reason"] == "revoked recorder" and q[0]["records"] == new
    blob = open(arch / "quarantine" / j["quarantine"] / "records.log", "rb").read()
    assert blob == b"".join(r.data for r in s.records[held + 1:])
    # the recorder holds no RECEIPT for this session
    assert rw.decode_record(s.records[-1].data)[0] != 8
    # the log holds the revocation; verify and reindex agree
    ev = [e for e in log_entries(arch) if e["type"] == "device_revoked"]
    assert ev == [{"type": "device_revoked", "at": ev[0]["at"], "device": DEV,
                   "reason": "lost on patrol", "by": "Sgt Zhang"}]
    assert verify_archive(arch)["verdict"] == "OK"
    # dock, checkout and status refuse it as well (exit 7), nothing assigned
    st = sealcam("status", "--port", d.port, "--archive", arch)
    assert st.returncode == EXIT_REVOKED and "REVOKED" in st.stderr, st.stdout + st.stderr
    # revoking twice is refused
    r2 = sealcam("station", "revoke", "--archive", arch, "--device", DEV, "--reason", "x",
                 "--by", "y")
    assert r2.returncode == 3 and "already revoked" in r2.stderr


def test_rekey_keeps_both_histories_verifiable(tmp_path, arch, devs):
    old = shift(tmp_path / "old", segments=2)
    d = devs(old)
    assert offload(d.port, arch, register=keys.fingerprint(old.pubkey)).exit_code == 0
    with Archive(arch) as a:
        head = a.device(DEV)["last_head_seq"]
    # the repaired recorder: a new key, a new chain from seq 0 on an emptied card
    new = shift(tmp_path / "new", seed=b"\x22" * 32)
    r = sealcam("station", "rekey", "--archive", arch, "--device", DEV, "--key",
                new.pubkey.hex(), "--by", "Tech Li")
    assert r.returncode == 0, r.stderr
    assert "%s.key1" % DEV in r.stdout and "seq %d" % head in r.stdout
    d2 = devs(new)
    sm = offload(d2.port, arch)
    assert sm.exit_code == 0 and sm.verdict == "OK" and sm.receipt is not None, sm.errors
    # the old key no longer authenticates (exit 5), and nothing is stored
    p = sealcam("offload", "--port", d.port, "--archive", arch)
    assert p.returncode == 5 and "RETIRED key" in p.stderr, p.stderr
    # both histories verify, each with its own key
    res = verify_archive(arch)
    assert res["verdict"] == "OK", res["reasons"]
    byid = {e["device"]: e for e in res["devices"]}
    assert byid[DEV]["fingerprint"] == keys.fingerprint(new.pubkey)
    assert byid[DEV + ".key1"]["fingerprint"] == keys.fingerprint(old.pubkey)
    assert byid[DEV + ".key1"]["last_head_seq"] == head
    assert byid[DEV + ".key1"]["verdict"] == "OK" and byid[DEV]["verdict"] == "OK"
    e = [x for x in log_entries(arch) if x["type"] == "device_rekeyed"][0]
    assert e["old_key"] == old.pubkey and e["new_key"] == new.pubkey and e["by"] == "Tech Li"
    assert e["retired_seq"] == head and e["retired_as"] == DEV + ".key1"
    # station devices: one recorder, its retired key and where its history is
    j = json.loads(sealcam("station", "devices", "--archive", arch, "--json").stdout)
    assert [x["id"] for x in j["devices"]] == [DEV]
    rk = j["devices"][0]["retired_keys"]
    assert rk[0]["fingerprint"] == keys.fingerprint(old.pubkey) and rk[0]["history"] == \
        DEV + ".key1" and rk[0]["retired_at_seq"] == head and rk[0]["by"] == "Tech Li"
    # reindex rebuilds the same (from the log), and verify agrees
    station.reindex(arch)
    res = verify_archive(arch)
    assert res["verdict"] == "OK", res["reasons"]
    with Archive(arch) as a:
        assert a.device(DEV)["pubkey"] == new.pubkey
        assert a.device(DEV + ".key1")["pubkey"] == old.pubkey
        assert a.device_status(DEV + ".key1") == "retired"
    # the retired key is never taken back; the same key twice is refused
    for k in (old.pubkey, new.pubkey):
        r = sealcam("station", "rekey", "--archive", arch, "--device", DEV, "--key", k.hex(),
                    "--by", "x")
        assert r.returncode == 3, r.stdout


def test_register_refuses_another_key_naming_rekey(arch):
    k1 = rw.raw_pub(rw.key_from_seed(b"\x01" * 32))
    k2 = rw.raw_pub(rw.key_from_seed(b"\x02" * 32))
    assert sealcam("station", "register", "--archive", arch, "--device", DEV, "--key",
                   k1.hex()).returncode == 0
    r = sealcam("station", "register", "--archive", arch, "--device", DEV, "--key", k2.hex())
    assert r.returncode == 3 and "station rekey" in r.stderr, r.stderr
    r = sealcam("station", "register", "--archive", arch, "--device", DEV + ".key1", "--key",
                k2.hex())
    assert r.returncode == 3 and "retired key" in r.stderr


def test_offload_register_needs_the_label_fingerprint(tmp_path, arch, devs):
    s = shift(tmp_path / "sd")
    d = devs(s)
    p = sealcam("offload", "--port", d.port, "--archive", arch, "--register")
    assert p.returncode == 3 and "--fingerprint" in p.stderr and "provision" in p.stderr
    wrong = keys.fingerprint(b"\x07" * 32)
    p = sealcam("offload", "--port", d.port, "--archive", arch, "--register", "--fingerprint",
                wrong)
    assert p.returncode == 5 and "not %s" % wrong in p.stderr, p.stderr
    with Archive(arch) as a:
        assert a.device(DEV) is None
    fp = keys.fingerprint(s.pubkey).replace(":", "").upper()      # as typed off a label
    p = sealcam("offload", "--port", d.port, "--archive", arch, "--register", "--fingerprint",
                fp, "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["registered"]


def test_lifecycle_rows_are_checked_against_the_log(tmp_path, arch, devs):
    s = shift(tmp_path / "sd")
    d = devs(s)
    assert offload(d.port, arch, register=keys.fingerprint(s.pubkey)).exit_code == 0
    with Archive(arch) as a:
        assert a.firmware_seen(DEV, b"\xab" * 32)
        assert not a.firmware_seen(DEV, b"\xab" * 32)      # the same firmware: no new event
        a.revoke(DEV, "stolen", "Sgt Zhang")
    j = json.loads(sealcam("station", "devices", "--archive", arch, "--json").stdout)
    dv = j["devices"][0]
    assert dv["status"] == "revoked" and dv["firmware"] == "ab" * 32
    assert dv["revoked"]["by"] == "Sgt Zhang"
    assert dv["last_head"]["seq"] == len(s.records) - 2     # the head before its RECEIPT
    assert dv["last_offload"]["status"] == "ok" and dv["battery"] == "unknown"
    txt = sealcam("station", "devices", "--archive", arch).stdout
    assert "REVOKED" in txt and "battery      unknown" in txt
    assert verify_archive(arch)["verdict"] == "OK"
    # a database row alone is never the truth: un-revoking in SQLite is found
    db = sqlite3.connect(arch / "archive.sqlite")
    db.execute("DELETE FROM device_events WHERE type = 'device_revoked'")
    db.commit()
    db.close()
    res = verify_archive(arch)
    assert res["verdict"] == "NOT_OK"
    assert any("device_revoked" in r and "missing" in r for r in res["reasons"]), res["reasons"]
    # and an edited row too
    station.reindex(arch)
    assert verify_archive(arch)["verdict"] == "OK"
    db = sqlite3.connect(arch / "archive.sqlite")
    e = cbor2.dumps({"type": "device_revoked", "at": "x", "device": DEV, "reason": "r",
                     "by": "b"}, canonical=True)
    db.execute("UPDATE device_events SET entry = ? WHERE type = 'device_revoked'", (e,))
    db.commit()
    db.close()
    assert any("differs" in r for r in verify_archive(arch)["reasons"])
    # the log's state is what reindex rebuilds: revoked again
    station.reindex(arch)
    with Archive(arch) as a:
        assert a.device_status(DEV) == "revoked"
        st = replay(a.log())
        assert st.status(DEV) == "revoked" and not st.problems


# --- part 2: the virtual recorder (real firmware, real pty) ------------------------------

HAVE_SIM = os.path.exists(os.path.join(ROOT, "sim", "serve.py"))


@pytest.mark.skipif(not HAVE_SIM, reason="sim/serve.py is not there")
def test_sim_revoked_recorder_is_quarantined(tmp_path, arch):
    from test_offload import Sim, _device_pub
    sd = tmp_path / "card"
    pub = arch / "station.pub"
    sim = Sim(sd, trust=pub, record=6)
    try:
        fp = keys.fingerprint(_device_pub(sd))
        p = sealcam("offload", "--port", sim.port, "--archive", arch, "--register",
                    "--fingerprint", fp, "--json")
        assert p.returncode == 0, p.stdout + p.stderr
        dev = json.loads(p.stdout)["device"]
    finally:
        assert sim.stop() == 0
    with Archive(arch) as a:
        held = a.max_seq(dev)
    r = sealcam("station", "revoke", "--archive", arch, "--device", dev, "--reason", "stolen",
                "--by", "Sgt Zhang")
    assert r.returncode == 0, r.stderr
    sim = Sim(sd, trust=pub, record=4)          # it goes on recording, then is docked
    try:
        p = sealcam("offload", "--port", sim.port, "--archive", arch, "--json")
        assert p.returncode == EXIT_REVOKED, p.stdout + p.stderr
        j = json.loads(p.stdout)
        assert "REVOKED" in j["errors"][0] and j["receipt"] is None and j["quarantine"]
        c = sealcam("checkout", "--port", sim.port, "--archive", arch, "--officer", "PC-0042",
                    "--unit", "U2")
        assert c.returncode == EXIT_REVOKED, c.stdout + c.stderr
    finally:
        assert sim.stop() == 0
    with Archive(arch) as a:
        assert a.max_seq(dev) == held
        q = [x for x in a.quarantines() if x["id"] == j["quarantine"]][0]
        assert q["records"] > 0 and q["device"] == dev
    res = verify_archive(arch)
    assert res["verdict"] == "OK", res["reasons"]


def test_lifecycle_entries_match_the_cddl(tmp_path, arch):
    pycddl = pytest.importorskip("pycddl")
    schema = open(os.path.join(ROOT, "protocol", "schema.cddl")).read()
    v = pycddl.Schema("root = log-entry\n" + schema)
    k1 = rw.raw_pub(rw.key_from_seed(b"\x01" * 32))
    k2 = rw.raw_pub(rw.key_from_seed(b"\x02" * 32))
    with Archive(arch) as a:
        a.register(DEV, k1, technician="Wang Li")
        a.firmware_seen(DEV, b"\x05" * 32)
        a.revoke(DEV, "lost", "Sgt Zhang")
        a.rekey(DEV, k2, "Tech Li")
        types = set()
        for _, raw, e in a.log().entries():
            v.validate_cbor(raw)
            types.add(e["type"])
    assert types == {"device_provisioned", "firmware_seen", "device_revoked", "device_rekeyed"}
    with pytest.raises(Exception):
        v.validate_cbor(cbor2.dumps({"type": "device_revoked", "at": "x", "device": DEV,
                                     "reason": "lost"}, canonical=True))


def test_verify_text_names_a_retired_key(tmp_path, arch, devs):
    old = shift(tmp_path / "old")
    d = devs(old)
    assert offload(d.port, arch, register=keys.fingerprint(old.pubkey)).exit_code == 0
    new = rw.raw_pub(rw.key_from_seed(b"\x33" * 32))
    station.rekey(arch, DEV, new, "Tech Li")
    v = sealcam("verify", arch)
    assert v.returncode == 0, v.stdout
    assert "device %s.key1 (the retired key %s of %s" % (DEV, keys.fingerprint(old.pubkey),
                                                          DEV) in v.stdout
    assert "device %s (registered key %s)" % (DEV, keys.fingerprint(new)) in v.stdout


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "sim", "board.py")),
                    reason="the virtual board (sim/board.py) is not there")
def test_virtual_board_provision_revoke_repair_rekey(tmp_path, arch):
    """On the virtual board with stock mpremote, end to end: flash (when `sealcam flash` is
    there; else the firmware copied by sim.board), provision, offload, revoke (quarantined,
    exit 7), a repair (a new main board: empty flash but the firmware, the same card),
    provision --rekey (the new key proven by the technician's session), offload with the
    new key; both histories verify; the station log holds every lifecycle event."""
    import shutil
    from sim import board
    bdir = tmp_path / "board"
    flash = os.path.exists(os.path.join(ROOT, "host_tools", "flash.py"))
    b = board.start(str(bdir), install=not flash)
    try:
        if flash:
            f = sealcam("flash", "--port", b.port, "--board", "virtual", "--json", timeout=600)
            assert f.returncode == 0, f.stdout + f.stderr
        p = sealcam("provision", "--port", b.port, "--archive", arch, "--device-id", DEV,
                    "--technician", "Wang Li", "--label", "-", timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        o = sealcam("offload", "--port", b.port, "--archive", arch, "--json", timeout=300)
        assert o.returncode == 0, o.stdout + o.stderr
        old_fp = json.loads(o.stdout)["fingerprint"]
        r = sealcam("station", "revoke", "--archive", arch, "--device", DEV, "--reason",
                    "reported stolen", "--by", "Sgt Zhang")
        assert r.returncode == 0, r.stderr
        o = sealcam("offload", "--port", b.port, "--archive", arch, "--json", timeout=300)
        assert o.returncode == EXIT_REVOKED, o.stdout + o.stderr
        assert json.loads(o.stdout)["quarantine"]
    finally:
        b.stop()
    with Archive(arch) as a:
        old_head = a.device(DEV)["last_head_seq"]
    # found and repaired: a new main board (its flash holds only the firmware), same card
    for n in os.listdir(bdir / "flash"):
        if not n.endswith((".py", ".mpy")) and n not in ("fw.cbor", "lib"):
            os.unlink(bdir / "flash" / n)
    shutil.rmtree(bdir / "board.json", ignore_errors=True)
    b = board.start(str(bdir))
    try:
        p = sealcam("provision", "--port", b.port, "--archive", arch, "--device-id", DEV,
                    "--technician", "Wang Li", "--label", "-", timeout=300)
        assert p.returncode == 3 and "--rekey" in p.stderr, p.stderr     # registered already
        p = sealcam("provision", "--port", b.port, "--archive", arch, "--device-id", DEV,
                    "--technician", "Wang Li", "--label", "-", "--rekey", "--json",
                    timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        j = json.loads(p.stdout)
        assert j["rekeyed"]["old_fingerprint"] == old_fp and j["fingerprint"] != old_fp
        assert j["rekeyed"]["retired_as"] == DEV + ".key1"
        assert j["rekeyed"]["retired_seq"] == old_head
        o = sealcam("offload", "--port", b.port, "--archive", arch, "--json", timeout=300)
        assert o.returncode == 0, o.stdout + o.stderr
        assert json.loads(o.stdout)["fingerprint"] == j["fingerprint"]
    finally:
        b.stop()
    res = verify_archive(arch)
    assert res["verdict"] == "OK", res["reasons"]
    byid = {e["device"]: e for e in res["devices"]}
    assert byid[DEV + ".key1"]["fingerprint"] == old_fp
    assert byid[DEV]["fingerprint"] == j["fingerprint"] and byid[DEV]["verdict"] == "OK"
    d = json.loads(sealcam("station", "devices", "--archive", arch, "--json").stdout)
    dv = d["devices"][0]
    assert dv["status"] == "active" and dv["retired_keys"][0]["fingerprint"] == old_fp
    assert [e["type"] for e in dv["events"] if e["type"] != "firmware_seen"] == [
        "device_provisioned", "device_revoked", "device_rekeyed"]
    if flash:       # the manifest `sealcam flash` wrote, reported in the proof session
        assert len(dv["firmware"]) == 64
        assert dv["events"][1]["type"] == "firmware_seen"


# --- attack5 findings: the signed log, not the index, says who is revoked ----------------

def _more(s, n=20_000):
    s.rec_start()
    s.write(b"\x01" * n)
    s.checkpoint()
    s.close()
    s.rec_stop()


def test_revocation_hidden_in_the_index_still_quarantines(tmp_path, arch, devs):
    """F1: hiding the device_revoked row in archive.sqlite does not un-revoke: the station
    reads the status from the signed log."""
    s = shift(tmp_path / "sd")
    d = devs(s)
    assert offload(d.port, arch, register=keys.fingerprint(s.pubkey)).exit_code == 0
    with Archive(arch) as a:
        held, nrec = a.max_seq(DEV), len(a.receipts(DEV))
    assert sealcam("station", "revoke", "--archive", arch, "--device", DEV, "--reason",
                   "stolen", "--by", "Sgt Z").returncode == 0
    _more(s)
    db = sqlite3.connect(arch / "archive.sqlite")
    db.execute("UPDATE device_events SET device = 'zz-hidden' WHERE type = 'device_revoked'")
    db.commit()
    sm = offload(d.port, arch)
    db.execute("UPDATE device_events SET device = ? WHERE device = 'zz-hidden'", (DEV,))
    db.commit()
    db.close()
    assert sm.exit_code == EXIT_REVOKED and sm.receipt is None, sm.errors
    with Archive(arch, readonly=True) as a:
        assert a.max_seq(DEV) == held and len(a.receipts(DEV)) == nrec
    assert verify_archive(arch)["verdict"] == "OK"
    # a deleted devices row does not let it be registered afresh either
    db = sqlite3.connect(arch / "archive.sqlite")
    db.execute("DELETE FROM devices WHERE id = ?", (DEV,))
    db.commit()
    db.close()
    sm = offload(d.port, arch, register=keys.fingerprint(s.pubkey))
    assert sm.exit_code != 0 and sm.receipt is None
    assert any("station log" in x for x in sm.errors), sm.errors


def test_replay_flags_history_stored_after_a_revocation(tmp_path, arch, devs):
    """F1: a log holding records/head/receipt entries of a device after its device_revoked
    (and no re-key since) is flagged by replay, so `sealcam verify ARCHIVE` is NOT_OK."""
    from host_tools.archive.common import utcnow
    from host_tools.tlog import events
    s = shift(tmp_path / "sd")
    d = devs(s)
    assert offload(d.port, arch, register=keys.fingerprint(s.pubkey)).exit_code == 0
    with Archive(arch) as a:
        a.revoke(DEV, "stolen", "Sgt Z")
        assert not replay(a.log()).problems
        with a.tx():        # what an offload that ignored the revocation would have logged
            a._log_event(events.head(utcnow(), DEV, 99, b"\x00" * 32))
        a.log().sign()
        probs = replay(a.log()).problems
    assert any("after its device_revoked" in p and DEV in p for p in probs), probs
    assert verify_archive(arch)["verdict"] == "NOT_OK"


def test_revoke_waits_for_an_offload_and_offload_rechecks_the_log(tmp_path, arch, devs,
                                                                  monkeypatch):
    """F6: `station revoke` takes the device lock (refused while an offload runs, saying to
    run it again); an offload sees a revocation logged meanwhile and sends no receipt."""
    from host_tools import offload as OFF
    from host_tools.tlog import events
    s = shift(tmp_path / "sd")
    d = devs(s)
    cls = [c for c in OFF._Offload.__mro__ if "_send_receipt" in c.__dict__][0]
    orig = cls._send_receipt
    seen = {}

    def during(self, dev_id, sk):
        seen["revoke"] = sealcam("station", "revoke", "--archive", arch, "--device", dev_id,
                                 "--reason", "stolen", "--by", "Sgt Z")
        return orig(self, dev_id, sk)
    monkeypatch.setattr(cls, "_send_receipt", during)
    sm = offload(d.port, arch, register=keys.fingerprint(s.pubkey))
    r = seen["revoke"]
    assert r.returncode == 3 and "being offloaded" in r.stderr and "again" in r.stderr, \
        r.stdout + r.stderr
    assert sm.exit_code == 0 and sm.receipt is not None        # not revoked: it went on
    # a revocation that reached the log anyway (a writer that ignored the lock)
    _more(s)
    monkeypatch.setattr(cls, "_send_receipt", orig)
    real = OFF._Offload._commit_and_verify

    def revoke_now(self, *a, **kw):
        from host_tools.archive.common import utcnow
        with Archive(arch) as other:
            with other.tx():
                other._device_event(events.device_revoked(utcnow(), DEV, "stolen", "Sgt Z"))
        return real(self, *a, **kw)
    monkeypatch.setattr(OFF._Offload, "_commit_and_verify", revoke_now)
    with Archive(arch) as a:
        nrec = len(a.receipts(DEV))
    sm = offload(d.port, arch)
    assert sm.exit_code == EXIT_REVOKED and sm.receipt is None, sm.errors
    assert "revoked while this offload ran" in sm.errors[0]
    with Archive(arch) as a:
        assert len(a.receipts(DEV)) == nrec
    types = [e["type"] for e in log_entries(arch)]
    assert "receipt" not in types[types.index("device_revoked"):]


def test_a_key_belongs_to_one_recorder(tmp_path, arch):
    """F2: register and rekey refuse a key another id holds or held; replay flags it."""
    from host_tools.archive.common import utcnow
    from host_tools.tlog import events
    k1, k2, k3 = (rw.raw_pub(rw.key_from_seed(bytes([i]) * 32)) for i in (1, 2, 3))
    A, B = "SC-000000A1", "SC-000000B2"
    assert sealcam("station", "register", "--archive", arch, "--device", A, "--key",
                   k1.hex()).returncode == 0
    r = sealcam("station", "register", "--archive", arch, "--device", B, "--key", k1.hex())
    assert r.returncode == 3 and A in r.stderr and "one" in r.stderr, r.stderr
    assert sealcam("station", "register", "--archive", arch, "--device", B, "--key",
                   k2.hex()).returncode == 0
    r = sealcam("station", "rekey", "--archive", arch, "--device", B, "--key", k1.hex(),
                "--by", "x")
    assert r.returncode == 3 and A in r.stderr, r.stderr
    # a retired key is not taken back under another id either
    assert sealcam("station", "rekey", "--archive", arch, "--device", A, "--key", k3.hex(),
                   "--by", "x").returncode == 0
    r = sealcam("station", "register", "--archive", arch, "--device", "SC-000000C3", "--key",
                k1.hex())
    assert r.returncode == 3 and A in r.stderr, r.stderr
    with Archive(arch) as a:
        assert not replay(a.log()).problems
        with a.tx():        # a log entry that bypassed the check
            a._log_event(events.register(utcnow(), "SC-000000D4", k2))
        a.log().sign()
        probs = replay(a.log()).problems
    assert any("SC-000000D4" in p and B in p for p in probs), probs


def test_lifecycle_type_and_time_columns_are_checked(tmp_path, arch):
    """F9: the device_events type and at columns are compared with the log, not only the
    entry blob."""
    k1 = rw.raw_pub(rw.key_from_seed(b"\x01" * 32))
    assert sealcam("station", "register", "--archive", arch, "--device", DEV, "--key",
                   k1.hex()).returncode == 0
    assert sealcam("station", "revoke", "--archive", arch, "--device", DEV, "--reason", "r",
                   "--by", "b").returncode == 0
    assert not any("device_events" in r for r in verify_archive(arch)["reasons"])
    for col, val in (("type", "firmware_seen"), ("at", "2020-01-01T00:00:00Z")):
        station.reindex(arch)
        db = sqlite3.connect(arch / "archive.sqlite")
        db.execute("UPDATE device_events SET %s = ? WHERE type = 'device_revoked'" % col,
                   (val,))
        db.commit()
        db.close()
        res = verify_archive(arch)
        assert any("differs" in r and col in r
                                                  for r in res["reasons"]), res["reasons"]


def test_firmware_seen_comes_from_the_signed_chain_not_auth_key_15(tmp_path, arch, devs,
                                                                   monkeypatch):
    """F11: AUTH key 15 is outside the device's signature: a relay rewriting it is said
    (and kept in the offload's error), never logged; firmware_seen is the id of the chain's
    last FIRMWARE record, which the recorder signed."""
    from host_tools import link
    s = rw.RefStore(tmp_path / "sd", seed=b"\x5e" * 32)
    s.boot()
    real = b"\x11" * 32
    s.record(18, {45: real, 46: "1.0", 47: 3})          # FIRMWARE, signed by the device
    s.rec_start()
    s.write(b"\x02" * 30_000)
    s.checkpoint()
    s.close()
    s.rec_stop()
    d = devs(s)
    fake = b"\xa5" * 32
    orig = link.Client.auth

    def relayed(self, *a, **k):
        res = orig(self, *a, **k)
        res[15] = fake
        return res
    monkeypatch.setattr(link.Client, "auth", relayed)
    sm = offload(d.port, arch, register=keys.fingerprint(s.pubkey))
    assert sm.exit_code == 0 and sm.receipt is not None, sm.errors
    assert any("not signed" in e and fake.hex()[:16] in e for e in sm.errors), sm.errors
    fw = [e["fw"] for e in log_entries(arch) if e["type"] == "firmware_seen"]
    assert fw == [real]
    j = json.loads(sealcam("station", "devices", "--archive", arch, "--json").stdout)
    assert j["devices"][0]["firmware"] == real.hex()


def test_rekey_does_not_strand_what_the_old_key_signed(tmp_path, arch, devs):
    """F7: records the old key signed after the last offload are kept in quarantine when
    the old key authenticates after a re-keying (exit 5 still), and `station rekey` says
    where the retired history ends and what happens to the rest."""
    old = shift(tmp_path / "old")
    d = devs(old)
    assert offload(d.port, arch, register=keys.fingerprint(old.pubkey)).exit_code == 0
    with Archive(arch) as a:
        held = a.max_seq(DEV)
        head = a.device(DEV)["last_head_seq"]
    _more(old)                      # made after the last offload, signed by the old key
    new = rw.raw_pub(rw.key_from_seed(b"\x22" * 32))
    r = sealcam("station", "rekey", "--archive", arch, "--device", DEV, "--key", new.hex(),
                "--by", "Tech Li")
    assert r.returncode == 0, r.stderr
    assert "WARNING" in r.stderr and "seq %d" % head in r.stderr and "quarantine" in r.stderr
    p = sealcam("offload", "--port", d.port, "--archive", arch, "--json")
    assert p.returncode == 5, p.stdout + p.stderr
    j = json.loads(p.stdout)
    assert "RETIRED key" in j["errors"][0] and j["receipt"] is None and j["quarantine"]
    blob = open(arch / "quarantine" / j["quarantine"] / "records.log", "rb").read()
    assert blob == b"".join(x.data for x in old.records[held + 1:])
    with Archive(arch) as a:
        q = [x for x in a.quarantines() if x["id"] == j["quarantine"]][0]
        assert q["device"] == DEV + ".key1" and q["reason"] == "retired key"
        assert a.max_seq(DEV + ".key1") == held and a.max_seq(DEV) is None
    assert verify_archive(arch)["verdict"] != "NOT_OK"


def test_names_with_c1_or_bidi_controls_are_refused(arch):
    """F8: --by, --reason and --technician refuse C1 controls and bidi overrides (a name
    that reverses or erases a line of `station devices`)."""
    k1 = rw.raw_pub(rw.key_from_seed(b"\x01" * 32))
    assert sealcam("station", "register", "--archive", arch, "--device", DEV, "--key",
                   k1.hex()).returncode == 0
    for by, reason in (("Sgt\x85Zhang", "lost"), ("Sgt Z", "lost\u202e gnaZ"),
                       ("Sgt\u2066Z", "x"), ("Sgt Z", "lost\x9b2K")):
        r = sealcam("station", "revoke", "--archive", arch, "--device", DEV, "--reason",
                    reason, "--by", by)
        assert r.returncode == 3 and "printable" in r.stderr, (by, reason, r.stderr)
        if by != "Sgt Z":
            r = sealcam("station", "rekey", "--archive", arch, "--device", DEV, "--key",
                        rw.raw_pub(rw.key_from_seed(b"\x09" * 32)).hex(), "--by", by)
            assert r.returncode == 3 and "printable" in r.stderr, r.stderr
    p = sealcam("provision", "--port", "/dev/null", "--archive", arch, "--device-id",
                "SC-X1", "--technician", "Wang\u202eLi", "--installed")
    assert p.returncode == 3 and "--technician" in p.stderr
    # a name logged before this rule is printed escaped
    with Archive(arch) as a:
        with a.tx():
            from host_tools.archive.common import utcnow
            from host_tools.tlog import events
            a._device_event(events.device_revoked(utcnow(), DEV, "x\u202ey", "Sgt\x1b[2J"))
        a.log().sign()
    out = sealcam("station", "devices", "--archive", arch).stdout
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b[2J" in out, out
