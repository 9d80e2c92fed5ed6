"""Attacks on a real station archive by an editor without the station key (issue 8 review,
findings A1-A12): each test is the reproducer of a finding, made on an archive built by two
real offloads over a pty (the `made` fixture of test_archive_edits)."""
import os
import shutil
import struct
import subprocess

import cbor2

from host_tools import station
from host_tools.tlog.log import Log, origin_for

from test_archive_edits import DEV, arch, made, rows, sealcam, sql, verify  # noqa: F401


def _pub():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _origin(arch):
    return (arch / "log" / "checkpoint").read_text().split("\n")[0]


def _append_raw(arch, entries):
    out = b""
    for e in entries:
        blob = cbor2.dumps(e, canonical=True)
        out += struct.pack(">I", len(blob)) + blob
    with open(arch / "log" / "entries", "ab") as f:
        f.write(out)


def _cp_size(arch):
    return int((arch / "log" / "checkpoint").read_text().split("\n")[1])


# -- A12: the station never signs an entry it did not write --------------------------------

def test_a12_entries_grafted_from_another_station_are_never_signed(arch, tmp_path):
    """Entries of another station's log (a fake recorder registered there) appended to
    this archive's log: the station refuses to sign or append (exit 3, checkpoint
    unchanged), and verify names them as not written by this station."""
    other = tmp_path / "B"
    station.init(other)
    r = sealcam("station", "register", "--archive", other, "--device", "SC-00FAKE01",
                "--key", _pub())
    assert r.returncode == 0, r.stderr
    graft = [e for _, _, e in Log(other, _origin(other), readonly=True).entries()]
    assert graft and graft[0]["type"] == "register"
    cp = (arch / "log" / "checkpoint").read_bytes()
    n = _cp_size(arch)
    _append_raw(arch, graft)
    for args in (("station", "checkpoint", "--archive", arch),
                 ("station", "register", "--archive", arch, "--device", "SC-00FAKE02",
                  "--key", _pub())):
        r = sealcam(*args)
        assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
        assert "not written by this station" in r.stderr and "not signing" in r.stderr
    assert (arch / "log" / "checkpoint").read_bytes() == cp
    assert not (arch / "log" / "checkpoint.new").exists()
    rc, out = verify(arch)
    assert rc == 1 and "log/entries: entry %d was not written by this station" % n \
        in out, out


def test_a12_a_cut_append_is_settled_from_its_pending_checkpoint(arch):
    """The state a power cut leaves inside an append (pending checkpoint installed, entries
    written, checkpoint not yet renamed): verify accepts the entries (signed by the pending
    checkpoint), the next station write installs it; a stale pending checkpoint (the cut
    came before the entries) and a torn tail are dropped."""
    sk = station.load_station_key(arch)
    aid = _origin(arch).split("/", 1)[1]
    lg = Log(arch, origin_for(aid), signer=sk)
    n = lg.size
    entry = {"type": "head", "at": "2026-12-01T00:00:00.000+00:00", "device": DEV,
             "seq": rows(arch, "SELECT last_head_seq s FROM devices")[0]["s"],
             "hash": rows(arch, "SELECT last_head_hash h FROM devices")[0]["h"]}
    blob = cbor2.dumps(entry, canonical=True)
    from host_tools.tlog import merkle
    edge = merkle.CompactRange()
    for h in lg.hashes:
        edge.append(h)
    edge.append(merkle.leaf_hash(blob))
    lg._install(lg.pending_path, n + 1, edge.root())
    _append_raw(arch, [entry])
    rc, out = verify(arch)
    assert rc == 0 and "OVERALL: OK" in out, out
    r = sealcam("station", "checkpoint", "--archive", arch)
    assert r.returncode == 0, r.stderr
    assert _cp_size(arch) == n + 1 and not (arch / "log" / "checkpoint.new").exists()
    # a cut before the entries were complete: stale pending + torn tail
    lg = Log(arch, origin_for(aid), signer=sk)
    lg._install(lg.pending_path, n + 5, bytes(32))
    with open(arch / "log" / "entries", "ab") as f:
        f.write(struct.pack(">I", 100) + b"\x01" * 10)
    rc, out = verify(arch)
    assert rc == 0, out
    r = sealcam("station", "register", "--archive", arch, "--device", "SC-00NEW001",
                "--key", _pub())
    assert r.returncode == 0, r.stderr
    assert _cp_size(arch) == n + 2 and not (arch / "log" / "checkpoint.new").exists()
    rc, out = verify(arch)
    assert rc == 0 and "OVERALL: OK" in out, out


