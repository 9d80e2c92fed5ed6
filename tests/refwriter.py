"""A small reference writer of sealcam stores, for tests only (SPEC §2–§5).

Independent of the firmware: cbor2 (canonical) + cryptography (Ed25519). It writes what a
recorder would leave on its SD card: rec/NNNNNNNN.log, head.cbor (or head.new), m/S.mkv
and m/S.idx, so the verifier can be tested without the firmware.

    s = RefStore(tmp_path)            # key from a fixed seed
    s.boot()                          # new log + BOOT
    s.rec_start()                     # REC_START, creates m/00000001.mkv + .idx
    s.write(b"..." * 10000)           # media bytes, chunk hashes, index entries
    s.checkpoint()                    # CHECKPOINT over the whole chunks written so far
    s.close()                         # SEGMENT (final manifest)
    s.rec_stop()
    s.power_cut(torn=b"\\xd2\\x84...") # optional torn tail; then s.boot() recovers

The officer workflow (SPEC §10): ``assign``, ``self_check``, ``time_set`` (drift from the
previous calibration), ``interrupt`` (INTERRUPTION, SEGMENT, REC_STOP ``interrupted``),
``interruption``, ``voice_annotation`` (span from a ``position()`` taken when the button
was pressed to now), ``annotation_missing``, ``mark``, ``receipt`` and ``release`` (a
RELEASE record, then the segment's media and index are removed).

``s.records`` lists every record written as Rec(seq, type, file, offset, data).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

BOOT, REC_START, CHECKPOINT, SEGMENT, REC_STOP, REFUSAL, RECOVERY, RECEIPT, TIME_SET = \
    range(1, 10)
(INTERRUPTION, VOICE_ANNOTATION, ANNOTATION_MISSING, MARK, ASSIGN, SELF_CHECK,
 RELEASE) = range(10, 17)
NO_OFFICER, RECOVERED, MISMATCH, DRIFT = 0x01, 0x02, 0x04, 0x08
ZERO = bytes(32)
TYPE_NAMES = {1: "BOOT", 2: "REC_START", 3: "CHECKPOINT", 4: "SEGMENT", 5: "REC_STOP",
              6: "REFUSAL", 7: "RECOVERY", 8: "RECEIPT", 9: "TIME_SET", 10: "INTERRUPTION",
              11: "VOICE_ANNOTATION", 12: "ANNOTATION_MISSING", 13: "MARK", 14: "ASSIGN",
              15: "SELF_CHECK", 16: "RELEASE"}
STATION_SEED = b"\x57" * 32
DAY_MS = 86_400_000


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
        self.closed_by: int | None = None   # seq of its SEGMENT or RECOVERY


class RefStore:
    def __init__(self, root, *, seed: bytes = b"\x5e" * 32, device: str = "SC-00A1B2C3",
                 fw: str = "ref-1.0", officer: str | None = "OFC-0042", chunk: int = 4096,
                 log_limit: int = 256 * 1024, fat: bool = False, write_head: bool = True,
                 unit: str | None = None):
        self.root = str(root)
        self.key = key_from_seed(seed)
        self.pubkey = raw_pub(self.key)
        self.device, self.fw, self.officer, self.unit = device, fw, officer, unit
        self.station_key = key_from_seed(STATION_SEED)
        self.chunk, self.log_limit, self.fat, self.write_head = chunk, log_limit, fat, write_head
        self.seq, self.prev = 0, ZERO
        self.boot_count, self.mono, self.rtc0 = 0, 0, 1_700_000_000_000
        self.log = None            # current log file, relative path
        self.log_size = 0
        self.seg: _Seg | None = None      # open segment
        self.last_seg: int | None = None  # seq of the last segment started
        self.segments: dict[int, _Seg] = {}   # every segment started, by seq
        self.records: list[Rec] = []
        self.receipt_number = 0           # number of the last RECEIPT written
        self.last_cal: int | None = None  # measurement base: new rtc of a TIME_SET
        self.cal_error = 0                # old - new summed since the base
        self.rtc_shift = 0                # TIME_SET moves the RTC by this much
        os.makedirs(os.path.join(self.root, "rec"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "m"), exist_ok=True)

    # -- paths -----------------------------------------------------------------
    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    # -- records ---------------------------------------------------------------
    def _now(self):
        self.mono += 100
        return self.rtc0 + self.rtc_shift + self.boot_count * 10_000_000 + self.mono, self.mono

    def body(self, rtype: int, fields: dict | None = None) -> dict:
        rtc, mono = self._now()
        b = {0: rtype, 1: self.seq, 2: self.prev, 3: self.device, 4: rtc, 5: mono,
             6: self.boot_count, 7: self.officer, 8: self.fw}
        if self.officer is None:
            b[9] = NO_OFFICER
        elif self.unit is not None:
            b[30] = self.unit
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

    def rec_start(self, reason: str = "button", ext: str = "mkv",
                  mime: str = "video/x-matroska", chunk: int | None = None,
                  prerecord: int | None = None) -> Rec:
        chunk = chunk or self.chunk
        s = self.seq
        media = "m/%08d.%s" % (s, ext)
        fields = {10: s, 11: media, 12: chunk, 17: reason, 23: mime}
        if prerecord is not None:
            fields[41] = prerecord
        body = self.body(REC_START, fields)
        self.seg = _Seg(s, media, chunk, (body[4], body[5]))
        self.segments[s] = self.seg
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
        s.closed_by = self.seq
        return self.record(SEGMENT, {10: s.seq, 13: s.length, 14: s.chunks, 15: s.root,
                                       16: list(s.start)})

    def rec_stop(self, reason: str = "button") -> Rec:
        return self.record(REC_STOP, {10: self.last_seg, 17: reason})

    def refusal(self, op: str = "delete", target: str = "m/00000001.mkv",
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
        s.length = s.ck_length + len(tail)
        s.closed_by = self.seq
        return self.record(RECOVERY, {10: s.seq, 13: s.ck_length + len(tail), 14: chunks,
                                        15: root, 16: list(s.start), 17: "power_loss",
                                        22: s.ck_length, 9: flags})

    # -- officer workflow (SPEC §10) ---------------------------------------------
    def position(self) -> list:
        """[segment, chunk, offset] of the next media byte of the open segment (`at`)."""
        s = self.seg
        return [s.seq, s.length // s.chunk, s.length % s.chunk]

    def station_fingerprint(self) -> str:
        d = H(raw_pub(self.station_key))[:16].hex()
        return ":".join(d[i:i + 4] for i in range(0, 32, 4))

    def interruption(self, reason: str = "weather", *, segment: int | None = None,
                     at: list | None = None, refers: int | None = None,
                     extra: dict | None = None) -> Rec:
        """An INTERRUPTION record only; with a segment open, ``segment`` and ``at`` default
        to it and to where its media stands now."""
        f = {17: reason}
        if self.seg is not None:
            segment = self.seg.seq if segment is None else segment
            at = self.position() if at is None else at
        if segment is not None:
            f[10] = segment
        if at is not None:
            f[34] = list(at)
        if refers is not None:
            f[31] = refers
        f.update(extra or {})
        return self.record(INTERRUPTION, f)

    def interrupt(self, reason: str = "weather") -> Rec:
        """SPEC §10.3: INTERRUPTION, then SEGMENT, then REC_STOP ``interrupted``."""
        rec = self.interruption(reason)
        self.close()
        self.rec_stop("interrupted")
        return rec

    def power_loss_interruption(self) -> Rec:
        """After a boot that recovered a segment: INTERRUPTION power_loss naming the
        RECOVERY and the recovered segment."""
        rec = [r for r in self.records if r.type == RECOVERY][-1]
        seg = decode_record(rec.data)[10]
        return self.interruption("power_loss", segment=seg, refers=rec.seq)

    def voice_annotation(self, refers: int, *, start: list | None = None,
                         span: list | None = None, duration: int = 1500) -> Rec:
        """VOICE_ANNOTATION for the interruption ``refers``: span from ``start`` (a
        position() taken when VOICE was pressed; default: now) to now."""
        if span is None:
            end = self.position()
            start = start or end
            span = [start[0], start[1], start[2], end[1], end[2]]
        return self.record(VOICE_ANNOTATION, {31: refers, 32: list(span), 35: duration})

    def annotation_missing(self, refers: int, duration: int = 120_000) -> Rec:
        return self.record(ANNOTATION_MISSING, {31: refers, 35: duration})

    def mark(self, kind: str = "bookmark", *, at: list | None = None,
             phrase: bool | None = None, extra: dict | None = None) -> Rec:
        f = {33: kind}
        at = at if at is not None else (self.position() if self.seg is not None else None)
        if at is not None:
            f[34] = list(at)
        if phrase is not None:
            f[42] = phrase
        f.update(extra or {})
        return self.record(MARK, f)

    def assign(self, officer: str | None, unit: str | None = None,
               station: str | None = None) -> Rec:
        """ASSIGN (check-out) or, with officer None, release (check-in); this record and
        every later one carry the new officer and unit."""
        self.officer, self.unit = officer, (unit if officer is not None else None)
        return self.record(ASSIGN, {24: station or self.station_fingerprint()})

    def self_check(self, ready: bool = True, reasons=(), facts: dict | None = None) -> Rec:
        if facts is None:
            facts = {1: 87, 2: 600}
        return self.record(SELF_CHECK, {36: ready, 37: list(reasons), 38: dict(facts)})

    def time_set(self, new: int | None = None, *, error: int = 0, drift_limit: int = 3000,
                 drift_min_ms: int = 3_600_000, fields: dict | None = None) -> Rec:
        """The station sets the clock: the RTC was ``error`` ms ahead of ``new`` (default:
        now - error). As the firmware (SPEC §8.7): the corrections since the measurement
        base are summed; once ``new`` is ``drift_min_ms`` after the base, the record carries
        ``error`` (the sum), ``since`` and ``drift`` = error x 86,400,000 / since rounded
        toward zero, flag DRIFT beyond ``drift_limit`` ms/day, and the base moves."""
        old, _ = self._now()
        self.mono -= 100
        new = old - error if new is None else new
        f = {28: old, 29: new}
        if self.last_cal is None:
            self.last_cal, self.cal_error = new, 0
        else:
            acc = self.cal_error + old - new
            if new - self.last_cal >= drift_min_ms:
                since = new - self.last_cal
                drift = acc * DAY_MS // since if acc >= 0 else -((-acc) * DAY_MS // since)
                f[39], f[40], f[43] = drift, since, acc
                if abs(drift) > drift_limit:
                    f[9] = DRIFT | (NO_OFFICER if self.officer is None else 0)
                self.last_cal, self.cal_error = new, 0
            else:
                self.cal_error = acc
        f.update(fields or {})
        self.rtc_shift += new - old
        body = self.body(TIME_SET, f)
        return self.append_raw(sign_record(body, self.key), body[1], TIME_SET)

    def sign_receipt(self, covered: int, number: int, archive: str = "ARCH-1") -> bytes:
        """A station's custody receipt (SPEC §8.6) over records 0..covered."""
        body = {1: self.device, 2: covered, 3: H(self.by_seq(covered).data), 4: number,
                5: self.rtc0 + self.rtc_shift, 6: archive}
        return sign_record(body, self.station_key, kid=self.station_fingerprint().encode())

    def receipt(self, covered: int | None = None, number: int | None = None) -> Rec:
        """A RECEIPT record for a station receipt over 0..covered (default: the last record);
        ``number`` defaults to one more than the last."""
        covered = self.seq - 1 if covered is None else covered
        number = self.receipt_number + 1 if number is None else number
        r = self.sign_receipt(covered, number)
        self.receipt_number = max(self.receipt_number, number)
        return self.record(RECEIPT, {24: self.station_fingerprint(), 25: covered, 26: H(r),
                                     27: number})

    def release(self, segment: int, number: int | None = None, *, remove: bool = True,
                fields: dict | None = None) -> Rec:
        """RELEASE of a segment against receipt ``number`` (default: the last), then (with
        ``remove``) its media and chunk index are removed, as the device does (SPEC §10.8)."""
        s = self.segments[segment]
        number = self.receipt_number if number is None else number
        f = {10: segment, 11: s.media, 13: s.length, 27: number}
        f.update(fields or {})
        rec = self.record(RELEASE, f)
        if remove:
            for p in (s.media, self._idx(s.media)):
                if os.path.exists(self.path(p)):
                    os.remove(self.path(p))
        return rec

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
