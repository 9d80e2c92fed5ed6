"""The verifier's media checks (SPEC §4, §6): each segment's media against its signed
manifests, and what in m/ no record accounts for.

``SegJob(verifier, rec_start, members).run(bar)`` -> SegmentRow. Files are opened through
safeio (no symlink followed, regular files only); the media is hashed in blocks of at most
1 MiB and only as far as the signatures cover; the (untrusted) index is read only as far as
the signed chunk count. A segment closed at or before the verifier's trusted seq (a prefix
the station verified at an earlier offload) whose media has its signed length is not
re-hashed: its chunks are marked ``T``.

``check_media_dir(verifier, jobs)``: every entry of m/ must be the media or index of a
segment of the chain; media named after a seq beyond the chain's end is "records
removed"; anything else is an unsigned file (NOT_OK in a signed store); symlinks, FIFOs,
devices and directories are named and never read.
"""
from __future__ import annotations

import hashlib
import os
import re

from . import records as R
from .i18n import _
from . import safeio
from .records import K
from .records import CHECKPOINT, F_MISMATCH, MAX_CHUNKS, RECOVERY, SEGMENT
from .verify_report import OK, OK_WITH_MISSING_INFO, NOT_OK, NOT_SIGNED, SegmentRow
from .verify_spool import _SPOOL_STEP, _Runs, _Spool

__all__ = ["SegJob", "check_media_dir"]

MAX_NAMED = 1000         # unaccounted files of m/ named one by one; the rest are counted
_MEDIA_RE = re.compile(r"^(\d{8,})\.([a-z0-9]{1,8})$")


