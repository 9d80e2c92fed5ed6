"""Archive edits (issue 8, "Archive edits"): a workstation user with sqlite3 and the files
but without the station key edits a real archive made by real offloads; `sealcam verify
ARCHIVE` must say NOT_OK and name what was edited. Each edit here leaves the device views
that the old verifier checked intact or consistently re-made, so the old `verify ARCHIVE`
(views + SQLite's own last head) said OK to every one of them."""
import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys

import cbor2
import pytest

from host_tools import keys, station
from host_tools.offload import offload
from host_tools.verify import OK, verify_store

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
import fakedev  # noqa: E402
import refwriter as rw  # noqa: E402

DEV = "SC-00A1B2C3"
INTERRUPTION = 10


def sealcam(*args):
    return subprocess.run([sys.executable, "-m", "host_tools.cli"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """An archive after two real offloads over a pty: a shift with an interruption, a
    receipt; then more recording, a second receipt. Also the archive as it was after
    the first offload (for a rollback) and the checkpoint exported after the second."""
    base = tmp_path_factory.mktemp("made")
    arch = base / "arch"
    station.init(arch)
    s = rw.RefStore(base / "sd", chunk=65536)
    rnd = random.Random(5)
    s.boot()
    s.rec_start()
    for _ in range(3):
        s.write(rnd.randbytes(90_000))
        s.checkpoint()
    s.interrupt("weather")
    s.rec_start()
    s.write(rnd.randbytes(50_000))
    s.close()
    s.rec_stop()
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)]).start()
    try:
        sm = offload(d.port, arch, register=True)
        assert sm.exit_code == 0, sm.errors
        subprocess.run(["cp", "-a", str(arch), str(base / "arch-first")], check=True)
        s.boot()
        s.rec_start()
        s.write(rnd.randbytes(70_000))
        s.close()
        s.rec_stop()
        sm = offload(d.port, arch)
        assert sm.exit_code == 0 and sm.receipt["number"] == 2, sm.errors
    finally:
        d.stop()
    p = sealcam("station", "checkpoint", "--archive", arch, "--out", base / "cp.txt")
    assert p.returncode == 0, p.stderr
    return base


@pytest.fixture
def arch(made, tmp_path):
    subprocess.run(["cp", "-a", str(made / "arch"), str(tmp_path / "arch")], check=True)
    return tmp_path / "arch"


def sql(arch, *stmts):
    db = sqlite3.connect(arch / "archive.sqlite")
    with db:
        for s in stmts:
            db.execute(*s) if isinstance(s, tuple) else db.execute(s)
    db.close()


def rows(arch, q, *a):
    db = sqlite3.connect(arch / "archive.sqlite")
    db.row_factory = sqlite3.Row
    out = [dict(r) for r in db.execute(q, a)]
    db.close()
    return out


def verify(arch, *extra):
    p = sealcam("verify", arch, *extra)
    return p.returncode, p.stdout + p.stderr


def old_view_verdict(arch, key=None):
    """What the old `verify ARCHIVE` judged: the view with the key archive.sqlite holds,
    and the chain reaching SQLite's own last head."""
    dev = rows(arch, "SELECT * FROM devices WHERE id = ?", DEV)
    if not dev:
        return "no device"
    rep = verify_store(arch / "devices" / DEV, key or dev[0]["pubkey"])
    last = dev[0]["last_head_seq"]
    if last is not None and (rep.chain_end is None or rep.chain_end < last):
        return "NOT_OK"
    return rep.verdict


def put_object(arch, data):
    h = hashlib.sha256(data).hexdigest()
    p = arch / "objects" / h[:2] / h[2:]
    p.parent.mkdir(exist_ok=True)
    if not p.exists():
        p.write_bytes(data)
        os.chmod(p, 0o444)
    return p


def relink(arch, rel, data):
    dst = arch / "devices" / DEV / rel
    if dst.exists():
        dst.unlink()
    os.link(put_object(arch, data), dst)


