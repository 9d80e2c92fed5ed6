"""Offline verifier of a sealcam store (SPEC §3–§6).

    from host_tools.verify import verify_store
    report = verify_store("/media/sd", pinned_key="SC-00A1B2C3.pub")
    report.verdict          # "OK" | "OK_WITH_MISSING_INFO" | "NOT_OK" | "NOT_SIGNED"
    report.to_json()        # a dict (json.dumps-able)
    print(report.to_text())

Only cbor2 and cryptography are used; nothing from the firmware is imported. Media is
hashed chunk by chunk (never held in memory as a whole).

What is checked, in order:

1. ``rec/*.log`` in numeric order, each a concatenation of tagged COSE_Sign1 items. An
   unfinished item at the end of a log file (a prefix of ``d2 84 …`` cut short, or only
   zero bytes) is a *torn tail* (OK_WITH_MISSING_INFO). Anything else that is not a record
   is NOT_OK, named by file and byte offset.
2. Each record: structure (SPEC §2.2, schema.cddl; deterministic CBOR), kid == device id,
   the Ed25519 signature with the device key (the pinned key, or else the key of the first
   BOOT record that verifies under its own key: origin then not checked), every BOOT
   carries the device key, one device id.
3. The chain: seq 0, 1, 2, … in file order, ``prev`` == H(record seq-1), no duplicates or
   forks.
4. The signed head (head.cbor, or head.new): its ``last`` verifies and is byte-identical
   to the chain's record with that seq; the chain does not end before it.
5. Each segment (REC_START and its CHECKPOINT / SEGMENT / RECOVERY records): chunk hashes
   recomputed from the media, the chunk chain root compared with every signed manifest,
   the (untrusted) ``.idx`` used to pinpoint damaged chunks, per-chunk marks.
6. The officer workflow (SPEC §10): every ``refers`` names an earlier record of the right
   type (VOICE_ANNOTATION / ANNOTATION_MISSING: an INTERRUPTION; a power-loss INTERRUPTION:
   a RECOVERY), every ``span`` / ``at`` lies in a segment that exists and within its signed
   length, ``unit`` only with an officer, MARK kinds, SELF_CHECK and TIME_SET consistency,
   and every RELEASE is of a closed segment that an earlier RECEIPT covers. A validly
   released segment whose media is gone has chunk marks ``X`` (OK_WITH_MISSING_INFO); if
   its media is still there it is verified as usual.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import cbor2
from cryptography.exceptions import InvalidSignature

from . import keys as _keys

__all__ = ["verify_store", "Report", "RecordRow", "SegmentRow", "OK", "OK_WITH_MISSING_INFO",
           "NOT_OK", "NOT_SIGNED", "VERDICTS", "EXIT_CODES", "TYPE_NAMES"]

OK = "OK"
OK_WITH_MISSING_INFO = "OK_WITH_MISSING_INFO"
NOT_SIGNED = "NOT_SIGNED"
NOT_OK = "NOT_OK"
VERDICTS = (OK, OK_WITH_MISSING_INFO, NOT_SIGNED, NOT_OK)        # from best to worst
#: process exit code of ``sealcam verify`` for each overall verdict (3: usage or I/O error)
EXIT_CODES = {OK: 0, OK_WITH_MISSING_INFO: 0, NOT_OK: 1, NOT_SIGNED: 2}

BOOT, REC_START, CHECKPOINT, SEGMENT, REC_STOP, REFUSAL, RECOVERY, RECEIPT, TIME_SET = \
    range(1, 10)
(INTERRUPTION, VOICE_ANNOTATION, ANNOTATION_MISSING, MARK, ASSIGN, SELF_CHECK,
 RELEASE) = range(10, 17)                                     # SPEC §10
TYPE_NAMES = {BOOT: "BOOT", REC_START: "REC_START", CHECKPOINT: "CHECKPOINT",
              SEGMENT: "SEGMENT", REC_STOP: "REC_STOP", REFUSAL: "REFUSAL",
              RECOVERY: "RECOVERY", RECEIPT: "RECEIPT", TIME_SET: "TIME_SET",
              INTERRUPTION: "INTERRUPTION", VOICE_ANNOTATION: "VOICE_ANNOTATION",
              ANNOTATION_MISSING: "ANNOTATION_MISSING", MARK: "MARK", ASSIGN: "ASSIGN",
              SELF_CHECK: "SELF_CHECK", RELEASE: "RELEASE"}
F_NO_OFFICER, F_RECOVERED, F_MISMATCH, F_DRIFT = 0x01, 0x02, 0x04, 0x08
MARK_KINDS = ("important", "notice_given", "bookmark")     # SPEC §10.4
ZERO = bytes(32)
KEY_NAMES = {0: "type", 1: "seq", 2: "prev", 3: "device", 4: "rtc", 5: "mono", 6: "boot",
             7: "officer", 8: "fw", 9: "flags", 10: "segment", 11: "media", 12: "chunk",
             13: "length", 14: "chunks", 15: "root", 16: "start", 17: "reason",
             18: "pubkey", 19: "op", 20: "target", 21: "source", 22: "signed", 23: "mime",
             24: "station", 25: "covered", 26: "receipt", 27: "number", 28: "old", 29: "new",
             30: "unit", 31: "refers", 32: "span", 33: "kind", 34: "at", 35: "duration",
             36: "ready", 37: "reasons", 38: "facts", 39: "drift", 40: "since", 43: "error",
             41: "prerecord", 42: "phrase"}
# rec/NNNNNNNN.log, or rec/NNNNNNNN_K.log when a torn file already holds that name
_LOG_RE = re.compile(r"^(\d+)(?:_(\d+))?\.log$")
_PROGRESS_AUTO_BYTES = 32 << 20


def _H(b) -> bytes:
    return hashlib.sha256(b).digest()


def _enc(x) -> bytes:
    return cbor2.dumps(x, canonical=True)


# --- body schema (schema.cddl) ------------------------------------------------

def _uint(x):
    return type(x) is int and x >= 0


def _tstr(x):
    return type(x) is str


def _hash(x):
    return type(x) is bytes and len(x) == 32


def _officer(x):
    return x is None or type(x) is str


def _stamp(x):
    return isinstance(x, (list, tuple)) and len(x) == 2 and all(_uint(v) for v in x)


def _int(x):
    return type(x) is int


def _bool(x):
    return type(x) is bool


def _uints(n):
    def check(x):
        return isinstance(x, (list, tuple)) and len(x) == n and all(_uint(v) for v in x)
    return check


def _tstrs(x):
    return isinstance(x, (list, tuple)) and all(_tstr(v) for v in x)


def _facts(x):
    return isinstance(x, Mapping) and all(_uint(k) and _int(v) for k, v in x.items())


_position = _uints(3)     # at: [segment, chunk, offset]
_span = _uints(5)         # span: [segment, chunk, offset, chunk, offset]

_COMMON = {1: _uint, 2: _hash, 3: _tstr, 4: _uint, 5: _uint, 6: _uint, 7: _officer, 8: _tstr}
#: keys any record MAY carry: flags, and the officer's unit (SPEC §10.5)
_ANY = {9: _uint, 30: _tstr}
_PROGRESS = {13: _uint, 14: _uint, 15: _hash}
#: required keys of each record type
_SCHEMA = {
    BOOT: {17: _tstr, 18: _hash},
    REC_START: {10: _uint, 11: _tstr, 12: _uint, 17: _tstr, 23: _tstr},
    CHECKPOINT: {10: _uint, **_PROGRESS},
    SEGMENT: {10: _uint, **_PROGRESS, 16: _stamp},
    REC_STOP: {10: _uint, 17: _tstr},
    REFUSAL: {17: _tstr, 19: _tstr, 20: _tstr, 21: _tstr},
    RECOVERY: {10: _uint, **_PROGRESS, 16: _stamp, 17: _tstr, 22: _uint},
    RECEIPT: {24: _tstr, 25: _uint, 26: _hash, 27: _uint},     # SPEC §8.6
    TIME_SET: {28: _uint, 29: _uint},                          # SPEC §8.7
    INTERRUPTION: {17: _tstr},                                 # SPEC §10.3
    VOICE_ANNOTATION: {31: _uint, 32: _span, 35: _uint},
    ANNOTATION_MISSING: {31: _uint, 35: _uint},
    MARK: {33: _tstr},                                         # SPEC §10.4
    ASSIGN: {24: _tstr},                                       # SPEC §10.5
    SELF_CHECK: {36: _bool, 37: _tstrs, 38: _facts},           # SPEC §10.6
    RELEASE: {10: _uint, 11: _tstr, 13: _uint, 27: _uint},     # SPEC §10.8
}
#: optional keys of each record type (besides _ANY)
_OPTIONAL = {
    REC_START: {41: _uint},
    TIME_SET: {39: _int, 40: _uint, 43: _int},
    INTERRUPTION: {10: _uint, 31: _uint, 34: _position},
    MARK: {34: _position, 42: _bool},
}


class _Bad(Exception):
    pass


def _keyname(k):
    return "%s (%s)" % (k, KEY_NAMES[k]) if k in KEY_NAMES else repr(k)


# --- report -------------------------------------------------------------------

@dataclass
class RecordRow:
    seq: int | None          # None when the bytes are not a record
    type: str | None         # "BOOT", …, "UNKNOWN(9)", "TORN_TAIL", or None
    file: str                # log file, relative to the store root
    offset: int              # byte offset of the item in that file
    verdict: str
    reason: str = ""
    info: str = ""           # what the record says, for workflow records (SPEC §10)


@dataclass
class SegmentRow:
    segment: int | None      # seq of its REC_START; None for media with no records
    media: str               # media path relative to the store root
    length: int              # media bytes covered by signatures (closing or last checkpoint)
    file_size: int | None    # bytes in the media file (None: missing)
    chunks: int              # number of chunk marks
    chunk_size: int | None
    closed_by: str | None    # "SEGMENT", "RECOVERY", or None (open)
    verdict: str
    marks: str               # one character per chunk: . M - U R X (SPEC §6)
    reason: str = ""


@dataclass
class Report:
    store: str
    verdict: str = NOT_SIGNED
    reasons: list = field(default_factory=list)       # overall reasons, worst first
    notes: list = field(default_factory=list)         # facts that do not change the verdict
    first_failure: dict | None = None   # {seq, file, offset, reason, [segment, record, chunk,
                                        #  head_seq]}
    records: list = field(default_factory=list)       # RecordRow, in file order
    segments: list = field(default_factory=list)      # SegmentRow, by segment seq
    device: str | None = None
    fingerprint: str | None = None                    # of the device key in use
    origin_checked: bool = False                      # True only with a pinned key
    head_seq: int | None = None
    head_file: str | None = None                      # "head.cbor" or "head.new"
    chain_end: int | None = None                      # highest seq in the chain
    record_count: int = 0
    log_files: list = field(default_factory=list)
    # the officer workflow (SPEC §10), from records whose signature and body verify
    interruptions: list = field(default_factory=list)  # {seq, reason, segment, at, refers,
                                                       #  annotations, missing, status}
    marks: list = field(default_factory=list)          # {seq, kind, at, phrase, rtc}
    releases: list = field(default_factory=list)       # {seq, segment, media, length,
                                                       #  number, receipt_seq, valid}
    time_sets: list = field(default_factory=list)      # {seq, old, new, drift, since,
                                                       #  drift_flag}
    self_checks: list = field(default_factory=list)    # {seq, ready, reasons, facts}
    assignments: list = field(default_factory=list)    # {seq, officer, unit, station}

    @property
    def ok(self) -> bool:
        return self.verdict in (OK, OK_WITH_MISSING_INFO)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict:
        d = asdict(self)
        d["exit_code"] = self.exit_code
        return d

    def to_text(self, all_records: bool = False) -> str:
        return _format_text(self, all_records)


# --- parsing ------------------------------------------------------------------

class _Rec:
    __slots__ = ("file", "offset", "data", "hash", "body", "seq", "type", "kid", "protected",
                 "payload", "sig", "fatal", "errors", "sig_ok", "schema_ok", "row", "info")

    def __init__(self, file, offset, data):
        self.file, self.offset, self.data = file, offset, data
        self.hash = _H(data)
        self.body = self.seq = self.type = self.kid = None
        self.protected = self.payload = self.sig = None
        self.fatal = None        # no usable body: str
        self.errors = []         # NOT_OK reasons
        self.sig_ok = False
        self.schema_ok = False   # type known, every key present with the right type
        self.row = None
        self.info = ""           # a summary of what a workflow record says

    @property
    def where(self):
        return "%s@%d" % (self.file, self.offset)

    @property
    def tname(self):
        if self.type is None:
            return None
        return TYPE_NAMES.get(self.type, "UNKNOWN(%d)" % self.type)


def _parse_record(rec: _Rec, item):
    """Fill rec from the decoded item; structure errors go to rec.fatal / rec.errors."""
    try:
        if not (isinstance(item, cbor2.CBORTag) and item.tag == 18):
            raise _Bad("not a tagged COSE_Sign1 (CBOR tag 18)")
        v = item.value
        if not (isinstance(v, (list, tuple)) and len(v) == 4):
            raise _Bad("COSE_Sign1 is not a 4-element array")
        prot, unprot, payload, sig = v
        if type(prot) is not bytes:
            raise _Bad("protected header is not a byte string")
        try:
            ph = cbor2.loads(prot)
        except Exception:
            raise _Bad("protected header is not CBOR") from None
        if not (isinstance(ph, Mapping) and set(ph) == {1, 4} and type(ph[1]) is int
                and ph[1] == -8 and type(ph[4]) is bytes):
            raise _Bad("protected header is not {1: -8 (EdDSA), 4: kid}")
        if _enc(ph) != prot:
            raise _Bad("protected header is not deterministic CBOR")
        if not isinstance(unprot, Mapping) or len(unprot):
            raise _Bad("unprotected header is not empty")
        if type(payload) is not bytes:
            raise _Bad("payload is not a byte string")
        if type(sig) is not bytes or len(sig) != 64:
            raise _Bad("signature is not a 64-byte string")
        try:
            body = cbor2.loads(payload)
        except Exception:
            raise _Bad("payload is not CBOR") from None
        if not isinstance(body, Mapping):
            raise _Bad("payload is not a CBOR map")
        try:
            canon = _enc(body) == payload
        except Exception:
            canon = False
        if not canon:
            raise _Bad("payload is not deterministic CBOR")
        for k, check in _COMMON.items():
            if k not in body:
                raise _Bad("body lacks key %s" % _keyname(k))
            if not check(body[k]):
                raise _Bad("body key %s has the wrong type" % _keyname(k))
        if not _uint(body.get(0)):
            raise _Bad("body has no record type (key 0)")
    except _Bad as e:
        rec.fatal = str(e)
        return
    rec.protected, rec.payload, rec.sig, rec.kid, rec.body = prot, payload, sig, ph[4], body
    rec.seq, rec.type = body[1], body[0]
    try:
        if _enc(item) != rec.data:
            rec.errors.append("record is not deterministic CBOR")
    except Exception:
        rec.errors.append("record is not deterministic CBOR")
    schema = _SCHEMA.get(rec.type)
    if schema is None:
        rec.errors.append("unknown record type %d" % rec.type)
        return
    optional = {**_ANY, **_OPTIONAL.get(rec.type, {})}
    allowed = set(_COMMON) | set(schema) | set(optional) | {0}
    n = len(rec.errors)
    for k, check in schema.items():
        if k not in body:
            rec.errors.append("%s body lacks key %s" % (rec.tname, _keyname(k)))
        elif not check(body[k]):
            rec.errors.append("%s body key %s has the wrong type" % (rec.tname, _keyname(k)))
    for k, check in optional.items():
        if k in body and not check(body[k]):
            rec.errors.append("body key %s has the wrong type" % _keyname(k))
    rec.schema_ok = len(rec.errors) == n
    extra = [k for k in body if k not in allowed]
    if extra:
        rec.errors.append("%s body has unexpected keys %s" % (
            rec.tname, ", ".join(_keyname(k) for k in extra)))


def _value_errors(rec: _Rec) -> list:
    """What a record's own body contradicts (SPEC §3.1, §10); needs no other record."""
    b, t, errs = rec.body, rec.type, []
    if 30 in b and b[7] is None:
        errs.append("unit (key 30) %r without an officer (key 7 is null)" % b[30])
    if t == MARK:
        if b[33] not in MARK_KINDS:
            errs.append("MARK kind %r is not one of %s" % (b[33], ", ".join(MARK_KINDS)))
        elif 42 in b and b[33] != "notice_given":
            errs.append("phrase (key 42) on a MARK %r: only notice_given carries it" % b[33])
    elif t == INTERRUPTION:
        if 31 in b and b[17] != "power_loss":
            errs.append("refers (key 31) on an INTERRUPTION with reason %r: only power_loss "
                        "refers to a RECOVERY" % b[17])
        if 34 in b and 10 in b and b[34][0] != b[10]:
            errs.append("INTERRUPTION at (key 34) is in segment %d, but its segment (key 10) is "
                        "%d" % (b[34][0], b[10]))
    elif t == SELF_CHECK:
        if b[36] and b[37]:
            errs.append("SELF_CHECK is READY but gives NOT_READY reasons %s" % ", ".join(b[37]))
        elif not b[36] and not b[37]:
            errs.append("SELF_CHECK is NOT_READY but gives no reason")
    elif t == TIME_SET:
        have = [k for k in (39, 40, 43) if k in b]
        if have and len(have) != 3:
            errs.append("TIME_SET carries %s without the rest of drift (39), since (40) and "
                        "error (43)" % ", ".join("key %d" % k for k in have))
        elif have:
            since, drift, err = b[40], b[39], b[43]
            if since == 0:
                errs.append("TIME_SET measures a drift over since = 0 ms")
            else:
                want = err * 86_400_000 / since
                if abs(drift - want) > 1:
                    errs.append("TIME_SET drift %d ms/day does not match error x "
                                "86,400,000 / since = %.1f" % (drift, want))
    return errs


