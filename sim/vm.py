"""Run MicroPython scripts on the official MicroPython WebAssembly VM (under Node).

The VM lives in sim/mpvm (npm package pinned in package.json/package-lock.json).
`run()` copies library folders onto the VM's sys.path, mirrors host folders into its
memory filesystem and back, and returns the finished process.
"""
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPVM_DIR = os.path.join(ROOT, "sim", "mpvm")
RUNNER = os.path.join(MPVM_DIR, "run.mjs")
FIRMWARE = os.path.join(ROOT, "firmware")
SIM_HAL = os.path.join(ROOT, "sim", "hal")
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


def command(script, libs=(), mounts=(), args=(), heap=None):
    cmd = ["node", RUNNER]
    for lib in libs:
        cmd += ["--lib", lib]
    for host, vm_path in mounts:
        cmd += ["--mount", "%s=%s" % (os.path.abspath(host), vm_path)]
    if heap:
        cmd += ["--heap", str(heap)]
    return cmd + [script] + [str(a) for a in args]


def run(script, libs=(FIRMWARE,), mounts=(), args=(), heap=None, timeout=900, **kw):
    """Run SCRIPT (a path) on the VM; returns subprocess.CompletedProcess (text)."""
    ensure_vm()
    return subprocess.run(command(script, libs, mounts, args, heap), capture_output=True,
                          text=True, timeout=timeout, **kw)