def flip_log_byte(arch):
    """An editor's change of one bit near the end of the station log (log/entries)."""
    p = arch / "log" / "entries"
    data = bytearray(p.read_bytes())
    data[-3] ^= 1
    p.write_bytes(bytes(data))


# -- the baseline ---------------------------------------------------------------------------

def test_untouched_archive_verifies_ok(arch, made):
    rc, out = verify(arch)
    assert rc == 0 and "OVERALL: OK" in out, out
    rc, out = verify(arch, "--checkpoint", made / "cp.txt")
    assert rc == 0 and "extends the given checkpoint" in out, out
    # and it has what the edits below remove
    assert rows(arch, "SELECT COUNT(*) n FROM records WHERE type = ?", INTERRUPTION)[0]["n"] == 1
    assert len(rows(arch, "SELECT * FROM receipts")) == 2


# -- the edits -------------------------------------------------------------------------------

def test_dropped_tail_with_its_head_and_receipt_rows(arch):
    """Drop the newest records with the last-head and receipt rows, and make the view
    match: the newest log file unlinked, head.cbor put back to the first offload's."""
    r1 = rows(arch, "SELECT * FROM receipts WHERE number = 1")[0]
    keep = r1["record_seq"]
    head_rec = rows(arch, "SELECT * FROM records WHERE seq = ?", keep)[0]
    drop = rows(arch, "SELECT * FROM records WHERE seq > ?", keep)
    logs = {r["log"] for r in drop}
    assert logs and all(rows(arch, "SELECT COUNT(*) n FROM records WHERE log = ? AND seq <= ?",
                             lg, keep)[0]["n"] == 0 for lg in logs)
    sql(arch, ("DELETE FROM records WHERE seq > ?", (keep,)),
        "DELETE FROM receipts WHERE number = 2",
        ("UPDATE devices SET last_head_seq = ?, last_head_hash = ?, last_head = ?",
         (keep, head_rec["hash"], head_rec["data"])),
        ("DELETE FROM segments WHERE segment > ?", (keep,)))
    for lg in logs:
        (arch / "devices" / DEV / lg).unlink()
    for r in drop:
        if r["type"] == 2:
            for ext in (".mkv", ".idx"):
                p = arch / "devices" / DEV / "m" / ("%08d%s" % (r["seq"], ext))
                if p.exists():
                    p.unlink()
    relink(arch, "head.cbor", cbor2.dumps({1: head_rec["log"], 2: head_rec["offset"] +
                                           head_rec["size"], 3: head_rec["data"]},
                                          canonical=True))
    assert old_view_verdict(arch) == OK          # the old verifier was fooled
    rc, out = verify(arch)
    assert rc == 1 and "OVERALL: NOT_OK" in out
    assert "receipt 2 of %s" % DEV in out and "row is missing" in out
    assert "last head seq %d, the station log's last head is seq" % keep in out
    assert "are missing from archive.sqlite" in out
    assert "before the last signed head the station log recorded" in out
    for lg in logs:
        assert "devices/%s/%s, recorded in the station log, is missing" % (DEV, lg) in out


def _resign(arch, sk):
    """Re-sign the device's whole chain with ``sk`` (BOOT records carry the new key),
    rewrite the records rows and the view's log files and head."""
    recs = rows(arch, "SELECT * FROM records ORDER BY seq")
    prev, new = None, {}
    pub = rw.raw_pub(sk)
    for r in recs:
        body = rw.decode_record(r["data"])
        if body[0] == 1:
            body[18] = pub
        if r["seq"] > 0:
            body[2] = rw.H(prev)
        data = rw.sign_record(body, sk)
        new[r["seq"]] = data
        prev = data
    by_log = {}
    for r in recs:
        by_log.setdefault(r["log"], []).append(r["seq"])
    upd = []
    for lg, seqs in by_log.items():
        off = 0
        for s in seqs:
            upd.append((new[s], rw.H(new[s]), len(new[s]), off, s))
            off += len(new[s])
        relink(arch, lg, b"".join(new[s] for s in seqs))
    sql(arch, *[("UPDATE records SET data = ?, hash = ?, size = ?, offset = ? WHERE seq = ?",
                 u) for u in upd])
    last = recs[-1]
    lr = rows(arch, "SELECT * FROM records WHERE seq = ?", last["seq"])[0]
    relink(arch, "head.cbor", cbor2.dumps({1: lr["log"], 2: lr["offset"] + lr["size"],
                                           3: lr["data"]}, canonical=True))
    from host_tools.keys import fingerprint
    sql(arch, ("UPDATE devices SET pubkey = ?, fingerprint = ?, last_head_hash = ?, "
               "last_head = ?", (pub, fingerprint(pub), lr["hash"], lr["data"])))
    return pub


