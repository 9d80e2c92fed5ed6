"""The station side of the dock link (SPEC §7 framing, §8 messages).

    from host_tools.link import Client
    with Client("/dev/ttyACM0") as c:
        hello = c.hello("dock-3")             # station nonce out; id, device nonce, max_frame in
        res = c.auth(station_seed)            # mutual (SPEC §8.3): the station's signature out,
        c.check_device_proof(registered_pub, res)  # the device's in: DeviceProofError if wrong
        res = c.request(LIST, {1: 0, 2: 1000})     # -> result map; LinkError on error status
        t = c.time_set()                               # the station's clock; t[4] drift ms/day
        c.assign("PC-4711", "unit-7"); c.check(); c.status()   # officer workflow (SPEC §10)
        for key, result in c.read_many([(key, {1: seg, 2: i, 3: 0, 4: n}), ...], window=8):
            ...

Framing is implemented here (binascii.crc32, resynchronisation after garbage, lost bytes and
corrupt frames); nothing from the firmware is imported. Requests are numbered; responses
are matched by id. A request whose response does not come within ``timeout`` seconds of
silence is sent again (all requests are idempotent except RECEIPT and TIME_SET: RECEIPT is
re-sent only through :meth:`Client.receipt`, which confirms a 409 on a retry by finding
the RECEIPT record; TIME_SET is never re-sent). In a window, a response to a later request
means the earlier ones were lost (the device answers in order): those are re-sent at once.

Every wait is bounded: ``timeout`` is the longest silence, and a request's whole life
(its re-sends, garbage or foreign frames that keep bytes flowing) is bounded by its
deadline, ``(retries + 1) · timeout`` (the slow timeout for the ops that sign). A port
whose answer to HELLO is not a sealcam response (bytes that never make a frame, an echo of
the request, a frame that is not a HELLO result) raises NotARecorder within ``timeout``.
"""
from __future__ import annotations

import hashlib
import os
import stat
import time
from collections import deque

import cbor2

from . import records as _R
from .framing import MAGIC, PRE_HELLO_MAX, Deframer, _decode_exact, encode_frame

__all__ = ["MAGIC", "encode_frame", "Deframer", "Client", "Pipeline", "LinkError",
           "LinkTimeout", "LinkBroken", "LinkDown", "PortError", "HELLO", "AUTH", "LIST",
           "GET", "READ", "RECEIPT", "TIME_SET", "DELETE", "FORMAT", "WRITE", "ASSIGN",
           "STATUS", "CHECK", "EXPOSE", "STATUS_NAMES", "DeadlinePassed", "OP_NAMES", "PRE_HELLO_MAX",
           "NotARecorder",
           "DeviceProofError", "ProtocolViolation", "SeqGap", "transcript", "station_message", "device_message",
           "PROTOCOL_VERSION", "NONCE_SIZE"]

DEFAULT_HOST_MAX = 1 << 20      # what the station offers in HELLO
_NOT_A_RECORDER_BYTES = 4 * PRE_HELLO_MAX   # non-response bytes within one HELLO wait

HELLO, AUTH, LIST, GET, READ, RECEIPT, TIME_SET, DELETE, FORMAT, WRITE, ASSIGN, STATUS, \
    CHECK, EXPOSE = range(1, 15)
RECORD_RECEIPT = 8              # the record type of a RECEIPT record (SPEC §3.2)
OP_NAMES = {HELLO: "HELLO", AUTH: "AUTH", LIST: "LIST", GET: "GET", READ: "READ",
            RECEIPT: "RECEIPT", TIME_SET: "TIME_SET", DELETE: "DELETE", FORMAT: "FORMAT",
            WRITE: "WRITE", ASSIGN: "ASSIGN", STATUS: "STATUS", CHECK: "CHECK",
            EXPOSE: "EXPOSE"}
STATUS_NAMES = {0: "OK", 400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "FORBIDDEN",
                404: "NOT_FOUND", 405: "REFUSED", 409: "REPLAY", 413: "TOO_LARGE",
                423: "LOCKED", 500: "DEVICE_ERROR"}
