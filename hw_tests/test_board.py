"""The board's parts through mpremote: RTC, device key, camera and microphone, storage.
The same code runs against a real board (--port) and the virtual board (conftest.py)."""
import calendar
import hashlib
import os
import time

import pytest

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

RECORD_S = 2                 # seconds of camera + microphone recorded for the decode test
WRITE_BYTES = 4 << 20        # bytes the storage throughput test writes
MARGIN = 2                   # storage must write at least MARGIN x the configured bitrate


def _utc_ms(t):
    # ms since 1970 of an RTC datetime tuple (y, m, d, weekday, h, min, s, µs)
    return calendar.timegm((t[0], t[1], t[2], t[4], t[5], t[6], 0, 0, 0)) * 1000 + t[7] // 1000


RTC_READ = "import machine, json\nprint('HWT ' + json.dumps(machine.RTC().datetime()))"


def test_rtc_ticks_and_keeps_its_setting_across_reset(board):
    # set a known time, far from the host's, so the reading cannot be the host clock
    set_to = (2031, 5, 6, 1, 7, 8, 9, 0)       # Tuesday 2031-05-06 07:08:09 UTC
    t_set = time.monotonic()
    board.exec("import machine\nmachine.RTC().datetime(%r)" % (set_to,))
    try:
        a = board.result(RTC_READ)
        t_a = time.monotonic()
        time.sleep(2.0)
        b = board.result(RTC_READ)
        t_b = time.monotonic()
        ticked = _utc_ms(b) - _utc_ms(a)
        assert abs(ticked - (t_b - t_a) * 1000) < 1500, (a, b)     # it ticks, at ~1 s/s
        assert tuple(a[:3]) == (2031, 5, 6)
        board.reset()
        c = board.result(RTC_READ)
        t_c = time.monotonic()
        since = _utc_ms(c) - _utc_ms(set_to)
        # the setting survived the reset, and the RTC kept running through it
        assert tuple(c[:3]) == (2031, 5, 6), c
        assert -2000 < since - (t_c - t_set) * 1000 < 3000, (c, since, t_c - t_set)
    finally:
        # leave the board with the right time (UTC), as a technician expects
        now = time.time()
        g = time.gmtime(now)
        board.exec("import machine\nmachine.RTC().datetime(%r)" % (
            (g.tm_year, g.tm_mon, g.tm_mday, g.tm_wday, g.tm_hour, g.tm_min, g.tm_sec,
             int((now % 1) * 1e6)),))


KEY_SIGN = """import board, binascii, json
from sealcamfw import devkey, ed25519, hal
fl = hal.PosixFS(board.FLASH_DIR)
out = {"size": fl.size(devkey.KEY_FILE)}
if out["size"] == 32:
    class H: pass
    h = H(); h.flash = fl
    sk = devkey.load_or_create(h)
    msg = %r
    out["pub"] = binascii.hexlify(ed25519.public(sk)).decode()
    out["sig"] = binascii.hexlify(ed25519.sign(sk, msg)).decode()
print("HWT " + json.dumps(out))"""


def test_device_key_present_stable_and_signs(board):
    vector = hashlib.sha256(b"sealcam hw_tests signing vector").digest() + b"\x00\xff"
    first = board.result(KEY_SIGN % (vector,))
    assert first["size"] == 32, "no device key on the board's flash (%s)" % first
    pub = bytes.fromhex(first["pub"])
    Ed25519PublicKey.from_public_bytes(pub).verify(bytes.fromhex(first["sig"]), vector)
    with pytest.raises(InvalidSignature):   # the check can fail: another message does not verify
        Ed25519PublicKey.from_public_bytes(pub).verify(bytes.fromhex(first["sig"]), vector[:-1])
    board.reset()
    again = board.result(KEY_SIGN % (vector,))
    assert again["pub"] == first["pub"], "the device key changed across a reset"
    assert again["sig"] == first["sig"]          # Ed25519 is deterministic


RECORD = """import board, json, os
from sealcamfw import capture, mkv
h = board.make_hal()
cap = capture.Capture(h)
p = board.SD_MOUNT + "/hwtest.mkv"
f = open(p, "wb")
mux = mkv.Muxer(f.write, cap.width(), cap.height(), cap.fps(), cap.mic is not None)
n = [0, 0, 0]
def out(track, t, data):
    mux.block(track, t, data)
    n[track - 1] += 1
    if track == mkv.AUDIO:
        n[2] += len(data) // 2
cap.start()
t0 = h.clock.mono_ms()
mux.start(t0)
while h.clock.mono_ms() - t0 < %d:
    cap.pull(out)
    h.clock.sleep_ms(20)
cap.pull(out)
ms = h.clock.mono_ms() - t0
f.close()
print("HWT " + json.dumps({"path": p, "frames": n[0], "pieces": n[1], "samples": n[2], "ms": ms,
                           "mic": cap.mic is not None, "fps": cap.fps(), "size": os.stat(p)[6]}))"""


def test_camera_and_microphone_decode(board, tmp_path):
    import av
    r = board.result(RECORD % (RECORD_S * 1000), timeout=180)
    assert r["mic"], "the board has no microphone (hal.mic is None)"
    local = str(tmp_path / "hwtest.mkv")
    try:
        board.cp_from(r["path"], local)
    finally:
        board.exec("import os\nos.remove(%r)" % r["path"])
    assert os.path.getsize(local) == r["size"]
    frames = samples = 0
    with av.open(local) as c:
        assert c.streams.video and c.streams.audio, "the file lacks a video or an audio track"
        assert c.streams.audio[0].rate == 16000
        for packet in c.demux():
            for fr in packet.decode():
                if isinstance(fr, av.VideoFrame):
                    assert fr.width > 0 and fr.height > 0
                    frames += 1
                else:
                    samples += fr.samples
    seconds = r["ms"] / 1000
    # every frame the board captured decodes, at about its frame rate; the audio is the
    # samples it captured, about 16,000 a second
    assert frames == r["frames"], (frames, r)
    assert frames >= 0.7 * r["fps"] * seconds, (frames, r)
    assert samples == r["samples"], (samples, r)
    assert abs(samples - 16000 * seconds) < 16000 * 0.5, (samples, r)


WRITE = """import board, time, json, os
from sealcamfw import config
p = board.SD_MOUNT + "/hwtest.bin"
buf = bytes(range(256)) * 256
n = %d
t0 = time.ticks_ms()
f = open(p, "wb")
done = 0
while done < n:
    f.write(buf)
    done += len(buf)
f.flush()
try:
    os.sync()
except AttributeError:
    pass
f.close()
ms = time.ticks_diff(time.ticks_ms(), t0)
size = os.stat(p)[6]
os.remove(p)
print("HWT " + json.dumps({"bytes": done, "size": size, "ms": ms,
                           "bitrate": config.DEFAULTS["bitrate"]}))"""


def test_storage_write_throughput(board):
    r = board.result(WRITE % WRITE_BYTES, timeout=300)
    assert r["size"] == r["bytes"] == WRITE_BYTES
    rate = r["bytes"] * 8 * 1000 / max(r["ms"], 1)          # bits per second
    need = MARGIN * r["bitrate"]
    print("storage: %.1f Mbit/s written, need %.1f (%d x the bitrate)"
          % (rate / 1e6, need / 1e6, MARGIN))
    assert rate >= need, "the card writes %.1f Mbit/s, below %d x the bitrate (%.1f Mbit/s)" % (
        rate / 1e6, MARGIN, r["bitrate"] / 1e6)
