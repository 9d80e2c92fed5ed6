"""The bulk offload (SPEC §8.8): media read from the recorder's card exposed as a read-only
disk, every byte checked against the chunk hashes whose chain root matched the signed root
before it is stored; records, chunk indexes, receipts and control stay on the dock link.

Mixin of host_tools.offload._Offload, before Puller (host_tools/offload_pull.py), whose
``_fetch_chunks`` it wraps:

- the first time media is to be pulled, EXPOSE {on: true} asks the recorder to expose its
  card. Its answer says how: ``msc`` (a USB disk came up: the station reads it where the
  operator mounted it, ``--volume DIR``) or ``dir`` (the virtual recorder: the card's
  folder on the host stands in for the mounted volume; taken only when the operator set
  SEALCAM_SIM_VOLUME=1 and only an absolute path: otherwise a recorder would choose which
  folder of the station is read; ``--volume`` always wins). A recorder that answers
  ``{1: false}`` (no mass storage, or recording) or 400 (firmware without the op) is
  read over the link (READ), as is every recorder with ``bulk=False``;
- each segment is read from VOLUME/m/S.ext, the name made from its seq (never a name read
  from the card), through safeio (no symlink followed, a regular file only), exactly the
  signed length and no further, in blocks of whole chunks; each chunk's SHA-256 must equal
  its entry of the chunk index pulled over the link (whose chain root matched the signed
  root), and the chain root of what was read must equal the signed root at the end. Only
  then is a chunk appended to staging (resumable exactly as over the link);
- a file that is missing, not a regular file, shorter than signed, or a chunk that does not
  match (a flipped byte, a file changed while read) sends that segment, from its first
  unverified chunk, to the link's READ path: the archive never takes a byte that did not
  match. Each fallback is named in the summary (``bulk_fallbacks``);
- STATUS every few seconds keeps the session (and so the exposure) alive while the disk is
  read; EXPOSE off ends the exposure before anything is written to the card (RECEIPT); the
  session's end (HELLO, idle timeout, the host gone) ends it on the recorder too.
"""
from __future__ import annotations

import errno
import hashlib
import os
import queue
import threading
import time

from . import safeio
from .link import EXPOSE, STATUS, LinkError

__all__ = ["Bulk", "BULK_BLOCK", "KEEPALIVE_S", "SIM_ENV"]

SIM_ENV = "SEALCAM_SIM_VOLUME"   # =1: a "dir" answer (the virtual recorder) names the volume

BULK_BLOCK = 4 << 20        # bytes read from the volume at a time (whole chunks)
BLOCK_CHUNKS = 1 << 14      # and at most this many chunks (tiny signed chunk sizes)
KEEPALIVE_S = 5.0           # STATUS this often while reading the volume (session idle 15 s)
COPY_STEP = 256 << 10       # a block is copied in steps this big, the keep-alive between
_PERSIST_BYTES = 64 << 20   # fsync staging and persist the verified length this often
_PERSIST_S = 2.0


def _H(b):
    return hashlib.sha256(b).digest()


class _Fallback(Exception):
    """This segment goes to the link's READ path from its first unverified chunk."""


