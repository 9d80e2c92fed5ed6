"""A fake recorder serving the dock link (SPEC §7–§8) on a real pty, for station tests.

It serves a store written by tests/refwriter.py (RefStore) and appends RECEIPT / REFUSAL
records through it, so the station can be tested without the firmware and with faults
injected: dropped or corrupted responses, garbage between frames, a link that breaks
after N bytes, a head that went back.

    dev = FakeDevice(refstore, trust=[station_pub])
    dev.start()            # dev.port is the pty path to give the station
    ...
    dev.stop()

It speaks mutual authentication v2 (SPEC §8.3), written here from the SPEC (nothing from
the station or the firmware is imported). For impersonation tests, ``proof`` says what it
answers in AUTH as the device signature: "real" (signed with the store's key), "none", a
``bytes`` signature to replay, or an Ed25519PrivateKey to sign with (an impostor's key).
``hook(dev, req)`` may answer a request itself: return a dict (sent as one frame), bytes
(sent raw), or None for the normal answer.
"""
from __future__ import annotations

import binascii
import hashlib
import os
import random
import select
import threading
import tty

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import refwriter as rw

MAGIC = b"\xc5\x1a"


def frame(obj) -> bytes:
    payload = cbor2.dumps(obj, canonical=True)
    hdr = len(payload).to_bytes(4, "big")
    return MAGIC + hdr + payload + (binascii.crc32(hdr + payload) & 0xFFFFFFFF).to_bytes(4, "big")


def transcript(device, device_nonce, station_nonce, station_pub):
    """th of SPEC §8.3."""
    return hashlib.sha256(b"sealcam-auth-v2\x00" + device.encode() + b"\x00" + device_nonce
                          + station_nonce + station_pub).digest()


def fingerprint(pub):
    h = hashlib.sha256(pub).hexdigest()[:32]
    return ":".join(h[i:i + 4] for i in range(0, 32, 4))


