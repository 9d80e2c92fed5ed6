"""The clip file and its provenance (SPEC §12): the Matroska walk that finds where
Clusters start, the layout of a clip (header, Void, chunks), and the provenance CBOR.

    lay = walk(f, size)          # a segment's structure, from its first byte: header end,
                                 # Clusters [(offset, time ms)], blocks [Block]
    void_header(n)               # EC 01 xx xx xx xx xx xx xx: an EBML Void of n bytes
    prov = decode_prov(data)     # the provenance map, checked against the CDDL rule
                                 # (ProvError: what is wrong); encode_prov(prov) -> bytes

A clip of segment S with chunk size C, first chunk k >= 1 and last chunk m is

    bytes [0, H) of the segment (its header: EBML header, Segment, Info, Tracks)
    Void header (ID 0xEC, an 8-byte size: H' = 9 bytes)
    Void payload: bytes [H, hc*C) (the rest of the chunks holding the header) and the
                  first `lead` bytes of chunk k (up to the first Cluster at or after k*C)
    chunk k from byte `lead`, chunks k+1 .. m whole

so the file holds chunks 0..hc-1 and k..m byte for byte; the Void header is the only
byte that is not the recorder's. A clip whose first chunk is 0 is chunks 0..m as they are
(no Void). The walk reads the element structure (IDs and sizes) from the file's start and
never scans for byte patterns: a block's payload is never taken for an element.
"""
from __future__ import annotations

import struct

import cbor2

from . import records as R

__all__ = ["Block", "Layout", "WalkError", "ProvError", "walk", "void_header", "VOID_HEADER",
           "decode_prov", "encode_prov", "CLUSTER_START", "FORMAT", "MAX_CLIP", "MAX_PROV",
           "MAX_RECORDS", "MAX_ENTRIES",
           "MAX_HASHES", "clip_length", "HeadView", "RecorderBytes"]

FORMAT = "sealcam-clip-1"
MAX_CLIP = 64 << 20          # bytes of a clip file (SPEC §12.3)
MAX_PROV = 64 << 20          # bytes of a provenance file (entries of the log included)
MAX_RECORDS = 64             # signed records a provenance carries
MAX_ENTRIES = 64             # station log entries it carries
MAX_HASHES = R.MAX_CHUNKS    # chunk hashes
MAX_ELEMENTS = 8_000_000     # elements a walk reads before it gives up

EBML_ID, SEGMENT_ID, CLUSTER_ID = 0x1A45DFA3, 0x18538067, 0x1F43B675
INFO_ID, TRACKS_ID, VOID_ID = 0x1549A966, 0x1654AE6B, 0xEC
TIMESTAMP_ID, SIMPLEBLOCK_ID = 0xE7, 0xA3
VOID_HEADER = 9
# what every Cluster of §4.4 starts with: its ID, the unknown size, a Timestamp of 8 bytes
CLUSTER_START = b"\x1f\x43\xb6\x75\x01\xff\xff\xff\xff\xff\xff\xff\xe7\x88"


class WalkError(ValueError):
    """The media is not the container SPEC §4.4 describes."""


class ProvError(ValueError):
    """The provenance file is not one (what is wrong)."""


def void_header(n: int) -> bytes:
    """An EBML Void element's header for a payload of n bytes: 0xEC and an 8-byte size."""
    if not 0 <= n < (1 << 56) - 1:
        raise ValueError("Void of %d bytes" % n)
    return b"\xec\x01" + n.to_bytes(7, "big")


# --- the walk --------------------------------------------------------------------------

class Block:
    __slots__ = ("offset", "end", "track", "time", "dur")

    def __init__(self, offset, end, track, time, dur):
        self.offset, self.end, self.track, self.time, self.dur = offset, end, track, time, dur


