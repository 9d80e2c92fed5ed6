"""The station log on disk (SPEC §11).

    DIR/log/entries      the entries, in order: each a 4-byte big-endian length and the
                         entry (a deterministically encoded CBOR map); append-only
    DIR/log/checkpoint   the latest checkpoint, a C2SP signed note by the station key
    DIR/log/.lock        appends from several processes are serialised by flock on it

Leaf i of the Merkle tree is SHA-256(0x00 || entry i). An append writes and fsyncs the
entries, then signs and installs a new checkpoint (write, fsync, rename, fsync the folder).
A torn last entry (a cut during an append) is dropped by the next writer.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import struct

import cbor2

from ..archive.durable import fsync_dir, write_synced
from . import merkle, note

__all__ = ["Log", "LogError", "ENTRY_MAX", "encode_entry", "decode_entry", "origin_for"]

ENTRY_MAX = 16 << 20
_LEN = struct.Struct(">I")


class LogError(Exception):
    pass


def origin_for(archive_id: str) -> str:
    """The checkpoint origin (and signed-note key name) of an archive's log."""
    return "sealcam-station/%s" % archive_id


def encode_entry(entry: dict) -> bytes:
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str) \
            or not isinstance(entry.get("at"), str):
        raise LogError("a log entry is a map with a type and a time")
    return cbor2.dumps(entry, canonical=True)


def decode_entry(data: bytes) -> dict:
    e = cbor2.loads(data)
    if not isinstance(e, dict) or not isinstance(e.get("type"), str):
        raise LogError("not a log entry")
    return e


