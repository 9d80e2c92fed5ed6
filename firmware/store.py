# The evidence store on the SD card (protocol/SPEC.md §3-§5).
#
# One hash chain over every record; every record a COSE_Sign1 made at capture; media
# written append-only in chunks hashed as they are written; a signed head (a copy of the
# last record) so that deleting the newest records is detectable; recovery at boot that
# seals a segment left open by a power cut. There is no delete, truncate or overwrite:
# asking for one writes a REFUSAL record.
#
# This module is the chain (records, logs, the head, boot) and the Store every other
# module is given; its other jobs live beside it and work on the Store:
#   storedefs.py  record types, body keys, flags, the store's errors (all named here too)
#   logread.py    reading records and media back: lookup, listing, segment file names
#   segment.py    the open segment: media, checkpoints, closing, recovery
#   custody.py    custody receipts, what they cover, release of covered media
#   clockcal.py   TIME_SET and the clock's drift calibration
#   headmem.py    the head remembered in internal flash; refusals.py the REFUSAL records
import cbor
import clockcal
import cose
import custody
import ed25519
import headmem
import refusals
import segment
from clockcal import CLOCK_FILE  # noqa: F401
from custody import COVERED_FILE  # noqa: F401
from logread import CHUNK_MAX, LogReader, _LogIndex, body_of, index_name, media_name  # noqa: F401
from logread import _log_key, _rec_at, log_path
from storedefs import *  # noqa: F401,F403  (every name of the record format, as store.X)
from storedefs import (ASSIGN, BOOT, F_NO_OFFICER, K_BOOT, K_KIND, K_MEDIA, K_CHUNK,
                       K_CHUNKS, K_LENGTH, K_NEW, K_OLD, K_PREV, K_REASON, K_ROOT,
                       K_SEGMENT, K_SEQ, K_STATION, K_TYPE, K_UNIT, CHECKPOINT, REC_START,
                       RECOVERY, SEGMENT, STORE_ALERT, ZERO32, CardError, ForeignCard,
                       Refused,
                       StoreFull, sha256)

HEAD = "head.cbor"
HEAD_NEW = "head.new"
_WIN = 16384            # bytes read at a time when boot scans a log
_REC_MAX = 65536        # no record is longer; a log holds at most log_max + one record
_HEAD_MAX = _REC_MAX + 4096   # head.cbor: a record and a few hints
_BAD = -2               # logread._rec_at: not a record (a const there, not importable)


class CardExposed(OSError):
    """The card is exposed read-only to the station as a disk (EXPOSE, SPEC §8.8): nothing
    is written to it until the exposure ends."""


def _sane(body):
    # a record body boot can follow: the keys _track reads, of the right types
    return type(body) is dict and type(body.get(K_TYPE)) is int and \
        type(body.get(K_SEQ)) is int and body[K_SEQ] >= 0 and \
        type(body.get(K_BOOT)) is int and type(body.get(K_PREV)) is bytes

_sha256 = sha256
_body_of = body_of    # the names selfcheck.py and the tests use


