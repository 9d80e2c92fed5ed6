"""Read back the signed record a state-changing dock request names (SPEC §8.3, §8.7, §10.5).

Frames after AUTH carry no MAC: a keyless relay on the cable can rewrite a request
(ASSIGN's officer, TIME_SET's time) and the recorder's unsigned answer. It cannot forge a
record. So after TIME_SET, CHECK and ASSIGN the station GETs the record the answer names,
checks it is that recorder's (parsed strictly, signed by the registered key), of the right
type, fresh (after this session's TIME_SET) and says what was sent. Anything else raises
Tampered with one line for the user.

    pins = Pins.load(archive_dir, device_id)          # registered key, station fingerprint
    ts = read_time_set(c, pins, seq, sent_ms)          # the signed TIME_SET record
    rec = read_assign(c, pins, seq, officer, unit, after=ts)
    rec = read_self_check(c, pins, seq, ready, reasons, after=ts)

Residual risk (SPEC §8.3): a relay can still inject requests after the station's last
read-back, or cut the session; it is detected at the next offload (the ASSIGN and TIME_SET
records are in the chain), not in this one.
"""
from __future__ import annotations

import time

from cryptography.hazmat.primitives import serialization

from . import keys, records
from .archive import Archive
from .link import GET, LinkError
from .records import K, RecordError

__all__ = ["Tampered", "Pins", "read_time_set", "read_assign", "read_self_check",
           "Anchor", "RTC_SLACK_MS", "TAMPER_HINT"]

RTC_SLACK_MS = 5000     # how far a record's rtc may be from the time this station set
                        # plus the time elapsed since (link latency, the recorder's work)
TAMPER_HINT = "the link was tampered with (a relay?)"
SEQ_MAX = records.INT_MAX


class Tampered(Exception):
    """The recorder's signed record does not say what the station sent or was answered."""


class Pins:
    """What a read-back record is checked against: the registered device key and id, this
    station's key fingerprint (an ASSIGN record names the station that sent it)."""

    def __init__(self, device, pubkey, station_fp):
        self.device, self.pubkey, self.station_fp = device, bytes(pubkey), station_fp

    @classmethod
    def load(cls, archive_dir, device):
        with Archive(archive_dir) as a:
            row = a.device(device)
            sk = a.station_key()
        spub = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        return cls(device, row["pubkey"], keys.fingerprint(spub))


def _show(v, n=70):
    if v is None:
        return "none"
    if type(v) is int:
        return str(v) if -10 ** 30 < v < 10 ** 30 else "(a number of %d bits)" % v.bit_length()
    return records.printable(str(v))[:n]


def _get(c, pins, seq, rtype, what):
    """The record ``seq`` (named by the answer to ``what``), checked: well formed, this
    device's, signed by its registered key, of type ``rtype``. Raises Tampered."""
    tname = records.type_name(rtype)
    if type(seq) is not int or not 0 <= seq <= SEQ_MAX:
        raise Tampered("the recorder's answer to %s names no record (seq %s): %s"
                       % (what, _show(seq), TAMPER_HINT))
    try:
        data = c.request(GET, {1: seq}).get(1)
    except LinkError as e:
        raise Tampered("the record %s named (seq %d) cannot be read back (%s): %s"
                       % (what, seq, e, TAMPER_HINT)) from None
    if not isinstance(data, bytes):
        raise Tampered("GET seq %d (named by %s) returned no record: %s"
                       % (seq, what, TAMPER_HINT))
    try:
        rec = records.parse(data)
    except RecordError as e:
        raise Tampered("GET seq %d (named by %s) returned a malformed record (%s): %s"
                       % (seq, what, _show(e, 200), TAMPER_HINT)) from None
    if rec.seq != seq or rec.body.get(K.DEVICE) != pins.device:
        raise Tampered("GET seq %d returned seq %s of device %s: %s" % (
            seq, _show(rec.seq), _show(rec.body.get(K.DEVICE)), TAMPER_HINT))
    try:
        ok = records.check_signature(pins.pubkey, rec)
    except Exception:
        ok = False
    if not ok:
        raise Tampered("the record %s named (seq %d) is not signed by the registered key of "
                       "%s: %s" % (what, seq, pins.device, TAMPER_HINT))
    if rec.type != rtype:
        raise Tampered("the record %s named (seq %d) is a %s record, not %s: %s"
                       % (what, seq, rec.tname, tname, TAMPER_HINT))
    return rec