class Layout:
    def __init__(self):
        self.header = None          # offset of the first Cluster: the header's length
        self.clusters = []          # [(offset, time ms)]
        self.blocks = []            # [Block] in file order
        self.end = 0                # offset past the last complete element read
        self.tracks = {}            # number -> {"type", "duration_ns", "rate", "bytes"}

    def cluster_at_or_after(self, pos):
        """The offset of the first Cluster starting at or after ``pos`` (None: none)."""
        for off, _ in self.clusters:
            if off >= pos:
                return off
        return None

    def cluster_before(self, pos):
        """The offset of the last Cluster starting at or before ``pos``."""
        best = None
        for off, _ in self.clusters:
            if off > pos:
                break
            best = off
        return best


def _vint(b, i, is_id):
    """(value, width) of the EBML variable-size integer at b[i]; value None = unknown size.
    IDs keep their marker bit. WalkError if it is not one."""
    if i >= len(b):
        raise EOFError
    first = b[i]
    if first == 0:
        raise WalkError("an EBML length of more than 8 bytes")
    w = 9 - first.bit_length()
    if is_id and w > 4:
        raise WalkError("an EBML ID longer than 4 bytes")
    if i + w > len(b):
        raise EOFError
    v = int.from_bytes(b[i:i + w], "big")
    if is_id:
        return v, w
    v &= (1 << (7 * w)) - 1
    if v == (1 << (7 * w)) - 1:
        return None, w
    return v, w


def _elements(data):
    """(id, payload bytes) of the elements of a small known-size master payload."""
    i, out = 0, []
    while i < len(data) and len(out) < 4096:
        eid, w = _vint(data, i, True)
        n, w2 = _vint(data, i + w, False)
        if n is None or i + w + w2 + n > len(data):
            raise WalkError("a Tracks element is cut or of unknown size")
        out.append((eid, data[i + w + w2:i + w + w2 + n]))
        i += w + w2 + n
    return out


