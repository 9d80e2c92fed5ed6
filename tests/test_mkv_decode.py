"""Files made by the firmware's Matroska muxer (firmware/sealcamfw/mkv.py) decode with FFmpeg
(PyAV): both streams, the configured frame rate, the audio rate, and a file cut at any
byte after its first block decodes up to the cut, as a power cut would leave it."""
import io
import random

import av
import pytest

from sealcamfw import mkv
from sim.hal.simcam import SimCamera
from sim.hal.simclock import SimClock
from sim.hal.simmic import SimMic

FPS = 10


def make(seconds=3, fps=FPS):
    """A muxed file of the simulated camera and microphone: (bytes, video frames, audio
    bytes, end offset of each block)."""
    c = SimClock()
    cam = SimCamera(c, 200000, fps, "SC-T", "OFC-7")
    mic = SimMic(c)
    out = bytearray()
    ends = []

    def write(b):
        out.extend(b)

    m = mkv.Muxer(write, 160, 120, fps)
    t0 = c.mono_ms()
    m.start(t0)
    cam.start()
    mic.start()
    buf = bytearray(32000)
    samples = 0
    nv = 0
    for _ in range(seconds * 10):
        c.sleep_ms(100)
        frames = cam.poll()
        n = mic.readinto(buf)
        at = t0 + samples * 1000 // mkv.RATE
        blocks = [(t, mkv.VIDEO, f) for t, f in zip(cam.stamps, frames)]
        blocks.append((at, mkv.AUDIO, bytes(buf[:n])))
        blocks.sort(key=lambda b: (b[0], b[1]))
        for t, k, d in blocks:
            m.block(k, t, d)
            ends.append((len(out), k))
        samples += n // 2
        nv += len(frames)
    return bytes(out), nv, samples * 2, ends


def decode(data):
    """(video frames, audio samples, video pts in s) decoded from data."""
    nv = na = 0
    pts = []
    with av.open(io.BytesIO(data), format="matroska") as f:
        vs = f.streams.video[0]
        for pkt in f.demux():
            for fr in pkt.decode():
                if pkt.stream.type == "video":
                    nv += 1
                    pts.append(float(fr.pts * fr.time_base))
                else:
                    na += fr.samples
    return nv, na, pts, vs


def test_both_streams_rate_and_contents():
    data, nv, nbytes, _ = make()
    with av.open(io.BytesIO(data), format="matroska") as f:
        v, a = f.streams.video[0], f.streams.audio[0]
        assert v.codec_context.name == "mjpeg" and (v.width, v.height) == (160, 120)
        assert a.codec_context.name == "pcm_s16le" and a.rate == 16000 and a.channels == 1
        assert v.guessed_rate == FPS or v.average_rate == FPS, (v.guessed_rate, v.average_rate)
    got_v, got_a, pts, _ = decode(data)
    assert got_v == nv == 31 and got_a * 2 == nbytes == 3 * 32000   # frames at 0..3000 ms
    assert pts == pytest.approx([i / FPS for i in range(nv)])


@pytest.mark.parametrize("fps", [5, 25])
def test_frame_rate_in_container(fps):
    data, nv, _, _ = make(2, fps)
    with av.open(io.BytesIO(data), format="matroska") as f:
        assert f.streams.video[0].guessed_rate == fps


def test_cut_anywhere_decodes_up_to_the_cut():
    data, _, _, ends = make()
    first = ends[0][0]
    rnd = random.Random(9)
    cuts = sorted(set([e for e, _ in ends[::3]] + [rnd.randrange(first, len(data))
                                                    for _ in range(40)]))
    for cut in cuts:
        whole_v = sum(1 for e, k in ends if e <= cut and k == mkv.VIDEO)
        nv, na, _, _ = decode(data[:cut])
        # every complete frame decodes; a cut inside a frame may lose that frame only
        assert nv == whole_v or (nv == whole_v + 1 and cut not in [e for e, _ in ends]), cut
        assert na > 0 or not any(e <= cut and k == mkv.AUDIO for e, k in ends), cut


def test_remuxed_copy_has_the_right_duration(tmp_path):
    """Live files carry no Duration (SPEC §4.4); a stream copy (what `ffmpeg -c copy`
    does, here through PyAV) gets one within a frame of the truth, both streams kept."""
    data, nv, nbytes, _ = make(4)
    src = tmp_path / "live.mkv"
    src.write_bytes(data)
    out = tmp_path / "copy.mkv"
    with av.open(str(src)) as i, av.open(str(out), "w", format="matroska") as o:
        maps = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for pkt in i.demux():
            if pkt.dts is None:
                continue
            pkt.stream = maps[pkt.stream.index]
            o.mux(pkt)
    with av.open(str(out)) as f:
        assert len(f.streams.video) == 1 and len(f.streams.audio) == 1
        truth = nbytes / 2 / 16000                   # 4 s of audio; video 0..4000 ms
        assert abs(f.duration / 1e6 - truth) <= 1 / FPS + 1e-3, f.duration
        assert f.streams.video[0].guessed_rate == FPS
