"""Objects at rest, encrypted (R16; SPEC §14.8 "Objects at rest").

The content of an archive's objects that hold evidence (media segments, documents) is
sealed with AES-256-GCM (``cryptography``'s AESGCM) under the station's at-rest key when
station.toml names one:

    [confidentiality]
    key_file = "/etc/sealcam/atrest.key"     # outside the archive folder, mode 0600

    key = load_key(archive_root)             # None when none is configured; AtRestError
    new_key_file("/etc/sealcam/atrest.key")  # `sealcam classify key-new --out PATH`

A sealed object keeps its name: the SHA-256 of its plaintext. Its file is

    header  "SCAE1" | key id (8) | salt (16) | base nonce (8) | plaintext size (u64 BE)
    chunks  each 1 MiB of plaintext (the last 0..1 MiB; at least one chunk), sealed:
            AESGCM(object key).encrypt(base nonce | index u32 BE, chunk, AAD)
            AAD = header | the object's SHA-256 (32 raw bytes) | index u32 BE | last (1 byte)

The object key is HKDF-SHA256(station key, salt, "sealcam at-rest object v1"): every object
has its own key and nonces, so nonces never repeat under one key. The AAD binds a chunk to
its object, its place and whether it is the last: a chunk moved to another object or place,
a file cut short or lengthened, or a header changed fails authentication. The key id
(HKDF of the key with another label) tells a wrong key from a damaged file.

The record logs and head.cbor of the device views, and chunk indexes, stay in clear: they
are signed metadata whose bytes the index (archive.sqlite) holds anyway, and anyone must be
able to check the chain without the key.
"""
from __future__ import annotations

import io
import os
import stat
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["MAGIC", "CHUNK", "HEADER_SIZE", "AtRestError", "KeyUnavailable", "AtRestKey",
           "load_key", "new_key_file", "key_file_of", "is_sealed", "sealed_size",
           "plain_size", "seal_stream", "SealedReader", "open_object_file", "LOCKED",
           "ViewOpener", "read_key_file", "inside"]

MAGIC = b"SCAE1"
CHUNK = 1 << 20
TAG = 16
_HEAD = struct.Struct(">5s8s16s8sQ")
HEADER_SIZE = _HEAD.size                     # 45
KEY_SIZE = 32
KEY_TEXT = b"sealcam-atrest-key-1\n"         # first line of a key file, then 64 hex digits
KEY_FILE_MAX = 256
MAX_SIZE = 1 << 50                            # a plaintext size beyond this is not ours
LOCKED = "encrypted at rest, key not available: not checked"


class AtRestError(OSError):
    """An object that cannot be read (wrong key, damaged or changed ciphertext), or a key
    file that cannot be used: one line naming the file."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


class KeyUnavailable(AtRestError):
    """The object is encrypted and the station's at-rest key is not at hand."""

    locked = True       # the verifier (which imports nothing of this) tells it by this


