# The evidence store on a simulated board: chain, segments, head, no-delete, recovery.
# Runs unchanged on MicroPython and CPython.
import hashlib
import unittest

from sealcamfw import device
from sealcamfw import ed25519
import fwtest
from sealcamfw import store as st
from sim.hal.powerfs import FAT, PowerCut

SMALL = {"chunk": 4096, "checkpoint_s": 2, "segment_s": 60}


def chain_ok(test, chain):
    prev = bytes(32)
    for i, (raw, body) in enumerate(chain):
        test.assertEqual(body[1], i)
        test.assertEqual(body[2], prev)
        prev = hashlib.sha256(raw).digest()


def root_of(data, chunk):
    r = bytes(32)
    for i in range(0, len(data), chunk):
        r = hashlib.sha256(r + hashlib.sha256(data[i:i + chunk]).digest()).digest()
    return r


class TestStore(unittest.TestCase):
    def test_first_boot_makes_key_and_boot_record(self):
        h, sd, flash = fwtest.sim()
        s, rec = device.boot(h, SMALL)
        chain = fwtest.read_chain(sd)
        self.assertEqual(len(chain), 2)     # BOOT, FIRMWARE (no manifest: unmanaged, §13.2)
        self.assertEqual(chain[1][1][0], st.FIRMWARE)
        self.assertEqual(chain[1][1][st.K_REASON], "unmanaged")
        body = chain[0][1]
        self.assertEqual(body[0], st.BOOT)
        self.assertEqual(body[18], ed25519.public(s.sk))
        self.assertEqual(body[3], h.device)
        self.assertEqual(body[9] & st.F_NO_OFFICER, st.F_NO_OFFICER)
        # the seed lives in flash only; nothing on the SD card holds it
        seed = h.flash.read("key.bin")
        self.assertEqual(len(seed), 32)
        for name, data in fwtest.files(sd).items():
            self.assertTrue(data.find(seed) < 0, name)
        self.assertTrue(h.sd.exists("head.cbor"))

    def test_segment_chunks_checkpoints_and_manifest(self):
        h, sd, flash = fwtest.sim()
        s, rec = device.boot(h, SMALL)
        seg = rec.start()
        rec.run_ms(5000)
        rec.stop()
        chain = fwtest.read_chain(sd)
        chain_ok(self, chain)
        types = [b[0] for _, b in chain]
        self.assertEqual(types[:3], [st.BOOT, st.FIRMWARE, st.REC_START])
        self.assertTrue(st.CHECKPOINT in types)
        self.assertEqual(types[-2:], [st.SEGMENT, st.REC_STOP])
        start = chain[2][1]
        media = h.sd.read(start[11])
        man = chain[-2][1]
        self.assertEqual(man[10], seg)
        self.assertEqual(man[13], len(media))
        self.assertEqual(man[15], root_of(media, 4096))
        self.assertEqual(man[14], (len(media) + 4095) // 4096)
        idx = h.sd.read(start[11][:-3] + "idx")
        self.assertEqual(len(idx), 32 * man[14])
        for c in [b for _, b in chain if b[0] == st.CHECKPOINT]:
            self.assertEqual(c[13] % 4096, 0)
            self.assertEqual(c[15], root_of(media[:c[13]], 4096))

    def test_no_delete_api_and_refusal_is_recorded(self):
        h, sd, flash = fwtest.sim()
        s, rec = device.boot(h, SMALL)
        for name in ("delete", "remove", "truncate", "overwrite", "format"):
            self.assertFalse(hasattr(s, name), name)
            self.assertFalse(hasattr(h.sd, name), name)
        with self.assertRaises(st.Refused):
            s.request("delete", "m/00000001.mkv", "api")
        last = fwtest.read_chain(sd)[-1][1]
        self.assertEqual(last[0], st.REFUSAL)
        self.assertEqual(last[19], "delete")
        self.assertEqual(last[20], "m/00000001.mkv")

    def test_reboot_continues_the_chain_in_a_new_log(self):
        h, sd, flash = fwtest.sim()
        s, rec = device.boot(h, SMALL)
        rec.start()
        rec.run_ms(3000)
        device.shutdown(s, rec)
        h.clock.reboot()
        s2, rec2 = device.boot(h, SMALL)
        self.assertEqual(ed25519.public(s2.sk), ed25519.public(s.sk))
        chain = fwtest.read_chain(sd)
        chain_ok(self, chain)
        self.assertEqual(chain[-1][1][0], st.BOOT)
        self.assertEqual(chain[-1][1][6], 2)
        self.assertEqual(len(h.sd.listdir("rec")), 2)

    def test_power_cut_mid_segment_is_recovered_at_boot(self):
        h, sd, flash = fwtest.sim(cut_at=None)
        s, rec = device.boot(h, SMALL)
        rec.start()
        rec.run_ms(5000)
        h.sd.cut_at = h.sd.steps + 7  # lose power a few writes later
        with self.assertRaises(PowerCut):
            rec.run_ms(5000)
        before = fwtest.read_chain(sd)
        h2, _, _ = fwtest.sim(sd[:-3])
        h2.clock = h.clock
        h.clock.reboot()
        s2, rec2 = device.boot(h2, SMALL)
        chain = fwtest.read_chain(sd)
        chain_ok(self, chain)
        self.assertEqual([r for r, _ in chain[:len(before)]], [r for r, _ in before])
        rcv = [b for _, b in chain if b[0] == st.RECOVERY]
        self.assertEqual(len(rcv), 1)
        media = h2.sd.read(chain[2][1][11])     # seq 2: REC_START (1 is FIRMWARE)
        self.assertEqual(rcv[0][13], len(media))
        self.assertEqual(rcv[0][15], root_of(media, 4096))
        self.assertEqual(rcv[0][9] & st.F_RECOVERED, st.F_RECOVERED)
        self.assertEqual(s2.recovered["segment"], chain[2][1][1])

    def test_fat_half_done_head_rename_boots(self):
        h, sd, flash = fwtest.sim(model=FAT)
        s, rec = device.boot(h, SMALL)
        # cut between FAT's remove of head.cbor and the rename of head.new
        # steps of the next record: write and flush it, write and flush head.new,
        # remove head.cbor, [cut] rename head.new
        h.sd.cut_at = h.sd.steps + 5
        with self.assertRaises(PowerCut):
            rec.start()
        self.assertFalse(h.sd.exists("head.cbor"))
        self.assertTrue(h.sd.exists("head.new"))
        h2, _, _ = fwtest.sim(sd[:-3], model=FAT)
        s2, rec2 = device.boot(h2, SMALL)
        chain = fwtest.read_chain(sd)
        chain_ok(self, chain)
        # the segment REC_START opened is recovered: BOOT, then its power_loss INTERRUPTION
        self.assertEqual(chain[-2][1][0], st.BOOT)
        self.assertEqual(chain[-1][1][0], st.INTERRUPTION)
        self.assertEqual(chain[-1][1][st.K_REASON], "power_loss")
        self.assertEqual(chain[-1][1][st.K_REFERS], s2.recovered["seq"])

    def test_cut_after_a_rollover_record_before_its_head(self):
        # the first record of a new log is flushed before the head names that log; a cut
        # between the two must not fork the chain at the next boot
        small_logs = dict(SMALL, log_max=600, refusal_interval_ms=0)   # a record each
        for model in ("littlefs", FAT):
            h, sd, flash = fwtest.sim(model=model)
            s, rec = device.boot(h, small_logs)
            while s.log_off + 250 <= 600:   # the next record rolls over to a new log
                try:
                    s.request("delete", "x", "api")
                except st.Refused:
                    pass
            # steps of that record: write, flush (in the new log), write and flush head.new,
            # [FAT: remove head.cbor], rename: cut at the head's write
            h.sd.cut_at = h.sd.steps + 2
            with self.assertRaises(PowerCut):
                s.request("delete", "y", "api")
            before = fwtest.read_chain(sd)
            self.assertEqual(before[-1][1][20], "y")
            h2, _, _ = fwtest.sim(sd[:-3], model=model)
            device.boot(h2, small_logs)
            chain = fwtest.read_chain(sd)
            chain_ok(self, chain)
            self.assertEqual([r for r, _ in chain[:len(before)]], [r for r, _ in before])
            self.assertEqual(chain[-1][1][0], st.BOOT)


class TestBootCost(unittest.TestCase):
    def boot_reads(self, refusals, cut):
        h, sd, flash = fwtest.sim()
        s, rec = device.boot(h, dict(SMALL, refusal_interval_ms=0))   # a record each
        for i in range(refusals):
            try:
                s.request("delete", "seq %d" % i, "api")
            except st.Refused:
                pass
        rec.start()
        rec.run_ms(5000)
        if cut:
            h.sd.cut_at = h.sd.steps + 3
            with self.assertRaises(PowerCut):
                rec.run_ms(3000)
        else:
            device.shutdown(s, rec)
        h2, _, _ = fwtest.sim(sd[:-3])
        s2, _ = device.boot(h2, SMALL)
        return h2.sd.bytes_read, s2

    def test_boot_reads_do_not_grow_with_history(self):
        for cut in (False, True):
            few, s_few = self.boot_reads(2, cut)
            many, s_many = self.boot_reads(60, cut)
            self.assertTrue(s_many.seq > s_few.seq + 50)
            # boot reads the head (and the open segment's unsigned tail), never the old
            # records: 58 more records (~12 KB) change what it reads by a few bytes of
            # longer integers in the head copy at most
            self.assertTrue(abs(few - many) < 16, (few, many))
            self.assertEqual(bool(s_many.recovered), cut)