def _tracks(data):
    out = {}
    for eid, entry in _elements(data):
        if eid != 0xAE:
            continue
        t = {"type": None, "duration_ns": None, "rate": 16000.0, "bytes": 2}
        num, depth, ch = None, 16, 1
        for cid, v in _elements(entry):
            if cid == 0xD7:
                num = int.from_bytes(v, "big")
            elif cid == 0x83:
                t["type"] = int.from_bytes(v, "big")
            elif cid == 0x23E383:
                t["duration_ns"] = int.from_bytes(v, "big")
            elif cid == 0xE1:
                for aid, av in _elements(v):
                    if aid == 0xB5 and len(av) in (4, 8):
                        t["rate"] = struct.unpack(">f" if len(av) == 4 else ">d", av)[0]
                    elif aid == 0x6264:
                        depth = int.from_bytes(av, "big")
                    elif aid == 0x9F:
                        ch = int.from_bytes(av, "big")
        t["bytes"] = max(1, depth // 8) * max(1, ch)
        if num is not None and t["rate"] > 0:
            out[num] = t
    return out


def walk(f, size, stop=None) -> Layout:
    """The structure of the Matroska file ``f`` (``size`` bytes), read from its first byte
    up to ``stop`` (default: the end): the header's length, every Cluster and every
    SimpleBlock, by element IDs and sizes. A cut file ends at its last complete element.
    WalkError if the start of the file is not the container of SPEC §4.4."""
    stop = size if stop is None else min(stop, size)
    lay = Layout()
    pos, n, in_segment = 0, 0, False
    cluster_time = None
    while pos < stop:
        n += 1
        if n > MAX_ELEMENTS:
            raise WalkError("more than %d elements before byte %d" % (MAX_ELEMENTS, pos))
        f.seek(pos)
        head = f.read(16)
        try:
            eid, w = _vint(head, 0, True)
            length, w2 = _vint(head, w, False)
        except EOFError:
            break
        body = pos + w + w2
        if n == 1 and eid != EBML_ID:
            raise WalkError("it does not start with an EBML header")
        if eid == SEGMENT_ID and not in_segment:
            in_segment = True
            pos = body
            continue
        if not in_segment and n > 1:
            raise WalkError("no Segment after the EBML header")
        if eid == CLUSTER_ID:
            if lay.header is None:
                lay.header = pos
            lay.clusters.append((pos, None))
            cluster_time = None
            pos = body                      # its children follow (unknown or known size)
            continue
        if length is None:
            raise WalkError("element %x of unknown size at byte %d" % (eid, pos))
        end = body + length
        if end > size:
            break                           # cut here: the file ends inside this element
        if eid == TRACKS_ID and not lay.tracks:
            if length > 1 << 16:
                raise WalkError("a Tracks element of %d bytes" % length)
            f.seek(body)
            lay.tracks = _tracks(f.read(length))
        elif eid == TIMESTAMP_ID and lay.clusters:
            f.seek(body)
            cluster_time = int.from_bytes(f.read(min(length, 8)), "big")
            off, _ = lay.clusters[-1]
            lay.clusters[-1] = (off, cluster_time)
        elif eid == SIMPLEBLOCK_ID and lay.clusters and cluster_time is not None:
            try:
                tn, tw = _vint(head, w + w2, False)
            except EOFError:
                tn, tw = None, 0
            if tn is not None and len(head) >= w + w2 + tw + 2:
                rel = struct.unpack(">h", head[w + w2 + tw:w + w2 + tw + 2])[0]
                t = lay.tracks.get(tn) or {}
                if t.get("type") == 2:
                    dur = (length - tw - 3) / t["bytes"] / t["rate"] * 1000
                else:
                    dur = (t.get("duration_ns") or 0) / 1e6
                lay.blocks.append(Block(pos, end, tn, cluster_time + rel, dur))
        pos = end
        lay.end = pos
    if lay.header is None and not lay.tracks:
        raise WalkError("no Tracks before byte %d" % min(stop, size))
    return lay


# --- the clip's length ------------------------------------------------------------------

def clip_length(prov, length) -> int:
    """The length of a clip of ``prov`` cut from a segment whose signed root covers
    ``length`` bytes (chunks of prov["chunk"] bytes, the last one possibly shorter)."""
    k, m, c = prov["first"], prov["last"], prov["chunk"]
    body = min((m + 1) * c, length) - k * c
    if k == 0:
        return body
    return prov["header"] + VOID_HEADER + (prov["head_chunks"] * c - prov["header"]) + body


# --- reading a clip as the recorder wrote it ----------------------------------------

class HeadView:
    """The recorder's bytes [0, hc*C) of a clip from chunk k > 0, read through the clip
    file (the Void header at H skipped): what the header walk reads."""

    def __init__(self, cf, hdr, size):
        self.cf, self.hdr, self.size, self.pos = cf, hdr, size, 0

    def seek(self, pos):
        self.pos = pos

    def read(self, n):
        n = max(0, min(n, self.size - self.pos))
        out = b""
        if self.pos < self.hdr:
            self.cf.seek(self.pos)
            out = self.cf.read(min(n, self.hdr - self.pos))
        if len(out) < n:
            at = self.pos + len(out)
            self.cf.seek(at + VOID_HEADER)
            out += self.cf.read(n - len(out))
        self.pos += len(out)
        return out


class RecorderBytes:
    """The recorder's bytes of a clip in order (the Void header at ``hdr`` skipped, if
    any), read in one pass through a bounded buffer."""

    BUF = 1 << 20

    def __init__(self, cf, hdr):
        self.cf, self.hdr = cf, hdr
        self.buf, self.at, self.pos = b"", 0, 0     # pos: next clip byte to read
        self.short = False
        cf.seek(0)

    def _fill(self, want):
        n = max(want, self.BUF)
        if self.hdr is not None and self.pos < self.hdr:
            n = min(n, self.hdr - self.pos)
        data = self.cf.read(n)
        self.pos += len(data)
        if self.hdr is not None and self.pos == self.hdr:
            self.cf.seek(self.hdr + VOID_HEADER)
            self.pos += VOID_HEADER
        return data

    def take(self, n):
        if len(self.buf) - self.at >= n:
            self.at += n
            return self.buf[self.at - n:self.at]
        out = [self.buf[self.at:]]
        got = len(out[0])
        while got < n:
            data = self._fill(n - got)
            if not data:
                self.short = True
                break
            out.append(data)
            got += len(data)
        data = b"".join(out)
        self.buf, self.at = data, n
        return data[:n]


# --- the provenance ---------------------------------------------------------------------

def encode_prov(prov: dict) -> bytes:
    return cbor2.dumps(prov, canonical=True)


def _is(x, t):
    return type(x) is t


def _u(x):
    return type(x) is int and 0 <= x <= R.INT_MAX


def _h(x):
    return type(x) is bytes and len(x) == 32


_TOP = {"format": lambda x: x == FORMAT, "device": lambda x: R.device_id_error(x) is None,
        "key": _h, "segment": _u, "chunk": lambda x: _u(x) and 1 <= x <= R.MAX_CHUNK,
        "header": _u, "head_chunks": _u, "first": _u, "last": _u, "lead": _u,
        "hashes": lambda x: _is(x, list) and len(x) <= MAX_HASHES and all(map(_h, x)),
        "records": lambda x: _is(x, list) and 1 <= len(x) <= MAX_RECORDS and
        all(_is(r, bytes) and len(r) <= R.MAX_RECORD for r in x),
        "root_seq": _u, "subject": lambda x: _is(x, dict), "log": lambda x: _is(x, dict)}
_SUBJECT = {"kind": lambda x: x in ("annotation", "mark", "range"),
            "seqs": lambda x: _is(x, list) and len(x) <= MAX_RECORDS and all(map(_u, x)),
            "from": lambda x: x is None or _u(x), "to": lambda x: x is None or _u(x)}
_LOG = {"origin": lambda x: _is(x, str) and 0 < len(x) <= 200 and not R.has_control(x),
        "station": _h, "checkpoint": lambda x: _is(x, bytes) and len(x) <= 1 << 16,
        "entries": lambda x: _is(x, list) and 1 <= len(x) <= MAX_ENTRIES}


def _check_map(m, rules, where):
    if set(m) != set(rules):
        extra, lack = sorted(map(str, set(m) - set(rules))), sorted(set(rules) - set(m))
        raise ProvError("%s %s" % (where, "lacks %s" % ", ".join(lack) if lack else
                                   "has unexpected keys %s" % ", ".join(extra)))
    for k, ok in rules.items():
        if not ok(m[k]):
            raise ProvError("%s: %s has the wrong type or value" % (where, k))


def decode_prov(data: bytes) -> dict:
    """The provenance map of ``data``, strictly (schema.cddl `clip-provenance`):
    deterministic CBOR, every key present with its type, bounded counts. ProvError."""
    if len(data) > MAX_PROV:
        raise ProvError("%d bytes, more than the %d a provenance file may have"
                        % (len(data), MAX_PROV))
    try:
        prov = cbor2.loads(data)
    except Exception:
        raise ProvError("it is not CBOR (cut short, or not a provenance file)") from None
    if not isinstance(prov, dict):
        raise ProvError("it is not a CBOR map")
    _check_map(prov, _TOP, "provenance")
    _check_map(prov["subject"], _SUBJECT, "subject")
    _check_map(prov["log"], _LOG, "log")
    for e in prov["log"]["entries"]:
        if not (_is(e, list) and len(e) == 3 and _u(e[0]) and _is(e[1], bytes)
                and len(e[1]) <= 16 << 20 and _is(e[2], list) and len(e[2]) <= 64
                and all(map(_h, e[2]))):
            raise ProvError("log entries: each is [index, entry bytes, proof hashes]")
    try:
        canon = encode_prov(prov) == data
    except Exception:
        canon = False
    if not canon:
        raise ProvError("it is not deterministic CBOR (it was edited or not made by sealcam)")
    k, m, hc, c = prov["first"], prov["last"], prov["head_chunks"], prov["chunk"]
    if m < k or m >= R.MAX_CHUNKS:
        raise ProvError("chunks %d..%d are not a range" % (k, m))
    if k:
        if not (0 < prov["header"] <= hc * c and hc <= k and prov["lead"] < c):
            raise ProvError("header %d, head chunks %d, first chunk %d, lead %d do not fit "
                            "chunks of %d bytes" % (prov["header"], hc, k, prov["lead"], c))
    elif hc or prov["lead"] or prov["header"]:
        raise ProvError("a clip from chunk 0 has no header, head chunks or lead of its own")
    return prov
