"""The host's one record model (SPEC §2–§5, §10, schema.cddl).

API (used by the verifier, the station's offload and the report)::

    from host_tools import records as R

    rec = R.parse(data)          # one record (tagged COSE_Sign1 bytes), strictly decoded:
                                 # raises R.RecordError(message) if it is not a valid record
    rec.seq, rec.type, rec.body, rec.hash, rec.prev, rec.kid, rec.tname
    rec.body[R.K.MEDIA]          # named body keys (R.K.SEQ == 1, …); R.KEY_NAMES[11] == "media"
    R.check_signature(pub, rec)  # -> bool; pub: 32 raw bytes (small-order keys: ValueError)
    R.check_next(prev_seq, prev_hash, rec)   # -> None, or an error message: rec must be
                                 # seq prev_seq + 1 with prev == prev_hash (prev_seq None: seq 0)
    R.root_step(root, chunk_hash), R.chunk_root(hashes)   # chunk chain root (§4.2)
    R.media_path(seq, ext), R.media_name_error(seq, media), R.index_path(media)
    R.unsafe_path(rel)           # -> None, or why rel is not a safe path inside a store
    R.printable(s)               # control characters escaped, for any host output
    R.device_id_error(device)    # -> None, or why it is not a device id (fullmatch)

``decode(data, file, offset)`` is the non-raising form the verifier uses: it returns a
Record whose ``fatal`` (no usable body) or ``errors`` (body problems) say what is wrong.

Nothing from the firmware is imported: this is an independent reading of the format.
"""
from __future__ import annotations

import functools
import hashlib
import io
import re
from collections.abc import Mapping

import cbor2
from cryptography.exceptions import InvalidSignature

from . import keys as _keys

__all__ = ["RecordError", "Record", "K", "parse", "decode", "check_signature", "check_next",
           "root_step", "chunk_root", "media_path", "media_name_error", "index_path",
           "unsafe_path", "printable", "device_id_error", "has_control", "hostile_values",
           "INT_MAX", "INT_MIN", "DEVICE_ID_RE", "value_errors",
           "TYPE_NAMES", "KEY_NAMES", "ZERO", "firmware_text",
           "MAX_RECORD", "MAX_CHUNK", "MAX_CHUNKS"]

# record types (SPEC §3.2, §10)
(BOOT, REC_START, CHECKPOINT, SEGMENT, REC_STOP, REFUSAL, RECOVERY, RECEIPT, TIME_SET,
 INTERRUPTION, VOICE_ANNOTATION, ANNOTATION_MISSING, MARK, ASSIGN, SELF_CHECK, RELEASE,
 STORE_ALERT, FIRMWARE) = range(1, 19)
TYPE_NAMES = {BOOT: "BOOT", REC_START: "REC_START", CHECKPOINT: "CHECKPOINT",
              SEGMENT: "SEGMENT", REC_STOP: "REC_STOP", REFUSAL: "REFUSAL",
              RECOVERY: "RECOVERY", RECEIPT: "RECEIPT", TIME_SET: "TIME_SET",
              INTERRUPTION: "INTERRUPTION", VOICE_ANNOTATION: "VOICE_ANNOTATION",
              ANNOTATION_MISSING: "ANNOTATION_MISSING", MARK: "MARK", ASSIGN: "ASSIGN",
              SELF_CHECK: "SELF_CHECK", RELEASE: "RELEASE", STORE_ALERT: "STORE_ALERT",
              FIRMWARE: "FIRMWARE"}
MEDIA_TYPES = (REC_START, CHECKPOINT, SEGMENT, RECOVERY)
# flags (SPEC §3.4)
F_NO_OFFICER, F_RECOVERED, F_MISMATCH, F_DRIFT = 0x01, 0x02, 0x04, 0x08
MARK_KINDS = ("important", "notice_given", "bookmark")     # SPEC §10.4
ZERO = bytes(32)

