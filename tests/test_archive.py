"""The station side, unit level: station init and keys, registration, the archive
(objects, SQLite, staging and resume state, the store view), framing (SPEC §7), receipts
(SPEC §8.6) and port errors. End-to-end offloads are in test_offload.py."""
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from host_tools import keys, station
from host_tools.archive import Archive, ArchiveError, NotAnArchive, safe_rel, valid_device_id
from host_tools.cli import main
from host_tools.link import MAGIC, Client, Deframer, PortError, encode_frame
from host_tools.offload import covered_seq, make_receipt
from host_tools.verify import OK, verify_store

HERE = os.path.dirname(os.path.abspath(__file__))
import refwriter as rw  # noqa: E402

DEV = "SC-00A1B2C3"


@pytest.fixture
def arch(tmp_path):
    station.init(tmp_path / "arch")
    return tmp_path / "arch"


# --- station init ----------------------------------------------------------------------

def test_station_init_makes_key_pair_and_empty_archive(tmp_path, capsys):
    d = tmp_path / "arch"
    assert main(["station", "init", "--archive", str(d)]) == 0
    out = capsys.readouterr().out
    key, pub = d / "station.key", d / "station.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    seed = key.read_bytes()
    assert len(seed) == 32
    text = pub.read_text()
    assert len(text) == 65 and text.endswith("\n") and int(text[:64], 16) >= 0
    sk = station.load_station_key(d)
    assert station.station_pub(d).hex() == text.strip()
    fp = keys.fingerprint(bytes.fromhex(text.strip()))
    assert fp in out and str(pub) in out
    sk.sign(b"x")
    for sub in ("objects", "devices", "staging"):
        assert (d / sub).is_dir() and not os.listdir(d / sub)
    db = sqlite3.connect(d / "archive.sqlite")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"devices", "records", "segments", "receipts", "offloads", "meta"} <= tables
    cols = {r[1] for r in db.execute("PRAGMA table_info(devices)")}
    assert {"id", "pubkey", "fingerprint", "registered_at", "last_head_seq",
            "last_head_hash"} <= cols
    cols = {r[1] for r in db.execute("PRAGMA table_info(offloads)")}
    assert {"id", "device", "started", "finished", "bytes", "status", "error",
            "head_went_back"} <= cols
    assert db.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0
    assert len(dict(db.execute("SELECT key, value FROM meta"))["archive_id"]) == 32


def test_station_init_refuses_to_overwrite_a_key(arch, capsys):
    seed = (arch / "station.key").read_bytes()
    assert main(["station", "init", "--archive", str(arch)]) == 3
    err = capsys.readouterr().err
    assert "station.key already exists" in err and "refusing" in err
    assert (arch / "station.key").read_bytes() == seed
    with pytest.raises(station.StationError):
        station.init(arch)


def test_station_key_readable_by_others_is_refused(arch):
    os.chmod(arch / "station.key", 0o644)
    with pytest.raises(station.StationError, match="chmod 600"):
        station.load_station_key(arch)


def test_not_an_archive(tmp_path):
    with pytest.raises(NotAnArchive, match="station init"):
        Archive(tmp_path)


# --- registration --------------------------------------------------------------------

def test_register_device_by_key_file_and_hex(arch, tmp_path, capsys):
    s = rw.RefStore(tmp_path / "sd")
    kf = tmp_path / "dev.pub"
    kf.write_text(s.pubkey.hex() + "\n")
    assert main(["station", "register", "--archive", str(arch), "--device", DEV,
                 "--key", str(kf)]) == 0
    assert keys.fingerprint(s.pubkey) in capsys.readouterr().out
    # the same key again (as hex digits on the command line): fine, nothing changes
    assert main(["station", "register", "--archive", str(arch), "--device", DEV,
                 "--key", s.pubkey.hex()]) == 0
    assert "already registered" in capsys.readouterr().out
    # another key for the same id: refused
    other = rw.raw_pub(rw.key_from_seed(b"\x01" * 32))
    assert main(["station", "register", "--archive", str(arch), "--device", DEV,
                 "--key", other.hex()]) == 3
    assert "already registered with another key" in capsys.readouterr().err
    with Archive(arch) as a:
        row = a.device(DEV)
        assert row["pubkey"] == s.pubkey and row["fingerprint"] == keys.fingerprint(s.pubkey)
        assert row["last_head_seq"] is None and row["registered_at"]
    assert (arch / "devices" / DEV).is_dir()


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "x" * 65, "a b", "é", "SC-1\n", "SC-1\r"])
def test_unusable_device_ids_are_refused(arch, bad):
    assert not valid_device_id(bad)
    with Archive(arch) as a, pytest.raises(ArchiveError, match="device id"):
        a.register(bad, b"\x00" * 32)