def _record_info(rec: _Rec) -> str:
    """A one-line summary of what a workflow record says (RecordRow.info)."""
    b, t = rec.body, rec.type

    def at(p):
        return "segment %d chunk %d offset %d" % tuple(p)
    if t == TIME_SET:
        s = "clock set from %d to %d (%+d ms)" % (b[28], b[29], b[29] - b[28])
        if 39 in b and 40 in b:
            s += "; drift %+d ms/day (%+d ms over %d ms)" % (b[39], b.get(43, 0), b[40])
        elif 39 not in b and 40 not in b:
            s += "; no drift measured (too soon after the measurement base)"
        if b.get(9, 0) & F_DRIFT:
            s += "; flag DRIFT: beyond the device's drift limit"
        return s
    if t == INTERRUPTION:
        s = "reason %s" % b[17]
        if 10 in b:
            s += "; segment %d" % b[10]
        if 34 in b:
            s += "; at " + at(b[34])
        if 31 in b:
            s += "; recovery seq %d" % b[31]
        return s
    if t == VOICE_ANNOTATION:
        sp = b[32]
        return "explains seq %d; segment %d from chunk %d offset %d to chunk %d offset %d; " \
               "held %d ms" % (b[31], sp[0], sp[1], sp[2], sp[3], sp[4], b[35])
    if t == ANNOTATION_MISSING:
        return "no voice annotation for seq %d (waited %d ms)" % (b[31], b[35])
    if t == MARK:
        s = b[33]
        if 34 in b:
            s += " at " + at(b[34])
        if 42 in b:
            s += "; notice phrase %s" % ("played" if b[42] else "not played")
        return s
    if t == ASSIGN:
        if b[7] is None:
            return "released from its officer by station %s" % b[24]
        return "assigned to %s%s by station %s" % (
            b[7], " (unit %s)" % b[30] if 30 in b else "", b[24])
    if t == SELF_CHECK:
        s = "READY" if b[36] else "NOT_READY: " + ", ".join(b[37])
        facts = b[38]
        names = {1: "battery %d%%", 2: "storage %d min", 3: "clock error %+d ms",
                 4: "oldest unreceipted record %d s", 5: "calibrated %d ms ago"}
        f = [names[k] % facts[k] for k in sorted(facts) if k in names]
        return s + ("; " + ", ".join(f) if f else "")
    if t == RELEASE:
        return "segment %d (%s, %d bytes) released against receipt %d" % (
            b[10], b[11], b[13], b[27])
    if t == RECEIPT:
        return "receipt %d covers records 0..%d (station %s)" % (b[27], b[25], b[24])
    return ""


