"""Objects at rest, encrypted (host_tools/archive/atrest.py; R16, SPEC §14.8): with a
station at-rest key configured, an offload stores media as AES-GCM ciphertext named by the
plaintext's hash; `sealcam verify ARCHIVE` passes with the key, says clearly that the
content was not checked without it, and names a changed object; a key file inside the
archive is refused; the format refuses truncation, reordering and swaps."""
import os
import random
import subprocess
import sys

import pytest

from host_tools import station
from host_tools.archive import Archive, atrest
from host_tools.archive_verify import verify_archive
from host_tools.verify import NOT_OK, OK, OK_WITH_MISSING_INFO

DEV = "SC-00CAE001"
HERE = os.path.dirname(os.path.abspath(__file__))


def _toml(arch, key):
    (arch / "station.toml").write_text('[confidentiality]\nkey_file = "%s"\n' % key)


def _offloaded(root, key_path):
    """An archive with the at-rest key configured and one recording offloaded; returns
    (archive, the recorded media bytes)."""
    import fakedev
    import refwriter as rw
    from host_tools.offload import offload
    arch = root / "arch"
    station.init(arch)
    atrest.new_key_file(key_path)
    _toml(arch, key_path)
    media = random.Random(16).randbytes(3 * 4096 + 100)
    s = rw.RefStore(root / "sd", seed=b"\x43" * 32, device=DEV, officer=None, chunk=4096)
    s.boot()
    s.assign("OFC-0001", "U-1")
    s.rec_start()
    s.write(media)
    s.close()
    s.rec_stop()
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)]).start()
    try:
        sm = offload(d.port, str(arch), register=True, progress=False)
    finally:
        d.stop()
    assert sm.exit_code == 0, sm.errors
    return arch, media


_BUILT = []


@pytest.fixture
def sealed(tmp_path, tmp_path_factory):
    """A fresh copy of the sealed archive (built once) and its key file."""
    import shutil
    if not _BUILT:
        root = tmp_path_factory.mktemp("atrest")
        _BUILT.append((*_offloaded(root, root / "atrest.key"), root / "atrest.key"))
    arch, media, key = _BUILT[0]
    dst = tmp_path / "arch"
    shutil.copytree(arch, dst, symlinks=True)
    return dst, media, key


def _media_object(arch):
    with Archive(arch, readonly=True) as a:
        row = a.db.execute("SELECT object FROM segments WHERE device = ?", (DEV,)).fetchone()
        return row[0], a.object_path(row[0])


def test_r16_offload_stores_ciphertext_and_verify_passes_with_the_key(sealed):
    arch, media, _key = sealed
    sha, path = _media_object(arch)
    raw = open(path, "rb").read()
    assert raw[:5] == atrest.MAGIC
    assert media[1000:1032] not in raw                  # no run of the plaintext
    assert len(raw) == atrest.sealed_size(len(media))
    with Archive(arch, readonly=True) as a:
        assert a.read_object(sha) == media
        assert a.object_size(sha) == len(media)
        f = a.open_object(sha)                          # seekable, as clips read it
        f.seek(4096 + 7)
        assert f.read(20) == media[4096 + 7:4096 + 27]
        f.close()
        # the signed records and the chunk index stay in clear (checkable without a key)
        logs = [r[0] for r in a.db.execute("SELECT idx_object FROM segments")]
        assert all(not open(a.object_path(h), "rb").read(5) == atrest.MAGIC for h in logs)
    out = verify_archive(arch)
    assert out["verdict"] == OK, out["reasons"]
    assert not out.get("objects_locked")


def test_r16_verify_without_the_key_says_so_and_does_not_fail(sealed):
    arch, _media, key = sealed
    os.rename(key, str(key) + ".away")
    try:
        out = verify_archive(arch)
    finally:
        os.rename(str(key) + ".away", key)
    assert out["verdict"] == OK_WITH_MISSING_INFO, out["reasons"]
    assert out["objects_locked"]
    text = " ".join(out["reasons"])
    assert "1 object is encrypted at rest and the station's at-rest key is not available" \
        in text
    dev = out["devices"][0]
    assert dev["verdict"] == OK_WITH_MISSING_INFO
    assert any("key not available" in r for r in dev["reasons"]), dev["reasons"]
    assert [s.marks for s in dev["report"].segments] == ["EEEE"]   # E: not checked
    # the CLI says it in words, and exits with missing information, never a traceback
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    os.rename(key, str(key) + ".away")
    try:
        r = subprocess.run([sys.executable, "-m", "host_tools.cli", "verify", str(arch)],
                           capture_output=True, text=True, env=env)
    finally:
        os.rename(str(key) + ".away", key)
    assert "Traceback" not in r.stderr and "key not available" in r.stdout + r.stderr, \
        r.stdout + r.stderr


def test_r16_a_flipped_byte_or_a_wrong_key_is_named_with_its_object(sealed, tmp_path):
    arch, _media, key = sealed
    _sha, path = _media_object(arch)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(atrest.HEADER_SIZE + 100)
        b = f.read(1)
        f.seek(atrest.HEADER_SIZE + 100)
        f.write(bytes([b[0] ^ 1]))
    os.chmod(path, 0o444)
    out = verify_archive(arch)
    assert out["verdict"] == NOT_OK
    rel = os.path.relpath(path, arch)
    assert any(rel in r and "fails authentication" in r for r in out["reasons"]), out["reasons"]
    # another key: named as such
    other = tmp_path / "other.key"
    atrest.new_key_file(other)
    _toml(arch, other)
    out = verify_archive(arch)
    assert out["verdict"] == NOT_OK
    assert any(rel in r and "another at-rest key" in r for r in out["reasons"]), out["reasons"]