class Bulk:
    """Needs what Puller needs, and self.bulk ("auto", True, False), self.volume (a folder
    given by the operator, or None)."""

    bulk = "auto"
    volume = None
    _exposed = None          # None: not asked yet; False: serial only; else the volume root
    _last_ping = 0.0
    _kernel_copy = True      # copy_file_range works between the volume and staging

    @property
    def _digests(self):
        """segment -> (length, SHA-256 hex) of staging files the bulk path wrote whole."""
        d = self.__dict__.get("_bulk_digests")
        if d is None:
            d = self.__dict__["_bulk_digests"] = {}
        return d

    # -- exposure ------------------------------------------------------------------
    def _expose(self):
        """The volume's root to read media from, or None (media over the link)."""
        if self._exposed is not None:
            return self._exposed or None
        self._exposed = False
        sm = self.sm
        if self.bulk is False:
            sm.media_path = "serial"
            return None
        try:
            res = self.c.request(EXPOSE, {1: True})
        except LinkError as e:
            if e.status != 400:
                raise
            res = {1: False, 4: "its firmware does not know EXPOSE"}
        if res.get(1) is not True:
            why = res.get(4) if isinstance(res.get(4), str) else "no reason given"
            sm.media_path = "serial"
            sm.bulk_note = "the recorder offers no disk (%s)" % _clean(why)
            if self.bulk is True:
                self.say("%s: %s; reading media over the link" % (sm.device, sm.bulk_note))
            return None
        how, where = res.get(2), res.get(3)
        self._was_exposed = True
        root = self.volume
        if root is None and how == "dir":
            # the virtual recorder names its card folder: a path on this station chosen by
            # the recorder, so taken only when the operator opted in, and absolute only
            if os.environ.get(SIM_ENV) != "1":
                sm.media_path = "serial"
                sm.bulk_note = ("the recorder names a folder of this station (%s) as its disk; "
                                "only the virtual recorder does that: set %s=1 to read it, or "
                                "give --volume DIR" % (_clean(str(where)), SIM_ENV))
                self.say("%s: %s; reading media over the link" % (sm.device, sm.bulk_note))
                self._unexpose()
                return None
            if not (isinstance(where, str) and os.path.isabs(where)):
                sm.media_path = "serial"
                sm.bulk_note = ("the recorder's folder %s is not an absolute path"
                                % _clean(str(where)))
                self.say("%s: %s; reading media over the link" % (sm.device, sm.bulk_note))
                self._unexpose()
                return None
            root = where         # the virtual recorder: its card folder is the volume
        if root is None:
            sm.media_path = "serial"
            sm.bulk_note = ("the recorder exposed its card as a USB disk (%s), but no --volume "
                            "names where it is mounted" % _clean(str(where)))
            self.say("%s: %s; reading media over the link" % (sm.device, sm.bulk_note))
            self._unexpose()
            return None
        if not os.path.isdir(root):
            sm.media_path = "serial"
            sm.bulk_note = "the volume %s is not a folder" % _clean(root)
            self.say("%s: %s; reading media over the link" % (sm.device, sm.bulk_note))
            self._unexpose()
            return None
        self._exposed = root
        sm.media_path = "bulk"
        sm.volume = root
        self._last_ping = time.monotonic()
        return root

    def _unexpose(self):
        """EXPOSE off, if the card was exposed (before anything is written to it)."""
        if not getattr(self, "_was_exposed", False):
            return
        self._was_exposed = False
        self.c.request(EXPOSE, {1: False})

    def _ping(self):
        """STATUS every KEEPALIVE_S while the volume is read (by time, also within a block).
        A 401: the session ended (a volume slower than session_idle_ms per step), and the
        exposure with it: a new session (HELLO, AUTH), and the rest over the link."""
        now = time.monotonic()
        if now - self._last_ping < KEEPALIVE_S:
            return
        try:
            self.c.request(STATUS)
        except LinkError as e:
            if e.status != 401:
                raise
            self._exposed = False          # the exposure ended with the session
            self._was_exposed = False
            self._reauth(self._bulk_dev)
            self._last_ping = time.monotonic()
            raise _Fallback("the session ended while the volume was read (the volume is "
                            "too slow?)") from None
        self._last_ping = time.monotonic()

    # -- media ---------------------------------------------------------------------
    def _fetch_chunks(self, dev_id, jobs, idx):
        root = None
        if any(s["chunks"] > s["staged_chunks"] for s in jobs):
            root = self._expose()
        if root is None:
            return super()._fetch_chunks(dev_id, jobs, idx)
        rest = []
        self._bulk_dev = dev_id
        for s in jobs:
            if s["chunks"] <= s["staged_chunks"]:
                continue
            if s["_noidx"] or not self._exposed:     # (the exposure may have ended)
                rest.append(s)       # no usable index: the whole run against the root
                continue
            try:
                self._bulk_segment(dev_id, root, s)
            except _Fallback as e:
                self.sm.bulk_fallbacks.append("segment %d: %s" % (s["segment"], e))
                self.say("segment %d of %s: %s; reading the rest of it over the link"
                         % (s["segment"], dev_id, e))
                rest.append(s)
        if rest:
            super()._fetch_chunks(dev_id, rest, idx)

    def _bulk_segment(self, dev_id, root, s):
        """Stage segment s's unstaged chunks from the volume, each checked; _Fallback (the
        verified prefix persisted) when the volume cannot give them.

        A block of whole chunks is copied from the volume to the end of the staging file by
        the kernel (copy_file_range; read + write where it is not available), read back
        from staging and each chunk's hash checked against the index: what is checked is
        exactly what the archive keeps. Only then does the verified length (persisted,
        SPEC §9) move past the block; a block that fails is cut off the staging file
        again. A second thread (_Hasher) feeds the whole file's SHA-256, the object's name,
        so finish_segment does not read the file again (hashlib releases the GIL)."""
        a, sm = self.a, self.sm
        S, C, n = s["segment"], s["chunk"], s["chunks"]
        want = s["length"] if s["closed_by"] is not None else n * C
        rel = a.media_rel(s)
        try:
            f, size = safeio.open_regular(root, rel)
        except FileNotFoundError:
            raise _Fallback("%s is not on the volume" % rel) from None
        except OSError as e:
            raise _Fallback("%s on the volume cannot be read (%s)" % (rel, _clean(str(e)))) \
                from None
        ix = s["_idx"]
        out = hasher = None
        try:
            if size < want:
                raise _Fallback("%s on the volume holds %d bytes, %d are signed"
                                % (rel, size, want))
            out = a.open_staging(dev_id, s)      # at the verified length (may reset it)
            fin, fout = f.fileno(), out.fileno()
            i, pos, root_h = s["staged_chunks"], s["staged_length"], s["staged_root"]
            hasher = _Hasher(fout, pos)
            # a block is bounded by bytes and by chunks: what it holds in memory never grows
            # with the chunk count a recorder signs (each hash is compared as it is made)
            k = max(1, min(BULK_BLOCK // C, BLOCK_CHUNKS))
            bufs = [bytearray(min(k * C, max(want - pos, 0)) or 1) for _ in range(3)]
            nb = 0
            t_persist, at_persist = time.monotonic(), pos
            while i < n:
                m = min(k, n - i)
                end = min(want, (i + m) * C)
                if end <= pos or -(-(end - pos) // C) != m:
                    # the signed length ends before the signed chunk count does
                    raise _Fallback("%s: the signed length %d bytes does not hold its %d "
                                    "signed chunks of %d bytes" % (rel, want, n, C))
                mv = memoryview(bufs[nb % 3])[:end - pos]
                nb += 1
                try:
                    got = self._copy_block(fin, fout, mv, pos)
                except _Fallback:
                    os.ftruncate(fout, pos)          # nothing unchecked stays in staging
                    self._persist(dev_id, s, out, pos, i, root_h)
                    raise
                if got != end - pos:
                    os.ftruncate(fout, pos)
                    self._persist(dev_id, s, out, pos, i, root_h)
                    raise _Fallback("%s on the volume ended at byte %d while it was read (%d "
                                    "signed): changed under the station" % (rel, pos + got,
                                                                            want))
                entries = ix.entry_run(i, m)
                bad = None
                r = root_h
                for j in range(m):
                    h = _H(mv[j * C:(j + 1) * C])
                    if h != entries[32 * j:32 * j + 32]:
                        bad = j
                        break
                    r = _H(r + h)
                if bad is not None:
                    # the chunks before the bad one are verified: keep them, cut the rest
                    os.ftruncate(fout, pos + bad * C)
                    if bad:
                        hasher.put(mv[:bad * C])
                    self._persist(dev_id, s, out, pos + bad * C, i + bad, r)
                    raise _Fallback("chunk %d of %s on the volume does not match its signed "
                                    "hash (changed or damaged)" % (i + bad, rel))
                root_h = r
                hasher.put(mv)
                sm.media_bytes += end - pos
                sm.bytes += end - pos
                sm.bulk_bytes += end - pos
                self.bar.update(end - pos)
                pos, i = end, i + m
                now = time.monotonic()
                if pos - at_persist >= _PERSIST_BYTES or now - t_persist >= _PERSIST_S:
                    self._persist(dev_id, s, out, pos, i, root_h)
                    t_persist, at_persist = now, pos
                try:
                    self._ping()
                except _Fallback:
                    self._persist(dev_id, s, out, pos, i, root_h)
                    raise
            if root_h != s["root"]:          # cannot differ when every entry matched
                raise _Fallback("the chunks read from the volume do not chain to the "
                                "signed root")  # pragma: no cover
            self._persist(dev_id, s, out, pos, i, root_h)
            whole = hasher.finish()
            if whole is not None:
                self._digests[S] = (pos, whole)
            sm.bulk_segments += 1
        finally:
            f.close()
            if hasher is not None:
                hasher.stop()
            if out is not None:
                out.close()

    def _copy_block(self, fin, fout, mv, pos):
        """Copy len(mv) bytes at pos from the volume to staging, then read them back from
        staging into mv (the bytes checked are the bytes kept), in steps of COPY_STEP with
        the keep-alive between them (_Fallback if the session ended). Returns how many bytes
        the volume gave (fewer: it ended)."""
        done = 0
        while done < len(mv):
            part = mv[done:done + COPY_STEP]
            got = self._copy_step(fin, fout, part, pos + done)
            done += got
            if got != len(part):
                break
            self._ping()
        return done

    def _copy_step(self, fin, fout, mv, pos):
        want = len(mv)
        if self._kernel_copy:
            done = 0
            try:
                while done < want:
                    k = os.copy_file_range(fin, fout, want - done, pos + done, pos + done)
                    if k == 0:
                        break
                    done += k
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                                   errno.EPERM) or done:
                    raise _Fallback("the volume could not be read (%s)" % _clean(str(e))) \
                        from None
                self._kernel_copy = False        # read + write from here on
            else:
                if done < want:
                    return done
                got = os.preadv(fout, [mv], pos)
                if got != want:
                    raise OSError(errno.EIO, "the staging file gave %d of %d bytes back"
                                  % (got, want))
                return got
        try:
            got = os.preadv(fin, [mv], pos)
        except OSError as e:
            raise _Fallback("the volume could not be read (%s)" % _clean(str(e))) from None
        if got == want:
            view = mv
            at = pos
            while view:
                k = os.pwrite(fout, view, at)
                view, at = view[k:], at + k
        return got

    def _staged_digest(self, S, row):
        d = self._digests.get(S)
        if d is not None and d[0] == row["length"] == row["staged_length"]:
            return d[1]
        return None

    def _persist(self, dev_id, s, out, length, chunks, root_h):
        os.fsync(out.fileno())
        self.a.set_staged(dev_id, s["segment"], length, chunks, root_h)
        # the link's path (a fallback) goes on from here
        s.update(staged_length=length, staged_chunks=chunks, staged_root=root_h)


class _Hasher:
    """Feeds the whole staged file's SHA-256 in a thread of its own; at most two blocks
    wait (the reader has three buffers, so none is reused while it is hashed)."""

    def __init__(self, fout, pos):
        self.q = queue.Queue(maxsize=1)
        self.whole = hashlib.sha256()
        off = 0
        while off < pos:       # a resumed segment: the staged prefix first (read once)
            b = os.pread(fout, min(pos - off, BULK_BLOCK), off)
            if not b:
                self.whole = None         # cannot be: open_staging checked its size
                break
            self.whole.update(b)
            off += len(b)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.whole is not None:
                self.whole.update(item)

    def put(self, mv):
        self.q.put(mv)

    def finish(self):
        """The hex digest of everything put, once it is all hashed."""
        self.stop()
        return None if self.whole is None else self.whole.hexdigest()

    def stop(self):
        if self.t.is_alive():
            self.q.put(None)
            self.t.join()


def _clean(s, n=200):
    return "".join(c if c.isprintable() else "?" for c in str(s))[:n]
