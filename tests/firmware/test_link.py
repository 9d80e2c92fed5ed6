# The dock link, device side (SPEC §7-§8): framing and every op, over an in-memory
# loopback serial port. Runs unchanged on MicroPython and CPython.
import hashlib
import unittest

from sealcamfw import auth
from sealcamfw import cbor
from sealcamfw import config
from sealcamfw import cose
from sealcamfw import device
from sealcamfw import devkey
from sealcamfw import ed25519
from sealcamfw import flashkv
from sealcamfw import frame
import fwtest
from sealcamfw import link
from sealcamfw import store as st
from sim.hal.powerfs import PowerCut

SMALL = {"chunk": 4096, "checkpoint_s": 2, "segment_s": 60}
STATION_SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))
NONCE = bytes(range(16))     # a station nonce for raw HELLO requests


class Host:
    def __init__(self, lnk, ser):
        self.lnk = lnk
        self.ser = ser
        self.dec = frame.Decoder(1 << 20)
        self.id = 0

    def req(self, op, args=None, rid=None):
        if rid is None:
            self.id += 1
            rid = self.id
        m = {0: rid, 1: op}
        if args is not None:
            m[2] = args
        return frame.encode(cbor.dumps(m))

    def pump(self):
        for _ in range(100000):
            if not self.lnk.service():
                break
        self.dec.feed(bytes(self.ser.tx))
        self.ser.tx = bytearray()
        out = []
        while True:
            p = self.dec.next()
            if p is None:
                return out
            out.append(cbor.loads(p))

    def call(self, op, args=None):
        self.ser.rx += self.req(op, args)
        out = self.pump()
        assert len(out) == 1, out
        assert out[0][0] == self.id, out
        return out[0]

    def hello(self, host_max=1 << 20):
        self.snonce = hashlib.sha256(b"station nonce %d" % self.id).digest()[:16]
        r = self.call(link.HELLO, {1: host_max, 2: "test-station", 3: self.snonce})
        assert r[1] == 0, r
        self.last_hello = r[2]
        return r[2]

    def th(self, h, sk):
        # the transcript hash of the session HELLO h opened, for station key sk
        return auth.transcript(h[1], h[9], self.snonce, ed25519.public(sk))

    def sign(self, sk, h):
        return ed25519.sign(sk, auth.station_message(self.th(h, sk)))

    def auth(self, sk, host_max=1 << 20):
        h = self.hello(host_max)
        return self.call(link.AUTH, {1: ed25519.public(sk), 2: self.sign(sk, h)})


def make_receipt(sk, dev, covered, rhash, number, kid=None):
    body = {1: dev, 2: covered, 3: rhash, 4: number, 5: 1795000000000, 6: "archive-1"}
    if kid is None:
        kid = devkey.fingerprint(ed25519.public(sk))
    return cose.sign1(sk, cose.protected(kid.encode()), cbor.dumps(body))


def rec_bytes(lst):
    return [r for r, _ in lst]


class LinkCase(unittest.TestCase):
    settings = SMALL
    seconds = 3000

    def setUp(self):
        self.h, self.sd, self.flash = fwtest.sim()
        self.s, self.rec = device.boot(self.h, self.settings)
        self.seg = self.rec.start()
        self.rec.run_ms(self.seconds)
        self.rec.stop()
        self.station = ed25519.secret(STATION_SEED)
        self.other = ed25519.secret(OTHER_SEED)
        link.add_trusted(self.h.flash, ed25519.public(self.station))
        self.ser = fwtest.Loop()
        self.h.serial = self.ser
        self.lnk = link.Link(self.h, self.s, self.rec)
        self.host = Host(self.lnk, self.ser)

    def chain(self):
        return fwtest.read_chain(self.sd)

    def login(self):
        r = self.host.auth(self.station)
        self.assertEqual(r[1], 0, r)


class TestFrame(unittest.TestCase):
    def test_encode_layout_and_roundtrip(self):
        f = frame.encode(b"\x03abc")
        self.assertEqual(f[:2], b"\xc5\x1a")
        self.assertEqual(f[2:6], b"\x00\x00\x00\x04")
        import binascii
        self.assertEqual(int.from_bytes(f[-4:], "big"), binascii.crc32(f[2:-4]) & 0xFFFFFFFF)
        d = frame.Decoder()
        d.feed(b"junk\xc5" + f + b"\xc5\x1a\xc5" + f)
        self.assertEqual(d.next(), b"\x03abc")
        self.assertEqual(d.next(), b"\x03abc")
        self.assertEqual(d.next(), None)
        self.assertEqual(d.stats["frames"], 2)
        self.assertTrue(d.stats["resyncs"] >= 2)

    def test_wrap_equals_encode(self):
        data = bytes(range(256)) * 3
        head, crc = frame.wrap(b"\xa1\x01\x59\x03\x00", len(data))
        whole = bytes(head) + data + frame.finish(crc, data)
        self.assertEqual(whole, frame.encode(b"\xa1\x01\x59\x03\x00" + data))

    def test_every_split_and_byte_by_byte(self):
        fs = [frame.encode(cbor.dumps({0: i, 1: 3, 2: {1: b"\x03\xc5\x1a" * i}})) for i in range(4)]
        stream = b"\x00\xc5" + fs[0] + b"\xc5\x1a\x00\x00" + fs[1] + fs[2] + b"\xff" * 7 + fs[3]
        want = [cbor.loads(f[6:-4]) for f in fs]
        for cut in range(len(stream) + 1):
            d = frame.Decoder()
            got = []
            for part in (stream[:cut], stream[cut:]):
                d.feed(part)
                while True:
                    p = d.next()
                    if p is None:
                        break
                    got.append(cbor.loads(p))
            self.assertEqual(got, want, "cut at %d" % cut)
        d = frame.Decoder()
        got = []
        for i in range(len(stream)):
            d.feed(stream[i:i + 1])
            p = d.next()
            if p is not None:
                got.append(cbor.loads(p))
        self.assertEqual(got, want)

    def test_bad_crc_lost_byte_and_oversized_len_resync(self):
        good = frame.encode(b"\x01")
        bad = bytearray(frame.encode(b"\x02\x03"))
        bad[7] ^= 1
        lost = frame.encode(b"\x04\x05\x06")
        lost = lost[:5] + lost[6:]   # a byte of LEN lost
        big = b"\xc5\x1a\x00\x01\x00\x00"   # LEN 65536 > 1024
        d = frame.Decoder()
        d.feed(bytes(bad) + lost + big + good)
        self.assertEqual(d.next(), b"\x01")
        self.assertEqual(d.next(), None)
        self.assertEqual(d.stats["crc_errors"] >= 1 and d.stats["oversized"] >= 1, True)

    def test_buffer_bounded(self):
        d = frame.Decoder(1024)
        one = frame.encode(b"\x00" * 1000)
        data = b"\xee" * 5000 + one * 20
        d.feed(data)
        self.assertTrue(len(d.buf) <= d.cap())
        n = 0
        while d.next() is not None:
            n += 1
            self.assertTrue(len(d.buf) <= d.cap())
        self.assertEqual(n, 20)
        self.assertEqual(d.pending(), 0)

    def test_stalled_partial_frame_is_given_up(self):
        d = frame.Decoder()
        good = frame.encode(b"\x07")
        d.feed(b"\xc5\x1a\x00\x00\x03\x00" + good)   # a candidate waiting for 768 bytes
        self.assertEqual(d.next(), None)
        self.assertTrue(d.stalled())
        self.assertEqual(d.next(), b"\x07")
        self.assertEqual(d.stats["stalled"], 1)


