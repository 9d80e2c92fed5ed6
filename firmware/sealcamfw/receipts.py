# Custody receipts on the device side of the link (protocol/SPEC.md §8.6, §10.8): RECEIPT
# checks a station's COSE_Sign1 receipt (a trusted station, this device, a number above
# the last one, the hash of the record it covers) and has the store write the RECEIPT
# record. The last accepted receipt is in internal flash, receipts.cbor ({1: number,
# 2: H(receipt), 3: covered seq}), a small file of flashkv.py (replaced whole: a .new
# file, then replace; a .new file that a cut left behind is read too).
import hashlib

from sealcamfw import auth
from sealcamfw import cbor
from sealcamfw import cose
from sealcamfw import devkey
from sealcamfw import ed25519
from sealcamfw import flashkv
from sealcamfw import linkrec
from sealcamfw.linkproto import (BAD_REQUEST, FORBIDDEN, RECEIPT_MAX, REPLAY, LinkError, bstr)

RECEIPTS = "receipts.cbor"
RECEIPTS_NEW = "receipts.new"


def load_state(flash):
    """{1: number, 2: H(receipt), 3: covered seq} of the last accepted receipt ({} if
    none; files written before key 3 existed lack it). The higher number of receipts.cbor
    and a receipts.new a cut left wins (not just the first readable one, as flashkv.read
    takes): a number once written is never offered again."""
    best = {}
    for name in (RECEIPTS, RECEIPTS_NEW):
        v = flashkv.read(flash, name)
        if type(v) is dict and type(v.get(1)) is int and v[1] > best.get(1, -1):
            best = v
    return best


def accept(lnk, args):
    """The RECEIPT op: {1: seq of the RECEIPT record}; lnk.receipts is the new state."""
    r = bstr(args, 1, "RECEIPT", "receipt")
    if len(r) > RECEIPT_MAX:
        raise LinkError(BAD_REQUEST, "RECEIPT: %d bytes is not a receipt (at most %d)"
                        % (len(r), RECEIPT_MAX))
    try:
        prot, kid, payload, sig = cose.parse1(r)
        station = kid.decode() if type(kid) is bytes else None
    except Exception as e:
        raise LinkError(BAD_REQUEST, "RECEIPT: not a COSE_Sign1 receipt (%s)" % e)
    if not station:
        raise LinkError(BAD_REQUEST, "RECEIPT: the receipt names no station (kid, label 4 "
                        "of the protected header)")
    key = None
    for k in auth.load_trusted(lnk.hal.flash):
        if devkey.fingerprint(k) == station:
            key = k
            break
    if key is None:
        raise LinkError(FORBIDDEN, "RECEIPT: signed by station %s, which this device does "
                        "not trust" % station[:48])
    if not ed25519.verify(key, cose.sig_structure(prot, payload), sig):
        raise LinkError(FORBIDDEN, "RECEIPT: the signature of station %s does not verify"
                        % station)
    try:
        body = cbor.loads(payload)
    except Exception as e:
        raise LinkError(BAD_REQUEST, "RECEIPT: the receipt body is not CBOR (%s)" % e)
    if type(body) is not dict:
        raise LinkError(BAD_REQUEST, "RECEIPT: the receipt body is not a map")
    for k, t, what in ((1, str, "device id"), (2, int, "covered seq"), (3, bytes, "hash"),
                       (4, int, "number"), (5, int, "rtc"), (6, str, "archive id")):
        v = body.get(k)
        if type(v) is not t or (t is int and v < 0) or (t is bytes and len(v) != 32):
            raise LinkError(BAD_REQUEST, "RECEIPT: receipt field %d (%s) is missing or of "
                            "the wrong type" % (k, what))
    s = lnk.store
    if body[1] != s.device:
        raise LinkError(FORBIDDEN, "RECEIPT: the receipt is for device %s, this is %s"
                        % (body[1][:48], s.device))
    number = body[4]
    last = lnk.last_receipt
    if number <= last:
        raise LinkError(REPLAY, "RECEIPT number %d: not greater than the last accepted "
                        "receipt's (%d)" % (number, last))
    covered = body[2]
    rec = linkrec.record(lnk, covered, "RECEIPT covering seq %d" % covered)
    if hashlib.sha256(rec).digest() != body[3]:
        raise LinkError(FORBIDDEN, "RECEIPT: record %d on this device does not have the hash "
                        "the receipt names (the station holds another record %d)"
                        % (covered, covered))
    rh = hashlib.sha256(r).digest()
    flash = lnk.hal.flash
    old = lnk.receipts
    new = {1: number, 2: rh, 3: covered}
    # the number first: once written it is never accepted again, whatever happens next
    flashkv.write(flash, RECEIPTS, new)
    seq0 = s.seq
    try:
        s.receipt(station, covered, rh, number)
    except Exception:
        if s.seq == seq0:  # no record: give the number back
            try:
                flashkv.write(flash, RECEIPTS, old)
            except Exception:
                pass
        else:              # the record is there, only what followed it failed
            lnk.receipts = new
        raise
    lnk.receipts = new
    return {1: s.seq - 1}
