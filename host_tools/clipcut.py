"""Cutting one clip out of one segment (SPEC §12): the chunks that cover an asked range,
the Void that wraps the bytes before the first Cluster, the provenance that proves every
byte. What the archive holds comes from a *source* (host_tools.clip.ArchiveSource, or the
vector maker's own), which has:

    src.device, src.key                  device id, its registered Ed25519 key (32 bytes)
    src.recs                             {seq: Record} of the device, each verified
    src.open_media(rel)                  (file, size) of the segment's media (m/S.ext)
    src.index(rel, n)                    the first n chunk hashes (m/S.idx), 32 bytes each
    src.log_part(recs)                   {"origin", "station", "checkpoint", "entries"}: the
                                         station log's signed checkpoint and, for each
                                         record, the entry holding its hash with its
                                         RFC 9162 inclusion proof
"""
from __future__ import annotations

import hashlib
import os

from . import clipfile as CF
from . import records as R
from .records import K

__all__ = ["ClipError", "Segment", "cut", "ROOT_TYPES"]

ROOT_TYPES = (R.CHECKPOINT, R.SEGMENT, R.RECOVERY)


class ClipError(Exception):
    """What was asked cannot be cut (the message says why and what to do). ``code`` is the
    exit code: 3 a usage error or something not in the archive, 1 the archive does not
    prove it (run `sealcam verify`)."""

    def __init__(self, message, code=3):
        super().__init__(message)
        self.code = code


class Segment:
    """One segment of a source: its REC_START, the records that sign its root, its walk."""

    def __init__(self, src, seg):
        start = src.recs.get(seg)
        if start is None or start.type != R.REC_START:
            raise ClipError("%s: seq %d is not a segment (no REC_START with that seq)"
                            % (src.device, seg))
        self.src, self.seq, self.start = src, seg, start
        self.chunk = start.body[K.CHUNK]
        self.media = start.body[K.MEDIA]
        self.roots = sorted((r for r in src.recs.values() if r.type in ROOT_TYPES
                             and r.body.get(K.SEGMENT) == seg), key=lambda r: r.seq)
        if not self.roots:
            raise ClipError("%s segment %d: no signed CHECKPOINT, SEGMENT or RECOVERY covers "
                            "its media yet" % (src.device, seg), 1)
        last = max(self.roots, key=lambda r: r.body[K.CHUNKS])
        self.length, self.chunks = last.body[K.LENGTH], last.body[K.CHUNKS]
        self.origin_rtc = start.body[K.RTC] - start.body.get(K.PRERECORD, 0)
        self.end_rtc = max(r.body[K.RTC] for r in self.roots)
        self._lay = None
        self._idx = None

    def layout(self):
        if self._lay is None:
            f, size = self.src.open_media(self.media)
            with f:
                hs = self.hashes()
                if size < self.length:
                    raise ClipError("%s: %s holds %d bytes, its records sign %d: run `sealcam "
                                    "verify` on the archive" % (self.src.device, self.media,
                                                                size, self.length), 1)
                try:
                    self._lay = CF.walk(_Checked(self, f, hs), self.length)
                except CF.WalkError as e:
                    raise ClipError("%s: %s is not the container of SPEC §4.4 (%s): it "
                                    "cannot be cut" % (self.src.device, self.media, e), 1)
            if self._lay.header is None or not self._lay.blocks:
                raise ClipError("%s: %s holds no media block yet" % (self.src.device,
                                                                    self.media))
        return self._lay

    def hashes(self):
        if self._idx is None:
            idx = self.src.index(R.index_path(self.media), self.chunks)
            hs = [idx[i:i + 32] for i in range(0, 32 * self.chunks, 32)]
            if len(hs) != self.chunks or R.chunk_root(hs) != \
                    max(self.roots, key=lambda r: r.body[K.CHUNKS]).body[K.ROOT]:
                raise ClipError("%s: the chunk index of segment %d does not match its signed "
                                "root: run `sealcam verify` on the archive"
                                % (self.src.device, self.seq), 1)
            self._idx = hs
        return self._idx

    def chunk_len(self, i):
        return min(self.chunk, self.length - i * self.chunk)

    # -- times and bytes ----------------------------------------------------------------
    def span_times(self, b1, b2):
        """(start ms, end ms) of the blocks starting in bytes [b1, b2)."""
        bl = [b for b in self.layout().blocks if b1 <= b.offset < b2]
        if not bl:
            raise ClipError("%s segment %d: no media block starts in bytes %d..%d"
                            % (self.src.device, self.seq, b1, b2))
        return min(b.time for b in bl), max(b.time + b.dur for b in bl)

    def time_at(self, byte):
        """The media time reached when ``byte`` was written (end of the blocks before)."""
        ends = [b.time + b.dur for b in self.layout().blocks if b.end <= byte]
        return max(ends) if ends else 0

    def bytes_of(self, t1, t2):
        """[b1, b2): the blocks playing between media times t1 and t2 (ms)."""
        bl = [b for b in self.layout().blocks if b.time + b.dur > t1 and b.time < t2]
        if not bl:
            raise ClipError("%s segment %d holds no media between %.1f s and %.1f s"
                            % (self.src.device, self.seq, t1 / 1000, t2 / 1000))
        return min(b.offset for b in bl), max(b.end for b in bl)

    def media_end(self):
        bl = self.layout().blocks
        return max(b.time + b.dur for b in bl)


