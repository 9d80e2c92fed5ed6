"""Fuzzing the device side of the dock link (firmware/sealcamfw/frame.py, firmware/sealcamfw/link.py) on CPython:
random bytes, mutated valid frames and random well-formed requests go into the frame
decoder and into Link.service(). Nothing may escape service(), nothing may hang, the
decoder's buffer stays within two frames, every answer is a well-formed response, and the
store stays intact: the records before are unchanged, the only records added are REFUSALs
(source "usb"), and the chain verifies with the offline verifier."""
import hashlib
import random
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from sealcamfw import auth
from sealcamfw import cbor
from sealcamfw import device
from sealcamfw import ed25519
from sealcamfw import frame
import fwtest
from sealcamfw import link
from sealcamfw import store as fst
from host_tools.verify import OK, verify_store

SMALL = {"chunk": 4096, "checkpoint_s": 2, "segment_s": 60}
STATION = ed25519.secret(bytes(range(32)))
STATUSES = {0, 400, 401, 403, 404, 405, 409, 413, 500}
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Dev:
    """A recorded virtual device with a trusted station and a link on a loopback port."""

    def __init__(self):
        self.h, self.sd, _ = fwtest.sim()
        self.s, self.rec = device.boot(self.h, SMALL)
        self.seg = self.rec.start()
        self.rec.run_ms(3000)
        self.rec.stop()
        link.add_trusted(self.h.flash, ed25519.public(STATION))
        self.ser = fwtest.Loop()
        self.h.serial = self.ser
        self.lnk = link.Link(self.h, self.s, self.rec)
        self.before = [r for r, _ in fwtest.read_chain(self.sd)]
        self.host = frame.Decoder(1 << 20)
        self.answers = 0

    def push(self, data, limit_s=10.0):
        """Feed bytes to the device and run it until it is idle; check what it says."""
        self.ser.rx += data
        t = time.monotonic()
        n = 0
        while self.lnk.service():
            n += 1
            dec = self.lnk.dec
            assert len(dec.buf) <= dec.cap()
            assert time.monotonic() - t < limit_s, "service() did not settle"
            assert n < 100000
        assert not self.ser.rx or self.lnk.dec.room() == 0
        self.host.feed(bytes(self.ser.tx))
        self.ser.tx = bytearray()
        out = []
        while True:
            p = self.host.next()
            if p is None:
                break
            r = cbor.loads(p)
            assert isinstance(r, dict) and set(r) <= {0, 1, 2, 3}, r
            assert type(r[0]) is int and r[1] in STATUSES, r
            assert (2 in r) == (r[1] == 0) and (3 in r) == (r[1] != 0), r
            assert len(p) <= max(self.lnk.max_frame, frame.PRE_HELLO_MAX)
            out.append(r)
        self.answers += len(out)
        return out

    def flush(self):
        """Give up on any partial frame left (as after a quiet line)."""
        self.lnk.ticks_ms = lambda: 1 << 40
        self.push(b"")
        self.lnk.ticks_ms = link._ticks_ms
        self.lnk._heard = link._ticks_ms()

    def req(self, op, args=None, rid=1):
        m = {0: rid, 1: op}
        if args is not None:
            m[2] = args
        return frame.encode(cbor.dumps(m))

    def login(self):
        sn = bytes(range(16))
        r = self.push(self.req(link.HELLO, {1: 1 << 20, 2: "fuzz", 3: sn}))[-1]
        th = auth.transcript(r[2][1], r[2][9], sn, ed25519.public(STATION))
        sig = ed25519.sign(STATION, auth.station_message(th))
        out = self.push(self.req(link.AUTH, {1: ed25519.public(STATION), 2: sig}))
        assert out[-1][1] == 0, out

    def check(self):
        """The store is intact: old records unchanged, only REFUSALs (usb) added, and the
        link still answers."""
        self.flush()
        chain = fwtest.read_chain(self.sd)
        assert [r for r, _ in chain[:len(self.before)]] == self.before
        for _, body in chain[len(self.before):]:
            assert body[0] == fst.REFUSAL and body[21] == "usb", body
        assert self.lnk.dec.pending() <= 1  # at most a lone 0xC5 waiting for its pair
        out = self.push(self.req(link.HELLO, {1: 4096, 2: "after", 3: bytes(16)}, 424242))
        assert [(o[0], o[1]) for o in out] == [(424242, 0)]
        rep = verify_store(self.sd, ed25519.public(self.s.sk), progress=False)
        assert rep.verdict == OK, rep.to_text()
        return len(chain) - len(self.before)


