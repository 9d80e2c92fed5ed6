"""The archive's content-addressed objects (SPEC §9): DIR/objects/ab/cdef… holds a file
whose SHA-256 is abcdef…, read-only (0444). An object is written to a temporary file,
fsynced, renamed into place and its folder fsynced; content already held is not stored
twice."""
from __future__ import annotations

import hashlib
import os

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


class ObjectsMixin:
    """Uses ``objects`` (the folder) of the Archive."""

    def object_path(self, hexdigest):
        return os.path.join(self.objects, hexdigest[:2], hexdigest[2:])

    def open_object(self, hexdigest):
        """The object's content (plaintext) as a readable, seekable binary file. Every
        reader of an object's content goes through here: objects at rest may be encrypted
        (SPEC §9.4, host_tools/archive/atrest.py), and only this knows how to read them."""
        return open(self.object_path(hexdigest), "rb")

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

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` as an object; return its SHA-256 (hex)."""
        h = hashlib.sha256(data).hexdigest()
        if os.path.exists(self.object_path(h)):
            return h
        tmp = self._tmp_object(h)
        write_synced(tmp, data)
        self._install(tmp, h)
        return h

    def put_file(self, path, *, move=False, limit=None, digest=None) -> str:
        """Store a file's content (its first ``limit`` bytes) as an object. ``move``: the
        file itself becomes the object (renamed; it must be on the archive's filesystem).
        ``digest``: its SHA-256 (hex), computed by the caller from the very bytes it wrote
        (the bulk offload, host_tools/offload_bulk.py), so the file is not read again."""
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

    def check_objects(self):
        """[(path, problem)] of the objects whose content does not hash to their name, that
        are writable or are not regular files (as `sealcam verify ARCHIVE` checks them)."""
        from ..tlog.objects import hash_objects
        return hash_objects(self.objects)
