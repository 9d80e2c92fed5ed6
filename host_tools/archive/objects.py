"""The archive's content-addressed objects (SPEC §9): DIR/objects/ab/cdef… holds a file
whose SHA-256 is abcdef…, read-only (0444). An object is written to a temporary file,
fsynced, renamed into place and its folder fsynced; content already held is not stored
twice.

With an at-rest key configured (station.toml [confidentiality] key_file; atrest.py) the
objects that hold evidence (media, documents: every put unless ``clear=True``) are sealed
with AES-GCM and keep the name of their plaintext; the device views' record logs, heads and
chunk indexes are put ``clear``. open_object / read_object / object_size read both kinds:
they are the only way to an object's content."""
from __future__ import annotations

import hashlib
import os

from . import atrest
from .durable import fsync_dir, makedirs, write_synced

__all__ = ["ObjectsMixin"]

_BLOCK = 1 << 20


def _feed(src, put, limit):
    """Read the open file ``src`` in 1 MiB blocks, at most ``limit`` bytes (None: to its
    end), and pass each block to ``put``."""
    left = limit
    while left is None or left > 0:
        b = src.read(_BLOCK if left is None else min(_BLOCK, left))
        if not b:
            break
        put(b)
        if left is not None:
            left -= len(b)


def _nofollow(path, flags):
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