class TestBoardSerial(unittest.TestCase):
    def test_uart_like_stream_never_waits(self):
        from sealcamfw import hal

        class Uart:
            def __init__(self):
                self.inq = bytearray(b"\xc5\x1a\x03abc")
                self.out = bytearray()

            def any(self):
                return len(self.inq)

            def read(self, n):
                d = bytes(self.inq[:n])
                self.inq[0:len(d)] = b""
                return d or None

            def write(self, buf):
                k = min(len(buf), 3)   # a port that takes a few bytes at a time
                self.out += bytes(buf[:k])
                return k

        u = Uart()
        ser = hal.BoardSerial(u)
        self.assertEqual(ser.read(4), b"\xc5\x1a\x03a")
        self.assertEqual(ser.read(100), b"bc")
        self.assertEqual(ser.read(100), b"")
        ser.write(b"0123456789")
        self.assertEqual(bytes(u.out), b"0123456789")


def _cryptography_ed25519():
    # the Ed25519 public-key class of `cryptography` (CPython only), or None
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return None
    return Ed25519PublicKey


class TestHelloAuth(LinkCase):
    def test_hello_tells_only_id_nonce_frame_and_version(self):
        self.rec.start()   # something to tell: recording, an officer, a head
        self.s.officer = "PC-4711"
        r = self.host.hello(1 << 22)
        self.assertEqual(sorted(r), [1, 9, 10, 12])
        self.assertEqual(r[1], self.h.device)
        self.assertEqual(len(r[9]), 16)
        self.assertEqual(r[10], config.DEFAULTS["max_frame"])   # the device's offer
        self.assertEqual(r[12], 2)
        self.assertEqual(self.lnk.max_frame, config.DEFAULTS["max_frame"])
        self.assertEqual(self.host.hello(2048)[10], 2048)
        n = len(self.chain())
        for op, args in ((link.LIST, {1: 0, 2: 10}), (link.GET, {1: 0}),
                         (link.READ, {1: self.seg, 2: 0, 3: 0, 4: 10}), (link.RECEIPT, {1: b""}),
                         (link.TIME_SET, {1: 1}), (link.ASSIGN, {1: "PC-1", 2: None}),
                         (link.CHECK, None), (link.STATUS, None)):
            r = self.host.call(op, args)
            self.assertEqual(r[1], 401, r)
            self.assertTrue(link.OP_NAMES[op] in r[3], r)
            self.assertEqual(sorted(r), [0, 1, 3])            # no result, only the message
            self.assertTrue("PC-4711" not in r[3], r)
        self.assertEqual(len(self.chain()), n)

    def test_auth_answers_status_and_the_device_proof(self):
        self.h.battery = lambda: 42
        r = self.host.auth(self.station)
        self.assertEqual(r[1], 0, r)
        a = r[2]
        self.assertEqual(sorted(a), [1, 2, 3, 4, 5, 6, 7, 8, 11, 13, 14, 15])
        pub = ed25519.public(self.station)
        self.assertEqual(a[1], devkey.fingerprint(pub))
        self.assertEqual(a[3], ed25519.public(self.s.sk))
        self.assertEqual(a[4], devkey.fingerprint(a[3]))
        self.assertEqual(a[5], self.chain()[-1][0])
        self.assertEqual(a[6], [self.h.clock.rtc_ms(), self.h.clock.mono_ms()])
        self.assertEqual(a[7], [self.h.sd.free(), getattr(self.h.sd, "total", lambda: 0)()])
        self.assertEqual(a[8], 42)
        self.assertEqual(a[11], None)
        self.assertEqual(a[13], self.s.fw)
        self.assertEqual(a[14], [])
        self.assertEqual(a[15], getattr(self.s, "fwid", None))   # firmware id (SPEC §13)
        self.assertEqual(len(a[2]), 64)
        # the device's signature covers this session's transcript, in the device role
        th = self.host.th(self.host.last_hello, self.station)
        self.assertTrue(ed25519.verify(a[3], auth.device_message(th), a[2]))
        self.assertFalse(ed25519.verify(a[3], auth.station_message(th), a[2]))
        # another session's nonces: the proof does not carry over
        other = self.host.auth(self.station)[2]
        th2 = self.host.th(self.host.last_hello, self.station)
        self.assertTrue(th2 != th)
        self.assertFalse(ed25519.verify(a[3], auth.device_message(th2), a[2]))
        self.assertTrue(ed25519.verify(a[3], auth.device_message(th2), other[2]))

    def test_device_proof_verifies_with_cryptography(self):
        Pub = _cryptography_ed25519()
        if Pub is None:
            return   # MicroPython: the CPython run checks it against an independent library
        from cryptography.exceptions import InvalidSignature
        spub = ed25519.public(self.station)
        h = self.host.hello()
        snonce = self.host.snonce
        r = self.host.call(link.AUTH, {1: spub, 2: self.host.sign(self.station, h)})
        self.assertEqual(r[1], 0, r)
        dpub = Pub.from_public_bytes(r[2][3])
        th = hashlib.sha256(b"sealcam-auth-v2\x00" + self.h.device.encode() + b"\x00" + h[9]
                            + snonce + spub).digest()
        dpub.verify(r[2][2], b"sealcam-auth-v2 device" + th)   # raises if it does not verify
        for bad in (b"sealcam-auth-v2 station" + th,
                    b"sealcam-auth-v2 device" + hashlib.sha256(
                        b"sealcam-auth-v2\x00" + self.h.device.encode() + b"\x00" + h[9]
                        + bytes(16) + spub).digest()):
            with self.assertRaises(InvalidSignature):
                dpub.verify(r[2][2], bad)
        # the station's signature is over the same transcript, in the station role
        Pub.from_public_bytes(spub).verify(self.host.sign(self.station, h),
                                           b"sealcam-auth-v2 station" + th)

    def test_hello_nonce_is_fresh_and_args_checked(self):
        a = self.host.hello()[9]
        b = self.host.hello()[9]
        self.assertTrue(a != b)
        for args in ({1: 100, 2: "x", 3: NONCE}, {2: "x", 3: NONCE}, {1: "big", 2: "x", 3: NONCE},
                     {1: 4096, 2: "x"}, {1: 4096, 2: "x", 3: NONCE[:15]},
                     {1: 4096, 2: "x", 3: "0123456789abcdef"}, {1: 4096, 3: NONCE}):
            r = self.host.call(link.HELLO, args)
            self.assertEqual(r[1], 400, (args, r))
            self.assertTrue(r[3].startswith("HELLO"), r)
        self.assertEqual(self.host.call(link.HELLO)[1], 400)

    def test_offer_from_settings_and_keyword(self):
        lnk = link.Link(self.h, self.s, None, {"max_frame": 1 << 20})
        self.assertEqual(lnk.offer, 1 << 20)
        self.assertEqual(link.Link(self.h, self.s, None, {"max_frame": 1 << 24}).offer, 1 << 20)
        self.assertEqual(link.Link(self.h, self.s, max_frame=300000).offer, 300000)

    def test_auth_trusted_untrusted_bad_signature_replay(self):
        pub = ed25519.public(self.station)
        r = self.host.auth(self.station)
        self.assertEqual(r[1], 0, r)
        self.assertEqual(r[2][1], devkey.fingerprint(pub))
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 0)
        # the same AUTH again: the nonce is used up
        h = self.host.hello()
        sig = self.host.sign(self.station, h)
        self.assertEqual(self.host.call(link.AUTH, {1: pub, 2: sig})[1], 0)
        r = self.host.call(link.AUTH, {1: pub, 2: sig})
        self.assertEqual(r[1], 409, r)
        self.assertEqual(sorted(r), [0, 1, 3])
        # a replayed AUTH in a later session (new nonces) does not verify
        self.host.hello()
        r = self.host.call(link.AUTH, {1: pub, 2: sig})
        self.assertEqual(r[1], 403, r)
        self.assertEqual(sorted(r), [0, 1, 3])
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 401)
        # a new HELLO ends the session
        self.login()
        self.host.hello()
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 401)
        # untrusted station
        r = self.host.auth(self.other)
        self.assertEqual(r[1], 403, r)
        self.assertTrue("not trusted" in r[3], r)
        # trusted key; signed with another station nonce, with another station key in the
        # transcript, in the device role, or over the v1 message
        for make in (lambda h: ed25519.sign(self.station, auth.station_message(
                         auth.transcript(h[1], h[9], bytes(16), pub))),
                     lambda h: ed25519.sign(self.station, auth.station_message(
                         auth.transcript(h[1], h[9], self.host.snonce, ed25519.public(self.other)))),
                     lambda h: ed25519.sign(self.station, auth.device_message(
                         self.host.th(h, self.station))),
                     lambda h: ed25519.sign(self.station, b"sealcam-auth-v1" + h[1].encode()
                                            + b"\x00" + h[9])):
            h = self.host.hello()
            r = self.host.call(link.AUTH, {1: pub, 2: make(h)})
            self.assertEqual(r[1], 403, r)
            self.assertEqual(sorted(r), [0, 1, 3])
            # the nonce is gone after a bad attempt too
            good = self.host.sign(self.station, h)
            self.assertEqual(self.host.call(link.AUTH, {1: pub, 2: good})[1], 409)
            self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 401)
        # AUTH before any HELLO
        lnk = link.Link(self.h, self.s, self.rec)
        host = Host(lnk, self.ser)
        self.assertEqual(host.call(link.AUTH, {1: pub, 2: good})[1], 409)
        # wrong shapes
        self.host.hello()
        self.assertEqual(self.host.call(link.AUTH, {1: pub[:31], 2: good})[1], 400)

    def test_no_trust_file_means_no_station(self):
        h, sd, flash = fwtest.sim()
        s, rec = device.boot(h, SMALL)
        h.serial = fwtest.Loop()
        host = Host(link.Link(h, s, rec), h.serial)
        self.assertEqual(link.load_trusted(h.flash), [])
        self.assertEqual(host.auth(self.station)[1], 403)
        self.assertTrue(link.add_trusted(h.flash, ed25519.public(self.station)))
        self.assertFalse(link.add_trusted(h.flash, ed25519.public(self.station)))
        self.assertTrue(link.add_trusted(h.flash, ed25519.public(self.other)))
        self.assertEqual(link.load_trusted(h.flash),
                         [ed25519.public(self.station), ed25519.public(self.other)])
        self.assertEqual(host.auth(self.station)[1], 0)