# sanity caps on sizes read from a card (signed or not): a recorder never goes near them
MAX_RECORD = 64 << 10          # bytes of one record
MAX_CHUNK = 16 << 20           # a segment's chunk size (the device uses 64 KiB)
MAX_CHUNKS = 1 << 24           # chunks of one segment (1 TiB at 64 KiB chunks)


class K:
    """Body keys by name (SPEC §3.1): the same key means the same thing in every type."""
    TYPE, SEQ, PREV, DEVICE, RTC, MONO, BOOT, OFFICER, FW, FLAGS = range(10)
    SEGMENT, MEDIA, CHUNK, LENGTH, CHUNKS, ROOT, START, REASON, PUBKEY = range(10, 19)
    OP, TARGET, SOURCE, SIGNED, MIME, STATION, COVERED, RECEIPT, NUMBER = range(19, 28)
    OLD, NEW, UNIT, REFERS, SPAN, KIND, AT, DURATION, READY, REASONS = range(28, 38)
    FACTS, DRIFT, SINCE, PRERECORD, PHRASE, ERROR, COUNT = range(38, 45)
    FIRMWARE, VERSION, FILES, CHANGED = range(45, 49)   # FIRMWARE records (SPEC §13.2)


KEY_NAMES = {v: n.lower() for n, v in vars(K).items() if n.isupper()}


class RecordError(ValueError):
    """The bytes are not a valid record; the message says what is wrong."""


def H(b) -> bytes:
    return hashlib.sha256(b).digest()


def enc(x) -> bytes:
    """Deterministic CBOR (SPEC §1)."""
    return cbor2.dumps(x, canonical=True)


# --- body schema (schema.cddl) ----------------------------------------------------------

#: the largest integer a record body may hold (SPEC §3.1): the archive indexes them as
#: SQLite int64, so a larger one (a CBOR uint up to 2^64-1, or a bignum) is NOT_OK
INT_MAX = (1 << 63) - 1
INT_MIN = -(1 << 63)


def _uint(x):
    return type(x) is int and 0 <= x <= INT_MAX


def _int(x):
    return type(x) is int and INT_MIN <= x <= INT_MAX


_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


def has_control(s) -> bool:
    """True if ``s`` holds a control character (C0, DEL or C1): the firmware never writes
    one in a record (it refuses such a name, writes '?' in a REFUSAL target), SPEC §3.1."""
    return _CONTROL_RE.search(s) is not None


def hostile_values(body, text=True):
    """None if every integer in ``body`` (keys and values, at any depth) is within int64
    and (``text``) every text string is free of control characters; else what is wrong
    (SPEC §3.1). Iterative: a deeply nested body cannot exhaust the stack."""
    stack, n = [body], 0
    while stack:
        x = stack.pop()
        n += 1
        if n > 100_000:
            return "body has too many items"
        t = type(x)
        if t is int:
            if not INT_MIN <= x <= INT_MAX:
                return "body holds an integer beyond 64 bits (at most 2^63-1, SPEC §3.1)"
        elif t is str:
            if text and _CONTROL_RE.search(x):
                return "body holds text with a control character: \"%s\" (SPEC §3.1)" \
                    % printable(x[:80])
        elif isinstance(x, Mapping):
            for k, v in x.items():
                stack.append(k)
                stack.append(v)
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, cbor2.CBORTag):
            if not 0 <= x.tag <= INT_MAX:
                return "body holds a CBOR tag beyond 64 bits"
            stack.append(x.value)
    return None


def _tstr(x):
    return type(x) is str


def _bool(x):
    return type(x) is bool


def _hash(x):
    return type(x) is bytes and len(x) == 32


def _officer(x):
    return x is None or type(x) is str


def _uints(n):
    def check(x):
        return isinstance(x, (list, tuple)) and len(x) == n and all(_uint(v) for v in x)
    return check


def _tstrs(x):
    return isinstance(x, (list, tuple)) and all(_tstr(v) for v in x)