class ObjectsMixin:
    """Uses ``objects`` (the folder) of the Archive."""

    def object_path(self, hexdigest):
        return os.path.join(self.objects, hexdigest[:2], hexdigest[2:])

    # -- the at-rest key -------------------------------------------------------------
    _atrest = None          # (key or None, why not or None), loaded once

    def _atrest_state(self):
        if self._atrest is None:
            try:
                self._atrest = (atrest.load_key(self.root), None)
            except atrest.AtRestError as e:
                self._atrest = (None, e)
        return self._atrest

    def use_key_file(self, path):
        """Read objects with the key of ``path`` instead of the one station.toml names (a
        verifier elsewhere, `sealcam verify ARCHIVE --at-rest-key FILE`)."""
        try:
            self._atrest = (atrest.read_key_file(path, self.root), None)
        except atrest.AtRestError as e:
            self._atrest = (None, e)
        return self._atrest[1]

    def at_rest_key(self):
        """The at-rest key, or None when station.toml names none. AtRestError (one line,
        naming the file) when it names one that cannot be used or is not at hand."""
        key, why = self._atrest_state()
        if why is not None:
            raise why
        return key

    def sealing(self) -> bool:
        """Whether new objects are sealed (a key is configured; AtRestError when the
        configured key cannot be used: nothing is then stored in clear by mistake)."""
        return self.at_rest_key() is not None

    def _reading_key(self):
        """The key for reading, or None (a sealed object then says why: KeyUnavailable)."""
        return self._atrest_state()[0]

    def open_object(self, hexdigest):
        """The object's content (plaintext) as a readable, seekable binary file. Every
        reader of an object's content goes through here: objects at rest may be encrypted
        (SPEC §14.8, host_tools/archive/atrest.py), and only this knows how to read them.
        Raises FileNotFoundError, atrest.KeyUnavailable (encrypted, no key), or
        atrest.AtRestError (wrong key, changed ciphertext), naming the object's path."""
        p = self.object_path(hexdigest)
        f = open(p, "rb", opener=_nofollow)
        try:
            return atrest.open_object_file(f, hexdigest, self._reading_key(),
                                           self._object_name(hexdigest))
        except atrest.KeyUnavailable as e:
            why = self._atrest_state()[1]
            if why is not None and not isinstance(why, atrest.KeyUnavailable):
                raise atrest.KeyUnavailable("%s (%s)" % (e, why)) from None
            raise

    def _object_name(self, hexdigest):
        return os.path.relpath(self.object_path(hexdigest), self.root)

    def object_size(self, hexdigest) -> int:
        """The size of the object's content (its plaintext), without the key: a sealed
        object's header states it (the reader checks it against the file)."""
        p = self.object_path(hexdigest)
        with open(p, "rb", opener=_nofollow) as f:
            n = atrest.plain_size(f)
            return os.fstat(f.fileno()).st_size if n is None else n

    def media_opener(self, objects):
        """An opener for verify_store (``media_opener``) of a device view whose files the
        station log maps ``objects`` ({rel path: sha256 bytes}): (plaintext file, size)."""
        return atrest.ViewOpener(objects, self._reading_key(), self._atrest_state()[1])

    def read_object(self, hexdigest, limit=None) -> bytes:
        """The object's content (its first ``limit`` bytes)."""
        with self.open_object(hexdigest) as f:
            return f.read() if limit is None else f.read(limit)

    def _tmp_object(self, hexdigest):
        return os.path.join(self.objects, ".tmp-%d-%s" % (os.getpid(), hexdigest[:16]))

    def _install(self, tmp, hexdigest):
        """Move the (fsynced) temp file ``tmp`` to its object path, read-only."""
        dst = self.object_path(hexdigest)
        d = os.path.dirname(dst)
        if not os.path.isdir(d):
            makedirs(d)
        if os.path.exists(dst):
            os.unlink(tmp)              # the same content is there already
            return dst
        os.chmod(tmp, 0o444)
        os.replace(tmp, dst)
        fsync_dir(d)
        return dst

    def put_bytes(self, data: bytes, *, clear=False) -> str:
        """Store ``data`` as an object; return its SHA-256 (hex). Sealed when a key is
        configured, unless ``clear`` (signed metadata of the views)."""
        h = hashlib.sha256(data).hexdigest()
        if os.path.exists(self.object_path(h)):
            return h
        tmp = self._tmp_object(h)
        key = None if clear else self.at_rest_key()
        if key is None:
            write_synced(tmp, data)
        else:
            import io
            with open(tmp, "wb") as dst:
                atrest.seal_stream(key, h, len(data), io.BytesIO(data).read, dst.write)
                dst.flush()
                os.fsync(dst.fileno())
        self._install(tmp, h)
        return h

    def put_file(self, path, *, move=False, limit=None, digest=None, clear=False) -> str:
        """Store a file's content (its first ``limit`` bytes) as an object. ``move``: the
        file itself becomes the object (renamed; it must be on the archive's filesystem).
        ``digest``: its SHA-256 (hex), computed by the caller from the very bytes it wrote
        (the bulk offload, host_tools/offload_bulk.py), so the file is not read again.
        Sealed when a key is configured, unless ``clear``: then it is read once more (and
        a moved file is sealed into the object, then removed)."""
        key = None if clear else self.at_rest_key()
        if digest is None:
            hs = hashlib.sha256()
            with open(path, "rb") as f:
                _feed(f, hs.update, limit)
            h = hs.hexdigest()
        else:
            h = digest
        if os.path.exists(self.object_path(h)):
            if move:
                os.unlink(path)
            return h
        tmp = self._tmp_object(h)
        if key is not None:
            self._seal_file(key, path, tmp, h, limit)
            self._install(tmp, h)
            if move:                    # only once the sealed object is in place
                os.unlink(path)
            return h
        if move and limit is None:
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(path, tmp)
        else:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                _feed(src, dst.write, limit)
                dst.flush()
                os.fsync(dst.fileno())
            if move:
                os.unlink(path)
        self._install(tmp, h)
        return h

    def _seal_file(self, key, path, tmp, h, limit):
        """Seal the file's first ``limit`` bytes into ``tmp`` (fsynced), hashing what is
        sealed: content that is not the object ``h`` (a file changed since it was hashed,
        or a caller's wrong digest) is refused, never stored under that name."""
        hs = hashlib.sha256()

        def read(n):
            b = src.read(n)
            hs.update(b)
            return b
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                size = os.fstat(src.fileno()).st_size
                size = size if limit is None else min(size, limit)
                atrest.seal_stream(key, h, size, read, dst.write)
                dst.flush()
                os.fsync(dst.fileno())
            if hs.hexdigest() != h:
                from .common import ArchiveError
                raise ArchiveError("%s changed while it was stored: its content hashes to %s, "
                                   "not %s; nothing was stored" % (path, hs.hexdigest(), h))
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def check_objects(self):
        """[(path, problem)] of the objects whose content does not hash to their name, that
        are writable or are not regular files (as `sealcam verify ARCHIVE` checks them);
        an encrypted object without the key: problem atrest.LOCKED."""
        from ..tlog.objects import hash_objects
        return hash_objects(self.objects, key=self._reading_key())