def test_swapped_key_with_a_re_signed_chain(arch):
    sk = rw.key_from_seed(b"\x77" * 32)
    pub = _resign(arch, sk)
    assert old_view_verdict(arch) in (OK, "OK_WITH_MISSING_INFO")   # fooled
    rc, out = verify(arch)
    assert rc == 1 and "OVERALL: NOT_OK" in out
    assert "the key was swapped" in out
    assert "is not the record the station log stored" in out
    assert "head.cbor is not the file the station log recorded" in out
    assert pub != station.station_pub(arch)


def test_deleted_recorder(arch):
    sql(arch, ("DELETE FROM records WHERE device = ?", (DEV,)),
        ("DELETE FROM segments WHERE device = ?", (DEV,)),
        ("DELETE FROM receipts WHERE device = ?", (DEV,)),
        ("DELETE FROM offloads WHERE device = ?", (DEV,)),
        ("DELETE FROM devices WHERE id = ?", (DEV,)))
    shutil.rmtree(arch / "devices" / DEV)
    assert old_view_verdict(arch) == "no device"
    p = sealcam("verify", arch)          # the old one: NOT_SIGNED "no device store"
    assert p.returncode == 1, p.stdout
    assert "device %s is registered in the station log" % DEV in p.stdout
    assert "its row is missing from archive.sqlite: it was deleted" in p.stdout
    assert "devices/%s, recorded in the station log, is missing" % DEV in p.stdout


def test_deleted_interruption_row(arch):
    seq = rows(arch, "SELECT seq FROM records WHERE type = ?", INTERRUPTION)[0]["seq"]
    sql(arch, ("DELETE FROM records WHERE type = ?", (INTERRUPTION,)))
    assert old_view_verdict(arch) == OK
    rc, out = verify(arch)
    assert rc == 1 and "OVERALL: NOT_OK" in out
    assert "missing from archive.sqlite (deleted rows): INTERRUPTION seq %d" % seq in out


def test_back_dated_stored_at(arch):
    r = rows(arch, "SELECT seq, stored_at FROM records ORDER BY seq DESC LIMIT 1")[0]
    sql(arch, ("UPDATE records SET stored_at = '2020-01-01T00:00:00.000+00:00' WHERE seq = ?",
               (r["seq"],)))
    assert old_view_verdict(arch) == OK
    rc, out = verify(arch)
    assert rc == 1
    assert "records row %s seq %d: stored_at 2020-01-01T00:00:00.000+00:00, the station log " \
           "says %s" % (DEV, r["seq"], r["stored_at"]) in out


def test_edited_offload_and_receipt_rows(arch):
    sql(arch, "UPDATE offloads SET head_went_back = 1 WHERE id = 1",
        "UPDATE receipts SET status = 'refused' WHERE number = 1")
    rc, out = verify(arch)
    assert rc == 1
    assert "offload 1 of %s: head_went_back in archive.sqlite differs" % DEV in out
    assert "receipt 1 of %s: status in archive.sqlite differs" % DEV in out


def test_planted_file_in_a_view(arch):
    (arch / "devices" / DEV / "m" / "extra.txt").write_bytes(b"hello")
    rc, out = verify(arch)
    assert rc == 1 and "devices/%s/m/extra.txt is not in the station log" % DEV in out


