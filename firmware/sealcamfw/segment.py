# The open segment of the evidence store (protocol/SPEC.md §4, §5.4): media appended in
# chunks hashed as they are written, checkpoints that sign the whole chunks, the SEGMENT
# record that closes it, and recovery, which seals a segment a power cut or a failed
# media write left open from its last signed checkpoint and what is on the medium.
#
# These functions work on a Store (store.py): its files (store.fs), its open segment (store.seg)
# and its chain, which they extend through store._append. The Store's methods start_segment,
# write, checkpoint, close_segment and pos call them.
import hashlib

from sealcamfw.logread import CHUNK_MAX, index_name, media_name
from sealcamfw.storedefs import (CHECKPOINT, F_MISMATCH, F_RECOVERED, K_CHUNK, K_CHUNKS, K_LENGTH,
                       K_MEDIA, K_PREROLL, K_REASON, K_ROOT, K_SEGMENT, K_START, RECOVERY,
                       REC_START, SEGMENT, ZERO32, StoreFull, sha256)


class _Segment:
    # One open segment: file handles and the running chunk state (SPEC §4).
    def __init__(self, seq, media, chunk, start):
        self.seq = seq
        self.media = media
        self.idx = index_name(seq)
        self.chunk = chunk
        self.start = start
        self.fm = None
        self.fi = None
        self.h = hashlib.sha256()
        self.fill = 0          # bytes in the current (incomplete) chunk
        self.chunks = 0        # completed chunks
        self.length = 0
        self.root = ZERO32
        self.signed = 0        # bytes covered by the last checkpoint
        self.signed_root = ZERO32
        self.broken = False    # a media write or flush failed: sealed like a recovery

    def hint(self):
        # what recovery starts from: the last signed checkpoint (SPEC §5.2 `open`)
        n = self.signed // self.chunk
        return [self.seq, self.media, self.chunk, self.start, n, self.signed, self.signed_root]


def check_hint(h, seq):
    """An open segment's hint (head key 4, or built from the records scanned at boot) with
    the media path made from its segment seq; None if it is not one (an edited card:
    recovery then opens nothing it names, and the segment stays open on the card)."""
    if type(h) is not list or len(h) != 7:
        return None
    seg, media, chunk, start, chunks, length, root = h
    media = media_name(seg, media)
    if media is None or seg >= seq or type(chunk) is not int or not 0 < chunk <= CHUNK_MAX \
            or type(chunks) is not int or type(length) is not int or chunks < 0 \
            or length != chunks * chunk or type(root) is not bytes or len(root) != 32 \
            or type(start) is not list or len(start) != 2:
        return None
    return [seg, media, chunk, start, chunks, length, root]


def start(store, reason, mime, ext, prerecord=0):
    if store.seg:
        raise ValueError("a segment is already open")
    c = store.clock
    seq = store.seq
    media = "m/%08d.%s" % (seq, ext)
    s = _Segment(seq, media, store.chunk, [c.rtc_ms(), c.mono_ms()])
    store.seg = s  # the head written with REC_START names the open segment
    f = {K_SEGMENT: seq, K_MEDIA: media, K_CHUNK: store.chunk, K_REASON: reason, 23: mime}
    if prerecord:
        f[K_PREROLL] = prerecord
    try:
        store._append(REC_START, f, 0, s.start)
    except Exception:
        store.seg = None     # no REC_START: no segment
        raise
    s.fm = store.fs.open_append(media)
    s.fi = store.fs.open_append(s.idx)
    return seq


def write(store, data):
    """Append media bytes to the open segment, hashing each chunk as it is written."""
    s = store.seg
    if s is None:
        raise ValueError("no open segment")
    if s.fm is None:
        raise OSError(5, "segment %d is being closed" % s.seq)
    n = len(data)
    if store.fs.free() < n + 65536:
        raise StoreFull("storage full: segment %d not extended" % s.seq)
    mv = memoryview(data)
    pos = 0
    while pos < n:
        take = min(n - pos, s.chunk - s.fill)
        part = mv[pos:pos + take]
        try:
            k = s.fm.write(part)          # hashed only once it is written
        except OSError as e:
            s.broken = True               # what the medium holds is now uncertain
            if e.args and e.args[0] == 28:  # ENOSPC; other errors are the medium's
                raise StoreFull("storage full: segment %d not extended" % s.seq)
            raise
        if k is None:
            k = take
        if k:
            s.h.update(part[:k])
            s.fill += k
            s.length += k
            pos += k
        if k < take:
            s.broken = True
            raise StoreFull("storage full: segment %d took %d of %d bytes" % (s.seq, k, take))
        if s.fill == s.chunk:
            try:
                _end_chunk(s)
            except OSError:
                s.broken = True
                raise


def _end_chunk(s):
    d = s.h.digest()
    s.fi.write(d)
    s.root = sha256(s.root, d)
    s.chunks += 1
    s.fill = 0
    s.h = hashlib.sha256()
    s.fm.flush()
    s.fi.flush()