@pytest.fixture
def dev():
    return Dev()


def valid_frames(d):
    seg = d.seg
    reqs = [(link.HELLO, {1: 1 << 20, 2: "h"}), (link.HELLO, {1: 2048, 2: "\x03"}),
            (link.AUTH, {1: ed25519.public(STATION), 2: bytes(64)}),
            (link.LIST, {1: 0, 2: 100}), (link.GET, {1: 1}),
            (link.READ, {1: seg, 2: 0, 3: 0, 4: 4096}), (link.READ, {1: seg, 2: 0, 3: 0, 4: 64, 5: 1}),
            (link.RECEIPT, {1: b"\xd2\x84" + bytes(80)}), (link.TIME_SET, {1: 1800000000000}),
            (link.DELETE, {1: "m/00000001.mkv"}), (link.FORMAT, None),
            (link.WRITE, {1: "rec/00000000.log", 2: b"\x03" * 50})]
    return [d.req(op, args, i + 1) for i, (op, args) in enumerate(reqs)]


# ---------------------------------------------------------------- the decoder alone

@FUZZ
@given(hs.lists(hs.binary(max_size=3000), max_size=8), hs.integers(1024, 1 << 16))
def test_decoder_random_bytes(parts, max_frame):
    d = frame.Decoder(max_frame)
    t = time.monotonic()
    for p in parts:
        d.feed(p)
        while True:
            assert len(d.buf) <= d.cap()
            out = d.next()
            if out is None:
                break
            assert len(out) <= max_frame
    d.stalled()
    while d.next() is not None:
        pass
    assert d.pending() <= 1
    assert time.monotonic() - t < 5


@FUZZ
@given(hs.lists(hs.tuples(hs.binary(max_size=300), hs.binary(max_size=200)), min_size=1, max_size=8),
       hs.integers(1, 64))
def test_decoder_finds_every_frame_between_garbage(items, step):
    # garbage without 0xC5 can never start a frame: every frame must come out, in order,
    # whatever the split of the stream
    stream = b""
    want = []
    for garbage, payload in items:
        stream += garbage.replace(b"\xc5", b"\x00") + frame.encode(payload)
        want.append(payload)
    d = frame.Decoder(1024)
    got = []
    for i in range(0, len(stream), step):
        d.feed(stream[i:i + step])
        while True:
            p = d.next()
            if p is None:
                break
            got.append(p)
    assert got == want


def test_decoder_memory_is_bounded():
    d = frame.Decoder(65536)
    junk = bytes(range(256)) * 4096             # 1 MiB, MAGIC-free
    tracemalloc.start()
    try:
        for _ in range(16):
            d.feed(junk)
            while d.next() is not None:
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(d.buf) <= d.cap()
    assert peak < 4 * d.cap() + (1 << 20), peak


# ---------------------------------------------------------------- the link

def test_link_random_bytes(dev):
    @FUZZ
    @given(hs.binary(max_size=4000), hs.integers(0, 1 << 32), hs.integers(0, 20000),
           hs.integers(0, 30))
    def run(data, seed, n, magics):
        dev.push(data)
        # bulk noise with MAGIC and plausible LEN fields sprinkled in
        r = random.Random(seed)
        b = bytearray(r.randbytes(n))
        for _ in range(magics):
            at = r.randrange(len(b) + 1)
            k = r.choice((1, 2, 4))   # LEN below 256, below 64 Ki, anything
            b[at:at] = b"\xc5\x1a" + bytes(4 - k) + r.randbytes(k)
        dev.push(bytes(b))
        dev.flush()
    run()
    st = dev.lnk.dec.stats
    assert st["skipped"] > 100000 and st["crc_errors"] + st["stalled"] > 100, st
    assert st["oversized"] > 100, st
    dev.check()