def test_edited_station_log(arch):
    p = arch / "log" / "entries"
    data = bytearray(p.read_bytes())
    i = data.find(b"2026-")
    if i < 0:
        i = data.find(b"20")
    data[i + 3] ^= 1
    p.write_bytes(bytes(data))
    rc, out = verify(arch)
    assert rc == 1 and "do not hash to the signed checkpoint's root" in out


def test_truncated_station_log(arch):
    p = arch / "log" / "entries"
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])
    rc, out = verify(arch)
    assert rc == 1 and "entries were removed" in out


def test_rollback_of_the_whole_archive(made, tmp_path):
    old = tmp_path / "old"
    subprocess.run(["cp", "-a", str(made / "arch-first"), str(old)], check=True)
    rc, out = verify(old)
    assert rc == 0, out                 # consistent in itself: only the checkpoint shows it
    rc, out = verify(old, "--checkpoint", made / "cp.txt")
    assert rc == 1 and "the archive was rolled back" in out


def test_checkpoint_of_another_archive_or_key(made, tmp_path, arch):
    other = tmp_path / "other"
    station.init(other)
    p = sealcam("station", "checkpoint", "--archive", other, "--out", tmp_path / "o.txt")
    assert p.returncode == 0
    rc, out = verify(arch, "--checkpoint", tmp_path / "o.txt")
    assert rc == 1 and "--checkpoint:" in out
    forged = (made / "cp.txt").read_text().replace("\n\u2014", "\n\u2014", 1)
    lines = forged.split("\n")
    lines[1] = str(int(lines[1]) - 1)
    (tmp_path / "f.txt").write_text("\n".join(lines))
    rc, out = verify(arch, "--checkpoint", tmp_path / "f.txt")
    assert rc == 1 and "does not verify" in out


# -- reindex --------------------------------------------------------------------------------

TABLES = {"devices": "id", "records": "device, seq", "receipts": "device, number",
          "offloads": "id", "segments": "device, segment", "quarantine": "id"}


def _dump(arch, skip=()):
    out = {}
    for t, order in TABLES.items():
        out[t] = [{k: v for k, v in r.items() if k not in skip}
                  for r in rows(arch, "SELECT * FROM %s ORDER BY %s" % (t, order))]
    return out


def test_reindex_rebuilds_the_index_from_the_log(arch):
    with __import__("host_tools.archive", fromlist=["Archive"]).Archive(arch) as a:
        a.quarantine("SC-FAKE", "bad signature at seq 3", [b"\xd2\x84\x40"], {"port": "x"})
    before = _dump(arch, skip=("error", "updated_at", "staged_length", "staged_chunks",
                               "staged_root"))
    sql(arch, ("DELETE FROM records WHERE type = ?", (INTERRUPTION,)),
        "UPDATE records SET stored_at = '2020-01-01T00:00:00.000+00:00'",
        "DELETE FROM receipts", "UPDATE devices SET pubkey = zeroblob(32)")
    assert verify(arch)[0] == 1
    p = sealcam("station", "reindex", "--archive", arch)
    assert p.returncode == 0, p.stderr
    moved = [f for f in os.listdir(arch) if f.startswith("archive.sqlite.before-reindex-")
             and not f.endswith(("-wal", "-shm"))]
    assert moved and "the old database is" in p.stdout
    old = sqlite3.connect(arch / moved[0])
    assert old.execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 0   # kept as it was
    after = _dump(arch, skip=("error", "updated_at", "staged_length", "staged_chunks",
                              "staged_root"))
    for t in TABLES:
        assert after[t] == before[t], t
    rc, out = verify(arch)
    assert rc == 0 and "OVERALL: OK" in out, out


def test_reindex_refuses_a_tampered_log(arch):
    flip_log_byte(arch)
    r = sealcam("station", "reindex", "--archive", arch)
    assert r.returncode == 3 and "not reindexing" in r.stderr
    assert not [f for f in os.listdir(arch) if "before-reindex" in f]


