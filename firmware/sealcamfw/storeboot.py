# The evidence store's boot (protocol/SPEC.md §5.2, §5.4): find the chain's head on the
# card, follow the chain to its last record, refuse another device's card, continue the
# chain remembered in internal flash when the card went back, recover a segment a power
# cut left open, start a new log and write BOOT. Store.open() and Store.fail() (store.py)
# are these functions on the Store.
from sealcamfw import cbor
from sealcamfw import ed25519
from sealcamfw import headmem
from sealcamfw import refusals
from sealcamfw import segment
from sealcamfw.logread import _log_key, _rec_at, body_of, log_path
from sealcamfw.storedefs import (BOOT, CHECKPOINT, HEAD, HEAD_NEW, K_BOOT, K_CHUNK, K_CHUNKS,
                                 K_KIND, K_LENGTH, K_MEDIA, K_NEW, K_OLD, K_PREV, K_REASON,
                                 K_ROOT, K_SEGMENT, K_SEQ, K_TYPE, K_UNIT, REC_START,
                                 RECOVERY, SEGMENT, STORE_ALERT, ZERO32, sha256)

_WIN = 16384            # bytes read at a time when boot scans a log
_REC_MAX = 65536        # no record is longer; a log holds at most log_max + one record
_HEAD_MAX = _REC_MAX + 4096   # head.cbor: a record and a few hints
_BAD = -2               # logread._rec_at: not a record (a const there, not importable)


def _sane(body):
    # a record body boot can follow: the keys _track reads, of the right types
    return type(body) is dict and type(body.get(K_TYPE)) is int and \
        type(body.get(K_SEQ)) is int and body[K_SEQ] >= 0 and \
        type(body.get(K_BOOT)) is int and type(body.get(K_PREV)) is bytes


# Nothing read from the card at boot is trusted as it stands (SPEC §5.2): the head's log
# name must be one the store makes (else the log is found by the head's seq), files
# are read in windows of at most _REC_MAX bytes and no further than a log can hold, and
# a record that is not the chain's next, or not shaped like a record, ends the scan.
def _read_head(s):
    best = None
    for name in (HEAD, HEAD_NEW):
        size = s.fs.size(name)
        if size <= 0 or size > _HEAD_MAX:
            continue
        try:
            h = cbor.loads(s.fs.read(name, 0, size))
            body = body_of(h[3]) if type(h) is dict and type(h.get(3)) is bytes else None
        except Exception:
            continue  # an unfinished head.new: the other one holds
        if not _sane(body):
            continue
        seq = body[K_SEQ]
        if best is None or seq > best[0]:
            best = (seq, h)
    if best is None:
        return None
    seq, h = best
    key = log_path(h.get(1))
    off = h.get(2)
    if key is None or key[0] > seq or type(off) is not int or off < 0:
        h[1] = h[2] = None     # not hints the store made: the log is found by the seq
    return h


def _log_of(s, seq):
    # the log that holds seq (the last by (N, K) whose first seq N <= seq), or the
    # newest log if seq is None; None if there is none. Only names the store makes.
    best = None
    for name in s.fs.listdir("rec"):
        k = _log_key(name)
        if k is not None and (seq is None or k[0] <= seq) and (best is None or k > best[0]):
            best = (k, name)
    return "rec/" + best[1] if best else None


def _track(s, rec, body):
    # follow one record found at boot (_sane(body)): chain state and the open segment
    t = body[K_TYPE]
    s.prev = sha256(rec)
    s.last = rec
    s.seq = body[K_SEQ] + 1
    s.boot = body[K_BOOT]
    s.officer = body.get(7)      # the assignment is the last record's (SPEC §10.5)
    s.unit = body.get(K_UNIT) if s.officer is not None else None
    if t == REC_START:
        s.open_hint = [body[K_SEQ], body.get(K_MEDIA), body.get(K_CHUNK),
                          [body.get(4), body.get(5)], 0, 0, ZERO32]
    elif t == CHECKPOINT and s.open_hint and body.get(K_SEGMENT) == s.open_hint[0]:
        s.open_hint[4] = body.get(K_CHUNKS)
        s.open_hint[5] = body.get(K_LENGTH)
        s.open_hint[6] = body.get(K_ROOT)   # segment.check_hint checks them all
    elif t == SEGMENT or t == RECOVERY:
        s.open_hint = None