def flush(store):
    s = store.seg
    if s is None or s.fm is None or s.broken:
        return
    try:
        s.fm.flush()
    except OSError:
        s.broken = True
        raise


def checkpoint(store):
    """Sign what the open segment holds in whole chunks, if anything is new."""
    s = store.seg
    if s is None or s.fm is None or s.broken or s.chunks * s.chunk == s.signed:
        return None
    try:
        s.fm.flush()
        s.fi.flush()
    except OSError:
        s.broken = True
        raise
    covered = s.chunks * s.chunk
    old = (s.signed, s.signed_root)
    s.signed, s.signed_root = covered, s.root  # the head written with it starts from here
    seq0 = store.seq
    try:
        return store._append(CHECKPOINT, {K_SEGMENT: s.seq, K_LENGTH: covered,
                                       K_CHUNKS: s.chunks, K_ROOT: s.root})
    except Exception:
        if store.seq == seq0:    # no checkpoint: recovery starts from the one before
            s.signed, s.signed_root = old
        raise


def close(store):
    s = store.seg
    if s is None:
        return None
    if s.broken:
        return _seal_broken(store, s)
    if s.fm is not None:
        if s.fill:
            d = s.h.digest()
            s.fi.write(d)
            s.root = sha256(s.root, d)
            s.chunks += 1
            s.fill = 0
        s.fm.close()
        s.fi.close()
        s.fm = s.fi = None
    seq0 = store.seq
    store.seg = None     # the head written with SEGMENT names no open segment
    try:
        return store._append(SEGMENT, {K_SEGMENT: s.seq, K_LENGTH: s.length,
                                    K_CHUNKS: s.chunks, K_ROOT: s.root, K_START: s.start})
    except Exception:
        if store.seq == seq0:
            store.seg = s    # not closed: a retry closes it, or the next boot seals it
        raise


def _seal_broken(store, s):
    # a media write or flush failed: close the files (what they buffered is written or
    # dropped now) and seal what the medium holds, as recovery does at boot
    for f in (s.fm, s.fi):
        if f is not None:
            try:
                f.close()
            except Exception:
                pass
    s.fm = s.fi = None
    seq0 = store.seq
    store.seg = None
    rv = store.recovered
    try:
        recover(store, s.hint(), "write error")
    except Exception:
        if store.seq == seq0:
            store.seg = s
        raise
    finally:
        store.recovered = rv     # boot's summary, not this
    return store.last


def position(store):
    """[segment, chunk, offset] of the next media byte of the open segment, or None.
    The media up to it is flushed first: a record that points into the media never
    points past what a power cut leaves (SPEC §10.3)."""
    s = store.seg
    if s is None:
        return None
    if s.broken:                # what the medium holds is what recovery will seal
        n = store.fs.size(s.media)
        n = n if n > 0 else 0
        return [s.seq, n // s.chunk, n % s.chunk]
    if s.fm is not None:
        try:
            s.fm.flush()
        except OSError:
            s.broken = True
            return position(store)
    return [s.seq, s.length // s.chunk, s.length % s.chunk]


def recover(store, hint, reason="power loss"):
    """Seal a segment that was open when power was lost (SPEC §5.4), or whose media write
    failed: from its last signed checkpoint, what is on the medium."""
    seg, media, chunk, start, chunks, length, root = hint
    fs = store.fs
    idx = index_name(seg)
    size = fs.size(media)
    if size < 0:
        f = fs.open_append(media)
        f.close()
        size = 0
    if fs.size(idx) < 0:
        f = fs.open_append(idx)
        f.close()
    isize = fs.size(idx)
    nidx = isize // 32
    fi = fs.open_append(idx)
    flags = F_RECOVERED
    if isize % 32:  # a torn index entry: pad it (never rewrite), entries stay aligned
        fi.write(bytes(32 - isize % 32))
        nidx += 1
        flags |= F_MISMATCH
    pos = chunks * chunk
    k = chunks
    while pos < size:
        hc = hashlib.sha256()    # the chunk in pieces of at most 64 KiB (bounded RAM)
        q = pos
        end = pos + chunk if pos + chunk < size else size
        while q < end:
            piece = fs.read(media, q, end - q if end - q < 65536 else 65536)
            if not piece:
                break
            hc.update(piece)
            q += len(piece)
        piece = None
        h = hc.digest()
        if k < nidx:
            if fs.read(idx, k * 32, 32) != h:
                flags |= F_MISMATCH
        else:
            fi.write(h)
        root = sha256(root, h)
        k += 1
        pos += chunk
    fi.close()
    store._append(RECOVERY, {K_SEGMENT: seg, K_LENGTH: size, K_CHUNKS: k, K_ROOT: root,
                          K_START: start, K_REASON: reason, 22: length}, flags)
    store.recovered = {"segment": seg, "length": size, "signed": length, "flags": flags,
                    "seq": store.seq - 1}
