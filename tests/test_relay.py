"""sim/relay.py: the fault-injecting relay between a device's pty and a pyserial host.

The device here is an echo device on a real pty (it sends back every byte it gets), the
host is pyserial on the relay's port; frames are SPEC §7 frames built with cbor2 and
binascii.crc32. Faults go on one direction (to the host) so each can be counted exactly.
"""
import binascii
import os
import select
import threading
import time

import cbor2
import pytest
import serial

from sim.relay import FAULTS, Relay

MAGIC = b"\xc5\x1a"


def frame(obj):
    p = cbor2.dumps(obj, canonical=True)
    h = len(p).to_bytes(4, "big")
    return MAGIC + h + p + (binascii.crc32(h + p) & 0xFFFFFFFF).to_bytes(4, "big")


def parse(stream):
    """(good payload objects, bad-CRC count) with SPEC §7 resynchronisation."""
    good, bad, i = [], 0, 0
    while True:
        i = stream.find(MAGIC, i)
        if i < 0 or len(stream) - i < 6:
            return good, bad
        n = int.from_bytes(stream[i + 2:i + 6], "big")
        if n > 4096 or len(stream) < i + 10 + n:
            i += 1
            if n <= 4096:      # an incomplete tail: the last frame was cut short
                bad += 1
                return good, bad
            continue
        body = stream[i + 2:i + 6 + n]
        if (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big") != stream[i + 6 + n:i + 10 + n]:
            bad += 1
            i += 1
            continue
        good.append(cbor2.loads(body[4:]))
        i += 10 + n


class EchoDevice:
    """A pty whose master echoes every byte back; `path` is its slave (the device port)."""

    def __init__(self):
        self.master, slave = os.openpty()
        import tty
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                time.sleep(0.01)
                continue
            mv = memoryview(data)
            while mv:
                try:
                    mv = mv[os.write(self.master, mv):]
                except BlockingIOError:
                    time.sleep(0.001)

    def close(self):
        if self.stop:
            return
        self.stop = True
        self.t.join(2)
        os.close(self.master)


@pytest.fixture
def echo():
    d = EchoDevice()
    yield d
    d.close()


def collect(host, want_bytes=None, quiet=0.6, limit=10.0):
    """Read until `quiet` seconds pass without a byte (or limit)."""
    out = bytearray()
    end = time.monotonic() + limit
    last = time.monotonic()
    while time.monotonic() < end:
        data = host.read(max(1, host.in_waiting))
        if data:
            out += data
            last = time.monotonic()
            if want_bytes is not None and len(out) >= want_bytes:
                break
        elif time.monotonic() - last > quiet:
            break
    return bytes(out)


def frames(n, size=40):
    return [frame({0: i, 1: 99, 2: {1: bytes([i % 256]) * size}}) for i in range(n)]


def test_rate_zero_passes_bytes_unchanged(echo):
    with Relay(echo.path, rate=0, seed=1) as r:
        host = serial.Serial(r.port, timeout=0.2)
        data = b"garbage\xc5\x00" + b"".join(frames(200, 300)) + b"\xc5\x1a\xff\xff\xff\xfftail"
        host.write(data)
        got = collect(host, len(data))
        host.close()
        assert got == data
        assert r.stats["faults"] == 0 and r.stats["frames_to_host"] == 200
        assert r.stats["frames_to_device"] == 200
        assert r.alive


def test_big_frames_pass(echo):
    big = frame({0: 1, 1: 99, 2: {1: os.urandom(1 << 20)}})
    with Relay(echo.path, rate=0) as r:
        host = serial.Serial(r.port, timeout=0.2)
        host.write(big)
        got = collect(host, len(big), limit=20)
        host.close()
    assert got == big


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "disconnect"])
def test_each_fault_is_injected_and_counted(echo, fault):
    n = 60
    with Relay(echo.path, rate=0.2, faults=(fault,), seed=7, directions=("to_host",)) as r:
        host = serial.Serial(r.port, timeout=0.2)
        t0 = time.monotonic()
        for f in frames(n):
            host.write(f)
            time.sleep(0.002)
        want = sum(map(len, frames(n))) if fault == "stall" else None
        got = collect(host, want, quiet=1.5 if fault == "stall" else 0.5, limit=30)
        elapsed = time.monotonic() - t0
        host.close()
        k = r.stats[fault]
        assert k > 0 and r.stats["faults"] == k
        assert [e[2] for e in r.events] == [fault] * k
        assert r.stats["frames_to_device"] == n and r.stats["frames_to_host"] == n
        assert r.alive
    good, bad = parse(got)
    ids = [g[0] for g in good]
    if fault == "drop":
        assert len(good) == n - k and bad == 0
        assert sorted(set(ids)) == ids
    elif fault == "corrupt":
        assert len(good) == n - k and bad == k          # each arrives, with a bad CRC
    elif fault == "duplicate":
        assert len(good) == n + k and len(set(ids)) == n
    elif fault == "truncate":
        assert len(good) == n - k and bad >= 1
    elif fault == "stall":
        assert ids == list(range(n))                      # late, never lost or reordered
        assert elapsed >= 0.2                             # held at least once
    # the same seed and traffic meet the same faults
    if fault in ("drop", "corrupt"):
        with Relay(echo.path, rate=0.2, faults=(fault,), seed=7, directions=("to_host",)) as r2:
            host = serial.Serial(r2.port, timeout=0.2)
            for f in frames(n):
                host.write(f)
                time.sleep(0.002)
            collect(host)
            host.close()
            assert r2.events == r.events


