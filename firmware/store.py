# The evidence store on the SD card (protocol/SPEC.md §3-§5).
#
# One hash chain over every record; every record a COSE_Sign1 made at capture; media
# written append-only in chunks hashed as they are written; a signed head (a copy of the
# last record) so that deleting the newest records is detectable; recovery at boot that
# seals a segment left open by a power cut. There is no delete, truncate or overwrite:
# asking for one writes a REFUSAL record.
import hashlib

import cbor
import cose
import ed25519
import flashkv
import headmem
import refusals
from logread import CHUNK_MAX, LogReader, _LogIndex, index_name, media_name  # noqa: F401

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# record types (SPEC §3.2)
BOOT = const(1)
REC_START = const(2)
CHECKPOINT = const(3)
SEGMENT = const(4)
REC_STOP = const(5)
REFUSAL = const(6)
RECOVERY = const(7)
RECEIPT = const(8)
TIME_SET = const(9)
INTERRUPTION = const(10)
VOICE_ANNOTATION = const(11)
ANNOTATION_MISSING = const(12)
MARK = const(13)
ASSIGN = const(14)
SELF_CHECK = const(15)
RELEASE = const(16)
STORE_ALERT = const(17)

# body keys (SPEC §3.1)
K_TYPE = const(0)
K_SEQ = const(1)
K_PREV = const(2)
K_BOOT = const(6)
K_SEGMENT = const(10)
K_MEDIA = const(11)
K_CHUNK = const(12)
K_LENGTH = const(13)
K_CHUNKS = const(14)
K_ROOT = const(15)
K_START = const(16)
K_REASON = const(17)
K_STATION = const(24)
K_COVERED = const(25)
K_RECEIPT = const(26)
K_NUMBER = const(27)
K_OLD = const(28)
K_NEW = const(29)
K_UNIT = const(30)
K_REFERS = const(31)
K_SPAN = const(32)
K_KIND = const(33)
K_AT = const(34)
K_DURATION = const(35)
K_READY = const(36)
K_REASONS = const(37)
K_FACTS = const(38)
K_DRIFT = const(39)
K_SINCE = const(40)
K_PREROLL = const(41)
K_PHRASE = const(42)
K_ERROR = const(43)

# flags (SPEC §3.4)
F_NO_OFFICER = const(1)
F_RECOVERED = const(2)
F_MISMATCH = const(4)
F_DRIFT = const(8)

COVERED_FILE = "covered.cbor"  # in internal flash: {1: covered seq, 2: receipt number}, written
                               # after the RECEIPT record (SPEC §10.8)
CLOCK_FILE = "clock.cbor"      # in internal flash: {1: rtc set, 2: drift ms/day, 3: measurement
                               # base rtc, 4: error summed since the base} (SPEC §8.7)

HEAD = "head.cbor"
HEAD_NEW = "head.new"
ZERO32 = bytes(32)


class StoreFull(OSError):
    pass


class ForeignCard(OSError):
    """The card holds another device's store: nothing is written to it (SPEC §5.2)."""


class Refused(Exception):
    """A delete/modify request: always refused, and recorded (seq of the REFUSAL record),
    or counted for the next REFUSAL record (seq None), SPEC §5.3."""

    def __init__(self, msg, seq=None):
        super().__init__(msg)
        self.msg = msg
        self.seq = seq


def _sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def _body_of(rec):
    obj = cbor.loads(rec)
    return cbor.loads(obj.value[2])


def _check_hint(h, seq):
    # an open segment's hint (head key 4, or built from the records scanned at boot) with
    # the media path made from its segment seq; None if it is not one (an edited card:
    # recovery then opens nothing it names, and the segment stays open on the card)
    if type(h) is not list or len(h) != 7:
        return None
    seg, media, chunk, start, chunks, length, root = h
    media = media_name(seg, media)
    if media is None or seg >= seq or type(chunk) is not int or not 0 < chunk <= CHUNK_MAX \
            or type(chunks) is not int or type(length) is not int or chunks < 0 \
            or length != chunks * chunk or type(root) is not bytes or len(root) != 32 \
            or type(start) is not list or len(start) != 2:
        return None
    return [seg, media, chunk, start, chunks, length, root]


