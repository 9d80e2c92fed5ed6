"""Run MicroPython scripts on the official MicroPython WebAssembly VM (under Node).

The VM lives in sim/mpvm (npm package pinned in package.json/package-lock.json).
`run()` copies library folders into the VM's /lib (on MicroPython's default sys.path, as
on a board), mirrors host folders into its memory filesystem and back, and returns the
finished process. A package folder goes in as a package folder: firmware/sealcamfw/ as
/lib/sealcamfw/, sim/hal/ as /lib/sim/hal/ (so `from sealcamfw import store` and
`from sim.hal import simdevice` work as they do on CPython); a folder of plain modules
(tests/firmware/) is copied flat into /lib.
"""
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPVM_DIR = os.path.join(ROOT, "sim", "mpvm")
RUNNER = os.path.join(MPVM_DIR, "run.mjs")
FIRMWARE = os.path.join(ROOT, "firmware")              # main.py, manifest.py, boards/
FW_PKG = os.path.join(FIRMWARE, "sealcamfw")            # the firmware package
SIM_HAL = os.path.join(ROOT, "sim", "hal")             # the simulator's parts (sim.hal)
# where a package folder goes under the VM's /lib (its import name, dots as slashes)
PACKAGES = {FW_PKG: "sealcamfw", SIM_HAL: "sim/hal"}
LIBS = (FW_PKG, SIM_HAL)
WASM = os.path.join(MPVM_DIR, "node_modules", "@micropython",
                    "micropython-webassembly-pyscript", "micropython.wasm")


class VMUnavailable(RuntimeError):
    pass


def ensure_vm():
    """Install the pinned VM from the npm registry if it is not there yet."""
    if os.path.exists(WASM):
        return
    if not shutil.which("node") or not shutil.which("npm"):
        raise VMUnavailable("node and npm are needed to run the MicroPython VM")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                   cwd=MPVM_DIR, check=True)


def lib_arg(lib):
    """The runner's --lib argument for a folder: DIR=DEST for a package folder (copied to
    /lib/DEST), DIR for a folder of plain modules (copied into /lib itself). lib may be a
    (folder, dest) pair."""
    if isinstance(lib, tuple):
        return "%s=%s" % lib
    lib = os.path.abspath(lib)
    dest = PACKAGES.get(lib)
    if dest is None and os.path.exists(os.path.join(lib, "__init__.py")):
        dest = os.path.basename(lib)
    return "%s=%s" % (lib, dest) if dest else lib


def command(script, libs=(), mounts=(), args=(), heap=None):
    cmd = ["node", RUNNER]
    for lib in libs:
        cmd += ["--lib", lib_arg(lib)]
    for host, vm_path in mounts:
        cmd += ["--mount", "%s=%s" % (os.path.abspath(host), vm_path)]
    if heap:
        cmd += ["--heap", str(heap)]
    return cmd + [script] + [str(a) for a in args]


def run(script, libs=(FW_PKG,), mounts=(), args=(), heap=None, timeout=900, **kw):
    """Run SCRIPT (a path) on the VM; returns subprocess.CompletedProcess (text)."""
    ensure_vm()
    return subprocess.run(command(script, libs, mounts, args, heap), capture_output=True,
                          text=True, timeout=timeout, **kw)