def _facts(x):
    return isinstance(x, Mapping) and all(_uint(k) and _int(v) for k, v in x.items())


def _head_ref(x):
    """[seq, hash] (STORE_ALERT old / new)."""
    return isinstance(x, (list, tuple)) and len(x) == 2 and _uint(x[0]) and _hash(x[1])


is_uint, is_hash = _uint, _hash       # for the other modules of the host

_stamp = _uints(2)        # start: [rtc, mono]
_position = _uints(3)     # at: [segment, chunk, offset]
_span = _uints(5)         # span: [segment, chunk, offset, chunk, offset]

_COMMON = {K.SEQ: _uint, K.PREV: _hash, K.DEVICE: _tstr, K.RTC: _uint, K.MONO: _uint,
           K.BOOT: _uint, K.OFFICER: _officer, K.FW: _tstr}
#: keys any record MAY carry: flags, and the officer's unit (SPEC §10.5)
_ANY = {K.FLAGS: _uint, K.UNIT: _tstr}
_PROGRESS = {K.LENGTH: _uint, K.CHUNKS: _uint, K.ROOT: _hash}
#: required keys of each record type (SPEC §3, §8.6, §8.7, §10)
SCHEMA = {
    BOOT: {K.REASON: _tstr, K.PUBKEY: _hash},
    REC_START: {K.SEGMENT: _uint, K.MEDIA: _tstr, K.CHUNK: _uint, K.REASON: _tstr,
                K.MIME: _tstr},
    CHECKPOINT: {K.SEGMENT: _uint, **_PROGRESS},
    SEGMENT: {K.SEGMENT: _uint, **_PROGRESS, K.START: _stamp},
    REC_STOP: {K.SEGMENT: _uint, K.REASON: _tstr},
    REFUSAL: {K.REASON: _tstr, K.OP: _tstr, K.TARGET: _tstr, K.SOURCE: _tstr},
    RECOVERY: {K.SEGMENT: _uint, **_PROGRESS, K.START: _stamp, K.REASON: _tstr,
               K.SIGNED: _uint},
    RECEIPT: {K.STATION: _tstr, K.COVERED: _uint, K.RECEIPT: _hash, K.NUMBER: _uint},
    TIME_SET: {K.OLD: _uint, K.NEW: _uint},
    INTERRUPTION: {K.REASON: _tstr},
    VOICE_ANNOTATION: {K.REFERS: _uint, K.SPAN: _span, K.DURATION: _uint},
    ANNOTATION_MISSING: {K.REFERS: _uint, K.DURATION: _uint},
    MARK: {K.KIND: _tstr},
    ASSIGN: {K.STATION: _tstr},
    SELF_CHECK: {K.READY: _bool, K.REASONS: _tstrs, K.FACTS: _facts},
    RELEASE: {K.SEGMENT: _uint, K.MEDIA: _tstr, K.LENGTH: _uint, K.NUMBER: _uint},
    STORE_ALERT: {K.KIND: _tstr, K.OLD: _head_ref,                    # SPEC §3.2, §5.2
                  K.NEW: lambda x: x is None or _head_ref(x)},
    FIRMWARE: {K.FIRMWARE: lambda x: x is None or _hash(x)},       # SPEC §13.2
}
#: optional keys of each record type (besides _ANY)
OPTIONAL = {
    REC_START: {K.PRERECORD: _uint},
    REFUSAL: {K.COUNT: _uint},                                 # count of a coalesced burst
    TIME_SET: {K.DRIFT: _int, K.SINCE: _uint, K.ERROR: _int},
    INTERRUPTION: {K.SEGMENT: _uint, K.REFERS: _uint, K.AT: _position},
    MARK: {K.AT: _position, K.PHRASE: _bool},
    FIRMWARE: {K.VERSION: _tstr, K.FILES: _uint, K.REASON: _tstr, K.CHANGED: _tstrs},
}
#: FIRMWARE reasons: no manifest on the recorder's flash, one it could not read, files that
#: differ from it
FIRMWARE_REASONS = ("unmanaged", "bad_manifest", "modified")


