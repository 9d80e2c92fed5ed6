"""A verifier no card can crash (issue 8 §3, §6): crafted stores against `sealcam verify`.

Each attack runs the real CLI in a subprocess with a timeout and its memory capped
(RLIMIT_AS), so a hang or a file read whole fails the test instead of stalling the suite,
and asserts the verdict (exit code), that the bad file is
named, that no traceback is printed, and that the verifier finished quickly."""
import hashlib
import json
import os
import subprocess
import sys
import time

import cbor2
import pytest

from host_tools import keys
from host_tools.verify import NOT_OK, OK, verify_store

HERE = os.path.dirname(os.path.abspath(__file__))
import refwriter as rw  # noqa: E402

LOG0 = "rec/00000000.log"
MEDIA = "m/00000002.mkv"
IDX = "m/00000002.idx"
GIB4 = 4 << 30
FAST = 15.0          # seconds; the verifier itself takes well under one on these stores


MEMORY_CAP = 768 << 20   # address space of the verifier process: no file is read whole


def _cap_memory():
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def sealcam(*args, timeout=60):
    """(exit code, stdout, stderr, seconds) of `sealcam ARGS` in a subprocess whose
    memory is capped (MEMORY_CAP)."""
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", "import sys; from host_tools.cli import main; "
                        "sys.exit(main(sys.argv[1:]))", *args],
                       capture_output=True, text=True, timeout=timeout,
                       cwd=os.path.dirname(HERE), preexec_fn=_cap_memory)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def verify_cli(store, *extra, key=True):
    args = ["verify", store.root, *extra]
    if key:
        kf = os.path.join(os.path.dirname(store.root), "device.pub")
        with open(kf, "wb") as f:
            f.write(store.pubkey)
        args += ["--key", kf]
    rc, out, err, secs = sealcam(*args)
    assert "Traceback" not in out + err, err
    assert secs < FAST, secs
    return rc, out, err


@pytest.fixture
def store(tmp_path):
    """BOOT, REFUSAL, REC_START(2), CHECKPOINT 3..5, SEGMENT 6, REC_STOP 7; media 30400 B."""
    return rw.session(tmp_path / "sd")


def replace(store, rel, how):
    p = store.path(rel)
    if os.path.lexists(p):
        os.remove(p)
    how(p)


def symlink_to(target):
    return lambda p: os.symlink(target, p)


def fifo(p):
    os.mkfifo(p)


def sparse(p, size=GIB4, prefix=b""):
    with open(p, "wb") as f:
        f.write(prefix)
        f.truncate(size)


def assert_not_ok_naming(store, rel, *words, key=True):
    rc, out, err = verify_cli(store, key=key)
    assert rc == 1, (rc, out, err)
    assert rel in out, out
    for w in words:
        assert w in out, (w, out)
    return out


# --- symlinks, FIFOs, devices -----------------------------------------------------------

@pytest.mark.parametrize("rel", [LOG0, MEDIA, IDX, "head.cbor"])
def test_store_file_symlinked_to_dev_zero(store, rel):
    replace(store, rel, symlink_to("/dev/zero"))
    assert_not_ok_naming(store, rel, "symbolic link")


@pytest.mark.parametrize("rel", [LOG0, MEDIA, IDX, "head.cbor"])
def test_store_file_that_is_a_fifo_does_not_hang(store, rel):
    replace(store, rel, fifo)
    assert_not_ok_naming(store, rel, "FIFO")


def test_symlink_to_a_good_copy_is_still_refused(store, tmp_path):
    """Even a link to the very same bytes: a recorder never writes links."""
    good = tmp_path / "copy.mkv"
    good.write_bytes(open(store.path(MEDIA), "rb").read())
    replace(store, MEDIA, symlink_to(str(good)))
    assert_not_ok_naming(store, MEDIA, "symbolic link")


@pytest.mark.parametrize("d", ["rec", "m"])
def test_symlinked_store_directory_is_refused(store, tmp_path, d):
    elsewhere = tmp_path / ("moved-" + d)
    os.rename(store.path(d), elsewhere)
    os.symlink(elsewhere, store.path(d))
    rc, out, _ = verify_cli(store)
    assert rc == 1 and "symbolic link" in out and d in out, out


