# Recorder hardening (issue 8): an edited card never makes the device open a file it
# names; refusals cannot fill the card; the link session ends; control characters are not
# stored; a card whose head went back, or another device's card, is found at boot.
# Runs unchanged on MicroPython and CPython.
import unittest

import cbor
import cose
import device
import devkey
import ed25519
import fwtest
import link
import store as st
from test_link import SMALL, STATION_SEED, Host

KEY_PATH = "../flash/" + devkey.KEY_FILE    # the device key seed, seen from the card's root


class Case(unittest.TestCase):
    settings = SMALL

    def setUp(self):
        self.h, self.sd, self.flash = fwtest.sim()
        self.s, self.rec = device.boot(self.h, self.settings)
        self.station = ed25519.secret(STATION_SEED)
        link.add_trusted(self.h.flash, ed25519.public(self.station))
        self.ser = fwtest.Loop()
        self.h.serial = self.ser
        self.connect()

    def connect(self):
        self.lnk = link.Link(self.h, self.s, self.rec)
        self.host = Host(self.lnk, self.ser)

    def login(self):
        r = self.host.auth(self.station)
        self.assertEqual(r[1], 0, r)
        return r[2]

    def chain(self):
        return fwtest.read_chain(self.sd)

    def reboot(self):
        device.shutdown(self.s, self.rec)
        self.s, self.rec = device.boot(self.h, self.settings)
        self.connect()

    def seed(self):
        with open(self.flash + "/" + devkey.KEY_FILE, "rb") as f:
            return f.read()


