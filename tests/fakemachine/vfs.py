# FAKE of MicroPython's `vfs` module for CPython only (tests/test_board_port.py): CPython
# has no mount table, so mount(card, path) calls the card's mount() and makes `path` a
# symbolic link to the folder that holds the card's files (machine.SDCard.backing): files
# the firmware writes under `path` land on the "card". On the MicroPython VM the built-in
# vfs module is used instead (a built-in module wins over this file), and mounts the fake
# SDCard, a Python VFS object, for real.
import os

mounts = {}


def mount(obj, path, readonly=False):
    if path in mounts:
        raise OSError(1, "already mounted: " + path)   # EPERM, as MicroPython says
    obj.mount(readonly, False)
    if not os.path.islink(path):
        os.symlink(obj.root, path)
    mounts[path] = obj


def umount(path):
    obj = mounts.pop(path)
    obj.umount()
    os.unlink(path)