def test_a12_a_pending_checkpoint_never_covers_more_than_the_station_wrote(arch):
    """A pending checkpoint the station signed for entries it then did not write (a cut)
    does not let an editor's other entries in."""
    sk = station.load_station_key(arch)
    aid = _origin(arch).split("/", 1)[1]
    lg = Log(arch, origin_for(aid), signer=sk)
    n = lg.size
    lg._install(lg.pending_path, n + 1, lg.root())        # some other root
    _append_raw(arch, [{"type": "adopt", "at": "x", "devices": 0}])
    r = sealcam("station", "checkpoint", "--archive", arch)
    assert r.returncode == 3 and "not written by this station" in r.stderr
    assert _cp_size(arch) == n


# -- A1: adoption is never automatic ---------------------------------------------------------

def test_a1_an_emptied_log_is_never_adopted_on_its_own(arch):
    """The editor drops the newest records and empties the log: no station write adopts
    the edited index (exit 3, one line saying what to do); verify is NOT_OK."""
    keep = rows(arch, "SELECT record_seq FROM receipts WHERE number = 1")[0]["record_seq"]
    sql(arch, ("DELETE FROM records WHERE seq > ?", (keep,)),
        "DELETE FROM receipts WHERE number = 2")
    open(arch / "log" / "entries", "wb").close()
    os.unlink(arch / "log" / "checkpoint")
    for args in (("station", "checkpoint", "--archive", arch),
                 ("station", "register", "--archive", arch, "--device", "SC-00NEW001",
                  "--key", _pub())):
        r = sealcam(*args)
        assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
        assert "station log" in r.stderr and "is missing" in r.stderr \
            and "restore log/" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (arch / "log" / "checkpoint").exists()
    assert os.path.getsize(arch / "log" / "entries") == 0
    rc, out = verify(arch)
    assert rc == 1 and "station log: missing" in out, out
    # a person may still start it again: the adoption is then named, never plain OK
    r = sealcam("station", "adopt", "--archive", arch)
    assert r.returncode == 0, r.stderr
    rc, out = verify(arch)
    assert "OVERALL: OK\n" not in out and "starts with an adoption" in out, out


def test_a1_an_adoption_later_in_a_log_is_a_problem(tmp_path):
    from host_tools.tlog.replay import State
    st = State()
    st.apply(0, {"type": "adopt", "at": "t", "devices": 0})
    st.apply(5, {"type": "adopt", "at": "t", "devices": 0})
    assert st.adopted["entry"] == 0 and "only ever starts a log" in st.problems[0]


def test_a1_a_fresh_archive_starts_signed(tmp_path):
    station.init(tmp_path / "a")
    assert _cp_size(tmp_path / "a") == 0
    rc, out = verify(tmp_path / "a")
    assert "station log" in out and "Traceback" not in out
    shutil.rmtree(tmp_path / "a" / "log")
    rc, out = verify(tmp_path / "a")
    assert rc == 1 and "station log: missing" in out, out


# -- A8: the station never writes through a symlink planted in a view ------------------------

