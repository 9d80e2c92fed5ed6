"""Off-site backups of the archive and their restore (R14; SPEC §14.12).

    from host_tools.backup import backup, restore, backup_status
    backup(cat, user, "/mnt/offsite", progress=None)   # backup.py: `sealcam backup`
    restore("/mnt/offsite", "/srv/new", progress=None)  # restore.py: `sealcam restore`
    backup_status(cat)                                  # catalogue/backups.py: the report's

    safefs   writing into a folder that may be hostile (no link followed, atomic files)
    progress a tqdm bar on a terminal, or a callable (the desk, --json)
    readme   DIR/README.txt in English and Chinese: restoring, how the keys travel
    backup   the copy, its snapshot and the backup_made event
    restore  into a new, empty folder, every file and object checked
    cli      the two verbs
"""
from __future__ import annotations

from .backup import BackupError, backup      # (light: the catalogue is imported when used)
from .restore import restore

__all__ = ["backup", "restore", "backup_status", "BackupError"]


def __getattr__(name):
    if name == "backup_status":
        from ..catalogue.backups import backup_status
        return backup_status
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
