# Recorder hardening (issue 8): an edited card never makes the device open a file it
# names; refusals cannot fill the card; the link session ends; control characters are not
# stored; a card whose head went back, or another device's card, is found at boot.
# Runs unchanged on MicroPython and CPython.

from sealcamfw import cbor
from sealcamfw import cose
from sealcamfw import device
from sealcamfw import devkey
from sealcamfw import ed25519
import fwtest
from sealcamfw import link
from sealcamfw import store as st
from test_link import SMALL, Host

KEY_PATH = "../flash/" + devkey.KEY_FILE    # the device key seed, seen from the card's root


class Case(fwtest.SessionCase):
    settings = SMALL

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
        self.assertEqual(st.media_name(12, "m/00000012.mkv"), "m/00000012.mkv")
        self.assertEqual(st.media_name(123456789, "m/123456789.mkv"), "m/123456789.mkv")
        for seg, media in ((12, "m/00000013.mkv"), (12, "../flash/key.bin"),
                           (12, "m/00000012.mkv/../../x"), (12, "m/00000012."),
                           (12, "m/00000012.MJPG"), (12, "m/00000012.mjpeg2000"),
                           (12, "m/00000012.mj\x00pg"), (12, None), (12, b"m/00000012.mkv"),
                           (-1, "m/-0000001.mkv"), ("12", "m/00000012.mkv")):
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
            _edit_record(self.sd, seg, lambda b: b.__setitem__(11, "m/%08d.mkv" % seg))
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