def keyname(k):
    return "%s (%s)" % (k, KEY_NAMES[k]) if k in KEY_NAMES else repr(k)


def type_name(t):
    return None if t is None else TYPE_NAMES.get(t, "UNKNOWN(%d)" % t)


# --- one record -----------------------------------------------------------------------

class Record:
    """One record as read: ``fatal`` (str) when the bytes have no usable body, ``errors``
    (list of str) for what is wrong with a body that decoded."""
    __slots__ = ("file", "offset", "data", "hash", "body", "seq", "type", "kid", "protected",
                 "payload", "sig", "fatal", "errors", "sig_ok", "schema_ok", "row", "info")

    def __init__(self, data, file=None, offset=0):
        self.file, self.offset, self.data = file, offset, data
        self.hash = H(data)
        self.body = self.seq = self.type = self.kid = None
        self.protected = self.payload = self.sig = None
        self.fatal = None
        self.errors = []
        self.sig_ok = False
        self.schema_ok = False    # type known, every key present with the right type
        self.row = None
        self.info = ""

    @property
    def prev(self):
        return None if self.body is None else self.body.get(K.PREV)

    @property
    def where(self):
        return "%s@%d" % (self.file, self.offset)

    @property
    def tname(self):
        return type_name(self.type)


def decode_item(data: bytes, pos=0):
    """(item, end) of the CBOR item at ``pos`` of ``data`` (cbor2 errors propagate)."""
    bio = io.BytesIO(data)
    bio.seek(pos)
    item = cbor2.CBORDecoder(bio).decode()
    return item, bio.tell()


def decode(data: bytes, file=None, offset=0, item=None, trusted_upto=-1) -> Record:
    """A Record from its bytes (``item``: the already decoded CBOR item); never raises.

    ``trusted_upto``: a record whose seq is at most this was verified before (the caller
    checks that its hash chain reaches a trusted hash): it is only unpacked, without the
    encoding and schema checks (a few microseconds instead of some fifty)."""
    rec = Record(bytes(data), file, offset)
    if item is None:
        try:
            if len(rec.data) > MAX_RECORD:
                raise RecordError("record of %d bytes, more than the %d a record may have"
                                  % (len(rec.data), MAX_RECORD))
            item, end = decode_item(rec.data)
            if end != len(rec.data):
                raise RecordError("trailing bytes after the record")
        except RecordError as e:
            rec.fatal = str(e)
            return rec
        except Exception:
            rec.fatal = "not CBOR"
            return rec
    if trusted_upto >= 0 and _fill_trusted(rec, item, trusted_upto):
        return rec
    _fill(rec, item)
    return rec


def _fill_trusted(rec: Record, item, upto) -> bool:
    """Unpack a record of the trusted prefix; False (nothing set) if it is not one."""
    try:
        prot, _, payload, sig = item.value
        body = cbor2.loads(payload)
        seq, t = body[K.SEQ], body[K.TYPE]
        if type(seq) is not int or not 0 <= seq <= upto or type(t) is not int \
                or not 0 <= t <= INT_MAX:
            return False
        kid = cbor2.loads(prot)[4]
        if hostile_values(body) is not None:    # stored before the bound (SPEC §3.1)
            return False
    except Exception:
        return False
    rec.protected, rec.payload, rec.sig, rec.kid, rec.body = prot, payload, sig, kid, body
    rec.seq, rec.type = seq, t
    rec.schema_ok = t in SCHEMA
    return True


