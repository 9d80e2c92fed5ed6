"""Writes that survive a power cut: a file or a folder is fsynced, and so is the folder
whose entry list changed, before anything relies on it."""
from __future__ import annotations

import os

__all__ = ["fsync_dir", "makedirs", "write_synced"]


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs(path):
    """makedirs, fsyncing each parent whose entry list changed."""
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        fsync_dir(os.path.dirname(d))


def write_synced(path, data: bytes):
    """Write ``data`` to ``path`` (created or truncated) and fsync the file (not its
    folder: the caller renames it or fsyncs the folder once for several files)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