def test_r16_key_file_inside_the_archive_is_refused(tmp_path):
    arch = tmp_path / "arch"
    station.init(arch)
    inside = arch / "atrest.key"
    atrest.new_key_file(inside)
    _toml(arch, inside)
    with pytest.raises(atrest.AtRestError, match="inside the archive"):
        atrest.load_key(arch)
    with Archive(arch) as a:
        with pytest.raises(atrest.AtRestError, match="inside the archive"):
            a.put_bytes(b"evidence")               # never stored in clear by mistake
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    r = subprocess.run([sys.executable, "-m", "host_tools.cli", "classify", "key-new", "--out",
                        str(arch / "k2.key"), "--archive", str(arch)], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 3 and "inside the archive" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "host_tools.cli", "classify", "key-new", "--out",
                        str(tmp_path / "k3.key"), "--archive", str(arch)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert os.stat(tmp_path / "k3.key").st_mode & 0o777 == 0o600
    assert atrest.read_key_file(tmp_path / "k3.key", arch).key_id


def test_sealed_format_refuses_truncation_reordering_and_swaps(tmp_path):
    import io
    key = atrest.new_key_file(tmp_path / "k")
    data = [os.urandom(2 * atrest.CHUNK + 10), os.urandom(2 * atrest.CHUNK + 10)]
    import hashlib
    names = [hashlib.sha256(d).hexdigest() for d in data]
    blobs = []
    for d, h in zip(data, names):
        out = io.BytesIO()
        atrest.seal_stream(key, h, len(d), io.BytesIO(d).read, out.write)
        blobs.append(out.getvalue())

    def read(blob, name):
        f = io.BytesIO(blob)
        return atrest.SealedReader(f, name, key, "obj").read()

    assert read(blobs[0], names[0]) == data[0]
    with pytest.raises(atrest.AtRestError):               # another object's name
        read(blobs[1], names[0])
    full = atrest.CHUNK + atrest.TAG
    H = atrest.HEADER_SIZE
    c0, c1 = blobs[0][H:H + full], blobs[0][H + full:H + 2 * full]
    with pytest.raises(atrest.AtRestError, match="chunk 0"):       # chunks swapped
        read(blobs[0][:H] + c1 + c0 + blobs[0][H + 2 * full:], names[0])
    with pytest.raises(atrest.AtRestError, match="cut or lengthened"):
        read(blobs[0][:-1], names[0])
    # cut to whole chunks with the size in the header changed too: the AAD holds the header
    import struct
    hdr = bytearray(blobs[0][:H])
    hdr[-8:] = struct.pack(">Q", 2 * atrest.CHUNK)
    with pytest.raises(atrest.AtRestError, match="fails authentication"):
        read(bytes(hdr) + c0 + c1, names[0])
    with pytest.raises(atrest.KeyUnavailable):
        atrest.SealedReader(io.BytesIO(blobs[0]), names[0], None, "obj")


def test_r16_clip_reads_sealed_media_as_recorded(sealed):
    """`sealcam clip` reads a segment's media through the view opener: the plaintext,
    seekable, of the size the records signed (the cutting itself is tests/test_clip.py's)."""
    from host_tools.clip import ArchiveSource
    arch, media, key = sealed
    src = ArchiveSource(str(arch), DEV)
    try:
        f, size = src.open_media("m/00000002.mkv")
        with f:
            assert size == len(media)
            f.seek(5000)
            assert f.read(100) == media[5000:5100]
            f.seek(0)
            assert f.read() == media
    finally:
        src.a.close()


def test_put_file_seals_checks_its_digest_and_reads_clear_objects_as_they_are(tmp_path):
    import hashlib
    from host_tools.archive.common import ArchiveError
    from host_tools.tlog.objects import hash_objects
    arch = tmp_path / "arch"
    station.init(arch)
    clear_doc = atrest.MAGIC + b" a scan in clear that starts like a sealed object"
    with Archive(arch) as a:
        h_clear = a.put_bytes(clear_doc)                    # no key yet: in clear
    key = tmp_path / "k.key"
    atrest.new_key_file(key)
    _toml(arch, key)
    src = tmp_path / "seg.mkv"
    body = os.urandom(atrest.CHUNK + 5)
    src.write_bytes(body)
    with Archive(arch) as a:
        assert a.read_object(h_clear) == clear_doc
        with pytest.raises(ArchiveError, match="changed while it was stored"):
            a.put_file(str(src), move=True, digest="00" * 32)
        assert src.exists()                                 # nothing lost
        h = a.put_file(str(src), move=True, digest=hashlib.sha256(body).hexdigest())
        assert not src.exists() and a.read_object(h) == body
        assert open(a.object_path(h), "rb").read(5) == atrest.MAGIC
        assert not [n for n in os.listdir(a.objects) if n.startswith(".tmp-")]
        assert a.check_objects() == []
    assert hash_objects(str(arch / "objects"), key=None) == [
        (str(arch / "objects" / h[:2] / h[2:]), atrest.LOCKED)]


def test_r16_verify_elsewhere_with_the_key_file_given(sealed, tmp_path):
    arch, _media, key = sealed
    (arch / "station.toml").write_text("[confidentiality]\nkey_file = \"/nonexistent/k\"\n")
    assert verify_archive(arch)["verdict"] == OK_WITH_MISSING_INFO
    assert verify_archive(arch, at_rest_key=str(key))["verdict"] == OK
    (arch / "station.toml").write_text("[confidentiality]\nkey_file = 7\n")   # broken
    out = verify_archive(arch)                             # said, never a crash
    assert out["verdict"] == OK_WITH_MISSING_INFO and "key_file" in " ".join(out["reasons"])
