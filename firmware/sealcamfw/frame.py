# Framing on the dock link (protocol/SPEC.md §7):
#
#   frame = MAGIC(C5 1A) LEN(uint32 BE) PAYLOAD CRC(CRC-32 of LEN||PAYLOAD, uint32 BE)
#
# encode(payload) -> frame bytes; wrap(prefix, n) -> (head, crc of head) for a frame whose
# payload is prefix || data (n bytes of data), so a large payload is never copied;
# Decoder(max_frame): feed(data), next() -> payload bytes or None.
#
# The decoder looks for MAGIC with bytes.find (no per-byte loop), checks LEN against the
# agreed maximum and the CRC over LEN||PAYLOAD (binascii.crc32, on a memoryview: no copy).
# A LEN above the maximum, a CRC mismatch or a payload the caller rejects (reject(): not
# one well-formed CBOR item) drops the first MAGIC byte and the search goes on from the
# next byte, so garbage, a lost byte or a corrupt frame cost no timeout. A partial frame
# waits for more bytes; stalled() gives up on it when the line has gone quiet.
#
# Memory: the decoder holds at most cap() = 2 * (max_frame + 10) bytes of its own. Data fed
# beyond that is kept by reference (no copy) and taken in as frames are consumed; a caller
# that reads the line itself should read no more than room() bytes at a time.
import binascii
import struct

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MAGIC = b"\xc5\x1a"
PRE_HELLO_MAX = const(1024)   # largest payload before HELLO is answered
_OVERHEAD = const(10)         # MAGIC + LEN + CRC

_pack_into = struct.pack_into
_unpack_from = struct.unpack_from
_crc32 = binascii.crc32


def encode(payload):
    """The frame carrying payload (bytes-like), as bytes."""
    n = len(payload)
    out = bytearray(n + _OVERHEAD)
    out[0] = 0xC5
    out[1] = 0x1A
    _pack_into(">I", out, 2, n)
    out[6:6 + n] = payload
    mv = memoryview(out)
    _pack_into(">I", out, 6 + n, _crc32(mv[2:6 + n]) & 0xFFFFFFFF)
    return bytes(out)


def wrap(prefix, n):
    """(head, crc) for a frame whose payload is prefix || n bytes of data: head is
    MAGIC || LEN || prefix (a bytearray), crc the CRC-32 so far (continue it over the data
    with finish()). Send head, the data, then finish(crc, data)."""
    head = bytearray(6 + len(prefix))
    head[0] = 0xC5
    head[1] = 0x1A
    _pack_into(">I", head, 2, len(prefix) + n)
    head[6:] = prefix
    return head, _crc32(memoryview(head)[2:])


def finish(crc, data):
    """The 4 CRC bytes ending a frame begun with wrap()."""
    return struct.pack(">I", _crc32(data, crc) & 0xFFFFFFFF)


class Decoder:
    def __init__(self, max_frame=PRE_HELLO_MAX):
        self.max_frame = max_frame   # the largest payload accepted (may change after HELLO)
        self.buf = bytearray()
        self.pos = 0                 # start of the unconsumed bytes in buf
        self._pend = []              # fed data not yet taken in (memoryviews, by reference)
        self._npend = 0
        self._last = -1              # start of the frame next() returned last (for reject)
        self._giveup = False         # stalled(): drop partial frames instead of waiting
        # frames: returned; crc_errors: CRC mismatch; oversized: LEN above max_frame;
        # rejected: payload rejected by the caller; stalled: partial frames given up;
        # resyncs: times the search started again (any of those, or garbage skipped);
        # skipped: bytes thrown away
        self.stats = {"frames": 0, "crc_errors": 0, "oversized": 0, "rejected": 0,
                      "stalled": 0, "resyncs": 0, "skipped": 0}

    def cap(self):
        return 2 * (self.max_frame + _OVERHEAD)

    def pending(self):
        """Bytes fed and not yet consumed."""
        return len(self.buf) - self.pos + self._npend

    def room(self):
        """How many more bytes fit in the decoder's own buffer."""
        r = self.cap() - self.pending()
        return r if r > 0 else 0

    def _compact(self):
        if self.pos:
            self.buf[0:self.pos] = b""
            self.pos = 0
            self._last = -1

    def feed(self, data):
        """Add received bytes. Data beyond cap() is kept by reference until there is room:
        do not modify it after feeding."""
        n = len(data)
        if not n:
            return
        if not self._pend and len(self.buf) - self.pos + n <= self.cap():
            if self.pos and (self.pos >= len(self.buf) or len(self.buf) + n > self.cap()):
                self._compact()
            self.buf += data
            return
        self._pend.append(memoryview(data))
        self._npend += n
        self._take()

    def _take(self):
        # move fed data into buf as far as the cap allows; True if anything moved
        if not self._pend:
            return False
        self._compact()
        room = self.cap() - len(self.buf)
        moved = False
        while self._pend and room > 0:
            mv = self._pend[0]
            k = len(mv) if len(mv) <= room else room
            self.buf += mv[:k]
            room -= k
            self._npend -= k
            moved = True
            if k == len(mv):
                self._pend.pop(0)
            else:
                self._pend[0] = mv[k:]
        return moved

    def _skip(self, n):
        if n > 0:
            self.pos += n
            self.stats["skipped"] += n
            self.stats["resyncs"] += 1

    def _drop(self, i, why):
        # drop the first MAGIC byte of a candidate at i and search again from i + 1
        st = self.stats
        st[why] += 1
        st["resyncs"] += 1
        st["skipped"] += 1
        self.pos = i + 1

    def next(self):
        """The next frame's payload (bytes), or None until more bytes are fed."""
        while True:
            buf = self.buf
            pos = self.pos
            i = buf.find(MAGIC, pos)
            if i < 0:
                end = len(buf)
                keep = 1 if end > pos and buf[end - 1] == 0xC5 else 0
                self._skip(end - keep - pos)
                if self._take():
                    continue
                self._giveup = False
                return None
            if i > pos:
                self._skip(i - pos)
            if len(buf) - i < 6:
                if self._take():
                    continue
                if self._giveup:
                    self._drop(i, "stalled")
                    continue
                return None
            n = _unpack_from(">I", buf, i + 2)[0]
            if n > self.max_frame:
                self._drop(i, "oversized")
                continue
            end = i + 6 + n + 4
            if len(buf) < end:
                if self._take():
                    continue
                if self._giveup:
                    self._drop(i, "stalled")
                    continue
                self.pos = i
                return None
            mv = memoryview(buf)
            if _crc32(mv[i + 2:i + 6 + n]) & 0xFFFFFFFF != _unpack_from(">I", buf, end - 4)[0]:
                self._drop(i, "crc_errors")
                continue
            payload = bytes(mv[i + 6:i + 6 + n])
            self._last = i
            self.pos = end
            self.stats["frames"] += 1
            return payload

    def reject(self):
        """The payload next() just returned is not one well-formed CBOR item: undo it, drop
        its first MAGIC byte and search again from the next byte (SPEC §7)."""
        if self._last >= 0:
            self.stats["frames"] -= 1
            self._drop(self._last, "rejected")
            self._last = -1

    def stalled(self):
        """The line has been quiet with a partial frame waiting: its LEN was probably
        garbage. The following next() calls drop partial candidates instead of waiting for
        them (until next() returns None). True if anything was waiting."""
        if len(self.buf) > self.pos:
            self._giveup = True
            return True
        return False
