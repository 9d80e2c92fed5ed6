# Helpers for firmware unit tests that run on both MicroPython and CPython.
import os

_n = [0]


def tmpdir():
    """A new empty folder (in the VM's memory filesystem, or the host's temp folder)."""
    try:
        import tempfile
        return tempfile.mkdtemp(prefix="sealcam-fw-")
    except ImportError:
        try:
            os.mkdir("/tmp")
        except OSError:
            pass
        while True:
            _n[0] += 1
            p = "/tmp/fw%d" % _n[0]
            try:
                os.mkdir(p)
                return p
            except OSError:
                pass


def files(root, rel=""):
    """All files below root as {relative path: bytes}."""
    out = {}
    base = root + ("/" + rel if rel else "")
    for name in os.listdir(base):
        p = base + "/" + name
        r = (rel + "/" + name) if rel else name
        if os.stat(p)[0] & 0x4000:
            out.update(files(root, r))
        else:
            with open(p, "rb") as f:
                out[r] = f.read()
    return out


def read_chain(root):
    """Every record in root/rec/*.log in order, as (record bytes, body dict)."""
    from sealcamfw import cbor
    out = []
    names = sorted(os.listdir(root + "/rec"))
    for name in names:
        with open(root + "/rec/" + name, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            item, nxt = cbor.decode_one(data, pos)
            out.append((data[pos:nxt], cbor.loads(item.value[2])))
            pos = nxt
    return out


def sim(root=None, **kw):
    """A simulated board over fresh folders: (hal, sd folder, flash folder)."""
    from sim.hal import simdevice
    root = root or tmpdir()
    sd, flash = root + "/sd", root + "/flash"
    for p in (sd, flash):
        try:
            os.mkdir(p)
        except OSError:
            pass
    kw.setdefault("seed", 7)
    kw.setdefault("bitrate", 400000)
    kw.setdefault("fps", 5)
    return simdevice.make_hal(sd, flash, **kw), sd, flash


class Loop:
    """An in-memory serial port: rx is what the host sent, tx what the device wrote."""

    def __init__(self):
        self.rx = bytearray()
        self.tx = bytearray()

    def read(self, n):
        d = bytes(self.rx[:n])
        self.rx[0:len(d)] = b""
        return d

    def write(self, buf):
        self.tx += buf
        return len(buf)


import unittest


class SessionCase(unittest.TestCase):
    """A booted simulated device (self.settings) with a trusted station and a link on an
    in-memory port: self.h, sd, flash, s, rec, station, ser, lnk, host. Nothing recorded."""
    settings = None

    def setUp(self):
        from sealcamfw import device
        from sealcamfw import ed25519
        from sealcamfw import link
        from test_link import STATION_SEED
        self.h, self.sd, self.flash = sim()
        self.s, self.rec = device.boot(self.h, self.settings)
        self.station = ed25519.secret(STATION_SEED)
        link.add_trusted(self.h.flash, ed25519.public(self.station))
        self.ser = Loop()
        self.h.serial = self.ser
        self.connect()

    def connect(self):
        from sealcamfw import link
        from test_link import Host
        self.lnk = link.Link(self.h, self.s, self.rec)
        self.host = Host(self.lnk, self.ser)

    def login(self):
        r = self.host.auth(self.station)
        self.assertEqual(r[1], 0, r)
        return r[2]