def _hkdf(key, salt, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


class AtRestKey:
    """The station's at-rest key (32 bytes) and its id (8 bytes, names it in headers)."""

    def __init__(self, raw: bytes, path=None):
        if len(raw) != KEY_SIZE:
            raise AtRestError("an at-rest key is %d bytes" % KEY_SIZE)
        self._raw = bytes(raw)
        self.path = path
        self.key_id = _hkdf(self._raw, b"", b"sealcam at-rest key id v1")[:8]

    def object_key(self, salt):
        return AESGCM(_hkdf(self._raw, salt, b"sealcam at-rest object v1"))

    def __repr__(self):
        return "AtRestKey(id=%s)" % self.key_id.hex()


# -- the key file ------------------------------------------------------------------------

def new_key_file(path) -> AtRestKey:
    """Write a new random key to ``path`` (mode 0600, never over an existing file)."""
    path = os.path.abspath(os.fspath(path))
    raw = os.urandom(KEY_SIZE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    try:
        os.write(fd, KEY_TEXT + raw.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    d = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(d)
    finally:
        os.close(d)
    return AtRestKey(raw, path)


def key_file_of(archive_root):
    """The key file station.toml names ([confidentiality] key_file), or None."""
    from ..stationconfig import StationConfigError, load
    try:
        cfg = load(archive_root)
    except StationConfigError as e:
        raise AtRestError(str(e)) from None
    v = cfg.values.get("confidentiality", {}).get("key_file") or None
    return v


def inside(path, root) -> bool:
    """Whether ``path`` is (or would be) inside folder ``root`` (links resolved)."""
    p = os.path.realpath(os.path.abspath(path))
    r = os.path.realpath(os.path.abspath(root))
    return os.path.commonpath([p, r]) == r


def read_key_file(path, archive_root=None) -> AtRestKey:
    """The key of ``path``: a regular file (no symlink followed), mode 0600 or stricter,
    outside the archive folder. KeyUnavailable when it does not exist or cannot be read,
    AtRestError for anything else."""
    path = os.fspath(path)
    if archive_root is not None and inside(path, archive_root):
        raise AtRestError(
            "the at-rest key file %s is inside the archive %s: the key must be kept apart from "
            "the data it protects; move it to another place (another disk or a token) and set "
            "[confidentiality] key_file in station.toml" % (path, archive_root))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise KeyUnavailable("the at-rest key file %s does not exist" % path) from None
    except PermissionError:
        raise KeyUnavailable("the at-rest key file %s cannot be read (permission denied)"
                             % path) from None
    except OSError as e:
        raise AtRestError("the at-rest key file %s cannot be opened (%s; a symbolic link is "
                          "never followed)" % (path, e.strerror or e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AtRestError("the at-rest key file %s is not a regular file" % path)
        if st.st_mode & 0o077:
            raise AtRestError("the at-rest key file %s may be read by others (mode %04o): "
                              "`chmod 600 %s`" % (path, stat.S_IMODE(st.st_mode), path))
        data = os.read(fd, KEY_FILE_MAX + 1)
    finally:
        os.close(fd)
    head, _, rest = data.partition(b"\n")
    try:
        if head + b"\n" != KEY_TEXT or len(data) > KEY_FILE_MAX:
            raise ValueError
        raw = bytes.fromhex(rest.strip().decode("ascii"))
        if len(raw) != KEY_SIZE:
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise AtRestError("%s is not a sealcam at-rest key file (made by `sealcam classify "
                          "key-new`)" % path) from None
    return AtRestKey(raw, path)


def load_key(archive_root):
    """The archive's at-rest key, or None when station.toml names none. KeyUnavailable when
    it names one that is not at hand; AtRestError when it is unusable (inside the archive,
    readable by others, not a key file)."""
    path = key_file_of(archive_root)
    if path is None:
        return None
    if not os.path.isabs(path):
        raise AtRestError("station.toml [confidentiality] key_file = %r must be an absolute "
                          "path (outside the archive)" % path)
    return read_key_file(path, archive_root)


# -- sealing -----------------------------------------------------------------------------

def _chunks(size):
    return max(1, -(-size // CHUNK))


def sealed_size(size):
    """The file size of an object of ``size`` plaintext bytes, sealed."""
    return HEADER_SIZE + size + TAG * _chunks(size)


def _aad(header, digest, index, last):
    return header + digest + struct.pack(">IB", index, 1 if last else 0)


def seal_stream(key: AtRestKey, hexdigest, size, read, write):
    """Seal ``size`` bytes got by ``read(n)`` (the object ``hexdigest``) into ``write``.
    Raises AtRestError when ``read`` gives fewer bytes than ``size``."""
    digest = bytes.fromhex(hexdigest)
    salt, base = os.urandom(16), os.urandom(8)
    header = _HEAD.pack(MAGIC, key.key_id, salt, base, size)
    aead = key.object_key(salt)
    write(header)
    n = _chunks(size)
    left = size
    for i in range(n):
        want = min(CHUNK, left)
        buf = bytearray()
        while len(buf) < want:
            b = read(want - len(buf))
            if not b:
                raise AtRestError("the content ended after %d of %d bytes while it was sealed"
                                  % (size - left + len(buf), size))
            buf += b
        left -= want
        write(aead.encrypt(base + struct.pack(">I", i), bytes(buf),
                           _aad(header, digest, i, i == n - 1)))


def is_sealed(first: bytes) -> bool:
    return first[:len(MAGIC)] == MAGIC


def plain_size(f, file_size=None):
    """The plaintext size a sealed file's header states (unauthenticated: a hint; the
    reader checks it), or None if the file is not sealed."""
    f.seek(0)
    h = f.read(HEADER_SIZE)
    if len(h) < HEADER_SIZE or not is_sealed(h):
        return None
    return _HEAD.unpack(h)[4]


class SealedReader(io.RawIOBase):
    """A sealed object, read as its plaintext: readable, seekable; each chunk is
    authenticated before a byte of it is returned (AtRestError names ``name``)."""

    def __init__(self, f, hexdigest, key, name):
        super().__init__()
        self._f, self._name, self._pos = f, name, 0
        self._digest = bytes.fromhex(hexdigest)
        self._cache = (None, b"")
        try:
            f.seek(0, os.SEEK_END)
            total = f.tell()
            f.seek(0)
            header = f.read(HEADER_SIZE)
            if len(header) < HEADER_SIZE or not is_sealed(header):
                raise AtRestError("%s: not an encrypted object (no %s header)"
                                  % (name, MAGIC.decode()))
            _m, kid, salt, self._base, size = _HEAD.unpack(header)
            if key is None:
                raise KeyUnavailable("%s: encrypted at rest, and the station's at-rest key "
                                     "is not available (station.toml [confidentiality] "
                                     "key_file)" % name)
            if kid != key.key_id:
                raise AtRestError("%s: encrypted with another at-rest key (key id %s, the "
                                  "configured key is %s): the wrong key, or the header was "
                                  "changed" % (name, kid.hex(), key.key_id.hex()))
            if size > MAX_SIZE or sealed_size(size) != total:
                raise AtRestError("%s: %d bytes on disk, but its header says %d bytes of "
                                  "content (%d sealed): the file was cut or lengthened"
                                  % (name, total, size, sealed_size(size)))
        except BaseException:
            f.close()
            raise
        self._header, self.size = header, size
        self._n = _chunks(size)
        self._aead = key.object_key(salt)

    @property
    def name(self):
        return self._name

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, pos, whence=os.SEEK_SET):
        if whence == os.SEEK_CUR:
            pos += self._pos
        elif whence == os.SEEK_END:
            pos += self.size
        if pos < 0:
            raise ValueError("negative seek position %d" % pos)
        self._pos = pos
        return pos

    def _chunk(self, i):
        if self._cache[0] == i:
            return self._cache[1]
        last = i == self._n - 1
        clen = (self.size - i * CHUNK if last else CHUNK) + TAG
        self._f.seek(HEADER_SIZE + i * (CHUNK + TAG))
        ct = self._f.read(clen)
        try:
            if len(ct) != clen:
                raise InvalidTag
            pt = self._aead.decrypt(self._base + struct.pack(">I", i), ct,
                                    _aad(self._header, self._digest, i, last))
        except InvalidTag:
            raise AtRestError("%s: chunk %d fails authentication: the encrypted object was "
                              "changed, cut, or belongs to another object" % (self._name, i)
                              ) from None
        self._cache = (i, pt)
        return pt

    def readinto(self, b):
        if self._pos >= self.size:
            return 0
        i, off = divmod(self._pos, CHUNK)
        pt = self._chunk(i)
        n = min(len(b), len(pt) - off)
        b[:n] = pt[off:off + n]
        self._pos += n
        return n

    def readall(self):
        out = bytearray()
        while True:
            b = self.read(CHUNK)
            if not b:
                return bytes(out)
            out += b

    def close(self):
        if not self.closed:
            self._f.close()
        super().close()


def open_object_file(f, hexdigest, key, name):
    """A readable, seekable file of an object's plaintext from ``f`` (an open binary file
    of the object, taken over): ``f`` itself when it is in clear, a SealedReader when it is
    sealed. A file in clear that happens to start with the magic is told apart by its hash
    (only when it does not authenticate)."""
    first = f.read(len(MAGIC))
    f.seek(0)
    if not is_sealed(first):
        return f
    try:
        return io.BufferedReader(SealedReader(f, hexdigest, key, name), CHUNK)
    except AtRestError:
        import hashlib
        where = getattr(f, "name", None)
        if not isinstance(where, str):
            raise
        with open(where, "rb") as g:
            hs = hashlib.file_digest(g, "sha256")
        if hs.hexdigest() == hexdigest:
            return open(where, "rb")        # content in clear that starts like a sealed one
        raise


class ViewOpener:
    """Opens the media of a device view for the verifier (verify_store's
    ``media_opener``): (file of the plaintext, its size). The view's files are hard links
    to objects; ``objects`` ({rel: sha256 bytes}, from the signed station log) names the
    object a sealed file must be (its AAD binds that name). A sealed file without the key
    raises KeyUnavailable (the verifier says the media was not checked)."""

    def __init__(self, objects, key, why=None):
        self.objects = dict(objects or {})
        self.key, self.why = key, why

    def __call__(self, root, rel):
        from .. import safeio
        f, size = safeio.open_regular(root, rel)
        try:
            first = f.read(len(MAGIC))
            f.seek(0)
        except BaseException:
            f.close()
            raise
        if not is_sealed(first):
            return f, size
        sha = self.objects.get(rel)
        if sha is None:
            f.close()
            raise AtRestError("%s is encrypted but the station log names no object for it: "
                              "it cannot be authenticated" % rel)
        if self.key is None:
            f.close()
            why = "" if self.why is None or isinstance(self.why, KeyUnavailable) \
                else " (%s)" % self.why
            raise KeyUnavailable("encrypted at rest, key not available%s" % why)
        out = open_object_file(f, bytes(sha).hex(), self.key, rel)
        raw = getattr(out, "raw", None)
        return out, raw.size if isinstance(raw, SealedReader) else size
