"""Writing into a backup folder (or a new archive) that may be hostile: no symbolic link
is ever followed, every file is written to a temporary name, fsynced and renamed into
place, and what is read back is bounded.

    d = SafeDir("/mnt/offsite/sealcam")        # BackupError if it (or a part) is a link
    d.mkdirs("objects/ab")                     # each component checked, never followed
    d.write("LATEST", b"...")                  # temp + fsync + rename + fsync the folder
    d.copy_from(fileobj, "objects/ab/cd…", mode=0o444, progress=bar.update)
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat

from ..i18n import _

__all__ = ["BackupError", "SafeDir", "BLOCK", "hash_stream", "check_name"]

BLOCK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class BackupError(Exception):
    """A backup or restore refused or impossible: one line naming the file and what to
    do."""


def check_name(rel):
    """``rel`` if it is a relative path of plain components (no '..', no empty part, no
    backslash, no control character), else BackupError."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel or \
            any(ord(c) < 32 or ord(c) == 127 for c in rel) or len(rel) > 1024:
        raise BackupError(_("%(path)r is not a path inside a backup") % {"path": str(rel)[:80]})
    if any(p in ("", ".", "..") for p in rel.split("/")):
        raise BackupError(_("%(path)r is not a path inside a backup") % {"path": rel[:80]})
    return rel


def hash_stream(f, update=None) -> str:
    """SHA-256 (hex) of the rest of the open binary file ``f``, read in 1 MiB blocks;
    ``update(n)`` after each block."""
    hs = hashlib.sha256()
    while True:
        b = f.read(BLOCK)
        if not b:
            break
        hs.update(b)
        if update is not None:
            update(len(b))
    return hs.hexdigest()