class TestRecords(LinkCase):
    def test_list_and_get_return_exact_records(self):
        self.login()
        chain = self.chain()
        r = self.host.call(link.LIST, {1: 0, 2: 1000})
        self.assertEqual(r[1], 0)
        self.assertEqual(r[2][1], [[i, b[0], len(raw)] for i, (raw, b) in enumerate(chain)])
        self.assertEqual(r[2][2], len(chain) - 1)
        self.assertEqual(r[2][3], False)
        for i, (raw, b) in enumerate(chain):
            g = self.host.call(link.GET, {1: i})
            self.assertEqual(g[1], 0)
            self.assertEqual(g[2][1], raw)
        # pages
        r = self.host.call(link.LIST, {1: 1, 2: 3})
        self.assertEqual([e[0] for e in r[2][1]], [1, 2, 3])
        self.assertEqual(r[2][3], True)
        r = self.host.call(link.LIST, {1: len(chain), 2: 3})
        self.assertEqual(r[2][1], [])
        self.assertEqual(r[2][3], False)
        g = self.host.call(link.GET, {1: len(chain)})
        self.assertEqual(g[1], 404)
        self.assertTrue(str(len(chain)) in g[3])
        self.assertEqual(self.host.call(link.GET, {1: -1})[1], 400)
        self.assertEqual(self.host.call(link.GET, {1: "1"})[1], 400)

    def test_list_is_bounded_by_the_frame(self):
        h = self.host.hello(1024)   # a session with a 1 KiB frame
        sig = self.host.sign(self.station, h)
        self.assertEqual(self.host.call(link.AUTH, {1: ed25519.public(self.station), 2: sig})[1], 0)
        self.assertEqual(self.lnk.max_frame, 1024)
        self.s.refusals.interval_ms = 0     # a REFUSAL record each
        for i in range(60):
            try:
                self.s.request("delete", i, "api")
            except st.Refused:
                pass
        r = self.host.call(link.LIST, {1: 0, 2: 10000})
        self.assertTrue(0 < len(r[2][1]) < len(self.chain()))
        self.assertEqual(r[2][3], True)
        self.assertTrue(len(cbor.dumps(r)) <= 1024)