class _Checked:
    """The segment's media as the walk reads it: every chunk it touches is read whole and
    checked against its signed hash first, and the walk reads those checked bytes (never
    the file again): a changed byte anywhere the walk looks is exit 1, not a moved cut."""

    def __init__(self, seg, f, hs):
        self.seg, self.f, self.hs, self.pos = seg, f, hs, 0
        self.i, self.data = None, b""

    def seek(self, pos):
        self.pos = pos

    def _chunk(self, i):
        if i != self.i:
            self.data = _read_chunk(self.seg, self.f, self.hs, i)
            self.i = i
        return self.data

    def read(self, n):
        c, out = self.seg.chunk, b""
        end = min(self.pos + n, self.seg.length)
        while self.pos < end:
            i = self.pos // c
            d = self._chunk(i)
            piece = d[self.pos - i * c:end - i * c]
            if not piece:
                break
            out += piece
            self.pos += len(piece)
        return out


def _read_chunk(seg, f, hs, i):
    """Chunk i of the segment's media, checked against its signed hash (ClipError 1)."""
    f.seek(i * seg.chunk)
    data = f.read(seg.chunk_len(i))
    if hashlib.sha256(data).digest() != hs[i]:
        raise ClipError("%s: chunk %d of %s does not match its signed hash: run `sealcam "
                        "verify` on the archive" % (seg.src.device, i, seg.media), 1)
    return data


