# Entry point of the virtual recorder on the MicroPython VM (run by sim/vm.py):
# argv[0] is a JSON job {sd, flash, steps, settings, model, seed, bitrate, fps, device,
# officer, cut_at, capacity, drift_ppm, rtc_ms}; prints "SIM-RESULT <json>" with the
# shift summary and heap figures.
import asyncio
import gc
import json

import jshal
from sim.hal import simdevice
from sim.hal.powerfs import PowerCut

job = json.loads(list(jshal.argv())[0])
h = simdevice.make_hal(job["sd"], job["flash"], job.get("device", "SC-SIM0001"),
                       job.get("model", "littlefs"), job.get("cut_at"), job.get("capacity"),
                       job.get("bitrate", 2000000), job.get("fps", 10), job.get("seed"),
                       officer=job.get("officer"), drift_ppm=job.get("drift_ppm", 0),
                           rtc_ms=job.get("rtc_ms"))

peak = [0, 0]


async def main():
    # drive the shift tick by tick; every few ticks hand control back to the JS event loop,
    # where the VM's garbage collector actually runs, then sample the heap
    summary = {}
    n = 0
    try:
        for _ in simdevice.shift(h, job["steps"], job.get("settings"), job.get("officer"),
                                 None, summary):
            a = gc.mem_alloc()
            if a > peak[1]:
                peak[1] = a
            n += 1
            if n % 5 == 0:
                gc.collect()
                await asyncio.sleep_ms(1)
                a = gc.mem_alloc()
                if a > peak[0]:
                    peak[0] = a
        summary["cut"] = None
    except PowerCut as e:
        summary = {"cut": str(e)}
    summary["heap_live_peak"] = peak[0]
    summary["heap_alloc_peak"] = peak[1]
    print("SIM-RESULT " + json.dumps(summary))
    jshal.exit(0)


await main()  # top-level await: the runner runs this script with runPythonAsync
