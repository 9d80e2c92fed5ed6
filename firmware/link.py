# The device side of the dock link (protocol/SPEC.md §7-§8).
#
#   lnk = link.Link(hal, store, recorder)    # hal.serial: read(n) -> bytes (non-blocking,
#   while True:                              #   b"" when nothing), write(buf)
#       busy = lnk.service()                 # reads what has arrived, answers each request
#
# service() never raises for anything that comes over the line: a frame that is not one
# well-formed CBOR item is dropped (SPEC §7) and answered 400 with id 0, a request of the
# wrong shape is answered 400, a storage error 500 (nothing changed). Only exception types
# listed in `fatal` pass through (the simulator puts its PowerCut there).
#
# Mutual authentication (HELLO, AUTH: SPEC §8.3) is auth.py; station trust lives there
# too (trust.cbor). The last accepted receipt is in internal flash, receipts.cbor
# ({1: number, 2: H(receipt), 3: covered seq}), a small file of flashkv.py (replaced
# whole: a .new file, then replace; a .new file that a cut left behind is read too).
#
# The session (HELLO's nonces, AUTH) ends at the next HELLO, when hal.serial reports the
# host gone (its optional `connected`), or after session_idle_ms without a byte on the
# device clock (setting, default 60 s). Refused DELETE/FORMAT/WRITE go to the store's
# coalesced refusals (refusals.py): recorded, or counted for the next REFUSAL record.
#
# STATUS reports the officer workflow's state and its interruptions waiting for a voice
# annotation when the Link is given the workflow (Link(..., workflow=wf): wf.state, a
# str, and wf.waiting(), a list of seqs); without one, "recording" or "standby".
import hashlib

import auth
import cbor
import config
import cose
import devkey
import ed25519
import flashkv
import frame
import refusals
import selfcheck
import store as st

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

try:
    import time
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
except AttributeError:  # CPython
    import time

    def _ticks_ms():
        return int(time.monotonic() * 1000)

    def _ticks_diff(a, b):
        return a - b

HELLO = const(1)
AUTH = const(2)
LIST = const(3)
GET = const(4)
READ = const(5)
RECEIPT = const(6)
TIME_SET = const(7)
DELETE = const(8)
FORMAT = const(9)
WRITE = const(10)
ASSIGN = const(11)
STATUS = const(12)
CHECK = const(13)
OP_NAMES = ("?", "HELLO", "AUTH", "LIST", "GET", "READ", "RECEIPT", "TIME_SET", "DELETE",
            "FORMAT", "WRITE", "ASSIGN", "STATUS", "CHECK")

OK = const(0)
BAD_REQUEST = const(400)
UNAUTHENTICATED = const(401)
FORBIDDEN = const(403)
NOT_FOUND = const(404)
REFUSED = const(405)
REPLAY = const(409)
TOO_LARGE = const(413)
DEVICE_ERROR = const(500)

TRUST = auth.TRUST
RECEIPTS = "receipts.cbor"
RECEIPTS_NEW = "receipts.new"

MAX_FRAME_LIMIT = const(1048576)  # the most the device ever offers (1 MiB)
LIST_MAX = const(1000)            # entries per LIST answer (RAM bound)
RECEIPT_MAX = const(4096)         # a receipt is ~250 bytes; anything far larger is refused
TARGET_MAX = const(64)            # characters of a refused target kept in the REFUSAL record
NAME_MAX = const(64)              # characters of an officer id or unit (ASSIGN)
MESSAGE_MAX = const(200)
STALL_MS = const(500)             # a partial frame this long without a byte is given up
PROTOCOL = const(2)               # protocol version (HELLO key 12)
load_trusted = auth.load_trusted
add_trusted = auth.add_trusted


class LinkError(Exception):
    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status
        self.msg = msg


def _kind(v):
    if v is None:
        return "null"
    return type(v).__name__


def _arg(args, k, op, what):
    if k not in args:
        raise LinkError(BAD_REQUEST, "%s: missing argument %d (%s)" % (op, k, what))
    return args[k]


def _uint(args, k, op, what):
    v = _arg(args, k, op, what)
    if type(v) is not int or v < 0:
        raise LinkError(BAD_REQUEST, "%s: argument %d (%s) must be an unsigned integer, not %s"
                        % (op, k, what, _kind(v)))
    return v