def test_register_bad_key(arch, capsys):
    assert main(["station", "register", "--archive", str(arch), "--device", DEV,
                 "--key", "abcd"]) == 3
    assert "neither a key file nor 64 hex digits" in capsys.readouterr().err


def test_safe_rel():
    assert safe_rel("m/00000002.mkv")
    for bad in ("/etc/passwd", "../x", "m/../../x", "m//x", "c:x", "m\\x", "", "m/./x"):
        assert not safe_rel(bad)


# --- objects ---------------------------------------------------------------------------

def test_objects_are_content_addressed_and_read_only(arch):
    with Archive(arch) as a:
        a.register(DEV, b"\x11" * 32)
        h = a.put_bytes(b"evidence")
        assert h == hashlib.sha256(b"evidence").hexdigest()
        p = a.object_path(h)
        assert p == os.path.join(str(arch), "objects", h[:2], h[2:])
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o444
        assert a.put_bytes(b"evidence") == h          # deduplicated
        v = a.link(DEV, "m/00000001.mkv", h)
        assert os.path.samefile(v, p) and os.stat(p).st_nlink == 2
        assert stat.S_IMODE(os.stat(v).st_mode) == 0o444
        a.link(DEV, "m/00000001.mkv", h)             # idempotent
        h2 = a.put_bytes(b"other")
        a.link(DEV, "m/00000001.mkv", h2)            # replaced atomically
        assert open(v, "rb").read() == b"other"
        with pytest.raises(ArchiveError):
            a.link(DEV, "../escape", h)
        assert a.check_objects() == []
        os.chmod(p, 0o644)
        with open(p, "ab") as f:
            f.write(b"!")
        assert {why for _, why in a.check_objects()} == {"content does not match its name"}


# --- records, segments, resume state, the view -----------------------------------------

def _records(s):
    return [(r.seq, r.data, rw.decode_record(r.data)) for r in s.records]


def test_records_and_segments_in_sqlite(arch, tmp_path):
    s = rw.session(tmp_path / "sd", seconds=3)
    with Archive(arch) as a:
        a.register(DEV, s.pubkey)
        recs = _records(s)
        a.add_records(DEV, recs[:4], offload_id=None)   # BOOT, REFUSAL, REC_START, CKPT
        seg = a.segment(DEV, 2)
        assert seg["media"] == "m/00000002.mkv" and seg["chunk"] == 4096
        assert seg["state"] == "partial" and seg["closed_by"] is None
        assert seg["chunks"] == recs[3][2][14] and seg["root"] == recs[3][2][15]
        a.add_records(DEV, recs[4:])
        seg = a.segment(DEV, 2)
        assert seg["closed_by"] == 6 and seg["length"] == 30400 and seg["chunks"] == 8
        assert a.max_seq(DEV) == 7 and a.record_count(DEV) == 8
        row = a.record(DEV, 6)
        assert row["type"] == rw.SEGMENT and row["segment"] == 2 and row["data"] == recs[6][1]
        assert row["hash"] == hashlib.sha256(recs[6][1]).digest() and row["size"] == \
            len(recs[6][1]) and row["rtc"] == recs[6][2][4] and row["log"] is None


