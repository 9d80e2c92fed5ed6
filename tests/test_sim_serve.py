"""`python -m sim.serve` (the virtual recorder docked, on a pty) on both runtimes, with a
pyserial host that builds SPEC §7 frames itself (cbor2 + binascii.crc32, nothing from the
firmware): HELLO, AUTH with a station key given by --trust, a host that undocks and docks
again, DELETE refused and recorded, SIGTERM; then the store verifies, holds the REFUSAL
(source "usb"), and its segment decodes as Matroska (MJPEG video + PCM audio) with a real
decoder (PyAV / FFmpeg).
"""
import binascii
import glob
import io
import os
import signal
import subprocess
import sys
import time

import cbor2
import pytest
import serial
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                                Ed25519PublicKey)

from host_tools.link import transcript
from host_tools.verify import verify_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAGIC = b"\xc5\x1a"
RECORD_S = 20
FPS = 10


def frame(obj):
    p = cbor2.dumps(obj, canonical=True)
    h = len(p).to_bytes(4, "big")
    return MAGIC + h + p + (binascii.crc32(h + p) & 0xFFFFFFFF).to_bytes(4, "big")


def read_frame(ser, timeout=20):
    """The next good frame's payload (SPEC §7 resynchronisation on anything else)."""
    buf = bytearray()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        buf += ser.read(max(1, ser.in_waiting))
        while True:
            i = buf.find(MAGIC)
            if i < 0 or len(buf) - i < 6:
                break
            n = int.from_bytes(buf[i + 2:i + 6], "big")
            if len(buf) < i + 10 + n:
                break
            body = bytes(buf[i + 2:i + 6 + n])
            if (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big") == buf[i + 6 + n:i + 10 + n]:
                return cbor2.loads(body[4:])
            del buf[:i + 1]
    raise TimeoutError("no response frame within %s s" % timeout)


def call(ser, rid, op, args=None):
    msg = {0: rid, 1: op}
    if args is not None:
        msg[2] = args
    ser.write(frame(msg))
    resp = read_frame(ser)
    assert resp[0] == rid
    return resp


def body_of(record):
    tag = cbor2.loads(record)
    assert tag.tag == 18
    return cbor2.loads(tag.value[2])


def records_of(store):
    out = []
    for name in sorted(os.listdir(os.path.join(store, "rec"))):
        data = open(os.path.join(store, "rec", name), "rb").read()
        bio = io.BytesIO(data)
        while bio.tell() < len(data):
            start = bio.tell()
            cbor2.CBORDecoder(bio).decode()
            out.append(data[start:bio.tell()])
    return out


class Serve:
    def __init__(self, *args):
        self.p = subprocess.Popen([sys.executable, "-m", "sim.serve"] + [str(a) for a in args],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.first = self.p.stdout.readline()
        if not self.first.startswith("PORT "):
            self.p.kill()
            raise AssertionError("no PORT line: %r\n%s" % (self.first, self.p.stderr.read()))
        self.port = self.first.split(None, 1)[1].strip()

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        rc = self.p.wait(60)
        self.err = self.p.stderr.read()
        return rc


@pytest.mark.parametrize("runtime,fs", [("cpython", "littlefs"), ("micropython", "fat")])
def test_serve_hello_auth_delete_sigterm(tmp_path, runtime, fs):
    sd = tmp_path / "card"
    station = Ed25519PrivateKey.generate()
    spub = station.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)
    (tmp_path / "station.pub").write_text(spub.hex() + "\n")
    t0 = time.monotonic()
    srv = Serve("--store", sd, "--record", RECORD_S, "--runtime", runtime, "--fs", fs,
                "--trust", tmp_path / "station.pub", "--capacity", 64_000_000, "--battery", 55,
                "--max-frame", 200_000, "--device", "SC-TEST0042")
    try:
        assert srv.first == "PORT %s\n" % srv.port and os.path.exists(srv.port)
        ser = serial.Serial(srv.port, timeout=0.2)
        # HELLO: only id, nonce, frame and protocol version before AUTH (SPEC §8.3)
        sn = os.urandom(16)
        r = call(ser, 1, 1, {1: 1 << 20, 2: "test-dock", 3: sn})
        assert r[1] == 0, r
        hello = r[2]
        assert set(hello) == {1, 9, 10, 12}, hello
        assert hello[1] == "SC-TEST0042" and hello[12] == 2 and hello[10] == 200_000
        assert len(hello[9]) == 16 and isinstance(hello[9], bytes)
        # AUTH with the station key given by --trust; the device proves its key
        th = transcript("SC-TEST0042", hello[9], sn, spub)
        r = call(ser, 2, 2, {1: spub, 2: station.sign(b"sealcam-auth-v2 station" + th)})
        assert r[1] == 0, r
        res = r[2]
        Ed25519PublicKey.from_public_bytes(res[3]).verify(res[2],
                                                          b"sealcam-auth-v2 device" + th)
        assert isinstance(res[13], str) and len(res[3]) == 32
        head = body_of(res[5])
        assert head[0] == 5 and head[3] == "SC-TEST0042"      # the shift ended: REC_STOP
        rtc, mono = res[6]
        assert abs(rtc - time.time() * 1000) < 60_000 and mono >= RECORD_S * 1000
        free, total = res[7]
        assert total == 64_000_000 and 0 < free < total
        assert res[8] == 55 and res[11] is None
        # a replayed AUTH finds its nonce used
        r = call(ser, 8, 2, {1: spub, 2: station.sign(b"sealcam-auth-v2 station" + th)})
        assert r[1] == 409, r
        # TIME_SET: the real-time clock of the virtual recorder is set, mono is untouched
        new_rtc = int(time.time() * 1000) + 3_600_000
        r = call(ser, 5, 7, {1: new_rtc})
        assert r[1] == 0 and r[2][2] == new_rtc and r[2][3] == head[1] + 1, r
        # the host undocks and docks again (the port is closed and opened again)
        ser.close()
        time.sleep(0.1)
        ser = serial.Serial(srv.port, timeout=0.2)
        if runtime == "cpython":   # the pty shows the undock: the old session is gone
            r = call(ser, 9, 3, {1: 0, 2: 10})
            assert r[1] == 401, r
        sn2 = os.urandom(16)
        r2 = call(ser, 3, 1, {1: 1 << 20, 2: "test-dock", 3: sn2})
        assert r2[1] == 0 and r2[2][9] != hello[9]
        th2 = transcript("SC-TEST0042", r2[2][9], sn2, spub)
        r = call(ser, 10, 2, {1: spub, 2: station.sign(b"sealcam-auth-v2 station" + th2)})
        assert r[1] == 0 and body_of(r[2][5])[0] == 9, r                  # TIME_SET
        rtc2, mono2 = r[2][6]
        assert 0 <= rtc2 - new_rtc < 10_000 and mono2 >= mono
        sn3 = os.urandom(16)
        assert call(ser, 11, 1, {1: 1 << 20, 2: "test-dock", 3: sn3})[1] == 0
        r = call(ser, 4, 3, {1: 0, 2: 10})
        assert r[1] == 401                                    # a new HELLO: AUTH again
        # DELETE: refused and recorded
        r = call(ser, 6, 8, {1: "m/00000001.mkv"})
        assert r[1] == 405, r
        assert "append-only" in r[3]
        ser.close()
    finally:
        rc = srv.stop()
    assert rc == 0, srv.err
    assert "stopped cleanly" in srv.err
    assert time.monotonic() - t0 < 30

    # the store: the REFUSAL (source usb) after the head HELLO saw, and it verifies
    recs = records_of(str(sd))
    bodies = [body_of(x) for x in recs]
    assert [b[1] for b in bodies] == list(range(len(bodies)))
    i = recs.index(res[5])
    assert bodies[i][1] == head[1]
    refusals = [b for b in bodies if b[0] == 6]
    assert len(refusals) == 1
    ref = refusals[0]
    assert bodies[head[1] + 1][0] == 9 and bodies[head[1] + 1][29] == new_rtc
    assert ref[1] == head[1] + 2 and ref[19] == "delete" and ref[20] == "m/00000001.mkv"
    assert ref[21] == "usb"
    rep = verify_store(str(sd), None, progress=False)
    assert rep.verdict == "OK_WITH_MISSING_INFO"
    pub = str(sd) + ".flash/device.pub"
    assert bytes.fromhex(open(pub).read().strip()) == res[3]
    rep = verify_store(str(sd), pub, progress=False)
    assert rep.verdict == "OK", rep.to_text()
    # trust list written to the flash as a CBOR array of keys
    assert spub in cbor2.loads(open(str(sd) + ".flash/trust.cbor", "rb").read())

    # the recorded segment is real Matroska: every frame decodes with FFmpeg (PyAV), and
    # the audio track holds the recorded time at 16 kHz
    import av
    media = glob.glob(str(sd / "m" / "*.mkv"))
    assert len(media) == 1
    with av.open(media[0], format="matroska") as c:
        assert c.streams.video[0].guessed_rate == FPS
        frames = [f for f in c.decode(video=0)]
    with av.open(media[0], format="matroska") as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert abs(samples - 16000 * RECORD_S) <= 16000 * 0.2, samples
    assert all((f.width, f.height) == (160, 120) for f in frames)
    # frames at t = 0, 100, ..., 20000 ms: the camera emits both the first and the last
    # instant, so one more than fps x seconds
    assert len(frames) == FPS * RECORD_S + 1
    assert open(media[0], "rb").read().count(b" frame=") == len(frames)   # each frame's COM text


def test_serve_sigint_and_reboot_recovers_nothing(tmp_path):
    """SIGINT stops cleanly too; a second serve on the same store boots on it (one chain)."""
    sd = tmp_path / "card"
    a = Serve("--store", sd, "--record", 3)
    assert a.stop(signal.SIGINT) == 0, a.err
    b = Serve("--store", sd)
    ser = serial.Serial(b.port, timeout=0.2)
    r = call(ser, 1, 1, {1: 4096, 2: "x", 3: os.urandom(16)})
    ser.close()
    assert b.stop() == 0, b.err
    assert r[2][10] == 4096 and 5 not in r[2]             # no head before AUTH
    head = body_of(records_of(str(sd))[-1])
    assert head[0] == 1 and head[6] == 2                  # BOOT of the second boot
    assert verify_store(str(sd), str(sd) + ".flash/device.pub", progress=False).verdict == "OK"


def test_serve_bad_trust_file(tmp_path):
    (tmp_path / "bad.pub").write_text("not a key\n")
    p = subprocess.run([sys.executable, "-m", "sim.serve", "--store", str(tmp_path / "sd"),
                        "--trust", str(tmp_path / "bad.pub")], cwd=ROOT, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 3 and "bad.pub" in p.stderr and p.stdout == ""


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_raw_copy_path(runtime):
    from sim.serve import raw_copy_mbps
    mbps = raw_copy_mbps(runtime, mb=8)
    print("\nraw copy device -> host through the %s path: %.1f MB/s" % (runtime, mbps))
    assert mbps > 1


def test_clock_realtime_mode_and_drift():
    from sim.hal import simclock
    c = simclock.SimClock(rtc_ms=1_000_000, drift_ppm=100_000)     # 10 % fast
    c.sleep_ms(5000)                                              # simulated: instant
    assert (c.mono_ms(), c.rtc_ms()) == (5000, 1_000_000 + 5500)
    c.go_realtime()
    t = time.monotonic()
    time.sleep(0.3)
    real = (time.monotonic() - t) * 1000
    m = c.mono_ms()
    assert 5000 + real - 5 <= m <= 5000 + real + 50
    # real time moves between two readings: the RTC read lies between the two bounds
    r = c.rtc_ms()
    m2 = c.mono_ms()
    assert 1_000_000 + m + m // 10 <= r <= 1_000_000 + m2 + m2 // 10
    c.set_rtc(2_000_000_000)                                      # TIME_SET: mono untouched
    assert abs(c.rtc_ms() - 2_000_000_000) < 50 and c.mono_ms() >= m
    last = 0
    for _ in range(1000):
        now = c.mono_ms()
        assert now >= last
        last = now
    r = simclock.RealClock()
    assert abs(r.rtc_ms() - time.time() * 1000) < 1000 and r.mono_ms() < 100


def test_vm_runner_serial_mode(tmp_path):
    """run.mjs --serial: stdin/stdout are the port (jshal.serial_read/serial_write and the
    /dev/serial device), print() goes to stderr, stdin's end tells the script to stop, and
    the mounts are mirrored when it does."""
    from sim import vm
    vm.ensure_vm()
    script = tmp_path / "echo.py"
    script.write_text(
        "import asyncio, jshal\n"
        "print('hello on stderr')\n"
        "f = open('/dev/serial', 'r+b')\n"
        "got = bytearray()\n"
        "while not jshal.serial_stopping():\n"
        "    d = f.read(4096)\n"
        "    if d:\n"
        "        got += d\n"
        "        f.write(d.upper())\n"
        "    a = bytes(jshal.serial_read(4096))\n"
        "    if a:\n"
        "        got += a\n"
        "        jshal.serial_write(a)\n"
        "    await asyncio.sleep_ms(1)\n"
        "open('/m/got.bin', 'wb').write(got)\n"
        "print('bye', len(got))\n")
    (tmp_path / "m").mkdir()
    data = bytes(range(256)) * 64 + b"\x03\x04 the end"
    p = subprocess.run(["node", vm.RUNNER, "--serial", "--mount", "%s=/m" % (tmp_path / "m"),
                        str(script)], input=data, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert b"hello on stderr" in p.stderr and b"bye %d" % len(data) in p.stderr
    assert (tmp_path / "m" / "got.bin").read_bytes() == data
    # every byte came back once, through one path or the other, in order per path
    assert len(p.stdout) == len(data)
    assert sorted(p.stdout.lower()) == sorted(data.lower())