def _edit_record(sd, seq, change):
    """Replace record seq in its log file on the card by one whose body change(body) made
    (re-signed with some other key: the device never checks its own records' signatures
    when it reads them back)."""
    import os
    sk = ed25519.secret(bytes(32))
    for name in sorted(os.listdir(sd + "/rec")):
        p = sd + "/rec/" + name
        with open(p, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            item, nxt = cbor.decode_one(data, pos)
            body = cbor.loads(item.value[2])
            if body[1] == seq:
                change(body)
                new = cose.sign1(sk, item.value[0], cbor.dumps(body))
                with open(p, "wb") as f:
                    f.write(data[:pos] + new + data[nxt:])
                return
            pos = nxt
    raise AssertionError("no record %d on the card" % seq)


class TestMediaPaths(Case):
    def test_media_name_is_made_from_the_seq(self):
        self.assertEqual(st.media_name(12, "m/00000012.mjpg"), "m/00000012.mjpg")
        self.assertEqual(st.media_name(123456789, "m/123456789.mjpg"), "m/123456789.mjpg")
        for seg, media in ((12, "m/00000013.mjpg"), (12, "../flash/key.bin"),
                           (12, "m/00000012.mjpg/../../x"), (12, "m/00000012."),
                           (12, "m/00000012.MJPG"), (12, "m/00000012.mjpeg2000"),
                           (12, "m/00000012.mj\x00pg"), (12, None), (12, b"m/00000012.mjpg"),
                           (-1, "m/-0000001.mjpg"), ("12", "m/00000012.mjpg")):
            self.assertEqual(st.media_name(seg, media), None, (seg, media))
        self.assertEqual(st.index_name(12), "m/00000012.idx")

    def test_an_edited_rec_start_never_opens_the_key(self):
        seg = self.rec.start()
        self.rec.run_ms(3000)
        self.rec.stop()
        device.shutdown(self.s, self.rec)

        def change(body):
            body[11] = KEY_PATH

        _edit_record(self.sd, seg, change)
        self.s, self.rec = device.boot(self.h, self.settings)
        self.connect()
        self.login()
        seed = self.seed()
        self.assertEqual(len(seed), 32)
        for what in (0, 1):
            r = self.host.call(link.READ, {1: seg, 2: 0, 3: 0, 4: 4096, 5: what})
            self.assertTrue(r[1] == 404, r)
            self.assertTrue(seed not in cbor.dumps(r))
        self.assertTrue(seed not in bytes(self.ser.tx))
        # a chunk size of zero or a huge one is not taken from the card either
        for chunk in (0, 1 << 40):
            self.reboot()
            _edit_record(self.sd, seg, lambda b: b.__setitem__(11, "m/%08d.mjpg" % seg))
            _edit_record(self.sd, seg, lambda b: b.__setitem__(12, chunk))
            self.reboot()
            self.login()
            r = self.host.call(link.READ, {1: seg, 2: 0, 3: 0, 4: 100})
            self.assertEqual(r[1], 404, r)

    def test_an_edited_head_hint_never_opens_the_key(self):
        self.rec.start()
        self.rec.run_ms(3000)
        # power is lost while recording; the card's head then names the key as the media
        head = cbor.loads(self.h.sd.read("head.cbor"))
        self.assertTrue(4 in head)
        head[4][1] = KEY_PATH
        f = self.h.sd.create("head.cbor")
        f.write(cbor.dumps(head))
        f.close()
        seed = self.seed()
        n = len(self.chain())
        self.s, self.rec = device.boot(self.h, self.settings)
        self.assertEqual(self.seed(), seed)
        new = [b for _, b in self.chain()[n:]]
        self.assertEqual([b[0] for b in new], [st.BOOT])     # nothing recovered from the key
        self.assertEqual(self.s.recovered, None)


def _vm():
    try:
        import jshal  # noqa: F401  (the MicroPython VM's host module)
        return True
    except ImportError:
        return False


class TestRefusalFlood(Case):
    def flood(self, n, per_ms=1, batch=100):
        # n DELETE requests from a host that never authenticated, per_ms apart on the clock
        reqs = [self.host.req(link.DELETE, {1: "m/%08d.mjpg" % (i % 50)}, 1 + i % 1000)
                for i in range(batch)]
        blob = b"".join(reqs)
        done = 0
        statuses = {}
        while done < n:
            k = min(batch, n - done)
            self.ser.rx += blob if k == batch else b"".join(reqs[:k])
            out = self.host.pump()
            self.assertEqual(len(out), k)
            for o in out:
                statuses[o[1]] = statuses.get(o[1], 0) + 1
            done += k
            self.h.clock.sleep_ms(per_ms * k)
        return statuses

    def test_a_flood_of_deletes_writes_a_bounded_number_of_counted_records(self):
        n = 2000 if _vm() else 10000          # the VM answers ~1,000 requests a second
        before = self.chain()
        used = self.h.sd.used
        statuses = self.flood(n)               # 10,000 in 10 s of device time
        self.assertEqual(statuses, {405: n})
        self.h.clock.sleep_ms(self.s.refusals.interval_ms)
        self.lnk.service()                     # the last burst's record is due now
        chain = self.chain()
        self.assertEqual([r for r, _ in chain[:len(before)]], [r for r, _ in before])
        new = [b for _, b in chain[len(before):]]
        interval = self.s.refusals.interval_ms
        self.assertTrue(len(new) <= n // interval + 3, len(new))
        self.assertEqual([b[0] for b in new], [st.REFUSAL] * len(new))
        self.assertEqual(sum(b.get(44, 1) for b in new), n)     # every refusal is counted
        self.assertEqual(new[0].get(44, 1), 1)                   # the first at once
        self.assertTrue(new[-1][44] > 1, new[-1])
        self.assertTrue(self.h.sd.used - used < 400 * len(new) + 4096, self.h.sd.used - used)
        # recording still works
        self.rec.start()
        self.rec.run_ms(3000)
        self.rec.stop()
        types = [b[0] for _, b in self.chain()[len(chain):]]
        self.assertEqual((types[0], types[-2:]), (st.REC_START, [st.SEGMENT, st.REC_STOP]))

    def test_refusals_never_take_the_evidence_reserve(self):
        reserve = self.s.refusals.reserve
        self.assertEqual(reserve, 60 * self.s.cfg["bitrate"] // 8)   # 60 s at the bitrate
        reserve = self.s.refusals.reserve = 200000             # a small card's reserve
        fs = self.h.sd
        fs.capacity = fs.used + reserve + 20000                # room for a few records
        n = len(self.chain())
        for i in range(200):
            self.h.clock.sleep_ms(self.s.refusals.interval_ms)
            r = self.host.call(link.DELETE, {1: "x%d" % i})
            self.assertTrue(r[1] in (405, 500), r)
            self.assertTrue(fs.free() >= reserve, (i, fs.free()))
        written = len(self.chain()) - n
        self.assertTrue(0 < written < 100, written)
        self.assertTrue("counted" in r[3], r)       # not recorded now: counted
        # the reserve is the recorder's: a start, media into it, a clean close
        m = len(self.chain())
        self.rec.start()
        self.rec.run_ms(2500)     # ~125 KB at the simulated camera's 400 kbit/s
        self.rec.stop()
        types = [b[0] for _, b in self.chain()[m:]]
        self.assertEqual((types[0], types[-2:]), (st.REC_START, [st.SEGMENT, st.REC_STOP]))
        self.assertTrue(fs.free() < reserve - 100000, fs.free())


class TestControlCharacters(Case):
    BAD = ("PC\n4711", "PC\x1b[2J", "\x00", "PC\x7f", "PC\x85", "PC\x9b31m", "\t", "\r")

    def test_clean_and_has_control(self):
        import refusals
        self.assertEqual(refusals.clean("a\x00b\x1b[2J\x7f\x85\x9f\xa0\u00e9\n"),
                         "a?b?[2J???\xa0\u00e9?")
        self.assertEqual(refusals.clean("x" * 100), "x" * 61 + "...")
        for t in self.BAD:
            self.assertTrue(refusals.has_control(t), t)
        for t in ("PC-4711", "Müller", "\xa0", "unit 7/ß"):
            self.assertFalse(refusals.has_control(t), t)

    def test_assign_refuses_control_characters(self):
        self.login()
        n = len(self.chain())
        for bad in self.BAD:
            for args in ({1: bad, 2: "unit-7"}, {1: "PC-1", 2: bad}):
                r = self.host.call(link.ASSIGN, args)
                self.assertEqual(r[1], 400, (args, r))
                self.assertTrue("control character" in r[3], r)
                self.assertTrue(bad not in r[3], r)
        self.assertEqual(len(self.chain()), n)
        self.assertEqual(self.s.officer, None)
        self.assertEqual(self.host.call(link.ASSIGN, {1: "Müller", 2: "unit 7"})[1], 0)

    def test_a_refused_target_is_stored_without_control_characters(self):
        n = len(self.chain())
        r = self.host.call(link.DELETE, {1: "m/1.mjpg\x1b]0;owned\x07\n\x9b2J"})
        self.assertEqual(r[1], 405, r)
        self.assertTrue("\x1b" not in r[3] and "\x07" not in r[3], r)
        body = self.chain()[n][1]
        self.assertEqual((body[0], body[20]), (st.REFUSAL, "m/1.mjpg?]0;owned???2J"))
        try:
            self.s.request("delete", "\x00\x01", "api")
        except st.Refused:
            pass
        self.s.refusals.flush()
        self.assertEqual(self.chain()[-1][1][20], "??")
