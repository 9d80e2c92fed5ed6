"""The firmware unit tests (tests/firmware/test_*.py) run on CPython through pytest's
unittest support (see conftest.py) and here, unchanged, on the MicroPython 1.27 VM."""
import glob
import os
import re

import pytest

from sim import vm

HERE = os.path.dirname(os.path.abspath(__file__))
FW_TESTS = os.path.join(HERE, "firmware")
MODULES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(FW_TESTS, "test_*.py")))


@pytest.mark.parametrize("module", MODULES)
def test_module_on_micropython_vm(module):
    proc = vm.run(os.path.join(FW_TESTS, "vm_unittest.py"),
                  libs=vm.LIBS + (FW_TESTS,), args=(module,))
    out = proc.stdout + proc.stderr
    m = re.search(r"VM-RESULT (\d+) passed, (\d+) failed", out)
    assert m, "no result line from the VM:\n" + out[-4000:]
    assert int(m.group(2)) == 0 and proc.returncode == 0, out[-6000:]
    assert int(m.group(1)) > 0, "no test ran on the VM"