class SegJob:
    """Verification of one segment's media against its signed manifests."""

    def __init__(self, v, start, members: list):
        self.v, self.start, self.S = v, start, start.seq
        self.media = start.body[K.MEDIA]
        self.idx = R.index_path(self.media)
        self.C = start.body[K.CHUNK]
        self.ckpts = [r for r in members if r.type == CHECKPOINT]
        self.closes = [r for r in members if r.type in (SEGMENT, RECOVERY)]
        self.close = self.closes[0] if self.closes else None
        self.errors = []    # (reason, manifest seq or None, chunk or None)
        self.infos = []
        self.notes = []
        if self.close is not None:
            self.cover_len, self.cover_chunks = self.close.body[K.LENGTH], self.close.body[K.CHUNKS]
        elif self.ckpts:
            last = self.ckpts[-1].body
            self.cover_len, self.cover_chunks = last[K.LENGTH], last[K.CHUNKS]
        else:
            self.cover_len, self.cover_chunks = 0, 0
        self.path = self._safe_path(self.media)
        self.f = None        # the media file, opened (safeio) before hashing
        self.file_size = None
        self.open_error = None
        self.locked = None   # encrypted at rest and the key not at hand: why (SPEC §14.8)
        # (RELEASE, RECEIPT) when a valid RELEASE of this segment stands in the chain
        self.released = v.released.get(self.S)
        # the text of an approved disposal the station log holds (an archive view only)
        self.disposed = getattr(v, "disposed", {}).get(self.S)
        # closed at or before the trusted seq: verified at an earlier offload, not re-hashed
        self.trusted = v.anchor is not None and self.close is not None \
            and self.close.seq <= v.anchor[0]
        if self.path is not None:
            # an archive view's media may be sealed at rest: its opener decrypts
            opener = getattr(v, "media_opener", None) or safeio.open_regular
            try:
                self.f, self.file_size = opener(v.root, self.path)
            except FileNotFoundError:
                pass
            except OSError as e:
                if getattr(e, "locked", False):
                    self.locked = str(e)
                else:
                    self.open_error = e
        self.to_hash = 0 if self.f is None or (self.trusted
                                           and self.file_size == self.cover_len) \
            else min(self.cover_len, self.file_size)

    def _safe_path(self, rel):
        bad = R.unsafe_path(rel)
        if bad:
            self.errors.append(("segment %d: media %s" % (self.S, bad), self.S, None))
            return None
        return rel

    def _err(self, reason, seq=None, chunk=None):
        self.errors.append((reason, seq if seq is not None else self.S, chunk))

    def _check_manifests(self):
        C = self.C
        if C <= 0:
            self._err("chunk size is %d" % C)
            return False
        ok = True
        if len(self.closes) > 1:
            self._err("segment closed more than once (seq %s)"
                      % ", ".join(str(r.seq) for r in self.closes), self.closes[1].seq)
            ok = False
        last_n, last_l = 0, 0
        for r in self.ckpts + self.closes[:1]:
            n, L = r.body[K.CHUNKS], r.body[K.LENGTH]
            name = r.tname
            if r.type == CHECKPOINT:
                if L != n * C:
                    self._err("seq %d (CHECKPOINT): length %d is not chunks %d x chunk size %d"
                              % (r.seq, L, n, C), r.seq)
                    ok = False
                if self.close is not None and r.seq > self.close.seq:
                    self._err("seq %d (CHECKPOINT) follows the close of the segment (seq %d)"
                              % (r.seq, self.close.seq), r.seq)
                    ok = False
            elif n != -(-L // C):
                self._err("seq %d (%s): %d chunks do not fit length %d with chunk size %d"
                          % (r.seq, name, n, L, C), r.seq)
                ok = False
            if n < last_n or L < last_l:
                self._err("seq %d (%s) covers less than an earlier manifest (%d < %d bytes)"
                          % (r.seq, name, L, last_l), r.seq)
                ok = False
            last_n, last_l = max(n, last_n), max(L, last_l)
        if self.close is not None and self.close.type == RECOVERY:
            ck_len = self.ckpts[-1].body[K.LENGTH] if self.ckpts else 0
            if self.close.body[K.SIGNED] != ck_len:
                self._err("seq %d (RECOVERY) says %d bytes were signed before the cut, but the "
                          "last checkpoint covers %d" % (self.close.seq, self.close.body[K.SIGNED],
                                                         ck_len), self.close.seq)
                ok = False
        return ok

    def _manifest_counts(self):
        return {r.body[K.CHUNKS] for r in self.ckpts + self.closes[:1]}

    def _read_idx(self):
        """The first cover_chunks entries of the (untrusted) index, read in bounded steps
        and spooled (_Spool: the count, the running root at each manifest's chunk count)."""
        want = self.cover_chunks * 32
        out = _Spool(self._manifest_counts())
        try:
            f, size = safeio.open_regular(self.v.root, self.idx)
        except FileNotFoundError:
            self.notes.append("index %s is missing" % self.idx)
            return out
        except safeio.StoreFileError as e:
            self._err("segment %d: %s" % (self.S, e))
            return out
        except OSError as e:
            self.notes.append("index %s cannot be read (%s)" % (self.idx, e.strerror or e))
            return out
        with f:
            left = min(want, size)
            while left >= 32:
                b = f.read(min(left, 1 << 20) // 32 * 32)
                if not b:
                    break
                b = b[:len(b) // 32 * 32]
                out.add(b)
                left -= len(b)
        return out

    def _hash_media(self, bar):
        """Chunk hashes of the covered part of the media, spooled (_Spool); stops at the
        end of the file. Read in blocks of at most 1 MiB, whatever the chunk size."""
        C, L, N = self.C, self.cover_len, self.cover_chunks
        hashes = _Spool(self._manifest_counts())
        buf = bytearray(min(C, 1 << 20))
        mv = memoryview(buf)
        f = self.f
        pend = bytearray()
        for i in range(N):
            want = min(C, L - i * C)
            h = hashlib.sha256()
            got = 0
            while got < want:
                k = f.readinto(mv[:min(len(buf), want - got)])
                if not k:
                    break
                h.update(mv[:k])
                got += k
            if got < want:
                break
            pend += h.digest()
            if len(pend) >= _SPOOL_STEP:
                hashes.add(pend)
                pend = bytearray()
            if bar is not None:
                bar.update(want)
        hashes.add(pend)
        return hashes

    def run(self, bar) -> SegmentRow:
        S, C = self.S, self.C
        closed_by = self.close.tname if self.close is not None else None
        row = SegmentRow(S, self.media, self.cover_len, None, 0, C, closed_by, OK, "")
        self._check_manifests()
        hashes, file_size = _Spool(()), self.file_size
        gone = None        # media released against a receipt and removed (SPEC §10.8)
        disposed = None    # media disposed with approval (SPEC §9.2)
        skip = False       # within the trusted prefix: not re-hashed
        if self.open_error is not None:
            self._err("segment %d: media file %s cannot be read (%s)"
                      % (S, self.media, self.open_error))
        elif self.locked is not None:
            pass
        elif self.path is not None and self.f is None:
            if self.disposed is not None:
                disposed = _("segment %(seg)d %(what)s: its media %(media)s left the "
                             "archive") % {"seg": S, "what": self.disposed,
                                           "media": self.media}
            elif self.released is not None:
                rel, rc = self.released
                gone = "segment %d released against receipt %d (seq %d RELEASE; receipt " \
                       "seq %d covers records 0..%d): its media %s was removed" % (
                           S, rel.body[K.NUMBER], rel.seq, rc.seq, rc.body[K.COVERED], self.media)
            elif self.cover_len > 0:
                self._err("segment %d: media file %s is missing" % (S, self.media))
            elif self.close is None:   # nothing signed yet; a new file may not exist yet
                self.infos.append("media file %s does not exist yet" % self.media)
            else:
                self.notes.append("media file %s of an empty segment is missing"
                                  % self.media)
        elif self.f is not None:
            try:
                if self.trusted and file_size == self.cover_len:
                    skip = True
                    self.notes.append("closed by seq %d, within the trusted prefix (seq %d): "
                                      "verified before, not re-hashed"
                                      % (self.close.seq, self.v.anchor[0]))
                elif C > 0:
                    hashes.close()
                    hashes = self._hash_media(bar)
            except OSError as e:
                self._err("segment %d: media file %s cannot be read (%s)"
                          % (S, self.media, e))
            finally:
                self.f.close()
        row.file_size = file_size
        if self.locked is not None:
            marks = "E" * self.cover_chunks
            self.infos.append("media %s not checked: %s" % (self.media, self.locked))
        elif disposed:
            marks = "D" * self.cover_chunks
        elif gone:
            marks = "X" * self.cover_chunks
        elif skip:
            marks = "T" * self.cover_chunks
        else:
            try:
                marks = self._marks(hashes, file_size) if C > 0 else ""
            finally:
                hashes.close()
            if self.released is not None and file_size is not None:
                self.notes.append("released by seq %d (RELEASE), but its media is still "
                                  "present: verified" % self.released[0].seq)
            if self.disposed is not None and file_size is not None:
                self.notes.append(_("%(what)s, but the disposal is not finished: its media "
                                    "is still present (verified); the next disposal run "
                                    "removes it") % {"what": self.disposed})
        row.marks, row.chunks = marks, len(marks)
        if self.errors:
            row.verdict = NOT_OK
            parts = [e[0] for e in self.errors]
        else:
            parts = []
            if self.infos:
                row.verdict = OK_WITH_MISSING_INFO
                parts = list(self.infos)
            if gone:
                row.verdict = OK_WITH_MISSING_INFO
                parts.insert(0, gone)
                self.v.info.append(gone)
            if disposed:
                parts.insert(0, disposed)
                self.v.rep.notes.append(disposed)
        row.reason = "; ".join(parts + self.notes)
        for reason, seq, chunk in self.errors:
            extra = {"segment": S, "record": seq}
            if chunk is not None:
                extra["chunk"] = chunk
            self.v._failure(reason, S, self.media, None, **extra)
        if not self.errors:
            self.v.info.extend("segment %d (%s): %s" % (S, self.media, i) for i in self.infos)
        if self.notes:
            self.v.rep.notes.extend("segment %d: %s" % (S, n) for n in self.notes)
        return row

    def _marks(self, hashes, file_size):
        S, C, N = self.S, self.C, self.cover_chunks
        manifests = self.ckpts + self.closes[:1]
        idx = self._read_idx()
        try:
            return self._marks_of(hashes, idx, file_size, manifests)
        finally:
            idx.close()

    def _marks_of(self, hashes, idx, file_size, manifests):
        S, C, N = self.S, self.C, self.cover_chunks
        nh, ni = hashes.n, idx.n
        media_ok, idx_ok = 0, 0
        first_bad = None
        for r in manifests:
            n, root = r.body[K.CHUNKS], r.body[K.ROOT]
            if n <= nh and hashes.roots.get(n) == root:
                media_ok = max(media_ok, n)
            elif first_bad is None:
                first_bad = r
            if n <= min(ni, N) and idx.roots.get(n) == root:
                idx_ok = max(idx_ok, n)
        recovered = self.close is not None and self.close.type == RECOVERY
        ck_chunks = self.ckpts[-1].body[K.CHUNKS] if self.ckpts else 0
        mismatch_flag = recovered and bool(self.close.body.get(K.FLAGS, 0) & F_MISMATCH)
        unsigned = 0
        if self.close is None and file_size is not None:
            unsigned = min(max(0, -(-file_size // C) - N), MAX_CHUNKS)

        def good(a, b):     # the marks of chunks a..b-1 that match
            if not recovered or b <= ck_chunks:
                return b"." * (b - a)
            m = max(a, ck_chunks)
            return b"." * (m - a) + b"R" * (b - m)

        # one pass over the spooled hashes and index entries, a block at a time: what is
        # held does not grow with the chunk count (the bad chunks are kept as a few runs)
        mk = bytearray()
        media_bad, idx_bad, unlocated, idx_recov = _Runs(), _Runs(), _Runs(), _Runs()
        top = min(N, nh)
        hashes.rewind()
        idx.rewind()
        i = 0
        while i < top:
            b = min(top, i + _SPOOL_STEP // 32)
            hb = hashes.read(b - i)
            ib = idx.read(max(0, min(b, ni) - i))
            if hb == ib and b <= max(media_ok, idx_ok):
                mk += good(i, b)
                i = b
                continue
            for j in range(i, b):
                h = hb[32 * (j - i):32 * (j - i) + 32]
                e = ib[32 * (j - i):32 * (j - i) + 32] if j < ni else None
                if j < media_ok:
                    if e is not None and e != h:
                        if mismatch_flag and j >= ck_chunks:
                            idx_recov.add(j)
                            mk += b"R"
                        else:
                            idx_bad.add(j)
                            mk += b"M"
                    else:
                        mk += good(j, j + 1)
                elif j < idx_ok:
                    if h == e:
                        mk += good(j, j + 1)
                    else:
                        media_bad.add(j)
                        mk += b"M"
                else:
                    unlocated.add(j)
                    mk += b"M"
            i = b
        marks = [mk.decode("ascii")]
        marks.append("-" * (N - top))
        marks.append("U" * unsigned)
        # reasons
        if first_bad is not None:
            r = first_bad
            fs = file_size if file_size is not None else 0
            missing = nh < r.body[K.CHUNKS]
            if missing and file_size is not None:
                self._err("segment %d: media file %s is shorter than signed: %d bytes, seq %d "
                          "(%s) covers %d (chunks from %d missing)" % (
                              S, self.media, fs, r.seq, r.tname, r.body[K.LENGTH], nh),
                          r.seq, nh)
            if media_bad:
                i = media_bad[0]
                more = "" if len(media_bad) == 1 else " (and %d more chunks: %s)" % (
                    len(media_bad) - 1, media_bad.text(skip_first=True))
                self._err("segment %d: chunk %d of %s (bytes %d-%d) does not match its signed "
                          "hash (root of seq %d %s)%s" % (
                              S, i, self.media, i * C, min((i + 1) * C, self.cover_len) - 1,
                              r.seq, r.tname, more), r.seq, i)
            if unlocated and not missing:
                self._err("segment %d: %s does not match the root signed in seq %d (%s); the "
                          "damage lies in chunks %s and cannot be pinpointed: the index %s "
                          "does not match the signed root either" % (
                              S, self.media, r.seq, r.tname, unlocated.text(), self.idx),
                          r.seq, unlocated[0])
            if not media_bad and not unlocated and not missing:
                self._err("segment %d: root of seq %d (%s) does not match %s"
                          % (S, r.seq, r.tname, self.media), r.seq)
        if idx_bad:
            self._err("segment %d: index %s entry %d does not match chunk %d of the media, "
                      "which matches the signed root: the index was changed%s" % (
                          S, self.idx, idx_bad[0], idx_bad[0],
                          "" if len(idx_bad) == 1 else " (entries %s)" % idx_bad.text()),
                      None, idx_bad[0])
        if file_size is not None and self.close is not None and file_size > self.cover_len:
            self._err("segment %d: media file %s is longer than its closed manifest: %d bytes, "
                      "seq %d (%s) says %d" % (S, self.media, file_size, self.close.seq,
                                               self.close.tname, self.cover_len),
                      self.close.seq)
        if ni < N and nh == N:
            self.notes.append("index %s has %d of %d entries" % (self.idx, ni, N))
        # missing-info
        if self.close is None:
            unsigned = max(0, (file_size or 0) - self.cover_len)
            self.infos.append("open: no SEGMENT or RECOVERY record; %d bytes after the last "
                              "signed checkpoint are unsigned" % unsigned)
        elif recovered:
            signed = self.close.body[K.SIGNED]
            if self.cover_len > signed:
                tail = "bytes %d-%d (%d bytes after the last checkpoint) were sealed at boot, " \
                       "not at capture" % (signed, self.cover_len - 1, self.cover_len - signed)
            else:
                tail = "no bytes after the last checkpoint"
            self.infos.append("recovered after power loss (seq %d RECOVERY): %s"
                              % (self.close.seq, tail))
            if mismatch_flag:
                self.infos.append("the device found index entries that did not match the "
                                  "media at recovery (flag MISMATCH)%s" % (
                                      ": chunks " + idx_recov.text() if idx_recov else ""))
        return "".join(marks)



def check_media_dir(v, jobs):
    """Entries of m/ that no segment of the chain accounts for (see module doc)."""
    rep = v.rep
    referenced = set()
    for job in jobs:
        referenced.add(job.media)
        referenced.add(job.idx)
    shown_rows, more = 0, 0
    for name, kind in safeio.list_dir(v.root, "m"):
        rel = "m/" + name
        if rel in referenced:
            continue           # (a referenced non-file is named by its segment)
        if shown_rows >= MAX_NAMED:
            more += 1
            continue
        shown_rows += 1
        shown = R.printable(rel)
        m = _MEDIA_RE.match(name)
        end = rep.chain_end
        if kind != "file":
            msg = "%s is %s in m/, where a recorder writes only media and index files: " \
                  "not read, not signed" % (shown, {"dir": "a directory",
                                                    "symlink": "a symbolic link",
                                                    "fifo": "a FIFO"}.get(kind, "a " + kind))
            size = None
        else:
            try:                       # lstat: the size only, nothing opened or followed
                size = os.lstat(os.path.join(v.root, "m", name)).st_size
            except OSError:
                size = None
            if m and end is not None and int(m.group(1)) > end:
                msg = "records removed: %s is the %s of segment %d, beyond the last record " \
                      "of the chain (seq %d): the records that signed it were cut" % (
                          shown, "index" if m.group(2) == "idx" else "media",
                          int(m.group(1)), end)
            else:
                msg = "%s is not covered by any signed record (an unsigned file in the " \
                      "store)" % shown
        rep.segments.append(SegmentRow(None, rel, 0, size, 0, None, None,
                                       NOT_OK if rep.record_count else NOT_SIGNED, "", msg))
        if rep.record_count:
            v._failure(msg, None, rel)
        else:
            v.unsigned.append(msg)
    if more:
        msg = "… and %d more files in m/ that no signed record accounts for" % more
        if rep.record_count:
            v._failure(msg, None, "m")
        else:
            v.unsigned.append(msg)