def test_device_node_is_refused(store):
    try:
        os.remove(store.path(MEDIA))
        os.mknod(store.path(MEDIA), 0o600 | 0o020000, os.makedev(1, 5))   # /dev/zero
    except (PermissionError, OSError):
        pytest.skip("cannot make a device node here")
    assert_not_ok_naming(store, MEDIA, "a device")


def test_unreferenced_fifo_and_dir_in_m_are_named(store):
    os.mkfifo(store.path("m/00000003.mkv"))
    os.mkdir(store.path("m/sub"))
    rc, out, _ = verify_cli(store)
    assert rc == 1 and "m/00000003.mkv is a FIFO" in out and "m/sub is a directory" in out


# --- sparse giants and absurd sizes ---------------------------------------------------------

def test_sparse_4gib_log_is_not_read(store):
    replace(store, LOG0, sparse)
    assert_not_ok_naming(store, LOG0, "more than the")


def test_sparse_4gib_head_is_not_read(store):
    replace(store, "head.cbor", sparse)
    assert_not_ok_naming(store, "head.cbor", "more than the")


def test_sparse_4gib_media_of_a_closed_segment(store):
    data = open(store.path(MEDIA), "rb").read()
    replace(store, MEDIA, lambda p: sparse(p, GIB4, data))
    assert_not_ok_naming(store, MEDIA, "longer than its closed manifest")


def test_sparse_4gib_index(store):
    idx = open(store.path(IDX), "rb").read()
    replace(store, IDX, lambda p: sparse(p, GIB4, idx))
    rc, out, _ = verify_cli(store)
    assert rc == 0, out            # only the signed number of entries is read


def test_sparse_4gib_media_of_an_open_segment(tmp_path):
    s = rw.RefStore(tmp_path / "sd")
    s.boot()
    s.rec_start()
    s.write(b"x" * 10000)
    s.checkpoint()
    with open(s.path(s.seg.media), "r+b") as f:
        f.truncate(GIB4)
    rc, out, _ = verify_cli(s)
    assert rc == 0 and "OK_WITH_MISSING_INFO" in out and "unsigned" in out, out


def _signed_store(tmp_path, start_fields=None, ck_fields=None):
    """A store whose REC_START / CHECKPOINT carry crafted values, signed by the real key."""
    s = rw.RefStore(tmp_path / "sd")
    s.boot()
    rs = s.rec_start()
    if start_fields:
        body = rw.decode_record(rs.data)
        body.update(start_fields)
        _rewrite(s, rs, body)
    s.write(b"y" * 9000)
    if ck_fields:
        body = s.body(rw.CHECKPOINT, {10: rs.seq, 13: 8192, 14: 2, 15: s.seg.root})
        body.update(ck_fields)
        s.append_raw(rw.sign_record(body, s.key), body[1], rw.CHECKPOINT)
    else:
        s.checkpoint()
    return s


def _rewrite(s, rec, body):
    """Replace the last record (rec) by one with ``body``, re-signed; fix the chain state."""
    data = rw.sign_record(body, s.key)
    p = s.path(rec.file)
    raw = open(p, "rb").read()
    assert raw.endswith(rec.data)
    with open(p, "wb") as f:
        f.write(raw[:len(raw) - len(rec.data)] + data)
    s.records[-1] = rw.Rec(rec.seq, rec.type, rec.file, rec.offset, data)
    s.log_size += len(data) - len(rec.data)
    s.prev = hashlib.sha256(data).digest()
    s._head(data)


def test_huge_signed_chunk_size(tmp_path):
    s = _signed_store(tmp_path, start_fields={12: 1 << 40})
    rc, out, _ = verify_cli(s)
    assert rc == 1 and "chunk size 1099511627776" in out, out


def test_huge_signed_chunk_count(tmp_path):
    s = _signed_store(tmp_path, ck_fields={13: (1 << 40) * 4096, 14: 1 << 40})
    rc, out, _ = verify_cli(s)
    assert rc == 1 and "chunks" in out, out


def test_record_with_a_huge_seq_is_quick(store):
    bad = rw.sign_record({0: rw.REFUSAL, 1: 1 << 62, 2: bytes(32), 3: "SC-00A1B2C3", 4: 1,
                          5: 1, 6: 1, 7: None, 8: "x", 17: "r", 19: "delete", 20: "t",
                          21: "api"}, rw.key_from_seed(b"\x01" * 32))
    with open(store.path(LOG0), "ab") as f:
        f.write(bad)
    rc, out, _ = verify_cli(store)
    assert rc == 1 and str(1 << 62) in out


