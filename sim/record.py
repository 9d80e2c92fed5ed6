"""`sealcam sim record`: run the virtual recorder headless for N simulated seconds.

The recorder's SD card is left in DIR and its internal flash (device key) in DIR.flash;
the device public key is written to DIR.flash/device.pub for pinning with `verify --key`.
The same firmware runs on CPython (in this process) or on the MicroPython VM.
"""
import json
import os
import sys

from sim import vm

ROOT = vm.ROOT
VM_BASE_HEAP = 2 * 1024 * 1024   # the firmware's working set, with room to spare


def vm_heap(settings=None):
    """VM heap for a job: the working set plus the pre-record ring its settings ask for
    (a board keeps that in PSRAM). A larger heap costs time: every collection sweeps it."""
    from sealcamfw import config   # the firmware's settings
    cfg = config.make(settings)
    ring = min(cfg["prerecord_s"] * (cfg["bitrate"] // 4 + 32000), cfg["prerecord_ram"])
    return VM_BASE_HEAP + ring + (ring >> 3)


def run_job(job, runtime="cpython"):
    """Run a shift job (see sim/hal/simmain.py) and return its summary dict."""
    os.makedirs(job["sd_host"], exist_ok=True)
    os.makedirs(job["flash_host"], exist_ok=True)
    if runtime == "micropython":
        j = dict(job, sd="/sd", flash="/flash")
        proc = vm.run(os.path.join(vm.SIM_HAL, "simmain.py"), libs=vm.LIBS,
                      mounts=((job["sd_host"], "/sd"), (job["flash_host"], "/flash")),
                      args=(json.dumps(j),), heap=job.get("heap") or vm_heap(job.get("settings")))
        for line in proc.stdout.splitlines():
            if line.startswith("SIM-RESULT "):
                return json.loads(line[len("SIM-RESULT "):])
        raise RuntimeError("virtual recorder on the MicroPython VM failed:\n" + (proc.stdout + proc.stderr)[-3000:])
    if runtime != "cpython":
        raise ValueError("unknown runtime %r (cpython or micropython)" % runtime)
    from sim.hal import simdevice
    from sim.hal.powerfs import PowerCut
    h = simdevice.make_hal(job["sd_host"], job["flash_host"], job.get("device", "SC-SIM0001"),
                           job.get("model", "littlefs"), job.get("cut_at"), job.get("capacity"),
                           job.get("bitrate", 2000000), job.get("fps", 10), job.get("seed"),
                           officer=job.get("officer"), drift_ppm=job.get("drift_ppm", 0),
                           rtc_ms=job.get("rtc_ms"))
    try:
        summary = simdevice.run_steps(h, job["steps"], job.get("settings"), job.get("officer"))
        summary["cut"] = None
    except PowerCut as e:
        summary = {"cut": str(e)}
    return summary


def run_record(args):
    sd = os.path.abspath(args.dir)
    flash = os.path.abspath(getattr(args, "flash", None) or sd.rstrip("/") + ".flash")
    settings = {"checkpoint_s": args.checkpoint, "segment_s": args.segment}
    job = {"sd_host": sd, "flash_host": flash, "steps": [["start"], ["run", args.seconds], ["stop"]],
           "settings": settings, "model": args.fs, "bitrate": args.bitrate, "seed": getattr(args, "seed", None),
           "officer": getattr(args, "officer", None)}
    summary = run_job(job, args.runtime)
    if summary.get("cut"):
        print("sealcam sim: the recorder lost power: %s" % summary["cut"], file=sys.stderr)
        return 1
    with open(os.path.join(flash, "device.pub"), "w") as f:
        f.write(summary["pubkey"] + "\n")
    print("recorded %ss on the virtual recorder (%s runtime, %s storage): %d records"
          % (args.seconds, args.runtime, args.fs, summary["records"]))
    print("SD card:    %s" % sd)
    print("device key: %s (pin it with: sealcam verify %s --key %s)"
          % (os.path.join(flash, "device.pub"), sd, os.path.join(flash, "device.pub")))
    return 0