def _tstr(args, k, op, what):
    v = _arg(args, k, op, what)
    if type(v) is not str:
        raise LinkError(BAD_REQUEST, "%s: argument %d (%s) must be a text string, not %s"
                        % (op, k, what, _kind(v)))
    return v


def _bstr(args, k, op, what, size=None):
    v = _arg(args, k, op, what)
    if type(v) is not bytes:
        raise LinkError(BAD_REQUEST, "%s: argument %d (%s) must be a byte string, not %s"
                        % (op, k, what, _kind(v)))
    if size is not None and len(v) != size:
        raise LinkError(BAD_REQUEST, "%s: argument %d (%s) must be %d bytes, not %d"
                        % (op, k, what, size, len(v)))
    return v


def _name(args, k, what, required):
    # ASSIGN's officer id / unit: a non-empty text string of at most NAME_MAX characters,
    # or null (absent counts as null unless required)
    if k not in args and not required:
        return None
    v = _arg(args, k, "ASSIGN", what)
    if v is None:
        return None
    if type(v) is not str:
        raise LinkError(BAD_REQUEST, "ASSIGN: argument %d (%s) must be a text string or null, "
                        "not %s" % (k, what, _kind(v)))
    if not v or len(v) > NAME_MAX:
        raise LinkError(BAD_REQUEST, "ASSIGN: argument %d (%s) must be 1 to %d characters, "
                        "not %d" % (k, what, NAME_MAX, len(v)))
    if refusals.has_control(v):
        raise LinkError(BAD_REQUEST, "ASSIGN: argument %d (%s) holds a control character; "
                        "send printable text only" % (k, what))
    return v