class Log:
    """The log of the archive in ``root``. ``signer`` (the station's Ed25519 key) is needed
    to append; without it the log is read-only."""

    def __init__(self, root, origin: str, *, signer=None, readonly=False):
        self.dir = os.path.join(os.fspath(root), "log")
        self.entries_path = os.path.join(self.dir, "entries")
        self.checkpoint_path = os.path.join(self.dir, "checkpoint")
        self.origin = origin
        self.signer = signer
        self.readonly = readonly
        self.hashes = []            # leaf hashes
        self.edge = merkle.CompactRange()
        self.offsets = []           # file offset of each entry's length prefix
        self.end = 0                # offset past the last complete entry
        self.torn = 0               # bytes of an incomplete last entry
        self._catch_up()

    # -- reading ---------------------------------------------------------------------
    def _catch_up(self):
        """Read the entries appended since we last looked (by us or another process)."""
        try:
            f = open(self.entries_path, "rb")
        except FileNotFoundError:
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            f.seek(self.end)
            pos = self.end
            while pos + 4 <= size:
                (n,) = _LEN.unpack(f.read(4))
                if n > ENTRY_MAX:
                    raise LogError("%s: entry %d at offset %d claims %d bytes (at most %d): "
                                   "the log is damaged" % (self.entries_path,
                                                           len(self.hashes), pos, n, ENTRY_MAX))
                if pos + 4 + n > size:
                    break
                pos = self._add(pos, f.read(n))
            self.end = pos
            self.torn = size - pos

    def _add(self, pos, data) -> int:
        """Index the entry ``data`` whose length prefix is at ``pos``; the offset past it."""
        self.offsets.append(pos)
        self.hashes.append(merkle.leaf_hash(data))
        self.edge.append(self.hashes[-1])
        return pos + 4 + len(data)

    @property
    def size(self) -> int:
        return len(self.hashes)

    def root(self, size: int | None = None) -> bytes:
        if size is None or size == self.size:
            return self.edge.root()
        return merkle.root(self.hashes, 0, size)

    def entries(self, start=0):
        """(index, raw bytes, decoded entry) of every complete entry from ``start``."""
        if not self.hashes or start >= self.size:
            return
        with open(self.entries_path, "rb") as f:
            f.seek(self.offsets[start])
            for i in range(start, self.size):
                (n,) = _LEN.unpack(f.read(4))
                data = f.read(n)
                if len(data) != n:
                    raise LogError("%s: entry %d is cut short" % (self.entries_path, i))
                try:
                    e = decode_entry(data)
                except Exception as ex:
                    raise LogError("%s: entry %d is not a CBOR log entry (%s)"
                                   % (self.entries_path, i, ex)) from None
                yield i, data, e

    def read_checkpoint(self, pub, data: bytes | None = None):
        """(size, root, note bytes) of the stored checkpoint (or of ``data``), signed by
        ``pub`` under this log's origin; None if there is none; LogError if it is bad."""
        if data is None:
            try:
                with open(self.checkpoint_path, "rb") as f:
                    data = f.read(note.MAX_NOTE + 1)
            except FileNotFoundError:
                return None
        try:
            text = note.open_note(data, self.origin, pub)
            origin, size, root_hash, _ = note.parse_checkpoint(text)
        except note.NoteError as e:
            raise LogError("checkpoint: %s" % e) from None
        if origin != self.origin:
            raise LogError("checkpoint of another log (origin %r, this log is %r)"
                           % (origin, self.origin))
        return size, root_hash, data

    # -- writing ---------------------------------------------------------------------
    def append(self, entries) -> int:
        """Append ``entries`` (maps), durably, and sign a checkpoint over them. Returns the
        index of the first."""
        if self.readonly:
            raise LogError("the log is open read-only")
        blobs = [encode_entry(e) for e in entries]
        for b in blobs:
            if len(b) > ENTRY_MAX:
                raise LogError("log entry of %d bytes (at most %d)" % (len(b), ENTRY_MAX))
        with self._locked():
            if self.signer is not None:
                self._check_signed_prefix()
            fd = os.open(self.entries_path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                if self.torn:               # a cut append left part of an entry: drop it
                    os.ftruncate(fd, self.end)
                    self.torn = 0
                os.lseek(fd, self.end, os.SEEK_SET)
                out = b"".join(_LEN.pack(len(b)) + b for b in blobs)
                view = memoryview(out)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            first = self.size
            pos = self.end
            for b in blobs:
                pos = self._add(pos, b)
            self.end = pos
            if first == 0:
                fsync_dir(self.dir)
            if self.signer is not None:
                self._sign()
            return first

    def sign(self) -> bytes:
        """Sign and install a checkpoint over every complete entry; returns the note."""
        if self.readonly or self.signer is None:
            raise LogError("no station key to sign the log with")
        with self._locked():
            self._check_signed_prefix()
            return self._sign()

    @contextlib.contextmanager
    def _locked(self):
        """Hold log/.lock (other processes append too) and catch up with their entries."""
        os.makedirs(self.dir, exist_ok=True)
        lock = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._catch_up()
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.close(lock)

    def _check_signed_prefix(self):
        """Refuse to sign over entries that no longer match the last signed checkpoint:
        a station never launders an edit of its own log."""
        pub = self.signer.public_key()
        try:
            cp = self.read_checkpoint(pub)
        except LogError as e:
            raise LogError("%s: %s; the station log was tampered with: not appending (run "
                           "`sealcam verify` on the archive)" % (self.checkpoint_path, e)) \
                from None
        if cp is None:
            if self.size:
                raise LogError("%s is missing but the log holds %d entries: not appending "
                               "(run `sealcam verify` on the archive)"
                               % (self.checkpoint_path, self.size))
            return
        if cp[0] > self.size or self.root(cp[0]) != cp[1]:
            raise LogError("%s no longer matches its signed checkpoint (entries removed or "
                           "rewritten): not appending (run `sealcam verify` on the archive)"
                           % self.entries_path)

    def _sign(self) -> bytes:
        data = note.sign_note(note.checkpoint_text(self.origin, self.size, self.root()),
                              self.origin, self.signer)
        tmp = self.checkpoint_path + ".tmp-%d" % os.getpid()
        write_synced(tmp, data)
        os.replace(tmp, self.checkpoint_path)
        fsync_dir(self.dir)
        return data
