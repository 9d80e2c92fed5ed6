"""Framing on the dock link (SPEC §7): MAGIC LEN PAYLOAD CRC, one CBOR item per frame,
with resynchronisation after garbage, lost bytes and corrupt frames. Used by
host_tools/link.py; nothing from the firmware is imported."""
from __future__ import annotations

import binascii
import io
import time

import cbor2

__all__ = ["MAGIC", "PRE_HELLO_MAX", "encode_frame", "Deframer"]

MAGIC = b"\xc5\x1a"
PRE_HELLO_MAX = 1024            # largest payload before HELLO is answered (SPEC §7)


def _crc(len_and_payload: bytes) -> bytes:
    return (binascii.crc32(len_and_payload) & 0xFFFFFFFF).to_bytes(4, "big")


def encode_frame(obj) -> bytes:
    """MAGIC || LEN || PAYLOAD || CRC for one CBOR item (deterministic encoding)."""
    payload = cbor2.dumps(obj, canonical=True)
    hdr = len(payload).to_bytes(4, "big")
    crc = binascii.crc32(payload, binascii.crc32(hdr)) & 0xFFFFFFFF
    return b"".join((MAGIC, hdr, payload, crc.to_bytes(4, "big")))


def _decode_exact(payload):
    """One well-formed CBOR item, nothing after it; raises ValueError otherwise."""
    bio = io.BytesIO(payload)
    try:
        item = cbor2.CBORDecoder(bio).decode()
    except Exception as e:
        raise ValueError("not CBOR: %s" % e) from None
    if bio.tell() != len(payload):
        raise ValueError("trailing bytes after the CBOR item")
    return item


class Deframer:
    """Incremental frame reader with resynchronisation (SPEC §7).

    feed(bytes) adds input; frames() yields each decoded payload found. A LEN above the
    maximum, a CRC mismatch or a payload that is not exactly one CBOR item drops the first
    MAGIC byte and searches again from the next byte. ``skipped`` counts discarded bytes,
    ``bad`` the rejected frame candidates.
    """

    def __init__(self, max_payload=PRE_HELLO_MAX):
        self.buf = bytearray()
        self.pos = 0             # start of unconsumed bytes in buf
        self.max_payload = max_payload
        self.skipped = 0
        self.bad = 0

    def feed(self, data):
        if self.pos and self.pos >= len(self.buf) // 2:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += data

    @property
    def pending(self) -> int:
        return len(self.buf) - self.pos

    def _drop(self, n):
        self.pos += n
        self.skipped += n

    def stalled(self):
        """Give up on a candidate frame that waits for bytes that do not come (its LEN
        was garbage): drop its first MAGIC byte so the search goes on."""
        if self.pending and self.buf[self.pos:self.pos + 2] == MAGIC:
            self.bad += 1
            self._drop(1)

    def frames(self, hard=None):
        """Yield each frame found; stops early (the rest stays buffered) past the monotonic
        time ``hard``, so a flood of frame candidates cannot hold the caller."""
        buf = self.buf
        work = 0
        while True:
            i = buf.find(MAGIC, self.pos)
            if i < 0:
                # keep a trailing first MAGIC byte: the second may come next
                keep = 1 if len(buf) > self.pos and buf[-1] == MAGIC[0] else 0
                self._drop(len(buf) - self.pos - keep)
                return
            if i > self.pos:
                self._drop(i - self.pos)
            if len(buf) - i < 6:
                return
            n = int.from_bytes(buf[i + 2:i + 6], "big")
            if n > self.max_payload:
                self.bad += 1
                self._drop(1)
                continue
            end = i + 6 + n + 4
            if len(buf) < end:
                return
            work += n
            if hard is not None and work > (1 << 20):
                work = 0
                if time.monotonic() > hard:
                    return
            body = memoryview(buf)[i + 2:i + 6 + n]
            try:
                ok = _crc(body) == bytes(buf[end - 4:end])
                item = _decode_exact(body[4:]) if ok else None
            except ValueError:
                ok = False
            finally:
                body.release()
            if not ok:
                self.bad += 1
                self._drop(1)
                continue
            self.pos = end
            yield item
