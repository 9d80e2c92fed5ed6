"""A small reference writer of sealcam stores, for tests only (SPEC §2–§5).

Independent of the firmware: cbor2 (canonical) + cryptography (Ed25519). It writes what a
recorder would leave on its SD card: rec/NNNNNNNN.log, head.cbor (or head.new), m/S.mjpg
and m/S.idx, so the verifier can be tested without the firmware.

    s = RefStore(tmp_path)            # key from a fixed seed
    s.boot()                          # new log + BOOT
    s.rec_start()                     # REC_START, creates m/00000001.mjpg + .idx
    s.write(b"..." * 10000)           # media bytes, chunk hashes, index entries
    s.checkpoint()                    # CHECKPOINT over the whole chunks written so far
    s.close()                         # SEGMENT (final manifest)
    s.rec_stop()
    s.power_cut(torn=b"\\xd2\\x84...") # optional torn tail; then s.boot() recovers

``s.records`` lists every record written as Rec(seq, type, file, offset, data).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

BOOT, REC_START, CHECKPOINT, SEGMENT, REC_STOP, REFUSAL, RECOVERY = range(1, 8)
NO_OFFICER, RECOVERED, MISMATCH = 0x01, 0x02, 0x04
ZERO = bytes(32)
TYPE_NAMES = {1: "BOOT", 2: "REC_START", 3: "CHECKPOINT", 4: "SEGMENT", 5: "REC_STOP",
              6: "REFUSAL", 7: "RECOVERY"}


def H(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def enc(x) -> bytes:
    return cbor2.dumps(x, canonical=True)


def key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def raw_pub(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def sign_record(body: dict, key: Ed25519PrivateKey, kid: bytes | None = None) -> bytes:
    """The tagged COSE_Sign1 bytes carrying ``body`` (SPEC §2.2)."""
    if kid is None:
        kid = body[3].encode()
    protected = enc({1: -8, 4: kid})
    payload = enc(body)
    sig = key.sign(enc(["Signature1", protected, b"", payload]))
    return enc(cbor2.CBORTag(18, [protected, {}, payload, sig]))


def decode_record(data: bytes) -> dict:
    """The body of a record (no checks)."""
    return cbor2.loads(cbor2.loads(data).value[2])


def chunk_root(hashes) -> bytes:
    r = ZERO
    for h in hashes:
        r = H(r + h)
    return r


@dataclass
class Rec:
    seq: int
    type: int
    file: str        # relative to the store root, e.g. "rec/00000000.log"
    offset: int
    data: bytes


class _Seg:
    def __init__(self, seq, media, chunk, start):
        self.seq, self.media, self.chunk, self.start = seq, media, chunk, start
        self.length = 0          # bytes written
        self.chunks = 0          # whole chunks hashed
        self.root = ZERO         # root over those chunks
        self.pending = b""       # bytes of the unfinished chunk
        self.ck_chunks, self.ck_length, self.ck_root = 0, 0, ZERO   # last checkpoint


class RefStore:
    def __init__(self, root, *, seed: bytes = b"\x5e" * 32, device: str = "SC-00A1B2C3",
                 fw: str = "ref-1.0", officer: str | None = "OFC-0042", chunk: int = 4096,
                 log_limit: int = 256 * 1024, fat: bool = False, write_head: bool = True):
        self.root = str(root)
        self.key = key_from_seed(seed)
        self.pubkey = raw_pub(self.key)
        self.device, self.fw, self.officer = device, fw, officer
        self.chunk, self.log_limit, self.fat, self.write_head = chunk, log_limit, fat, write_head
        self.seq, self.prev = 0, ZERO
        self.boot_count, self.mono, self.rtc0 = 0, 0, 1_700_000_000_000
        self.log = None            # current log file, relative path
        self.log_size = 0
        self.seg: _Seg | None = None      # open segment
        self.last_seg: int | None = None  # seq of the last segment started
        self.records: list[Rec] = []
        os.makedirs(os.path.join(self.root, "rec"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "m"), exist_ok=True)

    # -- paths -----------------------------------------------------------------
    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    # -- records ---------------------------------------------------------------
    def _now(self):
        self.mono += 100
        return self.rtc0 + self.boot_count * 10_000_000 + self.mono, self.mono

    def body(self, rtype: int, fields: dict | None = None) -> dict:
        rtc, mono = self._now()
        b = {0: rtype, 1: self.seq, 2: self.prev, 3: self.device, 4: rtc, 5: mono,
             6: self.boot_count, 7: self.officer, 8: self.fw}
        if self.officer is None:
            b[9] = NO_OFFICER
        b.update(fields or {})
        return b

    def _new_log(self):
        # as the firmware does: never append after a torn file that already holds the name
        self.log = "rec/%08d.log" % self.seq
        k = 0
        while os.path.exists(self.path(self.log)) and os.path.getsize(self.path(self.log)):
            k += 1
            self.log = "rec/%08d_%d.log" % (self.seq, k)
        self.log_size = 0
        open(self.path(self.log), "ab").close()

    def append_raw(self, data: bytes, seq: int, rtype: int) -> Rec:
        """Append record bytes to the log, advance the chain, write the head."""
        if self.log is None or self.log_size > self.log_limit:
            self._new_log()
        with open(self.path(self.log), "ab") as f:
            f.write(data)
        rec = Rec(seq, rtype, self.log, self.log_size, data)
        self.log_size += len(data)
        self.records.append(rec)
        self.seq, self.prev = seq + 1, H(data)
        if self.write_head:
            self._head(data)
        return rec

    def record(self, rtype: int, fields: dict | None = None) -> Rec:
        body = self.body(rtype, fields)
        return self.append_raw(sign_record(body, self.key), body[1], rtype)

    def _head(self, last: bytes):
        s = self.seg
        head = {1: self.log, 2: self.log_size, 3: last}
        if s is not None:
            head[4] = [s.seq, s.media, s.chunk, list(s.start), s.ck_chunks, s.ck_length,
                       s.ck_root]
        data = enc(head)
        new, cur = self.path("head.new"), self.path("head.cbor")
        with open(new, "wb") as f:
            f.write(data)
        if self.fat and os.path.exists(cur):
            os.remove(cur)
        os.replace(new, cur)

    # -- record types ----------------------------------------------------------
    def boot(self, reason: str = "power_on") -> Rec:
        """A boot: new log file; RECOVERY for a segment left open; then BOOT."""
        self.boot_count += 1
        self.mono = 0
        self._new_log()
        if self.seg is not None:
            self.recover()
        return self.record(BOOT, {17: reason, 18: self.pubkey})

    def rec_start(self, reason: str = "button", ext: str = "mjpg",
                  mime: str = "video/x-motion-jpeg", chunk: int | None = None) -> Rec:
        chunk = chunk or self.chunk
        s = self.seq
        media = "m/%08d.%s" % (s, ext)
        body = self.body(REC_START, {10: s, 11: media, 12: chunk, 17: reason, 23: mime})
        self.seg = _Seg(s, media, chunk, (body[4], body[5]))
        rec = self.append_raw(sign_record(body, self.key), s, REC_START)
        self.last_seg = s
        open(self.path(media), "wb").close()
        open(self.path(self._idx(media)), "wb").close()
        return rec

    @staticmethod
    def _idx(media: str) -> str:
        return os.path.splitext(media)[0] + ".idx"

    def write(self, data: bytes):
        """Append media bytes to the open segment; hash and index each completed chunk."""
        s = self.seg
        with open(self.path(s.media), "ab") as f:
            f.write(data)
        s.length += len(data)
        buf = s.pending + data
        full = len(buf) - len(buf) % s.chunk
        with open(self.path(self._idx(s.media)), "ab") as idx:
            for i in range(0, full, s.chunk):
                h = H(buf[i:i + s.chunk])
                idx.write(h)
                s.root = H(s.root + h)
                s.chunks += 1
        s.pending = buf[full:]

    def checkpoint(self) -> Rec:
        s = self.seg
        s.ck_chunks, s.ck_length, s.ck_root = s.chunks, s.chunks * s.chunk, s.root
        return self.record(CHECKPOINT, {10: s.seq, 13: s.ck_length, 14: s.ck_chunks,
                                          15: s.ck_root})

    def close(self) -> Rec:
        s = self.seg
        if s.pending:
            h = H(s.pending)
            with open(self.path(self._idx(s.media)), "ab") as idx:
                idx.write(h)
            s.root = H(s.root + h)
            s.chunks += 1
            s.pending = b""
        self.seg = None
        return self.record(SEGMENT, {10: s.seq, 13: s.length, 14: s.chunks, 15: s.root,
                                       16: list(s.start)})

    def rec_stop(self, reason: str = "button") -> Rec:
        return self.record(REC_STOP, {10: self.last_seg, 17: reason})

    def refusal(self, op: str = "delete", target: str = "m/00000001.mjpg",
                source: str = "api", reason: str = "append-only store") -> Rec:
        return self.record(REFUSAL, {17: reason, 19: op, 20: target, 21: source})

    # -- power loss ------------------------------------------------------------
    def power_cut(self, torn: bytes | None = None):
        """Power is lost: optionally leave ``torn`` bytes (an unfinished record) at the end
        of the current log. The next boot() starts a new log and recovers an open segment."""
        if torn:
            with open(self.path(self.log), "ab") as f:
                f.write(torn)
            self.log_size += len(torn)
        self.log = None

    def recover(self) -> Rec:
        """SPEC §5.4 step 2: hash the open segment's media from the last checkpoint to the
        end of what survived, append missing index entries, write RECOVERY."""
        s = self.seg
        with open(self.path(s.media), "rb") as f:
            f.seek(s.ck_length)
            tail = f.read()
        idx_path = self.path(self._idx(s.media))
        with open(idx_path, "rb") as f:
            idx = f.read()
        n_idx = len(idx) // 32
        root, chunks, flags = s.ck_root, s.ck_chunks, RECOVERED
        new_entries = b""
        for i in range(0, len(tail), s.chunk):
            h = H(tail[i:i + s.chunk])
            if chunks < n_idx:
                if idx[32 * chunks:32 * chunks + 32] != h:
                    flags |= MISMATCH
            else:
                new_entries += h
            root = H(root + h)
            chunks += 1
        with open(idx_path, "r+b") as f:
            f.truncate(min(len(idx), 32 * n_idx))
            f.seek(0, 2)
            f.write(new_entries)
        self.seg = None
        return self.record(RECOVERY, {10: s.seq, 13: s.ck_length + len(tail), 14: chunks,
                                        15: root, 16: list(s.start), 17: "power_loss",
                                        22: s.ck_length, 9: flags})

    # -- helpers for tests -----------------------------------------------------
    def by_seq(self, seq: int) -> Rec:
        return [r for r in self.records if r.seq == seq][-1]


def session(root, *, seconds: int = 3, bytes_per_s: int = 10_000, close: bool = True,
            **kw) -> RefStore:
    """A typical store: BOOT, REFUSAL, REC_START, CHECKPOINT each second, SEGMENT, REC_STOP."""
    s = RefStore(root, **kw)
    s.boot()
    s.refusal()
    s.rec_start()
    for i in range(seconds):
        s.write(bytes((i * 7 + j) & 0xFF for j in range(bytes_per_s)))
        s.checkpoint()
    s.write(b"tail" * 100)
    if close:
        s.close()
        s.rec_stop()
    return s
