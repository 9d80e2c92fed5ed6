"""The station log on disk (SPEC §11).

    DIR/log/entries          the entries, in order: each a 4-byte big-endian length and the
                             entry (a deterministically encoded CBOR map); append-only
    DIR/log/checkpoint       the latest checkpoint, a C2SP signed note by the station key
    DIR/log/checkpoint.new   while the station appends: the signed checkpoint over the old
                             entries and the new ones (its "pending" checkpoint)
    DIR/log/.lock            appends from several processes are serialised by flock on it

Leaf i of the Merkle tree is SHA-256(0x00 || entry i). The station never signs an entry it
did not write (SPEC §11.2): an append first signs and installs checkpoint.new over the old
entries and the new ones, then writes and fsyncs the entries, then renames checkpoint.new
over checkpoint. Complete entries past the checkpoint are the station's own only if the
pending checkpoint covers exactly them (a cut append); a torn last entry is dropped by the
next writer; any other entry past the checkpoint was not written by this station, and the
station then refuses to append or sign anything.

Every file is opened without following symlinks, regular files only, without blocking
(host_tools.safeio); entries beyond what a checkpoint covers are counted, never indexed.
"""
from __future__ import annotations

import array
import contextlib
import fcntl
import io
import os
import struct

import cbor2

from ..archive.durable import fsync_dir, write_synced
from ..safeio import StoreFileError, open_regular, read_capped
from . import merkle, note

__all__ = ["Log", "LogError", "ENTRY_MAX", "encode_entry", "decode_entry", "origin_for",
           "Accounting", "UNSIGNED_INDEXED", "UNSIGNED_COUNT_MAX", "archive_words"]

ENTRY_MAX = 16 << 20
UNSIGNED_INDEXED = 4096         # entries past the signed size that are indexed (hashed)
UNSIGNED_COUNT_MAX = 100_000    # entries past those that are counted before giving up
UNVERIFIED_CLAIM_MAX = 1 << 22  # entries indexed on a checkpoint's word when no key is known
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


def _claimed_size(data) -> int:
    """The tree size a checkpoint note's text claims (unverified; 0 if none): only used
    to bound how much of log/entries is indexed."""
    try:
        line = data.split(b"\n", 2)[1]
        return int(line) if line.isdigit() and len(line) < 16 else 0
    except (IndexError, ValueError):
        return 0


class Accounting:
    """What the log's signatures cover (Log.account): ``signed`` entries are covered by
    the checkpoint (or, after a cut append, by the station's pending checkpoint);
    ``problem`` names anything the station cannot account for (None if all is well)."""

    def __init__(self):
        self.checkpoint = None      # (size, root, note) of log/checkpoint, verified
        self.pending = None         # (size, root, note) of a pending checkpoint that covers
                                    # exactly the log's entries (a cut append)
        self.stale_pending = False  # a pending checkpoint that covers something else
        self.signed = 0
        self.problem = None
        self.unsigned = None        # (first, last index or None if uncounted) unaccounted