def _scan(s, log, off):
    # the records of log from byte off, in windows: follow the chain until the end of
    # the file, a torn tail or an item that is not the chain's next record; records
    # before the chain's next seq are passed over (a log scanned from its start)
    fs = s.fs
    size = fs.size(log)
    if size > s.log_max + _REC_MAX:
        size = s.log_max + _REC_MAX    # more than any log holds: an edited card
    into = getattr(fs, "readinto", None)
    win = _WIN
    data = bytearray(win) if into is not None else None   # one buffer, reused
    pos = off
    while pos < size:
        want = win if size - pos > win else size - pos
        if into is not None:
            if len(data) < want:
                data = bytearray(want)
            n = into(log, pos, memoryview(data)[:want])
        else:
            data = fs.read(log, pos, want)
            n = len(data)
        p = 0
        while True:
            r = _rec_at(data, p, n)
            if type(r) is int:
                break
            end, t, seq = r
            if seq < 0:
                return
            if s.last is None or seq >= s.seq:
                rec = bytes(data[p:end])
                try:
                    body = body_of(rec)
                except Exception:
                    return
                if not _sane(body) or (s.last is not None and (
                        body[K_SEQ] != s.seq or body[K_PREV] != s.prev)):
                    return
                _track(s, rec, body)
            p = end
        if r == _BAD or pos + n >= size or n == 0:
            return
        if p == 0:
            if win >= _REC_MAX:
                return     # no record is this long
            win *= 4
            continue
        pos += p
        win = _WIN


def open_store(s, reset_cause="power-on"):
    """Boot: find the chain head, recover an open segment, start a new log, write BOOT.
    A card whose head went back from the one remembered in flash gets a STORE_ALERT
    continuing the remembered chain; another device's card is not written to at all
    (s.foreign; returns None). Both are listed in s.alerts (SPEC §5.2)."""
    fs = s.fs
    head = _read_head(s)
    if head:
        log, off, last = head[1], head[2], head[3]
        _track(s, last, body_of(last))
        s.open_hint = head.get(4)
        if log is None:
            log, off = _log_of(s, s.seq - 1), 0
        if log is not None and fs.size(log) > off:
            _scan(s, log, off)
        # a rollover flushes the first record of a new log before the head names that
        # log: a cut between the two leaves the chain's next record there
        seq = s.seq
        name = "rec/%08d.log" % seq
        k = 0
        while s.seq == seq and k < 256 and fs.size(name) > 0:
            _scan(s, name, 0)
            k += 1
            name = "rec/%08d_%d.log" % (seq, k)
    else:
        log = _log_of(s, None)
        if log is not None:  # the first record was flushed but not its head
            _scan(s, log, 0)
    why = headmem.foreign(s, ed25519.public(s.sk))
    if why:
        s.foreign = why
        s.alerts.append({1: "foreign_card", 2: None, 3: "the card is not this "
                        "recorder's (%s): nothing is written to it; put back its own "
                        "card or an empty one" % why})
        s.seq, s.prev, s.last, s.open_hint = 0, ZERO32, None, None
        return None
    back = headmem.check(s, headmem.recall(s.hal.flash))
    if s._officer_arg is not None:
        s.officer, s.unit = s._officer_arg, None
    fs.mkdir("rec")
    fs.mkdir("m")
    s.boot += 1
    hint = segment.check_hint(s.open_hint, s.seq)
    s.open_hint = None
    if back:
        # continue the remembered chain: the records the card lost are a gap
        s.seq, s.prev = back[0][0] + 1, back[0][1]
    s._new_log()
    if back:
        s._append(STORE_ALERT, {K_KIND: "head_back", K_OLD: back[0], K_NEW: back[1]})
        s.alerts.append({1: "head_back", 2: s.seq - 1, 3: "the card does not hold "
                        "record %d as this recorder wrote it (the card's last record: "
                        "%s): records were removed, or an older or edited card was put "
                        "in; the chain goes on from it (STORE_ALERT seq %d)"
                        % (back[0][0], "seq %d" % back[1][0] if back[1] else "none",
                           s.seq - 1)})
    if hint:
        segment.recover(s, hint)
    return s._append(BOOT, {K_REASON: reset_cause, 18: ed25519.public(s.sk)})


def fail(s, e):
    """Boot could not open the store (e: what open_store() raised: an unreadable or edited
    card, out of memory): nothing is written to the card from now on, the self-check
    is NOT_READY with reason card_error, and the alert goes to the station after AUTH
    (SPEC §5.4). The device keeps its link up."""
    why = refusals.clean("%s: %s" % (type(e).__name__, e), 120)
    s.card_error = why
    try:
        if s.log:
            s.log.close()
    except Exception:
        pass
    s.log = s.seg = s._cur = s._logs = None
    s._old = []
    s._segs = {}
    s.seq, s.prev, s.last, s.open_hint = 0, ZERO32, None, None
    s.alerts.append({1: "card_error", 2: None, 3: "the recorder could not open the "
                        "store on its card at boot (%s): nothing is written to it; put "
                        "in its own card or an empty one, or offload and check the "
                        "card with `sealcam verify`" % why})
