# The officer workflow's parts (SPEC §10): pre-record ring, buttons, state machine.
# Runs on CPython (pytest) and unchanged on the MicroPython VM.
import hashlib
import unittest

from sealcamfw import buttons as bt
from sealcamfw import device
import fwtest
from sealcamfw import prerecord
from sealcamfw import store as st
from sealcamfw import workflow

SMALL = {"chunk": 4096, "checkpoint_s": 2, "segment_s": 60, "tick_ms": 100,
         "prerecord_s": 2, "bitrate": 200000, "annotation_s": 5, "choose_s": 3}


class TestRing(unittest.TestCase):
    def frames(self, ring):
        out = []
        def put(track, t, a, b):                     # a wrapped frame comes in two parts
            out.append(bytes(a) + (bytes(b) if b is not None else b""))
        ring.drain(put)
        return b"".join(out)

    def test_keeps_frames_in_order_across_the_wrap(self):
        r = prerecord.Ring(100, 10000, max_frames=8)
        for k in range(7):
            r.add(1, k * 10, bytes([k]) * 30)          # 210 bytes through a 100-byte ring
        self.assertEqual(r.n, 3)
        self.assertEqual(self.frames(r), b"".join(bytes([k]) * 30 for k in (4, 5, 6)))
        self.assertEqual((r.n, r.used), (0, 0))

    def test_drops_by_age_and_by_frame_count(self):
        r = prerecord.Ring(1000, 250, max_frames=4)
        for k in range(4):
            r.add(1, k * 100, b"x" * 10)               # the frame of t=0 is too old at 300
        self.assertEqual((r.n, r.span_ms(300)), (3, 200))
        r.add(1, 400, b"y" * 10)
        self.assertEqual((r.n, r.span_ms(400)), (3, 200))
        for k in range(6):
            r.add(1, 400 + k, b"z")
        self.assertEqual(r.n, 4)                    # never more than max_frames

    def test_a_frame_bigger_than_the_ring_empties_it(self):
        r = prerecord.Ring(50, 1000)
        r.add(1, 0, b"a" * 20)
        r.add(1, 1, b"b" * 60)
        self.assertEqual((r.n, self.frames(r)), (0, b""))


class _Src:
    def __init__(self):
        self.edges = []

    def poll(self):
        e, self.edges = self.edges, []
        return e


class TestButtons(unittest.TestCase):
    def test_press_hold_and_voice_edges(self):
        src = _Src()
        b = bt.Buttons(src, 1500)
        src.edges = [("mark", True, 0), ("mark", False, 200)]
        self.assertEqual(b.events(200), [("mark", "down", 0), ("mark", "up", 200),
                                         ("mark", "press", 200)])
        src.edges = [("record", True, 1000)]
        self.assertEqual(b.events(1000), [("record", "down", 1000)])
        self.assertEqual(b.events(2000), [])
        self.assertEqual(b.events(2600), [("record", "hold", 2600)])   # while still down
        self.assertEqual(b.events(3000), [])                           # once
        src.edges = [("record", False, 4000)]
        self.assertEqual(b.events(4000), [("record", "up", 4000)])     # not a press too
        src.edges = [("volume", True, 5000), ("voice", False, 5000)]   # unknown / stray
        self.assertEqual(b.events(5000), [])


class WorkflowCase(unittest.TestCase):
    def setUp(self):
        self.h, self.sd, _ = fwtest.sim(bitrate=40000)
        self.s, self.rec = device.boot(self.h, SMALL)
        self.wf = workflow.Workflow(self.h, self.s, self.rec, self.rec.cfg)

    def run_s(self, s):
        for _ in self.wf.ticks(int(s * 1000)):
            pass

    def press(self, name, ms=100):
        self.h.buttons.press(name, ms)
        self.run_s(ms / 1000 + 0.3)

    def types(self):
        return [b[0] for _, b in fwtest.read_chain(self.sd)]

    def bodies(self, t):
        return [b for _, b in fwtest.read_chain(self.sd) if b[0] == t]