class TestRefusalFlood(Case):
    def flood(self, n, per_ms=1, batch=100):
        # n DELETE requests from a host that never authenticated, per_ms apart on the clock
        reqs = [self.host.req(link.DELETE, {1: "m/%08d.mkv" % (i % 50)}, 1 + i % 1000)
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
        n = 10000
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

    def test_a_small_cards_reserve_is_a_sixteenth_of_it(self):
        h, sd, flash = fwtest.sim(capacity=64000000)
        s, rec = device.boot(h, self.settings)
        self.assertEqual(s.refusals.reserve, 4000000)
        h, sd, flash = fwtest.sim(capacity=64000000000)
        s, rec = device.boot(h, self.settings)
        self.assertEqual(s.refusals.reserve, 60 * s.cfg["bitrate"] // 8)

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
        self.assertTrue(self.s.refusals.pending is not None)   # not recorded now: counted
        self.assertTrue("seq" not in r[3], r)       # and an unauthenticated host is not told
        # the reserve is the recorder's: a start, media into it, a clean close
        m = len(self.chain())
        self.rec.start()
        self.rec.run_ms(1500)     # ~125 KB: the simulated camera at 400 kbit/s + 16 kHz audio
        self.rec.stop()
        types = [b[0] for _, b in self.chain()[m:]]
        self.assertEqual((types[0], types[-2:]), (st.REC_START, [st.SEGMENT, st.REC_STOP]))
        self.assertTrue(fs.free() < reserve - 100000, fs.free())


class TestControlCharacters(Case):
    BAD = ("PC\n4711", "PC\x1b[2J", "\x00", "PC\x7f", "PC\x85", "PC\x9b31m", "\t", "\r")

    def test_clean_and_has_control(self):
        from sealcamfw import refusals
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
        r = self.host.call(link.DELETE, {1: "m/1.mkv\x1b]0;owned\x07\n\x9b2J"})
        self.assertEqual(r[1], 405, r)
        self.assertTrue("\x1b" not in r[3] and "\x07" not in r[3], r)
        body = self.chain()[n][1]
        self.assertEqual((body[0], body[20]), (st.REFUSAL, "m/1.mkv?]0;owned???2J"))
        try:
            self.s.request("delete", "\x00\x01", "api")
        except st.Refused:
            pass
        self.s.refusals.flush()
        self.assertEqual(self.chain()[-1][1][20], "??")


def _wipe(root):
    import os
    for name in os.listdir(root):
        p = root + "/" + name
        if os.stat(p)[0] & 0x4000:
            _wipe(p)
            os.rmdir(p)
        else:
            os.remove(p)


def _put(root, files):
    import os
    for rel in sorted(files):
        parts = rel.split("/")
        for i in range(1, len(parts)):
            try:
                os.mkdir(root + "/" + "/".join(parts[:i]))
            except OSError:
                pass
        with open(root + "/" + rel, "wb") as f:
            f.write(files[rel])


class TestHeadMemory(Case):
    def shift(self, ms=3000):
        self.rec.start()
        self.rec.run_ms(ms)
        self.rec.stop()

    def swap_card(self, files):
        # power off, the card's content replaced (an older copy, or another card), boot
        device.shutdown(self.s, self.rec)
        _wipe(self.sd)
        _put(self.sd, files)
        self.h, _, _ = fwtest.sim(self.sd[:-3])
        self.h.serial = self.ser
        self.s, self.rec = device.boot(self.h, self.settings)
        self.connect()

    def check_gap_chain(self, chain, old, new):
        import hashlib
        prev = bytes(32)
        for raw, b in chain:
            if b[0] == st.STORE_ALERT:
                self.assertEqual((b[1], b[2]), (old[0] + 1, old[1]))
                self.assertEqual((b[33], b[28], b[29]), ("head_back", old, new))
            else:
                self.assertEqual(b[2], prev, b[1])
            prev = hashlib.sha256(raw).digest()

    def test_an_older_card_put_back_is_a_gap_that_names_itself(self):
        from sealcamfw import headmem
        self.shift()
        old_card = fwtest.files(self.sd)
        old_chain = self.chain()
        self.shift()
        self.shift()
        mem = headmem.recall(self.h.flash)
        full = self.chain()
        self.assertTrue(mem[1] > len(old_chain), (mem[1], len(old_chain)))
        self.assertEqual(st._sha256(full[mem[1]][0]), mem[2])
        self.swap_card(old_card)
        chain = self.chain()
        self.assertEqual([r for r, _ in chain[:len(old_chain)]], [r for r, _ in old_chain])
        alert = chain[len(old_chain)][1]
        old = [mem[1], mem[2]]
        new = [len(old_chain) - 1, st._sha256(old_chain[-1][0])]
        self.check_gap_chain(chain, old, new)
        self.assertEqual(alert[0], st.STORE_ALERT)
        self.assertEqual(chain[len(old_chain) + 1][1][0], st.BOOT)
        self.assertEqual(self.s.alerts[0][1], "head_back")
        self.assertEqual(self.s.alerts[0][2], mem[1] + 1)
        # the station hears of it in AUTH, and LIST leads over the gap
        a = self.login()
        self.assertEqual(a[14], self.s.alerts)
        self.assertTrue(("record %d" % mem[1]) in a[14][0][3], a[14])
        r = self.host.call(link.LIST, {1: 0, 2: 1000})
        self.assertEqual([e[0] for e in r[2][1]],
                         list(range(len(old_chain))) + [mem[1] + 1 + i for i in
                                                        range(len(chain) - len(old_chain))])
        r = self.host.call(link.LIST, {1: len(old_chain), 2: 1000})
        self.assertEqual(r[2][1][0][0], mem[1] + 1)
        self.assertEqual(self.host.call(link.GET, {1: mem[1] + 1})[2][1], chain[len(old_chain)][0])
        r = self.host.call(link.GET, {1: mem[1]})              # a record the card lost
        self.assertEqual(r[1], 404, r)
        self.assertTrue("gap" in r[3], r)
        # the next boot finds the card as the device left it: no new alert
        self.reboot()
        self.assertEqual(self.s.alerts, [])
        self.assertEqual(self.chain()[-1][1][0], st.BOOT)

    def test_an_empty_card_continues_the_remembered_chain(self):
        from sealcamfw import headmem
        self.shift()
        mem = headmem.recall(self.h.flash)
        self.swap_card({})
        chain = self.chain()
        b = chain[0][1]
        self.assertEqual((b[0], b[1], b[2], b[28], b[29]),
                         (st.STORE_ALERT, mem[1] + 1, mem[2], [mem[1], mem[2]], None))
        self.assertEqual(self.h.sd.listdir("rec"), ["%08d.log" % (mem[1] + 1)])
        self.assertEqual(self.s.alerts[0][2], mem[1] + 1)

    def test_another_record_at_the_remembered_seq(self):
        from sealcamfw import headmem
        self.shift()
        self.reboot()
        mem = headmem.recall(self.h.flash)
        try:
            self.s.request("delete", "x", "api")    # a record after it, not remembered
        except st.Refused:
            pass
        self.assertEqual(headmem.recall(self.h.flash), mem)
        device.shutdown(self.s, self.rec)
        _edit_record(self.sd, mem[1], lambda b: b.__setitem__(4, b[4] + 1))
        n = len(self.chain())
        self.s, self.rec = device.boot(self.h, self.settings)
        b = self.chain()[n][1]
        self.assertEqual((b[0], b[1], b[28]), (st.STORE_ALERT, mem[1] + 1, [mem[1], mem[2]]))
        self.assertEqual(self.s.alerts[0][1], "head_back")

    def test_a_normal_reboot_and_a_cut_raise_no_alert(self):
        from sim.hal.powerfs import PowerCut
        self.shift()
        self.reboot()
        self.assertEqual(self.s.alerts, [])
        self.rec.start()
        self.rec.run_ms(2000)
        self.h.sd.cut_at = self.h.sd.steps + 3
        try:
            self.rec.run_ms(3000)
        except PowerCut:
            pass
        h2, _, _ = fwtest.sim(self.sd[:-3])
        s2, _ = device.boot(h2, self.settings)
        self.assertEqual(s2.alerts, [])
        self.assertTrue(s2.recovered)

    def test_flash_is_written_per_segment_and_interval_not_per_record(self):
        from sealcamfw import headmem
        calls = []
        real = headmem.remember

        def counting(*a):
            calls.append(a[1])
            real(*a)

        headmem.remember = counting
        try:
            n = len(self.chain())
            self.rec.start()
            self.rec.run_ms(600000)         # 10 min: 10 segments of 60 s, 300 checkpoints
            self.rec.stop()
        finally:
            headmem.remember = real
        records = len(self.chain()) - n
        self.assertTrue(records > 250, records)
        # one per SEGMENT, one per 300 s interval, and the first
        self.assertTrue(len(calls) <= 10 + 600 // 300 + 1, (len(calls), records))


class TestForeignCard(Case):
    def test_another_devices_card_is_not_written(self):
        from sealcamfw import selfcheck
        from sealcamfw import workflow
        self.rec.start()
        self.rec.run_ms(2000)
        self.rec.stop()
        device.shutdown(self.s, self.rec)
        card = fwtest.files(self.sd)
        for dev_id, why in (("SC-OTHER01", "device SC-SIM0001"), ("SC-SIM0001", "key")):
            # another recorder (its own flash: its own key) boots with this card
            root = fwtest.tmpdir()
            import os
            os.mkdir(root + "/sd")
            _put(root + "/sd", card)
            h, sd, flash = fwtest.sim(root, device_id=dev_id, seed=8)   # another key
            s, rec = device.boot(h, self.settings)
            self.assertTrue(s.foreign and why in s.foreign, (dev_id, s.foreign))
            self.assertEqual(fwtest.files(sd), card)           # not a byte written
            self.assertEqual((s.alerts[0][1], s.alerts[0][2]), ("foreign_card", None))
            r = selfcheck.run(h, s, s.cfg)
            self.assertEqual((r[1], r[2][0], r[4]), (False, "foreign_card", None))
            wf = workflow.Workflow(h, s, rec, rec.cfg)
            self.assertEqual(wf.start("button"), None)
            with self.assertRaises(st.ForeignCard):
                rec.start()
            link.add_trusted(h.flash, ed25519.public(self.station))
            h.serial = fwtest.Loop()
            host = Host(link.Link(h, s, rec, workflow=wf), h.serial)
            a = host.auth(self.station)
            self.assertEqual(a[1], 0, a)
            self.assertEqual((a[2][5], a[2][14]), (None, s.alerts))
            self.assertEqual(host.call(link.DELETE, {1: "x"})[1], 500)
            self.assertEqual(host.call(link.LIST, {1: 0, 2: 10})[2][1], [])
            device.shutdown(s, rec)
            self.assertEqual(fwtest.files(sd), card)
