"""Handing a file out of the station (an extract, a disc's images): the register's line
before the file reaches the folder it goes to (SPEC §14.10, §14.11).

    priv = private_dir(out_dir, "extract")     # 0700, in out_dir (same file system)
    ... write into priv, sign copy_made / disc_made and the register's access_used ...
    move_into_place([(priv + "/a.mkv", out_dir + "/a.mkv"), ...])   # never over a name
    remove_private(priv)                       # always, also on failure

A hand-out killed between the two leaves the 0700 folder (`.sealcam-*`) in out_dir, with
no name a user opened: README's threat model says what that binds.
"""
from __future__ import annotations

import os

from ..i18n import _

__all__ = ["private_dir", "move_into_place", "remove_private"]


def _error(msg):
    from .copies import CopyError
    return CopyError(msg)


def private_dir(out_dir, what):
    """A private folder (mode 0700) in ``out_dir`` that what is handed out is written to
    before its register line (moved into place by move_into_place, removed by
    remove_private)."""
    import tempfile
    try:
        return tempfile.mkdtemp(prefix=".sealcam-%s-" % what, dir=out_dir)
    except OSError as e:
        raise _error(_("%(dir)s cannot be written (%(why)s): name another folder")
                     % {"dir": out_dir, "why": e.strerror or e}) from None


def move_into_place(moves):
    """Move each (private path, final path) of ``moves`` into place, never over an
    existing name (all checked first; a hard link where the file system has them, else a
    rename after the check). CopyError if a final name exists."""
    import errno
    for _src, dst in moves:
        if os.path.lexists(dst):
            raise _error(_("%(path)s exists already: name another folder")
                         % {"path": dst})
    for src, dst in moves:
        try:
            os.link(src, dst)
        except FileExistsError:
            raise _error(_("%(path)s exists already: name another folder")
                         % {"path": dst}) from None
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
                raise
            if os.path.lexists(dst):        # no hard links here (FAT): checked, renamed
                raise _error(_("%(path)s exists already: name another folder")
                             % {"path": dst}) from None
            os.rename(src, dst)
        else:
            os.unlink(src)


def remove_private(tmp):
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
