# The firmware manifest and the FIRMWARE record (protocol/SPEC.md §13): a boot with
# manifest A writes FIRMWARE A right after BOOT; a reboot with the same firmware writes
# none; a changed file (a new manifest) writes FIRMWARE B; AUTH answers the id; no
# manifest is "unmanaged" once; an unreadable or oversized one is "bad_manifest"; a new
# card gets the record again; a card the recorder does not write to gets none. Runs
# unchanged on MicroPython and CPython (tests/test_firmware_on_micropython.py).
import unittest

import hashlib

from sealcamfw import cbor
from sealcamfw import device
from sealcamfw import ed25519
from sealcamfw import fwinfo
import fwtest
from sealcamfw import link
from sealcamfw import store as st
from test_link import STATION_SEED, Host

SMALL = {"chunk": 4096, "checkpoint_s": 2, "segment_s": 60, "tick_ms": 200, "prerecord_s": 0}


FILES = {"main.py": b"import board\n", "store.mpy": b"M\x06store"}


def put(flash_dir, data, name="fw.cbor"):
    with open(flash_dir + "/" + name, "wb") as f:
        f.write(data)


def manifest(version="0.1.0", files=None, flash_dir=None):
    """fw.cbor naming files (installed into flash_dir first, if given) by their paths on
    the board (/flash/NAME)."""
    files = files or FILES
    if flash_dir:
        for n in files:
            put(flash_dir, files[n], n)
    return cbor.dumps({1: version, 2: 1795000000000, 4: "virtual",
                       3: dict(("/flash/" + n, hashlib.sha256(files[n]).digest())
                               for n in files)})


def firmware_records(sd):
    return [(r, b) for r, b in fwtest.read_chain(sd) if b[0] == st.FIRMWARE]


class Board:
    """One simulated board whose sd and flash folders outlive its boots."""

    def __init__(self):
        self.h, self.sd, self.flash = fwtest.sim()
        self.root = self.sd[:-3]
        self.clock = self.h.clock
        self.s = None

    def boot(self):
        if self.s is not None:
            self.s.close()
            self.clock.reboot()
            self.h, _, _ = fwtest.sim(self.root)
            self.h.clock = self.clock
        self.s, self.rec = device.boot(self.h, SMALL)
        return self.s


