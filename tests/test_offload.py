"""`sealcam offload` end to end over real ptys.

Part 1 runs against tests/fakedev.py (a fake recorder built on the reference writer, with
fault injection): framing faults, lost receipt answers, resume after a broken link, heads
that went back, damaged media. Part 2 runs against the virtual recorder
(`python -m sim.serve`, the real firmware) on CPython and on the MicroPython VM.
"""
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import cbor2
import pytest

from host_tools import keys, station
from host_tools.archive import Archive
from host_tools.offload import offload
from host_tools.verify import NOT_OK, OK, verify_store

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
import fakedev  # noqa: E402
import refwriter as rw  # noqa: E402

DEV = "SC-00A1B2C3"
SEALCAM = [sys.executable, "-m", "host_tools.cli"]


def sealcam(*args, timeout=120):
    return subprocess.run(SEALCAM + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


# --- helpers -----------------------------------------------------------------------------

def shift(root, segments=3, seconds=4, per_s=200_000, chunk=65536, close=True):
    """A reference store: BOOT, then segments of checkpointed random media."""
    s = rw.RefStore(root, chunk=chunk)
    s.boot()
    rnd = __import__("random").Random(7)
    for k in range(segments):
        s.rec_start()
        for _ in range(seconds):
            s.write(rnd.randbytes(per_s))
            s.checkpoint()
        s.write(rnd.randbytes(1234))
        if close or k < segments - 1:
            s.close()
    if close:
        s.rec_stop()
    return s


@pytest.fixture
def arch(tmp_path):
    station.init(tmp_path / "arch")
    return tmp_path / "arch"


@pytest.fixture
def dev_factory(arch):
    devs = []

    def make(store, trusted=True, **kw):
        trust = [station.station_pub(arch)] if trusted else []
        d = fakedev.FakeDevice(store, trust=trust, **kw).start()
        devs.append(d)
        return d
    yield make
    for d in devs:
        d.stop()


def log_records(root):
    """Every record of a store, in (N, K) log order, as bytes."""
    out = []
    names = sorted(os.listdir(os.path.join(root, "rec")),
                   key=lambda n: tuple(int(x) for x in re.findall(r"\d+", n)))
    for n in names:
        data = open(os.path.join(root, "rec", n), "rb").read()
        import io
        bio = io.BytesIO(data)
        while bio.tell() < len(data):
            start = bio.tell()
            try:
                cbor2.CBORDecoder(bio).decode()
            except Exception:
                break       # a torn tail
            out.append(data[start:bio.tell()])
    return out


def media_files(root):
    d = os.path.join(root, "m")
    return {n: hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(d))} if os.path.isdir(d) else {}


def assert_mirrors(card, view, *, extra_ok=0):
    """The archive view holds the card's records byte for byte (the card may have up to
    ``extra_ok`` newer ones) and every media and index file identically."""
    a, b = log_records(card), log_records(view)
    assert b == a[:len(b)] and len(a) - len(b) <= extra_ok, (len(a), len(b))
    assert media_files(view) == media_files(card)


def db(arch):
    c = sqlite3.connect(os.path.join(arch, "archive.sqlite"))
    c.row_factory = sqlite3.Row
    return c


# --- part 1: against the fake recorder -------------------------------------------------

