# Custody receipts in the evidence store (protocol/SPEC.md §8, §10.8): the RECEIPT record
# for a receipt the dock link accepted, what the receipts cover (covered.cbor in internal
# flash, written after the record), and the release of covered media when space runs out.
#
# These functions work on a Store (store.py): store.covered and store.receipt_no are the
# coverage; records are looked up through its LogReader side, written through _append.
from sealcamfw import flashkv
from sealcamfw.logread import body_of
from sealcamfw.storedefs import (K_COVERED, K_LENGTH, K_MEDIA, K_NUMBER, K_RECEIPT, K_SEGMENT,
                       K_STATION, RECEIPT, RECOVERY, RELEASE, SEGMENT, sha256)

COVERED_FILE = "covered.cbor"  # in internal flash: {1: covered seq, 2: receipt number}, written
                               # after the RECEIPT record (SPEC §10.8)


def receipt(store, station, covered, rhash, number):
    """Write a RECEIPT record for an accepted custody receipt (checked by the caller)."""
    rhash_cov = sha256(store.find(covered) or b"")
    seq0 = store.seq
    try:
        rec = store._append(RECEIPT, {K_STATION: station, K_COVERED: covered,
                                   K_RECEIPT: rhash, K_NUMBER: number})
    except Exception:
        if store.seq > seq0 and covered > store.covered:
            # the record is there, only its head failed
            store.covered, store.receipt_no = covered, number
        raise
    if covered > store.covered:
        store.covered = covered
        store.receipt_no = number
        # after the record: a cut in between forgets the coverage (never releases more);
        # with H(record covered), so that another card never inherits it
        try:
            flashkv.write(store.hal.flash, COVERED_FILE, {1: covered, 2: number, 3: rhash_cov})
        except OSError:
            pass
    return rec


def load_coverage(store):
    """At boot: what custody receipts cover, from covered.cbor, kept only if record
    `covered` on this card is the one the receipt named (SPEC §10.8)."""
    r = flashkv.read(store.hal.flash, COVERED_FILE)
    if type(r) is not dict or type(r.get(1)) is not int or type(r.get(2)) is not int:
        return
    rec = store.find(r[1])
    if rec is not None and sha256(rec) == r.get(3):
        store.covered, store.receipt_no = r[1], r[2]


def _covered_segments(store, since):
    """(closing seq, segment, media, index, signed length) of each closed segment whose
    closing record (SEGMENT or RECOVERY) seq >= since is covered by a custody receipt
    and whose media is still on the card, oldest first."""
    q = since
    while q <= store.covered:
        batch = store.list(q, 32)
        if not batch:
            return
        for seq, t, size in batch:
            if seq > store.covered:
                return
            q = seq + 1
            if t != SEGMENT and t != RECOVERY:
                continue
            rec = store.find(seq)
            if rec is None:
                continue
            body = body_of(rec)
            info = store.segment_files(body[K_SEGMENT])
            if info is None or store.fs.size(info[0]) <= 0:
                continue  # released before, never made, or empty: nothing to free
            yield seq, body[K_SEGMENT], info[0], info[1], body[K_LENGTH]


def releasable(store):
    """Bytes that releasing every covered segment would free (nothing is removed)."""
    n = 0
    for item in _covered_segments(store, store._rel_from):
        n += store.fs.size(item[2]) + max(store.fs.size(item[3]), 0)
    return n


def release_covered(store, want_free):
    """Free space by releasing the media of closed segments a custody receipt covers,
    oldest first, until free() >= want_free (SPEC §10.8). Each release is a RELEASE
    record (its `length` the signed one) written before its files are removed.
    Returns the bytes released."""
    fs = store.fs
    freed = 0
    if fs.free() >= want_free:
        return 0
    for seq, seg, media, idx, length in _covered_segments(store, store._rel_from):
        store._rel_from = seq + 1
        n = fs.size(media)
        store._append(RELEASE, {K_SEGMENT: seg, K_MEDIA: media, K_LENGTH: length,
                             K_NUMBER: store.receipt_no})
        fs.release(media)
        if fs.size(idx) >= 0:
            fs.release(idx)
        freed += n
        if fs.free() >= want_free:
            break
    return freed
