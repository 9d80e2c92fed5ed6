"""The report's custody section (R14 backups, R9/R21 handover; SPEC §14.12, §14.13): what
`sealcam report` says about the archive as a whole rather than about records.

    c = custody(archive_dir, catalogue_url=None, count=True)
    c["section"]    # {"backup": backups.backup_status(...), "without_successor": [...],
                    #  "pending_handovers": int}, or None (not in clerk use)
    c["problems"]   # [{"device": None, "seq": None, "kind", "message"}]
    c["notes"]      # [str]

The section is made when the archive is in clerk use (its station log holds a user): a
backup is recorded by a user with the `backup` permission and a handover by users, so an
archive without users has neither to judge. Problems (only when ``count``: the report is
not filtered to some records):

    backup_missing   no backup was ever recorded
    backup_overdue   the last backup is older than station.toml [backup] max_age_days
    no_successor     an open case or an active hold whose keeper is no longer active
"""
from __future__ import annotations

import mmap
import os

from .i18n import N_

__all__ = ["custody", "in_clerk_use", "KINDS"]

KINDS = ("backup_missing", "backup_overdue", "no_successor")

MSG_MISSING = N_("archive: no backup of the archive was ever made (R14: monthly, off site): "
               "run `sealcam backup --archive %(archive)s --to DIR`")
MSG_OVERDUE = N_("archive: the last backup (%(at)s, to %(dest)s) is %(days)s days old, more "
               "than %(max)s days ([backup] max_age_days; R14): run `sealcam backup "
               "--archive %(archive)s --to DIR`")
MSG_CASE = N_("case %(id)s is kept by %(keeper)s, who is no longer active, and has no "
            "successor: `sealcam handover offer --from %(keeper)s --to USER`")
MSG_HOLD = N_("hold %(id)s is kept by %(keeper)s, who is no longer active, and has no "
            "successor: `sealcam handover offer --from %(keeper)s --to USER`")
MSG_FILTERED = N_("custody: %(n)s problem(s) of the whole archive (backups, handovers) are "
                 "listed by the unfiltered report")
MSG_OFFERED = N_("%(kind)s %(id)s is kept by %(keeper)s, who is no longer active; handover "
               "%(handover)s to %(to)s is not accepted yet")


def in_clerk_use(archive_dir) -> bool:
    """Whether the archive's station log holds a `user_added` entry (a byte search)."""
    from .safeio import StoreFileError, open_regular
    try:
        f, size = open_regular(os.fspath(archive_dir), "log/entries")
    except (FileNotFoundError, StoreFileError, OSError):
        return False
    with f:
        if not size:
            return False
        try:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                return m.find(b"user_added") >= 0
        except (ValueError, OSError):
            return False


def custody(archive_dir, catalogue_url=None, count=True) -> dict:
    out = {"section": None, "problems": [], "notes": []}
    if not in_clerk_use(archive_dir):
        return out
    from .archive import ArchiveError
    from .catalogue import backups, handover
    from .catalogue.db import CatalogueDBError
    from .catalogue.store import Catalogue, CatalogueError
    from .stationconfig import StationConfigError
    from sqlalchemy.exc import SQLAlchemyError
    try:
        with Catalogue(archive_dir, catalogue_url, readonly=True) as cat:
            status = backups.backup_status(cat)
            orphans = handover.without_successor(cat)
            pend = len(handover.pending(cat))
    except (CatalogueError, CatalogueDBError, ArchiveError, StationConfigError,
            SQLAlchemyError, OSError) as e:
        out["notes"].append("custody (backups, handovers) not checked: %s"
                            % str(e).splitlines()[0][:300])
        return out
    root = os.path.abspath(os.fspath(archive_dir))
    out["section"] = {"backup": status, "without_successor": orphans,
                      "pending_handovers": pend}
    probs = []
    last = status["last"]
    if last is None:
        probs.append(("backup_missing", MSG_MISSING % {"archive": root}))
    elif status["overdue"]:
        probs.append(("backup_overdue", MSG_OVERDUE % {
            "at": last["at"], "dest": last["destination"], "days": status["days_since"],
            "max": status["max_age_days"], "archive": root}))
    for o in orphans:
        vals = dict(o, to=o["offered_to"])
        if o["offered_to"]:
            msg = MSG_OFFERED % vals
        else:
            msg = (MSG_CASE if o["kind"] == "case" else MSG_HOLD) % vals
        probs.append(("no_successor", msg))
    if count:
        out["problems"] = [{"device": None, "seq": None, "kind": k, "message": m}
                           for k, m in probs]
    elif probs:
        out["notes"].append(MSG_FILTERED % {"n": len(probs)})
    return out


def text_lines(section) -> list:
    """The custody section of the text report (in the user's language)."""
    from .i18n import _
    from .records import printable
    if section is None:
        return []
    out = ["", _("CUSTODY (R14 backups, R21 handover)")]
    b = section["backup"]
    last = b["last"]
    if last is None:
        out.append("  " + _("backup: none was ever made (at most %(max)d days apart)")
                   % {"max": b["max_age_days"]})
    else:
        out.append("  " + _("backup: last %(at)s by %(by)s to %(dest)s (snapshot %(snap)s, "
                            "log %(size)d entries), %(days)d days ago; at most %(max)d days "
                            "apart: %(state)s")
                   % {"at": last["at"], "by": last["by_user"], "dest": last["destination"],
                      "snap": last.get("snapshot") or "-", "size": last["log_size"],
                      "days": b["days_since"] or 0, "max": b["max_age_days"],
                      "state": _("OVERDUE") if b["overdue"] else _("on time")})
    orph = section["without_successor"]
    out.append("  " + _("without a successor: %(n)d; handovers not accepted yet: %(p)d")
               % {"n": len(orph), "p": section["pending_handovers"]})
    for o in orph:
        out.append("    " + printable("%s %s: %s" % (o["kind"], o["id"], o["keeper"]),
                                      backslash=False))
    return out