@pytest.mark.parametrize("blob", [b"\xd2\x84\x5b" + b"\xff" * 8,        # 2^64-byte bstr
                                  b"\x81" * 200_000,                     # deep nesting
                                  b"\xd2\x84" + b"\x9f" * 50_000])       # indefinite arrays
def test_crafted_cbor_in_a_log(store, blob):
    with open(store.path("rec/00000008.log"), "wb") as f:
        f.write(blob)
    rc, out, _ = verify_cli(store)
    assert rc in (0, 1) and "rec/00000008.log" in out, out


def test_many_planted_files_are_named_and_bounded(store):
    for i in range(1500):
        open(store.path("m/x%04d.bin" % i), "wb").close()
    rc, out, _ = verify_cli(store)
    assert rc == 1 and "m/x0000.bin" in out and "more failures" in out
    rep = verify_store(store.root, store.pubkey)
    assert len([x for x in rep.segments if x.segment is None]) == 1000
    assert len(rep.reasons) <= 101 and len(rep.records) == 8


# --- signed paths and ids -------------------------------------------------------------------

@pytest.mark.parametrize("media", ["m/00000002\x00.mkv", "m/0000\x1b[2J0002.mkv",
                                   "m/00000005.mkv", "../00000002.mkv", "m/00000002.idx",
                                   "/etc/passwd"])
def test_signed_media_path_not_derived_from_its_seq(tmp_path, media):
    s = _signed_store(tmp_path, start_fields={11: media})
    rc, out, _ = verify_cli(s)
    assert rc == 1 and "REC_START" in out and ("media path" in out or "path" in out), out
    assert "\x00" not in out and "\x1b" not in out


def test_device_id_with_a_trailing_newline_fails_the_id_check(tmp_path):
    s = rw.RefStore(tmp_path / "sd", device="SC-00A1B2C3\n")
    s.boot()
    s.refusal()
    rc, out, _ = verify_cli(s)
    assert rc == 1 and "is not a device id" in out and "\\n" in out, out


def test_control_characters_in_signed_strings_are_escaped(tmp_path):
    s = rw.RefStore(tmp_path / "sd", officer="OFC\x1b]0;pwned\x07")
    s.boot()
    s.refusal(target="m/\x1b[31mred\u202e.txt")
    s.rec_start()
    s.interrupt("weather\x1b[2J\u202e")
    rc, out, _ = verify_cli(s, "--all")
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    rc, out, _ = verify_cli(s, "--json")
    assert "\x1b" not in out and "\u202e" not in out


# --- keys -----------------------------------------------------------------------------------

SMALL_ORDER = b"\x01" + bytes(31)                  # the identity point
NON_CANONICAL = b"\xee" + b"\xff" * 30 + b"\x7f"   # y = p + 1


class _ConstantSigner:
    """No secret: under the identity key this one signature verifies for every message."""

    def sign(self, msg):
        return b"\x01" + bytes(31) + bytes(32)


def small_order_store(tmp_path):
    s = rw.RefStore(tmp_path / "sd")
    s.key, s.pubkey = _ConstantSigner(), SMALL_ORDER
    s.boot()
    s.rec_start()
    s.write(b"z" * 9000)
    s.close()
    return s


def test_small_order_key_store_is_not_ok(tmp_path):
    s = small_order_store(tmp_path)
    rc, out, _ = verify_cli(s, key=False)
    assert rc == 1 and "small order" in out, out
    rep = verify_store(s.root)
    assert rep.verdict == NOT_OK and "small order" in rep.first_failure["reason"]


@pytest.mark.parametrize("key", [SMALL_ORDER, NON_CANONICAL, bytes(32)])
def test_weak_pinned_key_is_refused_with_exit_3(tmp_path, key):
    s = small_order_store(tmp_path)
    kf = tmp_path / "weak.pub"
    kf.write_bytes(key)
    rc, out, err, _ = sealcam("verify", s.root, "--key", str(kf))
    assert rc == 3 and "Traceback" not in err and str(kf) in err, err
    assert "small order" in err or "canonical" in err
    with pytest.raises(keys.WeakKeyError):
        verify_store(s.root, key)


