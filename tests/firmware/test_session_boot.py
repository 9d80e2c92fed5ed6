# Recorder hardening, second round (issue 8 review F3-F5): a refused request tells an
# unauthenticated host nothing about the store; a session does not outlive its station;
# a hostile head.cbor neither opens a file outside the store nor reads one whole at
# boot, and a boot that fails keeps the link up. Runs unchanged on MicroPython and CPython.
import unittest

import hashlib

from sealcamfw import cbor
from sealcamfw import cose
from sealcamfw import device
from sealcamfw import ed25519
import fwtest
from sealcamfw import hal
from sealcamfw import link
from sealcamfw import logread
from sealcamfw import selfcheck
from sealcamfw import store as st
from sealcamfw import workflow
from test_link import SMALL, Host


class Case(fwtest.SessionCase):
    settings = SMALL

    def record(self, ms=3000):
        seg = self.rec.start()
        self.rec.run_ms(ms)
        self.rec.stop()
        return seg


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


class HeadCase(Case):
    def setUp(self):
        Case.setUp(self)
        self.seg = self.record(20000)     # a media file of about 1 MB
        self.media = [b for _, b in fwtest.read_chain(self.sd) if b[0] == st.REC_START][0][11]
        self.reads = []
        orig = self.h.sd.read
        reads = self.reads

        def read(path, offset=0, n=-1):
            data = orig(path, offset, n)
            reads.append((path, offset, n, len(data)))
            return data
        self.h.sd.read = read     # every card read is watched (reboot() clears the list)
        into = self.h.sd.readinto

        def readinto(path, offset, buf):
            n = into(path, offset, buf)
            reads.append((path, offset, len(buf), n))
            return n
        self.h.sd.readinto = readinto

    def head(self):
        with open(self.sd + "/head.cbor", "rb") as f:
            return cbor.loads(f.read())

    def put_head(self, data):
        with open(self.sd + "/head.cbor", "wb") as f:
            f.write(data)

    def reboot(self, settings=None):
        # shut down and boot again; the card's last record before it
        device.shutdown(self.s, self.rec)
        last = self.s.last
        del self.reads[:]
        self.s, self.rec = device.boot(self.h, settings or self.settings)
        return last

    def assert_continues(self, last):
        # the BOOT record (the first of this boot) follows the card's last record: the
        # chain was found, whatever the head said
        boot = [b for _, b in fwtest.read_chain(self.sd) if b[0] == st.BOOT][-1]
        self.assertEqual(boot[1], st.body_of(last)[1] + 1)
        self.assertEqual(boot[2], hashlib.sha256(last).digest())

    def assert_reads_inside(self, recovery=False):
        for path, off, n, got in self.reads:
            seg = int(path[2:10]) if recovery and path[:2] == "m/" and path[2:10].isdigit() \
                else -1
            self.assertTrue(path in ("head.cbor", "head.new") or
                            logread.log_path(path) is not None or   # a log, or a segment's
                            path in (logread.media_name(seg, path),  # files made from its
                                     logread.index_name(seg)),       # seq (recovery)
                            (path, off, n, got))
            self.assertTrue(0 <= n <= 65536 + 4096, (path, off, n, got))   # bounded