def _fill(rec: Record, item):
    try:
        if not (isinstance(item, cbor2.CBORTag) and item.tag == 18):
            raise RecordError("not a tagged COSE_Sign1 (CBOR tag 18)")
        v = item.value
        if not (isinstance(v, (list, tuple)) and len(v) == 4):
            raise RecordError("COSE_Sign1 is not a 4-element array")
        prot, unprot, payload, sig = v
        if type(prot) is not bytes:
            raise RecordError("protected header is not a byte string")
        try:
            ph = cbor2.loads(prot)
        except Exception:
            raise RecordError("protected header is not CBOR") from None
        if not (isinstance(ph, Mapping) and set(ph) == {1, 4} and type(ph[1]) is int
                and ph[1] == -8 and type(ph[4]) is bytes):
            raise RecordError("protected header is not {1: -8 (EdDSA), 4: kid}")
        if enc(ph) != prot:
            raise RecordError("protected header is not deterministic CBOR")
        if not isinstance(unprot, Mapping) or len(unprot):
            raise RecordError("unprotected header is not empty")
        if type(payload) is not bytes:
            raise RecordError("payload is not a byte string")
        if type(sig) is not bytes or len(sig) != 64:
            raise RecordError("signature is not a 64-byte string")
        try:
            body = cbor2.loads(payload)
        except Exception:
            raise RecordError("payload is not CBOR") from None
        if not isinstance(body, Mapping):
            raise RecordError("payload is not a CBOR map")
        bad = hostile_values(body, text=False)    # past int64: no value of it is used
        if bad:
            raise RecordError(bad)
        try:
            canon = enc(body) == payload
        except Exception:
            canon = False
        if not canon:
            raise RecordError("payload is not deterministic CBOR")
        for k, check in _COMMON.items():
            if k not in body:
                raise RecordError("body lacks key %s" % keyname(k))
            if not check(body[k]):
                raise RecordError("body key %s has the wrong type" % keyname(k))
        if not _uint(body.get(K.TYPE)):
            raise RecordError("body has no record type (key 0)")
    except RecordError as e:
        rec.fatal = str(e)
        return
    rec.protected, rec.payload, rec.sig, rec.kid, rec.body = prot, payload, sig, ph[4], body
    rec.seq, rec.type = body[K.SEQ], body[K.TYPE]
    try:
        if enc(item) != rec.data:
            rec.errors.append("record is not deterministic CBOR")
    except Exception:
        rec.errors.append("record is not deterministic CBOR")
    schema = SCHEMA.get(rec.type)
    if schema is None:
        rec.errors.append("unknown record type %d" % rec.type)
        return
    optional = {**_ANY, **OPTIONAL.get(rec.type, {})}
    allowed = set(_COMMON) | set(schema) | set(optional) | {0}
    n = len(rec.errors)
    for k, check in schema.items():
        if k not in body:
            rec.errors.append("%s body lacks key %s" % (rec.tname, keyname(k)))
        elif not check(body[k]):
            rec.errors.append("%s body key %s has the wrong type" % (rec.tname, keyname(k)))
    for k, check in optional.items():
        if k in body and not check(body[k]):
            rec.errors.append("body key %s has the wrong type" % keyname(k))
    rec.schema_ok = len(rec.errors) == n
    extra = [k for k in body if k not in allowed]
    if extra:
        rec.errors.append("%s body has unexpected keys %s" % (
            rec.tname, ", ".join(keyname(k) for k in extra)))
    if rec.schema_ok:
        errs = value_errors(rec)
        if errs:                 # a body that contradicts itself is not used by other checks
            rec.errors.extend(errs)
            rec.schema_ok = False
    bad = hostile_values(body)   # text with a control character (SPEC §3.1): named, NOT_OK
    if bad:
        rec.errors.append(bad)
        rec.schema_ok = False


def parse(data: bytes) -> Record:
    """One record, strictly: raises RecordError unless ``data`` is exactly one well-formed,
    deterministically encoded record of a known type whose body is valid on its own (its
    signature and place in the chain are checked by check_signature and check_next)."""
    rec = decode(data)
    if rec.fatal is not None:
        raise RecordError(rec.fatal)
    if rec.errors:
        raise RecordError("seq %d (%s): %s" % (rec.seq, rec.tname, "; ".join(rec.errors)))
    return rec


