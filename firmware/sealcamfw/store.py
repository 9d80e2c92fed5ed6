# The evidence store on the SD card (protocol/SPEC.md §3-§5).
#
# One hash chain over every record; every record a COSE_Sign1 made at capture; media
# written append-only in chunks hashed as they are written; a signed head (a copy of the
# last record) so that deleting the newest records is detectable; recovery at boot that
# seals a segment left open by a power cut. There is no delete, truncate or overwrite:
# asking for one writes a REFUSAL record.
#
# This module is the chain (records, logs, the head) and the Store every other module is
# given; its other jobs live beside it and work on the Store:
#   storedefs.py  record types, body keys, flags, the store's errors (all named here too)
#   storeboot.py  boot: the head, the chain's end, a foreign or rolled-back card, recovery
#   logread.py    reading records and media back: lookup, listing, segment file names
#   segment.py    the open segment: media, checkpoints, closing, recovery
#   custody.py    custody receipts, what they cover, release of covered media
#   clockcal.py   TIME_SET and the clock's drift calibration
#   headmem.py    the head remembered in internal flash; refusals.py the REFUSAL records
from sealcamfw import cbor
from sealcamfw import clockcal
from sealcamfw import cose
from sealcamfw import custody
from sealcamfw import headmem
from sealcamfw import refusals
from sealcamfw import segment
from sealcamfw import storeboot
from sealcamfw.clockcal import CLOCK_FILE  # noqa: F401
from sealcamfw.custody import COVERED_FILE  # noqa: F401
from sealcamfw.logread import (CHUNK_MAX, LogReader, _LogIndex, body_of,  # noqa: F401
                               index_name, media_name)
from sealcamfw.storedefs import *  # noqa: F401,F403  (every name of the record format, as store.X)
from sealcamfw.storedefs import (ASSIGN, F_NO_OFFICER, HEAD, HEAD_NEW, K_STATION, K_UNIT,
                                 ZERO32, CardError, ForeignCard, Refused, StoreFull, sha256)


class CardExposed(OSError):
    """The card is exposed read-only to the station as a disk (EXPOSE, SPEC §8.8): nothing
    is written to it until the exposure ends."""


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

    # ---------------------------------------------------------------- boot (storeboot.py)
    def open(self, reset_cause="power-on"):
        """Boot: find the chain head, recover an open segment, start a new log, write BOOT.
        A card whose head went back from the one remembered in flash gets a STORE_ALERT
        continuing the remembered chain; another device's card is not written to at all
        (self.foreign; returns None). Both are listed in self.alerts (SPEC §5.2)."""
        return storeboot.open_store(self, reset_cause)

    def fail(self, e):
        """Boot could not open the store (e: what open() raised): nothing is written to the
        card from now on (storeboot.fail, SPEC §5.4). The device keeps its link up."""
        storeboot.fail(self, e)

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

