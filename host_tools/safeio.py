"""Reading a store that may be hostile (a crafted SD card, an edited archive view).

    from host_tools import safeio
    f, size = safeio.open_regular(root, "rec/00000000.log")   # or raises StoreFileError
    data = safeio.read_capped(root, "head.cbor", 64 << 10)    # the whole file, if small
    entries = safeio.list_dir(root, "m")                      # [(name, kind)], kind "file",
                                                              #  "dir", "symlink", "fifo", …

Rules (SPEC §6.1, verifier rules):
- every path below ``root`` is walked one component at a time with O_NOFOLLOW: a symlink
  anywhere on the path (a file or a directory) is refused, never followed;
- only regular files are read: a FIFO, a device or a socket is refused without being
  opened (its directory entry is checked first, without following it), and what is then
  opened (O_NOFOLLOW, O_NONBLOCK) must be the same inode and a regular file (fstat);
- sizes are bounded by the caller: ``read_capped`` refuses a file larger than its cap
  before reading it, so no file is ever read whole unless it is small.

Errors are StoreFileError (an OSError) whose message names the file relative to the
store root and says what it is. The store root itself may be a symlink (a mount point).
"""
from __future__ import annotations

import errno
import os
import stat

__all__ = ["StoreFileError", "open_regular", "read_capped", "list_dir", "kind_of",
           "open_dir_nofollow", "MAX_ENTRIES"]

MAX_ENTRIES = 1_000_000          # entries of one store directory
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class StoreFileError(OSError):
    """A store file that must not be read (symlink, FIFO, device, too large, …)."""

    def __init__(self, rel, message, errno_=None):
        super().__init__(errno_ or errno.EINVAL, message)
        self.rel = rel
        self.message = message

    def __str__(self):
        return self.message


def kind_of(mode) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


_WHAT = {"file": "a regular file", "symlink": "a symbolic link", "fifo": "a FIFO (named pipe)",
         "device": "a device", "socket": "a socket", "dir": "a directory",
         "special file": "a special file"}


def _describe(rel, kind):
    return "%s is %s, not a regular file: a recorder writes only regular files (it is not " \
           "read)" % (_printable(rel), _WHAT.get(kind, kind))


def _printable(rel):
    from .records import printable
    return printable(rel)


def open_dir_nofollow(root, parts, refuse, create=False):
    """An fd of the directory root/parts[0]/…, each component opened with O_NOFOLLOW (a
    symlink is never followed). A component that is a symlink or not a directory calls
    refuse(i, parent_fd), which raises; a missing one is created (0o755) when create."""
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for i, p in enumerate(parts):
            flags = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC
            try:
                nfd = os.open(p, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(p, 0o755, dir_fd=fd)
                os.fsync(fd)
                nfd = os.open(p, flags, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    refuse(i, fd)
                raise
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_dir_chain(root, parts, rel):
    """An fd of the directory root/parts[0]/…, no component followed if a symlink."""
    def refuse(i, fd):
        sub = "/".join(parts[:i + 1])
        try:
            k = kind_of(os.stat(parts[i], dir_fd=fd, follow_symlinks=False).st_mode)
        except OSError:
            k = "special file"
        if k == "symlink":
            raise StoreFileError(rel, "%s is a symbolic link: a store directory "
                                 "is never a link (it is not followed)"
                                 % _printable(sub)) from None
        raise StoreFileError(rel, "%s is %s, not a directory"
                             % (_printable(sub), _WHAT.get(k, k))) from None
    return open_dir_nofollow(root, parts, refuse)


def _split(rel):
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise StoreFileError(rel, "path %s is not inside the store" % _printable(rel))
    return parts


def open_regular(root, rel):
    """(file object opened for binary reading, size) of the regular file root/rel.

    Raises FileNotFoundError if it does not exist, StoreFileError if it (or a directory on
    its path) is a symlink, a FIFO, a device or anything but a regular file."""
    parts = _split(rel)
    dfd = _open_dir_chain(root, parts[:-1], rel)
    try:
        # its type first, from the directory entry (nothing opened: opening a FIFO or a
        # device node has effects of its own, e.g. releasing a writer blocked on a FIFO)
        try:
            pre = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "%s does not exist" % rel) from None
        k = kind_of(pre.st_mode)
        if k != "file":
            raise StoreFileError(rel, _describe(rel, k))
        try:
            fd = os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC,
                         dir_fd=dfd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.EMLINK):
                raise StoreFileError(rel, _describe(rel, "symlink")) from None
            if e.errno == errno.ENXIO:          # a socket, or a FIFO with no writer
                raise StoreFileError(rel, _describe(rel, "socket")) from None
            if e.errno == errno.ENOENT:
                raise FileNotFoundError(errno.ENOENT, "%s does not exist" % rel) from None
            raise
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        k = kind_of(st.st_mode)
        if k != "file":
            raise StoreFileError(rel, _describe(rel, k))
        if (st.st_ino, st.st_dev) != (pre.st_ino, pre.st_dev):
            raise StoreFileError(rel, "%s was replaced while it was opened (it is not read)"
                                 % _printable(rel))
        if _NONBLOCK:
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return f, st.st_size


def read_capped(root, rel, cap, what="file"):
    """The bytes of root/rel, a regular file of at most ``cap`` bytes (StoreFileError
    otherwise, before anything is read)."""
    f, size = open_regular(root, rel)
    with f:
        if size > cap:
            raise StoreFileError(rel, "%s is %d bytes, more than the %d bytes a %s can hold "
                                 "(it is not read)" % (_printable(rel), size, cap, what))
        out = bytearray()
        while len(out) <= cap:
            b = f.read(min(1 << 20, cap + 1 - len(out)))
            if not b:
                break
            out += b
        if len(out) > cap:
            raise StoreFileError(rel, "%s grew past %d bytes while it was read"
                                 % (_printable(rel), cap))
        return bytes(out)


def list_dir(root, rel):
    """[(name, kind)] of the directory root/rel (sorted by name), kind as kind_of();
    [] if it does not exist. A symlinked directory on the path raises StoreFileError."""
    parts = _split(rel)
    try:
        dfd = _open_dir_chain(root, parts, rel)
    except FileNotFoundError:
        return []
    out = []
    try:
        with os.scandir(dfd) as it:
            for e in it:
                if len(out) >= MAX_ENTRIES:
                    raise StoreFileError(rel, "%s holds more than %d entries"
                                         % (_printable(rel), MAX_ENTRIES))
                try:
                    k = kind_of(e.stat(follow_symlinks=False).st_mode)
                except OSError:
                    k = "special file"
                out.append((e.name, k))
    finally:
        os.close(dfd)
    out.sort()
    return out