class TestRecordsAcrossLogs(LinkCase):
    settings = {"chunk": 4096, "checkpoint_s": 1, "segment_s": 60, "log_max": 500}
    seconds = 4000

    def test_find_over_many_logs_and_boots(self):
        device.shutdown(self.s, self.rec)
        s, rec = device.boot(self.h, self.settings)   # reboot: older logs are read from the card
        for i in range(3):
            try:
                s.request("delete", "x%d" % i, "api")
            except st.Refused:
                pass
        chain = self.chain()
        self.assertTrue(len(self.h.sd.listdir("rec")) > 3)
        self.assertEqual(s.list(0, 10000), [[i, b[0], len(raw)] for i, (raw, b) in enumerate(chain)])
        for i in (len(chain) - 1, 0, 5, len(chain) // 2, 1, len(chain) - 4):
            self.assertEqual(s.find(i), chain[i][0], i)
        for i, (raw, b) in enumerate(chain):
            self.assertEqual(s.find(i), raw)
        self.assertEqual(s.find(len(chain)), None)
        self.assertEqual(s.list(len(chain) - 2, 5), [[len(chain) - 2 + k, chain[-2 + k][1][0],
                                                      len(chain[-2 + k][0])] for k in range(2)])
        # a fresh store object reads nothing for old logs until asked
        self.assertTrue(len(s._old) <= 2)


class TestRead(LinkCase):
    def test_read_media_and_index_equal_the_files(self):
        self.login()
        chain = self.chain()
        start = [b for _, b in chain if b[0] == st.REC_START][0]
        media = self.h.sd.read(start[11])
        idx = self.h.sd.read(start[11][:-3] + "idx")
        self.assertTrue(len(media) > 3 * 4096)
        got = bytearray()
        i = 0
        while i * 4096 < len(media):
            for off, n in ((0, 1000), (1000, 3096)):
                if i * 4096 + off >= len(media):
                    break
                r = self.host.call(link.READ, {1: self.seg, 2: i, 3: off, 4: n})
                self.assertEqual(r[1], 0, r)
                got += r[2][1]
            i += 1
        self.assertEqual(bytes(got), media)
        r = self.host.call(link.READ, {1: self.seg, 2: 0, 3: 0, 4: 65536, 5: 1})
        self.assertEqual(r[2][1], idx)
        r = self.host.call(link.READ, {1: self.seg, 2: 0, 3: 32, 4: 64, 5: 1})
        self.assertEqual(r[2][1], idx[32:96])
        # the hand-made READ answer is the deterministic encoding of the map
        self.ser.rx += self.host.req(link.READ, {1: self.seg, 2: 1, 3: 5, 4: 300}, 300)
        for _ in range(10):
            self.lnk.service()
        raw = bytes(self.ser.tx)
        self.ser.tx = bytearray()
        self.assertEqual(raw, frame.encode(cbor.dumps({0: 300, 1: 0, 2: {1: media[4101:4401]}})))

    def test_read_ends_and_errors(self):
        self.login()
        chain = self.chain()
        start = [b for _, b in chain if b[0] == st.REC_START][0]
        size = len(self.h.sd.read(start[11]))
        last = (size - 1) // 4096
        r = self.host.call(link.READ, {1: self.seg, 2: last, 3: 0, 4: 4096})
        self.assertEqual(len(r[2][1]), size - last * 4096)     # shorter at the end
        r = self.host.call(link.READ, {1: self.seg, 2: last + 1, 3: 0, 4: 10})
        self.assertEqual(r[1], 404, r)
        r = self.host.call(link.READ, {1: self.seg, 2: 0, 3: size + 1, 4: 10})
        self.assertEqual(r[1], 404, r)
        r = self.host.call(link.READ, {1: 0, 2: 0, 3: 0, 4: 10})     # BOOT, not REC_START
        self.assertEqual(r[1], 404, r)
        r = self.host.call(link.READ, {1: 10 ** 6, 2: 0, 3: 0, 4: 10})
        self.assertEqual(r[1], 404, r)
        r = self.host.call(link.READ, {1: self.seg, 2: 0, 3: 0, 4: (1 << 20) + 1})
        self.assertEqual(r[1], 413, r)
        r = self.host.call(link.READ, {1: self.seg, 2: 0, 3: 0, 4: 10, 5: 2})
        self.assertEqual(r[1], 400, r)
        r = self.host.call(link.READ, {1: self.seg, 2: 0, 3: 0})
        self.assertEqual(r[1], 400, r)
        # no more than fits the agreed frame
        h = self.host.hello(1024)
        sig = self.host.sign(self.station, h)
        self.host.call(link.AUTH, {1: ed25519.public(self.station), 2: sig})
        r = self.host.call(link.READ, {1: self.seg, 2: 0, 3: 0, 4: 1024})
        self.assertEqual(r[1], 0, r)
        self.assertTrue(900 < len(r[2][1]) < 1024)
        self.assertTrue(len(cbor.dumps(r)) <= 1024)
        self.assertEqual(self.host.call(link.READ, {1: self.seg, 2: 0, 3: 0, 4: 1025})[1], 413)


class TestReceiptTime(LinkCase):
    def test_receipt_accepted_replayed_forged_wrong_hash(self):
        self.login()
        chain = self.chain()
        cov = len(chain) - 1
        hcov = hashlib.sha256(chain[cov][0]).digest()
        dev = self.h.device
        good = make_receipt(self.station, dev, cov, hcov, 5)
        r = self.host.call(link.RECEIPT, {1: good})
        self.assertEqual(r[1], 0, r)
        chain = self.chain()
        raw, body = chain[-1]
        self.assertEqual(r[2][1], body[1])
        self.assertEqual(body[0], st.RECEIPT)
        self.assertEqual(body[24], devkey.fingerprint(ed25519.public(self.station)))
        self.assertEqual(body[25], cov)
        self.assertEqual(body[26], hashlib.sha256(good).digest())
        self.assertEqual(body[27], 5)
        self.assertEqual(self.lnk.last_receipt, 5)
        self.assertEqual(cbor.loads(self.h.flash.read("receipts.cbor")),
                         {1: 5, 2: hashlib.sha256(good).digest(), 3: cov})
        self.assertEqual(self.s.covered, cov)
        n = len(chain)
        # replayed, older, forged, wrong hash, not there, other device
        self.assertEqual(self.host.call(link.RECEIPT, {1: good})[1], 409)
        old = make_receipt(self.station, dev, cov, hcov, 4)
        self.assertEqual(self.host.call(link.RECEIPT, {1: old})[1], 409)
        forged = make_receipt(self.other, dev, cov, hcov, 6)
        self.assertEqual(self.host.call(link.RECEIPT, {1: forged})[1], 403)
        kid = devkey.fingerprint(ed25519.public(self.station))
        posing = make_receipt(self.other, dev, cov, hcov, 6, kid)
        r = self.host.call(link.RECEIPT, {1: posing})
        self.assertEqual(r[1], 403, r)
        self.assertTrue("does not verify" in r[3], r)
        wrong = make_receipt(self.station, dev, cov, bytes(32), 6)
        self.assertEqual(self.host.call(link.RECEIPT, {1: wrong})[1], 403)
        ahead = make_receipt(self.station, dev, n + 5, hcov, 6)
        self.assertEqual(self.host.call(link.RECEIPT, {1: ahead})[1], 404)
        other = make_receipt(self.station, "SC-OTHER", cov, hcov, 6)
        self.assertEqual(self.host.call(link.RECEIPT, {1: other})[1], 403)
        self.assertEqual(self.host.call(link.RECEIPT, {1: b"\xd2\x84"})[1], 400)
        self.assertEqual(self.host.call(link.RECEIPT, {1: "text"})[1], 400)
        self.assertEqual(len(self.chain()), n)
        # the number survives a reboot of the link
        lnk = link.Link(self.h, self.s, self.rec)
        self.assertEqual(lnk.last_receipt, 5)
        host = Host(lnk, self.ser)
        self.assertEqual(host.auth(self.station)[1], 0)
        self.assertEqual(host.call(link.RECEIPT, {1: good})[1], 409)
        nxt = make_receipt(self.station, dev, cov, hcov, 6)
        self.assertEqual(host.call(link.RECEIPT, {1: nxt})[1], 0)
        self.assertEqual(len(self.chain()), n + 1)

    def test_time_set_writes_old_and_new(self):
        self.login()
        before = self.h.clock.rtc_ms()
        new = before + 3600000
        r = self.host.call(link.TIME_SET, {1: new})
        self.assertEqual(r[1], 0, r)
        self.assertEqual(r[2][1], before)
        self.assertEqual(r[2][2], new)
        raw, body = self.chain()[-1]
        self.assertEqual(r[2][3], body[1])
        self.assertEqual(body[0], st.TIME_SET)
        self.assertEqual(body[28], before)
        self.assertEqual(body[29], new)
        self.assertEqual(body[4], new)
        self.assertEqual(self.h.clock.rtc_ms(), new)
        self.assertEqual(self.host.call(link.TIME_SET, {1: -5})[1], 400)
        self.assertEqual(self.host.call(link.TIME_SET, {})[1], 400)

    def test_storage_error_is_500_and_changes_nothing(self):
        self.login()
        fs = self.h.sd
        fs.capacity = fs.used + 1000      # the card is full
        n = len(self.chain())
        rtc = self.h.clock.rtc_ms()
        r = self.host.call(link.TIME_SET, {1: rtc + 99999})
        self.assertEqual(r[1], 500, r)
        self.assertEqual(self.h.clock.rtc_ms(), rtc)
        chain = self.chain()
        cov = len(chain) - 1
        good = make_receipt(self.station, self.h.device, cov,
                            hashlib.sha256(chain[cov][0]).digest(), 1)
        r = self.host.call(link.RECEIPT, {1: good})
        self.assertEqual(r[1], 500, r)
        self.assertEqual(self.lnk.last_receipt, -1)
        self.assertEqual(link.load_receipt_state(self.h.flash), {})
        self.assertEqual(self.host.call(link.DELETE, {1: "m"})[1], 500)
        self.assertEqual(len(self.chain()), n)
        fs.capacity = None
        self.assertEqual(self.host.call(link.RECEIPT, {1: good})[1], 0)
        self.assertEqual(self.host.call(link.DELETE, {1: "m"})[1], 405)


class TestRefusals(LinkCase):
    def refuse(self, op, args=None):
        self.h.clock.sleep_ms(self.s.refusals.interval_ms)   # one REFUSAL record each
        return self.host.call(op, args)

    def test_delete_format_write_refused_and_recorded_without_auth(self):
        n = len(self.chain())
        r = self.refuse(link.DELETE, {1: "m/00000001.mkv"})
        self.assertEqual(r[1], 405, r)
        self.assertTrue("seq" not in r[3] and "%d" % n not in r[3], r)  # nothing before AUTH
        r = self.refuse(link.FORMAT)
        self.assertEqual(r[1], 405, r)
        r = self.refuse(link.WRITE, {1: "rec/00000000.log", 2: b"\x00" * 100})
        self.assertEqual(r[1], 405, r)
        r = self.refuse(link.DELETE, {1: 7})
        self.assertEqual(r[1], 405, r)
        r = self.refuse(link.DELETE, "not a map")
        self.assertEqual(r[1], 405, r)
        r = self.refuse(link.DELETE, {1: "x" * 900})
        self.assertEqual(r[1], 405, r)
        self.login()
        r = self.refuse(link.DELETE, {1: b"\x01\x02"})
        self.assertEqual(r[1], 405, r)
        self.assertTrue("recorded as seq %d" % (n + 6) in r[3], r)    # after AUTH it may
        recs = [b for _, b in self.chain()[n:]]
        self.assertEqual([b[0] for b in recs], [st.REFUSAL] * 7)
        self.assertEqual([b[21] for b in recs], ["usb"] * 7)
        self.assertEqual([b[19] for b in recs], ["delete", "format", "write", "delete", "delete",
                                                 "delete", "delete"])
        self.assertEqual([b[20] for b in recs[:5]], ["m/00000001.mkv", "store",
                                                     "rec/00000000.log", "7", "(none)"])
        self.assertTrue(len(recs[5][20]) <= link.TARGET_MAX)
        self.assertEqual(recs[6][20], "0x0102")
        self.assertTrue(all(44 not in b for b in recs))     # one refusal each: no count

class TestRobustness(LinkCase):
    def test_malformed_requests_get_400(self):
        bad = [frame.encode(b"\xff"),                        # not CBOR
               frame.encode(b""),                            # empty
               frame.encode(b"\xa1\x00"),                    # truncated
               frame.encode(cbor.dumps([1, 2])),             # not a map
               frame.encode(cbor.dumps({1: 1})),             # no id
               frame.encode(cbor.dumps({0: "x", 1: 1})),     # id of the wrong type
               frame.encode(cbor.dumps({0: 5})),             # no op
               frame.encode(cbor.dumps({0: 6, 1: 99})),      # unknown op
               frame.encode(cbor.dumps({0: 7, 1: 0})),
               frame.encode(cbor.dumps({0: 8, 1: 1, 2: [1]})),   # args not a map
               frame.encode(b"\xa2\x01\x01\x00\x09"),        # keys out of order
               frame.encode(cbor.dumps({0: 10, 1: 4}))]      # 401 before 400
        for f in bad:
            self.ser.rx += f
            out = self.host.pump()
            self.assertEqual(len(out), 1, f)
            self.assertTrue(out[0][1] in (400, 401), out)
            self.assertTrue(type(out[0].get(3)) is str, out)
        self.assertEqual(self.host.hello()[1], self.h.device)

    def test_requests_split_at_every_byte_with_garbage_between(self):
        stream = (b"\x03\xc5" + self.host.req(link.HELLO, {1: 4096, 2: "\x03\x03\x03", 3: NONCE}, 3)
                  + b"\x00\xc5\x1a\x03" + self.host.req(link.LIST, {1: 0, 2: 3}, 0x03)
                  + self.host.req(77, None, 0xC51A))
        want = [(3, 0), (3, 401), (0xC51A, 400)]
        for cut in range(len(stream) + 1):
            for part in (stream[:cut], stream[cut:]):
                self.ser.rx += part
                self.lnk.service()
            got = [(o[0], o[1]) for o in self.host.pump()]
            self.assertEqual(got, want, "cut at %d" % cut)
        for i in range(len(stream)):
            self.ser.rx += stream[i:i + 1]
            self.lnk.service()
        self.assertEqual([(o[0], o[1]) for o in self.host.pump()], want)

    def test_corrupt_frame_is_dropped_and_the_next_answered(self):
        a = bytearray(self.host.req(link.HELLO, {1: 4096, 2: "a", 3: NONCE}, 1))
        a[9] ^= 0x40
        b = self.host.req(link.HELLO, {1: 4096, 2: "b", 3: NONCE}, 2)
        c = self.host.req(link.HELLO, {1: 4096, 2: "c", 3: NONCE}, 3)
        c = c[:8] + c[9:]      # a lost byte
        d = self.host.req(link.HELLO, {1: 4096, 2: "d", 3: NONCE}, 4)
        self.ser.rx += bytes(a) + b + c + d
        got = [(o[0], o[1]) for o in self.host.pump()]
        self.assertEqual(got, [(2, 0), (4, 0)])
        self.assertTrue(self.lnk.dec.stats["crc_errors"] >= 2)

    def test_bytes_0x03_pass(self):
        self.login()
        r = self.host.call(link.GET, {1: 3})
        self.assertEqual(r[1], 0)
        self.assertEqual(r[2][1], self.chain()[3][0])
        self.assertEqual(self.host.call(link.HELLO, {1: 0x30303, 2: "\x03" * 40, 3: b"\x03" * 16})[1], 0)

    def test_partial_frame_with_garbage_len_is_given_up_when_quiet(self):
        t = [0]
        self.lnk.ticks_ms = lambda: t[0]
        self.lnk.service()
        self.ser.rx += b"\xc5\x1a\x00\x00\x03\xff" + self.host.req(link.HELLO, {1: 4096, 2: "x", 3: NONCE}, 9)
        self.assertEqual(self.host.pump(), [])
        t[0] += 100
        self.assertEqual(self.host.pump(), [])
        t[0] += link.STALL_MS
        out = self.host.pump()
        self.assertEqual([(o[0], o[1]) for o in out], [(9, 0)])

    def test_window_of_requests_answered_in_order(self):
        self.login()
        reqs = b"".join(self.host.req(link.GET, {1: i}, 100 + i) for i in range(5))
        reqs += self.host.req(link.READ, {1: self.seg, 2: 0, 3: 0, 4: 100}, 200)
        self.ser.rx += reqs
        out = self.host.pump()
        self.assertEqual([o[0] for o in out], [100, 101, 102, 103, 104, 200])
        self.assertEqual([o[1] for o in out], [0] * 6)

    def test_port_errors_do_not_escape_and_power_cuts_do(self):
        class Broken:
            def read(self, n):
                raise OSError(5)

            def write(self, buf):
                raise OSError(5)
        self.h.serial = Broken()
        self.assertEqual(self.lnk.service(), False)
        self.assertEqual(self.lnk.stats["io_errors"], 1)
        self.h.serial = fwtest.Loop()
        self.h.serial.rx += self.host.req(link.HELLO, {1: 4096, 2: "x", 3: NONCE})
        self.h.serial.write = Broken().write
        self.assertEqual(self.lnk.service(), True)   # answered into a broken port: dropped
        self.assertEqual(self.lnk.stats["io_errors"], 2)
        # the simulator's power cut is not a device error: it passes through when listed
        self.h.serial = self.ser
        self.lnk.fatal = (PowerCut,)
        self.h.sd.cut_at = self.h.sd.steps
        self.ser.rx += self.host.req(link.DELETE, {1: "x"})
        with self.assertRaises(PowerCut):
            self.lnk.service()

    def test_kbd_intr_is_switched_off_while_serving(self):
        try:
            import micropython
        except ImportError:
            return
        calls = []
        real = micropython.kbd_intr
        try:
            micropython.kbd_intr = lambda c: calls.append(c)
        except (AttributeError, TypeError):
            return   # a built-in module that cannot be patched: nothing to observe
        try:
            lnk = link.Link(self.h, self.s, self.rec)
            lnk.service()
            lnk.stop()
        finally:
            micropython.kbd_intr = real
        self.assertEqual(calls, [-1, 3])

    def test_session_ends_when_idle_on_the_device_clock(self):
        self.assertEqual(self.lnk.session_idle_ms, 15000)          # the default setting
        clock = self.h.clock
        self.login()
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 0)
        self.lnk.end_session()
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 401)
        self.assertEqual(self.lnk.max_frame, 1024)
        self.login()
        clock.sleep_ms(14000)
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 0)   # a byte: still on
        clock.sleep_ms(14000)
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 0)
        clock.sleep_ms(15000)
        self.lnk.service()
        self.assertEqual(self.lnk.station, None)
        self.assertEqual(self.lnk.max_frame, 1024)
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 401)
        # a HELLO without AUTH is forgotten too: its nonce is gone
        h = self.host.hello()
        clock.sleep_ms(60000)
        self.lnk.service()
        r = self.host.call(link.AUTH, {1: ed25519.public(self.station),
                                       2: self.host.sign(self.station, h)})
        self.assertEqual(r[1], 409, r)
        # the setting
        lnk = link.Link(self.h, self.s, None, {"session_idle_ms": 5000})
        self.assertEqual(lnk.session_idle_ms, 5000)
        host = Host(lnk, self.ser)
        self.assertEqual(host.auth(self.station)[1], 0)
        clock.sleep_ms(4000)
        self.assertEqual(host.call(link.LIST, {1: 0, 2: 1})[1], 0)
        clock.sleep_ms(5000)
        self.assertEqual(host.call(link.LIST, {1: 0, 2: 1})[1], 401)

    def test_session_ends_when_the_host_goes(self):
        self.ser.connected = True       # a port that knows whether a host holds it
        self.login()
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 0)
        self.ser.connected = False      # unplugged, or DTR dropped
        self.lnk.service()
        self.assertEqual(self.lnk.station, None)
        self.ser.connected = True       # the next host
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 401)
        # a port that reports it through a method (hal.BoardSerial.connected)
        up = [True]
        self.ser.connected = lambda: up[0]
        self.login()
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 0)
        up[0] = False
        self.lnk.service()
        up[0] = True
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 1})[1], 401)

    def test_board_serial_reports_dtr(self):
        from sealcamfw import hal

        class Vcp:
            dtr = True

            def any(self):
                return 0

            def isconnected(self):
                return self.dtr

        v = Vcp()
        ser = hal.BoardSerial(v)
        self.assertTrue(ser.connected())
        v.dtr = False
        self.assertFalse(ser.connected())

    def test_backed_up_output_stops_taking_requests(self):
        self.ser.busy = lambda: len(self.ser.tx) > 0
        self.ser.rx += b"".join(self.host.req(link.HELLO, {1: 4096, 2: "x", 3: NONCE}, i) for i in (1, 2, 3))
        self.assertTrue(self.lnk.service())
        got = []
        for _ in range(3):
            self.host.dec.feed(bytes(self.ser.tx))
            self.ser.tx = bytearray()
            got.append(cbor.loads(self.host.dec.next())[0])
            self.assertEqual(self.host.dec.next(), None)   # one answer per pass
            self.lnk.service()
        self.assertEqual(got, [1, 2, 3])


