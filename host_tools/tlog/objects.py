"""The archive's objects: each must hash to its name and be read-only (SPEC §9 step 6).
Files are opened without following links, regular files only, read in 4 MiB blocks into a
reused buffer (hashlib releases the GIL), by a thread per core but one."""
from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor

from ..verify import OK

__all__ = ["hash_file", "list_objects", "hash_objects"]

READ = 4 << 20


def hash_file(path):
    """(hex digest, None) or (None, why) for a regular file, never following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        return None, "cannot be opened (%s)" % (e.strerror or e)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "not a regular file"
        hs = hashlib.sha256()
        buf = bytearray(READ)
        mv = memoryview(buf)
        left = st.st_size
        while left > 0:
            n = os.readv(fd, [mv[:min(READ, left)]])
            if n <= 0:
                break
            hs.update(mv[:n])
            left -= n
        if left:
            return None, "shorter than its size"
        return hs.hexdigest(), None
    finally:
        os.close(fd)


def list_objects(objects_dir):
    """[(path, name)] of every object (temporary files of an interrupted write aside)."""
    out = []
    for dirpath, dirs, files in os.walk(objects_dir):
        dirs.sort()
        for fn in sorted(files):
            if not fn.startswith(".tmp-"):
                out.append((os.path.join(dirpath, fn), os.path.basename(dirpath) + fn))
    return out


def _check_object(item, proven=frozenset()):
    """(path, problem) or None. ``proven``: (st_dev, st_ino) of files whose every byte was
    already checked against signed chunk hashes: their content is the signed one, so
    hashing them whole again would prove nothing more (their name was logged by the
    station from that same content)."""
    p, name = item
    try:
        st = os.lstat(p)
    except OSError as e:
        return p, "cannot be read (%s)" % (e.strerror or e)
    if not stat.S_ISREG(st.st_mode):
        return p, "not a regular file"
    if (st.st_dev, st.st_ino) not in proven:
        h, why = hash_file(p)
        if why:
            return p, why
        if h != name:
            return p, "content does not match its name"
    if st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return p, "writable"
    return None


def hash_objects(objects_dir, workers=None, items=None, proven=frozenset()):
    """[(path, problem)] for every object in ``objects_dir`` (or of ``items``) that does not
    hash to its name, is writable or is not a regular file; a thread per core but one."""
    items = list_objects(objects_dir) if items is None else items
    # one thread per core but one: the device views are verified beside it in the caller
    workers = workers or max(1, min(8, (os.cpu_count() or 1) - 1))
    with ThreadPoolExecutor(workers) as ex:
        return [r for r in ex.map(lambda it: _check_object(it, proven), items)
                if r is not None]


def _media_inodes(a):
    """(st_dev, st_ino) of every media file in the device views (not .idx, not rec/)."""
    out = set()
    if not os.path.isdir(a.devices_dir):
        return out
    for d in os.listdir(a.devices_dir):
        m = os.path.join(a.devices_dir, d, "m")
        if not os.path.isdir(m) or os.path.islink(m):
            continue
        for fn in os.listdir(m):
            if fn.endswith(".idx"):
                continue
            try:
                st = os.lstat(os.path.join(m, fn))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.add((st.st_dev, st.st_ino))
    return out


def _proven_media(view, rep):
    """(st_dev, st_ino) of the view's media files whose every signed chunk verified and
    that hold nothing beyond the signed length."""
    out = set()
    for sr in getattr(rep, "segments", ()) or ():
        if sr.verdict != OK or sr.file_size is None or sr.file_size != sr.length \
                or not sr.marks or set(sr.marks) != {"."}:
            continue
        try:
            st = os.lstat(os.path.join(view, *sr.media.split("/")))
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.add((st.st_dev, st.st_ino))
    return out
