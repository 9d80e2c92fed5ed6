# Reading the store's records and media back (protocol/SPEC.md §5.1, §8.4, §8.5): where
# each record is in the log files (an index kept per log, 5 bytes of RAM a record), record
# lookup and listing for the dock link, and the file names of a segment, made from its seq
# (the device never opens a path read from its card as it stands). Store (store.py) is a
# LogReader.
from array import array

from sealcamfw import cbor

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_REC_START = const(2)
_K_TYPE = const(0)
_K_SEQ = const(1)
_K_MEDIA = const(11)
_K_CHUNK = const(12)
CHUNK_MAX = const(1048576)  # the largest chunk size the device uses or accepts from its card


def body_of(rec):
    obj = cbor.loads(rec)
    return cbor.loads(obj.value[2])


# ---------------------------------------------------------------- reading records back
# A log file is a run of tagged COSE_Sign1 items: d2 84, protected bstr, a0, payload bstr,
# signature bstr (64). Walking it needs only these heads (cbor.bstr_span), never a full
# decode; the payload map starts {0: type, 1: seq, ...} (deterministic encoding), so type
# and seq are peeked.
_MORE = const(-1)     # the buffer ends inside the item (cbor.MORE)
_BAD = const(-2)      # not a record (cbor.BAD)
_bs = cbor.bstr_span
_uint_at = cbor.uint_at


def _rec_at(buf, p, n):
    """(end, type, seq) of the record starting at p in buf[:n], or _MORE / _BAD."""
    if p + 2 > n:
        return _MORE
    if buf[p] != 0xD2 or buf[p + 1] != 0x84:
        return _BAD
    s, e = _bs(buf, p + 2, n)
    if s < 0:
        return s
    if e >= n:
        return _MORE
    if buf[e] != 0xA0:
        return _BAD
    ps, pe = _bs(buf, e + 1, n)
    if ps < 0:
        return ps
    s, end = _bs(buf, pe, n)
    if s < 0:
        return s
    if end - s != 64:
        return _BAD
    if end > n:
        return _MORE
    if pe - ps > 4 and 0xA0 < buf[ps] < 0xB8 and buf[ps + 1] == 0 and buf[ps + 2] < 24 \
            and buf[ps + 3] == 1:
        return end, buf[ps + 2], _uint_at(buf, ps + 4, pe)
    try:
        body = cbor.loads(bytes(buf[ps:pe]))
        return end, body[_K_TYPE], body[_K_SEQ]
    except Exception:
        return _BAD


class _LogIndex:
    # Where the records of one log file are: record k has seq first + k, starts at offs[k].
    # 5 bytes of RAM per record; a log holds at most log_max bytes (SPEC §5.1).
    MAX = 16384

    def __init__(self, name, first):
        self.name = name
        self.first = first
        self.offs = array("I")
        self.types = bytearray()
        self.end = 0

    def add(self, off, size, rtype):
        self.offs.append(off)
        self.types.append(rtype if 0 <= rtype < 256 else 255)
        self.end = off + size

    def entry(self, k):
        """(offset, size, type) of record k of this file."""
        offs = self.offs
        off = offs[k]
        end = offs[k + 1] if k + 1 < len(offs) else self.end
        return off, end - off, self.types[k]


class _Logs:
    # The log files on the card, by (N, K): 5 bytes of RAM each (a card keeps every log)
    def __init__(self):
        self.first = array("I")
        self.k = bytearray()

    def add(self, n, k):
        self.first.append(n)
        self.k.append(k if k < 256 else 255)

    def __len__(self):
        return len(self.first)

    def name(self, i):
        k = self.k[i]
        return "rec/%08d.log" % self.first[i] if not k else \
            "rec/%08d_%d.log" % (self.first[i], k)


def media_name(seg, media):
    """The media file of segment seg, m/SSSSSSSS.EXT (SPEC §4.1): folder and number made
    from seg, the extension taken from media (a REC_START's key 11, or the head's hint)
    only if media is exactly that name with 1-8 lowercase letters or digits after the dot;
    None otherwise. The device never opens a path read from the card as it stands."""
    if type(seg) is not int or seg < 0 or type(media) is not str:
        return None
    base = "m/%08d." % seg
    ext = media[len(base):]
    if media[:len(base)] != base or not 0 < len(ext) <= 8:
        return None
    for c in ext:
        if not ("a" <= c <= "z" or "0" <= c <= "9"):
            return None
    return base + ext


def index_name(seg):
    """The chunk index file of segment seg, m/SSSSSSSS.idx (SPEC §4.1)."""
    return "m/%08d.idx" % seg


def _digits(t):
    # the number written by t, or -1 unless t is 1-10 ASCII digits
    if not 0 < len(t) <= 10:
        return -1
    for c in t:
        if not "0" <= c <= "9":
            return -1
    return int(t)


def _log_key(name):
    """(N, K) of a log file name the store makes, NNNNNNNN.log or NNNNNNNN_K.log (SPEC
    §5.1: N the first seq, "%08d"; K 1..255), and None for any other name: the name is
    made again from N and K and must be the same text, so nothing but the store's own
    names (no "..", no folder, no sign, no other digits) passes."""
    if type(name) is not str or len(name) > 24 or not name.endswith(".log"):
        return None
    base = name[:-4]
    k = 0
    i = base.find("_")
    if i >= 0:
        k = _digits(base[i + 1:])
        base = base[:i]
        if not 0 < k < 256:
            return None
    n = _digits(base)
    if n < 0 or n > 0xFFFFFFFF:
        return None
    if name != (("%08d_%d.log" % (n, k)) if k else ("%08d.log" % n)):
        return None
    return n, k