DAY = 86400000
T0 = 1795000000000   # the simulated RTC at mono 0 (SimClock's default): a perfect clock


class WorkflowOpsCase(LinkCase):
    def setUp(self):
        LinkCase.setUp(self)
        self.lnk.session_idle_ms = 0    # days pass on the simulated clock within one session

    def true_now(self):
        # the station's clock: where a drift-free RTC would stand now
        return T0 + self.h.clock.mono_ms()

    def calibrate(self):
        r = self.host.call(link.TIME_SET, {1: self.true_now()})
        self.assertEqual(r[1], 0, r)
        return r[2]

    def check(self):
        r = self.host.call(link.CHECK)
        self.assertEqual(r[1], 0, r)
        return r[2]


class TestAssignStatus(WorkflowOpsCase):
    def test_assign_writes_the_record_and_later_records_carry_it(self):
        self.login()
        fp = devkey.fingerprint(ed25519.public(self.station))
        r = self.host.call(link.ASSIGN, {1: "PC-4711", 2: "unit-7"})
        self.assertEqual(r[1], 0, r)
        raw, body = self.chain()[-1]
        self.assertEqual(r[2], {1: body[1]})
        self.assertEqual(body[0], st.ASSIGN)
        self.assertEqual((body[7], body[30], body[24]), ("PC-4711", "unit-7", fp))
        self.assertEqual(body.get(9, 0) & st.F_NO_OFFICER, 0)
        self.assertEqual((self.s.officer, self.s.unit), ("PC-4711", "unit-7"))
        # later records carry officer and unit; AUTH and STATUS report them
        self.calibrate()
        body = self.chain()[-1][1]
        self.assertEqual((body[0], body[7], body[30]), (st.TIME_SET, "PC-4711", "unit-7"))
        s = self.host.call(link.STATUS)[2]
        self.assertEqual((s[2], s[3]), ("PC-4711", "unit-7"))
        self.assertEqual(self.host.auth(self.station)[2][11], "PC-4711")
        # another officer without a unit
        self.assertEqual(self.host.call(link.ASSIGN, {1: "PC-0815"})[1], 0)
        body = self.chain()[-1][1]
        self.assertEqual((body[0], body[7], 30 in body), (st.ASSIGN, "PC-0815", False))
        # released: officer null, no unit, NO_OFFICER, on the ASSIGN record and after it
        r = self.host.call(link.ASSIGN, {1: None, 2: None})
        self.assertEqual(r[1], 0, r)
        body = self.chain()[-1][1]
        self.assertEqual((body[0], body[7], 30 in body), (st.ASSIGN, None, False))
        self.assertEqual(body[9] & st.F_NO_OFFICER, st.F_NO_OFFICER)
        self.assertEqual((self.s.officer, self.s.unit), (None, None))
        self.check()
        body = self.chain()[-1][1]
        self.assertEqual((body[0], body[7], body[9] & st.F_NO_OFFICER),
                         (st.SELF_CHECK, None, st.F_NO_OFFICER))
        # the assignment survives a reboot (it is the last record's)
        self.assertEqual(self.host.call(link.ASSIGN, {1: "PC-1", 2: "u1"})[1], 0)
        device.shutdown(self.s, self.rec)
        s2, rec2 = device.boot(self.h, self.settings)
        self.assertEqual((s2.officer, s2.unit), ("PC-1", "u1"))
        body = self.chain()[-1][1]
        self.assertEqual((body[0], body[7], body[30]), (st.BOOT, "PC-1", "u1"))

    def test_assign_check_and_status_need_auth(self):
        n = len(self.chain())
        self.host.hello()
        for op, args in ((link.ASSIGN, {1: "PC-1", 2: "u"}), (link.ASSIGN, {1: None}),
                         (link.CHECK, None), (link.CHECK, {}), (link.STATUS, None)):
            r = self.host.call(op, args)
            self.assertEqual(r[1], 401, r)
            self.assertTrue(link.OP_NAMES[op] in r[3], r)
        self.assertEqual(len(self.chain()), n)
        self.assertEqual(self.s.officer, None)

    def test_assign_arguments_checked(self):
        self.login()
        n = len(self.chain())
        for args in ({}, {2: "u"}, {1: 5}, {1: b"PC-1"}, {1: True}, {1: ["PC-1"]},
                     {1: ""}, {1: "x" * 65}, {1: "PC-1", 2: 7}, {1: "PC-1", 2: False},
                     {1: "PC-1", 2: "u" * 65}, {1: "PC-1", 2: ""}, {1: None, 2: "unit-7"}):
            r = self.host.call(link.ASSIGN, args)
            self.assertEqual(r[1], 400, (args, r))
            self.assertTrue(r[3].startswith("ASSIGN"), r)
        self.assertEqual(self.host.call(link.ASSIGN, "PC-1")[1], 400)
        self.assertEqual(len(self.chain()), n)
        self.assertEqual(self.s.officer, None)
        r = self.host.call(link.ASSIGN, {1: "x" * 64, 2: "\u00e9" * 64})   # characters, not bytes
        self.assertEqual(r[1], 0, r)
        self.assertEqual(self.chain()[-1][1][30], "\u00e9" * 64)

    def test_status_state_waiting_and_clock(self):
        self.assertEqual(self.host.call(link.STATUS)[1], 401)    # not even HELLO
        self.login()
        r = self.host.call(link.STATUS)
        self.assertEqual(r[1], 0, r)
        s = r[2]
        self.assertEqual(sorted(s), [1, 2, 3, 4, 5, 6])
        self.assertEqual((s[1], s[2], s[3], s[4], s[5]), ("standby", None, None, None, []))
        self.assertEqual(s[6], [self.h.clock.rtc_ms(), self.h.clock.mono_ms()])
        n = len(self.chain())
        self.rec.start()
        self.assertEqual(self.host.call(link.STATUS)[2][1], "recording")
        self.rec.stop()
        self.assertEqual(self.host.call(link.STATUS)[2][1], "standby")
        self.assertEqual([b[0] for _, b in self.chain()[n:]],   # STATUS writes nothing
                         [st.REC_START, st.SEGMENT, st.REC_STOP])
        self.assertEqual(self.host.call(link.STATUS, [1])[1], 400)

        class Workflow:
            state = "choosing"

            def waiting(self):
                return [12, 15]

        lnk = link.Link(self.h, self.s, self.rec, workflow=Workflow())
        host = Host(lnk, self.ser)
        self.assertEqual(host.auth(self.station)[1], 0)
        s = host.call(link.STATUS)[2]
        self.assertEqual((s[1], s[5]), ("choosing", [12, 15]))
        self.lnk.workflow = Workflow()
        self.lnk.workflow.state = "standby"
        self.assertEqual(self.host.call(link.STATUS)[2][1], "standby")