def test_disconnect_host_reopens_same_path(echo):
    n = 40
    with Relay(echo.path, rate=0.2, faults=("disconnect",), seed=3, directions=("to_host",)) as r:
        port = r.port
        host = serial.Serial(port, timeout=0.3)
        answered, errors = 0, 0
        for i, f in enumerate(frames(n)):
            for attempt in range(3):
                try:
                    host.write(f)
                    got = collect(host, len(f), quiet=0.3, limit=1)
                    if got == f:
                        answered += 1
                        break
                    if not got:
                        raise serial.SerialException("no answer")
                except (serial.SerialException, OSError):
                    errors += 1
                    host.close()
                    time.sleep(0.05)
                    host = serial.Serial(port, timeout=0.3)   # the same path, a new pty
        host.close()
        assert r.stats["disconnect"] > 0
        assert errors >= r.stats["disconnect"]
        assert answered == n          # every request got through after reconnecting
        assert r.stats["host_opens"] >= r.stats["disconnect"] + 1
        assert os.path.islink(port) and r.alive


def test_mixed_faults_keep_running(echo):
    with Relay(echo.path, rate=0.3, faults=FAULTS, seed=11) as r:
        host = serial.Serial(r.port, timeout=0.2)
        for f in frames(100):
            try:
                host.write(f)
            except (serial.SerialException, OSError):
                host.close()
                host = serial.Serial(r.port, timeout=0.2)
            time.sleep(0.003)
            try:
                host.read(host.in_waiting)
            except (serial.SerialException, OSError):
                host.close()
                host = serial.Serial(r.port, timeout=0.2)
        end = time.monotonic() + 20
        while r.pending() and time.monotonic() < end:   # stalled frames drain
            time.sleep(0.1)
        assert r.alive and r.error is None
        assert r.stats["faults"] > 10
        # and it still forwards cleanly once faults stop
        r.rate = 0
        host.close()
        host = serial.Serial(r.port, timeout=0.2)
        host.reset_input_buffer()
        f = frame({0: 1000, 1: 99})
        host.write(f)
        got = collect(host, len(f), quiet=0.5)
        host.close()
        assert got.endswith(f)


def test_device_gone_relay_keeps_running(echo):
    with Relay(echo.path, rate=0) as r:
        host = serial.Serial(r.port, timeout=0.2)
        f = frame({0: 1, 1: 99})
        host.write(f)
        assert collect(host, len(f)) == f
        echo.close()                                   # the device's pty goes away
        end = time.monotonic() + 5
        while not r.stats["device_losses"] and time.monotonic() < end:
            time.sleep(0.05)
        host.write(f)                                  # nowhere to go: dropped, no error
        time.sleep(0.3)
        host.close()
        assert r.stats["device_losses"] == 1 and r.alive and r.error is None


def test_relay_with_the_virtual_recorder_and_the_station_client(tmp_path):
    """sim serve (the real firmware) behind the relay: the station's client (host_tools.link)
    reads every record and the whole segment through drops, corrupt, duplicated, cut short
    and stalled frames, byte for byte; after an undock it opens the same path again."""
    import hashlib
    import signal
    import subprocess
    import sys
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from host_tools.link import GET, LinkBroken, Client
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    (tmp_path / "station.pub").write_text(pub.hex())
    sd = tmp_path / "card"
    p = subprocess.Popen([sys.executable, "-m", "sim.serve", "--store", str(sd), "--record", "8",
                          "--bitrate", "1000000", "--trust", str(tmp_path / "station.pub")],
                         cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = p.stdout.readline().split()[1]
        faults = ("drop", "corrupt", "duplicate", "truncate", "stall")
        with Relay(port, rate=0, faults=faults, seed=5) as r:
            c = Client(r.port, timeout=1.0, retries=8)
            hello = c.hello("relay-test")
            c.auth(key, "relay-test")
            r.rate = 0.25                      # faults from here on (AUTH is single-use)
            entries = c.list_all(0)
            records = {seq: c.request(GET, {1: seq})[1] for seq, _, _ in entries}
            seg = [seq for seq, t, _ in entries if t == 2][0]
            media = bytearray()
            reqs = [(i, {1: seg, 2: i, 3: 0, 4: 65536}) for i in range(8)]
            for i, res in sorted(c.read_many(reqs, window=4), key=lambda kv: kv[0]):
                media += res[1]
            assert r.stats["faults"] >= 2 and r.alive, r.stats
            # an undock: the client's port breaks; a new client on the same path goes on
            r.faults, r.rate = ("disconnect",), 1.0
            try:
                c.request(GET, {1: 0})
            except LinkBroken:
                pass
            c.close()
            r.rate = 0
            time.sleep(0.1)
            c = Client(r.port, timeout=1.0)
            assert c.hello("relay-test")[1] == hello[1]
            c.close()
            assert r.stats["disconnect"] == 1
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    on_card = open(os.path.join(sd, "m", "%08d.mkv" % seg), "rb").read()
    assert hashlib.sha256(bytes(media)).digest() == hashlib.sha256(on_card[:len(media)]).digest()
    assert len(media) == min(len(on_card), 8 * 65536)
    logs = b"".join(open(os.path.join(sd, "rec", n), "rb").read()
                    for n in sorted(os.listdir(os.path.join(sd, "rec"))))
    for seq, rec in records.items():
        assert rec in logs
    assert len(records) == len(entries) and sorted(records) == list(range(len(entries)))