def read_time_set(c, pins, seq, sent_ms, answered_new):
    """The signed TIME_SET record ``seq``; its `new` (and its own rtc) must be ``sent_ms``,
    and so must the answer's `new`. Returns an Anchor (the record: ``.rec``)."""
    rec = _get(c, pins, seq, records.TIME_SET, "TIME_SET")
    new = rec.body.get(K.NEW)
    if new != sent_ms or rec.body.get(K.RTC) != sent_ms:
        raise Tampered("the recorder's signed TIME_SET record (seq %d) says new time %s ms, "
                       "not the %d ms sent: %s; its clock is wrong: set it on another cable "
                       "or station" % (seq, _show(new), sent_ms, TAMPER_HINT))
    if answered_new != sent_ms:
        raise Tampered("the recorder answered TIME_SET with new time %s, not the %d ms sent "
                       "(its signed record seq %d says %d): %s"
                       % (_show(answered_new), sent_ms, seq, new, TAMPER_HINT))
    return Anchor(rec, time.monotonic())


class Anchor:
    """This session's verified TIME_SET record and when it was checked (monotonic s): the
    later read-back records must come after it, their rtc within the time elapsed since."""

    def __init__(self, rec, t):
        self.rec, self.seq, self.new, self.t = rec, rec.seq, rec.body[K.NEW], t


def _fresh(rec, after, what):
    """``rec`` comes after the TIME_SET record ``after`` of this session, and its rtc is
    within the time elapsed since (plus slack)."""
    if rec.seq <= after.seq:
        raise Tampered("the recorder's %s record (seq %d) is older than this session's "
                       "TIME_SET (seq %d): an old record was named; %s"
                       % (what, rec.seq, after.seq, TAMPER_HINT))
    lo = after.new - RTC_SLACK_MS
    hi = after.new + int((time.monotonic() - after.t) * 1000) + RTC_SLACK_MS
    rtc = rec.body.get(K.RTC)
    if not (type(rtc) is int and lo <= rtc <= hi):
        raise Tampered("the recorder's %s record (seq %d) has rtc %s, not within this "
                       "session (%d..%d): %s" % (what, rec.seq, _show(rtc), lo, hi,
                                                 TAMPER_HINT))


def read_assign(c, pins, seq, officer, unit, after):
    """The signed ASSIGN record ``seq`` must name ``officer`` / ``unit`` (None: released)
    and this station, and follow the TIME_SET record ``after``. Returns the record."""
    rec = _get(c, pins, seq, records.ASSIGN, "ASSIGN")
    b = rec.body
    if b.get(K.OFFICER) != officer:
        raise Tampered("the recorder's signed ASSIGN record (seq %d) says officer %s, not %s: "
                       "%s" % (seq, _show(b.get(K.OFFICER)), _show(officer), TAMPER_HINT))
    if b.get(K.UNIT) != unit:
        raise Tampered("the recorder's signed ASSIGN record (seq %d) says unit %s, not %s: %s"
                       % (seq, _show(b.get(K.UNIT)), _show(unit), TAMPER_HINT))
    if b.get(K.STATION) != pins.station_fp:
        raise Tampered("the recorder's signed ASSIGN record (seq %d) names station %s, not this "
                       "one (%s): %s" % (seq, _show(b.get(K.STATION)), pins.station_fp,
                                         TAMPER_HINT))
    _fresh(rec, after, "ASSIGN")
    return rec


def read_self_check(c, pins, seq, ready, reasons, after):
    """The signed SELF_CHECK record ``seq`` must say what CHECK answered (``ready``,
    ``reasons``) and follow ``after``. Returns the record."""
    rec = _get(c, pins, seq, records.SELF_CHECK, "CHECK")
    b = rec.body
    if b.get(K.READY) is not ready or list(b.get(K.REASONS) or []) != list(reasons):
        raise Tampered("the recorder's signed SELF_CHECK record (seq %d) says %s, not the "
                       "answered %s: %s" % (
                           seq, "READY" if b.get(K.READY) else "NOT_READY (%s)" % ", ".join(
                               _show(x, 30) for x in (b.get(K.REASONS) or [])[:8]),
                           "READY" if ready else "NOT_READY", TAMPER_HINT))
    _fresh(rec, after, "SELF_CHECK")
    return rec