# ops that change the device and carry their own replay protection: never re-sent blindly
_NOT_IDEMPOTENT = (RECEIPT, TIME_SET)
# ops for which the device signs or verifies (slow on the board): a longer timeout
_SLOW = (AUTH, RECEIPT, TIME_SET, DELETE, FORMAT, WRITE, ASSIGN, CHECK)


# --- errors -----------------------------------------------------------------------

def _clean(s, n=300):
    """A string from the recorder, for messages: control characters escaped, cut."""
    s = s[:n]
    return "".join(ch if ch.isprintable() else "\\x%02x" % ord(ch) if ord(ch) < 256
                   else "\\u%04x" % ord(ch) for ch in s)


class LinkError(Exception):
    """The device answered with an error status."""

    def __init__(self, status, message="", op=None, key=None):
        message = _clean(message) if isinstance(message, str) else ""
        self.status, self.message, self.op, self.key = status, message, op, key
        name = STATUS_NAMES.get(status, "?")
        what = ("%s: " % OP_NAMES.get(op, op)) if op is not None else ""
        super().__init__("%s%d %s%s" % (what, status, name,
                                        (": " + self.message) if self.message else ""))


class LinkDown(Exception):
    """The link cannot be used any more (timeouts or a broken port): resume later."""


class LinkTimeout(LinkDown):
    """No response after the retries."""


class DeadlinePassed(LinkTimeout):
    """The operation's overall deadline (Client.deadline) passed."""


class LinkBroken(LinkDown):
    """The port failed (the recorder was undocked, the pty closed, an I/O error)."""


class PortError(Exception):
    """The port cannot be opened (missing, not a tty, permission)."""


class NotARecorder(Exception):
    """Something answers on the port, but not the sealcam dock protocol (garbage, an echo,
    another device, an unsupported protocol version)."""


class ProtocolViolation(Exception):
    """An authenticated recorder answered outside what the protocol and its signed records
    allow (SPEC §8.4, §8.5): the station stops instead of following it."""


class SeqGap(ProtocolViolation):
    """LIST passes over seqs the recorder does not have (a card that lost records: SPEC
    §5.2, a STORE_ALERT names the gap): ``missing`` .. ``next`` - 1."""

    def __init__(self, missing, nxt):
        super().__init__("LIST lists seq %d after seq %d: the recorder does not have seqs "
                         "%d..%d" % (nxt, missing - 1, missing, nxt - 1))
        self.missing, self.next = missing, nxt


def _short(x, n=60):
    r = repr(x)
    return r if len(r) <= n else r[:n] + "..."


class DeviceProofError(Exception):
    """AUTH succeeded for the station, but the recorder did not prove it holds the device
    key (a missing or wrong device signature, SPEC §8.3)."""


# --- the port -----------------------------------------------------------------------