class SafeDir:
    """A folder written without following links. ``create``: make it when absent."""

    def __init__(self, root, *, create=False):
        self.root = os.path.abspath(os.fspath(root))
        try:
            st = os.lstat(self.root)
        except FileNotFoundError:
            if not create:
                raise BackupError(_("%(dir)s does not exist") % {"dir": self.root}) from None
            parent = os.path.dirname(self.root)
            if not os.path.isdir(parent):
                raise BackupError(_("%(dir)s does not exist: make it first (a mounted disk)")
                                  % {"dir": parent}) from None
            os.mkdir(self.root, 0o755)
            _fsync_dir(parent)
            st = os.lstat(self.root)
        if stat.S_ISLNK(st.st_mode):
            raise BackupError(_("%(dir)s is a symbolic link: give the real folder (a link is "
                                "never followed)") % {"dir": self.root})
        if not stat.S_ISDIR(st.st_mode):
            raise BackupError(_("%(dir)s is not a folder") % {"dir": self.root})

    def path(self, rel):
        return os.path.join(self.root, *check_name(rel).split("/"))

    def kind(self, rel):
        """"file", "dir", "link", "other" or None (absent) of ``rel``; every folder on
        the way must be a real folder (BackupError otherwise)."""
        parts = check_name(rel).split("/")
        p = self.root
        for i, part in enumerate(parts):
            p = os.path.join(p, part)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(st.st_mode):
                if i == len(parts) - 1:
                    return "link"
                raise BackupError(_("%(path)s is a symbolic link: a backup holds none (it is "
                                    "never followed); remove it")
                                  % {"path": os.path.join(self.root, *parts[:i + 1])})
            if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
                raise BackupError(_("%(path)s is not a folder")
                                  % {"path": os.path.join(self.root, *parts[:i + 1])})
        if stat.S_ISREG(st.st_mode):
            return "file"
        return "dir" if stat.S_ISDIR(st.st_mode) else "other"

    def size(self, rel):
        """The size of regular file ``rel`` (not followed), or None when absent."""
        k = self.kind(rel)
        if k is None:
            return None
        if k != "file":
            raise BackupError(_("%(path)s is not a regular file (%(kind)s): a backup holds "
                                "only regular files; remove it") % {"path": self.path(rel),
                                                                    "kind": k})
        return os.lstat(self.path(rel)).st_size

    def mkdirs(self, rel):
        """Make folder ``rel`` and its parents (each checked: no link, no file)."""
        parts = check_name(rel).split("/")
        p = self.root
        for i in range(len(parts)):
            sub = "/".join(parts[:i + 1])
            k = self.kind(sub)
            p = os.path.join(p, parts[i])
            if k is None:
                try:
                    os.mkdir(p, 0o755)
                except FileExistsError:
                    pass
                _fsync_dir(os.path.dirname(p))
            elif k != "dir":
                raise BackupError(_("%(path)s is in the way: a %(kind)s where a folder "
                                    "belongs (a link is never followed); remove it")
                                  % {"path": p, "kind": k})
        return p

    def listdir(self, rel=None):
        """[(name, kind)] of folder ``rel`` (the root: None), sorted."""
        p = self.root if rel is None else self.path(rel)
        if rel is not None and self.kind(rel) != "dir":
            return []
        out = []
        with os.scandir(p) as it:
            for e in it:
                k = "link" if e.is_symlink() else "dir" if e.is_dir(follow_symlinks=False) \
                    else "file" if e.is_file(follow_symlinks=False) else "other"
                out.append((e.name, k))
        out.sort()
        return out

    def _tmp(self, rel):
        d, _s, name = check_name(rel).rpartition("/")
        if d:
            self.mkdirs(d)
        return os.path.join(self.root, *(d.split("/") if d else [])), name

    def open_new(self, rel):
        """(file open for binary writing at a fresh temporary name beside ``rel``, that
        temporary path)."""
        folder, name = self._tmp(rel)
        tmp = os.path.join(folder, ".tmp-%d-%s" % (os.getpid(), name[:40]))
        try:
            os.unlink(tmp)                  # a leftover of an interrupted run
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        return os.fdopen(fd, "wb"), tmp

    def install(self, tmp, rel, mode=0o644):
        """Rename the written temporary file ``tmp`` to ``rel`` (replacing a regular file
        there, never a link or a folder)."""
        k = self.kind(rel)
        if k not in (None, "file"):
            os.unlink(tmp)
            raise BackupError(_("%(path)s is in the way (a %(kind)s): remove it")
                              % {"path": self.path(rel), "kind": k})
        os.chmod(tmp, mode)
        os.replace(tmp, self.path(rel))

    def write(self, rel, data: bytes, mode=0o644, sync_dir=True):
        f, tmp = self.open_new(rel)
        with f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.install(tmp, rel, mode)
        if sync_dir:
            _fsync_dir(os.path.dirname(self.path(rel)))

    def copy_from(self, src, rel, mode=0o644, progress=None, limit=None):
        """Copy the open binary file ``src`` (from its position, at most ``limit`` bytes)
        to a temporary file beside ``rel``, fsynced: (temporary path, bytes, SHA-256 hex of
        what was written). The caller checks, then ``install``s or removes it."""
        f, tmp = self.open_new(rel)
        hs = hashlib.sha256()
        n = 0
        try:
            with f:
                while limit is None or n < limit:
                    b = src.read(BLOCK if limit is None else min(BLOCK, limit - n))
                    if not b:
                        break
                    f.write(b)
                    hs.update(b)
                    n += len(b)
                    if progress is not None:
                        progress(len(b))
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return tmp, n, hs.hexdigest()

    def sync(self, rel=None):
        _fsync_dir(self.root if rel is None else self.path(rel))


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise BackupError(_("%(path)s is not a folder (a link is never followed)")
                              % {"path": path}) from None
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_nofollow(path):
    """(binary file, size) of the regular file ``path``, its last component never followed
    (the archive's own objects: the station wrote them)."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BackupError(_("%(path)s is not a regular file") % {"path": path})
    return os.fdopen(fd, "rb"), st.st_size