class Store(LogReader):
    def __init__(self, hal, sk, fw, cfg, officer=None, unit=None):
        self.hal = hal
        self.cfg = cfg
        self.fs = hal.sd
        self.clock = hal.clock
        self.sk = sk
        self.device = hal.device
        self.prot = cose.protected(hal.device.encode())
        self.fw = fw
        self.chunk = cfg["chunk"]
        self.log_max = cfg["log_max"]
        self.officer = officer
        self.unit = unit
        self._officer_arg = officer    # given: it wins over the chain's (the simulator)
        self.covered = -1      # the last accepted custody receipt covers records 0..covered
        self.receipt_no = -1   # and has this number
        self._rel_from = 0     # release scan resumes here (SPEC §10.8)
        self.last_check = None # the last self-check's result (SPEC §10.6)
        self.seq = 0           # seq of the next record
        self.prev = ZERO32     # H(last record)
        self.last = None       # bytes of the last record
        self.boot = 0
        self.log_name = None
        self.log = None
        self.log_off = 0
        self.seg = None        # the open segment (segment.py), if recording
        self.open_hint = None  # an open segment found at boot, before recovery
        self.recovered = None  # summary of what boot recovered
        self._torn = False     # a record write failed: start a new log before the next one
        self._logs = None      # _Logs of rec/*.log, by (N, K) (read on first use)
        self._cur = None       # _LogIndex of the log being appended (kept as records go)
        self._old = []         # _LogIndex of up to two other logs, most recent use last
        self._segs = {}        # segment -> (media path, index path, chunk size)
        reserve = cfg.get("evidence_reserve", 0)
        total = getattr(self.fs, "total", None)
        if total is not None and reserve > total() // 16:
            reserve = total() // 16     # a small card: at most 1/16 of it (SPEC §5.3)
        self.refusals = refusals.Refusals(self, cfg.get("refusal_interval_ms", 10000), reserve)
        self.alerts = []       # what boot found about the card: [{1: kind, 2: seq, 3: text}]
        self.foreign = None    # why the card is not this device's (nothing is written then)
        self.card_error = None # why boot could not open the store (nothing is written then)
        self._mem_ms = None    # mono ms of the last head remembered in flash (headmem.py)
        self._mem_every = cfg.get("head_remember_s", 300) * 1000
        self.exposed = None    # while the card is exposed as a read-only disk: what it is
                               # exposed as (SPEC §8.8); every write raises CardExposed
        self._exposed_at = 0   # mono ms the exposure began
        self._expose_hold = cfg.get("expose_hold_ms", 60000)   # a due REFUSAL waits this long

    full_error = StoreFull

    # ---------------------------------------------------------------- records
    def _append(self, rtype, fields, flags=0, now=None):
        if self.exposed and not (rtype == REFUSAL and self._expose_over()):
            self._locked("record type %d" % rtype)
        if self.foreign:
            raise ForeignCard("not this recorder's card (%s): record not written" % self.foreign)
        if self.card_error:
            raise CardError("the card's store could not be opened at boot (%s): record not "
                            "written" % self.card_error)
        c = self.clock
        now = now or (c.rtc_ms(), c.mono_ms())
        body = {0: rtype, 1: self.seq, 2: self.prev, 3: self.device, 4: now[0],
                5: now[1], 6: self.boot, 7: self.officer, 8: self.fw}
        if self.officer is None:
            flags |= F_NO_OFFICER
        elif self.unit is not None:
            body[K_UNIT] = self.unit
        if flags:
            body[9] = flags
        for k in fields:
            body[k] = fields[k]
        rec = cose.sign1(self.sk, self.prot, cbor.dumps(body))
        if self._torn or (self.log_off and self.log_off + len(rec) > self.log_max):
            self._new_log()
        if self.fs.free() < len(rec) + 4096:
            raise StoreFull("storage full: record seq %d not written" % self.seq)
        try:
            self.log.write(rec)
            self.log.flush()
        except Exception as e:
            self._torn = True  # what reached the log may be torn: never append after it
            if not isinstance(e, OSError) or not self._landed(rec):
                raise
            # the record reached the medium after all (the close wrote it): it stands
        off = self.log_off
        self._cur.add(off, len(rec), rtype)
        self.log_off += len(rec)
        self.prev = sha256(rec)
        self.last = rec
        self.seq += 1
        try:
            self._write_head()
        except OSError:
            pass    # the record stands; a head behind the chain is allowed (§5.2) and the
                    # next record's head catches up
        mono = now[1]
        if rtype in headmem.ALWAYS or self._mem_ms is None or mono - self._mem_ms >= self._mem_every:
            try:    # after the record and its head: the card never lags what flash says
                headmem.remember(self.hal.flash, self.seq - 1, self.prev, self.log_name, off,
                                 len(rec))
                self._mem_ms = mono
            except OSError:
                pass
        return rec

    def _landed(self, rec):
        # after a failed log write: close the file (its buffer is written or dropped now)
        # and see whether the whole record is there, so that its seq is never used twice
        try:
            self.log.close()
        except Exception:
            pass
        try:
            return self.fs.read(self.log_name, self.log_off, len(rec)) == rec
        except Exception:
            return False

    def _write_head(self):
        head = {1: self.log_name, 2: self.log_off, 3: self.last}
        if self.seg:
            head[4] = self.seg.hint()
        data = cbor.dumps(head)
        f = self.fs.create(HEAD_NEW)
        f.write(data)
        f.close()
        self.fs.replace(HEAD_NEW, HEAD)

    def _new_log(self):
        if self.log:
            try:
                self.log.close()
            except OSError:
                if not self._torn:
                    raise
        name = "rec/%08d.log" % self.seq
        k = 0
        while self.fs.size(name) > 0:  # a torn file from an earlier cut: never append after it
            k += 1
            name = "rec/%08d_%d.log" % (self.seq, k)
        self.log_name = name
        self.log = self.fs.open_append(name)
        self.log_off = 0
        self._torn = False
        self._cur = _LogIndex(name, self.seq)
        logs = self._logs
        if logs is not None and (not len(logs) or logs.name(len(logs) - 1) != name):
            logs.add(self.seq, k)

    # ---------------------------------------------------------------- boot
    # Nothing read from the card at boot is trusted as it stands (SPEC §5.2): the head's log
    # name must be one the store makes (else the log is found by the head's seq), files
    # are read in windows of at most _REC_MAX bytes and no further than a log can hold, and
    # a record that is not the chain's next, or not shaped like a record, ends the scan.
    def _read_head(self):
        best = None
        for name in (HEAD, HEAD_NEW):
            size = self.fs.size(name)
            if size <= 0 or size > _HEAD_MAX:
                continue
            try:
                h = cbor.loads(self.fs.read(name, 0, size))
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

    def _log_of(self, seq):
        # the log that holds seq (the last by (N, K) whose first seq N <= seq), or the
        # newest log if seq is None; None if there is none. Only names the store makes.
        best = None
        for name in self.fs.listdir("rec"):
            k = _log_key(name)
            if k is not None and (seq is None or k[0] <= seq) and (best is None or k > best[0]):
                best = (k, name)
        return "rec/" + best[1] if best else None

    def _track(self, rec, body):
        # follow one record found at boot (_sane(body)): chain state and the open segment
        t = body[K_TYPE]
        self.prev = sha256(rec)
        self.last = rec
        self.seq = body[K_SEQ] + 1
        self.boot = body[K_BOOT]
        self.officer = body.get(7)      # the assignment is the last record's (SPEC §10.5)
        self.unit = body.get(K_UNIT) if self.officer is not None else None
        if t == REC_START:
            self.open_hint = [body[K_SEQ], body.get(K_MEDIA), body.get(K_CHUNK),
                              [body.get(4), body.get(5)], 0, 0, ZERO32]
        elif t == CHECKPOINT and self.open_hint and body.get(K_SEGMENT) == self.open_hint[0]:
            self.open_hint[4] = body.get(K_CHUNKS)
            self.open_hint[5] = body.get(K_LENGTH)
            self.open_hint[6] = body.get(K_ROOT)   # segment.check_hint checks them all
        elif t == SEGMENT or t == RECOVERY:
            self.open_hint = None

    def _scan(self, log, off):
        # the records of log from byte off, in windows: follow the chain until the end of
        # the file, a torn tail or an item that is not the chain's next record; records
        # before the chain's next seq are passed over (a log scanned from its start)
        fs = self.fs
        size = fs.size(log)
        if size > self.log_max + _REC_MAX:
            size = self.log_max + _REC_MAX    # more than any log holds: an edited card
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
                if self.last is None or seq >= self.seq:
                    rec = bytes(data[p:end])
                    try:
                        body = body_of(rec)
                    except Exception:
                        return
                    if not _sane(body) or (self.last is not None and (
                            body[K_SEQ] != self.seq or body[K_PREV] != self.prev)):
                        return
                    self._track(rec, body)
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

    def open(self, reset_cause="power-on"):
        """Boot: find the chain head, recover an open segment, start a new log, write BOOT.
        A card whose head went back from the one remembered in flash gets a STORE_ALERT
        continuing the remembered chain; another device's card is not written to at all
        (self.foreign; returns None). Both are listed in self.alerts (SPEC §5.2)."""
        fs = self.fs
        head = self._read_head()
        if head:
            log, off, last = head[1], head[2], head[3]
            self._track(last, body_of(last))
            self.open_hint = head.get(4)
            if log is None:
                log, off = self._log_of(self.seq - 1), 0
            if log is not None and fs.size(log) > off:
                self._scan(log, off)
            # a rollover flushes the first record of a new log before the head names that
            # log: a cut between the two leaves the chain's next record there
            seq = self.seq
            name = "rec/%08d.log" % seq
            k = 0
            while self.seq == seq and k < 256 and fs.size(name) > 0:
                self._scan(name, 0)
                k += 1
                name = "rec/%08d_%d.log" % (seq, k)
        else:
            log = self._log_of(None)
            if log is not None:  # the first record was flushed but not its head
                self._scan(log, 0)
        why = headmem.foreign(self, ed25519.public(self.sk))
        if why:
            self.foreign = why
            self.alerts.append({1: "foreign_card", 2: None, 3: "the card is not this "
                                "recorder's (%s): nothing is written to it; put back its own "
                                "card or an empty one" % why})
            self.seq, self.prev, self.last, self.open_hint = 0, ZERO32, None, None
            return None
        back = headmem.check(self, headmem.recall(self.hal.flash))
        if self._officer_arg is not None:
            self.officer, self.unit = self._officer_arg, None
        fs.mkdir("rec")
        fs.mkdir("m")
        self.boot += 1
        hint = segment.check_hint(self.open_hint, self.seq)
        self.open_hint = None
        if back:
            # continue the remembered chain: the records the card lost are a gap
            self.seq, self.prev = back[0][0] + 1, back[0][1]
        self._new_log()
        if back:
            self._append(STORE_ALERT, {K_KIND: "head_back", K_OLD: back[0], K_NEW: back[1]})
            self.alerts.append({1: "head_back", 2: self.seq - 1, 3: "the card does not hold "
                                "record %d as this recorder wrote it (the card's last record: "
                                "%s): records were removed, or an older or edited card was put "
                                "in; the chain goes on from it (STORE_ALERT seq %d)"
                                % (back[0][0], "seq %d" % back[1][0] if back[1] else "none",
                                   self.seq - 1)})
        if hint:
            segment.recover(self, hint)
        return self._append(BOOT, {K_REASON: reset_cause, 18: ed25519.public(self.sk)})

    def fail(self, e):
        """Boot could not open the store (e: what open() raised: an unreadable or edited
        card, out of memory): nothing is written to the card from now on, the self-check
        is NOT_READY with reason card_error, and the alert goes to the station after AUTH
        (SPEC §5.4). The device keeps its link up."""
        why = refusals.clean("%s: %s" % (type(e).__name__, e), 120)
        self.card_error = why
        try:
            if self.log:
                self.log.close()
        except Exception:
            pass
        self.log = self.seg = self._cur = self._logs = None
        self._old = []
        self._segs = {}
        self.seq, self.prev, self.last, self.open_hint = 0, ZERO32, None, None
        self.alerts.append({1: "card_error", 2: None, 3: "the recorder could not open the "
                            "store on its card at boot (%s): nothing is written to it; put "
                            "in its own card or an empty one, or offload and check the "
                            "card with `sealcam verify`" % why})

    # ---------------------------------------------------------------- segments (segment.py)
    def start_segment(self, reason, mime, ext, prerecord=0):
        if self.exposed:
            self._locked("recording")
        return segment.start(self, reason, mime, ext, prerecord)

    def write(self, data):
        """Append media bytes to the open segment, hashing each chunk as it is written."""
        if self.exposed:
            self._locked("media")
        segment.write(self, data)

    def checkpoint(self):
        """Sign what the open segment holds in whole chunks, if anything is new."""
        if self.exposed:
            self._locked("a checkpoint")
        return segment.checkpoint(self)

    def flush(self):
        """Push the open segment's media written so far to the medium (the container
        header at segment start, SPEC §4.3)."""
        if self.exposed:
            self._locked("media")
        segment.flush(self)

    def close_segment(self):
        if self.exposed:
            self._locked("closing a segment")
        return segment.close(self)

    # ---------------------------------------------------------------- exposure (SPEC §8.8)
    def expose(self, how):
        """Lock the card against every write of this store while it is exposed as a
        read-only disk (``how``: what it is exposed as). Refused (ValueError naming why)
        while a segment is open (the media would change under the reader) and on a card
        that is not this recorder's store. The log and media files are flushed first (each record already is)."""
        if self.seg is not None:
            raise ValueError("recording: a segment is open; stop recording first")
        if self.foreign or self.card_error:
            raise ValueError("the card is not this recorder's store (%s)"
                             % (self.foreign or self.card_error))
        if self.log is not None:
            self.log.flush()
        self.exposed = how
        self._exposed_at = self.clock.mono_ms()

    def unexpose(self):
        """The exposure ended: writes are allowed again."""
        self.exposed = None

    def end_exposure(self):
        """The recorder ends an exposure itself (shutdown, a REFUSAL held too long): the disk
        goes away (hal.msc.hide), then writes are allowed again."""
        if not self.exposed:
            return
        msc = getattr(self.hal, "msc", None)
        try:
            if msc is not None:
                msc.hide()
        except Exception:
            pass        # the card is written again either way: the disk is the host's view
        self.unexpose()

    def _expose_over(self):
        # a REFUSAL record is due while the card is exposed: once the exposure has lasted
        # expose_hold_ms the recorder ends it and writes the record, so a power cut during a
        # long exposure loses at most that many ms (plus one interval) of counted refusals
        # (SPEC §5.3, §8.8). True if the exposure is over.
        if self.clock.mono_ms() - self._exposed_at < self._expose_hold:
            return False
        self.end_exposure()
        return True

    def _locked(self, what):
        raise CardExposed("the card is exposed read-only as %s: %s not written to it (end "
                          "the exposure first: EXPOSE off)" % (self.exposed, what))

    def pos(self):
        """[segment, chunk, offset] of the next media byte of the open segment, or None
        (segment.position)."""
        return segment.position(self)


    def record(self, rtype, fields, flags=0):
        """Append a record of another type (REC_STOP, marks, …)."""
        return self._append(rtype, fields, flags)

    # ---------------------------------------------------------------- dock link (SPEC §8)
    def receipt(self, station, covered, rhash, number):
        """Write a RECEIPT record for an accepted custody receipt (checked by the caller;
        custody.py)."""
        if self.exposed:
            self._locked("RECEIPT")
        return custody.receipt(self, station, covered, rhash, number)

    accept_receipt = receipt

    def load_coverage(self):
        """At boot: what custody receipts cover (custody.py, SPEC §10.8)."""
        custody.load_coverage(self)

    def releasable(self):
        """Bytes that releasing every covered segment would free (nothing is removed)."""
        return custody.releasable(self)

    def release_covered(self, want_free):
        """Free space by releasing covered media until free() >= want_free (custody.py,
        SPEC §10.8). Returns the bytes released."""
        if self.exposed:
            return 0      # nothing is removed from an exposed card
        return custody.release_covered(self, want_free)

    def set_time(self, new_ms):
        """Set the RTC and write a TIME_SET record (clockcal.py, SPEC §8.7). Returns (old,
        new, seq, drift ms/day or None, since ms or None, flagged)."""
        if self.exposed:
            self._locked("TIME_SET")     # before the clock or flash changes
        return clockcal.set_time(self, new_ms)

    def calibration(self):
        """(rtc of the last calibration, drift ms/day measured then), or None."""
        return clockcal.calibration(self)


    # ---------------------------------------------------------------- officer (SPEC §10)
    def assign(self, officer, unit, station):
        """Assign the recorder to officer/unit (None releases it): an ASSIGN record made
        with the new assignment. Every later record carries it; a boot takes it from the
        last record in the chain, so it survives power loss with the chain itself."""
        old = (self.officer, self.unit)
        self.officer, self.unit = officer, (unit if officer is not None else None)
        self._officer_arg = None
        seq0 = self.seq
        try:
            self._append(ASSIGN, {K_STATION: station})
        except Exception:
            if self.seq == seq0:    # no record: no new assignment
                self.officer, self.unit = old
            raise
        return self.seq - 1

    # ---------------------------------------------------------------- no delete
    def request(self, op, target, source):
        """Any delete/truncate/overwrite/format/write request: refused (Refused), and
        recorded or counted for the next REFUSAL record (refusals.py, SPEC §5.3); OSError
        if a REFUSAL record was due and could not be written (the refusal stays counted)."""
        target = refusals.clean(str(target))
        seq = self.refusals.refuse(op, target, source)
        if seq is None:
            raise Refused("%s of %s refused: evidence is append-only (counted for the next "
                          "REFUSAL record)" % (op, target))
        raise Refused("%s of %s refused: evidence is append-only (recorded as seq %d)"
                      % (op, target, seq), seq)

    def close(self):
        self.end_exposure()     # before the flush: the counted refusals are written now
        try:
            self.refusals.flush()
        except Exception:
            pass    # a shutdown never fails for counted refusals
        if self.log:
            self.log.close()
            self.log = None