def test_a8_symlinked_view_folder_and_edited_media_name_write_nothing_outside(tmp_path):
    """The reproducer: an offload cut mid-segment; the editor points devices/ID/m at a
    victim folder and names the segment's media `m/victim.conf` in archive.sqlite; the
    resumed offload must leave the victim alone, say so in one line and not crash."""
    import random

    import fakedev
    import refwriter as rw
    from host_tools.offload import offload
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "victim.conf").write_text("precious=1\n")
    arch = tmp_path / "arch"
    station.init(arch)
    s = rw.RefStore(tmp_path / "sd", chunk=65536)
    s.boot()
    s.rec_start()
    s.write(random.Random(1).randbytes(600_000))
    s.checkpoint()
    s.close()
    s.rec_stop()
    pub = station.station_pub(arch)
    d = fakedev.FakeDevice(s, trust=[pub], max_frame=64 * 1024, break_after=300_000).start()
    try:
        offload(d.port, arch, register=True, timeout=5)
    finally:
        d.stop()
    sql(arch, "UPDATE segments SET media = 'm/victim.conf'")
    rc, out = verify(arch)
    assert rc == 1 and "segments row %s 1: media is not what the signed records say" % DEV \
        in out, out

    def offload_again():
        d = fakedev.FakeDevice(s, trust=[pub], max_frame=64 * 1024).start()
        try:
            return sealcam("offload", "--port", d.port, "--archive", arch, "--timeout", "10")
        finally:
            d.stop()

    m = arch / "devices" / DEV / "m"
    shutil.rmtree(m, ignore_errors=True)
    os.symlink(victim, m)
    r = offload_again()
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    assert "segments row 1 of archive.sqlite" in r.stderr, r.stderr
    assert os.listdir(victim) == ["victim.conf"]
    assert (victim / "victim.conf").read_text() == "precious=1\n"
    # the name right again: the link m/ is still refused, never followed
    sql(arch, "UPDATE segments SET media = 'm/00000001.mkv'")
    r = offload_again()
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    assert "devices/%s/m in the archive" % DEV in r.stderr and "symbolic link" in r.stderr
    assert os.listdir(victim) == ["victim.conf"]


def test_a8_link_refuses_a_symlinked_device_folder(arch, tmp_path):
    from host_tools.archive import Archive, ArchiveError
    victim = tmp_path / "victim"
    victim.mkdir()
    view = arch / "devices" / DEV
    shutil.move(str(view), str(victim / DEV))
    os.symlink(victim / DEV, view)
    before = sorted(os.listdir(victim / DEV / "rec"))
    with Archive(arch) as a:
        h = a.put_bytes(b"x")
        try:
            a.link(DEV, "rec/99999999.log", h)
            raised = None
        except ArchiveError as e:
            raised = str(e)
    assert raised and "symbolic link" in raised and "devices/%s" % DEV in raised
    assert sorted(os.listdir(victim / DEV / "rec")) == before


def test_a8_deleted_or_edited_segments_rows_are_named(arch):
    segs = rows(arch, "SELECT segment FROM segments ORDER BY segment")
    first, last = segs[0]["segment"], segs[-1]["segment"]
    sql(arch, ("DELETE FROM segments WHERE segment = ?", (first,)),
        ("UPDATE segments SET length = length - 1 WHERE segment = ?", (last,)))
    rc, out = verify(arch)
    assert rc == 1
    assert "segments row %s %d (m/%08d.mkv) is missing from archive.sqlite" % (
        DEV, first, first) in out, out
    assert "segments row %s %d: length is not what the signed records say" % (DEV, last) \
        in out, out


# -- A11 / A3: the report reads only what the signed log proves ------------------------------

def test_a11_bytes_after_the_signed_log_never_make_the_report_fall_back(arch):
    """Back-dated stored_at in archive.sqlite and five bytes appended to log/entries: the
    report still takes stored_at from the signed prefix (the late offloads stay listed) and
    names the unsigned entry as a problem."""
    from host_tools import report
    late = len(report.build_report(arch)["late_offloads"])
    assert late > 0
    sql(arch, "UPDATE records SET stored_at = '2023-11-15T04:00:00.000+00:00'")
    with open(arch / "log" / "entries", "ab") as f:
        f.write(b"\x00\x00\x00\x01\xff")
    rep = report.build_report(arch)
    assert len(rep["late_offloads"]) == late
    msgs = [p["message"] for p in rep["problems"] if p["kind"] == "log_not_verified"]
    assert any("not written by this station" in m for m in msgs), msgs
    assert not any("cannot be read" in m for m in msgs), msgs
    assert report.exit_code(rep) == 1


def test_a3_report_on_an_archive_whose_log_was_removed_is_a_problem(arch):
    from host_tools import report
    sql(arch, "UPDATE records SET stored_at = '2023-11-15T04:00:00.000+00:00'")
    os.unlink(arch / "log" / "entries")
    os.unlink(arch / "log" / "checkpoint")
    r = sealcam("report", "--archive", arch)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "the station log is missing" in r.stdout and "unproven" in r.stdout, r.stdout
    rep = report.build_report(arch)
    assert rep["devices"] == [DEV] and rep["summary"][DEV]["records"] > 0   # still listed