# --- signatures and the chain -------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def _pubkey(raw: bytes):
    return _keys.public_key_object(raw)


def signed_bytes(rec: Record) -> bytes:
    return enc(["Signature1", rec.protected, b"", rec.payload])


def check_signature(pub, rec: Record) -> bool:
    """True if ``rec`` (decoded, no fatal error) is signed by ``pub`` (32 raw bytes or an
    Ed25519PublicKey). A small-order or non-canonical key raises keys.WeakKeyError."""
    if rec.sig is None:
        return False
    key = _pubkey(bytes(pub)) if isinstance(pub, (bytes, bytearray)) else pub
    try:
        key.verify(rec.sig, signed_bytes(rec))
        return True
    except InvalidSignature:
        return False


def check_next(prev_seq, prev_hash, rec: Record):
    """None if ``rec`` follows the record (prev_seq, prev_hash) in the chain (prev_seq None:
    rec must be seq 0 with prev = 32 zero bytes); else the error message."""
    if rec.body is None:
        return "not a record: %s" % (rec.fatal or "no body")
    want = 0 if prev_seq is None else prev_seq + 1
    if rec.seq != want:
        return "seq %d where seq %d was expected%s" % (
            rec.seq, want, "" if prev_seq is None else " (after seq %d)" % prev_seq)
    if prev_seq is None:
        if rec.prev != ZERO:
            return "prev of seq 0 is not 32 zero bytes"
    elif rec.prev != prev_hash:
        return "prev of seq %d does not match H(seq %d)" % (rec.seq, prev_seq)
    return None


# --- media --------------------------------------------------------------------------------

def root_step(root: bytes, chunk_hash: bytes) -> bytes:
    """root(i+1) = H(root(i) || H(chunk i)) (SPEC §4.2)."""
    return H(root + chunk_hash)


def chunk_root(hashes, root=ZERO) -> bytes:
    for h in hashes:
        root = H(root + h)
    return root


_EXT_RE = re.compile(r"[a-z0-9]{1,8}")
#: a device id (SPEC §2.1): letters, digits, '.', '_', '-', at most 64, not starting with
#: a punctuation mark (fullmatch: a trailing newline is not allowed)
DEVICE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def device_id_error(device) -> str | None:
    """None if ``device`` is a valid device id; else why not."""
    if type(device) is not str or not DEVICE_ID_RE.fullmatch(device):
        return "device id %s is not a device id (1-64 letters, digits, '.', '_' or '-', " \
               "starting with a letter or digit)" % printable(repr(device))
    return None


def media_path(seq: int, ext: str = "mkv") -> str:
    """The media file of the segment whose REC_START is ``seq`` (SPEC §4.1): m/S.ext."""
    return "m/%08d.%s" % (seq, ext)


def index_path(media: str) -> str:
    """The chunk index beside a media file: m/S.idx."""
    dot = media.rfind(".")
    return (media[:dot] if dot > media.rfind("/") else media) + ".idx"


def media_name_error(seq: int, media) -> str | None:
    """None if ``media`` is the name SPEC §4.1 derives from the segment's seq (m/S.ext, S
    the seq as 8 or more decimal digits, ext 1-8 lowercase letters or digits); else why."""
    bad = unsafe_path(media)
    if bad:
        return bad
    want = "m/%08d." % seq
    if not media.startswith(want) or not _EXT_RE.fullmatch(media[len(want):]) \
            or media[len(want):] == "idx":
        return "media path %s is not the one its seq gives (%sEXT)" % (printable(media), want)
    return None


def unsafe_path(rel) -> str | None:
    """None if ``rel`` is a safe relative path inside a store ("m/00000002.mkv"); else why:
    empty, absolute, '..', backslash, colon, NUL or another control character."""
    if type(rel) is not str or not rel:
        return "path %r is empty or not text" % (rel,)
    if any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in rel):
        return "path %s holds control characters" % printable(rel)
    if rel.startswith("/") or "\\" in rel or ":" in rel or \
            any(p in ("", ".", "..") for p in rel.split("/")):
        return "path %s is not inside the store" % printable(rel)
    return None