class Log:
    """The log of the archive in ``root``. ``signer`` (the station's Ed25519 key) is needed
    to append; without it the log is read-only. ``pub`` (the station's public key, when
    known) bounds what is indexed by the verified checkpoints."""

    def __init__(self, root, origin: str, *, signer=None, readonly=False, pub=None):
        self.base = os.fspath(root)
        self.dir = os.path.join(self.base, "log")
        self.entries_path = os.path.join(self.dir, "entries")
        self.checkpoint_path = os.path.join(self.dir, "checkpoint")
        self.pending_path = os.path.join(self.dir, "checkpoint.new")
        self.origin = origin
        self.signer = signer
        self.readonly = readonly
        self.pub = pub if pub is not None else (
            signer.public_key() if signer is not None else None)
        self._hashes = bytearray()          # leaf hashes, 32 bytes each
        self.edge = merkle.CompactRange()
        self.offsets = array.array("Q")     # file offset of each entry's length prefix
        self.end = 0                # offset past the last indexed complete entry
        self.torn = 0               # bytes of an incomplete last entry
        self.unindexed = 0          # complete entries past the indexed ones (counted)
        self.unindexed_more = False  # ... and the count stopped at UNSIGNED_COUNT_MAX
        self.damaged = None         # why nothing past the indexed entries could be read
        self._catch_up()

    # -- files -----------------------------------------------------------------------
    def _rel(self, path):
        return os.path.relpath(path, self.base).replace(os.sep, "/")

    def _open(self, path):
        """(file, size) of a log file: no symlink followed, regular files only, never
        blocking (a FIFO is refused); FileNotFoundError if absent; LogError if hostile."""
        try:
            f, size = open_regular(self.base, self._rel(path))
        except StoreFileError as e:
            raise LogError(archive_words(e)) from None
        return f, size

    def _read_note(self, path):
        try:
            return read_capped(self.base, self._rel(path), note.MAX_NOTE, "checkpoint")
        except StoreFileError as e:
            raise LogError(archive_words(e)) from None

    def _limit(self) -> int:
        """How many entries are indexed: those a checkpoint (or a pending one) covers,
        verified when the station key is known, and UNSIGNED_INDEXED more."""
        best = 0
        for p in (self.checkpoint_path, self.pending_path):
            try:
                data = self._read_note(p)
            except (FileNotFoundError, LogError):
                continue
            if self.pub is not None:
                try:
                    n = self.read_checkpoint(self.pub, data)[0]
                except LogError:
                    continue
            else:                   # unverified: a claim only bounds, and is bounded
                n = min(_claimed_size(data), UNVERIFIED_CLAIM_MAX)
            best = max(best, n)
        return best + UNSIGNED_INDEXED

    # -- reading ---------------------------------------------------------------------
    def _catch_up(self):
        """Read the entries appended since we last looked (by us or another process): the
        signed ones (and a few more) are indexed, those beyond are only counted."""
        try:
            raw, size = self._open(self.entries_path)
        except FileNotFoundError:
            return
        limit = self._limit()
        with raw:
            f = io.BufferedReader(raw, 1 << 16)
            f.seek(self.end)
            pos = self.end
            self.unindexed, self.unindexed_more, self.damaged = 0, False, None
            while pos + 4 <= size:
                (n,) = _LEN.unpack(f.read(4))
                if n > ENTRY_MAX:     # nothing after it can be read: named, not indexed
                    self.damaged = ("entry %d at offset %d of log/entries claims %d bytes (at "
                                    "most %d): the log is damaged from there on"
                                    % (self.size + self.unindexed, pos, n, ENTRY_MAX))
                    break
                if pos + 4 + n > size:
                    break
                if self.size < limit and not self.unindexed:
                    data = f.read(n)
                    if len(data) != n:
                        break
                    pos = self._add(pos, data)
                    self.end = pos
                    continue
                # past what any checkpoint covers: counted, not read or kept
                if self.unindexed >= UNSIGNED_COUNT_MAX:
                    self.unindexed_more = True
                    break
                f.seek(n, io.SEEK_CUR)
                pos += 4 + n
                self.unindexed += 1
            self.torn = size - pos if not (self.unindexed_more or self.damaged) else 0

    def _add(self, pos, data) -> int:
        """Index the entry ``data`` whose length prefix is at ``pos``; the offset past it."""
        h = merkle.leaf_hash(data)
        self.offsets.append(pos)
        self._hashes += h
        self.edge.append(h)
        return pos + 4 + len(data)

    @property
    def hashes(self):
        """The leaf hashes of the indexed entries (a list, built on demand)."""
        b = bytes(self._hashes)
        return [b[i:i + 32] for i in range(0, len(b), 32)]

    @property
    def size(self) -> int:
        return len(self.offsets)

    def root(self, size: int | None = None) -> bytes:
        if size is None or size == self.size:
            return self.edge.root()
        return merkle.root(self.hashes, 0, size)

    def entries(self, start=0, stop=None):
        """(index, raw bytes, decoded entry) of every indexed entry from ``start`` up to
        ``stop`` (exclusive; default all): nothing past ``stop`` is read or decoded."""
        stop = self.size if stop is None else min(stop, self.size)
        if start >= stop:
            return
        raw, _ = self._open(self.entries_path)
        with raw:
            f = io.BufferedReader(raw, 1 << 16)
            f.seek(self.offsets[start])
            for i in range(start, stop):
                hdr = f.read(4)
                if len(hdr) != 4:
                    raise LogError("%s: entry %d is cut short" % (self.entries_path, i))
                (n,) = _LEN.unpack(hdr)
                data = f.read(n) if n <= ENTRY_MAX else b""
                if len(data) != n:
                    raise LogError("%s: entry %d is cut short" % (self.entries_path, i))
                try:
                    e = decode_entry(data)
                except Exception as ex:
                    raise LogError("%s: entry %d is not a CBOR log entry (%s)"
                                   % (self.entries_path, i, ex)) from None
                yield i, data, e

    def read_checkpoint(self, pub, data: bytes | None = None, path=None):
        """(size, root, note bytes) of the stored checkpoint (or of ``data``, or of the
        note at ``path``), signed by ``pub`` under this log's origin; None if there is
        none; LogError if it is bad."""
        if data is None:
            try:
                data = self._read_note(path or self.checkpoint_path)
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

    def account(self, pub) -> Accounting:
        """Which entries a signature of the station ``pub`` covers, and what it cannot
        account for (SPEC §11.2): entries past the checkpoint that no pending checkpoint
        covers exactly were not written by this station."""
        acc = Accounting()
        try:
            cp = self.read_checkpoint(pub)
        except LogError as e:
            acc.problem = "log/checkpoint: %s: it is not signed by this station's key" % e
            return acc
        acc.checkpoint = cp
        try:
            pend = self.read_checkpoint(pub, path=self.pending_path)
        except LogError:
            pend = None                 # not the station's: ignored (and never promoted)
        base = 0
        if cp is not None:
            base = cp[0]
            if base > self.size + self.unindexed:
                acc.problem = self.damaged or (
                    "the signed checkpoint covers %d entries but the log holds %d: entries "
                    "were removed from log/entries" % (base, self.size))
                return acc
            if base > self.size or self.root(base) != cp[1]:
                acc.problem = ("the first %d entries do not hash to the signed checkpoint's "
                               "root: log/entries was rewritten" % base)
                return acc
        acc.signed = base
        total = self.size + self.unindexed
        if self.damaged:
            acc.problem = "%s (after the %d entries the station signed)" % (self.damaged, base)
            return acc
        if total > base:
            if pend is not None and not self.unindexed and pend[0] == self.size \
                    and pend[0] > base and self.root(pend[0]) == pend[1]:
                acc.pending, acc.signed = pend, pend[0]
                return acc
            last = None if self.unindexed_more else total - 1
            acc.unsigned = (base, last)
            if last is None:
                which = "entries %d and after (more than %d; not all counted) were" % (
                    base, total - base)
            elif last != base:
                which = "entries %d..%d were" % (base, last)
            else:
                which = "entry %d was" % base
            acc.problem = ("log/entries: %s not written by this station: no checkpoint it "
                           "signed covers them (added by someone without the station key)"
                           % which)
            return acc
        acc.stale_pending = pend is not None or os.path.lexists(self.pending_path)
        return acc

    # -- writing ---------------------------------------------------------------------
    def append(self, entries) -> int:
        """Append ``entries`` (maps), durably, under a signed checkpoint. Returns the index
        of the first. Refuses (LogError) when the log holds entries the station did not
        write or no longer matches its signed checkpoint."""
        if self.readonly:
            raise LogError("the log is open read-only")
        blobs = [encode_entry(e) for e in entries]
        for b in blobs:
            if len(b) > ENTRY_MAX:
                raise LogError("log entry of %d bytes (at most %d)" % (len(b), ENTRY_MAX))
        with self._locked():
            if self.signer is not None:
                self._settle()
            elif self.unindexed or self.damaged:
                raise LogError("%s: %s: not appending" % (
                    self.entries_path, self.damaged or "%d entries past its last checkpoint"
                    % self.unindexed))
            fd = os.open(self.entries_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            try:
                if self.torn:               # a cut append left part of an entry: drop it
                    os.ftruncate(fd, self.end)
                    self.torn = 0
                if self.signer is not None:  # the pending checkpoint, before the entries
                    edge = merkle.CompactRange()
                    edge.stack, edge.size = list(self.edge.stack), self.edge.size
                    for b in blobs:
                        edge.append(merkle.leaf_hash(b))
                    pending = self._install(self.pending_path, edge.size, edge.root())
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
                os.replace(self.pending_path, self.checkpoint_path)
                fsync_dir(self.dir)
                self.last_note = pending
            return first

    def sign(self) -> bytes:
        """The station's latest checkpoint (a signed note), after settling a cut append
        (its pending checkpoint installed). A log that has none yet and holds no entry
        gets one over the empty tree. Never signs an entry it did not write."""
        if self.readonly or self.signer is None:
            raise LogError("no station key to sign the log with")
        with self._locked():
            acc = self._settle()
            if acc.checkpoint is None and acc.pending is None:
                return self._install(self.checkpoint_path, 0, merkle.EMPTY_ROOT)
            return (acc.pending or acc.checkpoint)[2]

    def _settle(self) -> Accounting:
        """Under the lock: refuse a log the station cannot account for; install the
        pending checkpoint of a cut append; drop a stale one."""
        acc = self.account(self.signer.public_key())
        if acc.problem:
            raise LogError("%s; the station log was tampered with: not appending, not "
                           "signing (run `sealcam verify` on the archive)" % acc.problem)
        if acc.checkpoint is None and self.size and acc.pending is None:
            raise LogError("%s is missing but the log holds %d entries: not appending (run "
                           "`sealcam verify` on the archive)" % (self.checkpoint_path,
                                                                 self.size))
        if acc.pending is not None:
            os.replace(self.pending_path, self.checkpoint_path)
            fsync_dir(self.dir)
            acc.checkpoint, acc.pending = acc.pending, None
        elif acc.stale_pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pending_path)
        return acc

    @contextlib.contextmanager
    def _locked(self):
        """Hold log/.lock (other processes append too) and catch up with their entries."""
        os.makedirs(self.dir, exist_ok=True)
        lock = os.open(os.path.join(self.dir, ".lock"),
                       os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._catch_up()
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.close(lock)

    def _install(self, path, size, root_hash) -> bytes:
        """Sign a checkpoint over ``size`` entries with ``root_hash`` and install it at
        ``path`` durably (write, fsync, rename, fsync the folder)."""
        data = note.sign_note(note.checkpoint_text(self.origin, size, root_hash),
                              self.origin, self.signer)
        tmp = path + ".tmp-%d" % os.getpid()
        write_synced(tmp, data)
        os.replace(tmp, path)
        fsync_dir(self.dir)
        return data


def archive_words(e) -> str:
    """A safeio refusal in the words of an archive (not of a card)."""
    return str(e).replace("a recorder writes only regular files (it is not read)",
                          "the station writes only regular files (it is not read)")