def _stage_all(a, s, seg=2):
    row = a.segment(DEV, seg)
    media = open(s.path(row["media"]), "rb").read()
    idx = open(s.path(row["media"][:-4] + ".idx"), "rb").read()
    f = a.open_staging(DEV, row)
    f.write(media)
    f.close()
    root = rw.chunk_root([idx[i:i + 32] for i in range(0, len(idx), 32)])
    a.set_staged(DEV, seg, len(media), len(idx) // 32, root)
    return a.segment(DEV, seg), idx


def test_resume_state_survives_reopen(arch, tmp_path):
    s = rw.session(tmp_path / "sd", seconds=3)
    with Archive(arch) as a:
        a.register(DEV, s.pubkey)
        a.add_records(DEV, _records(s))
        row = a.segment(DEV, 2)
        f = a.open_staging(DEV, row)
        f.write(b"A" * 8192)            # two verified chunks ...
        f.flush()
        a.set_staged(DEV, 2, 8192, 2, b"\x07" * 32)
        f.write(b"B" * 1000)            # ... and bytes not yet verified when the link broke
        f.close()
    with Archive(arch) as a:
        row = a.segment(DEV, 2)
        assert (row["staged_length"], row["staged_chunks"], row["staged_root"]) == \
            (8192, 2, b"\x07" * 32)
        f = a.open_staging(DEV, row)    # resumes at the last verified chunk
        assert f.tell() == 8192
        f.close()
        assert os.path.getsize(a.staging_path(DEV, row)) == 8192
        # staging lost: start over rather than trust the database alone
        os.truncate(a.staging_path(DEV, row), 100)
        f = a.open_staging(DEV, row)
        assert f.tell() == 0 and a.segment(DEV, 2)["staged_length"] == 0
        f.close()


def test_view_is_a_verifiable_store(arch, tmp_path):
    s = rw.session(tmp_path / "sd", seconds=3)
    with Archive(arch) as a:
        a.register(DEV, s.pubkey)
        a.add_records(DEV, _records(s))
        row, idx = _stage_all(a, s)
        a.finish_segment(DEV, row, idx)
        head = cbor2.loads(open(s.path("head.cbor"), "rb").read())[3]
        assert a.commit_view(DEV, head) == 8 + 1          # records, and the head
        assert a.commit_view(DEV, head) == 0              # nothing changes
        view = a.view_dir(DEV)
        assert open(os.path.join(view, "rec", "00000000.log"), "rb").read() == \
            open(s.path("rec/00000000.log"), "rb").read()
        for rel in ("m/00000002.mkv", "m/00000002.idx"):
            assert open(os.path.join(view, rel), "rb").read() == open(s.path(rel), "rb").read()
            assert stat.S_IMODE(os.stat(os.path.join(view, rel)).st_mode) == 0o444
        assert verify_store(view, s.pubkey).verdict == OK
        assert a.segment(DEV, 2)["state"] == "complete"
        assert a.device(DEV)["last_head_seq"] == 7
        assert not os.path.exists(a.staging_path(DEV, row))
        # more records later: a new log file named by its first seq; the head moves on
        s.boot()
        a.add_records(DEV, _records(s)[8:])
        head = cbor2.loads(open(s.path("head.cbor"), "rb").read())[3]
        assert a.commit_view(DEV, head) == 1 + 1
        assert sorted(os.listdir(os.path.join(view, "rec"))) == ["00000000.log",
                                                                  "00000008.log"]
        assert verify_store(view, s.pubkey).verdict == OK
        # a head that goes back is not written
        assert not a.set_head(DEV, _records(s)[3][1])
        assert a.view_head_seq(DEV) == 8


def test_receipt_numbers_and_rows(arch, tmp_path):
    s = rw.session(tmp_path / "sd", seconds=1)
    with Archive(arch) as a:
        a.register(DEV, s.pubkey)
        a.add_records(DEV, _records(s))
        assert a.next_receipt_number(DEV) == 1
        a.add_receipt(DEV, 1, 5, b"\x01" * 32, b"r1")
        a.update_receipt(DEV, 1, "accepted", 6)
        assert a.next_receipt_number(DEV) == 2
        # a RECEIPT record from another station with a higher number counts too
        s.record(8, {24: "x", 25: 3, 26: bytes(32), 27: 41})
        a.add_records(DEV, _records(s)[-1:])
        assert a.next_receipt_number(DEV) == 42
        r = a.last_receipt(DEV, "accepted")
        assert (r["number"], r["covered"], r["record_seq"], r["status"]) == (1, 5, 6,
                                                                             "accepted")


# --- receipts and coverage ------------------------------------------------------------

def test_covered_seq():
    R, C, S, RC, B = 2, 3, 4, 7, 1
    assert covered_seq([]) is None
    assert covered_seq([(0, B, None), (1, R, 1), (2, C, 1)]) == 0
    assert covered_seq([(0, B, None), (1, R, 1), (2, C, 1), (3, S, 1), (4, 5, 1)]) == 4
    # a second segment still open: covered stops before its REC_START
    rows = [(0, B, None), (1, R, 1), (2, S, 1), (3, R, 3), (4, C, 3), (5, 6, None)]
    assert covered_seq(rows) == 2
    assert covered_seq(rows + [(6, RC, 3), (7, B, None)]) == 7


def test_receipt_is_a_station_signed_cose_sign1(arch):
    sk = station.load_station_key(arch)
    pub = station.station_pub(arch)
    r = make_receipt(sk, DEV, 7, b"\x02" * 32, 3, "ab" * 16, rtc_ms=123)
    item = cbor2.loads(r)
    assert item.tag == 18
    prot, unprot, payload, sig = item.value
    assert cbor2.loads(prot) == {1: -8, 4: keys.fingerprint(pub).encode()} and unprot == {}
    assert cbor2.loads(payload) == {1: DEV, 2: 7, 3: b"\x02" * 32, 4: 3, 5: 123, 6: "ab" * 16}
    assert cbor2.dumps(item, canonical=True) == r
    Ed25519PublicKey.from_public_bytes(pub).verify(
        sig, cbor2.dumps(["Signature1", prot, b"", payload], canonical=True))


# --- framing -------------------------------------------------------------------------------

def _frames(d, data, step=None):
    out = []
    step = step or len(data) or 1
    for i in range(0, len(data), step):
        d.feed(data[i:i + step])
        out += list(d.frames())
    return out


def test_frame_layout():
    f = encode_frame({0: 1, 1: 0})
    payload = cbor2.dumps({0: 1, 1: 0}, canonical=True)
    assert f[:2] == MAGIC and f[2:6] == len(payload).to_bytes(4, "big")
    import binascii
    assert f[6:-4] == payload
    assert f[-4:] == (binascii.crc32(f[2:-4]) & 0xFFFFFFFF).to_bytes(4, "big")


@pytest.mark.parametrize("step", [1, 7, 4096])
def test_deframer_resyncs_after_garbage_and_corruption(step):
    import random
    rnd = random.Random(step)
    msgs = [{0: i, 1: 0, 2: {1: bytes(rnd.randrange(256) for _ in range(rnd.randrange(300)))}}
            for i in range(40)]
    stream = bytearray()
    expect = []
    for m in msgs:
        f = bytearray(encode_frame(m))
        k = m[0] % 5
        if k == 1:
            stream += bytes(rnd.randrange(256) for _ in range(9)) + MAGIC + b"\x00"  # garbage
        if k == 2:
            f[rnd.randrange(6, len(f))] ^= 0x10           # corrupt: dropped
        elif k == 3:
            del f[rnd.randrange(len(f))]                  # a lost byte: dropped
        else:
            expect.append(m[0])
        stream += f
    d = Deframer(1 << 16)
    got = [x[0] for x in _frames(d, bytes(stream), step)]
    # a lost LEN byte can make a plausible length that waits for bytes that never come:
    # the client calls stalled() after its timeout
    while d.pending:
        d.stalled()
        got += [x[0] for x in d.frames()]
    assert got == expect
    assert d.bad > 0


def test_deframer_rejects_oversize_non_cbor_and_trailing_bytes():
    import binascii

    def raw(payload):
        hdr = len(payload).to_bytes(4, "big")
        return MAGIC + hdr + payload + (binascii.crc32(hdr + payload) & 0xFFFFFFFF).to_bytes(
            4, "big")
    good = encode_frame({0: 9, 1: 0})
    d = Deframer(1024)
    stream = raw(b"\xff\xff") + raw(b"\x01\x02") + raw(cbor2.dumps(b"x" * 2000)) + good
    assert [x[0] for x in _frames(d, stream)] == [9]
    # a LEN that cannot be right yet waits; stalled() gives up on it after a timeout
    d = Deframer(1 << 20)
    d.feed(MAGIC + (5000).to_bytes(4, "big") + b"junk")
    assert list(d.frames()) == []
    d.feed(good)
    assert list(d.frames()) == []
    d.stalled()
    assert [x[0] for x in d.frames()] == [9]


# --- ports ---------------------------------------------------------------------------------

def test_port_errors_name_the_port(tmp_path):
    with pytest.raises(PortError, match="no such port: .*nope"):
        Client(str(tmp_path / "nope"))
    f = tmp_path / "file"
    f.write_bytes(b"")
    with pytest.raises(PortError, match="not a serial port .*file.*regular file"):
        Client(str(f))
    with pytest.raises(PortError, match="not a serial port .*directory"):
        Client(str(tmp_path))
    with pytest.raises(PortError, match="not a serial port"):
        Client("/dev/null")


def test_offload_cli_port_error_exit_3(arch, tmp_path):
    p = subprocess.run([sys.executable, "-m", "host_tools.cli", "offload", "--port",
                        str(tmp_path / "ttyNOPE"), "--archive", str(arch), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3, p.stderr
    assert "no such port" in p.stderr and "ttyNOPE" in p.stderr
    assert json.loads(p.stdout)["exit_code"] == 3


def test_offload_cli_not_an_archive(tmp_path):
    assert main(["offload", "--port", "/dev/null", "--archive", str(tmp_path)]) == 3


def test_help_lists_verbs_and_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for w in ("verify", "offload", "station", "sim", "4 unknown device", "6 link broken"):
        assert w in out
    assert main(["offload", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--register" in out and "--window" in out and "5 authentication failed" in out


def test_quarantine_keeps_bytes_apart_from_every_history(arch):
    recs = [cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b"x" * i, b"s" * 64])) for i in range(3)]
    with Archive(arch) as a:
        qid = a.quarantine("SC-FAKE\n", "record 2: bad signature", recs, {"port": "/dev/x"})
        q = a.quarantines()
        assert [r["id"] for r in q] == [qid] and q[0]["records"] == 3
        assert q[0]["device"] == "SC-FAKE\n" and q[0]["reason"] == "record 2: bad signature"
        assert a.devices() == [] and a.db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
    qdir = arch / "quarantine" / qid
    assert (qdir / "records.log").read_bytes() == b"".join(recs)
    info = json.loads((qdir / "info.json").read_text())
    assert info["sha256"] == hashlib.sha256(b"".join(recs)).hexdigest()
    assert info["info"] == {"port": "/dev/x"}
    assert not os.listdir(arch / "devices")


def test_read_only_open_reads_and_refuses_writes(arch, tmp_path):
    s = rw.session(tmp_path / "sd", seconds=1)
    with Archive(arch) as a:
        a.register(DEV, s.pubkey)
    with Archive(arch, readonly=True) as a:
        assert [d["id"] for d in a.devices()] == [DEV]
        assert a.log().size == 1 and a.log().readonly
        with pytest.raises(ArchiveError, match="read-only"):
            a.register("SC-OTHER", s.pubkey)
    with Archive(arch) as a:
        assert [d["id"] for d in a.devices()] == [DEV]