def _target(v):
    # what a refused request was aimed at, as text for the REFUSAL record (bounded)
    if type(v) is str:
        t = v
    elif type(v) is int:
        t = str(v)
    elif type(v) is bytes:
        t = "0x" + "".join("%02x" % b for b in v[:TARGET_MAX // 2])
    elif v is None:
        t = "(none)"
    else:
        t = "(a %s)" % _kind(v)
    if len(t) > TARGET_MAX:
        t = t[:TARGET_MAX - 3] + "..."
    return t


def _bhead(n):
    # CBOR byte string head for n bytes
    if n < 24:
        return bytes((0x40 | n,))
    if n < 0x100:
        return bytes((0x58, n))
    if n < 0x10000:
        return bytes((0x59, n >> 8, n & 255))
    return bytes((0x5A, n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255))


# ---------------------------------------------------------------- internal flash state

def load_receipt_state(flash):
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


# ---------------------------------------------------------------- the link

class Link:
    def __init__(self, hal, store, recorder=None, cfg=None, max_frame=None, workflow=None):
        """The device's max_frame offer: max_frame if given, else hal.max_frame if the HAL
        has one (the simulator), else the setting "max_frame" (cfg, or the recorder's).
        workflow: the officer workflow (STATUS reports its state and waiting
        interruptions), or None. CHECK runs the self-check with the store's settings."""
        self.hal = hal
        self.store = store
        self.recorder = recorder
        self.workflow = workflow
        if cfg is None:
            cfg = recorder.cfg if recorder is not None else config.make()
        offer = max_frame or getattr(hal, "max_frame", None) or \
            cfg.get("max_frame", config.DEFAULTS["max_frame"])
        if offer > MAX_FRAME_LIMIT:
            offer = MAX_FRAME_LIMIT
        if offer < frame.PRE_HELLO_MAX:
            offer = frame.PRE_HELLO_MAX
        self.offer = offer                     # what the device offers in HELLO
        self.max_frame = frame.PRE_HELLO_MAX   # agreed: the largest payload either side sends
        self.dec = frame.Decoder(frame.PRE_HELLO_MAX)
        self.nonce = None                      # the device's current nonce (single use)
        self.station_nonce = None              # the station's nonce from the same HELLO
        self.station = None                    # fingerprint of the authenticated station
        self.host = None                       # the host's name from HELLO
        self.pub = ed25519.public(store.sk)
        self.fingerprint = devkey.fingerprint(self.pub)
        self.receipts = load_receipt_state(hal.flash)
        self.fatal = ()            # exception types service() lets through (power cuts)
        self.stall_ms = STALL_MS
        # the session ends after this long without a byte (device monotonic ms; 0: never)
        self.session_idle_ms = cfg.get("session_idle_ms", config.DEFAULTS["session_idle_ms"])
        self.ticks_ms = _ticks_ms  # for the stall timer (a partial frame given up)
        self.serving = False
        self._heard = 0
        self._active = hal.clock.mono_ms()   # when the last byte arrived (device clock)
        self._agree = None
        self.stats = {"requests": 0, "errors": 0, "bad_payloads": 0, "io_errors": 0}
        self._ops = (None, self._hello, self._auth, self._list, self._get, None,
                     self._receipt, self._time_set, None, None, None, self._assign,
                     self._status, self._check)

    @property
    def last_receipt(self):
        return self.receipts.get(1, -1)

    # ------------------------------------------------------------ serving
    def start(self):
        """Serving starts: 0x03 on the line is data from now on, not a REPL interrupt."""
        try:
            import micropython
            micropython.kbd_intr(-1)
        except (ImportError, AttributeError):
            pass
        self.serving = True
        self._heard = self.ticks_ms()

    def stop(self):
        try:
            import micropython
            micropython.kbd_intr(3)
        except (ImportError, AttributeError):
            pass
        self.serving = False

    def end_session(self):
        """Forget the session (AUTH, nonces, agreed frame size), so the next host starts at
        HELLO. service() calls it when the port reports the host gone (hal.serial's
        `connected`, SPEC §8.3) or after session_idle_ms without a byte."""
        self.station = None
        self.nonce = self.station_nonce = None
        self.max_frame = self.dec.max_frame = frame.PRE_HELLO_MAX

    def _session_over(self, ser, now):
        # the host went away (USB disconnected, DTR dropped), or the line has been quiet
        # for the idle timeout
        up = getattr(ser, "connected", None)
        if up is not None:
            if callable(up):
                try:
                    up = up()
                except Exception:
                    up = True
            if not up:
                return True
        idle = self.session_idle_ms
        return idle > 0 and now - self._active >= idle

    def service(self, max_frames=16):
        """Read what the line has (without waiting), answer up to max_frames requests.
        True if there was anything to do (call again soon), False if the line was idle."""
        if not self.serving:
            self.start()
        self.store.refusals.due()   # refusals counted during a burst (SPEC §5.3)
        ser = getattr(self.hal, "serial", None)
        if ser is None:
            return False
        dec = self.dec
        busy = False
        room = dec.room()
        if room:
            try:
                data = ser.read(room)
            except self.fatal:
                raise
            except Exception:
                data = None
                self.stats["io_errors"] += 1
            now = self.hal.clock.mono_ms()
            if (self.nonce is not None or self.station is not None) and \
                    self._session_over(ser, now):
                self.end_session()   # before the new bytes: they start at HELLO
            if data:
                dec.feed(data)
                self._heard = self.ticks_ms()
                self._active = now
                busy = True
            else:
                quiet = _ticks_diff(self.ticks_ms(), self._heard)
                if dec.pending() and quiet >= self.stall_ms:
                    dec.stalled()  # quiet line, partial frame: its LEN was garbage
                    self._heard = self.ticks_ms()
        full = getattr(ser, "busy", None)  # optional: output backed up, take no more requests
        n = 0
        while n < max_frames:
            if n and full is not None and full():
                break
            p = dec.next()
            if p is None:
                break
            n += 1
            busy = True
            self._handle(p)
        return busy

    def _send(self, *parts):
        w = self.hal.serial.write
        try:
            for p in parts:
                w(p)
        except self.fatal:
            raise
        except Exception:
            self.stats["io_errors"] += 1

    def _reply(self, rid, status, result=None, msg=None):
        resp = {0: rid, 1: status}
        if result is not None:
            resp[2] = result
        if msg is not None:
            if len(msg) > MESSAGE_MAX:
                msg = msg[:MESSAGE_MAX - 3] + "..."
            resp[3] = msg
        payload = cbor.dumps(resp)
        if len(payload) > self.max_frame:
            payload = cbor.dumps({0: rid, 1: DEVICE_ERROR, 3: "%s: the answer (%d bytes) does not "
                                  "fit the agreed frame (%d bytes)"
                                  % (OP_NAMES[self._op], len(payload), self.max_frame)})
        self._send(frame.encode(payload))

    def _handle(self, payload):
        self.stats["requests"] += 1
        try:
            req = cbor.loads(payload)
        except Exception as e:
            self.dec.reject()
            self.stats["bad_payloads"] += 1
            self.stats["errors"] += 1
            self._op = 0
            self._reply(0, BAD_REQUEST, None, "the frame's payload is not one well-formed "
                        "CBOR item (%s): dropped" % e)
            return
        rid = 0
        op = 0
        self._op = 0
        result = msg = None
        try:
            if type(req) is not dict:
                raise LinkError(BAD_REQUEST, "a request is a map {0: id, 1: op, 2: args}, not %s"
                                % _kind(req))
            rid = req.get(0)
            if type(rid) is not int or rid < 0:
                got = _kind(rid) if 0 in req else "nothing"
                rid = 0
                raise LinkError(BAD_REQUEST, "the request id (key 0) must be an unsigned "
                                "integer, not %s" % got)
            op = req.get(1)
            if type(op) is not int or op < HELLO or op > CHECK:
                shown = op if type(op) is int else _kind(op) if 1 in req else "none"
                op = 0
                raise LinkError(BAD_REQUEST, "unknown op %s (1 HELLO, 2 AUTH, 3 LIST, 4 GET, "
                                "5 READ, 6 RECEIPT, 7 TIME_SET, 8 DELETE, 9 FORMAT, 10 WRITE, "
                                "11 ASSIGN, 12 STATUS, 13 CHECK)" % shown)
            self._op = op
            args = req.get(2, {})
            if DELETE <= op <= WRITE:
                self._refuse(op, args)  # always raises: 405, or 500 if it could not be recorded
            if type(args) is not dict:
                raise LinkError(BAD_REQUEST, "%s: args (key 2) must be a map, not %s"
                                % (OP_NAMES[op], _kind(args)))
            if op > AUTH and self.station is None:
                raise LinkError(UNAUTHENTICATED, "%s needs AUTH first (HELLO, then AUTH with a "
                                "trusted station key)" % OP_NAMES[op])
            if op == READ:
                self._read(rid, args)  # answers itself (no copy of the data)
                return
            result = self._ops[op](args)
            status = OK
        except self.fatal:
            raise
        except LinkError as e:
            status, msg = e.status, e.msg
        except MemoryError:
            status, msg = DEVICE_ERROR, "%s: out of memory" % OP_NAMES[op]
        except OSError as e:
            status, msg = DEVICE_ERROR, "%s: storage error (%s); nothing was changed" % (
                OP_NAMES[op], e)
        except Exception as e:
            status, msg = DEVICE_ERROR, "%s: device error (%s: %s)" % (
                OP_NAMES[op], _kind(e), e)
        if status:
            self.stats["errors"] += 1
        self._reply(rid, status, result, msg)
        if op == HELLO and status == OK:
            self.max_frame = self.dec.max_frame = self._agree

    # ------------------------------------------------------------ ops
    def _hello(self, args):
        host_max = _uint(args, 1, "HELLO", "host max_frame")
        name = _tstr(args, 2, "HELLO", "host name")
        snonce = _bstr(args, 3, "HELLO", "station nonce", auth.NONCE_SIZE)
        if host_max < frame.PRE_HELLO_MAX:
            raise LinkError(BAD_REQUEST, "HELLO: host max_frame %d is below the %d bytes every "
                            "side must take" % (host_max, frame.PRE_HELLO_MAX))
        nonce = bytes(self.hal.random(auth.NONCE_SIZE))
        if len(nonce) != auth.NONCE_SIZE:
            raise LinkError(DEVICE_ERROR, "HELLO: the random source gave %d bytes, not 16"
                            % len(nonce))
        self._agree = host_max if host_max < self.offer else self.offer
        self.nonce = nonce
        self.station_nonce = snonce
        self.station = None
        self.host = name
        # nothing but what a host needs to start (SPEC §8.3): no key, head, officer, battery
        return {1: self.store.device, 9: nonce, 10: self._agree, 12: PROTOCOL}

    def _auth(self, args):
        nonce = self.nonce
        snonce = self.station_nonce
        self.nonce = self.station_nonce = None  # one attempt per nonce, good or bad
        if nonce is None:
            raise LinkError(REPLAY, "AUTH: no fresh nonce (each HELLO's nonce serves one AUTH "
                            "attempt): send HELLO again")
        pub = _bstr(args, 1, "AUTH", "station public key", 32)
        sig = _bstr(args, 2, "AUTH", "signature", 64)
        fp = devkey.fingerprint(pub)
        if pub not in load_trusted(self.hal.flash):
            raise LinkError(FORBIDDEN, "AUTH: station key %s is not trusted by this device" % fp)
        s = self.store
        th = auth.transcript(s.device, nonce, snonce, pub)
        if not auth.verify_station(pub, th, sig):
            raise LinkError(FORBIDDEN, "AUTH: the signature of station %s does not verify over "
                            "this session's transcript" % fp)
        proof = auth.device_proof(s.sk, th)
        self.station = fp
        hal = self.hal
        c = hal.clock
        sd = hal.sd
        free = sd.free()
        total = getattr(sd, "total", None)
        total = total() if total is not None else 0
        bat = getattr(hal, "battery", None)
        bat = bat() if bat is not None else 100
        if type(bat) is not int:
            bat = int(bat)
        bat = 0 if bat < 0 else 100 if bat > 100 else bat
        alerts = getattr(s, "alerts", None) or []
        return {1: fp, 2: proof, 3: self.pub, 4: self.fingerprint, 5: s.last,
                6: [c.rtc_ms(), c.mono_ms()],
                7: [free if free > 0 else 0, total if total > 0 else 0],
                8: bat, 11: s.officer, 13: s.fw, 14: alerts}

    def _list(self, args):
        since = _uint(args, 1, "LIST", "since seq")
        count = _uint(args, 2, "LIST", "max count")
        s = self.store
        cap = (self.max_frame - 48) // 17   # an entry takes at most 17 bytes
        n = count if count < cap else cap
        if n > LIST_MAX:
            n = LIST_MAX
        entries = s.list(since, n) if n else []
        if n and not entries and since < s.seq:
            raise LinkError(DEVICE_ERROR, "LIST from seq %d: the records could not be read from "
                            "the card" % since)
        nxt = entries[-1][0] + 1 if entries else since
        return {1: entries, 2: s.seq - 1, 3: nxt < s.seq}

    def _record(self, seq, what):
        """Record seq's bytes; 404 if the device has no such record, 500 if it cannot read
        one it has."""
        s = self.store
        rec = s.find(seq)
        if rec is None:
            if seq < s.seq and s.locate(seq) is not None:
                raise LinkError(DEVICE_ERROR, "%s: the record could not be read from the card"
                                % what)
            if seq < s.seq:   # in a gap a STORE_ALERT names (SPEC §5.2), or a log is gone
                raise LinkError(NOT_FOUND, "%s: not on this card (its chain has a gap there)"
                                % what)
            raise LinkError(NOT_FOUND, "%s: no such record (this device holds seq 0..%d)"
                            % (what, s.seq - 1))
        return rec

    def _get(self, args):
        seq = _uint(args, 1, "GET", "seq")
        rec = self._record(seq, "GET seq %d" % seq)
        return {1: rec}

    def _read(self, rid, args):
        seg = _uint(args, 1, "READ", "segment")
        ci = _uint(args, 2, "READ", "chunk index")
        off = _uint(args, 3, "READ", "offset in chunk")
        want = _uint(args, 4, "READ", "length")
        what = args.get(5, 0)
        if type(what) is not int or what < 0 or what > 1:
            raise LinkError(BAD_REQUEST, "READ: argument 5 (what) must be 0 (media) or 1 (chunk "
                            "index), not %r" % (what,))
        if want > self.max_frame:
            raise LinkError(TOO_LARGE, "READ segment %d chunk %d: %d bytes is longer than the "
                            "agreed frame (%d bytes)" % (seg, ci, want, self.max_frame))
        s = self.store
        info = s.segment_files(seg)
        if info is None:
            raise LinkError(NOT_FOUND, "READ segment %d: no such segment (seq %d is not a "
                            "REC_START record)" % (seg, seg))
        path = info[what]
        fs = s.fs
        size = fs.size(path)
        if size < 0:
            raise LinkError(NOT_FOUND, "READ segment %d: %s does not exist (yet)" % (seg, path))
        csize = size if what else info[2]
        pos = ci * csize + off
        if pos > size or (ci and ci * csize >= size):
            raise LinkError(NOT_FOUND, "READ segment %d chunk %d offset %d: past the end of %s "
                            "(%d bytes)" % (seg, ci, off, path, size))
        # response {0: id, 1: 0, 2: {1: data}}, encoded by hand around the data
        pre = bytearray(b"\xa3\x00")
        pre += cbor.dumps(rid)
        pre += b"\x01\x00\x02\xa1\x01"
        n = self.max_frame - len(pre) - 5
        if want < n:
            n = want
        if size - pos < n:
            n = size - pos
        data = fs.read(path, pos, n) if n > 0 else b""
        pre += _bhead(len(data))
        head, crc = frame.wrap(pre, len(data))
        self._send(head, data, frame.finish(crc, data))

    def _receipt(self, args):
        r = _bstr(args, 1, "RECEIPT", "receipt")
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
        for k in load_trusted(self.hal.flash):
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
        s = self.store
        if body[1] != s.device:
            raise LinkError(FORBIDDEN, "RECEIPT: the receipt is for device %s, this is %s"
                            % (body[1][:48], s.device))
        number = body[4]
        last = self.last_receipt
        if number <= last:
            raise LinkError(REPLAY, "RECEIPT number %d: not greater than the last accepted "
                            "receipt's (%d)" % (number, last))
        covered = body[2]
        rec = self._record(covered, "RECEIPT covering seq %d" % covered)
        if hashlib.sha256(rec).digest() != body[3]:
            raise LinkError(FORBIDDEN, "RECEIPT: record %d on this device does not have the hash "
                            "the receipt names (the station holds another record %d)"
                            % (covered, covered))
        rh = hashlib.sha256(r).digest()
        flash = self.hal.flash
        old = self.receipts
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
                self.receipts = new
            raise
        self.receipts = new
        return {1: s.seq - 1}

    def _time_set(self, args):
        new = _uint(args, 1, "TIME_SET", "new rtc ms")
        if new >= 1 << 63:
            raise LinkError(BAD_REQUEST, "TIME_SET: %d ms is not a time" % new)
        r = self.store.set_time(new)
        # (old, new, seq, drift ms/day or None, since ms or None, flagged)
        return {1: r[0], 2: r[1], 3: r[2], 4: r[3], 5: r[4], 6: bool(r[5])}

    def _assign(self, args):
        officer = _name(args, 1, "officer id", True)
        unit = _name(args, 2, "unit", False)
        if officer is None and unit is not None:
            raise LinkError(BAD_REQUEST, "ASSIGN: a unit (%s) without an officer: send the "
                            "officer id too, or null for both to release" % unit)
        return {1: self.store.assign(officer, unit, self.station)}

    def _status(self, args):
        s = self.store
        wf = self.workflow
        if wf is not None:
            state = wf.state
            waiting = list(wf.waiting())
        else:
            rec = self.recorder
            state = "recording" if rec is not None and rec.recording else "standby"
            waiting = []
        c = self.hal.clock
        return {1: state, 2: s.officer, 3: s.unit, 4: s.last_check, 5: waiting,
                6: [c.rtc_ms(), c.mono_ms()]}

    def _check(self, args):
        r = selfcheck.run(self.hal, self.store, self.store.cfg)
        return {1: r[1], 2: r[2], 3: r[3], 4: r[4]}

    def _refuse(self, op, args):
        name = OP_NAMES[op]
        if op == FORMAT:
            target = "store"
        else:
            target = _target(args.get(1) if type(args) is dict else None)
        try:
            self.store.request(name.lower(), target, "usb")
        except st.Refused as e:
            raise LinkError(REFUSED, e.msg)
        except OSError as e:
            raise LinkError(DEVICE_ERROR, "%s refused, but not recorded yet (%s): counted for "
                            "the next REFUSAL record" % (name, e))
        raise LinkError(DEVICE_ERROR, "%s: refused, but the refusal was not recorded" % name)
