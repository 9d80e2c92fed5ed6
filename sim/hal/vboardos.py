# The virtual board's `os` (installed in the VM's /rom; board.mjs puts it in sys.modules as
# `os` at boot, and its open() in place of the builtin): the VM's own os module, with two
# things a board's VFS does that the VM's file system does not:
# - the empty path is the current folder (mpremote uses it: `fs ls`, `fs cp x :`);
# - an OSError carries MicroPython's errno numbers (2 ENOENT, 17 EEXIST, ...), not the
#   WebAssembly C library's (44, 20, ...), so mpremote and the firmware read them right.
# Runs on the MicroPython VM only.
import builtins
import os as _os
from os import *  # noqa: F401,F403

# WASI/Emscripten errno -> MicroPython (Linux) errno
_ERRNO = {63: 1, 44: 2, 71: 3, 27: 4, 29: 5, 60: 6, 1: 7, 45: 8, 8: 9, 12: 10, 6: 11,
          48: 12, 2: 13, 21: 14, 10: 16, 20: 17, 75: 18, 43: 19, 54: 20, 31: 21, 28: 22,
          41: 23, 33: 24, 59: 25, 74: 26, 22: 27, 51: 28, 70: 29, 69: 30, 34: 31, 64: 32,
          37: 36, 55: 39, 32: 40, 58: 95, 52: 38}
_open = builtins.open


def _err(e):
    a = e.args
    if a and type(a[0]) is int and a[0] in _ERRNO:
        return OSError(_ERRNO[a[0]])
    return e


def _p(path):
    return "." if path == "" else path


def _call(f, *a):
    try:
        return f(*a)
    except OSError as e:
        raise _err(e)


def stat(path):
    return _call(_os.stat, _p(path))


def statvfs(path):
    return _call(_os.statvfs, _p(path))


def listdir(path="."):
    return _call(_os.listdir, _p(path))


def ilistdir(path="."):
    """(name, type, inode, size) of each entry, as a board's VFS gives them (the VM's
    gives no size)."""
    p = _p(path)
    out = []
    for e in _call(_os.ilistdir, p):
        if len(e) < 4:
            size = 0
            if e[1] & 0x8000:
                try:
                    size = _os.stat((p if p.endswith("/") else p + "/") + e[0])[6]
                except OSError:
                    pass
            e = (e[0], e[1], e[2] if len(e) > 2 else 0, size)
        out.append(e)
    return iter(out)


def chdir(path):
    return _call(_os.chdir, _p(path))


def mkdir(path):
    return _call(_os.mkdir, path)


def rmdir(path):
    return _call(_os.rmdir, path)


def remove(path):
    return _call(_os.remove, path)


def unlink(path):
    return _call(_os.remove, path)


def rename(a, b):
    return _call(_os.rename, a, b)


def open(path, mode="r", *a, **k):  # noqa: A001
    try:
        return _open(path, mode, *a, **k)
    except OSError as e:
        raise _err(e)


def install():
    import sys
    sys.modules["os"] = sys.modules["vboardos"]
    try:
        builtins.open = open
    except (AttributeError, TypeError):
        pass
