# What the recorder captures into a segment (capture.py, recorder.py, SPEC §4.4): audio and
# video on one clock, the assigned officer burned into the picture, and a device without
# a microphone recording that it has none. Runs unchanged on MicroPython and CPython.
import struct
import unittest

from sealcamfw import device
import fwtest
from sealcamfw import mkv
from sealcamfw import store as st
from test_mkv import elements

SMALL = {"chunk": 4096, "checkpoint_s": 2, "segment_s": 60, "prerecord_s": 0}


def blocks(data):
    """[(track, ms, payload length)] of every SimpleBlock after the header."""
    top = elements(data, 0, len(data))
    seg = elements(data, top[1][1], len(data))
    p = seg[1][2]                      # after Tracks
    out = []
    ct = 0
    while p < len(data):
        eid, q, end = elements(data, p, len(data))[0]
        if eid == 0x1F43B675:          # Cluster: its Timestamp, then blocks
            ts = elements(data, q, len(data))[0]
            ct = int.from_bytes(data[ts[1]:ts[2]], "big")
            p = ts[2]
            continue
        rel = struct.unpack(">h", data[q + 1:q + 3])[0]
        out.append((data[q] & 0x7F, ct + rel, end - q - 4))
        p = end
    return out


class TestCapture(unittest.TestCase):
    def record(self, h, ms=3000):
        s, rec = device.boot(h, SMALL)
        s.assign("PC-0042", "U1", "SHA256:station")   # as a dock's ASSIGN does
        rec.start()
        rec.run_ms(ms)
        rec.stop()
        chain = [b for _, b in fwtest.read_chain(self.sd)]
        start = [b for b in chain if b[0] == st.REC_START][0]
        return start, h.sd.read(start[11])

    def test_audio_and_video_share_one_clock(self):
        h, self.sd, _ = fwtest.sim(fps=10)
        start, data = self.record(h)
        self.assertEqual(start[23], "video/x-matroska")
        bl = blocks(data)
        video = [t for k, t, n in bl if k == mkv.VIDEO]
        audio = [(t, n) for k, t, n in bl if k == mkv.AUDIO]
        self.assertTrue(29 <= len(video) <= 31, len(video))
        self.assertEqual(video, [video[0] + 100 * i for i in range(len(video))])
        # each audio block starts where the samples before it end: no drift against video
        got = 0
        for t, n in audio:
            self.assertTrue(abs(t - (audio[0][0] + got * 1000 // 32000)) <= 1, (t, got))
            got += n
        self.assertTrue(abs(audio[0][0] - video[0]) <= 40, (audio[0], video[0]))
        end_a = audio[0][0] + got * 1000 // 32000
        self.assertTrue(abs(end_a - (video[-1] + 100)) <= 140, (end_a, video[-1]))
        self.assertTrue(abs(got - 3 * 32000) <= 3200, got)

    def test_overlay_shows_the_assigned_officer(self):
        h, self.sd, _ = fwtest.sim(fps=5)
        self.assertEqual(h.camera.officer, None)
        _, data = self.record(h, 1000)
        self.assertTrue(data.find(b"officer=PC-0042 ") > 0)
        self.assertTrue(data.find(b"officer=- ") < 0)

    def test_no_microphone_is_recorded_not_filled_with_silence(self):
        h, self.sd, _ = fwtest.sim(fps=5)
        h.mic = None
        start, data = self.record(h, 2000)
        self.assertEqual(start[23], "video/x-matroska; audio=none")
        top = elements(data, 0, len(data))
        seg = elements(data, top[1][1], len(data))
        self.assertEqual(len(elements(data, seg[1][1], seg[1][2])), 1)   # one track
        kinds = [k for k, _, _ in blocks(data)]
        self.assertTrue(len(kinds) >= 10 and set(kinds) == {mkv.VIDEO}, kinds)
