"""make demo: a shift on the virtual recorder, offloaded over the serial link, verified,
then a tampered copy of the card verified again.

1. The station makes its key pair and an empty archive (`sealcam station init`).
2. The firmware runs on the MicroPython 1.27 VM (the official WebAssembly port) on a
   simulated board: it records a scripted shift (two recordings, segment rollover, signed
   checkpoints, a refused delete) onto a simulated SD card, then serves its dock link on a
   real pty (`sealcam sim serve`).
3. `sealcam offload` speaks the CBOR serial protocol to it: HELLO, AUTH, pulls and checks
   every record and chunk, verifies, stores, and hands the recorder a custody receipt.
4. `sealcam verify` checks the archive offline against the registered device key.
5. A copy of the card is tampered with (a media byte flipped, the newest records deleted)
   and verified: NOT_OK, naming the record and the reason.
"""
import argparse
import io
import os
import shutil
import subprocess
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


def sealcam(*args):
    return subprocess.run([sys.executable, "-m", "host_tools.cli"] + [str(x) for x in args],
                          text=True, capture_output=True)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    ap.add_argument("--runtime", default="micropython", choices=["micropython", "cpython"])
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args(argv)
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    sd, flash = os.path.join(a.out, "sd"), os.path.join(a.out, "sd.flash")
    arch = os.path.join(a.out, "archive")

    banner("1. sealcam station init --archive %s" % os.path.relpath(arch))
    p = sealcam("station", "init", "--archive", arch)
    print(p.stdout.strip() or p.stderr.strip())

    banner("2. virtual recorder: firmware on %s records a shift" % (
        "the MicroPython 1.27 VM" if a.runtime == "micropython" else "CPython"))
    job = {"sd_host": sd, "flash_host": flash, "steps": SHIFT, "bitrate": 2000000, "fps": 10,
           "settings": {"checkpoint_s": 5, "segment_s": 20}, "device": "SC-DEMO0001"}
    t = time.perf_counter()
    summary = run_job(job, a.runtime)
    print("recorded 60 s of MJPEG at 2 Mbit/s in %.1f s: %d records, %d refused delete(s)"
          % (time.perf_counter() - t, summary["records"], summary["refused"]))
    srv = subprocess.Popen([sys.executable, "-m", "sim.serve", "--store", sd, "--flash", flash,
                            "--runtime", a.runtime, "--device", "SC-DEMO0001",
                            "--trust", os.path.join(arch, "station.pub")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        if not line.startswith("PORT "):
            print("demo: the virtual recorder did not start:\n" + srv.stderr.read())
            return 1
        port = line.split()[1]
        print("the recorder is docked: its serial port is %s" % port)

        banner("3. sealcam offload --port %s --archive %s --register" % (port, os.path.relpath(arch)))
        p = sealcam("offload", "--port", port, "--archive", arch, "--register", "--no-progress")
        print((p.stdout + p.stderr).strip())
        offload_ok = p.returncode == 0
    finally:
        srv.terminate()
        srv.wait(60)

    banner("4. sealcam verify %s" % os.path.relpath(arch))
    p = sealcam("verify", arch)
    print(p.stdout.strip())
    ok = offload_ok and p.returncode == 0

    pub = os.path.join(flash, "device.pub")
    banner("5. a copy of the card, tampered with: one media byte flipped, newest records deleted")
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
        f.write(data[:ends[-3] if len(ends) >= 3 else 0])   # the newest records deleted
    rep2 = verify_store(bad, pinned_key=pub, progress=False)
    print(rep2.to_text())
    print()
    if ok and rep2.verdict == "NOT_OK":
        print("demo: offloaded and verified OK in the archive; the tampered card is NOT_OK.")
        return 0
    print("demo: UNEXPECTED results (offload/verify ok=%s, tampered card %s)" % (ok, rep2.verdict))
    return 1


if __name__ == "__main__":
    sys.exit(main())