def _plan(seg, b1, b2):
    """(k, m, hc, lead, start byte, end byte) of the clip holding bytes [b1, b2)."""
    lay, c = seg.layout(), seg.chunk
    first = lay.cluster_before(b1)
    if first is None:
        first = lay.clusters[0][0]
    k = first // c
    hc = -(-lay.header // c)
    m = min((max(b2, b1 + 1) - 1) // c, seg.chunks - 1)
    if k < hc:
        return 0, max(m, 0), 0, 0, 0, min((m + 1) * c, seg.length)
    at = lay.cluster_at_or_after(k * c)
    return k, max(m, k), hc, at - k * c, at, min((max(m, k) + 1) * c, seg.length)


def _write_regular(path, chunks):
    """Write the byte pieces to ``path`` through a temporary file beside it, then rename:
    a FIFO, device or folder at ``path`` is refused, never written through."""
    import stat
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ClipError("%s exists and is not a regular file: name a new file" % path)
    except FileNotFoundError:
        pass
    tmp = "%s.tmp-%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in chunks:
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def cut(seg, b1, b2, asked, subject, subject_recs, out):
    """Write the clip of segment ``seg`` covering bytes [b1, b2) to ``out`` and its
    provenance to ``out``.prov. ``asked``: (start ms, end ms) of media time asked for (not
    clipped to the recording: `short` says how much of it the recording lacks);
    ``subject``: {"kind", "seqs", "from", "to"}; ``subject_recs``: the records it names.
    Returns the clip's summary (dict)."""
    src, c = seg.src, seg.chunk
    hs = seg.hashes()
    k, m, hc, lead, s_byte, e_byte = _plan(seg, b1, b2)
    root_rec = next((r for r in seg.roots if r.body[K.CHUNKS] >= m + 1), None)
    if root_rec is None:
        raise ClipError("%s segment %d: chunk %d is not covered by a signed root"
                        % (src.device, seg.seq, m), 1)
    n = root_rec.body[K.CHUNKS]
    size = CF.clip_length({"first": k, "last": m, "chunk": c, "head_chunks": hc,
                           "header": seg.layout().header}, seg.length)
    if size > CF.MAX_CLIP:
        raise ClipError("%s segment %d: the clip would be %.1f MiB, more than the %d MiB a "
                        "clip may have (SPEC §12.3): ask a shorter range"
                        % (src.device, seg.seq, size / (1 << 20), CF.MAX_CLIP >> 20))
    f, _ = src.open_media(seg.media)
    with f:
        def chunk(i):
            return _read_chunk(seg, f, hs, i)

        pieces = []
        if k == 0:
            pieces = [chunk(i) for i in range(0, m + 1)]
        else:
            head = b"".join(chunk(i) for i in range(hc))
            ck = chunk(k)
            pieces = [head[:seg.layout().header],
                      CF.void_header(len(head) - seg.layout().header + lead),
                      head[seg.layout().header:], ck]
            pieces += [chunk(i) for i in range(k + 1, m + 1)]
    recs = [seg.start, root_rec] + [r for r in subject_recs
                                    if r.seq not in (seg.start.seq, root_rec.seq)]
    prov = {"format": CF.FORMAT, "device": src.device, "key": src.key, "segment": seg.seq,
            "chunk": c, "header": seg.layout().header if k else 0, "head_chunks": hc,
            "first": k, "last": m, "lead": lead,
            "hashes": hs[hc:k] + hs[m + 1:n], "records": [r.data for r in recs],
            "root_seq": root_rec.seq, "subject": subject, "log": src.log_part(recs)}
    if k == 0:
        prov["header"] = 0
    _write_regular(out, pieces)
    _write_regular(out + ".prov", [CF.encode_prov(prov)])
    # what the extract covers, in media time: the blocks whole inside it
    inside = [b for b in seg.layout().blocks if b.offset >= s_byte and b.end <= e_byte]
    c1 = min(b.time for b in inside) if inside else asked[0]
    c2 = max(b.time + b.dur for b in inside) if inside else asked[1]
    return {"file": out, "prov": out + ".prov", "device": src.device, "segment": seg.seq,
            "media": seg.media, "chunks": [k, m], "bytes": sum(len(p) for p in pieces),
            "subject": subject,
            "asked": {"from_s": _s(asked[0]), "to_s": _s(asked[1]),
                      "from": _iso(seg.origin_rtc + asked[0]),
                      "to": _iso(seg.origin_rtc + asked[1])},
            "covers": {"from_s": _s(c1), "to_s": _s(c2), "from": _iso(seg.origin_rtc + c1),
                       "to": _iso(seg.origin_rtc + c2),
                       "rtc": [seg.origin_rtc + int(c1), seg.origin_rtc + int(c2)]},
            "beyond": {"before_s": _s(max(0, asked[0] - c1)),
                       "after_s": _s(max(0, c2 - asked[1]))},
            "short": {"before_s": _s(max(0, c1 - asked[0])),
                      "after_s": _s(max(0, asked[1] - c2))},
            "play": "ffplay %s" % _quote(out)}


def _s(ms):
    return round(ms / 1000, 3)


def _iso(ms):
    import datetime as dt
    t = dt.datetime.fromtimestamp(int(ms) / 1000, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (int(ms) % 1000)


def _quote(p):
    import shlex
    return shlex.quote(p)