def log_path(name):
    """(N, K) of a store path rec/NNNNNNNN[_K].log (head.cbor's key 1, lasthead.cbor's key
    3), or None: see _log_key."""
    if type(name) is not str or name[:4] != "rec/":
        return None
    return _log_key(name[4:])


class LogReader:
    # needs: self.fs, self.seq, self._cur, self._old, self._logs, self._segs (store.py)

    def _log_list(self):
        if self._logs is None:
            keys = []
            for name in self.fs.listdir("rec"):
                k = _log_key(name)
                if k is not None:
                    keys.append(k[0] * 256 + k[1])
            keys.sort()
            logs = _Logs()
            for key in keys:
                logs.add(key // 256, key % 256)
            keys = None
            cur = self._cur
            if cur and (not len(logs) or logs.name(len(logs) - 1) != cur.name):
                k = _log_key(cur.name[4:])  # not on the medium until its first flush
                logs.add(cur.first, k[1] if k else 0)
            self._logs = logs
        return self._logs

    def _index_of(self, seq):
        # the _LogIndex of the log holding seq (0 <= seq < self.seq): the current log, or the
        # last log (by N, then K) whose first seq N is at most seq; a log's later K replaces
        # a torn file of the same name (SPEC §5.1)
        cur = self._cur
        if cur is not None and seq >= cur.first:
            return cur
        for ix in self._old:
            if ix.first <= seq < ix.first + len(ix.offs):
                return ix
        logs = self._log_list()
        lo, hi = 0, len(logs)
        while lo < hi:
            mid = (lo + hi) // 2
            if logs.first[mid] <= seq:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return None
        first, name = logs.first[lo - 1], logs.name(lo - 1)
        for ix in self._old:
            if ix.name == name:
                return ix
        ix = self._scan_index(name, first)
        self._old.append(ix)
        if len(self._old) > 2:
            self._old.pop(0)
        return ix

    def _scan_index(self, name, first):
        # walk a closed log file in windows (bounded RAM) up to its end, a torn tail or the
        # first item that is not the next record of the chain
        ix = _LogIndex(name, first)
        fs = self.fs
        size = fs.size(name)
        off = 0
        win = 16384
        while off < size and len(ix.offs) < ix.MAX:
            data = fs.read(name, off, win)
            n = len(data)
            pos = 0
            while True:
                r = _rec_at(data, pos, n)
                if type(r) is int:
                    break
                end, t, seq = r
                if seq != first + len(ix.offs):
                    return ix
                ix.add(off + pos, end - pos, t)
                pos = end
            if r == _BAD or off + n >= size:
                return ix
            if pos == 0:
                if win >= 65536:
                    return ix     # no record is this long: an edited card (bounded RAM)
                win *= 2  # a record longer than the window
            off += pos
        return ix

    def locate(self, seq):
        """(log file, offset, size, type) of record seq, or None if there is none."""
        if type(seq) is not int or seq < 0 or seq >= self.seq:
            return None
        ix = self._index_of(seq)
        if ix is None:
            return None
        k = seq - ix.first
        if k >= len(ix.offs):
            return None
        off, size, t = ix.entry(k)
        return ix.name, off, size, t

    def find(self, seq):
        """The bytes of record seq exactly as stored, or None. Reads one log file at most
        (its offsets are then kept), nothing for the current log."""
        loc = self.locate(seq)
        if loc is None:
            return None
        data = self.fs.read(loc[0], loc[1], loc[2])
        return data if len(data) == loc[2] else None

    def _after_gap(self, seq):
        # the first seq of the first log that starts after seq (the records between are a
        # gap a STORE_ALERT names, SPEC §5.2), or None
        cur = self._cur
        best = cur.first if cur is not None and cur.first > seq else None
        logs = self._log_list()
        for i in range(len(logs)):
            f = logs.first[i]
            if f > seq:
                return f if best is None or f < best else best
        return best

    def list(self, since, n):
        """[[seq, type, size], ...]: up to n records from seq since, in order (over a gap
        a STORE_ALERT left, to the records after it)."""
        out = []
        s = since if since > 0 else 0
        while len(out) < n and s < self.seq:
            ix = self._index_of(s)
            k = s - ix.first if ix is not None else 0
            if ix is None or k >= len(ix.offs):
                nxt = self._after_gap(s)
                if nxt is None or nxt <= s:
                    break
                s = nxt
                continue
            m = len(ix.offs)
            while k < m and len(out) < n:
                off, size, t = ix.entry(k)
                out.append([s, t, size])
                k += 1
                s += 1
        return out

    def segment_files(self, segment):
        """(media path, chunk index path, chunk size) of the segment whose REC_START has
        seq segment, or None."""
        info = self._segs.get(segment)
        if info is None:
            loc = self.locate(segment)
            if loc is None or loc[3] != _REC_START:
                return None
            body = body_of(self.find(segment))
            media = media_name(segment, body.get(_K_MEDIA))
            chunk = body.get(_K_CHUNK)
            if media is None or type(chunk) is not int or not 0 < chunk <= CHUNK_MAX:
                return None     # an edited card: no file it names is opened
            info = (media, index_name(segment), chunk)
            if len(self._segs) >= 8:
                self._segs = {}
            self._segs[segment] = info
        return info

    def read_media(self, segment, offset, n, what=0):
        """Up to n bytes of the segment's media (what=0) or chunk index (what=1) from byte
        offset (shorter at the end of the file); None if there is no such segment or
        file."""
        info = self.segment_files(segment)
        if info is None:
            return None
        path = info[1] if what else info[0]
        size = self.fs.size(path)
        if size < 0:
            return None
        if offset >= size or n <= 0:
            return b""
        return self.fs.read(path, offset, n if offset + n <= size else size - offset)