# -- A6: no log file can hang verify ---------------------------------------------------------

def test_a6_a_fifo_or_symlink_for_a_log_file_is_named_quickly(arch):
    import time
    for rel, kind in (("log/entries", "fifo"), ("log/checkpoint", "fifo"),
                      ("station.pub", "fifo"), ("log/checkpoint", "symlink")):
        p = arch / rel
        keep = p.read_bytes()
        p.unlink()
        if kind == "fifo":
            os.mkfifo(p)
        else:
            os.symlink("/dev/urandom", p)
        t0 = time.monotonic()
        r = sealcam("verify", arch)
        assert time.monotonic() - t0 < 30
        assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr
        what = "a FIFO" if kind == "fifo" else "a symbolic link"
        assert "%s is %s" % (rel, what) in r.stdout, r.stdout
        rr = sealcam("report", "--archive", arch)
        assert rr.returncode in (1, 3) and "Traceback" not in rr.stdout + rr.stderr
        p.unlink()
        p.write_bytes(keep)


# -- A4: padding the log costs neither memory nor time ---------------------------------------

def test_a4_a_padded_log_is_counted_not_indexed(arch):
    import time
    from host_tools.tlog.log import UNSIGNED_COUNT_MAX, UNSIGNED_INDEXED
    n = _cp_size(arch)
    with open(arch / "log" / "entries", "ab") as f:
        f.write(bytes(4 * 2_000_000))                   # 2M empty entries
    lg = Log(arch, _origin(arch), readonly=True,
             pub=bytes.fromhex((arch / "station.pub").read_text().strip()))
    assert lg.size == n + UNSIGNED_INDEXED and len(lg._hashes) == 32 * lg.size
    assert lg.unindexed == UNSIGNED_COUNT_MAX and lg.unindexed_more
    t0 = time.monotonic()
    r = sealcam("verify", arch)
    assert time.monotonic() - t0 < 20
    assert r.returncode == 1 and "entries %d and after" % n in r.stdout, r.stdout[-2000:]


def test_a4_an_absurd_length_past_the_signed_log_is_named_and_the_rest_still_read(arch):
    from host_tools import report
    late = len(report.build_report(arch)["late_offloads"])
    sql(arch, "UPDATE records SET stored_at = '2023-11-15T04:00:00.000+00:00'")
    with open(arch / "log" / "entries", "ab") as f:
        f.write(b"\xff\xff\xff\xff" + bytes(64))
    rc, out = verify(arch)
    assert rc == 1 and "claims 4294967295 bytes" in out, out
    r = sealcam("station", "checkpoint", "--archive", arch)
    assert r.returncode == 3 and "damaged" in r.stderr
    rep = report.build_report(arch)
    assert len(rep["late_offloads"]) == late and report.exit_code(rep) == 1


# -- A7: values of the wrong type in archive.sqlite ------------------------------------------

_A7_EDITS = [
    ("blob device id", ["PRAGMA foreign_keys = OFF", "UPDATE devices SET id = CAST(id AS BLOB)",
                        "UPDATE records SET device = CAST(device AS BLOB)"],
     "devices row b'SC-00A1B2C3': id holds blob, not text"),
    ("int pubkey", ["UPDATE devices SET pubkey = 12345"], "pubkey holds integer, not blob"),
    ("text pubkey", ["UPDATE devices SET pubkey = 'abcdefghijabcdefghijabcdefghij12'"],
     "pubkey holds text, not blob"),
    ("int record", ["UPDATE records SET data = 123 WHERE seq = 3"],
     "records row 'SC-00A1B2C3' 3: data holds integer, not blob"),
    ("int last head", ["UPDATE devices SET last_head = 7"], "last_head holds integer"),
    ("text seq", ["UPDATE records SET seq = '3x' WHERE seq = 3"],
     "records row 'SC-00A1B2C3' '3x': seq holds text, not integer"),
    ("int receipt", ["UPDATE receipts SET receipt = 5"], "receipt holds integer, not blob"),
]


