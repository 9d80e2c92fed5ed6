# The recorder's memory of its last head, in internal flash (protocol/SPEC.md §5.2).
#
# lasthead.cbor = {1: seq, 2: H(record), 3: log file, 4: offset, 5: size} of a record the
# device wrote. It is written (flashkv: replaced whole) for BOOT, SEGMENT, RECOVERY,
# RECEIPT and STORE_ALERT records, and otherwise for the first record at least
# `head_remember_s` (default 300 s) after the last one remembered: a few flash writes an
# hour while recording (one per segment and one per interval), not one per record (the
# card's head.cbor is written after every record, every checkpoint_s while recording).
#
# At boot (check()): a card whose chain ends before the remembered seq, or holds another
# record at it, went back: kind "head_back". A card whose last record is not this
# device's (another device id, or a signature this device's key did not make) is
# "foreign_card".
import hashlib

from sealcamfw import cbor
from sealcamfw import cose
from sealcamfw import ed25519
from sealcamfw import flashkv
from sealcamfw.logread import log_path

FILE = "lasthead.cbor"
STORE_ALERT = 17
ALWAYS = (1, 4, 7, 8, 17)   # BOOT, SEGMENT, RECOVERY, RECEIPT, STORE_ALERT


def recall(flash):
    """{1: seq, 2: hash, 3: log, 4: offset, 5: size} remembered, or None."""
    v = flashkv.read(flash, FILE)
    if type(v) is dict and type(v.get(1)) is int and v[1] >= 0 and type(v.get(2)) is bytes \
            and len(v[2]) == 32:
        return v
    return None


def remember(flash, seq, h, log, off, size):
    flashkv.write(flash, FILE, {1: seq, 2: h, 3: log, 4: off, 5: size})


def _record_at(store, mem):
    # the card's record at the remembered seq: first where it was written (one read),
    # else wherever the card's logs put it
    fs = store.fs
    log, off, size = mem.get(3), mem.get(4), mem.get(5)
    if log_path(log) is not None and type(off) is int and off >= 0 and type(size) is int \
            and 0 < size <= 65536:
        try:
            rec = fs.read(log, off, size)
            if len(rec) == size and hashlib.sha256(rec).digest() == mem[2]:
                return rec
        except Exception:
            pass
    return store.find(mem[1])


def foreign(store, pub):
    """Why the card's last record is not this device's, or None."""
    last = store.last
    if last is None:
        return None
    try:
        prot, kid, payload, sig = cose.parse1(last)
        dev = cbor.loads(payload).get(3)
        ok = ed25519.verify(pub, cose.sig_structure(prot, payload), sig)
    except Exception:
        return "its head is not a record"
    if dev != store.device:
        return "it holds the store of device %s" % (dev[:48] if type(dev) is str else "?")
    if not ok:
        return "its records are not signed with this device's key"
    return None


def check(store, mem):
    """(old [seq, hash], new [seq, hash] or None) if the card's head went back from the
    remembered one mem, else None. store: after boot read the card's head (seq, last)."""
    if mem is None:
        return None
    seq, h = mem[1], mem[2]
    last = store.seq - 1
    new = [last, store.prev] if store.last is not None else None
    if last < seq:
        return [seq, h], new
    if last == seq:
        return ([seq, h], new) if store.prev != h else None
    rec = _record_at(store, mem)
    if rec is None or hashlib.sha256(rec).digest() != h:
        return [seq, h], new
    return None
