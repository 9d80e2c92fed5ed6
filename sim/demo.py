"""make demo: an officer's shift on the virtual recorder, from check-out to check-in,
offloaded over the serial link, verified and reported; then a tampered copy of the card.

1. The station makes its key pair and an empty archive (`sealcam station init`).
2. Check-out: the recorder is docked (`sealcam sim serve`: the firmware on the MicroPython
   1.27 VM, serving its dock link on a real pty); the station registers it, sets its
   clock, runs its self-check and assigns it to an officer (`sealcam checkout`).
3. The shift, driven through the recorder's buttons: pre-record in standby, RECORD, the
   notice to the party, marks, an interruption the officer picks (change of place), the
   resume that prompts for an explanation, the VOICE button held while the officer states
   it, a refused delete, RECORD to end.
4. Check-in (`sealcam dock`): offload with verification and a custody receipt, clock
   calibration with the measured drift, the officer released, the self-check.
5. `sealcam verify` checks the archive offline; `sealcam report` lists the interruption
   with its voice annotation (the exact bytes of the statement), the marks and the shift.
6. A copy of the card is tampered with (a media byte flipped, the newest records deleted)
   and verified: NOT_OK, naming the record and the reason.
"""
import argparse
import io
import os
import shlex
import shutil
import subprocess
import sys
import time

import cbor2

from host_tools.verify import verify_store
from sim.record import run_job

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo-out")
DEVICE = "SC-DEMO0001"
SHIFT = [["run", 12],                                   # standby: pre-record fills
         ["press", "record"], ["run", 10],              # arrival: recording starts
         ["press", "notice"], ["run", 15],              # the party is told (R5)
         ["hold", "mark", 2], ["run", 8],               # IMPORTANT
         ["hold", "record", 2], ["press", "mark"],      # pick a reason: place_change
         ["press", "record"], ["run", 20],              # confirmed: interrupted; walking
         ["press", "record"], ["run", 2],               # resume: three beeps, "state why"
         ["hold", "voice", 5], ["run", 15],             # the officer explains aloud
         ["refuse", "delete", "m/00000002.mkv"],
         ["press", "record"]]                           # the activity ends


def _seconds(steps):
    """Simulated seconds a shift script takes (sim/hal/simdevice.py's step lengths)."""
    t = 0.0
    for st in steps:
        t += {"run": lambda: st[1], "press": lambda: 0.4,
              "hold": lambda: st[2] + 0.3}.get(st[0], lambda: 0)()
    return t


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

    vmname = "the MicroPython 1.27 VM" if a.runtime == "micropython" else "CPython"
    trust = os.path.join(arch, "station.pub")

    def docked(title, *verbs):
        """Serve the card on a pty, run `sealcam VERB …` for each verb, undock."""
        srv = subprocess.Popen([sys.executable, "-m", "sim.serve", "--store", sd, "--flash",
                                flash, "--runtime", a.runtime, "--device", DEVICE,
                                "--trust", trust], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        codes = []
        try:
            line = srv.stdout.readline()
            if not line.startswith("PORT "):
                print("demo: the virtual recorder did not start:\n" + srv.stderr.read())
                return [1]
            port = line.split()[1]
            banner("%s: the recorder (firmware on %s) is docked at %s" % (title, vmname, port))
            for v in verbs:
                args = list(v)
                print("$ sealcam %s --port %s %s" % (args[0], port,
                                                   " ".join(shlex.quote(x) for x in args[1:])))
                p = sealcam(args[0], "--port", port, *args[1:])
                print((p.stdout + p.stderr).strip())
                codes.append(p.returncode)
        finally:
            srv.terminate()
            srv.wait(60)
        return codes

    rel = os.path.relpath(arch)
    codes = docked("2. check-out",
                   ["offload", "--archive", rel, "--register", "--no-progress"],
                   ["checkout", "--archive", rel, "--officer", "PC-0042", "--unit",
                    "Traffic Unit 2"])

    banner("3. the shift: the officer works the recorder's buttons (firmware on %s)" % vmname)
    job = {"sd_host": sd, "flash_host": flash, "steps": SHIFT, "bitrate": 2000000, "fps": 10,
           "settings": {"checkpoint_s": 5, "segment_s": 60, "bitrate": 2000000,
                        "prerecord_s": 10},
           "device": DEVICE, "rtc_ms": int((time.time() - _seconds(SHIFT)) * 1000)}
    t = time.perf_counter()
    summary = run_job(job, a.runtime)
    for e in summary.get("events", []):
        print("  recorder: " + e)
    print("recorded %.0f s of shift (Matroska: MJPEG at 2 Mbit/s and 16 kHz audio, simulated time; "
          "it ended just now) "
          "in %.1f s: %d records, %d refused delete(s)"
          % (_seconds(SHIFT), time.perf_counter() - t, summary["records"], summary["refused"]))

    codes += docked("4. check-in", ["dock", "--archive", rel, "--no-progress"])

    banner("5. sealcam verify %s" % rel)
    p = sealcam("verify", arch)
    print(p.stdout.strip())
    codes.append(p.returncode)
    banner("sealcam report --archive %s" % rel)
    p = sealcam("report", "--archive", arch)
    print(p.stdout.strip() or p.stderr.strip())
    report_ok = p.returncode in (0, 1) and "annotated" in p.stdout
    ok = all(c == 0 for c in codes) and report_ok

    pub = os.path.join(flash, "device.pub")
    banner("6. a copy of the card, tampered with: one media byte flipped, newest records deleted")
    bad = os.path.join(a.out, "sd-tampered")
    shutil.copytree(sd, bad)
    media = os.path.join(bad, "m", sorted(n for n in os.listdir(os.path.join(bad, "m")) if n.endswith(".mkv"))[0])
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
        print("demo: checked out, recorded, checked in, verified OK and reported; the "
              "tampered card is NOT_OK.")
        return 0
    print("demo: UNEXPECTED results (exit codes %s, report ok=%s, tampered card %s)"
          % (codes, report_ok, rep2.verdict))
    return 1


if __name__ == "__main__":
    sys.exit(main())