def test_a7_wrong_types_in_the_index_are_named_never_a_traceback(made, tmp_path):
    """Each edit on an archive made before STRICT tables (the tables re-made without it):
    verify and report name the row (exit 1), no traceback."""
    import sqlite3
    base = tmp_path / "base"
    subprocess.run(["cp", "-a", str(made / "arch"), str(base)], check=True)
    db = sqlite3.connect(base / "archive.sqlite")
    db.execute("PRAGMA foreign_keys = OFF")
    for (name, sql_) in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                                   "AND name NOT LIKE 'sqlite_%'").fetchall():
        db.execute("ALTER TABLE %s RENAME TO old_%s" % (name, name))
        db.execute(sql_.replace(" STRICT", ""))
        db.execute("INSERT INTO %s SELECT * FROM old_%s" % (name, name))
        db.execute("DROP TABLE old_%s" % name)
    db.commit()
    db.close()
    for name, stmts, want in _A7_EDITS:
        a = tmp_path / name.replace(" ", "-")
        subprocess.run(["cp", "-a", str(base), str(a)], check=True)
        db = sqlite3.connect(a / "archive.sqlite")
        for st in stmts:
            db.execute(st)
        db.commit()
        db.close()
        rc, out = verify(a)
        assert rc == 1 and "Traceback" not in out and want in out, (name, out[-3000:])
        r = sealcam("report", "--archive", a)
        assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, (name, r.stderr)
        assert want in r.stdout, (name, r.stdout[-2000:])


def test_a7_new_archives_have_strict_tables(made):
    import sqlite3
    from host_tools.archive.schema import STRICT
    if not STRICT:
        return
    db = sqlite3.connect(made / "arch" / "archive.sqlite")
    try:
        with db:
            db.execute("UPDATE devices SET pubkey = 12345")
        raised = False
    except sqlite3.IntegrityError:
        raised = True
    db.close()
    assert raised


# -- A9: a sparse or oversized object costs no time ------------------------------------------

def test_a9_a_sparse_giant_object_is_named_without_hashing_it(arch):
    import time
    p = arch / "objects" / "ab" / ("cd" + "0" * 60)
    p.parent.mkdir(exist_ok=True)
    with open(p, "wb") as f:
        f.truncate(20 << 30)
    t0 = time.monotonic()
    rc, out = verify(arch)
    assert time.monotonic() - t0 < 20
    assert rc == 1 and "a sparse file (21474836480 bytes" in out and p.name in out, out


def test_a9_an_object_larger_than_the_log_allows_is_not_hashed(arch):
    from host_tools.tlog.objects import OTHER_MAX
    p = arch / "objects" / "ab" / ("ef" + "0" * 60)
    p.parent.mkdir(exist_ok=True)
    with open(p, "wb") as f:
        f.write(os.urandom(1 << 20) * (OTHER_MAX // (1 << 20) + 1))
    rc, out = verify(arch)
    assert rc == 1 and "more than the %d the station log and the signed records allow" \
        % OTHER_MAX in out, out
    # a view's media object may not grow past its signed length either
    from host_tools.tlog.objects import object_caps
    from host_tools.archive import Archive
    from host_tools.archive_verify import check_log, station_pub_checked
    from host_tools.tlog.audit import cross_check
    from host_tools.tlog.replay import replay
    with Archive(arch, readonly=True) as a:
        st = replay(a.log(), check_log(a, station_pub_checked(a.root)[0])[0])
        cross_check(a, st)
        caps = object_caps(st)
        segs = {s["segment"]: s for s in a.segments(DEV)}
        for path, sha in st.objects[DEV].items():
            if path.startswith("m/") and path.endswith(".mkv"):
                assert caps[sha.hex()] == segs[int(path[2:10])]["length"]


def test_a6_a_fifo_given_as_checkpoint_is_refused_not_waited_on(arch, tmp_path):
    fifo = tmp_path / "cp.txt"
    os.mkfifo(fifo)
    rc, out = verify(arch, "--checkpoint", fifo)
    assert rc == 3 and "is a FIFO (named pipe), not a regular file" in out, out