def test_station_never_re_signs_a_tampered_log(arch, made):
    flip_log_byte(arch)
    r = sealcam("station", "checkpoint", "--archive", arch)
    assert r.returncode == 3 and "not signing" in r.stderr
    r = sealcam("station", "register", "--archive", arch, "--device", "SC-NEW",
                "--key", "11" * 32)
    assert r.returncode == 3 and "not appending" in r.stderr and "Traceback" not in r.stderr


# -- read-only archives (issue 8 item 7) -------------------------------------------------

@pytest.fixture
def ro_arch(arch, tmp_path):
    """The archive behind a read-only bind mount: writes fail with EROFS even for root
    (file modes alone do not stop root, which runs these tests)."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    r = subprocess.run(["mount", "--bind", str(arch), str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("no bind mounts here (%s)" % r.stderr.decode().strip())
    try:
        r = subprocess.run(["mount", "-o", "remount,ro,bind", str(mnt)], capture_output=True)
        if r.returncode != 0:
            pytest.skip("no read-only remount here (%s)" % r.stderr.decode().strip())
        with pytest.raises(OSError):
            open(mnt / "probe", "wb")
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_read_only_archive_verify_and_report_work(ro_arch):
    rc, out = verify(ro_arch)
    assert rc == 0 and "OVERALL: OK" in out, out
    p = sealcam("report", "--archive", ro_arch)
    assert p.returncode in (0, 1) and "Traceback" not in p.stderr, p.stderr


def test_read_only_archive_offload_dock_checkout_exit_3(ro_arch, made, tmp_path):
    """A docked (fake) recorder on a real pty, so that each verb gets as far as the
    archive."""
    sd = tmp_path / "sd"
    subprocess.run(["cp", "-a", str(made / "sd"), str(sd)], check=True)
    s = rw.RefStore(sd, chunk=65536)
    d = fakedev.FakeDevice(s, trust=[station.station_pub(ro_arch)]).start()
    try:
        for argv in (["offload", "--port", d.port, "--archive", ro_arch],
                     ["dock", "--port", d.port, "--archive", ro_arch],
                     ["checkout", "--port", d.port, "--archive", ro_arch, "--officer",
                      "PC-1", "--unit", "U1"],
                     ["station", "register", "--archive", ro_arch, "--device", "SC-NEW",
                      "--key", "11" * 32],
                     ["station", "checkpoint", "--archive", ro_arch]):
            p = sealcam(*argv)
            err = p.stderr.strip()
            assert p.returncode == 3, (argv, p.stdout, err)
            assert "Traceback" not in err and len(err.splitlines()) == 1, (argv, err)
            assert "cannot be written" in err, (argv, err)
    finally:
        d.stop()


def test_replaced_station_key_pair_and_re_signed_log(arch, made):
    """An editor who replaces station.pub (and the log's checkpoint with one of their own
    key) is caught by station.key, and without it by an exported checkpoint."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from host_tools.tlog import note
    from host_tools.tlog.log import Log
    origin = (arch / "log" / "checkpoint").read_text().split("\n")[0]
    sk = Ed25519PrivateKey.generate()
    lg = Log(arch, origin, readonly=True)
    (arch / "log" / "checkpoint").write_bytes(
        note.sign_note(note.checkpoint_text(origin, lg.size, lg.root()), origin, sk))
    (arch / "station.pub").write_text(rw.raw_pub(sk).hex() + "\n")
    rc, out = verify(arch)
    assert rc == 1 and "station.pub is not the public key of station.key" in out
    os.unlink(arch / "station.key")
    rc, out = verify(arch)
    assert rc == 0, out             # consistent in itself once the real key is gone ...
    rc, out = verify(arch, "--checkpoint", made / "cp.txt")
    assert rc == 1 and "--checkpoint:" in out and "no signature" in out   # ... but not this


