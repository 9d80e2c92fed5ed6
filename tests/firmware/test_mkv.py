# The Matroska muxer (firmware/sealcamfw/mkv.py) and the simulated microphone (sim/hal/simmic.py):
# the element structure a reader walks, cluster timing, and the live-mode layout.
# Runs unchanged on MicroPython and CPython.
import struct
import unittest

from sealcamfw import mkv
from sim.hal.simclock import SimClock
from sim.hal.simmic import SimMic


def vint(b, p, mask=True):
    # (value, next position) of the EBML variable-size integer at p
    first = b[p]
    w = 1
    while not first & (0x80 >> (w - 1)):
        w += 1
    v = first & ((0xFF >> w) if mask else 0xFF)
    for i in range(1, w):
        v = (v << 8) | b[p + i]
    return v, p + w, w


def elements(b, p, end):
    # [(id, payload start, payload end or None when unknown size)] of one level
    out = []
    while p < end:
        eid, q, _ = vint(b, p, False)
        size, q, w = vint(b, q)
        if size == (1 << (7 * w)) - 1:
            out.append((eid, q, None))
            return out
        out.append((eid, q, q + size))
        p = q + size
    return out


def mux(frames, audio=True):
    out = bytearray()
    m = mkv.Muxer(out.extend, 160, 120, 10, audio)
    m.start(5000)
    for track, t, data in frames:
        m.block(track, t, data)
    return bytes(out), m


class TestMkv(unittest.TestCase):
    def test_header_elements(self):
        h = mkv.header(160, 120, 10)
        top = elements(h, 0, len(h))
        self.assertEqual(top[0][0], 0x1A45DFA3)
        self.assertEqual(h[top[0][1]:top[0][2]].find(b"matroska") > 0, True)
        self.assertEqual(top[1][0], 0x18538067)
        self.assertEqual(top[1][2], None)            # Segment of unknown size
        seg = elements(h, top[1][1], len(h))
        self.assertEqual([e[0] for e in seg], [0x1549A966, 0x1654AE6B])
        info = dict((e[0], h[e[1]:e[2]]) for e in elements(h, seg[0][1], seg[0][2]))
        self.assertEqual(int.from_bytes(info[0x2AD7B1], "big"), 1000000)
        tracks = elements(h, seg[1][1], seg[1][2])
        self.assertEqual(len(tracks), 2)
        v = dict((e[0], h[e[1]:e[2]]) for e in elements(h, tracks[0][1], tracks[0][2]))
        a = dict((e[0], h[e[1]:e[2]]) for e in elements(h, tracks[1][1], tracks[1][2]))
        self.assertEqual(v[0x86], b"V_MJPEG")
        self.assertEqual(int.from_bytes(v[0x23E383], "big"), 100000000)   # 10 fps
        self.assertEqual(a[0x86], b"A_PCM/INT/LIT")
        au = dict((e[0], a[0xE1][e[1]:e[2]]) for e in elements(a[0xE1], 0, len(a[0xE1])))
        self.assertEqual(struct.unpack(">d", au[0xB5])[0], 16000.0)
        self.assertEqual(au[0x9F], b"\x01")
        self.assertEqual(au[0x6264], b"\x10")
        h2 = mkv.header(160, 120, 10, audio=False)
        seg2 = elements(h2, elements(h2, 0, len(h2))[1][1], len(h2))
        self.assertEqual(len(elements(h2, seg2[1][1], seg2[1][2])), 1)

    def test_blocks_clusters_and_times(self):
        frames = []
        for i in range(35):                      # 3.5 s of video and audio, in time order
            frames.append((mkv.VIDEO, 5000 + 100 * i, b"\xff\xd8frame%d\xff\xd9" % i))
            frames.append((mkv.AUDIO, 5000 + 100 * i, bytes(3200)))
        data, m = mux(frames)
        hl = len(mkv.header(160, 120, 10))
        p = hl
        got = []
        clusters = []
        while p < len(data):
            eid, q, end = elements(data, p, len(data))[0]
            self.assertEqual(eid, 0x1F43B675)
            self.assertEqual(end, None)           # Cluster of unknown size
            ts = elements(data, q, len(data))[0]
            self.assertEqual(ts[0], 0xE7)
            ct = int.from_bytes(data[ts[1]:ts[2]], "big")
            clusters.append(ct)
            p = ts[2]
            while p < len(data) and data[p] == 0xA3:
                _, b0, b1 = elements(data, p, len(data))[0]
                rel = struct.unpack(">h", data[b0 + 1:b0 + 3])[0]
                got.append((data[b0] & 0x7F, ct + rel, data[b0 + 4:b1]))
                self.assertEqual(data[b0 + 3], 0x80)    # keyframe
                p = b1
        self.assertEqual(got, [(k, t - 5000, bytes(d)) for k, t, d in frames])
        self.assertEqual(clusters, [0, 1000, 2000, 3000])
        self.assertEqual(m.blocks, 70)

    def test_long_gap_and_time_before_origin(self):
        data, m = mux([(mkv.VIDEO, 4000, b"a"), (mkv.VIDEO, 5000 + 40000, b"b")])
        self.assertEqual(m.cluster, 40000)       # a new cluster, not an overflowed int16
        p = data.find(b"\xa3", len(mkv.header(160, 120, 10)))
        self.assertEqual(data[p + 6:p + 8], b"\x00\x00")   # clamped to the origin

    def test_two_part_block(self):
        a, _ = mux([(mkv.AUDIO, 5000, b"abcdef")])
        out = bytearray()
        m = mkv.Muxer(out.extend, 160, 120, 10)
        m.start(5000)
        m.block(mkv.AUDIO, 5000, b"abc", b"def")
        self.assertEqual(bytes(out), a)


class TestSimMic(unittest.TestCase):
    def test_rate_noise_and_speech(self):
        c = SimClock()
        mic = SimMic(c)
        mic.start()
        buf = bytearray(64000)
        c.sleep_ms(250)
        n = mic.readinto(buf)
        self.assertEqual(n, 8000)                    # 250 ms at 16 kHz, 2 bytes a sample
        amb = bytes(buf[:n])
        self.assertTrue(len(set(amb)) > 50)          # noise, not silence
        peak = max(abs(x) for x in struct.unpack("<%dh" % (n // 2), amb))
        self.assertTrue(0 < peak < 200)
        self.assertEqual(mic.readinto(buf), 0)       # nothing new without time passing
        speech = struct.pack("<h", 12000) * 1000
        mic.say(speech)
        c.sleep_ms(100)
        n = mic.readinto(buf)
        self.assertEqual(n, 3200)
        self.assertEqual(bytes(buf[:2000]), speech)
        self.assertEqual(mic.said, [(4000, 1000)])
        self.assertFalse(mic.speaking())
        c.sleep_ms(1000)
        self.assertEqual(mic.readinto(bytearray(1001)), 1000)   # bounded by the buffer
