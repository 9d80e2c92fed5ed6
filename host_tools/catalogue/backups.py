"""Backups in the catalogue (R14; SPEC §14.12): each `sealcam backup` is a `backup_made`
event naming the checkpoint (log size and root hash) the backup holds; the report says
when the last one is older than station.toml `[backup] max_age_days` (default 31) or
there is none.

    backup_made {destination, snapshot, log_size, root, objects, objects_new, bytes_new,
                 manifest}

``manifest`` is the SHA-256 of the snapshot's manifest.json: the backup's log ends with
this event, so a restore that verifies the log's signed checkpoint trusts the manifest
through it (host_tools/backup/restore.py).

check() holds on replay too: the root must be the station log's own root over its first
``log_size`` entries (a backup of this log, not of another one), counts whole and sane.

    backup_status(cat) -> {"last": {...} | None, "overdue": bool, "days_since": int | None,
                           "max_age_days": int}
"""
from __future__ import annotations

import datetime as _dt
import re

import sqlalchemy as sa

from . import db, store
from ..i18n import _
from .events import TEXT_MAX, base, field

__all__ = ["made_event", "backup_status", "status_of", "DEFAULT_MAX_AGE_DAYS", "history"]

DEFAULT_MAX_AGE_DAYS = 31           # R14: monthly
COUNT_MAX = (1 << 63) - 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SNAPSHOT = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9]{1,18}")


def made_event(*, destination, snapshot, log_size, root, objects, objects_new, bytes_new,
               manifest=None):
    return base("backup_made", None, None, destination=destination, snapshot=snapshot,
                log_size=log_size, root=root, objects=objects, objects_new=objects_new,
                bytes_new=bytes_new, manifest=manifest)


@store.handles("backup_made", permission="backup")
class _Made:
    @staticmethod
    def check(cat, conn, e):
        dest = field(e, "destination", str, max_len=TEXT_MAX)
        if not dest.startswith("/"):
            raise store.CatalogueError(_("a backup names the absolute path of its folder"))
        if not _SNAPSHOT.fullmatch(field(e, "snapshot", str, max_len=40)):
            raise store.CatalogueError(_("a backup names its snapshot (YYYYMMDDTHHMMSSZ-SIZE)"))
        counts = [field(e, k, int) for k in ("log_size", "objects", "objects_new",
                                             "bytes_new")]
        if any(not 0 <= c <= COUNT_MAX for c in counts) or counts[2] > counts[1]:
            raise store.CatalogueError(_("a backup's counts are whole numbers, at most as many "
                                         "new objects as objects"))
        root = field(e, "root", str, max_len=64)
        man = field(e, "manifest", str, optional=True, max_len=64)   # older events: none
        if man is not None and not _HEX64.fullmatch(man):
            raise store.CatalogueError(_("a backup names its manifest's SHA-256 (64 hex "
                                         "digits)"))
        lg = cat.archive.log()
        size = counts[0]
        if not _HEX64.fullmatch(root) or size > lg.size or lg.root(size).hex() != root:
            raise store.CatalogueError(
                _("the backup's checkpoint (%(size)d entries, root %(root)s) is not one of "
                  "this station log's own") % {"size": size, "root": root[:16]})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.backups.insert().values(
            id=i, destination=e["destination"], snapshot=e["snapshot"],
            log_size=e["log_size"], root=e["root"],
            objects=e["objects"], objects_new=e["objects_new"], bytes_new=e["bytes_new"],
            by_user=e["by"], at=e["at"]))


def _when(at):
    try:
        t = _dt.datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def status_of(last, max_age_days, now=None):
    """The status dict from the last backups row (a dict or None)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    out = {"last": last, "overdue": True, "days_since": None, "max_age_days": max_age_days}
    if last is not None:
        t = _when(last["at"])
        if t is not None:
            age = (now - t).total_seconds()
            out["days_since"] = max(0, int(age // 86400))
            out["overdue"] = age > max_age_days * 86400
    return out


def backup_status(cat, now=None) -> dict:
    """{"last": the newest backup (id, destination, log_size, root, objects, objects_new,
    bytes_new, by_user, at) or None, "overdue": no backup, or the last is older than
    [backup] max_age_days, "days_since": whole days since it (None: none),
    "max_age_days"}."""
    cat.sync()
    try:
        max_age = int(cat.config.values.get("backup", {}).get("max_age_days",
                                                               DEFAULT_MAX_AGE_DAYS))
    except (TypeError, ValueError):
        max_age = DEFAULT_MAX_AGE_DAYS
    with cat.engine.connect() as conn:
        row = conn.execute(sa.select(db.backups).order_by(db.backups.c.id.desc())
                           .limit(1)).mappings().first()
    return status_of(dict(row) if row is not None else None, max_age, now)


def history(cat, limit=100):
    """The newest ``limit`` backups, newest first."""
    cat.sync()
    with cat.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(db.backups).order_by(
            db.backups.c.id.desc()).limit(limit)).mappings()]
