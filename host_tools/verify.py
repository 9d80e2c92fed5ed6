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
TYPE_NAMES = {BOOT: "BOOT", REC_START: "REC_START", CHECKPOINT: "CHECKPOINT",
              SEGMENT: "SEGMENT", REC_STOP: "REC_STOP", REFUSAL: "REFUSAL",
              RECOVERY: "RECOVERY", RECEIPT: "RECEIPT", TIME_SET: "TIME_SET"}
F_RECOVERED, F_MISMATCH = 0x02, 0x04
ZERO = bytes(32)
KEY_NAMES = {0: "type", 1: "seq", 2: "prev", 3: "device", 4: "rtc", 5: "mono", 6: "boot",
             7: "officer", 8: "fw", 9: "flags", 10: "segment", 11: "media", 12: "chunk",
             13: "length", 14: "chunks", 15: "root", 16: "start", 17: "reason",
             18: "pubkey", 19: "op", 20: "target", 21: "source", 22: "signed", 23: "mime",
             24: "station", 25: "covered", 26: "receipt", 27: "number", 28: "old", 29: "new"}
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


_COMMON = {1: _uint, 2: _hash, 3: _tstr, 4: _uint, 5: _uint, 6: _uint, 7: _officer, 8: _tstr}
_PROGRESS = {13: _uint, 14: _uint, 15: _hash}
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
    marks: str               # one character per chunk: . M - U R (SPEC §6)
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
                 "payload", "sig", "fatal", "errors", "sig_ok", "schema_ok", "row")

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
    allowed = set(_COMMON) | set(schema) | {0, 9}
    n = len(rec.errors)
    for k, check in schema.items():
        if k not in body:
            rec.errors.append("%s body lacks key %s" % (rec.tname, _keyname(k)))
        elif not check(body[k]):
            rec.errors.append("%s body key %s has the wrong type" % (rec.tname, _keyname(k)))
    if 9 in body and not _uint(body[9]):
        rec.errors.append("body key 9 (flags) has the wrong type")
    rec.schema_ok = len(rec.errors) == n
    extra = [k for k in body if k not in allowed]
    if extra:
        rec.errors.append("%s body has unexpected keys %s" % (
            rec.tname, ", ".join(_keyname(k) for k in extra)))


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
        self.starts, self.members = starts, members

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
        if self.path is not None and C > 0:
            try:
                file_size = os.path.getsize(self.path)
            except FileNotFoundError:
                if self.cover_len > 0:
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
        marks = self._marks(hashes, file_size) if C > 0 else ""
        row.marks, row.chunks = marks, len(marks)
        if self.errors:
            row.verdict = NOT_OK
            parts = [e[0] for e in self.errors]
        else:
            parts = []
            if self.infos:
                row.verdict = OK_WITH_MISSING_INFO
                parts = list(self.infos)
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
        out.append("marks: . verified  M mismatch  - missing  U unsigned (open)  "
                   "R sealed at recovery")
    else:
        out.append("no segments")
    rows = rep.records if all_records else [r for r in rep.records if r.verdict != OK]
    if rows:
        out.append("")
        out.append("records%s:" % ("" if all_records else " not OK"))
        for r in rows[:200]:
            out.append("  seq %-6s %-26s %-11s %-21s %s" % (
                "-" if r.seq is None else r.seq, "%s@%d" % (r.file, r.offset),
                r.type or "-", r.verdict, r.reason))
        if len(rows) > 200:
            out.append("  … and %d more" % (len(rows) - 200))
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