class TestWorkflow(WorkflowCase):
    def test_record_press_starts_with_pre_record_and_stops(self):
        self.run_s(3)
        self.press("record")
        self.assertEqual(self.wf.state, "recording")
        self.run_s(1)
        self.press("record")
        self.assertEqual(self.wf.state, "standby")
        (start,) = self.bodies(st.REC_START)
        self.assertTrue(1900 <= start[st.K_PREROLL] <= 2100, start.get(st.K_PREROLL))  # + a tick
        self.assertEqual(self.bodies(st.REC_STOP)[0][st.K_REASON], "button")
        self.assertEqual(self.h.ui.led_colour, "off")

    def test_choosing_times_out_without_an_interruption(self):
        self.press("record")
        self.h.buttons.press("record", 1600)
        self.run_s(1.8)
        self.assertEqual(self.wf.state, "choosing")
        self.run_s(3.5)
        self.assertEqual(self.wf.state, "recording")
        self.assertEqual(self.bodies(st.INTERRUPTION), [])
        self.press("record")
        self.assertEqual(self.bodies(st.REC_STOP)[0][st.K_REASON], "button")

    def test_chosen_reason_then_a_short_voice_note_is_not_an_annotation(self):
        self.press("record")
        self.h.buttons.press("record", 1600)
        self.run_s(1.8)
        self.press("mark")
        self.press("mark")
        self.press("record")                       # confirm the third reason: other
        (i,) = self.bodies(st.INTERRUPTION)
        self.assertEqual(i[st.K_REASON], "other")
        self.assertEqual(self.wf.waiting(), [i[st.K_SEQ]])
        self.press("record")                       # resume
        self.assertEqual(self.bodies(st.REC_START)[-1][st.K_REASON], "resume")
        self.press("voice", 400)                   # too short to be a statement
        self.assertEqual(self.bodies(st.VOICE_ANNOTATION), [])
        self.press("voice", 1500)
        (a,) = self.bodies(st.VOICE_ANNOTATION)
        self.assertEqual((a[st.K_REFERS], a[st.K_DURATION]), (i[st.K_SEQ], 1500))
        self.assertEqual(self.wf.waiting(), [])

    def test_no_start_while_the_battery_is_too_low(self):
        self.h.sensors.battery_pct = 2
        self.h.battery = self.h.sensors.battery
        self.press("record")
        self.assertEqual(self.wf.state, "standby")
        self.assertEqual(self.bodies(st.REC_START), [])
        self.assertIn("battery_low", self.h.ui.text)

    def test_marks_need_recording(self):
        self.press("mark")
        self.assertEqual(self.bodies(st.MARK), [])
        self.press("record")
        self.press("notice")
        (m,) = self.bodies(st.MARK)
        self.assertEqual((m[st.K_KIND], m[st.K_PHRASE]), ("notice_given", True))
        self.assertEqual(m[st.K_AT][0], self.bodies(st.REC_START)[0][st.K_SEQ])

    def test_at_most_eight_interruptions_wait(self):
        for k in range(9):
            self.wf.start()
            self.run_s(0.3)
            self.wf.interrupt("overheat")
        self.assertEqual(len(self.wf.waiting()), 8)
        (m,) = self.bodies(st.ANNOTATION_MISSING)
        self.assertEqual(m[st.K_REFERS], self.bodies(st.INTERRUPTION)[0][st.K_SEQ])

    def test_the_ring_shrinks_to_the_ram_there_is(self):
        # 64 MiB asked for: more than the VM's heap (1 MiB here) and than a small board has
        cfg = dict(self.rec.cfg, prerecord_ram=1 << 26, bitrate=1 << 30, prerecord_s=60)
        wf = workflow.Workflow(self.h, self.s, self.rec, cfg)
        self.assertTrue(wf.ring is not None and 65536 <= wf.ring.cap <= 1 << 26)

    def test_unassigned_records_are_flagged_and_assignment_survives_a_reboot(self):
        self.assertTrue(self.bodies(st.BOOT)[0][9] & st.F_NO_OFFICER)
        self.s.assign("P-7", "Unit 9", "station")
        device.shutdown(self.s, self.rec)
        self.h.clock.reboot()
        s2, _ = device.boot(self.h, SMALL)
        self.assertEqual((s2.officer, s2.unit), ("P-7", "Unit 9"))
        boot2 = self.bodies(st.BOOT)[-1]
        self.assertEqual((boot2[7], boot2[st.K_UNIT], boot2.get(9, 0)), ("P-7", "Unit 9", 0))


def root_of(data, chunk):
    r = bytes(32)
    for i in range(0, len(data), chunk):
        r = hashlib.sha256(r + hashlib.sha256(data[i:i + chunk]).digest()).digest()
    return r


