# Entry point of `sealcam sim serve --runtime micropython` on the MicroPython VM (run by
# sim/serve.py as `node run.mjs --serial ... simservemain.py JOB`). argv[0] is the JSON job
# of sim/hal/simserve.py (sd=/sd, flash=/flash); the serial port is the runner's
# /dev/serial (the Node process's stdin/stdout). print() goes to stderr in --serial mode:
# "SERVE-READY <json>" once the link is up, "SERVE-STOPPED <json>" after a clean shutdown.
import json

import jshal
from sim.hal import simserial
from sim.hal import simserve

job = json.loads(list(jshal.argv())[0])
serial = simserial.VMSerial()
if job.get("raw_copy_mb"):
    await simserve.raw_copy_async(serial, jshal, job["raw_copy_mb"])  # noqa: F704
else:
    await simserve.serve_async(simserve.Server(job, serial), jshal)  # noqa: F704
jshal.exit(0)