def test_offload_pulls_verifies_and_receipts(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd")
    d = dev_factory(s)
    sm = offload(d.port, arch, register=True)
    assert sm.exit_code == 0, sm.errors
    assert sm.verdict == OK and sm.store_verdict == OK and sm.registered
    assert sm.records_pulled == len(s.records) - 1 + 1    # + the RECEIPT record it made
    assert sm.media_bytes == sum(os.path.getsize(s.path("m/" + n)) for n in os.listdir(
        s.path("m")) if n.endswith(".mkv"))
    assert sm.segments_completed == 3 and sm.mb_per_s > 0
    r = sm.receipt
    assert r["number"] == 1 and r["covered"] == len(s.records) - 2 and r["seq"] == \
        len(s.records) - 1
    # the device now holds a RECEIPT record for it, and so does the archive
    last = rw.decode_record(s.records[-1].data)
    assert last[0] == 8 and last[25] == r["covered"] and last[27] == 1
    assert last[24] == keys.fingerprint(station.station_pub(arch))
    view = os.path.join(arch, "devices", DEV)
    assert_mirrors(s.root, view)
    assert verify_store(view, s.pubkey).verdict == OK
    c = db(arch)
    assert c.execute("SELECT COUNT(*) FROM records").fetchone()[0] == len(s.records)
    assert [tuple(x) for x in c.execute("SELECT state, COUNT(*) FROM segments GROUP BY "
                                        "state")] == [("complete", 3)]
    rc = c.execute("SELECT * FROM receipts").fetchone()
    assert (rc["number"], rc["status"], rc["record_seq"]) == (1, "accepted", r["seq"])
    o = c.execute("SELECT * FROM offloads").fetchone()
    assert o["status"] == "ok" and o["verdict"] == OK and o["head_went_back"] == 0 \
        and o["bytes"] == sm.bytes and o["finished"]
    dev = c.execute("SELECT * FROM devices").fetchone()
    assert dev["last_head_seq"] == sm.head_seq
    # every view file is a read-only hard link to an object named by its hash
    for dirpath, _, files in os.walk(view):
        for f in files:
            p = os.path.join(dirpath, f)
            h = hashlib.sha256(open(p, "rb").read()).hexdigest()
            assert os.path.samefile(p, os.path.join(arch, "objects", h[:2], h[2:]))
            assert os.stat(p).st_mode & 0o777 == 0o444

    # a second offload: nothing new, only HELLO / AUTH / LIST; no second receipt
    n_ops = len(d.ops)
    sm2 = offload(d.port, arch)
    assert sm2.exit_code == 0, sm2.errors
    assert d.ops[n_ops:] == [1, 2]   # the archive holds the signed head: no LIST
    assert sm2.records_pulled == 0 and sm2.media_bytes == 0 and sm2.receipt is None
    assert "nothing new" in sm2.receipt_skipped
    assert len(rw.decode_record(s.records[-1].data)) and \
        rw.decode_record(s.records[-1].data)[0] == 8 and len(s.records) == r["seq"] + 1
    assert db(arch).execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 1
    # the archive's head followed the device's (now its RECEIPT record)
    assert db(arch).execute("SELECT last_head_seq FROM devices").fetchone()[0] == r["seq"]
    assert sm2.store_verdict == OK
    # once more: the archived store is unchanged, so it is not verified again
    sm2b = offload(d.port, arch)
    assert sm2b.exit_code == 0 and sm2b.verdict == OK and "unchanged since offload" in \
        sm2b.receipt_skipped

    # the recorder records more: a third offload pulls only that, and receipts it
    s.boot()
    s.rec_start()
    s.write(os.urandom(70_000))
    s.close()
    s.rec_stop()
    sm3 = offload(d.port, arch)
    assert sm3.exit_code == 0, sm3.errors
    assert sm3.records_pulled == 4 + 1 and sm3.segments_completed == 1
    assert sm3.receipt["number"] == 2 and sm3.receipt["covered"] == r["seq"] + 4
    assert_mirrors(s.root, view)

    p = sealcam("verify", arch)
    assert p.returncode == 0, p.stdout + p.stderr
    assert DEV in p.stdout and "OVERALL: OK" in p.stdout


def test_offload_cli_json_and_table(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s)
    p = sealcam("offload", "--port", d.port, "--archive", arch, "--register",
                "--fingerprint", keys.fingerprint(s.pubkey), "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    for k in ("device", "records_pulled", "bytes", "seconds", "mb_per_s", "verdict",
              "receipt", "head_went_back", "errors"):
        assert k in j
    assert j["device"] == DEV and j["verdict"] == OK and j["receipt"]["number"] == 1
    assert "registered" in p.stderr
    p = sealcam("offload", "--port", d.port, "--archive", arch, "--progress")
    assert p.returncode == 0, p.stderr
    assert "VERDICT: OK" in p.stdout and "nothing new" in p.stdout
    p = sealcam("verify", arch, "--json")
    assert p.returncode == 0
    j = json.loads(p.stdout)
    assert j["verdict"] == OK and j["devices"][0]["device"] == DEV
    assert j["devices"][0]["report"]["origin_checked"] is True


def test_unknown_device(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s)
    p = sealcam("offload", "--port", d.port, "--archive", arch)
    assert p.returncode == 4
    assert "unknown device %s" % DEV in p.stderr and "--register" in p.stderr \
        and "sealcam station register" in p.stderr
    assert d.ops == [1]                    # nothing but HELLO
    c = db(arch)
    assert c.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0
    assert c.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
    # registered by hand, it offloads
    kf = tmp_path / "dev.pub"
    kf.write_text(s.pubkey.hex())
    assert sealcam("station", "register", "--archive", arch, "--device", DEV,
                   "--key", kf).returncode == 0
    assert offload(d.port, arch).exit_code == 0


def test_untrusted_station_auth_fails_nothing_stored(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s, trusted=False)
    p = sealcam("offload", "--port", d.port, "--archive", arch, "--register",
                "--fingerprint", keys.fingerprint(s.pubkey), "--json")
    assert p.returncode == 5, p.stderr
    j = json.loads(p.stdout)
    assert "does not trust this station" in p.stderr and "station.pub" in p.stderr
    assert j["exit_code"] == 5 and j["records_pulled"] == 0
    c = db(arch)
    assert c.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0   # not registered
    for t in ("records", "segments", "receipts"):
        assert c.execute("SELECT COUNT(*) FROM %s" % t).fetchone()[0] == 0
    assert c.execute("SELECT status FROM offloads").fetchone()[0] == "auth_failed"
    assert not any(files for _, _, files in os.walk(os.path.join(arch, "objects")))
    assert d.ops == [1, 2]


def test_registered_key_mismatch_is_not_ok(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    with Archive(arch) as a:
        a.register(DEV, rw.raw_pub(rw.key_from_seed(b"\x09" * 32)))
    d = dev_factory(s)
    sm = offload(d.port, arch)
    assert sm.exit_code == 1 and "another key than the registered one" in sm.errors[0]
    assert d.ops == [1, 2]          # the key comes with AUTH (SPEC §8.3); nothing after it
    with Archive(arch) as a:
        assert a.max_seq(DEV) is None


@pytest.mark.parametrize("faults", [
    dict(drop=0.15), dict(corrupt=0.2), dict(garbage=0.3), dict(read_cap=10_000),
    dict(max_frame=20_000), dict(drop=0.1, corrupt=0.1, garbage=0.1, max_frame=40_000)],
    ids=["drop", "corrupt", "garbage", "short-reads", "small-frames", "all"])
def test_lossy_link(tmp_path, arch, dev_factory, faults):
    s = shift(tmp_path / "sd", segments=2, seconds=3)
    d = dev_factory(s, **faults)
    sm = offload(d.port, arch, register=True, timeout=0.3)
    assert sm.exit_code == 0, sm.errors
    assert sm.receipt and sm.receipt["number"] == 1
    assert_mirrors(s.root, os.path.join(arch, "devices", DEV))
    if "drop" in faults or "corrupt" in faults:
        assert sm.frames_resent > 0


def test_lost_receipt_answer_is_confirmed_by_the_record(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s, drop_op={6: 1})
    sm = offload(d.port, arch, register=True, timeout=0.3, slow_timeout=0.5)
    assert sm.exit_code == 0, sm.errors
    # sent twice: the second got 409 REPLAY, and the RECEIPT record was found by LIST/GET
    assert d.ops.count(6) == 2
    assert sm.receipt["confirmed_by"] == "record"
    assert rw.decode_record(s.records[-1].data)[0] == 8
    assert sm.receipt["seq"] == s.records[-1].seq
    assert db(arch).execute("SELECT status FROM receipts").fetchone()[0] == "accepted"


def test_unanswered_receipt_is_reconciled_next_time(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s, drop_op={6: 99})          # every answer to RECEIPT is lost
    sm = offload(d.port, arch, register=True, timeout=0.2, slow_timeout=0.2)
    assert sm.exit_code == 6 and sm.receipt is None
    assert db(arch).execute("SELECT status FROM receipts").fetchone()[0] == "sent"
    assert rw.decode_record(s.records[-1].data)[0] == 8      # but the device accepted it
    d.drop_op = {}
    sm = offload(d.port, arch)
    assert sm.exit_code == 0, sm.errors
    rows = db(arch).execute("SELECT number, status, record_seq FROM receipts").fetchall()
    assert [tuple(r) for r in rows] == [(1, "accepted", s.records[-1].seq)]
    assert sm.receipt is None and "nothing new" in sm.receipt_skipped


def test_refused_receipt_exit_5(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s)
    d.receipt_number = 99              # the device holds a higher receipt number
    sm = offload(d.port, arch, register=True)
    assert sm.exit_code == 5 and "receipt 1 refused" in sm.errors[-1]
    assert db(arch).execute("SELECT status FROM receipts").fetchone()[0] == "refused"


@pytest.mark.parametrize("cut", [30_000, 700_000, 1_900_000])
def test_broken_link_resumes_from_last_verified_chunk(tmp_path, arch, dev_factory, cut):
    s = shift(tmp_path / "sd", segments=3, seconds=4)
    total = sum(os.path.getsize(s.path("m/" + n)) for n in os.listdir(s.path("m"))
                if n.endswith(".mkv"))
    d = dev_factory(s, break_after=cut)
    sm = offload(d.port, arch, register=True, timeout=0.5)
    assert sm.exit_code == 6 and sm.status == "link_broken"
    assert "run the same command again to resume" in sm.errors[0]
    assert sm.receipt is None
    c = db(arch)
    assert c.execute("SELECT status FROM offloads").fetchone()[0] == "link_broken"
    staged = c.execute("SELECT SUM(staged_length) FROM segments").fetchone()[0] or 0
    # everything received and verified before the break was kept
    assert staged >= sm.media_bytes - 8 * 65536
    first = sm.media_bytes
    # the view was not touched: no half-offloaded store in it
    assert not os.path.exists(os.path.join(arch, "devices", DEV, "head.cbor"))
    d2 = dev_factory(s)
    sm2 = offload(d2.port, arch, timeout=0.5)
    assert sm2.exit_code == 0, sm2.errors
    assert sm2.media_bytes == total - staged
    assert first + sm2.media_bytes <= total + 8 * 65536       # at most the window again
    if staged:
        assert sm2.segments_resumed >= 1
    assert sm2.receipt["number"] == 1
    assert_mirrors(s.root, os.path.join(arch, "devices", DEV))


def test_cli_link_broken_exit_6(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=2)
    d = dev_factory(s, delay=0.002)
    p = subprocess.Popen(SEALCAM + ["offload", "--port", d.port, "--archive", str(arch),
                                    "--register", "--fingerprint",
                                    keys.fingerprint(s.pubkey), "--timeout", "0.5"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while d.sent < 300_000 and p.poll() is None:
        time.sleep(0.005)
    d.break_link()                       # undocked mid-transfer
    out, err = p.communicate(timeout=60)
    assert p.returncode == 6, err
    assert "broke" in err and "run the same command again to resume" in err


def test_head_went_back_is_flagged_and_no_receipt(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=2)
    d = dev_factory(s)
    assert offload(d.port, arch, register=True).exit_code == 0
    n = len(s.records)
    head_before = db(arch).execute("SELECT last_head_seq FROM devices").fetchone()[0]
    assert head_before >= n - 2
    # someone deletes the newest records on the card and puts back an older head
    s.records = s.records[:n - 4]
    d.head_override = s.records[-1].data
    p = sealcam("offload", "--port", d.port, "--archive", arch, "--json")
    assert p.returncode == 1
    j = json.loads(p.stdout)
    assert j["head_went_back"] is True and j["receipt"] is None
    assert j["verdict"] == NOT_OK
    assert "WENT BACK" in p.stderr
    assert any("went back" in e for e in j["errors"])
    c = db(arch)
    row = c.execute("SELECT * FROM offloads ORDER BY id DESC").fetchone()
    assert row["head_went_back"] == 1 and row["status"] == "not_ok"
    assert c.execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 1
    # the archive keeps its newer head; its own store still verifies
    assert c.execute("SELECT last_head_seq FROM devices").fetchone()[0] == head_before
    p = sealcam("verify", arch)
    assert p.returncode == 0 and "head gone back" in p.stdout


def test_rewritten_chain_is_a_fork(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s)
    assert offload(d.port, arch, register=True).exit_code == 0
    # the card is replaced by another history from the same key
    s2 = rw.RefStore(tmp_path / "sd2", chunk=65536)
    for _ in range(len(s.records) + 2):
        s2.refusal()
    d2 = dev_factory(s2)
    sm = offload(d2.port, arch)
    assert sm.exit_code == 1 and sm.receipt is None
    assert any("fork" in e for e in sm.errors)


def test_damaged_media_is_never_stored(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=2)
    media = s.path("m/00000001.mkv")
    with open(media, "r+b") as f:         # a chunk changed on the card after signing
        f.seek(70_000)
        b = f.read(1)
        f.seek(70_000)
        f.write(bytes([b[0] ^ 1]))
    d = dev_factory(s)
    sm = offload(d.port, arch, register=True)
    assert sm.exit_code == 1 and sm.receipt is None
    assert sm.chunks_reread >= 2
    assert any("chunk 1 read 3 times" in e for e in sm.errors)
    c = db(arch)
    seg = c.execute("SELECT * FROM segments WHERE segment = 1").fetchone()
    assert seg["state"] == "partial" and seg["staged_chunks"] == 1 and "damaged" in seg["error"]
    assert c.execute("SELECT state FROM segments WHERE segment != 1").fetchone()[0] == \
        "complete"
    staged = open(os.path.join(arch, "staging", DEV, "00000001.mkv.part"), "rb").read()
    assert staged == open(media, "rb").read()[:65536]      # only the good chunk


def test_bad_index_falls_back_to_the_signed_root(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    with open(s.path("m/00000001.idx"), "r+b") as f:       # the untrusted index changed
        f.seek(40)
        f.write(b"\x00" * 8)
    d = dev_factory(s)
    sm = offload(d.port, arch, register=True)
    # the media matches its signed root and is stored with an index made from it (the
    # archived store verifies OK); the card was changed, so the offload is NOT_OK and no
    # receipt is sent
    assert sm.segments_completed == 1
    assert sm.exit_code == 1 and sm.verdict == NOT_OK and sm.store_verdict == OK \
        and sm.receipt is None
    assert any("chunk index does not match the signed root" in e for e in sm.errors)
    view = media_files(os.path.join(arch, "devices", DEV))
    card = media_files(s.root)
    assert view["00000001.mkv"] == card["00000001.mkv"]
    assert view["00000001.idx"] != card["00000001.idx"]


def test_open_segment_is_pulled_to_its_checkpoint(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=2, close=False)   # still recording segment 2
    d = dev_factory(s)
    sm = offload(d.port, arch, register=True)
    assert sm.exit_code == 0, sm.errors
    assert sm.segments_completed == 1 and sm.segments_pending == 1
    seg2 = s.seg.seq
    assert sm.receipt["covered"] == seg2 - 1               # up to before the open segment
    view = os.path.join(arch, "devices", DEV)
    assert os.path.getsize(os.path.join(view, s.seg.media)) == s.seg.ck_length
    assert verify_store(view, s.pubkey).verdict == "OK_WITH_MISSING_INFO"
    # it is closed later: the rest is pulled, and covered
    had = s.seg.ck_length
    media = s.seg.media
    s.close()
    s.rec_stop()
    sm = offload(d.port, arch)
    assert sm.exit_code == 0, sm.errors
    assert sm.segments_completed == 1 and sm.segments_resumed == 1
    assert sm.media_bytes == os.path.getsize(s.path(media)) - had
    assert sm.receipt["number"] == 2
    assert_mirrors(s.root, view)
    assert verify_store(view, s.pubkey).verdict == OK


def test_verify_archive_finds_tampering(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s)
    assert offload(d.port, arch, register=True).exit_code == 0
    p = sealcam("verify", arch)
    assert p.returncode == 0
    media = os.path.join(arch, "devices", DEV, "m", "00000001.mkv")
    os.chmod(media, 0o644)
    with open(media, "r+b") as f:
        f.seek(10)
        f.write(b"X")
    p = sealcam("verify", arch)
    assert p.returncode == 1 and "OVERALL: NOT_OK" in p.stdout
    # the view's file is a hard link to its content-addressed object: that object is named
    assert "content does not match its name" in p.stdout and "objects/" in p.stdout
    p = sealcam("verify", arch, "--key", tmp_path / "x.pub")
    assert p.returncode == 3


def test_verify_archive_finds_a_writable_or_changed_object(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s)
    assert offload(d.port, arch, register=True).exit_code == 0
    objs = [os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(arch, "objects"))
            for f in fs]
    assert objs and all(not (os.stat(o).st_mode & 0o222) for o in objs)
    os.chmod(objs[0], 0o644)
    p = sealcam("verify", arch, "--json")
    res = json.loads(p.stdout)
    assert p.returncode == 1 and res["verdict"] == "NOT_OK"
    assert [b["reason"] for b in res["objects_bad"]] == ["writable"]


def test_empty_archive_verifies_not_signed(arch):
    p = sealcam("verify", arch)
    assert p.returncode == 2 and "no device store" in p.stdout


def test_second_offload_of_a_locked_device(tmp_path, arch, dev_factory):
    s = shift(tmp_path / "sd", segments=1)
    with Archive(arch) as a:
        a.register(DEV, s.pubkey)
        fd = a.lock_device(DEV)
        try:
            d = dev_factory(s)
            sm = offload(d.port, arch)
            assert sm.exit_code == 3 and "another process" in sm.errors[0]
        finally:
            a.unlock(fd)


# --- part 2: against the virtual recorder (the real firmware) -------------------------

HAVE_SIM = os.path.exists(os.path.join(ROOT, "sim", "serve.py")) and \
    os.path.exists(os.path.join(ROOT, "firmware", "sealcamfw", "link.py"))
need_sim = pytest.mark.skipif(not HAVE_SIM, reason="sim/serve.py and "
                              "firmware/sealcamfw/link.py are not there yet")


class Sim:
    """`python -m sim.serve` in a subprocess; .port is the pty it prints first."""

    def __init__(self, store, trust=None, record=None, runtime="cpython", extra=()):
        cmd = [sys.executable, "-m", "sim.serve", "--store", str(store),
               "--runtime", runtime]
        if trust:
            cmd += ["--trust", str(trust)]
        if record:
            cmd += ["--record", str(record)]
        cmd += list(extra)
        self.p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines = []
        line = self.p.stdout.readline()
        if not line.startswith("PORT "):
            self.p.kill()
            raise RuntimeError("sim.serve did not print PORT: %r %s" % (
                line, self.p.stderr.read()[-3000:]))
        self.port = line.split(None, 1)[1].strip()
        self._t = threading.Thread(target=self._drain, daemon=True)
        self._t.start()

    def _drain(self):
        for line in self.p.stdout:
            self.lines.append(line)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(10)
        return self.p.returncode

    def kill(self):
        """Undock without warning: SIGKILL to the simulator and its children (the VM)."""
        try:
            os.killpg(self.p.pid, signal.SIGKILL)   # its own session (start_new_session)
        except ProcessLookupError:
            pass
        self.p.wait(10)


def _flash(store):
    return str(store).rstrip("/") + ".flash"


def _device_pub(store):
    p = os.path.join(_flash(store), "device.pub")
    return keys.load_public_key(p) if os.path.exists(p) else None


def _fp(store):
    """The key fingerprint on the virtual recorder's label (`offload --register
    --fingerprint`): from the public key it writes to its flash folder at boot."""
    return keys.fingerprint(_device_pub(store))


def _record_two_runs(sd, pub, runtime, seconds=30, extra=()):
    """Two shifts on the virtual recorder (two boots, at least two segments)."""
    for _ in range(2):
        sim = Sim(sd, trust=pub, record=seconds, runtime=runtime, extra=extra)
        assert sim.stop() == 0, sim.p.stderr.read()[-2000:]


@need_sim
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_sim_end_to_end(tmp_path, arch, runtime):
    sd = tmp_path / "card"
    pub = arch / "station.pub"
    t0 = time.monotonic()
    _record_two_runs(sd, pub, runtime)
    sim = Sim(sd, trust=pub, record=30, runtime=runtime)       # a third, then docked
    try:
        p = sealcam("offload", "--port", sim.port, "--archive", arch, "--register",
                    "--fingerprint", _fp(sd), "--json",
                    timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        j = json.loads(p.stdout)
        assert j["verdict"] == OK and j["receipt"]["number"] == 1
        assert j["segments_completed"] >= 3 and j["media_bytes"] > 0
        print("\n%s: %d records, %d segments, %.2f MB media in %.2f s: %.2f MB/s" % (
            runtime, j["records_pulled"], j["segments_completed"], j["media_bytes"] / 1e6,
            j["seconds"], j["mb_per_s"]))
        p2 = sealcam("offload", "--port", sim.port, "--archive", arch, "--json")
        assert p2.returncode == 0, p2.stdout + p2.stderr
        j2 = json.loads(p2.stdout)
        assert j2["records_pulled"] == 0 and j2["media_bytes"] == 0 and j2["receipt"] is None
        assert "nothing new" in j2["receipt_skipped"]
    finally:
        assert sim.stop() == 0
    view = arch / "devices" / j["device"]
    assert_mirrors(str(sd), str(view))
    devpub = _device_pub(sd)
    with Archive(arch) as a:
        registered = a.device(j["device"])["pubkey"]
    if devpub is not None:
        assert devpub == registered
    assert verify_store(str(view), registered).verdict == OK
    # the card itself, after SIGTERM: verifies, and holds the RECEIPT record
    rep = verify_store(str(sd), registered)
    assert rep.verdict == OK, rep.reasons
    receipts = [r for r in rep.records if r.type == "RECEIPT"]
    assert len(receipts) == 1 and receipts[0].seq == j["receipt"]["seq"]
    v = sealcam("verify", arch)
    assert v.returncode == 0, v.stdout
    assert time.monotonic() - t0 < 60


@need_sim
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_sim_untrusted_station_exit_5(tmp_path, arch, runtime):
    sim = Sim(tmp_path / "card", trust=None, record=5, runtime=runtime)
    try:
        p = sealcam("offload", "--port", sim.port, "--archive", arch, "--register",
                    "--fingerprint", _fp(tmp_path / "card"))
        assert p.returncode == 5, p.stdout + p.stderr
        assert "does not trust this station" in p.stderr, p.stderr
    finally:
        sim.stop()
    c = db(arch)
    for t in ("devices", "records", "segments", "receipts"):
        assert c.execute("SELECT COUNT(*) FROM %s" % t).fetchone()[0] == 0
    assert not any(files for _, _, files in os.walk(arch / "objects"))


@need_sim
def test_sim_unknown_device_exit_4(tmp_path, arch):
    sim = Sim(tmp_path / "card", trust=arch / "station.pub", record=5)
    try:
        p = sealcam("offload", "--port", sim.port, "--archive", arch)
        assert p.returncode == 4 and "unknown device SC-" in p.stderr
    finally:
        sim.stop()


def _staged(arch):
    return sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in
               os.walk(os.path.join(arch, "staging")) for f in fs if f.endswith(".part"))


@need_sim
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_sim_killed_mid_transfer_resumes(tmp_path, arch, runtime):
    sd = tmp_path / "card"
    pub = arch / "station.pub"
    sim = Sim(sd, trust=pub, record=40, runtime=runtime, extra=["--bitrate", "12000000"])
    p = subprocess.Popen(SEALCAM + ["offload", "--port", sim.port, "--archive", str(arch),
                                    "--register", "--fingerprint", _fp(sd), "--json",
                                    "--timeout", "1"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # undock (kill the recorder) once some media has been verified and staged
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None and _staged(arch) < 2_000_000:
        time.sleep(0.002)
    sim.kill()
    out, err = p.communicate(timeout=60)
    if p.returncode == 0:
        pytest.skip("the offload finished before the recorder could be undocked")
    assert p.returncode == 6, out + err
    assert "run the same command again to resume" in err
    j = json.loads(out)
    first = j["media_bytes"]
    staged = db(arch).execute("SELECT SUM(staged_length) FROM segments").fetchone()[0] or 0
    assert staged > 0
    # docked again (same card, nothing new recorded): the offload continues
    sim = Sim(sd, trust=pub, runtime=runtime)
    try:
        p2 = sealcam("offload", "--port", sim.port, "--archive", arch, "--json")
        assert p2.returncode == 0, p2.stdout + p2.stderr
        j2 = json.loads(p2.stdout)
        assert j2["segments_resumed"] >= 1 and j2["receipt"]["number"] == 1
    finally:
        assert sim.stop() == 0
    media_total = sum(os.path.getsize(os.path.join(sd, "m", n)) for n in
                      os.listdir(sd / "m") if not n.endswith(".idx"))
    assert j2["media_bytes"] == media_total - staged      # continued at the verified length
    assert first + j2["media_bytes"] < media_total + 16 * 65536
    assert_mirrors(str(sd), str(arch / "devices" / j["device"]))
    with Archive(arch) as a:
        key = a.device(j["device"])["pubkey"]
    assert verify_store(str(sd), key).verdict == OK


@need_sim
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_sim_through_a_lossy_relay(tmp_path, arch, runtime):
    """Dropped, corrupted, duplicated, truncated and stalled frames both ways: the offload
    still pulls everything, verified, and the receipt is accepted exactly once."""
    from sim.relay import Relay
    sd = tmp_path / "card"
    pub = arch / "station.pub"
    sim = Sim(sd, trust=pub, record=30, runtime=runtime,
              extra=["--max-frame", "65536"])
    try:
        with Relay(sim.port, rate=0.05, seed=3,
                   faults=("drop", "corrupt", "duplicate", "truncate", "stall")) as r:
            p = sealcam("offload", "--port", r.port, "--archive", arch, "--register",
                        "--fingerprint", _fp(sd),
                        "--json", "--timeout", "1")
            assert p.returncode == 0, p.stdout + p.stderr
            j = json.loads(p.stdout)
            assert r.stats["faults"] > 0, r.stats
            assert j["receipt"]["number"] == 1
    finally:
        assert sim.stop() == 0
    assert_mirrors(str(sd), str(arch / "devices" / j["device"]))
    rep = verify_store(str(sd), _device_pub(sd))
    assert rep.verdict == OK
    assert [r.type for r in rep.records].count("RECEIPT") == 1


@need_sim
def test_sim_undocked_repeatedly_until_done(tmp_path, arch):
    """The relay undocks the recorder now and then: each run ends with exit 6 and the
    next one continues, until the offload is complete."""
    from sim.relay import Relay
    sd = tmp_path / "card"
    pub = arch / "station.pub"
    sim = Sim(sd, trust=pub, record=30, extra=["--max-frame", "65536"])
    codes = []
    try:
        with Relay(sim.port, rate=0.01, seed=5, faults=("disconnect", "drop")) as r:
            for _ in range(30):
                p = sealcam("offload", "--port", r.port, "--archive", arch, "--register",
                            "--fingerprint", _fp(sd),
                            "--json", "--timeout", "1")
                codes.append(p.returncode)
                if p.returncode == 0:
                    break
                assert p.returncode == 6, p.stdout + p.stderr
    finally:
        sim.stop()
    assert codes[-1] == 0 and 6 in codes, codes
    assert_mirrors(str(sd), str(arch / "devices" / json.loads(p.stdout)["device"]))


# --- the client API, against the fake recorder ----------------------------------------

def test_client_request_read_many_and_errors(tmp_path, arch, dev_factory):
    from host_tools.link import GET, LIST, READ, Client, LinkError
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s, max_frame=100_000, drop=0.2, seed=4)
    with Client(d.port, timeout=0.3, slow_timeout=0.5) as c:
        hello = c.hello("test-station")
        # before AUTH: only id, nonce, frame and protocol version (SPEC §8.3)
        assert set(hello) == {1, 9, 10, 12} and hello[1] == DEV and c.max_frame == 100_000
        with pytest.raises(LinkError) as e:
            c.request(LIST, {1: 0, 2: 10})
        assert e.value.status == 401 and "AUTH" in str(e.value)
        res = c.auth(station.load_station_key(arch), "test-station")
        assert res[3] == s.pubkey
        c.check_device_proof(s.pubkey, res)
        got = dict(c.read_many(((q, {1: q}) for q in range(len(s.records))), window=8,
                               op=GET))
        assert [got[q][1] for q in sorted(got)] == [r.data for r in s.records]
        media = open(s.path("m/00000001.mkv"), "rb").read()
        parts = dict(c.read_many(((i, {1: 1, 2: i, 3: 0, 4: 65536}) for i in range(
            -(-len(media) // 65536))), window=4))
        assert b"".join(parts[i][1] for i in sorted(parts)) == media
        with pytest.raises(LinkError) as e:
            list(c.read_many([("x", {1: 999, 2: 0, 3: 0, 4: 10})], op=READ))
        assert e.value.status == 404 and e.value.key == "x"
        assert c.resent > 0


def test_record_signed_by_another_key_goes_to_quarantine(tmp_path, arch, dev_factory):
    """Records are checked as they arrive: one signed by another key (in the middle of a
    chain whose head is genuine) never reaches the history; it is kept in quarantine and
    named, the offload is NOT_OK, no receipt."""
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s)
    assert offload(d.port, arch, register=True).exit_code == 0
    other = rw.key_from_seed(b"\x42" * 32)
    body = s.body(rw.REFUSAL, {17: "append-only store", 19: "delete", 20: "x", 21: "usb"})
    s.append_raw(rw.sign_record(body, other), body[1], rw.REFUSAL)
    s.refusal()                   # a genuine head after it
    sm = offload(d.port, arch)
    assert sm.exit_code == 1 and sm.verdict == NOT_OK and sm.receipt is None, sm.errors
    assert sm.quarantine and any("does not verify with the registered key" in e
                                 and sm.quarantine in e for e in sm.errors), sm.errors
    with Archive(arch) as a:
        assert a.max_seq(DEV) == body[1] - 1      # everything before it, nothing after
        (q,) = a.quarantines()
        assert q["id"] == sm.quarantine and q["records"] == 1
    qdir = os.path.join(arch, "quarantine", sm.quarantine)
    assert open(os.path.join(qdir, "records.log"), "rb").read() == s.records[-2].data


def test_a_gap_the_recorder_lists_stops_the_history_before_it(tmp_path, arch, dev_factory):
    """A card that lost records (SPEC §5.2: LIST passes over the gap a STORE_ALERT names)
    and an archive that never held them: what comes before the gap is stored, nothing
    after it, NOT_OK "records removed", no receipt."""
    s = shift(tmp_path / "sd", segments=2)
    lost = range(4, 7)

    def hook(dev, req):
        if req.get(1) != 3:
            return None
        resp = dev._handle(req)
        resp[2][1] = [e for e in resp[2][1] if e[0] not in lost]
        return resp

    d = dev_factory(s, hook=hook)
    sm = offload(d.port, arch, register=True)
    assert sm.exit_code == 1 and sm.verdict == NOT_OK and sm.receipt is None, sm.errors
    assert any("records removed" in e and "seqs 4..6" in e for e in sm.errors), sm.errors
    assert "broke the dock protocol" not in " ".join(sm.errors)
    with Archive(arch) as a:
        assert a.max_seq(DEV) == 3


def test_session_that_ended_before_the_receipt_is_renewed(tmp_path, arch, dev_factory):
    """The recorder ends an idle session (SPEC §8.3) while the station verifies: the
    receipt gets 401; the station authenticates again (the recorder proves its key again)
    and the receipt goes through."""
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s, expire_before={6})
    sm = offload(d.port, arch, register=True)
    assert sm.exit_code == 0 and sm.receipt and sm.receipt["confirmed_by"] == "response", \
        sm.errors
    i = d.ops.index(6)
    assert d.ops[i:i + 4] == [6, 1, 2, 6]


def test_station_ends_its_session_before_it_closes_the_port(tmp_path, arch, dev_factory):
    """SPEC §8.3: after its last request (and on error paths) the station sends HELLO, so
    no other host on the port finds an authenticated session."""
    s = shift(tmp_path / "sd", segments=1)
    d = dev_factory(s)
    assert offload(d.port, arch, register=True).exit_code == 0
    t = time.monotonic() + 2
    while d.ends < 1 and time.monotonic() < t:
        time.sleep(0.01)
    assert d.ends == 1 and not d.authed
    # an error path too: the recorder refuses the receipt
    s.rec_start()
    s.write(b"x" * 5000)
    s.close()
    d.receipt_number = 10 ** 9
    assert offload(d.port, arch).exit_code == 5
    t = time.monotonic() + 2
    while d.ends < 2 and time.monotonic() < t:
        time.sleep(0.01)
    assert d.ends == 2 and not d.authed


def test_an_edited_offloads_row_never_vouches_for_a_tampered_staged_prefix(tmp_path):
    """A5: an editor of archive.sqlite (no station key) flips bytes inside the staged,
    verified prefix of a broken offload and forges an 'ok' offloads row whose head is the
    newest seq. The next offload must not take that row as its verified anchor (only the
    signed station log's offload events count): it verifies the segment in full, finds the
    damage and sends no receipt."""
    import random
    arch = str(tmp_path / "arch")
    station.init(arch)
    s = rw.RefStore(str(tmp_path / "sd"), chunk=65536)
    s.boot(); s.rec_start()
    media = random.Random(1).randbytes(600_000)
    s.write(media); s.checkpoint(); s.close(); s.rec_stop()
    pub = station.station_pub(arch)
    d = fakedev.FakeDevice(s, trust=[pub], max_frame=64 * 1024, break_after=300_000).start()
    try:
        sm = offload(d.port, arch, register=True, timeout=5)
    finally:
        d.stop()
    assert sm.status == "link_broken"
    part = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(arch, "staging"))
            for f in fs if f.endswith(".part")]
    assert len(part) == 1
    with open(part[0], "r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 5000)
    db = sqlite3.connect(os.path.join(arch, "archive.sqlite"))
    top = db.execute("SELECT MAX(seq) FROM records").fetchone()[0]
    db.execute("INSERT INTO offloads (device, port, started, finished, records, bytes, status, "
               "verdict, head_went_back, head_seq) VALUES (?, 'x', '2026-01-01T00:00:00Z', "
               "NULL, 0, 0, 'ok', 'OK', 0, ?)", (s.device, top))
    db.commit()
    db.close()
    d = fakedev.FakeDevice(s, trust=[pub], max_frame=64 * 1024).start()
    try:
        sm = offload(d.port, arch, timeout=10)
    finally:
        d.stop()
    assert sm.verified_from is None
    assert sm.receipt is None and sm.exit_code == 1 and sm.verdict == NOT_OK