class TestFailures(WorkflowCase):
    """What goes wrong mid-shift never escapes the loop and never makes the card lie."""

    def media_ok(self, seg_body):
        start = [b for b in self.bodies(st.REC_START) if b[st.K_SEQ] == seg_body[st.K_SEGMENT]][0]
        with open(self.sd + "/" + start[st.K_MEDIA], "rb") as f:
            data = f.read()
        self.assertEqual(len(data), seg_body[st.K_LENGTH])
        self.assertEqual(root_of(data, start[st.K_CHUNK]), seg_body[st.K_ROOT])

    def test_the_medium_refuses_a_write_its_free_count_promised(self):
        self.press("record")
        self.run_s(1)
        fs = self.h.sd
        fs.capacity = fs.used + fs.reserved + 10000     # full, though free() says otherwise
        fs.free = lambda: 1 << 30
        self.run_s(2)
        (i,) = self.bodies(st.INTERRUPTION)
        self.assertEqual(i[st.K_REASON], "storage_full")
        # a failed media write leaves the medium uncertain: the segment is sealed from what
        # the medium holds, as recovery does (RECOVERY, reason "write error")
        self.assertEqual(self.bodies(st.SEGMENT), [])
        (seg,) = self.bodies(st.RECOVERY)
        self.assertEqual(seg[st.K_REASON], "write error")
        self.media_ok(seg)

    def test_battery_low_on_a_nearly_full_card(self):
        self.press("record")
        self.run_s(1)
        self.h.sd.free = lambda: 70000     # a tick's frames more would not fit the reserve
        self.h.sensors.battery_pct = 2
        self.h.battery = self.h.sensors.battery
        self.run_s(1)
        (i,) = self.bodies(st.INTERRUPTION)
        self.assertEqual(i[st.K_REASON], "battery_low")
        (seg,) = self.bodies(st.SEGMENT)
        self.media_ok(seg)
        self.assertEqual(self.wf.state, "standby")

    def test_camera_fault_while_stopping(self):
        self.press("record")
        self.run_s(1)
        self.h.camera.fault = True
        self.h.sensors.temp = 90
        self.run_s(1)
        self.assertEqual([b[st.K_REASON] for b in self.bodies(st.INTERRUPTION)], ["overheat"])
        self.h.sensors.temp = 30
        self.run_s(1)                      # standby with a broken camera: no exception
        self.assertEqual(self.wf.state, "standby")

    def test_a_statement_across_a_rollover_gets_a_span_in_each_segment(self):
        self.wf.start()
        self.run_s(0.5)
        self.wf.interrupt("weather")
        self.press("record")               # resume
        self.rec.cfg["segment_s"] = 2      # the segment rolls over while the officer speaks
        self.h.buttons.press("voice", 2500)
        self.run_s(3)
        spans = [b[st.K_SPAN] for b in self.bodies(st.VOICE_ANNOTATION)]
        self.assertEqual(len(spans), 2)
        old, new = spans
        closing = [b for b in self.bodies(st.SEGMENT) if b[st.K_SEGMENT] == old[0]][0]
        L = closing[st.K_LENGTH]
        self.assertEqual(old[3] * 4096 + old[4], L)          # to the end of the old one
        self.assertEqual((new[1], new[2]), (0, 0))           # from the start of the new
        self.assertNotEqual(old[0], new[0])

    def test_a_statement_released_while_choosing_still_counts(self):
        self.wf.start()
        self.run_s(0.5)
        self.wf.interrupt("weather")
        self.press("record")
        self.h.buttons.press("voice", 3000)
        self.run_s(0.5)
        self.h.buttons.press("record", 1600)   # the officer holds RECORD meanwhile
        self.run_s(3)
        self.assertEqual(len(self.bodies(st.VOICE_ANNOTATION)), 1)
        self.assertEqual(self.wf.waiting(), [])


class TestCardSwap(unittest.TestCase):
    def test_a_receipt_for_one_card_releases_nothing_on_another(self):
        h, sd, flash = fwtest.sim(bitrate=40000, capacity=600000)
        s, rec = device.boot(h, SMALL)
        wf = workflow.Workflow(h, s, rec, rec.cfg)
        wf.start()
        for _ in wf.ticks(3000):
            pass
        wf.stop()
        s.receipt("station", s.seq - 1, bytes(32), 1)
        self.assertTrue(s.covered > 0)
        device.shutdown(s, rec)
        h.clock.reboot()
        # the same recorder (internal flash) with another, empty card
        h2, sd2, _ = fwtest.sim(bitrate=40000, capacity=600000)
        h2.flash = h.flash
        s2, rec2 = device.boot(h2, SMALL)
        self.assertEqual((s2.covered, s2.receipt_no), (-1, -1))
        # and the first card back: its coverage holds again
        h3, _, _ = fwtest.sim(sd[:-3], bitrate=40000, capacity=600000)
        h3.flash = h.flash
        s3, _ = device.boot(h3, SMALL)
        self.assertEqual(s3.covered, s.covered)


if __name__ == "__main__":
    unittest.main()