def _decode_one(data: bytes, pos: int):
    bio = io.BytesIO(data)
    bio.seek(pos)
    item = cbor2.CBORDecoder(bio).decode()
    return item, bio.tell()


def _plausible_torn(tail: bytes) -> bool:
    return tail[:2] == b"\xd2\x84"[:len(tail[:2])]


def _read_log(path: str, rel: str, items: list, events: list):
    """Append a _Rec for each item of one log file to ``items``; torn tails and garbage to
    ``events`` as (kind, file, offset, message) with kind "torn" or "bad"."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        tail = data[pos:]
        if not tail.strip(b"\x00"):
            events.append(("torn", rel, pos, "torn log tail: %d zero bytes at the end of %s"
                           % (len(tail), rel)))
            break
        try:
            item, end = _decode_one(data, pos)
        except cbor2.CBORDecodeEOF:
            if _plausible_torn(tail):
                events.append(("torn", rel, pos, "torn log tail: %d bytes of an unfinished "
                               "record at the end of %s" % (len(tail), rel)))
            else:
                events.append(("bad", rel, pos, "garbage at the end of %s (offset %d, %d bytes)"
                               % (rel, pos, len(tail))))
            break
        except Exception as e:  # not CBOR: cannot find the next record boundary
            events.append(("bad", rel, pos, "undecodable CBOR in %s at offset %d (%s); the "
                           "rest of the file (%d bytes) cannot be read"
                           % (rel, pos, e, len(tail))))
            break
        if end <= pos:  # pragma: no cover - defensive
            events.append(("bad", rel, pos, "decoder made no progress"))
            break
        rec = _Rec(rel, pos, data[pos:end])
        _parse_record(rec, item)
        items.append(rec)
        pos = end


def _log_files(root: str):
    d = os.path.join(root, "rec")
    if not os.path.isdir(d):
        return [], []
    logs, other = [], []
    for name in os.listdir(d):
        m = _LOG_RE.match(name)
        if m and os.path.isfile(os.path.join(d, name)):
            logs.append((int(m.group(1)), int(m.group(2) or 0), name))
        else:
            other.append("rec/" + name)
    logs.sort()
    return ["rec/" + n for _, _, n in logs], sorted(other)


# --- signature ------------------------------------------------------------------

def _verify_sig(pub, rec: _Rec) -> bool:
    try:
        pub.verify(rec.sig, _enc(["Signature1", rec.protected, b"", rec.payload]))
        return True
    except InvalidSignature:
        return False


# --- the verifier ---------------------------------------------------------------

class _Verifier:
    def __init__(self, root, pinned, progress):
        self.root = root
        self.rep = Report(store=root)
        self.pinned = pinned
        self.progress = progress
        self.fail = []     # (first-failure dict) in order
        self.info = []     # OK_WITH_MISSING_INFO reasons
        self.unsigned = []  # NOT_SIGNED reasons

    # failures -----------------------------------------------------------------
    def _failure(self, reason, seq=None, file=None, offset=None, **extra):
        d = {"seq": seq, "file": file, "offset": offset, "reason": reason}
        d.update(extra)
        self.fail.append(d)

    # main ---------------------------------------------------------------------
    def run(self) -> Report:
        rep = self.rep
        logs, other = _log_files(self.root)
        rep.log_files = logs
        if other:
            rep.notes.append("files in rec/ that are not logs: " + ", ".join(other))
        recs, events = [], []
        for rel in logs:
            n_before = len(recs)
            _read_log(os.path.join(self.root, rel), rel, recs, events)
            if len(recs) > n_before and recs[n_before].seq is not None:
                want = int(_LOG_RE.match(os.path.basename(rel)).group(1))
                if recs[n_before].seq != want:
                    rep.notes.append("%s starts with seq %d (its name says %d)"
                                     % (rel, recs[n_before].seq, want))
        self.recs = recs
        self._key()
        self._records()
        self._chain()
        self._links()
        self._workflow()
        self._rows(events)
        self._head()
        self._segments()
        self._finish()
        return rep

    # key ----------------------------------------------------------------------
    def _key(self):
        rep = self.rep
        self.pub = None
        self.pubraw = None
        boot_key = None
        for r in self.recs:
            if r.fatal is None and r.type == BOOT and _hash(r.body.get(18)):
                try:
                    cand = _keys.public_key_object(r.body[18])
                except Exception:
                    continue
                if _verify_sig(cand, r):
                    boot_key = r.body[18]
                    break
        if self.pinned is not None:
            self.pubraw = self.pinned
            rep.origin_checked = True
            if boot_key is not None and boot_key != self.pinned:
                self._failure("the store's device key (fingerprint %s, from its BOOT record) is "
                              "not the pinned key (fingerprint %s)"
                              % (_keys.fingerprint(boot_key), _keys.fingerprint(self.pinned)))
        elif boot_key is not None:
            self.pubraw = boot_key
        if self.pubraw is not None:
            self.pub = _keys.public_key_object(self.pubraw)
            rep.fingerprint = _keys.fingerprint(self.pubraw)
            if not rep.origin_checked:
                self.info.append("origin not checked: no pinned key; device key fingerprint %s"
                                 % rep.fingerprint)
        elif self.recs:
            self._failure("no device key: no key was pinned and no BOOT record verifies "
                          "with its own public key")

    # per record -----------------------------------------------------------------
    def _records(self):
        device = None
        for r in self.recs:
            if r.fatal is None and r.type == BOOT and self.pubraw is not None \
                    and r.body.get(18) == self.pubraw:
                device = r.body[3]
                break
        for r in self.recs:
            if r.fatal is not None:
                continue
            if device is None:
                device = r.body[3]
            errs = []
            if self.pub is None:
                errs.append("signature cannot be checked: no device key")
            elif _verify_sig(self.pub, r):
                r.sig_ok = True
            else:
                errs.append("signature does not verify with the device key")
            if r.kid != r.body[3].encode():
                errs.append("kid %r does not match the device id %r in the body"
                            % (r.kid.decode("utf-8", "replace"), r.body[3]))
            if r.body[3] != device:
                errs.append("record from another device %r (store device %r)"
                            % (r.body[3], device))
            if r.type == BOOT and _hash(r.body.get(18)) and self.pubraw is not None \
                    and r.body[18] != self.pubraw:
                errs.append("BOOT carries a different public key (fingerprint %s) than the "
                            "device key (fingerprint %s)"
                            % (_keys.fingerprint(r.body[18]), self.rep.fingerprint))
            r.errors[:0] = errs
            if r.schema_ok:
                r.errors.extend(_value_errors(r))
                try:
                    r.info = _record_info(r)
                except Exception:  # pragma: no cover - a summary must never stop the check
                    r.info = ""
        self.rep.device = device

    # chain ----------------------------------------------------------------------
    def _chain(self):
        chain = [r for r in self.recs if r.fatal is None]
        first = {}
        for i, r in enumerate(chain):
            first.setdefault(r.seq, i)
        self.first = {s: chain[i] for s, i in first.items()}
        prev_r = None
        for i, r in enumerate(chain):
            s = r.seq
            errs = []
            if first[s] != i:
                o = chain[first[s]]
                if o.data == r.data:
                    errs.append("duplicate of seq %d (first at %s)" % (s, o.where))
                else:
                    errs.append("fork: a second, different record with seq %d (first at %s)"
                                % (s, o.where))
            else:
                if prev_r is None:
                    if s != 0:
                        errs.append("the chain starts at seq %d: records before it are missing"
                                    % s)
                else:
                    e = prev_r.seq + 1
                    if s > e:
                        present = [k for k in range(e, s) if k in first]
                        if present:
                            errs.append("seq %d follows seq %d: out of order (seq %d stands "
                                        "elsewhere)" % (s, prev_r.seq, present[0]))
                        else:
                            errs.append("seq %d follows seq %d: records missing (%s)" % (
                                s, prev_r.seq,
                                "seq %d" % e if s - e == 1 else "seq %d to %d" % (e, s - 1)))
                    elif s < e:
                        errs.append("seq %d follows seq %d: out of order" % (s, prev_r.seq))
                if s == 0:
                    if r.body[2] != ZERO:
                        errs.append("prev of seq 0 is not 32 zero bytes")
                elif (s - 1) in first:
                    if r.body[2] != self.first[s - 1].hash:
                        errs.append("prev does not match H(seq %d)" % (s - 1))
            r.errors.extend(errs)
            prev_r = r
        self.rep.chain_end = max(first) if first else None
        self.rep.record_count = len(chain)

    # rows -----------------------------------------------------------------------
    def _rows(self, events):
        rep = self.rep
        torn_at = {}
        for kind, rel, pos, msg in events:
            torn_at.setdefault(rel, []).append((kind, pos, msg))
        rows = []
        by_file = {}
        for r in self.recs:
            by_file.setdefault(r.file, []).append(r)
        for rel in rep.log_files:
            for r in by_file.get(rel, []):
                if r.fatal is not None:
                    row = RecordRow(None, None, r.file, r.offset, NOT_OK, r.fatal)
                    self._failure("%s: %s" % (r.where, r.fatal), None, r.file, r.offset)
                elif r.errors:
                    row = RecordRow(r.seq, r.tname, r.file, r.offset, NOT_OK,
                                    "; ".join(r.errors))
                    self._failure("seq %d (%s, %s): %s" % (r.seq, r.where, r.tname,
                                                           "; ".join(r.errors)),
                                  r.seq, r.file, r.offset)
                else:
                    row = RecordRow(r.seq, r.tname, r.file, r.offset, OK)
                row.info = r.info or ""
                r.row = row
                rows.append(row)
            for kind, pos, msg in torn_at.get(rel, []):
                if kind == "torn":
                    rows.append(RecordRow(None, "TORN_TAIL", rel, pos, OK_WITH_MISSING_INFO, msg))
                    self.info.append(msg)
                else:
                    rows.append(RecordRow(None, None, rel, pos, NOT_OK, msg))
                    self._failure(msg, None, rel, pos)
        rep.records = rows

    # head -----------------------------------------------------------------------
    def _read_head(self, name):
        path = os.path.join(self.root, name)
        with open(path, "rb") as f:
            data = f.read(1 << 20)
        try:
            h = cbor2.loads(data)
        except Exception:
            raise _Bad("not CBOR") from None
        if not (isinstance(h, Mapping) and {1, 2, 3} <= set(h) <= {1, 2, 3, 4}):
            raise _Bad("not a map {1: log, 2: offset, 3: last, ?4: open}")
        log, offset, last, open_ = h[1], h[2], h[3], h.get(4)
        if not (_tstr(log) and _uint(offset) and type(last) is bytes):
            raise _Bad("log, offset or last has the wrong type")
        if 4 in h and not (isinstance(open_, (list, tuple)) and len(open_) == 7):
            raise _Bad("open is not a 7-element array")
        try:
            item, end = _decode_one(last, 0)
        except Exception:
            raise _Bad("last is not a record") from None
        if end != len(last):
            raise _Bad("last has trailing bytes")
        rec = _Rec(name, 0, last)
        _parse_record(rec, item)
        if rec.fatal:
            raise _Bad("last is not a record: " + rec.fatal)
        if self.pub is None:
            raise _Bad("no device key to check it with")
        if not _verify_sig(self.pub, rec):
            raise _Bad("its last record (seq %d) does not verify with the device key" % rec.seq)
        if rec.errors:
            raise _Bad("last record: " + "; ".join(rec.errors))
        if rec.kid != rec.body[3].encode() or (self.rep.device is not None
                                                and rec.body[3] != self.rep.device):
            raise _Bad("its last record comes from another device (%r)" % rec.body[3])
        return rec

    def _head(self):
        rep = self.rep
        cands, bad = [], {}
        for name in ("head.cbor", "head.new"):
            if not os.path.isfile(os.path.join(self.root, name)):
                continue
            try:
                cands.append((name, self._read_head(name)))
            except _Bad as e:
                bad[name] = str(e)
            except OSError as e:
                bad[name] = "cannot be read (%s)" % e
        present = set(bad) | {n for n, _ in cands}
        if not present:
            if self.recs:
                self._failure("signed head missing (no head.cbor or head.new) while the "
                              "store holds records", None, "head.cbor")
            return
        if "head.cbor" in bad:
            self._failure("signed head head.cbor is invalid: %s" % bad["head.cbor"],
                          None, "head.cbor")
        if "head.new" in bad:
            if "head.cbor" in present:
                rep.notes.append("head.new ignored (%s): a head being written when power "
                                 "was lost" % bad["head.new"])
            else:
                self._failure("signed head missing: head.cbor is absent and head.new is "
                              "invalid (%s)" % bad["head.new"], None, "head.new")
        if not cands:
            return
        name, last = max(cands, key=lambda c: c[1].seq)
        rep.head_seq, rep.head_file = last.seq, name
        m = last.seq
        end = rep.chain_end
        if m in self.first:
            if self.first[m].hash != last.hash:
                self._failure("the head's last record (seq %d) differs from seq %d in the "
                              "chain (%s)" % (m, m, self.first[m].where), None, name,
                              head_seq=m)
            elif end is not None and end > m:
                rep.notes.append("the chain goes on after the head (seq %d to %d): written after "
                                 "the head was saved (on a card: power lost before the head was "
                                 "rewritten; in an archive: pulled after the device's head)"
                                 % (m + 1, end))
        elif end is None:
            self._failure("all records are missing (%s says seq %d)" % (name, m), None, name,
                          head_seq=m)
        elif end < m:
            self._failure("records after seq %d are missing (the signed head %s says %d)"
                          % (end, name, m), None, name, head_seq=m)
        else:
            self._failure("seq %d, the last record named by the signed head %s, is missing "
                          "from the chain" % (m, name), None, name, head_seq=m)

    # segments -------------------------------------------------------------------
    def _links(self):
        """Group the trusted records (valid signature and body, first of their seq) by
        segment; a record naming a segment that has no REC_START is NOT_OK."""
        trusted = [r for r in self.recs if r.fatal is None and r.sig_ok and r.schema_ok
                   and self.first.get(r.seq) is r]
        starts = {r.seq: r for r in trusted if r.type == REC_START}
        members = {s: [] for s in starts}
        for r in starts.values():
            if r.body[10] != r.seq:
                r.errors.append("REC_START segment field %d is not its own seq" % r.body[10])
        for r in trusted:
            if r.type in (CHECKPOINT, SEGMENT, RECOVERY, REC_STOP):
                s = r.body[10]
                if s in starts and s < r.seq:
                    if r.type != REC_STOP:
                        members[s].append(r)
                    continue
                o = self.first.get(s)
                if o is not None and o.type == REC_START and not (o.sig_ok and o.schema_ok):
                    continue  # its REC_START is already reported as NOT_OK
                r.errors.append("refers to segment %d, which has no REC_START record before "
                                "it" % s)
        self.starts, self.members, self.trusted = starts, members, trusted

    # officer workflow (SPEC §10) ---------------------------------------------------
    def _workflow(self):
        """Cross-record checks of the workflow records: what ``refers`` names, where
        ``span`` / ``at`` point, what releases a segment's media; and the report's
        workflow lists. Only trusted records are looked at; a reference to a record that is
        itself NOT_OK is not reported again."""
        rep = self.rep
        trusted = sorted(self.trusted, key=lambda r: r.seq)
        by_seq = {r.seq: r for r in trusted}
        starts, members = self.starts, self.members
        close = {}
        for S, ms in members.items():
            cl = [r for r in ms if r.type in (SEGMENT, RECOVERY)]
            if cl:
                close[S] = min(cl, key=lambda r: r.seq)
        self.released = {}            # segment -> (RELEASE record, RECEIPT record)

        def refer(r, n, want):
            """The trusted record seq n of type ``want`` before r, or None (r.errors)."""
            o = by_seq.get(n)
            if o is not None and o.seq < r.seq and o.type == want:
                return o
            f = self.first.get(n)
            if o is None and f is not None and f.type == want and f.seq < r.seq:
                return None            # NOT_OK itself, reported there
            if n >= r.seq:
                what = "seq %d, which does not come before it" % n
            elif f is None:
                what = "seq %d, which is not in the chain" % n
            else:
                what = "seq %d, a %s, not a%s %s" % (
                    n, f.tname, "n" if TYPE_NAMES[want][0] in "AEIOU" else "",
                    TYPE_NAMES[want])
            r.errors.append("%s refers (key 31) to %s" % (r.tname, what))
            return None

        def segment(r, S, what):
            """The REC_START of segment S, if it stands before r; else None (r.errors)."""
            if S in starts and S < r.seq:
                return starts[S]
            o = self.first.get(S)
            if o is not None and o.type == REC_START and S < r.seq \
                    and not (o.sig_ok and o.schema_ok):
                return None
            r.errors.append("%s names segment %d, which has no REC_START record before it"
                            % (what, S))
            return None

        def position(r, what, S, chunk, off, end=False):
            """Byte offset of (chunk, off) in segment S; None if it is not valid (r.errors).
            ``end``: an exclusive end, which may stand at the end of a chunk."""
            C = starts[S].body[12]
            if C <= 0:
                return None            # reported with the segment
            if off > C or (off == C and not end):
                r.errors.append("%s: offset %d is not inside a chunk of %d bytes"
                                % (what, off, C))
                return None
            p = chunk * C + off
            cl = close.get(S)
            if cl is not None and p > cl.body[13]:
                r.errors.append("%s: byte %d (chunk %d offset %d) lies beyond segment %d's "
                                "signed length of %d bytes (seq %d %s)"
                                % (what, p, chunk, off, S, cl.body[13], cl.seq, cl.tname))
                return None
            return p

        def at(r):
            a = r.body.get(34)
            if a is not None and segment(r, a[0], "at (key 34)") is not None:
                position(r, "at (key 34)", a[0], a[1], a[2])
            return list(a) if a is not None else None

        intr = {}
        receipts = {}                 # number -> RECEIPT record (trusted, first)
        boots = [r.seq for r in trusted if r.type == BOOT]
        assigned, assigned_noted = None, False
        for r in trusted:
            b, t = r.body, r.type
            if assigned is not None and not assigned_noted and t != ASSIGN:
                a = assigned
                if (b[7], b.get(30)) != (a.body[7], a.body.get(30)):
                    rep.notes.append(
                        "seq %d (%s) carries officer %r, unit %r, but the last ASSIGN (seq %d) "
                        "assigned officer %r, unit %r" % (
                            r.seq, r.tname, b[7], b.get(30), a.seq, a.body[7], a.body.get(30)))
                    assigned_noted = True
            if t == RECEIPT:
                receipts.setdefault(b[27], r)
            elif t == INTERRUPTION:
                if 10 in b:
                    segment(r, b[10], "INTERRUPTION segment (key 10)")
                pos = at(r)
                if 31 in b and b[17] == "power_loss":
                    rc = refer(r, b[31], RECOVERY)
                    if rc is not None and 10 in b and rc.body[10] != b[10]:
                        r.errors.append("INTERRUPTION names segment %d, but the RECOVERY it "
                                        "refers to (seq %d) recovered segment %d"
                                        % (b[10], rc.seq, rc.body[10]))
                intr[r.seq] = {"seq": r.seq, "reason": b[17], "segment": b.get(10), "at": pos,
                               "refers": b.get(31), "rtc": b[4], "annotations": [],
                               "missing": None, "status": None}
            elif t in (VOICE_ANNOTATION, ANNOTATION_MISSING):
                i = refer(r, b[31], INTERRUPTION)
                if t == VOICE_ANNOTATION:
                    S, c0, o0, c1, o1 = b[32]
                    if segment(r, S, "span (key 32)") is not None:
                        p0 = position(r, "span (key 32) start", S, c0, o0)
                        p1 = position(r, "span (key 32) end", S, c1, o1, end=True)
                        if p0 is not None and p1 is not None and p0 > p1:
                            r.errors.append("span (key 32) starts after it ends (byte %d > "
                                            "byte %d of segment %d)" % (p0, p1, S))
                if i is not None and i.seq in intr:
                    if t == VOICE_ANNOTATION:
                        intr[i.seq]["annotations"].append(r.seq)
                    elif intr[i.seq]["missing"] is None:
                        intr[i.seq]["missing"] = r.seq
            elif t == MARK:
                rep.marks.append({"seq": r.seq, "kind": b[33], "at": at(r),
                                  "phrase": b.get(42), "rtc": b[4]})
            elif t == ASSIGN:
                assigned, assigned_noted = r, False
                rep.assignments.append({"seq": r.seq, "officer": b[7], "unit": b.get(30),
                                        "station": b[24]})
            elif t == SELF_CHECK:
                rep.self_checks.append({"seq": r.seq, "ready": b[36], "reasons": list(b[37]),
                                        "facts": dict(b[38])})
            elif t == TIME_SET:
                rep.time_sets.append({"seq": r.seq, "old": b[28], "new": b[29],
                                      "drift": b.get(39), "since": b.get(40),
                                      "drift_flag": bool(b.get(9, 0) & F_DRIFT)})
            elif t == RELEASE:
                self._release(r, segment, close, receipts)
        for seq, d in intr.items():
            if d["annotations"]:
                d["status"] = "explained"
            elif d["missing"] is not None:
                d["status"] = "annotation_missing"
            elif any(x > seq for x in boots):
                d["status"] = "unexplained"
                rep.notes.append("interruption seq %d (%s) was never explained: no "
                                 "VOICE_ANNOTATION or ANNOTATION_MISSING before the recorder "
                                 "restarted" % (seq, d["reason"]))
            else:
                d["status"] = "waiting"
            rep.interruptions.append(d)

    def _release(self, r, segment, close, receipts):
        b = r.body
        S, n = b[10], b[27]
        entry = {"seq": r.seq, "segment": S, "media": b[11], "length": b[13], "number": n,
                 "receipt_seq": None, "valid": False}
        self.rep.releases.append(entry)
        st = segment(r, S, "RELEASE segment (key 10)")
        if st is None:
            return
        errs = []
        cl = close.get(S)
        why = "segment %d released without a covering receipt: " % S
        rc = receipts.get(n)
        if cl is None or cl.seq > r.seq:
            errs.append(why + "the segment is not closed (no SEGMENT or RECOVERY) before the "
                              "RELEASE")
        elif rc is None:
            o = [x for x in self.recs if x.fatal is None and x.type == RECEIPT
                 and x.seq < r.seq and x.body.get(27) == n]
            if o and self.first.get(o[0].seq) is o[0]:
                return                 # that RECEIPT is NOT_OK itself, reported there
            errs.append(why + "no RECEIPT record numbered %d before it" % n)
        elif rc.body[25] < cl.seq:
            errs.append(why + "receipt %d (seq %d) covers records 0..%d, but the segment is "
                              "closed by seq %d (%s)" % (n, rc.seq, rc.body[25], cl.seq,
                                                          cl.tname))
        if b[11] != st.body[11]:
            errs.append("RELEASE media %r is not segment %d's media %r" % (b[11], S,
                                                                            st.body[11]))
        if cl is not None and b[13] != cl.body[13]:
            errs.append("RELEASE length %d is not segment %d's signed length %d (seq %d %s)"
                        % (b[13], S, cl.body[13], cl.seq, cl.tname))
        if errs:
            r.errors.extend(errs)
            return
        entry["receipt_seq"], entry["valid"] = rc.seq, True
        if S in self.released:
            self.rep.notes.append("segment %d released again by seq %d (first by seq %d)"
                                  % (S, r.seq, self.released[S][0].seq))
        else:
            self.released[S] = (r, rc)

    def _segments(self):
        rep = self.rep
        starts, members = self.starts, self.members
        self._total = 0
        jobs = []
        for s in sorted(starts):
            job = _SegJob(self, starts[s], sorted(members[s], key=lambda r: r.seq))
            jobs.append(job)
            self._total += job.to_hash
        bar = self._bar(self._total)
        try:
            for job in jobs:
                rep.segments.append(job.run(bar))
        finally:
            if bar is not None:
                bar.close()
        # media that no record covers
        referenced = set()
        for job in jobs:
            referenced.add(job.media)
            referenced.add(job.idx)
        mdir = os.path.join(self.root, "m")
        if os.path.isdir(mdir):
            for dirpath, _, files in os.walk(mdir):
                for fn in sorted(files):
                    rel = os.path.relpath(os.path.join(dirpath, fn), self.root).replace(os.sep, "/")
                    if rel in referenced:
                        continue
                    if fn.endswith(".idx"):
                        rep.notes.append("%s is the index of no segment" % rel)
                        continue
                    size = os.path.getsize(os.path.join(dirpath, fn))
                    msg = "%s is not covered by any signed record" % rel
                    rep.segments.append(SegmentRow(None, rel, 0, size, 0, None, None,
                                                   NOT_SIGNED, "", msg))
                    self.unsigned.append(msg)

    def _bar(self, total):
        show = self.progress
        if show is None:
            show = total >= _PROGRESS_AUTO_BYTES and sys.stderr.isatty()
        if not show or total <= 0:
            return None
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover
            return None
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                    desc="hashing media", file=sys.stderr, leave=False)

    # overall --------------------------------------------------------------------
    def _finish(self):
        rep = self.rep
        reasons, seen = [], set()
        nrec = 0
        for f in self.fail:
            if f["seq"] is not None and f["file"] and f["file"].startswith("rec/"):
                nrec += 1
                if nrec > 20:
                    continue
            if f["reason"] not in seen:
                seen.add(f["reason"])
                reasons.append(f["reason"])
        if nrec > 20:
            reasons.append("… and %d more records are NOT_OK" % (nrec - 20))
        reasons += self.unsigned + self.info
        rep.reasons = reasons
        rep.first_failure = self.fail[0] if self.fail else None
        if self.fail:
            rep.verdict = NOT_OK
        elif rep.record_count == 0:
            rep.verdict = NOT_SIGNED
            if not self.unsigned:
                rep.reasons.insert(0, "no signed records in the store")
        elif self.unsigned:
            rep.verdict = NOT_SIGNED
        elif self.info:
            rep.verdict = OK_WITH_MISSING_INFO
        else:
            rep.verdict = OK


class _SegJob:
    """Verification of one segment's media against its signed manifests."""

    def __init__(self, v: _Verifier, start: _Rec, members: list):
        self.v, self.start, self.S = v, start, start.seq
        self.media = start.body[11]
        self.idx = os.path.splitext(self.media)[0] + ".idx"
        self.C = start.body[12]
        self.ckpts = [r for r in members if r.type == CHECKPOINT]
        self.closes = [r for r in members if r.type in (SEGMENT, RECOVERY)]
        self.close = self.closes[0] if self.closes else None
        self.errors = []    # (reason, manifest seq or None, chunk or None)
        self.infos = []
        self.notes = []
        if self.close is not None:
            self.cover_len, self.cover_chunks = self.close.body[13], self.close.body[14]
        elif self.ckpts:
            self.cover_len, self.cover_chunks = self.ckpts[-1].body[13], self.ckpts[-1].body[14]
        else:
            self.cover_len, self.cover_chunks = 0, 0
        self.path = self._safe_path(self.media)
        self.to_hash = self.cover_len if self.path else 0
        # (RELEASE, RECEIPT) when a valid RELEASE of this segment stands in the chain
        self.released = v.released.get(self.S)
        if self.released is not None and self.path is not None \
                and not os.path.exists(self.path):
            self.to_hash = 0

    def _safe_path(self, rel):
        if not rel or rel.startswith(("/", "\\")) or "\\" in rel or ".." in rel.split("/") \
                or ":" in rel:
            self.errors.append(("segment %d: media path %r is not inside the store"
                                % (self.S, rel), self.S, None))
            return None
        return os.path.join(self.v.root, *rel.split("/"))

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
            n, L = r.body[14], r.body[13]
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
            ck_len = self.ckpts[-1].body[13] if self.ckpts else 0
            if self.close.body[22] != ck_len:
                self._err("seq %d (RECOVERY) says %d bytes were signed before the cut, but the "
                          "last checkpoint covers %d" % (self.close.seq, self.close.body[22],
                                                         ck_len), self.close.seq)
                ok = False
        return ok

    def _read_idx(self):
        p = os.path.join(self.v.root, *self.idx.split("/"))
        try:
            with open(p, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            self.notes.append("index %s is missing" % self.idx)
            return []
        except OSError as e:
            self.notes.append("index %s cannot be read (%s)" % (self.idx, e))
            return []
        n = len(data) // 32
        return [data[32 * i:32 * i + 32] for i in range(n)]

    def _hash_media(self, bar):
        """Chunk hashes of the covered part of the media; stops at the end of the file."""
        C, L, N = self.C, self.cover_len, self.cover_chunks
        hashes = []
        buf = bytearray(C)
        mv = memoryview(buf)
        with open(self.path, "rb", buffering=1 << 20) as f:
            for i in range(N):
                want = min(C, L - i * C)
                got = 0
                while got < want:
                    k = f.readinto(mv[got:want])
                    if not k:
                        break
                    got += k
                if got < want:
                    break
                hashes.append(hashlib.sha256(mv[:want]).digest())
                if bar is not None:
                    bar.update(want)
        return hashes

    def run(self, bar) -> SegmentRow:
        S, C = self.S, self.C
        closed_by = self.close.tname if self.close is not None else None
        row = SegmentRow(S, self.media, self.cover_len, None, 0, C, closed_by, OK, "")
        self._check_manifests()
        hashes, file_size = [], None
        gone = None        # media released against a receipt and removed (SPEC §10.8)
        if self.path is not None and C > 0:
            try:
                file_size = os.path.getsize(self.path)
            except FileNotFoundError:
                if self.released is not None:
                    rel, rc = self.released
                    gone = "segment %d released against receipt %d (seq %d RELEASE; receipt " \
                           "seq %d covers records 0..%d): its media %s was removed" % (
                               S, rel.body[27], rel.seq, rc.seq, rc.body[25], self.media)
                elif self.cover_len > 0:
                    self._err("segment %d: media file %s is missing" % (S, self.media))
                elif self.close is None:   # nothing signed yet; a new file may not exist yet
                    self.infos.append("media file %s does not exist yet" % self.media)
                else:
                    self.notes.append("media file %s of an empty segment is missing"
                                      % self.media)
            except OSError as e:
                self._err("segment %d: media file %s cannot be read (%s)" % (S, self.media, e))
            if file_size is not None:
                try:
                    hashes = self._hash_media(bar)
                except OSError as e:
                    self._err("segment %d: media file %s cannot be read (%s)"
                              % (S, self.media, e))
        row.file_size = file_size
        if gone:
            marks = "X" * self.cover_chunks
        else:
            marks = self._marks(hashes, file_size) if C > 0 else ""
            if self.released is not None and file_size is not None:
                self.notes.append("released by seq %d (RELEASE), but its media is still "
                                  "present: verified" % self.released[0].seq)
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
        # running roots of the computed hashes and of the index
        roots = [ZERO]
        for h in hashes:
            roots.append(_H(roots[-1] + h))
        iroots = [ZERO]
        for h in idx[:N]:
            iroots.append(_H(iroots[-1] + h))
        media_ok, idx_ok = 0, 0
        first_bad = None
        for r in manifests:
            n, root = r.body[14], r.body[15]
            if n < len(roots) and roots[n] == root:
                media_ok = max(media_ok, n)
            elif first_bad is None:
                first_bad = r
            if n < len(iroots) and iroots[n] == root:
                idx_ok = max(idx_ok, n)
        recovered = self.close is not None and self.close.type == RECOVERY
        ck_chunks = self.ckpts[-1].body[14] if self.ckpts else 0
        mismatch_flag = recovered and bool(self.close.body.get(9, 0) & F_MISMATCH)
        total = N
        if self.close is None and file_size is not None:
            total = max(N, -(-file_size // C))
        marks = []
        media_bad, idx_bad, unlocated, idx_recov = [], [], [], []
        for i in range(total):
            if i >= N:
                marks.append("U")
            elif i >= len(hashes):
                marks.append("-")
            elif i < media_ok:
                if i < len(idx) and idx[i] != hashes[i]:
                    if mismatch_flag and i >= ck_chunks:
                        idx_recov.append(i)
                        marks.append("R")
                    else:
                        idx_bad.append(i)
                        marks.append("M")
                else:
                    marks.append("R" if recovered and i >= ck_chunks else ".")
            elif i < idx_ok:
                if hashes[i] == idx[i]:
                    marks.append("R" if recovered and i >= ck_chunks else ".")
                else:
                    media_bad.append(i)
                    marks.append("M")
            else:
                unlocated.append(i)
                marks.append("M")
        # reasons
        if first_bad is not None:
            r = first_bad
            fs = file_size if file_size is not None else 0
            missing = len(hashes) < r.body[14]
            if missing and file_size is not None:
                self._err("segment %d: media file %s is shorter than signed: %d bytes, seq %d "
                          "(%s) covers %d (chunks from %d missing)" % (
                              S, self.media, fs, r.seq, r.tname, r.body[13], len(hashes)),
                          r.seq, len(hashes))
            if media_bad:
                i = media_bad[0]
                more = "" if len(media_bad) == 1 else " (and %d more chunks: %s)" % (
                    len(media_bad) - 1, _ranges(media_bad[1:]))
                self._err("segment %d: chunk %d of %s (bytes %d-%d) does not match its signed "
                          "hash (root of seq %d %s)%s" % (
                              S, i, self.media, i * C, min((i + 1) * C, self.cover_len) - 1,
                              r.seq, r.tname, more), r.seq, i)
            if unlocated and not missing:
                self._err("segment %d: %s does not match the root signed in seq %d (%s); the "
                          "damage lies in chunks %s and cannot be pinpointed: the index %s "
                          "does not match the signed root either" % (
                              S, self.media, r.seq, r.tname, _ranges(unlocated), self.idx),
                          r.seq, unlocated[0])
            if not media_bad and not unlocated and not missing:
                self._err("segment %d: root of seq %d (%s) does not match %s"
                          % (S, r.seq, r.tname, self.media), r.seq)
        if idx_bad:
            self._err("segment %d: index %s entry %d does not match chunk %d of the media, "
                      "which matches the signed root: the index was changed%s" % (
                          S, self.idx, idx_bad[0], idx_bad[0],
                          "" if len(idx_bad) == 1 else " (entries %s)" % _ranges(idx_bad)),
                      None, idx_bad[0])
        if file_size is not None and self.close is not None and file_size > self.cover_len:
            self._err("segment %d: media file %s is longer than its closed manifest: %d bytes, "
                      "seq %d (%s) says %d" % (S, self.media, file_size, self.close.seq,
                                               self.close.tname, self.cover_len),
                      self.close.seq)
        if len(idx) < N and len(hashes) == N:
            self.notes.append("index %s has %d of %d entries" % (self.idx, len(idx), N))
        # missing-info
        if self.close is None:
            unsigned = max(0, (file_size or 0) - self.cover_len)
            self.infos.append("open: no SEGMENT or RECOVERY record; %d bytes after the last "
                              "signed checkpoint are unsigned" % unsigned)
        elif recovered:
            signed = self.close.body[22]
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
                                      ": chunks " + _ranges(idx_recov) if idx_recov else ""))
        return "".join(marks)


def _ranges(xs):
    out, i = [], 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        out.append(str(xs[i]) if i == j else "%d-%d" % (xs[i], xs[j]))
        i = j + 1
    if len(out) > 8:
        out = out[:8] + ["…"]
    return ",".join(out)


# --- text output ----------------------------------------------------------------

def _marks_window(marks: str, width: int = 60) -> str:
    if len(marks) <= width:
        return marks
    bad = next((i for i, c in enumerate(marks) if c != "."), None)
    if bad is None or bad < width - 10:
        return marks[:width - 1] + "…"
    start = max(0, bad - 10)
    s = "…" + marks[start:start + width - 2]
    return s + "…" if start + width - 2 < len(marks) else s


def _workflow_lines(rep: Report) -> list:
    out = []
    for i in rep.interruptions:
        how = {"explained": "explained by voice annotation seq %s"
                            % ", ".join(map(str, i["annotations"])),
               "annotation_missing": "no voice annotation (seq %s ANNOTATION_MISSING)"
                                     % i["missing"],
               "unexplained": "never explained (the recorder restarted)",
               "waiting": "waiting for a voice annotation"}[i["status"]]
        out.append("interruption seq %d: %s%s; %s" % (
            i["seq"], i["reason"], "" if i["segment"] is None else " (segment %d)" % i["segment"],
            how))
    if rep.marks:
        kinds = {}
        for m in rep.marks:
            kinds.setdefault(m["kind"], []).append(str(m["seq"]))
        out.append("marks: " + "; ".join("%s seq %s" % (k, ", ".join(v))
                                         for k, v in sorted(kinds.items())))
    for t in rep.time_sets:
        if t["drift"] is not None:
            out.append("clock set at seq %d: drift %+d ms/day%s" % (
                t["seq"], t["drift"], " (flag DRIFT: beyond the limit)" if t["drift_flag"]
                else ""))
    for r in rep.releases:
        if r["valid"]:
            out.append("segment %d released against receipt %d (seq %d)"
                       % (r["segment"], r["number"], r["seq"]))
    return out


def _format_text(rep: Report, all_records: bool = False) -> str:
    out = ["store   %s" % rep.store]
    out.append("device  %s   key %s   origin %s" % (
        rep.device or "?", rep.fingerprint or "?",
        "checked (pinned key)" if rep.origin_checked else "NOT checked (no pinned key)"))
    chain = "none"
    if rep.record_count:
        chain = "%d records, seq 0..%d, in %d log file%s" % (
            rep.record_count, rep.chain_end, len(rep.log_files),
            "" if len(rep.log_files) == 1 else "s")
    out.append("chain   %s; head %s" % (chain, "seq %d (%s)" % (rep.head_seq, rep.head_file)
                                         if rep.head_seq is not None else "none"))
    out.append("")
    if rep.segments:
        out.append("%8s  %-22s %9s %7s  %-21s %s" % ("segment", "media", "MB", "chunks",
                                                     "verdict", "marks"))
        for s in rep.segments:
            mb = (s.file_size if s.file_size is not None else 0) / 1e6
            out.append("%8s  %-22s %9.2f %7d  %-21s %s" % (
                "-" if s.segment is None else s.segment, s.media, mb, s.chunks, s.verdict,
                _marks_window(s.marks)))
        legend = "marks: . verified  M mismatch  - missing  U unsigned (open)  " \
                 "R sealed at recovery"
        if any("X" in s.marks for s in rep.segments):
            legend += "  X released against a receipt"
        out.append(legend)
    else:
        out.append("no segments")
    rows = rep.records if all_records else [r for r in rep.records if r.verdict != OK]
    if rows:
        out.append("")
        out.append("records%s:" % ("" if all_records else " not OK"))
        for r in rows[:200]:
            out.append(("  seq %-6s %-26s %-18s %-21s %s" % (
                "-" if r.seq is None else r.seq, "%s@%d" % (r.file, r.offset),
                r.type or "-", r.verdict, "; ".join(x for x in (r.reason, r.info) if x)))
                .rstrip())
        if len(rows) > 200:
            out.append("  … and %d more" % (len(rows) - 200))
    wf = _workflow_lines(rep)
    if wf:
        out.append("")
        out.extend(wf)
    out.append("")
    out.append("VERDICT: %s" % rep.verdict)
    if rep.first_failure:
        f = rep.first_failure
        out.append("first failure: seq %s in %s%s" % (
            "-" if f["seq"] is None else f["seq"], f["file"] or "-",
            "@%d" % f["offset"] if f.get("offset") is not None else ""))
    for reason in rep.reasons:
        out.append("  - " + reason)
    for note in rep.notes:
        out.append("  note: " + note)
    out.append("key fingerprint: %s%s" % (rep.fingerprint or "unknown",
                                          "" if rep.origin_checked else
                                          " (compare it with the registered one)"))
    return "\n".join(out) + "\n"


# --- entry point ----------------------------------------------------------------

def verify_store(path, pinned_key=None, *, progress: bool | None = None) -> Report:
    """Verify the store at ``path`` (a directory: the SD card's root).

    ``pinned_key``: None (origin not checked), the raw 32-byte public key, an
    Ed25519PublicKey, or the path of a key file (see host_tools.keys).
    ``progress``: None = a tqdm bar on stderr when stderr is a TTY and there are at least
    32 MiB of media to hash; True/False = always/never.

    Raises FileNotFoundError / NotADirectoryError if ``path`` is not a directory, and
    OSError / keys.KeyFileError for an unreadable or invalid key file.
    """
    root = os.fspath(path)
    if not os.path.exists(root):
        raise FileNotFoundError("no such store: %s" % root)
    if not os.path.isdir(root):
        raise NotADirectoryError("not a directory: %s" % root)
    pinned = None
    if pinned_key is not None:
        if isinstance(pinned_key, (bytes, bytearray, memoryview)):
            pinned = bytes(pinned_key)
            if len(pinned) != 32:
                pinned = _keys.parse_public_key(pinned)
        elif isinstance(pinned_key, (str, os.PathLike)):
            pinned = _keys.load_public_key(pinned_key)
        else:
            pinned = _keys._raw(pinned_key)
    return _Verifier(root, pinned, progress).run()