class TestFirmwareRecord(unittest.TestCase):
    def test_manifest_a_then_same_then_b(self):
        b = Board()
        a = manifest(flash_dir=b.flash)
        put(b.flash, a)
        s = b.boot()
        chain = fwtest.read_chain(b.sd)
        self.assertEqual([x[0] for _, x in chain], [st.BOOT, st.FIRMWARE])
        fw = chain[1][1]
        self.assertEqual(fw[st.K_FIRMWARE], hashlib.sha256(a).digest())
        self.assertEqual(fw[st.K_VERSION], "0.1.0")
        self.assertEqual(fw[st.K_FILES], 2)
        self.assertTrue(st.K_REASON not in fw)
        self.assertEqual(s.fwid, hashlib.sha256(a).digest())
        # a recording, then a reboot with the same firmware: no new FIRMWARE record
        b.rec.start()
        b.rec.run_ms(3000)
        b.rec.stop()
        b.boot()
        b.boot()
        self.assertEqual(len(firmware_records(b.sd)), 1)
        self.assertEqual(fwtest.read_chain(b.sd)[-1][1][0], st.BOOT)
        # one file changed: a new manifest, a new id, FIRMWARE B right after BOOT
        new = manifest("0.1.1", {"main.py": b"import board\n", "store.mpy": b"M\x06store!"},
                       b.flash)
        put(b.flash, new)
        s = b.boot()
        chain = fwtest.read_chain(b.sd)
        self.assertEqual([x[0] for _, x in chain[-2:]], [st.BOOT, st.FIRMWARE])
        self.assertEqual(chain[-1][1][st.K_FIRMWARE], hashlib.sha256(new).digest())
        self.assertEqual(chain[-1][1][st.K_VERSION], "0.1.1")
        self.assertEqual(s.fwid, hashlib.sha256(new).digest())
        # the chain is whole: each record's prev is the hash of the one before
        for i in range(1, len(chain)):
            self.assertEqual(chain[i][1][2], hashlib.sha256(chain[i - 1][0]).digest())
        # AUTH answers the firmware id (result key 15), the version as before (13)
        station = ed25519.secret(STATION_SEED)
        link.add_trusted(b.h.flash, ed25519.public(station))
        ser = fwtest.Loop()
        b.h.serial = ser
        host = Host(link.Link(b.h, s, b.rec), ser)
        r = host.auth(station)
        self.assertEqual(r[1], 0, r)
        self.assertEqual(r[2][15], hashlib.sha256(new).digest())
        self.assertEqual(r[2][13], s.fw)
        # back to A (a reflash with the old firmware): a record again, naming A
        manifest(flash_dir=b.flash)
        put(b.flash, a)
        b.boot()
        self.assertEqual([x[st.K_FIRMWARE] for _, x in firmware_records(b.sd)],
                         [hashlib.sha256(a).digest(), hashlib.sha256(new).digest(),
                          hashlib.sha256(a).digest()])

    def test_unmanaged_once_then_flashed(self):
        b = Board()
        b.boot()
        b.boot()
        recs = firmware_records(b.sd)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0][1][st.K_FIRMWARE], None)
        self.assertEqual(recs[0][1][st.K_REASON], "unmanaged")
        self.assertTrue(st.K_VERSION not in recs[0][1])
        self.assertEqual(b.s.fwid, None)
        put(b.flash, manifest(flash_dir=b.flash))
        b.boot()
        recs = firmware_records(b.sd)
        self.assertEqual(len(recs), 2)
        self.assertEqual(recs[1][1][st.K_FILES], 2)

    def test_bad_and_oversized_manifests(self):
        b = Board()
        bad = b"\xa1\x01\x02"       # a map, but not a manifest
        put(b.flash, bad)
        b.boot()
        r = firmware_records(b.sd)[-1][1]
        self.assertEqual(r[st.K_REASON], "bad_manifest")
        self.assertEqual(r[st.K_FIRMWARE], hashlib.sha256(bad).digest())
        self.assertTrue(st.K_VERSION not in r and st.K_FILES not in r)
        # not CBOR at all, longer than the 16 KiB the recorder parses: hashed in windows
        big = bytes(range(256)) * 80
        put(b.flash, big)
        b.boot()
        r = firmware_records(b.sd)[-1][1]
        self.assertEqual(r[st.K_REASON], "bad_manifest")
        self.assertEqual(r[st.K_FIRMWARE], hashlib.sha256(big).digest())
        # a version with a control character is not a manifest either
        put(b.flash, manifest("0.1\n"))
        self.assertEqual(fwinfo.read(b.h.flash)[3], "bad_manifest")
        self.assertEqual(len(firmware_records(b.sd)), 2)

    def test_a_new_card_gets_the_record_again(self):
        b = Board()
        put(b.flash, manifest(flash_dir=b.flash))
        b.boot()
        b.s.close()
        # an empty card in its place (the remembered head is gone: STORE_ALERT first)
        import os
        for name in fwtest.files(b.sd):
            os.remove(b.sd + "/" + name)
        b.boot()
        types = [x[0] for _, x in fwtest.read_chain(b.sd)]
        self.assertEqual(types, [st.STORE_ALERT, st.BOOT, st.FIRMWARE])
        b.boot()
        self.assertEqual(len(firmware_records(b.sd)), 1)

    def test_a_file_changed_behind_the_manifest_is_modified(self):
        b = Board()
        a = manifest(flash_dir=b.flash)
        put(b.flash, a)
        b.boot()
        put(b.flash, b"M\x06store, changed over the REPL", "store.mpy")
        b.boot()
        r = firmware_records(b.sd)[-1][1]
        self.assertEqual(r[st.K_REASON], "modified")
        self.assertEqual(r[st.K_CHANGED], ["/flash/store.mpy"])
        self.assertEqual((r[st.K_FIRMWARE], r[st.K_VERSION], r[st.K_FILES]),
                         (hashlib.sha256(a).digest(), "0.1.0", 2))
        b.boot()                                  # the same modification: no new record
        self.assertEqual(len(firmware_records(b.sd)), 2)
        put(b.flash, b"M\x06store, changed again", "store.mpy")
        import os
        os.remove(b.flash + "/main.py")
        b.boot()                                  # another one: a new record
        r = firmware_records(b.sd)[-1][1]
        self.assertEqual(r[st.K_CHANGED], ["/flash/main.py", "/flash/store.mpy"])
        put(b.flash, FILES["main.py"], "main.py")     # put back as flashed: the manifest's
        put(b.flash, FILES["store.mpy"], "store.mpy")
        b.boot()
        r = firmware_records(b.sd)[-1][1]
        self.assertTrue(st.K_REASON not in r and st.K_CHANGED not in r)
        self.assertEqual(len(firmware_records(b.sd)), 4)

    def test_an_unlisted_module_or_package_is_modified(self):
        # attack5 F4/F4b: a workflow.py or a workflow/ package the manifest does not list
        # shadows workflow.mpy; the recorder says "modified", naming it, and a new record
        import os
        b = Board()
        a = manifest(flash_dir=b.flash)
        put(b.flash, a)
        b.boot()
        self.assertEqual(fwinfo.read(b.h.flash)[3], None)
        put(b.flash, b"print('planted')\n", "store.py")
        b.boot()
        r = firmware_records(b.sd)[-1][1]
        self.assertEqual(r[st.K_REASON], "modified")
        self.assertEqual(r[st.K_CHANGED], ["/flash/store.py"])
        self.assertEqual(r[st.K_FIRMWARE], hashlib.sha256(a).digest())
        put(b.flash, b"print('planted again')\n", "store.py")
        b.boot()                                  # other planted bytes: another record
        self.assertEqual(len(firmware_records(b.sd)), 3)
        os.remove(b.flash + "/store.py")
        os.mkdir(b.flash + "/workflow")
        put(b.flash, b"print('planted')\n", "workflow/__init__.py")
        b.boot()
        r = firmware_records(b.sd)[-1][1]
        self.assertEqual(r[st.K_REASON], "modified")
        self.assertEqual(r[st.K_CHANGED], ["/flash/workflow/"])
        # data files beside the code are not code
        os.remove(b.flash + "/workflow/__init__.py")
        os.rmdir(b.flash + "/workflow")
        put(b.flash, b"data", "notes.txt")
        self.assertEqual(fwinfo.read(b.h.flash)[3], None)
        # a flood of names is bounded: looked at LIST_MAX entries, said "..."
        for i in range(fwinfo.LIST_MAX + 2):
            put(b.flash, b"", "f%d.txt" % i)
        self.assertEqual(fwinfo.read(b.h.flash)[4], ["/flash/..."])

    def test_an_unlisted_module_in_the_package_folder_is_modified(self):
        # the package layout (lib/sealcamfw/): a store.py planted beside the listed
        # store.mpy, or a store/ folder, runs instead of it: "modified", naming it; other
        # folders of lib/ are not looked at (they shadow nothing of the firmware's)
        import os
        b = Board()
        os.mkdir(b.flash + "/lib")
        os.mkdir(b.flash + "/lib/sealcamfw")
        files = {"main.py": b"import board\n", "lib/sealcamfw/store.mpy": b"M\x06store",
                 "lib/sealcamfw/__init__.mpy": b"M\x06"}
        a = manifest(files=files, flash_dir=b.flash)
        put(b.flash, a)
        os.mkdir(b.flash + "/lib/other")
        put(b.flash, b"x = 1\n", "lib/other/__init__.py")
        b.boot()
        self.assertEqual(fwinfo.read(b.h.flash)[3], None)
        put(b.flash, b"print('planted')\n", "lib/sealcamfw/store.py")
        b.boot()
        r = firmware_records(b.sd)[-1][1]
        self.assertEqual(r[st.K_REASON], "modified")
        self.assertEqual(r[st.K_CHANGED], ["/flash/lib/sealcamfw/store.py"])
        os.remove(b.flash + "/lib/sealcamfw/store.py")
        os.mkdir(b.flash + "/lib/sealcamfw/store")
        self.assertEqual(fwinfo.read(b.h.flash)[4], ["/flash/lib/sealcamfw/store/"])
        os.rmdir(b.flash + "/lib/sealcamfw/store")
        os.mkdir(b.flash + "/sealcamfw")          # before /flash/lib on the path
        self.assertEqual(fwinfo.read(b.h.flash)[4], ["/flash/sealcamfw/"])

    def test_check_names_what_is_wrong(self):
        good = cbor.loads(manifest())
        self.assertEqual(fwinfo.check(good), None)
        for k, v in ((1, ""), (2, -1), (3, {}), (4, 5)):
            m = dict(good)
            m[k] = v
            self.assertTrue(fwinfo.check(m), (k, v))
        m = dict(good)
        for bad in ("/" + "x" * 64, "main.py", "/flash/../key.bin", "//x", "/a\nb"):
            m[3] = {bad: bytes(32)}
            self.assertTrue("file path" in fwinfo.check(m), bad)
        m[3] = {"/flash/main.py": bytes(31)}
        self.assertTrue("/flash/main.py" in fwinfo.check(m))


if __name__ == "__main__":
    unittest.main()