# --- what a record's own body contradicts ---------------------------------------------------

def firmware_text(rec: Record) -> str:
    """One line on a FIRMWARE record (SPEC §13.2), for verify's notes and the report."""
    b = rec.body
    if b.get(K.REASON) == "modified":
        ch = b.get(K.CHANGED) or []
        return ("FIRMWARE seq %d: WARNING: files of firmware %s (id %s) differ from its "
                "manifest (%s): code that `sealcam flash` did not install made the records "
                "from here; have a technician check the recorder (`sealcam flash --check`) "
                "and flash it" % (rec.seq, printable(b[K.VERSION]), b[K.FIRMWARE].hex()[:16],
                                  printable(", ".join(str(c) for c in ch[:8]))))
    if K.VERSION in b:
        return ("FIRMWARE seq %d: from here the recorder runs firmware %s (id %s, %d files, "
                "installed with `sealcam flash`)" % (rec.seq, printable(b[K.VERSION]),
                                                    b[K.FIRMWARE].hex()[:16], b[K.FILES]))
    if b[K.FIRMWARE] is None and K.VERSION not in b:
        return ("FIRMWARE seq %d: the recorder's firmware has no manifest (not installed with "
                "`sealcam flash`): which firmware made the records after it is not recorded; "
                "have a technician flash it" % rec.seq)
    return ("FIRMWARE seq %d: the recorder could not read its firmware manifest (id %s): "
            "have a technician flash it again with `sealcam flash`"
            % (rec.seq, b[K.FIRMWARE].hex()[:16]))