class FakeDevice:
    def __init__(self, store: rw.RefStore, trust=(), max_frame=256 * 1024, *,
                 drop=0.0, corrupt=0.0, garbage=0.0, break_after=None,
                 seed=1, read_cap=None, head_override=None, drop_op=None, delay=0.0,
                 proof="real", hook=None, capacity=(1 << 30, 1 << 32), present_key=None,
                 expire_before=()):
        self.s = store
        self.trust = [bytes(k) for k in trust]
        self.max_frame = max_frame
        # probabilities per response: dropped, one byte flipped, garbage sent before it
        self.drop, self.corrupt, self.garbage = drop, corrupt, garbage
        self.break_after = break_after          # close the pty after this many bytes out
        self.read_cap = read_cap                # READ returns at most this many bytes
        self.head_override = head_override      # head bytes to report instead of the real one
        self.drop_op = dict(drop_op or {})      # op -> how many of its answers to drop
        self.delay = delay                      # seconds before each answer
        self.proof = proof                      # what AUTH carries as the device signature
        self.present_key = present_key          # public key AUTH presents (default: store's)
        self.expire_before = set(expire_before)  # ops before whose first request the
                                                # session ends (as after the idle timeout)
        self.hook = hook                        # hook(dev, req) -> dict / bytes / None
        self.capacity = list(capacity)          # storage [free, total] reported in AUTH
        self.station_nonce = None
        self.auth_sigs = []                     # device signatures sent (to replay)
        self.rnd = random.Random(seed)
        self.nonce = None
        self.authed = False
        self.receipt_number = 0
        self.sent = 0
        self.responses = 0
        self.ops = []                           # op of every request served
        self.ends = 0                           # HELLOs a station sent to end its session
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave                     # kept open so the pty survives reopening
        self._fds = (self.master, slave)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._serve, daemon=True)
        self.agreed = 1024

    # -- control -------------------------------------------------------------------
    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        if self._t.is_alive() and self._t is not threading.current_thread():
            self._t.join(5)
        self._close()

    def break_link(self):
        """Undock: close the pty (the station sees EIO / EOF). The serving thread closes
        it (so it never touches a descriptor number after it was closed); wait for it."""
        self._stop.set()
        if self._t.is_alive() and self._t is not threading.current_thread():
            self._t.join(5)
        self._close()

    def _close(self):
        # exactly once: a number closed twice may by then be another test's descriptor
        with self._lock:
            fds, self._fds = self._fds, ()
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    # -- store helpers ---------------------------------------------------------------
    def records(self):
        return {r.seq: r for r in self.s.records}

    def head_bytes(self):
        if self.head_override is not None:
            return self.head_override
        with open(self.s.path("head.cbor"), "rb") as f:
            return cbor2.loads(f.read())[3]

    # -- serving -----------------------------------------------------------------------
    def _serve(self):
        try:
            self._serve_loop()
        finally:
            self._close()

    def _serve_loop(self):
        buf = bytearray()
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self.master], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                return
            if not data:
                return
            buf += data
            while True:
                i = buf.find(MAGIC)
                if i < 0:
                    del buf[:max(0, len(buf) - 1)]
                    break
                del buf[:i]
                if len(buf) < 6:
                    break
                n = int.from_bytes(buf[2:6], "big")
                if n > max(self.agreed, 1024):
                    del buf[:1]
                    continue
                if len(buf) < 10 + n:
                    break
                body = bytes(buf[2:6 + n])
                crc = bytes(buf[6 + n:10 + n])
                if (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big") != crc:
                    del buf[:1]
                    continue
                try:
                    req = cbor2.loads(body[4:])
                except Exception:
                    del buf[:1]
                    continue
                del buf[:10 + n]
                resp = self.hook(self, req) if self.hook is not None else None
                if isinstance(resp, (bytes, bytearray)):
                    self._write_raw(bytes(resp))
                    continue
                if resp is None:
                    resp = self._handle(req)
                op = req.get(1) if isinstance(req, dict) else None
                if self.drop_op.get(op, 0) > 0:
                    self.drop_op[op] -= 1
                    continue
                if self.delay:
                    self._stop.wait(self.delay)
                self._send(resp)
                if self._stop.is_set():
                    return

    def _write_raw(self, out, heed_stop=True):
        """Write out whole to the pty (stopping early once stopped, if heed_stop)."""
        view = memoryview(out)
        while view and not (heed_stop and self._stop.is_set()):
            try:
                w = os.write(self.master, view)
            except BlockingIOError:
                select.select([], [self.master], [], 0.1)
                continue
            except OSError:
                self._stop.set()
                return
            view = view[w:]
        self.sent += len(out)

    def _send(self, resp):
        out = frame(resp)
        self.responses += 1
        if self.drop and self.rnd.random() < self.drop:
            return
        if self.corrupt and self.rnd.random() < self.corrupt:
            out = bytearray(out)
            out[self.rnd.randrange(2, len(out))] ^= 0x40
            out = bytes(out)
        if self.garbage and self.rnd.random() < self.garbage:
            out = bytes(self.rnd.randrange(256) for _ in range(17)) + b"\xc5\x1a\xff" + out
        if self.break_after is not None and self.sent + len(out) > self.break_after:
            part = out[:max(0, self.break_after - self.sent)]
            try:
                os.write(self.master, part)
            except OSError:
                pass
            self.break_link()
            return
        self._write_raw(out, heed_stop=False)

    def _err(self, rid, status, msg):
        return {0: rid, 1: status, 3: msg}

    def _handle(self, req):
        rid = req.get(0, 0)
        op = req.get(1)
        args = req.get(2, {})
        if op == 1 and isinstance(args, dict) and args.get(2) == "end":
            self.ends += 1      # a station ending its session (SPEC §8.3): not in ops
        else:
            self.ops.append(op)
        s = self.s
        if op == 1:
            sn = args.get(3) if isinstance(args, dict) else None
            self.nonce = None
            self.authed = False
            if not (isinstance(sn, bytes) and len(sn) == 16):
                return self._err(rid, 400, "HELLO: a 16-byte station nonce (3) is required")
            self.station_nonce = sn
            self.nonce = os.urandom(16)
            self.agreed = max(1024, min(self.max_frame, args.get(1, 1024)))
            return {0: rid, 1: 0, 2: {1: s.device, 9: self.nonce, 10: self.agreed, 12: 2}}
        if op == 2:
            pub, sig = args.get(1), args.get(2)
            nonce, self.nonce = self.nonce, None
            if nonce is None:
                return self._err(rid, 409, "AUTH: no current nonce (replay?)")
            if pub not in self.trust:
                return self._err(rid, 403, "AUTH: station key %s is not trusted"
                                 % fingerprint(pub))
            th = transcript(s.device, nonce, self.station_nonce, pub)
            try:
                Ed25519PublicKey.from_public_bytes(pub).verify(
                    sig, b"sealcam-auth-v2 station" + th)
            except InvalidSignature:
                return self._err(rid, 403, "AUTH: bad signature")
            self.authed = True
            shown = self.present_key or s.pubkey
            res = {1: fingerprint(pub), 3: shown, 4: fingerprint(shown),
                   5: self.head_bytes(), 6: [1_700_000_000_000, 1000], 7: list(self.capacity),
                   8: 80, 11: s.officer, 13: s.fw, 14: []}
            msg = b"sealcam-auth-v2 device" + th
            if self.proof == "real":
                res[2] = s.key.sign(msg)
            elif isinstance(self.proof, bytes):
                res[2] = self.proof
            elif self.proof != "none":
                res[2] = self.proof.sign(msg)
            if 2 in res:
                self.auth_sigs.append(res[2])
            return {0: rid, 1: 0, 2: res}
        if op in self.expire_before:
            self.expire_before.discard(op)
            self.authed = False
        if op in (8, 9, 10):
            s.refusal({8: "delete", 9: "format", 10: "write"}[op], "store", "usb")
            return self._err(rid, 405, "refused: evidence is append-only")
        if not self.authed:
            return self._err(rid, 401, "AUTH first")
        recs = self.records()
        if op == 3:
            since, count = args.get(1, 0), args.get(2, 100)
            seqs = sorted(q for q in recs if q >= since)
            out = [[q, recs[q].type, len(recs[q].data)] for q in seqs[:count]]
            return {0: rid, 1: 0, 2: {1: out, 2: max(recs), 3: len(seqs) > count}}
        if op == 4:
            q = args.get(1)
            if q not in recs:
                return self._err(rid, 404, "GET: no record %r" % q)
            return {0: rid, 1: 0, 2: {1: recs[q].data}}
        if op == 5:
            S, ci, off, n, what = args.get(1), args.get(2), args.get(3), args.get(4), \
                args.get(5, 0)
            if S not in recs or recs[S].type != rw.REC_START:
                return self._err(rid, 404, "READ: no segment %r" % S)
            media = rw.decode_record(recs[S].data)[11]
            chunk = rw.decode_record(recs[S].data)[12]
            path = s.path(media if what == 0 else rw.RefStore._idx(media))
            pos = (ci * chunk if what == 0 else 0) + off
            n = min(n, self.agreed - 64)
            if self.read_cap:
                n = min(n, self.read_cap)
            try:
                with open(path, "rb") as f:
                    f.seek(pos)
                    data = f.read(n)
            except FileNotFoundError:
                return self._err(rid, 404, "READ: no file %s" % path)
            return {0: rid, 1: 0, 2: {1: data}}
        if op == 6:
            rb = args.get(1)
            try:
                item = cbor2.loads(rb)
                prot, _, payload, sig = item.value
                body = cbor2.loads(payload)
                kid = cbor2.loads(prot)[4].decode()
            except Exception:
                return self._err(rid, 400, "RECEIPT: malformed")
            key = next((k for k in self.trust if fingerprint(k) == kid), None)
            if key is None:
                return self._err(rid, 403, "RECEIPT: station %s not trusted" % kid)
            try:
                Ed25519PublicKey.from_public_bytes(key).verify(
                    sig, rw.enc(["Signature1", prot, b"", payload]))
            except InvalidSignature:
                return self._err(rid, 403, "RECEIPT: bad signature")
            if body[1] != s.device or body[2] not in recs or \
                    hashlib.sha256(recs[body[2]].data).digest() != body[3]:
                return self._err(rid, 400, "RECEIPT: does not match this device's records")
            if body[4] <= self.receipt_number:
                return self._err(rid, 409, "RECEIPT: number %d used before" % body[4])
            self.receipt_number = body[4]
            r = s.record(rw.REFUSAL + 2, {24: kid, 25: body[2],
                                          26: hashlib.sha256(rb).digest(), 27: body[4]})
            return {0: rid, 1: 0, 2: {1: r.seq}}
        if op == 12:
            return {0: rid, 1: 0, 2: {1: "standby", 2: s.officer, 3: None, 4: None, 5: [],
                                      6: [1_700_000_000_000, 1000]}}
        return self._err(rid, 400, "unknown op %r" % op)
