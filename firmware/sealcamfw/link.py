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
# This module is the session and the dispatch; the ops live beside it, each a function
# of (link, args):
#   linkproto.py  op numbers, status codes, limits, LinkError, argument checks
#   linkdock.py   HELLO, AUTH, TIME_SET, ASSIGN, STATUS, CHECK; DELETE/FORMAT/WRITE refused
#   linkrec.py    LIST, GET, READ (records and media)
#   receipts.py   RECEIPT and the last accepted receipt in internal flash (receipts.cbor)
# Mutual authentication (HELLO, AUTH: SPEC §8.3) is auth.py; station trust lives there
# too (trust.cbor).
#
# The session (HELLO's nonces, AUTH) ends at the next HELLO, when hal.serial reports the
# host gone (its optional `connected`), or after session_idle_ms without a byte on the
# device clock (setting, default 15 s). Refused DELETE/FORMAT/WRITE go to the store's
# coalesced refusals (refusals.py): recorded, or counted for the next REFUSAL record.
#
# STATUS reports the officer workflow's state and its interruptions waiting for a voice
# annotation when the Link is given the workflow (Link(..., workflow=wf): wf.state, a
# str, and wf.waiting(), a list of seqs); without one, "recording" or "standby".
from sealcamfw import auth
from sealcamfw import cbor
from sealcamfw import config
from sealcamfw import devkey
from sealcamfw import ed25519
from sealcamfw import frame
from sealcamfw import linkdock
from sealcamfw import linkrec
from sealcamfw import receipts
from sealcamfw.linkproto import *  # noqa: F401,F403  (every name of the link's vocabulary, as link.X)
from sealcamfw.linkproto import (AUTH, BAD_REQUEST, DELETE, DEVICE_ERROR, EXPOSE, HELLO,
                       MAX_FRAME_LIMIT, MESSAGE_MAX, OK, OP_NAMES, READ, STALL_MS,
                       UNAUTHENTICATED, WRITE, LinkError, kind)
from sealcamfw.receipts import RECEIPTS, RECEIPTS_NEW  # noqa: F401

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

TRUST = auth.TRUST
PRODUCTION_FLAG = "production"   # in internal flash: the board is locked (no REPL)
load_trusted = auth.load_trusted
add_trusted = auth.add_trusted
load_receipt_state = receipts.load_state

# the op of each number (READ answers itself; DELETE, FORMAT, WRITE are refused first)
_OPS = (None, linkdock.hello, linkdock.authenticate, linkrec.list_records, linkrec.get, None,
        receipts.accept, linkdock.time_set, None, None, None, linkdock.assign,
        linkdock.status, linkdock.check, linkdock.expose)


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
        self.receipts = receipts.load_state(hal.flash)
        self.fatal = ()            # exception types service() lets through (power cuts)
        self.stall_ms = STALL_MS
        # the session ends after this long without a byte (device monotonic ms; 0: never)
        self.session_idle_ms = cfg.get("session_idle_ms", config.DEFAULTS["session_idle_ms"])
        self.ticks_ms = _ticks_ms  # for the stall timer (a partial frame given up)
        self.serving = False
        self.repl = False          # start() decides: a Ctrl-C outside a frame gives the REPL
        self._heard = 0
        self._active = hal.clock.mono_ms()   # when the last byte arrived (device clock)
        self._agree = None
        self.stats = {"requests": 0, "errors": 0, "bad_payloads": 0, "io_errors": 0}

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
        # a Ctrl-C outside a frame hands the port back to the REPL: only on a port that
        # is also the REPL's (hal.BoardSerial), and never on a production-locked board
        ser = getattr(self.hal, "serial", None)
        self.repl = bool(getattr(ser, "repl", False)) and \
            not self.hal.flash.exists(PRODUCTION_FLAG)

    def stop(self):
        try:
            import micropython
            micropython.kbd_intr(3)
        except (ImportError, AttributeError):
            pass
        self.serving = False

    def _repl_break(self, data):
        # 0x03 before any frame begins in what just arrived (the decoder holds no partial
        # frame): a technician's Ctrl-C (mpremote sends "\r\x03"). Serving stops and
        # KeyboardInterrupt ends main.py, as a Ctrl-C does on a board; the REPL follows.
        i = data.find(b"\x03")
        if i < 0:
            return
        m = data.find(frame.MAGIC[:1])
        if 0 <= m < i:
            return
        self.stop()
        raise KeyboardInterrupt

    def end_session(self):
        """Forget the session (AUTH, nonces, agreed frame size), so the next host starts at
        HELLO. service() calls it when the port reports the host gone (hal.serial's
        `connected`, SPEC §8.3) or after session_idle_ms without a byte."""
        self.station = None
        self.nonce = self.station_nonce = None
        self.max_frame = self.dec.max_frame = frame.PRE_HELLO_MAX
        linkdock.unexpose(self)    # an exposed card ends with the session (SPEC §8.8)

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
            if data and self.repl and not dec.pending():
                self._repl_break(data)
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
                                % kind(req))
            rid = req.get(0)
            if type(rid) is not int or rid < 0:
                got = kind(rid) if 0 in req else "nothing"
                rid = 0
                raise LinkError(BAD_REQUEST, "the request id (key 0) must be an unsigned "
                                "integer, not %s" % got)
            op = req.get(1)
            if type(op) is not int or op < HELLO or op > EXPOSE:
                shown = op if type(op) is int else kind(op) if 1 in req else "none"
                op = 0
                raise LinkError(BAD_REQUEST, "unknown op %s (1 HELLO, 2 AUTH, 3 LIST, 4 GET, "
                                "5 READ, 6 RECEIPT, 7 TIME_SET, 8 DELETE, 9 FORMAT, 10 WRITE, "
                                "11 ASSIGN, 12 STATUS, 13 CHECK, 14 EXPOSE)" % shown)
            self._op = op
            args = req.get(2, {})
            if DELETE <= op <= WRITE:
                linkdock.refuse(self, op, args)  # always raises: 405, or 500 if it could not be recorded
            if type(args) is not dict:
                raise LinkError(BAD_REQUEST, "%s: args (key 2) must be a map, not %s"
                                % (OP_NAMES[op], kind(args)))
            if op > AUTH and self.station is None:
                raise LinkError(UNAUTHENTICATED, "%s needs AUTH first (HELLO, then AUTH with a "
                                "trusted station key)" % OP_NAMES[op])
            linkdock.locked(self, op)  # 423 for ops that write while the card is exposed
            if op == READ:
                linkrec.read(self, rid, args)  # answers itself (no copy of the data)
                return
            result = _OPS[op](self, args)
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
                OP_NAMES[op], kind(e), e)
        if status:
            self.stats["errors"] += 1
        self._reply(rid, status, result, msg)
        if op == HELLO and status == OK:
            self.max_frame = self.dec.max_frame = self._agree

    def _receipt(self, args):
        # the RECEIPT op (receipts.py); the simulator hands a receipt over this way too
        return receipts.accept(self, args)