class _Segment:
    # One open segment: file handles and the running chunk state (SPEC §4).
    def __init__(self, seq, media, chunk, start):
        self.seq = seq
        self.media = media
        self.idx = index_name(seq)
        self.chunk = chunk
        self.start = start
        self.fm = None
        self.fi = None
        self.h = hashlib.sha256()
        self.fill = 0          # bytes in the current (incomplete) chunk
        self.chunks = 0        # completed chunks
        self.length = 0
        self.root = ZERO32
        self.signed = 0        # bytes covered by the last checkpoint
        self.signed_root = ZERO32
        self.broken = False    # a media write or flush failed: sealed like a recovery

    def hint(self):
        # what recovery starts from: the last signed checkpoint (SPEC §5.2 `open`)
        n = self.signed // self.chunk
        return [self.seq, self.media, self.chunk, self.start, n, self.signed, self.signed_root]


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
        self.seg = None        # the open _Segment, if recording
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
        self._mem_ms = None    # mono ms of the last head remembered in flash (headmem.py)
        self._mem_every = cfg.get("head_remember_s", 300) * 1000

    full_error = StoreFull

    # ---------------------------------------------------------------- records
    def _append(self, rtype, fields, flags=0, now=None):
        if self.foreign:
            raise ForeignCard("not this recorder's card (%s): record not written" % self.foreign)
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
        self.prev = _sha256(rec)
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
    def _read_head(self):
        best = None
        for name in (HEAD, HEAD_NEW):
            if self.fs.size(name) <= 0:
                continue
            try:
                h = cbor.loads(self.fs.read(name))
                seq = _body_of(h[3])[K_SEQ]
            except Exception:
                continue  # an unfinished head.new: the other one holds
            if best is None or seq > best[0]:
                best = (seq, h)
        return best[1] if best else None

    def _track(self, rec, body):
        # follow one record found at boot: chain state and the open segment hint
        t = body[K_TYPE]
        self.prev = _sha256(rec)
        self.last = rec
        self.seq = body[K_SEQ] + 1
        self.boot = body[K_BOOT]
        self.officer = body.get(7)      # the assignment is the last record's (SPEC §10.5)
        self.unit = body.get(K_UNIT) if self.officer is not None else None
        if t == REC_START:
            self.open_hint = [body[K_SEQ], body.get(K_MEDIA), body.get(K_CHUNK),
                              [body[4], body[5]], 0, 0, ZERO32]
        elif t == CHECKPOINT and self.open_hint and body[K_SEGMENT] == self.open_hint[0]:
            self.open_hint[4] = body[K_CHUNKS]
            self.open_hint[5] = body[K_LENGTH]
            self.open_hint[6] = body[K_ROOT]
        elif t == SEGMENT or t == RECOVERY:
            self.open_hint = None

    def _scan(self, log, off):
        # records after the head (at most a few): decode until the end or a torn tail
        data = self.fs.read(log, off)
        pos = 0
        while pos < len(data):
            try:
                item, nxt = cbor.decode_one(data, pos)
                body = cbor.loads(item.value[2])
            except Exception:
                break
            if self.last is not None and (body.get(K_SEQ) != self.seq or body.get(K_PREV) != self.prev):
                break
            self._track(data[pos:nxt], body)
            pos = nxt

    def open(self, reset_cause="power-on"):
        """Boot: find the chain head, recover an open segment, start a new log, write BOOT.
        A card whose head went back from the one remembered in flash gets a STORE_ALERT
        continuing the remembered chain; another device's card is not written to at all
        (self.foreign; returns None). Both are listed in self.alerts (SPEC §5.2)."""
        fs = self.fs
        head = self._read_head()
        if head:
            log, off, last = head[1], head[2], head[3]
            self._track(last, _body_of(last))
            self.open_hint = head.get(4)
            if fs.size(log) > off:
                self._scan(log, off)
            # a rollover flushes the first record of a new log before the head names that
            # log: a cut between the two leaves the chain's next record there
            seq = self.seq
            name = "rec/%08d.log" % seq
            k = 0
            while self.seq == seq and fs.size(name) > 0:
                self._scan(name, 0)
                k += 1
                name = "rec/%08d_%d.log" % (seq, k)
        else:
            logs = fs.listdir("rec")
            if logs:  # the first record was flushed but not its head: scan the newest log
                self._scan("rec/" + logs[-1], 0)
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
        hint = _check_hint(self.open_hint, self.seq)
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
            self._recover(hint)
        return self._append(BOOT, {K_REASON: reset_cause, 18: ed25519.public(self.sk)})

    def _recover(self, hint, reason="power loss"):
        # seal a segment that was open when power was lost (SPEC §5.4), or whose media
        # write failed: from its last signed checkpoint, what is on the medium
        seg, media, chunk, start, chunks, length, root = hint
        fs = self.fs
        idx = index_name(seg)
        size = fs.size(media)
        if size < 0:
            f = fs.open_append(media)
            f.close()
            size = 0
        if fs.size(idx) < 0:
            f = fs.open_append(idx)
            f.close()
        isize = fs.size(idx)
        nidx = isize // 32
        fi = fs.open_append(idx)
        flags = F_RECOVERED
        if isize % 32:  # a torn index entry: pad it (never rewrite), entries stay aligned
            fi.write(bytes(32 - isize % 32))
            nidx += 1
            flags |= F_MISMATCH
        pos = chunks * chunk
        k = chunks
        while pos < size:
            h = _sha256(fs.read(media, pos, chunk))
            if k < nidx:
                if fs.read(idx, k * 32, 32) != h:
                    flags |= F_MISMATCH
            else:
                fi.write(h)
            root = _sha256(root, h)
            k += 1
            pos += chunk
        fi.close()
        self._append(RECOVERY, {K_SEGMENT: seg, K_LENGTH: size, K_CHUNKS: k, K_ROOT: root,
                                K_START: start, K_REASON: reason, 22: length}, flags)
        self.recovered = {"segment": seg, "length": size, "signed": length, "flags": flags,
                          "seq": self.seq - 1}

    # ---------------------------------------------------------------- segments
    def start_segment(self, reason, mime, ext, prerecord=0):
        if self.seg:
            raise ValueError("a segment is already open")
        c = self.clock
        seq = self.seq
        media = "m/%08d.%s" % (seq, ext)
        s = _Segment(seq, media, self.chunk, [c.rtc_ms(), c.mono_ms()])
        self.seg = s  # the head written with REC_START names the open segment
        f = {K_SEGMENT: seq, K_MEDIA: media, K_CHUNK: self.chunk, K_REASON: reason, 23: mime}
        if prerecord:
            f[K_PREROLL] = prerecord
        try:
            self._append(REC_START, f, 0, s.start)
        except Exception:
            self.seg = None     # no REC_START: no segment
            raise
        s.fm = self.fs.open_append(media)
        s.fi = self.fs.open_append(s.idx)
        return seq

    def write(self, data):
        """Append media bytes to the open segment, hashing each chunk as it is written."""
        s = self.seg
        if s is None:
            raise ValueError("no open segment")
        if s.fm is None:
            raise OSError(5, "segment %d is being closed" % s.seq)
        n = len(data)
        if self.fs.free() < n + 65536:
            raise StoreFull("storage full: segment %d not extended" % s.seq)
        mv = memoryview(data)
        pos = 0
        while pos < n:
            take = min(n - pos, s.chunk - s.fill)
            part = mv[pos:pos + take]
            try:
                k = s.fm.write(part)          # hashed only once it is written
            except OSError as e:
                s.broken = True               # what the medium holds is now uncertain
                if e.args and e.args[0] == 28:  # ENOSPC; other errors are the medium's
                    raise StoreFull("storage full: segment %d not extended" % s.seq)
                raise
            if k is None:
                k = take
            if k:
                s.h.update(part[:k])
                s.fill += k
                s.length += k
                pos += k
            if k < take:
                s.broken = True
                raise StoreFull("storage full: segment %d took %d of %d bytes" % (s.seq, k, take))
            if s.fill == s.chunk:
                try:
                    self._end_chunk(s)
                except OSError:
                    s.broken = True
                    raise

    def _end_chunk(self, s):
        d = s.h.digest()
        s.fi.write(d)
        s.root = _sha256(s.root, d)
        s.chunks += 1
        s.fill = 0
        s.h = hashlib.sha256()
        s.fm.flush()
        s.fi.flush()

    def checkpoint(self):
        """Sign what the open segment holds in whole chunks, if anything is new."""
        s = self.seg
        if s is None or s.fm is None or s.broken or s.chunks * s.chunk == s.signed:
            return None
        try:
            s.fm.flush()
            s.fi.flush()
        except OSError:
            s.broken = True
            raise
        covered = s.chunks * s.chunk
        old = (s.signed, s.signed_root)
        s.signed, s.signed_root = covered, s.root  # the head written with it starts from here
        seq0 = self.seq
        try:
            return self._append(CHECKPOINT, {K_SEGMENT: s.seq, K_LENGTH: covered,
                                             K_CHUNKS: s.chunks, K_ROOT: s.root})
        except Exception:
            if self.seq == seq0:    # no checkpoint: recovery starts from the one before
                s.signed, s.signed_root = old
            raise

    def close_segment(self):
        s = self.seg
        if s is None:
            return None
        if s.broken:
            return self._seal_broken(s)
        if s.fm is not None:
            if s.fill:
                d = s.h.digest()
                s.fi.write(d)
                s.root = _sha256(s.root, d)
                s.chunks += 1
                s.fill = 0
            s.fm.close()
            s.fi.close()
            s.fm = s.fi = None
        seq0 = self.seq
        self.seg = None     # the head written with SEGMENT names no open segment
        try:
            return self._append(SEGMENT, {K_SEGMENT: s.seq, K_LENGTH: s.length,
                                          K_CHUNKS: s.chunks, K_ROOT: s.root, K_START: s.start})
        except Exception:
            if self.seq == seq0:
                self.seg = s    # not closed: a retry closes it, or the next boot seals it
            raise

    def _seal_broken(self, s):
        # a media write or flush failed: close the files (what they buffered is written or
        # dropped now) and seal what the medium holds, as recovery does at boot
        for f in (s.fm, s.fi):
            if f is not None:
                try:
                    f.close()
                except Exception:
                    pass
        s.fm = s.fi = None
        seq0 = self.seq
        self.seg = None
        rv = self.recovered
        try:
            self._recover(s.hint(), "write error")
        except Exception:
            if self.seq == seq0:
                self.seg = s
            raise
        finally:
            self.recovered = rv     # boot's summary, not this
        return self.last

    def record(self, rtype, fields, flags=0):
        """Append a record of another type (REC_STOP, marks, …)."""
        return self._append(rtype, fields, flags)

    # ---------------------------------------------------------------- dock link (SPEC §8)
    def receipt(self, station, covered, rhash, number):
        """Write a RECEIPT record for an accepted custody receipt (checked by the caller)."""
        rhash_cov = _sha256(self.find(covered) or b"")
        seq0 = self.seq
        try:
            rec = self._append(RECEIPT, {K_STATION: station, K_COVERED: covered,
                                         K_RECEIPT: rhash, K_NUMBER: number})
        except Exception:
            if self.seq > seq0 and covered > self.covered:   # the record is there (only
                self.covered, self.receipt_no = covered, number   # its head failed)
            raise
        if covered > self.covered:
            self.covered = covered
            self.receipt_no = number
            # after the record: a cut in between forgets the coverage (never releases more);
            # with H(record covered), so that another card never inherits it
            try:
                flashkv.write(self.hal.flash, COVERED_FILE, {1: covered, 2: number, 3: rhash_cov})
            except OSError:
                pass
        return rec

    accept_receipt = receipt

    def set_time(self, new_ms):
        """Set the RTC and write a TIME_SET record (its own rtc is the new time); the clock
        is set back if the record cannot be written. The drift rate is measured over at
        least drift_min_s of RTC time: the corrections since the measurement base are summed
        (`error`) and divided by the time since it (`since`); flagged DRIFT past the limit
        (SPEC §8.7). Returns (old, new, seq, drift ms/day or None, since ms or None,
        flagged)."""
        c = self.clock
        cfg = self.cfg
        flash = self.hal.flash
        old = c.rtc_ms()
        last = self._clock_state()
        fields = {K_OLD: old, K_NEW: new_ms}
        drift = since = None
        flags = 0
        state = {1: new_ms, 2: 0, 3: new_ms, 4: 0}       # a new measurement base
        if last is not None:
            base = last.get(3, last[1])
            acc = last.get(4, 0) + old - new_ms
            if new_ms - base >= cfg.get("drift_min_s", 3600) * 1000:
                since = new_ms - base
                drift = acc * 86400000 // since if acc >= 0 else -((-acc) * 86400000 // since)
                fields[K_DRIFT] = drift
                fields[K_SINCE] = since
                fields[K_ERROR] = acc
                if abs(drift) > cfg.get("drift_limit_ms", 3000):
                    flags = F_DRIFT
                state[2] = drift
            else:                                    # too soon to tell: keep summing
                state = {1: new_ms, 2: last.get(2, 0), 3: base, 4: acc}
        # the state first, naming the record it belongs to and keeping the one before: a
        # cut or a failure between the two leaves a state that names no such record, and
        # the one before is used (SPEC §8.7)
        state[5] = self.seq
        if last is not None:
            last.pop(6, None)
            state[6] = last
        flashkv.write(flash, CLOCK_FILE, state)
        c.set_rtc(new_ms)
        seq0 = self.seq
        try:
            self._append(TIME_SET, fields, flags, (new_ms, c.mono_ms()))
        except Exception:
            if self.seq == seq0:    # no record: the clock goes back too
                c.set_rtc(old)
            raise
        return old, new_ms, self.seq - 1, drift, since, bool(flags)

    def _clock_state(self):
        # clock.cbor if the TIME_SET it names is in the chain with its `new`, else the
        # state before it (or None)
        v = flashkv.read(self.hal.flash, CLOCK_FILE)
        for _ in range(2):
            if type(v) is not dict or type(v.get(1)) is not int:
                return None
            q = v.get(5)
            if type(q) is not int:
                return v        # written before states named their record
            rec = self.find(q) if q < self.seq else None
            if rec is not None:
                b = _body_of(rec)
                if b[K_TYPE] == TIME_SET and b[K_NEW] == v[1]:
                    return v
            v = v.get(6)
        return None

    def load_coverage(self):
        """At boot: what custody receipts cover, from covered.cbor, kept only if record
        `covered` on this card is the one the receipt named (SPEC §10.8)."""
        r = flashkv.read(self.hal.flash, COVERED_FILE)
        if type(r) is not dict or type(r.get(1)) is not int or type(r.get(2)) is not int:
            return
        rec = self.find(r[1])
        if rec is not None and _sha256(rec) == r.get(3):
            self.covered, self.receipt_no = r[1], r[2]

    def calibration(self):
        """(rtc of the last calibration, drift ms/day measured then), or None."""
        v = self._clock_state()
        return (v[1], v.get(2) or 0) if v is not None else None

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

    def pos(self):
        """[segment, chunk, offset] of the next media byte of the open segment, or None.
        The media up to it is flushed first: a record that points into the media never
        points past what a power cut leaves (SPEC §10.3)."""
        s = self.seg
        if s is None:
            return None
        if s.broken:                # what the medium holds is what recovery will seal
            n = self.fs.size(s.media)
            n = n if n > 0 else 0
            return [s.seq, n // s.chunk, n % s.chunk]
        if s.fm is not None:
            try:
                s.fm.flush()
            except OSError:
                s.broken = True
                return self.pos()
        return [s.seq, s.length // s.chunk, s.length % s.chunk]

    def _covered_segments(self, since):
        """(closing seq, segment, media, index, signed length) of each closed segment whose
        closing record (SEGMENT or RECOVERY) seq >= since is covered by a custody receipt
        and whose media is still on the card, oldest first."""
        q = since
        while q <= self.covered:
            batch = self.list(q, 32)
            if not batch:
                return
            for seq, t, size in batch:
                if seq > self.covered:
                    return
                q = seq + 1
                if t != SEGMENT and t != RECOVERY:
                    continue
                rec = self.find(seq)
                if rec is None:
                    continue
                body = _body_of(rec)
                info = self.segment_files(body[K_SEGMENT])
                if info is None or self.fs.size(info[0]) <= 0:
                    continue  # released before, never made, or empty: nothing to free
                yield seq, body[K_SEGMENT], info[0], info[1], body[K_LENGTH]

    def releasable(self):
        """Bytes that releasing every covered segment would free (nothing is removed)."""
        n = 0
        for item in self._covered_segments(self._rel_from):
            n += self.fs.size(item[2]) + max(self.fs.size(item[3]), 0)
        return n

    def release_covered(self, want_free):
        """Free space by releasing the media of closed segments a custody receipt covers,
        oldest first, until free() >= want_free (SPEC §10.8). Each release is a RELEASE
        record (its `length` the signed one) written before its files are removed.
        Returns the bytes released."""
        fs = self.fs
        freed = 0
        if fs.free() >= want_free:
            return 0
        for seq, seg, media, idx, length in self._covered_segments(self._rel_from):
            self._rel_from = seq + 1
            n = fs.size(media)
            self._append(RELEASE, {K_SEGMENT: seg, K_MEDIA: media, K_LENGTH: length,
                                   K_NUMBER: self.receipt_no})
            fs.release(media)
            if fs.size(idx) >= 0:
                fs.release(idx)
            freed += n
            if fs.free() >= want_free:
                break
        return freed

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
        try:
            self.refusals.flush()
        except Exception:
            pass    # a shutdown never fails for counted refusals
        if self.log:
            self.log.close()
            self.log = None