def _check_port(path):
    """Clear errors for a wrong port, naming it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise PortError("no such port: %s (is the recorder docked? for the virtual recorder, "
                        "use the PORT line printed by `sealcam sim serve`)" % path) from None
    except PermissionError:
        raise PortError("permission denied: %s" % path) from None
    except OSError as e:
        raise PortError("cannot open port %s: %s" % (path, e.strerror or e)) from None
    if not stat.S_ISCHR(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else \
            "a regular file" if stat.S_ISREG(st.st_mode) else "not a character device"
        raise PortError("not a serial port (tty): %s is %s" % (path, kind))
    if not os.access(path, os.R_OK | os.W_OK):
        raise PortError("permission denied: %s (no read/write access; on Linux add your user "
                        "to the 'dialout' group)" % path)


def _open_serial(path, baud):
    import serial
    _check_port(path)
    try:
        ser = serial.Serial(path, baudrate=baud, timeout=0, write_timeout=None,
                            exclusive=True)
    except serial.SerialException as e:
        msg = str(e)
        if "Inappropriate ioctl" in msg or "Errno 25" in msg:
            raise PortError("not a serial port (tty): %s" % path) from None
        if "Permission denied" in msg or "Errno 13" in msg:
            raise PortError("permission denied: %s" % path) from None
        if "Resource temporarily unavailable" in msg or "Errno 11" in msg:
            raise PortError("port %s is in use by another program" % path) from None
        raise PortError("cannot open port %s: %s" % (path, msg)) from None
    except (OSError, ValueError) as e:
        raise PortError("cannot open port %s: %s" % (path, e)) from None
    return ser


PROTOCOL_VERSION = 2
NONCE_SIZE = 16
_CONTEXT = b"sealcam-auth-v2"


def transcript(device_id: str, device_nonce: bytes, station_nonce: bytes,
               station_pub: bytes) -> bytes:
    """th of SPEC §8.3: SHA-256("sealcam-auth-v2" 0x00 id 0x00 device nonce station nonce
    station public key)."""
    return hashlib.sha256(b"".join((_CONTEXT, b"\x00", device_id.encode("utf-8"), b"\x00",
                                    bytes(device_nonce), bytes(station_nonce),
                                    bytes(station_pub)))).digest()


def station_message(th: bytes) -> bytes:
    return _CONTEXT + b" station" + th


def device_message(th: bytes) -> bytes:
    return _CONTEXT + b" device" + th


class _Pending:
    __slots__ = ("key", "op", "args", "ids", "sendseq", "tries", "stalls")


    def __init__(self, key, op, args):
        self.key, self.op, self.args = key, op, args
        self.ids = []
        self.sendseq = 0
        self.tries = 0       # sends
        self.stalls = 0      # timeouts while it was outstanding


class Client:
    """A station's connection to one recorder over a serial port (or pty).

    ``timeout``: seconds of silence after which a request counts as lost and is sent again;
    ``retries``: how many times a request is sent again before LinkTimeout.
    """

    def __init__(self, port_path, timeout=2.0, baud=115200, *, retries=5,
                 host_max_frame=DEFAULT_HOST_MAX, slow_timeout=None, serial_port=None):
        self.port = port_path
        self.timeout = float(timeout)
        # AUTH, RECEIPT, …: the device verifies or signs (seconds on a board's MicroPython)
        self.slow_timeout = float(slow_timeout) if slow_timeout else max(self.timeout, 10.0)
        self.retries = int(retries)
        self.host_max_frame = int(host_max_frame)
        self.max_frame = PRE_HELLO_MAX
        self._ser = serial_port if serial_port is not None else _open_serial(port_path, baud)
        self._fd = getattr(self._ser, "fd", None)
        self._rx = Deframer(PRE_HELLO_MAX)
        self._ready = deque()        # decoded responses not yet taken
        self._next_id = 1
        self._sendseq = 0
        # statistics
        self.bytes_in = self.bytes_out = 0
        self.resent = 0
        self.timeouts = 0
        self.foreign = 0             # well-formed CBOR items that were not responses
        self.op_deadline = None      # monotonic time the current operation must end by
        self._sent_auth = False      # a session may be authenticated (end it at close)
        self.t_active = time.monotonic()   # the last byte sent or received
        self._op_seconds = 0.0
        self.station_nonce = None    # of the last HELLO (SPEC §8.3)
        self.device_id = self.device_nonce = None
        self.th = None               # the transcript hash of the last AUTH

    # -- context -------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def end_session(self):
        """End an authenticated session (SPEC §8.3): a HELLO whose answer is not needed, so
        no other host on the same port finds the session open. Best effort."""
        if self._ser is None or not self._sent_auth:
            return
        self._sent_auth = False
        try:
            self._write(encode_frame({0: self._next_id, 1: HELLO, 2: {
                1: PRE_HELLO_MAX, 2: "end", 3: os.urandom(NONCE_SIZE)}}))
            self._next_id += 1
            self._ser.flush()
        except Exception:
            pass

    def close(self):
        self.end_session()
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:
                pass

    # -- raw I/O ---------------------------------------------------------------------
    def _write(self, data):
        if self._ser is None:
            raise LinkBroken("the port %s is closed" % self.port)
        try:
            self._ser.write(data)
        except Exception as e:   # serial.SerialException, OSError, termios.error
            raise LinkBroken("the link on %s broke while sending: %s" % (self.port, e)) from None
        self.bytes_out += len(data)
        self.t_active = time.monotonic()

    def _parse(self, hard=None):
        for item in self._rx.frames(hard):
            self._ready.append(item)

    def _fill(self, wait, hard=None):
        """Read what is available, waiting up to ``wait`` seconds for the first byte.
        Returns the number of bytes read."""
        ser = self._ser
        if ser is None:
            raise LinkBroken("the port %s is closed" % self.port)
        try:
            if self._fd is not None:
                import select
                r, _, _ = select.select([self._fd], [], [], max(0.0, wait))
                if not r:
                    return 0
                data = os.read(self._fd, 1 << 20)
                if not data:
                    raise LinkBroken("the link on %s broke: the other end closed it "
                                     "(recorder undocked?)" % self.port)
            else:  # pragma: no cover - non-posix ports
                ser.timeout = max(0.0, wait)
                data = ser.read(max(1, ser.in_waiting))
                if not data:
                    return 0
        except LinkBroken:
            raise
        except Exception as e:  # OSError (EIO when the pty closes), SerialException
            raise LinkBroken("the link on %s broke while receiving: %s (recorder undocked?)"
                             % (self.port, e)) from None
        self.bytes_in += len(data)
        self.t_active = time.monotonic()
        self._rx.feed(data)
        self._parse(hard)
        return len(data)

    def _recv(self, timeout, hard=None):
        """The next well-formed response, or None after ``timeout`` s without any byte, or
        at the monotonic time ``hard`` (bytes that keep flowing never extend past it)."""
        if hard is None:
            hard = time.monotonic() + 30 * timeout
        while True:
            while self._ready:
                item = self._ready.popleft()
                if isinstance(item, dict) and isinstance(item.get(0), int) \
                        and isinstance(item.get(1), int):
                    bad = _R.hostile_values(item, text=False)
                    if bad:     # SPEC §6.1: no answer holds an integer beyond 64 bits
                        raise ProtocolViolation("an answer on %s is not valid: %s"
                                                % (self.port, bad.replace("body", "it")))
                    return item
                self.foreign += 1   # a well-formed CBOR item that is not a response: ignored
            deadline = time.monotonic() + timeout
            while not self._ready:
                now = time.monotonic()
                left = min(deadline, hard) - now
                if left <= 0:
                    self._rx.stalled()
                    self._parse(hard)
                    if not self._ready:
                        return None
                    break
                if self._fill(left, hard):
                    deadline = time.monotonic() + timeout   # bytes are flowing
                    if self._ready:
                        break

    def _send(self, p: _Pending):
        rid = self._next_id
        self._next_id += 1
        self._sendseq += 1
        p.ids.append(rid)
        p.sendseq = self._sendseq
        p.tries += 1
        msg = {0: rid, 1: p.op}
        if p.args is not None:
            msg[2] = p.args
        frame = encode_frame(msg)
        if len(frame) - 10 > self.max_frame:
            raise ValueError("request too large for the agreed frame (%d > %d bytes)"
                             % (len(frame) - 10, self.max_frame))
        self._write(frame)
        return rid

    # -- requests ----------------------------------------------------------------------
    def deadline(self, seconds):
        """Context manager: everything inside (each request, re-sends, new sessions) must
        end within ``seconds``; LinkTimeout after that. Nested deadlines keep the earlier."""
        client = self

        class _D:
            def __enter__(self):
                self.old = client.op_deadline
                end = time.monotonic() + seconds
                client.op_deadline = end if self.old is None else min(self.old, end)
                client._op_seconds = seconds
                return client

            def __exit__(self, *exc):
                client.op_deadline = self.old

        return _D()

    def _check_op_deadline(self, op):
        if self.op_deadline is not None and time.monotonic() >= self.op_deadline:
            raise DeadlinePassed("the recorder on %s did not complete %s within the deadline of "
                              "%.0f s" % (self.port, OP_NAMES.get(op, op), self._op_seconds))

    def budget(self, op):
        """Seconds a request of ``op`` may take in all, re-sends included (its deadline)."""
        t = self.slow_timeout if op in _SLOW else self.timeout
        return t * (self.retries + 1)

    def call(self, op, args=None, *, retry=None, tries=None):
        """Send one request; return (response map of any status, sends). Re-sends on timeout
        (not for RECEIPT/TIME_SET unless ``retry``); LinkTimeout after ``tries`` sends
        (default retries + 1) or at the request's deadline (budget(op))."""
        if retry is None:
            retry = op not in _NOT_IDEMPOTENT
        tries = self.retries + 1 if tries is None else tries
        timeout = self.slow_timeout if op in _SLOW else self.timeout
        hard = time.monotonic() + timeout * tries
        if self.op_deadline is not None:
            hard = min(hard, self.op_deadline)
        p = _Pending(None, op, args)
        self._send(p)
        while True:
            resp = self._recv(timeout, hard)
            if resp is None:
                self.timeouts += 1
                self._check_op_deadline(op)
                if not retry or p.tries >= tries or time.monotonic() >= hard:
                    raise LinkTimeout("no answer from the recorder on %s to %s after %d "
                                      "attempt%s in %.0f s" % (
                                          self.port, OP_NAMES.get(op, op), p.tries,
                                          "" if p.tries == 1 else "s", timeout * tries))
                self.resent += 1
                self._send(p)
                continue
            # each HELLO makes a new nonce: only the answer to the latest one will do
            if resp[0] == p.ids[-1] or (op != HELLO and resp[0] in p.ids):
                return resp, p.tries

    def request(self, op, args=None):
        """Send a request and return its result map; LinkError for an error status,
        LinkTimeout when no answer comes after the retries."""
        resp, _ = self.call(op, args)
        return self._result(op, resp)

    @staticmethod
    def _result(op, resp, key=None):
        status = resp.get(1)
        if status != 0:
            msg = resp.get(3)
            raise LinkError(status, msg if isinstance(msg, str) else "", op, key)
        res = resp.get(2, {})
        return res if isinstance(res, dict) else {}

    # -- session -----------------------------------------------------------------------
    def _not_a_recorder(self, why):
        return NotARecorder("the device on %s is not a sealcam recorder (%s): check the port"
                            % (self.port, why))

    def hello(self, host_name="sealcam-station"):
        """HELLO with a fresh station nonce (SPEC §8.3): returns the result map (``1``
        device id, ``9`` device nonce, ``10`` agreed max_frame, ``12`` protocol version);
        afterwards frames may be up to the agreed size. NotARecorder if the port answers
        something that is not a sealcam HELLO result, LinkTimeout if it stays silent."""
        self._rx.max_payload = PRE_HELLO_MAX
        self.max_frame = PRE_HELLO_MAX
        self.station_nonce = os.urandom(NONCE_SIZE)
        self.device_id = self.device_nonce = self.th = None
        args = {1: self.host_max_frame, 2: str(host_name)[:64], 3: self.station_nonce}
        # a port that floods anything but a response is named at once; one that sent a
        # few bytes (a corrupt frame on a noisy line) or nothing gets the retries
        # (answers to an earlier session's requests are frames, not garbage: they never
        # count against the port)
        first = (self.bytes_in, self.foreign)
        for attempt in range(self.retries + 1):
            before = self._rx.skipped + 64 * self.foreign
            try:
                resp, _ = self.call(HELLO, args, tries=1)
                break
            except DeadlinePassed:
                raise
            except LinkTimeout:
                if self._rx.skipped + 64 * self.foreign - before > _NOT_A_RECORDER_BYTES:
                    raise self._not_a_recorder("it sends bytes that are not sealcam "
                                               "responses") from None
                if attempt == self.retries:
                    if (self.bytes_in, self.foreign) != first:
                        raise self._not_a_recorder("it answers HELLO with bytes that are not "
                                                   "a sealcam response") from None
                    raise LinkTimeout("no answer from %s to HELLO after %d attempts of %.0f s"
                                      % (self.port, attempt + 1, self.timeout)) from None
        if resp.get(1) == HELLO and resp.get(2) == args:
            raise self._not_a_recorder("it echoes what it is sent")
        status = resp.get(1)
        if status not in STATUS_NAMES:
            raise self._not_a_recorder("its answer to HELLO has status %r" % (status,))
        if status != 0:
            raise LinkError(status, resp.get(3) if isinstance(resp.get(3), str) else "",
                            HELLO)
        res = resp.get(2)
        if not isinstance(res, dict):
            raise self._not_a_recorder("its answer to HELLO carries no result")
        ver = res.get(12)
        if ver != PROTOCOL_VERSION:
            raise self._not_a_recorder(
                "it speaks dock protocol version %r, this station version %d (update the "
                "recorder's firmware or the station)" % (ver, PROTOCOL_VERSION)
                if isinstance(ver, int) else "its HELLO result has no protocol version")
        dev, dn, agreed = res.get(1), res.get(9), res.get(10)
        if not (isinstance(dev, str) and 0 < len(dev) <= 64) or \
                not (isinstance(dn, bytes) and len(dn) == NONCE_SIZE):
            raise self._not_a_recorder("its HELLO result has no valid device id and nonce")
        if not isinstance(agreed, int) or agreed < PRE_HELLO_MAX:
            agreed = PRE_HELLO_MAX
        self.max_frame = min(agreed, self.host_max_frame)
        self._rx.max_payload = self.max_frame
        self.device_id, self.device_nonce = dev, dn
        return res

    def auth(self, station_key, host_name="sealcam-station"):
        """AUTH (SPEC §8.3) after hello(): the station's signature over the transcript
        out; returns the result map (``2`` the device's signature, ``3`` its key, ``5``
        head, ...). The caller MUST then check_device_proof() with the key it registered
        for the device before it accepts anything. AUTH is never re-sent in a session (a
        re-sent AUTH finds its nonce used): if its answer is lost, or a duplicate got 409,
        a new HELLO starts a new session, up to ``retries`` times (the device id must stay
        the same). LinkError 403 (station key not trusted / bad signature)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        if not isinstance(station_key, Ed25519PrivateKey):
            station_key = Ed25519PrivateKey.from_private_bytes(bytes(station_key))
        pub = station_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw)
        if self.device_nonce is None:
            raise ValueError("AUTH needs a HELLO first")
        dev = self.device_id
        for attempt in range(self.retries + 1):
            if attempt:
                self.hello(host_name)
                if self.device_id != dev:
                    raise self._not_a_recorder("its device id changed between sessions "
                                               "(%r, then %r)" % (dev, self.device_id))
            th = transcript(dev, self.device_nonce, self.station_nonce, pub)
            sig = station_key.sign(station_message(th))
            self._sent_auth = True
            try:
                resp, _ = self.call(AUTH, {1: pub, 2: sig}, retry=False)
            except DeadlinePassed:
                raise
            except LinkTimeout:
                if attempt == self.retries:
                    raise
                continue
            self.device_nonce = None        # used, whatever the answer
            if resp.get(1) == 409 and attempt < self.retries:
                continue
            res = self._result(AUTH, resp)
            self.th = th
            return res
        raise LinkTimeout("no AUTH session with the recorder on %s" % self.port)

    def check_device_proof(self, device_pub, res):
        """Raise DeviceProofError unless ``res`` (the AUTH result) holds the device's
        signature over this session's transcript with ``device_pub`` (the key the station
        registered for the device; SPEC §8.3)."""
        from cryptography.exceptions import InvalidSignature
        from . import keys
        sig = res.get(2) if isinstance(res, dict) else None
        if self.th is None:
            raise DeviceProofError("no authenticated session on %s" % self.port)
        if not isinstance(sig, bytes) or len(sig) != 64:
            raise DeviceProofError("the recorder on %s sent no device signature in AUTH: it "
                                   "did not prove it holds the key of %s" % (
                                       self.port, self.device_id))
        try:
            keys.public_key_object(device_pub).verify(sig, device_message(self.th))
        except (InvalidSignature, ValueError):
            raise DeviceProofError(
                "the recorder on %s did not prove it holds the registered key of %s (its "
                "device signature in AUTH does not verify): not that recorder, or it was "
                "re-keyed" % (self.port, self.device_id)) from None

    def receipt(self, receipt_bytes, since_seq, upto=None):
        """Send a custody receipt (SPEC §8.6); return the seq of the RECEIPT record.

        RECEIPT is sent again after a timeout; a 409 REPLAY counts as success only after a
        RECEIPT record carrying H(receipt) is found on the device (LIST from
        ``since_seq``, GET of each RECEIPT record). Returns (seq, confirmed_by) where
        confirmed_by is "response" or "record"."""
        resp, tries = self.call(RECEIPT, {1: receipt_bytes}, retry=True)
        if resp.get(1) not in (0, 401):     # 401: no session, nothing was accepted
            # 409: sent again (by us after a timeout, or duplicated on the line) after the
            # first was accepted and its answer lost? Any other error may also be the answer
            # to such a duplicate. Only the RECEIPT record can tell.
            seq = self.find_receipt_record(receipt_bytes, since_seq, upto)
            if seq is not None:
                return seq, "record"
        res = self._result(RECEIPT, resp)
        return res.get(1), "response"

    def find_receipt_record(self, receipt_bytes, since_seq, upto=None):
        """The seq of the device's RECEIPT record whose `receipt` (key 26) is H(receipt),
        searching from since_seq up to ``upto`` (default: the head seq LIST reports, at
        most 4,096 records on); None if there is none."""
        want = hashlib.sha256(receipt_bytes).digest()
        if upto is None:
            upto = since_seq + 4095
        for seq, rtype, _ in self.list_iter(since_seq, upto):
            if rtype != RECORD_RECEIPT:
                continue
            rec = self.request(GET, {1: seq}).get(1)
            try:
                body = _decode_exact(cbor2.loads(rec).value[2])
            except Exception:
                continue
            if isinstance(body, dict) and body.get(26) == want:
                return seq
        return None

    def time_set(self, new_ms=None):
        """TIME_SET (SPEC §8.7): set the recorder's clock to ``new_ms`` (default: this
        host's clock, read just before sending). Returns the result map: ``1`` old rtc,
        ``2`` new rtc, ``3`` seq of the TIME_SET record, ``4`` drift ms/day measured since
        the previous calibration (None at the first), ``5`` ms since it (None), ``6``
        whether the drift is beyond the recorder's limit (the record is flagged DRIFT).
        Never sent twice: LinkTimeout if the answer is lost (the TIME_SET record, if it was
        written, shows what happened)."""
        if new_ms is None:
            new_ms = int(time.time() * 1000)
        res = self.request(TIME_SET, {1: int(new_ms)})
        for k, default in ((4, None), (5, None), (6, False)):
            res.setdefault(k, default)   # a recorder from before SPEC draft 3
        return res

    def assign(self, officer, unit=None):
        """ASSIGN (SPEC §10.5): the recorder's officer and unit (text of 1..64 characters);
        officer None releases it (unit must then be None too). Returns the seq of the
        ASSIGN record."""
        if officer is None and unit is not None:
            raise ValueError("a unit without an officer")
        for i, v in ((1, officer), (2, unit)):   # refused here as the recorder refuses it
            if isinstance(v, str) and _R.has_control(v):
                raise LinkError(400, "ASSIGN: argument %d (%s) holds a control character; "
                                "nothing sent" % (i, _R.printable(v)), ASSIGN)
        return self.request(ASSIGN, {1: officer, 2: unit}).get(1)

    def status(self):
        """STATUS (needs AUTH): ``1`` state (`standby`, `recording`, `choosing`), ``2``
        officer, ``3`` unit, ``4`` the last self-check {1 ready, 2 reasons, 3 facts, 4 seq}
        or None, ``5`` seqs of interruptions waiting for a voice annotation, ``6`` [rtc,
        mono]."""
        return self.request(STATUS)

    def check(self):
        """CHECK (SPEC §10.6): run the recorder's self-check; returns ``1`` ready (bool),
        ``2`` reasons (list of str), ``3`` facts {1 battery %, 2 storage minutes, 3 clock
        error ms, 4 age s of the oldest record no receipt covers, 5 ms since calibration},
        ``4`` seq of the SELF_CHECK record."""
        return self.request(CHECK)

    def list_iter(self, since, upto=None, page=1000):
        """Each (seq, type, size) from ``since`` up to ``upto`` (inclusive; None: the head
        seq the first LIST answer reports), lazily, page by page. Checked as it arrives
        (SPEC §8.4): seqs consecutive from ``since`` and never past ``upto``, at most
        ``page`` entries a page, sizes within the agreed frame, and every page that says
        `more` brings at least one entry. ProtocolViolation otherwise: no answer can make
        this loop endless."""
        page = max(1, int(page))
        expect = since
        while upto is None or expect <= upto:
            res = self.request(LIST, {1: expect, 2: page})
            entries, more = res.get(1), res.get(3)
            if upto is None:
                upto = res.get(2)
                if not isinstance(upto, int) or upto < -1:
                    raise ProtocolViolation("LIST from seq %d: head seq %r" % (expect, upto))
            if not isinstance(entries, list) or len(entries) > page:
                raise ProtocolViolation("LIST from seq %d: %s" % (
                    expect, "no list of entries" if not isinstance(entries, list) else
                    "%d entries, asked for %d at most" % (len(entries), page)))
            for e in entries:
                if not (isinstance(e, list) and len(e) == 3
                        and all(type(x) is int for x in e)):
                    raise ProtocolViolation("LIST from seq %d: entry %r is not [seq, type, "
                                            "size]" % (expect, _short(e)))
                if expect < e[0] <= upto:
                    raise SeqGap(expect, e[0])
                if e[0] != expect:
                    raise ProtocolViolation("LIST lists seq %d where seq %d was expected (seqs "
                                            "must be consecutive)" % (e[0], expect))
                if e[0] > upto:
                    raise ProtocolViolation("LIST lists seq %d, past the head seq %d"
                                            % (e[0], upto))
                if not 0 < e[2] <= self.max_frame:
                    raise ProtocolViolation("LIST gives seq %d a size of %d bytes (1 to %d "
                                            "allowed)" % (e[0], e[2], self.max_frame))
                yield tuple(e)
                expect += 1
            if not entries:
                if more:
                    raise ProtocolViolation("LIST from seq %d says more records follow but "
                                            "lists none" % expect)
                return
            if not more:
                return

    def list_all(self, since, page=1000):
        """Every (seq, type, size) from ``since`` to the head seq of the first answer."""
        return list(self.list_iter(since, None, page))

    # -- windows -----------------------------------------------------------------------
    def pipeline(self, window=8):
        from .pipeline import Pipeline
        return Pipeline(self, window)

    def read_many(self, requests, window=8, op=READ, missing_ok=False):
        """Pipelined requests (READ by default): ``requests`` is an iterable of
        (key, args); yields (key, result) in the order the answers arrive. Lost or corrupt
        frames are re-requested; an error status raises LinkError (with .key), except 404
        with ``missing_ok``, which yields (key, None)."""
        pl = self.pipeline(window)
        it = iter(requests)
        exhausted = False

        def refill():
            nonlocal exhausted
            while not exhausted and pl.queued < window:
                try:
                    key, args = next(it)
                except StopIteration:
                    exhausted = True
                    return
                pl.submit(key, op, args)

        refill()
        while pl.busy:
            key, resp = pl.next()
            refill()
            if missing_ok and resp.get(1) == 404:
                yield key, None
            else:
                yield key, self._result(op, resp, key)



def __getattr__(name):
    if name == "Pipeline":        # host_tools/pipeline.py (it imports this module)
        from .pipeline import Pipeline
        return Pipeline
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