def test_offload_stores_nothing_on_a_tampered_log(arch, made, tmp_path):
    """The station does not extend (and so re-sign) a log that an editor changed."""
    flip_log_byte(arch)
    before = rows(arch, "SELECT COUNT(*) n FROM records")[0]["n"]
    cp = (arch / "log" / "checkpoint").read_bytes()
    s = rw.RefStore(tmp_path / "sd2", device="SC-00FFEE01", seed=b"\x42" * 32)
    s.boot()
    s.rec_stop()
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)]).start()
    try:
        r = sealcam("offload", "--port", d.port, "--archive", arch, "--register",
                    "--fingerprint", keys.fingerprint(s.pubkey))
    finally:
        d.stop()
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "station log" in r.stdout + r.stderr and "not appending" in r.stdout + r.stderr
    assert rows(arch, "SELECT COUNT(*) n FROM records")[0]["n"] == before
    assert rows(arch, "SELECT COUNT(*) n FROM devices WHERE id = 'SC-00FFEE01'")[0]["n"] == 0
    assert (arch / "log" / "checkpoint").read_bytes() == cp


def test_an_archive_older_than_its_log_is_adopted_only_by_a_person(arch):
    """An archive made before the station log: no writer adopts it on its own (exit 3, one
    line saying what to do); `sealcam station adopt` states the index in the log after an
    `adopt` entry, once; verify then says at best OK_WITH_MISSING_INFO and names the
    adoption; from then on edits show."""
    shutil.rmtree(arch / "log")
    sql(arch, "DELETE FROM meta WHERE key = 'log'")
    rc, out = verify(arch)
    assert rc == 1 and "never registered it" in out and "station log: missing" in out
    p = sealcam("station", "checkpoint", "--archive", arch)
    assert p.returncode == 3 and "made before the station log" in p.stderr \
        and "sealcam station adopt" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (arch / "log" / "checkpoint").exists()
    p = sealcam("station", "adopt", "--archive", arch)
    assert p.returncode == 0, p.stderr
    rc, out = verify(arch)
    assert rc == 0 and "by adopting an index made before it" in out, out
    assert "OVERALL: OK_WITH_MISSING_INFO" in out and "unproven" in out
    size = int((arch / "log" / "checkpoint").read_text().split("\n")[1])
    assert sealcam("station", "checkpoint", "--archive", arch).returncode == 0
    assert int((arch / "log" / "checkpoint").read_text().split("\n")[1]) == size   # once
    p = sealcam("station", "adopt", "--archive", arch)
    assert p.returncode == 3 and "already has a station log" in p.stderr
    sql(arch, "UPDATE records SET stored_at = '2020-01-01T00:00:00.000+00:00' WHERE seq = 3")
    rc, out = verify(arch)
    assert rc == 1 and "seq 3: stored_at 2020-01-01" in out


def test_edited_columns_derived_from_signed_records(arch):
    """The index's copies of what the signed records say (rtc, size, segment) and of the
    key (fingerprint) are checked too: a report reading them is not misled."""
    sql(arch, "UPDATE records SET rtc = rtc - 86400000 WHERE seq = 2",
        "UPDATE devices SET fingerprint = '0000:0000'")
    rc, out = verify(arch)
    assert rc == 1
    assert "records row %s seq 2: rtc" % DEV in out and "not what its signed record says" in out
    assert "fingerprint '0000:0000' is not that of its key" in out


@pytest.mark.parametrize("key", [b"\x01" * 5, bytes(32), bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000")])
def test_planted_device_with_an_unusable_key(arch, key):
    sql(arch, ("INSERT INTO devices (id, pubkey, fingerprint, registered_at) VALUES "
               "('SC-PLANTED', ?, 'x', '2026-01-01')", (key,)))
    subprocess.run(["cp", "-a", str(arch / "devices" / DEV), str(arch / "devices" /
                                                                  "SC-PLANTED")], check=True)
    rc, out = verify(arch)
    assert rc == 1 and "Traceback" not in out
    assert "device SC-PLANTED is in archive.sqlite but the station log never registered it" \
        in out
    assert "devices/SC-PLANTED/head.cbor is not in the station log" in out