class TestCheckAndClock(WorkflowOpsCase):
    def test_check_not_ready_until_calibrated_then_reasons(self):
        self.login()
        n = len(self.chain())
        res = self.check()
        self.assertEqual((res[1], res[2]), (False, ["clock_uncalibrated"]))
        facts = res[3]
        self.assertEqual(facts[1], 100)
        self.assertTrue(facts[2] >= 240, facts)
        self.assertTrue(3 not in facts and 5 not in facts, facts)
        self.assertTrue(0 <= facts[4] < 60, facts)
        chain = self.chain()
        self.assertEqual(len(chain), n + 1)
        body = chain[-1][1]
        self.assertEqual((body[0], body[1]), (st.SELF_CHECK, res[4]))
        self.assertEqual((body[36], body[37], body[38]), (False, ["clock_uncalibrated"], facts))
        self.assertEqual(self.host.call(link.STATUS)[2][4], res)   # STATUS: the last check
        # calibrated: READY
        self.calibrate()
        res = self.check()
        self.assertEqual((res[1], res[2]), (True, []), res)
        self.assertEqual((res[3][3], res[3][5]), (0, 0))
        self.assertEqual(self.chain()[-1][1][36], True)
        self.assertEqual(self.host.call(link.STATUS)[2][4], res)
        # a low battery
        self.h.battery = lambda: 20
        res = self.check()
        self.assertEqual((res[1], res[2], res[3][1]), (False, ["battery"], 20))
        self.h.battery = lambda: 100
        # too little storage: 100 MB is under two minutes at 8 Mbit/s
        fs = self.h.sd
        fs.capacity = fs.used + 100000000
        res = self.check()
        self.assertEqual((res[1], res[2]), (False, ["storage"]), res)
        self.assertTrue(res[3][2] < 2, res)
        fs.capacity = None
        # a day without offload (R8)
        self.h.clock.sleep_ms(DAY + 1000)
        res = self.check()
        self.assertEqual((res[1], res[2]), (False, ["offload_overdue"]), res)
        self.assertTrue(res[3][4] > 24 * 3600, res)
        self.assertEqual(res[3][3], 0)               # no drift measured: no error estimated
        self.assertEqual(res[3][5], DAY + 1000)
        # a receipt covering everything clears it; receipts.cbor keeps what it covers
        chain = self.chain()
        cov = len(chain) - 1
        rc = make_receipt(self.station, self.h.device, cov,
                          hashlib.sha256(chain[cov][0]).digest(), 1)
        self.assertEqual(self.host.call(link.RECEIPT, {1: rc})[1], 0)
        self.assertEqual(link.load_receipt_state(self.h.flash),
                         {1: 1, 2: hashlib.sha256(rc).digest(), 3: cov})
        res = self.check()
        self.assertEqual((res[1], res[2]), (True, []), res)
        self.assertTrue(res[3][4] < 5, res)

    def test_drift_is_only_measured_over_an_hour_and_sums_the_corrections(self):
        self.login()
        c = self.h.clock
        c.drift_ppm = 100
        self.calibrate()                               # the base
        c.sleep_ms(600000)
        r = self.calibrate()                           # 10 min: 60 ms, not a measurement
        self.assertEqual((r[4], r[5], r[6]), (None, None, False))
        body = self.chain()[-1][1]
        self.assertTrue(39 not in body and 40 not in body and 43 not in body, body)
        c.sleep_ms(3000000)
        r = self.calibrate()                           # 60 min after the base: 360 ms
        body = self.chain()[-1][1]
        self.assertEqual((body[40], body[43]), (3600000, 360))
        self.assertEqual((r[4], r[6]), (8640, True))

    def test_a_time_set_that_failed_leaves_the_measurement_as_it_was(self):
        self.login()
        c = self.h.clock
        c.drift_ppm = 100
        self.calibrate()                               # the base
        c.sleep_ms(2 * 3600000)
        n = len(self.chain())
        self.h.sd.fail_at = self.h.sd.steps            # the TIME_SET record's write fails
        r = self.host.call(link.TIME_SET, {1: self.true_now()})
        self.assertEqual(r[1], link.DEVICE_ERROR, r)
        self.assertEqual(len(self.chain()), n)         # no record; clock.cbor names it anyway
        c.sleep_ms(2 * 3600000)
        r = self.calibrate()                           # measured from the base: 4 h, 1,440 ms
        body = self.chain()[-1][1]
        self.assertEqual((body[40], body[43], r[4]), (4 * 3600000, 1440, 8640))

    def test_time_set_measures_drift_and_flags_it(self):
        self.login()
        c = self.h.clock
        c.drift_ppm = 100            # 8,640 ms a day fast
        r = self.calibrate()         # the first calibration: nothing to compare with
        self.assertEqual((r[4], r[5], r[6]), (None, None, False))
        body = self.chain()[-1][1]
        self.assertTrue(39 not in body and 40 not in body, body)
        self.assertEqual(body.get(9, 0) & st.F_DRIFT, 0)
        c.sleep_ms(DAY)
        before = c.rtc_ms()
        r = self.calibrate()
        self.assertEqual(r[1], before)
        self.assertEqual(r[5], DAY)
        self.assertTrue(abs(r[4] - 8640) <= 2, r)
        self.assertTrue(abs((r[1] - r[2]) - 8640) <= 2, r)
        self.assertEqual(r[6], True)
        body = self.chain()[-1][1]
        self.assertEqual((body[0], body[1], body[39], body[40], body[43]),
                         (st.TIME_SET, r[3], r[4], DAY, r[1] - r[2]))
        self.assertEqual(body[9] & st.F_DRIFT, st.F_DRIFT)
        # the measurement base moves to this calibration, with nothing summed yet
        state = flashkv.read(self.h.flash, st.CLOCK_FILE)
        self.assertEqual(dict((k, state[k]) for k in (1, 2, 3, 4, 5)),
                         {1: r[2], 2: r[4], 3: r[2], 4: 0, 5: r[3]})
        # the limit is 3,000 ms a day (about 34.7 ppm), fast or slow
        for ppm, want in ((35, 3024), (34, 2937), (-30, -2592), (-40, -3456), (0, 0)):
            t = c.rtc_ms()
            c.drift_ppm = ppm        # a new rate from here on, without a step
            c.set_rtc(t)
            r = self.calibrate()     # the same true time again: no measurement
            self.assertEqual((r[4], r[5], r[6]), (None, None, False), (ppm, r))
            c.sleep_ms(DAY)
            r = self.calibrate()
            self.assertTrue(abs(r[4] - want) <= 2, (ppm, r))
            self.assertEqual((r[5], r[6]), (DAY, abs(want) > 3000), (ppm, r))
            flags = self.chain()[-1][1].get(9, 0)
            self.assertEqual(flags & st.F_DRIFT, st.F_DRIFT if abs(want) > 3000 else 0)
        # the estimated error grows with the last measured drift: -40 ppm, 8 h later
        t = c.rtc_ms()
        c.drift_ppm = -40
        c.set_rtc(t)
        self.calibrate()
        c.sleep_ms(DAY)
        r = self.calibrate()
        self.assertTrue(abs(r[4] + 3456) <= 2, r)
        res = self.check()
        self.assertEqual(res[2], ["offload_overdue"], res)   # the clock is fine just after
        c.sleep_ms(8 * 3600000)
        res = self.check()
        self.assertEqual(res[2], ["clock", "offload_overdue"], res)
        self.assertTrue(abs(res[3][3] - r[4] // 3) <= 2, res)
        self.assertTrue(abs(res[3][5] - (8 * 3600000 - 1152)) <= 1, res)   # on the slow RTC


class TestFlashState(unittest.TestCase):
    def test_receipt_state_old_files_and_left_over_new_file(self):
        h, sd, flash = fwtest.sim()
        self.assertEqual(link.load_receipt_state(h.flash), {})
        flashkv.write(h.flash, "receipts.cbor", {1: 3, 2: bytes(32)})   # before key 3
        self.assertEqual(link.load_receipt_state(h.flash), {1: 3, 2: bytes(32)})
        s, rec = device.boot(h, SMALL)
        self.assertEqual(link.Link(h, s, rec).last_receipt, 3)
        # a receipts.new a cut left behind with a higher number wins; a lower one does not
        f = h.flash.create("receipts.new")
        f.write(cbor.dumps({1: 4, 2: bytes(32), 3: 0}))
        f.close()
        self.assertEqual(link.load_receipt_state(h.flash), {1: 4, 2: bytes(32), 3: 0})
        self.assertEqual(link.Link(h, s, rec).last_receipt, 4)
        device.shutdown(s, rec)
        flashkv.write(h.flash, "receipts.cbor", {1: 9, 2: bytes(32), 3: 1})
        f = h.flash.create("receipts.new")
        f.write(cbor.dumps({1: 8, 2: bytes(32), 3: 5}))
        f.close()
        self.assertEqual(link.load_receipt_state(h.flash)[1], 9)

    def test_trust_list_from_a_left_over_new_file(self):
        h, sd, flash = fwtest.sim()
        pub = ed25519.public(ed25519.secret(STATION_SEED))
        f = h.flash.create("trust.new")
        f.write(cbor.dumps([pub]))
        f.close()
        self.assertEqual(link.load_trusted(h.flash), [pub])
        self.assertFalse(link.add_trusted(h.flash, pub))
        other = ed25519.public(ed25519.secret(OTHER_SEED))
        self.assertTrue(link.add_trusted(h.flash, other))
        self.assertEqual(cbor.loads(h.flash.read("trust.cbor")), [pub, other])


class TimeSetBoundsCase(LinkCase):
    """TIME_SET takes only a wall-clock time in 2020-01-01..2100-01-01 (SPEC §8.7): a relay
    that rewrites the request to 2^63-1 (or the year 1970) gets 400 and nothing changes."""

    def test_out_of_range_times_are_refused_and_write_nothing(self):
        self.login()
        n = len(self.chain())
        rtc = self.h.clock.rtc_ms()
        for bad in (0, 1, 1577836799999, 4102444800000, (1 << 63) - 1, (1 << 64) - 1):
            r = self.host.call(link.TIME_SET, {1: bad})
            self.assertEqual(r[1], 400, (bad, r))
            self.assertTrue("2020-01-01..2100-01-01" in r[3], r)
            self.assertEqual(self.h.clock.rtc_ms(), rtc)
            self.assertEqual(len(self.chain()), n)

    def test_the_edges_of_the_range_are_accepted(self):
        self.login()
        for good in (1577836800000, 4102444799999):
            r = self.host.call(link.TIME_SET, {1: good})
            self.assertEqual(r[1], 0, (good, r))
            self.assertEqual(r[2][2], good)
            raw, body = self.chain()[-1]
            self.assertEqual((body[0], body[29]), (st.TIME_SET, good))