def value_errors(rec: Record) -> list:
    """What a record's own body contradicts (SPEC §3.1, §10); needs no other record."""
    b, t, errs = rec.body, rec.type, []
    e = device_id_error(b[K.DEVICE])
    if e:
        errs.append(e)
    if K.UNIT in b and b[K.OFFICER] is None:
        errs.append("unit (key 30) %s without an officer (key 7 is null)" % printable(b[K.UNIT]))
    if t == REC_START:
        if b[K.CHUNK] == 0 or b[K.CHUNK] > MAX_CHUNK:
            errs.append("REC_START chunk size %d is not 1..%d" % (b[K.CHUNK], MAX_CHUNK))
        e = media_name_error(rec.seq, b[K.MEDIA])
        if e:
            errs.append("REC_START " + e)
    elif t in (CHECKPOINT, SEGMENT, RECOVERY):
        if b[K.CHUNKS] > MAX_CHUNKS:
            errs.append("%s claims %d chunks, more than the %d a segment may have"
                        % (rec.tname, b[K.CHUNKS], MAX_CHUNKS))
        elif b[K.LENGTH] > b[K.CHUNKS] * MAX_CHUNK:
            errs.append("%s length %d does not fit %d chunks"
                        % (rec.tname, b[K.LENGTH], b[K.CHUNKS]))
    elif t == MARK:
        if b[K.KIND] not in MARK_KINDS:
            errs.append("MARK kind %s is not one of %s" % (printable(repr(b[K.KIND])),
                                                            ", ".join(MARK_KINDS)))
        elif K.PHRASE in b and b[K.KIND] != "notice_given":
            errs.append("phrase (key 42) on a MARK %r: only notice_given carries it" % b[K.KIND])
    elif t == INTERRUPTION:
        if K.REFERS in b and b[K.REASON] != "power_loss":
            errs.append("refers (key 31) on an INTERRUPTION with reason %s: only power_loss "
                        "refers to a RECOVERY" % printable(repr(b[K.REASON])))
        if K.AT in b and K.SEGMENT in b and b[K.AT][0] != b[K.SEGMENT]:
            errs.append("INTERRUPTION at (key 34) is in segment %d, but its segment (key 10) is "
                        "%d" % (b[K.AT][0], b[K.SEGMENT]))
    elif t == SELF_CHECK:
        if b[K.READY] and b[K.REASONS]:
            errs.append("SELF_CHECK is READY but gives NOT_READY reasons %s"
                        % printable(", ".join(b[K.REASONS])))
        elif not b[K.READY] and not b[K.REASONS]:
            errs.append("SELF_CHECK is NOT_READY but gives no reason")
    elif t == TIME_SET:
        have = [k for k in (39, 40, 43) if k in b]
        if have and len(have) != 3:
            errs.append("TIME_SET carries %s without the rest of drift (39), since (40) and "
                        "error (43)" % ", ".join("key %d" % k for k in have))
        elif have:
            since, drift, err = b[K.SINCE], b[K.DRIFT], b[K.ERROR]
            if since == 0:
                errs.append("TIME_SET measures a drift over since = 0 ms")
            else:
                # |drift - error·86,400,000/since| <= 1, in integers (any size, no float)
                if abs(drift * since - err * 86_400_000) > since:
                    try:
                        want = "%.1f" % (err * 86_400_000 / since)
                    except OverflowError:
                        want = "%d" % (err * 86_400_000 // since)
                    errs.append("TIME_SET drift %d ms/day does not match error x "
                                "86,400,000 / since = %s" % (drift, want))
    elif t == STORE_ALERT:
        if b[K.KIND] != "head_back":
            errs.append("STORE_ALERT kind %s is not head_back" % printable(repr(b[K.KIND])))
        if b[K.OLD][0] >= rec.seq:
            errs.append("STORE_ALERT remembers head seq %d, not before its own seq %d"
                        % (b[K.OLD][0], rec.seq))
    elif t == FIRMWARE:          # SPEC §13.2: a manifest read, or a reason why none was
        why, fid = b.get(K.REASON), b[K.FIRMWARE]
        read = K.VERSION in b and K.FILES in b and fid is not None
        if read and why is None and K.CHANGED not in b:
            pass                                   # the firmware its manifest names
        elif read and why == "modified" and b.get(K.CHANGED):
            pass                                   # files that differ from the manifest
        elif K.VERSION in b or K.FILES in b or K.CHANGED in b or not (
                (why == "unmanaged" and fid is None)
                or (why == "bad_manifest" and fid is not None)):
            errs.append("FIRMWARE is none of: a manifest's version and files; the same "
                        "with reason modified and the paths changed; reason unmanaged with "
                        "a null id; reason bad_manifest (SPEC §13.2)")
    return errs


# --- output ----------------------------------------------------------------------------

_CTRL = {i: "\\x%02x" % i for i in list(range(0x20)) + list(range(0x7f, 0xa0))}
_CTRL.update({0x09: "\\t", 0x0a: "\\n", 0x0d: "\\r", ord("\\"): "\\\\"})
# bidirectional overrides and isolates, line/paragraph separators: shown, not obeyed
_CTRL.update({c: "\\u%04x" % c for c in (0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d,
                                         0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x200e,
                                         0x200f, 0x061c, 0xfeff)})


_CTRL_NB = dict(_CTRL)
del _CTRL_NB[ord("\\")]


def printable(s, backslash=True) -> str:
    """``s`` with control characters (C0, DEL, C1), bidi controls and backslashes escaped
    (\\x1b, \\n, \\u202e, \\\\), so a string read from a card or an archive can never drive
    a terminal or forge a line of output. Bytes are shown as text with undecodable bytes
    escaped; other values via str(). ``backslash=False`` leaves backslashes as they are
    (for text that is already made of escaped parts, such as repr() output)."""
    if isinstance(s, (bytes, bytearray)):
        s = bytes(s).decode("utf-8", "backslashreplace")
    elif not isinstance(s, str):
        s = str(s)
    return s.translate(_CTRL if backslash else _CTRL_NB)