def test_link_mutated_valid_frames(dev):
    frames = valid_frames(dev)

    @FUZZ
    @given(hs.lists(hs.tuples(hs.integers(0, len(frames) - 1),
                              hs.sampled_from(["flip", "drop", "insert", "cut", "len", "none"]),
                              hs.integers(0, 10 ** 6), hs.integers(0, 255)), min_size=1, max_size=6),
           hs.booleans())
    def run(muts, fix_crc):
        data = bytearray()
        for which, how, pos, byte in muts:
            f = bytearray(frames[which])
            i = pos % len(f)
            if how == "flip":
                f[i] ^= 1 << (byte % 8)
            elif how == "drop":
                del f[i]
            elif how == "insert":
                f.insert(i, byte)
            elif how == "cut":
                f = f[:i]
            elif how == "len":
                f[2 + byte % 4] = pos % 256
            if fix_crc and how in ("flip", "insert", "drop") and i >= 6 and len(f) >= 10:
                # a payload change with a good CRC: reaches the CBOR and request checks
                f = bytearray(frame.encode(bytes(f[6:-4])))
            data += f
        dev.push(bytes(data))
        dev.flush()
    run()
    assert dev.answers > 100
    dev.check()


_leaf = hs.one_of(hs.integers(-(1 << 64), (1 << 64) - 1), hs.binary(max_size=80),
                  hs.text(max_size=40), hs.booleans(), hs.none())
_value = hs.recursive(_leaf, lambda inner: hs.one_of(hs.lists(inner, max_size=4),
                                                     hs.dictionaries(hs.integers(0, 8), inner, max_size=4)),
                      max_leaves=12)


def _request(op_range):
    return hs.fixed_dictionaries(
        {0: hs.one_of(hs.integers(0, (1 << 64) - 1), _leaf), 1: hs.one_of(hs.integers(*op_range), _leaf)},
        optional={2: hs.one_of(hs.dictionaries(hs.integers(0, 7), _value, max_size=6), _value)})


def test_link_random_requests_unauthenticated(dev):
    @FUZZ
    @given(hs.lists(_request((0, 12)), min_size=1, max_size=5))
    def run(reqs):
        data = b"".join(frame.encode(cbor.dumps(r)) for r in reqs)
        if len(data) > 60000:
            return
        out = dev.push(data)
        sizes = [len(cbor.dumps(r)) for r in reqs]
        # every request that fits a frame is answered (before HELLO: 1 KiB)
        assert len(out) >= sum(1 for n in sizes if n <= frame.PRE_HELLO_MAX) - 5 or \
            dev.lnk.max_frame > frame.PRE_HELLO_MAX
        for r, o in zip(reqs, out):
            if type(r.get(1)) is int and 3 <= r[1] <= 7 and type(r.get(0)) is int and r[0] >= 0:
                if dev.lnk.station is None:
                    assert o[1] in (400, 401), (r, o)
    run()
    dev.check()


def test_link_random_args_authenticated(dev):
    # LIST, GET, READ and RECEIPT with random arguments in an authenticated session
    # (TIME_SET left out: with a valid argument it rightly writes a record)
    dev.login()

    @FUZZ
    @given(hs.lists(hs.tuples(hs.sampled_from([link.LIST, link.GET, link.READ, link.RECEIPT]),
                              hs.dictionaries(hs.integers(0, 6),
                                              hs.one_of(hs.integers(0, 1 << 21), _value),
                                              max_size=6)),
                    min_size=1, max_size=6))
    def run(reqs):
        data = b"".join(dev.req(op, args, 7) for op, args in reqs)
        out = dev.push(data)
        assert len(out) == len(reqs)
        for (op, args), o in zip(reqs, out):
            assert o[1] != 401, (op, args, o)
            if o[1] == 0 and op == link.GET:
                assert hashlib.sha256(o[2][1]).digest()
    run()
    added = dev.check()
    assert added == 0