def test_weak_key_refused_by_every_key_parser():
    for raw in (SMALL_ORDER, NON_CANONICAL):
        for form in (raw, raw.hex().encode()):
            with pytest.raises(keys.KeyFileError):
                keys.parse_public_key(form)
        with pytest.raises(ValueError):
            keys.check_public_key(raw)


def test_clean_store_still_ok(store):
    rc, out, _ = verify_cli(store)
    assert rc == 0 and "VERDICT: OK" in out
    assert verify_store(store.root, store.pubkey).verdict == OK


def test_archive_style_view_with_hard_links_is_fine(store, tmp_path):
    """Hard links (the archive's view) are regular files: accepted."""
    obj = tmp_path / "obj"
    os.link(store.path(MEDIA), obj)
    assert verify_store(store.root, store.pubkey).verdict == OK
    assert cbor2 is not None


def test_signed_bignums_do_not_crash(tmp_path):
    """Values far past 64 bits (CBOR bignums) in a signed body: NOT_OK, never a crash."""
    big = 1 << 1000
    s = rw.RefStore(tmp_path / "sd")
    s.boot()
    s.record(rw.TIME_SET, {28: 1, 29: 2, 39: big, 40: 1, 43: -big})
    s.record(13, {33: "bookmark", 34: [big, big, big]})
    rc, out, _ = verify_cli(s)
    # SPEC §3.1: an integer past 2^63-1 makes the record NOT_OK, each one named
    assert rc == 1 and out.count("- rec/00000000.log@") == 2 and "beyond 64 bits" in out, out


# --- fuzz: any bytes in a log, a head or an index give a verdict, never an exception -------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FUZZ_BASE = {}


def _fuzz_store(tmp_path_factory):
    if "root" not in _FUZZ_BASE:
        root = tmp_path_factory.mktemp("fuzz") / "sd"
        s = rw.session(root)
        _FUZZ_BASE.update(root=str(root), pub=s.pubkey,
                          files={rel: open(s.path(rel), "rb").read()
                                 for rel in (LOG0, "head.cbor", IDX)})
    return _FUZZ_BASE


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(which=st.sampled_from([LOG0, "head.cbor", IDX]),
       edits=st.lists(st.tuples(st.integers(0, 4000), st.binary(min_size=0, max_size=9)),
                      min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 4000)))
def test_fuzzed_store_files_always_get_a_verdict(tmp_path_factory, which, edits, cut):
    base = _fuzz_store(tmp_path_factory)
    root = base["root"]
    data = bytearray(base["files"][which])
    for pos, blob in edits:
        pos = pos % (len(data) + 1)
        data[pos:pos + len(blob)] = blob
    if cut is not None:
        del data[cut % (len(data) + 1):]
    p = os.path.join(root, which)
    try:
        with open(p, "wb") as f:
            f.write(bytes(data))
        t0 = time.monotonic()
        rep = verify_store(root, base["pub"])
        assert rep.verdict in ("OK", "OK_WITH_MISSING_INFO", "NOT_OK", "NOT_SIGNED")
        assert time.monotonic() - t0 < 5
        rep.to_text(all_records=True)
        assert json.dumps(rep.to_json())
        if which == LOG0 and bytes(data) != base["files"][which]:
            assert rep.verdict != OK        # any change of a log is seen
    finally:
        with open(p, "wb") as f:
            f.write(base["files"][which])


# --- the same rules in an archive's device view (verify ARCHIVE) --------------------------

@pytest.mark.parametrize("attack", ["symlink", "fifo"])
def test_archive_view_with_a_hostile_file(tmp_path, attack):
    from host_tools.archive import Archive
    s = rw.session(tmp_path / "sd")
    root = tmp_path / "arch"
    with Archive.create(root) as a:
        a.register(s.device, s.pubkey)
        a.add_records(s.device, [(r.seq, r.data, rw.decode_record(r.data)) for r in s.records])
        a.commit_view(s.device, s.records[-1].data)
    log = root / "devices" / s.device / LOG0
    assert log.exists()
    os.remove(log)
    if attack == "symlink":
        os.symlink("/dev/zero", log)
    else:
        os.mkfifo(log)
    rc, out, err, secs = sealcam("verify", str(root))
    assert "Traceback" not in out + err and secs < FAST, err
    assert rc == 1 and LOG0 in out, out
