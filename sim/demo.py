"""make demo: a short shift on the virtual recorder, verified, then tampered with.

1. The firmware runs on the MicroPython 1.27 VM (the official WebAssembly port) on a
   simulated board: it records a scripted shift (two recordings, segment rollover, signed
   checkpoints, a refused delete) onto a simulated SD card.
2. `sealcam verify` checks the card offline against the device's pinned public key.
3. A copy of the card is tampered with (a media byte flipped, the newest records
   deleted) and verified again: NOT_OK, naming the record and the reason.
"""
import argparse
import io
import os
import shutil
import sys
import time

import cbor2

from host_tools.verify import verify_store
from sim.record import run_job

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo-out")
SHIFT = [["officer", "PC-0042"], ["start"], ["run", 45], ["stop"],
         ["refuse", "delete", "m/00000001.mjpg"], ["start"], ["run", 15], ["stop"]]


def banner(text):
    print("\n== %s ==" % text)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    ap.add_argument("--runtime", default="micropython", choices=["micropython", "cpython"])
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args(argv)
    shutil.rmtree(a.out, ignore_errors=True)
    sd, flash = os.path.join(a.out, "sd"), os.path.join(a.out, "flash")

    banner("1. virtual recorder: firmware on %s records a shift" % (
        "the MicroPython 1.27 VM" if a.runtime == "micropython" else "CPython"))
    job = {"sd_host": sd, "flash_host": flash, "steps": SHIFT, "bitrate": 2000000, "fps": 10,
           "settings": {"checkpoint_s": 5, "segment_s": 20}, "device": "SC-DEMO0001"}
    t = time.perf_counter()
    summary = run_job(job, a.runtime)
    print("recorded 60 s of MJPEG at 2 Mbit/s in %.1f s: %d records, %d refused delete(s)"
          % (time.perf_counter() - t, summary["records"], summary["refused"]))
    pub = os.path.join(a.out, "device.pub")
    with open(pub, "w") as f:
        f.write(summary["pubkey"] + "\n")
    print("SD card: %s    device public key: %s" % (sd, pub))

    banner("2. sealcam verify %s --key %s" % (os.path.relpath(sd), os.path.relpath(pub)))
    rep = verify_store(sd, pinned_key=pub, progress=False)
    print(rep.to_text())
    ok = rep.verdict == "OK"

    banner("3. a copy of the card, tampered with: one media byte flipped, newest records deleted")
    bad = os.path.join(a.out, "sd-tampered")
    shutil.copytree(sd, bad)
    media = os.path.join(bad, "m", sorted(n for n in os.listdir(os.path.join(bad, "m")) if n.endswith(".mjpg"))[0])
    with open(media, "r+b") as f:
        f.seek(300000)
        b = f.read(1)
        f.seek(300000)
        f.write(bytes([b[0] ^ 0x20]))
    logs = sorted(os.listdir(os.path.join(bad, "rec")))
    last = os.path.join(bad, "rec", logs[-1])
    with open(last, "rb") as f:
        data = f.read()
    buf, ends = io.BytesIO(data), []
    while buf.tell() < len(data):
        cbor2.CBORDecoder(buf).decode()
        ends.append(buf.tell())
    with open(last, "wb") as f:
        f.write(data[:ends[-3]])   # the newest two records deleted
    rep2 = verify_store(bad, pinned_key=pub, progress=False)
    print(rep2.to_text())
    print()
    if ok and rep2.verdict == "NOT_OK":
        print("demo: the original verifies OK; the tampered copy is NOT_OK.")
        return 0
    print("demo: UNEXPECTED verdicts (%s, %s)" % (rep.verdict, rep2.verdict))
    return 1


if __name__ == "__main__":
    sys.exit(main())