class TestHostileHead(HeadCase):
    def test_a_head_naming_another_file_is_not_opened(self):
        targets = ("../flash/key.bin", self.media, "rec/../../flash/key.bin",
                   "/rec/00000000.log", "rec/0000000.log", "rec/+0000000.log",
                   "rec/00000000.log/..", "rec/00000000_0.log", "rec/00000000_01.log",
                   "rec/00000000.log\n", "rec/\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660.log",
                   "rec/99999999.log", 7, None, b"rec/00000000.log", ["rec/00000000.log"])
        for target in targets:
            h = self.head()
            h[1], h[2] = target, 0
            self.put_head(cbor.dumps(h))
            last = self.reboot()
            self.assert_reads_inside()
            self.assert_continues(last)
            self.assertEqual(self.s.card_error, None)
        # a head behind the chain, with a name that is not the store's: the records after
        # it are found in the log that holds its seq (no fork)
        device.shutdown(self.s, self.rec)
        old = self.head()
        self.s, self.rec = device.boot(self.h, self.settings)
        self.record(3000)
        old[1], old[2] = "../flash/key.bin", 5
        self.put_head(cbor.dumps(old))
        last = self.reboot()
        self.assert_reads_inside()
        self.assert_continues(last)

    def test_boot_reads_a_log_in_windows_and_no_further_than_a_log_holds(self):
        h = self.head()
        log = self.sd + "/" + h[1]
        with open(log, "rb") as f:
            first = fwtest.read_chain(self.sd)[0][0]
        with open(log, "ab") as f:              # 2 MB of stale records after the head
            for _ in range(2097152 // len(first)):
                f.write(first)
        last = self.reboot()
        self.assert_reads_inside()
        self.assert_continues(last)
        from_log = sum(got for path, off, n, got in self.reads if path == h[1])
        self.assertTrue(from_log <= self.s.log_max + 2 * 65536, from_log)
        # the same from the log's start (a head whose offset is not the store's)
        h[2] = "0"
        self.put_head(cbor.dumps(h))
        last = self.reboot()
        self.assert_reads_inside()
        self.assert_continues(last)

    def test_a_malformed_head_falls_back_to_the_log_scan(self):
        stranger = ed25519.secret(bytes(32))
        bodyless = cose.sign1(stranger, cose.protected(b"SC-X"), cbor.dumps({0: 1, 1: 5}))
        for data in (b"", b"\xff" * 10, cbor.dumps([1, 2, 3, 4]), cbor.dumps({3: b"junk"}),
                     cbor.dumps({1: "rec/00000000.log", 2: 0, 3: bodyless}),
                     cbor.dumps({1: "rec/00000000.log", 2: 0, 3: 5}), b"\x00" * 200000):
            self.put_head(data)
            last = self.reboot()
            self.assert_reads_inside()
            self.assert_continues(last)
            self.assertEqual((self.s.card_error, self.s.foreign), (None, None))

    def test_recovery_hashes_a_large_chunk_in_pieces(self):
        big = dict(SMALL, chunk=262144, checkpoint_s=600)
        device.shutdown(self.s, self.rec)
        self.s, self.rec = device.boot(self.h, big)
        seg = self.rec.start()
        self.rec.run_ms(20000)          # about 1 MB, no checkpoint: a power cut now
        del self.reads[:]
        self.s, self.rec = device.boot(self.h, big)
        media = [r for r in self.reads if r[0].startswith("m/")]
        self.assertTrue(media)
        for path, off, n, got in media:
            self.assertTrue(0 < n <= 65536, (path, off, n))
        rv = [b for _, b in fwtest.read_chain(self.sd) if b[0] == st.RECOVERY][-1]
        self.assertEqual(rv[st.K_SEGMENT], seg)
        with open(self.sd + "/" + self.s.segment_files(seg)[0], "rb") as f:
            data = f.read()
        root = bytes(32)
        for p in range(0, len(data), 262144):
            root = hashlib.sha256(root + hashlib.sha256(data[p:p + 262144]).digest()).digest()
        self.assertEqual((rv[st.K_LENGTH], rv[st.K_ROOT]), (len(data), root))
        self.assertTrue(len(data) > 262144 * 2, len(data))


def _restore(root, snap):
    # the card as it was in snap ({relative path: bytes}, fwtest.files)
    import os
    for rel in fwtest.files(root):
        if rel not in snap:
            os.remove(root + "/" + rel)
    for rel in snap:
        with open(root + "/" + rel, "wb") as f:
            f.write(snap[rel])


class TestBootFuzz(HeadCase):
    def test_mutated_heads_and_logs_never_stop_a_boot(self):
        import sys
        device.shutdown(self.s, self.rec)
        sd0, fl0 = fwtest.files(self.sd), fwtest.files(self.flash)
        logs = sorted(k for k in sd0 if k.startswith("rec/"))
        x = [12345]

        def rnd(n):             # xorshift: the same cases on both runtimes
            v = x[0]
            v ^= (v << 13) & 0xFFFFFFFF
            v ^= v >> 17
            v ^= (v << 5) & 0xFFFFFFFF
            x[0] = v
            return v % n if n > 0 else 0
        values = (None, -1, 1 << 40, "rec/00000000.log", "rec/00000099.log", b"x", [1], {},
                  self.media, 0, 17, "../flash/key.bin")
        runs = 6 if sys.implementation.name == "micropython" else 150
        for i in range(runs):
            _restore(self.sd, sd0)
            _restore(self.flash, fl0)
            for rel in ("head.cbor", logs[-1], logs[rnd(len(logs))])[:1 + rnd(3)]:
                d = bytearray(sd0[rel])
                k = rnd(4)
                if k == 0:
                    d = d[:rnd(len(d))]
                elif k == 1:
                    for _ in range(1 + rnd(8)):
                        d[rnd(len(d))] = rnd(256)
                elif k == 2:
                    at = rnd(len(d))
                    d = d[:at] + bytes(rnd(256) for _ in range(1 + rnd(40))) + d[at:]
                elif rel == "head.cbor":
                    hd = cbor.loads(bytes(d))
                    hd[1 + rnd(4)] = values[rnd(len(values))]
                    d = cbor.dumps(hd)
                with open(self.sd + "/" + rel, "wb") as f:
                    f.write(d)
            del self.reads[:]
            self.s, self.rec = device.boot(self.h, self.settings)    # never raises
            self.assert_reads_inside(recovery=True)   # a cut log can leave a segment open
            device.shutdown(self.s, self.rec)


class TestBootFailure(HeadCase):
    def test_a_boot_that_fails_keeps_the_link_up(self):
        device.shutdown(self.s, self.rec)
        before = fwtest.files(self.sd)
        size = self.h.sd.size

        def broken(path):
            if path == "head.cbor":
                raise MemoryError("memory allocation failed, allocating 1010000 bytes")
            return size(path)
        self.h.sd.size = broken
        self.assertRaises(MemoryError, device.boot, self.h, self.settings)
        self.s, self.rec = device.boot_or_fail(self.h, self.settings)
        self.h.sd.size = size
        self.assertTrue("MemoryError" in self.s.card_error, self.s.card_error)
        r = selfcheck.run(self.h, self.s, self.rec.cfg)
        self.assertEqual((r[1], r[4]), (False, None))
        self.assertTrue("card_error" in r[2], r)
        wf = workflow.Workflow(self.h, self.s, self.rec, self.rec.cfg)
        self.assertEqual(wf.start("button"), None)      # no recording onto it
        self.connect()
        r = self.host.call(link.DELETE, {1: "x"})
        self.assertTrue(r[1] in (405, 500), r)
        res = self.login()
        self.assertEqual([a[1] for a in res[14]], ["card_error"])
        self.assertTrue("MemoryError" in res[14][0][3], res[14])
        r = self.host.call(link.CHECK, {})
        self.assertEqual(r[1], 0, r)
        self.assertTrue("card_error" in r[2][2], r)
        self.assertEqual(self.host.call(link.LIST, {1: 0, 2: 10})[1], 0)
        self.assertEqual(self.host.call(link.TIME_SET, {1: 1795000000000})[1], 500)
        device.shutdown(self.s, self.rec)
        self.assertEqual(fwtest.files(self.sd), before)  # nothing was written to the card
        # the next boot, with the card readable again, goes on from the chain
        self.s, self.rec = device.boot_or_fail(self.h, self.settings)
        self.assertEqual(self.s.card_error, None)


if __name__ == "__main__":
    unittest.main()
