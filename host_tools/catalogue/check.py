"""`sealcam catalogue check`: the catalogue's database against the station log.

The catalogue is rebuilt from the log into a private in-memory SQLite database, and every
table is compared row by row with the real one (recordings by device and segment, never
by their database ids). A row the log does not make (an edit with SQL access), a row the
log makes that is missing or different, and a log entry the catalogue refuses are each
named. The database is not changed: `sealcam catalogue reindex` rebuilds it.
"""
from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from . import db
from ..i18n import _
from ..records import printable

__all__ = ["check", "rebuild", "compare", "differences", "text", "rows"]

_SHOWN = 20     # differences named per table


def rows(conn, table):
    """The rows of ``table`` as comparable tuples: autoincrement ids left out, recording
    ids replaced by their device and segment."""
    rec = {r.id: (r.device, r.segment) for r in conn.execute(
        sa.select(db.recordings.c.id, db.recordings.c.device, db.recordings.c.segment))}
    cols = [c.name for c in table.columns
            if not (c.name == "id" and c.autoincrement is True and table is not db.holds)]
    out = []
    for r in conn.execute(sa.select(*[table.c[n] for n in cols])).mappings():
        d = dict(r)
        if "recording_id" in d:
            d["recording_id"] = rec.get(d["recording_id"], ("?", d["recording_id"]))
        if d.get("pw_hash"):                  # compared, never printed
            import hashlib
            d["pw_hash"] = "sha256:" + hashlib.sha256(d["pw_hash"].encode()).hexdigest()[:16]
        out.append(tuple((k, _plain(d[k])) for k in cols))
    return sorted(out, key=repr)


def _plain(v):
    return bool(v) if isinstance(v, bool) else v


def rebuild(cat, unarchived=False):
    """A private in-memory Catalogue rebuilt from ``cat``'s station log and the archive's
    verified records (the caller holds the catalogue's lock, or accepts a racing sync).
    The caller closes it: ``fresh.engine.dispose()``. ``fresh.problems`` names the log
    entries the rebuild refused. ``unarchived``: also copy the recordings rows of segments
    the archive does not hold (nothing there can be disposed: Archive.dispose refuses them),
    so a decision on them says what the log says of them."""
    from .store import Catalogue
    fresh = Catalogue.__new__(Catalogue)
    fresh.__dict__.update(cat.__dict__)
    fresh.engine = db.open_engine("sqlite://")
    fresh.problems = []
    try:
        with fresh.engine.begin() as conn:
            conn.execute(db.cat_meta.insert(), [
                {"key": "archive_id", "value": cat.archive.archive_id},
                {"key": "applied", "value": "0"}])
        fresh.refresh_recordings(None)
        if unarchived:
            _copy_unarchived(cat, fresh)
        fresh._sync(refresh=False)
    except BaseException:
        fresh.engine.dispose()
        raise
    return fresh


def _copy_unarchived(cat, fresh):
    r = db.recordings.c
    with fresh.engine.connect() as b:
        have = {(x.device, x.segment) for x in b.execute(sa.select(r.device, r.segment))}
    with cat.engine.connect() as a:
        add = [dict(x) for x in a.execute(sa.select(db.recordings)).mappings()
               if (x["device"], x["segment"]) not in have
               and cat.archive.segment(x["device"], x["segment"]) is None]
    if add:
        with fresh.engine.begin() as b:
            for x in add:
                x.pop("id", None)
                b.execute(db.recordings.insert().values(**x))


def compare(cat, fresh):
    """({table: {"rows", "extra", "missing"}}, [problems]): ``cat``'s database against the
    rebuilt ``fresh`` one, row by row as multisets (a duplicated row is a difference)."""
    tables, problems = {}, []
    with cat.engine.connect() as a, fresh.engine.connect() as b:
        for t in db.metadata.sorted_tables:
            if t is db.cat_meta:
                continue
            have, want = Counter(rows(a, t)), Counter(rows(b, t))
            extra = sorted((have - want).elements(), key=repr)
            missing = sorted((want - have).elements(), key=repr)
            tables[t.name] = {"rows": sum(have.values()), "extra": len(extra),
                              "missing": len(missing)}
            for r in extra[:_SHOWN]:
                problems.append(_("%(table)s: a row the station log does not make: "
                                  "%(row)s") % {"table": t.name,
                                                "row": printable(repr(dict(r)), backslash=False)})
            for r in missing[:_SHOWN]:
                problems.append(_("%(table)s: a row the station log makes is missing or "
                                  "differs: %(row)s") % {"table": t.name,
                                                         "row": printable(repr(dict(r)),
                                                                          backslash=False)})
    return tables, problems


def differences(cat, fresh) -> int:
    """How many rows differ between ``cat``'s database and the rebuilt ``fresh`` one."""
    tables, _p = compare(cat, fresh)
    return sum(t["extra"] + t["missing"] for t in tables.values())


def check(cat) -> dict:
    cat.sync()
    fresh = rebuild(cat)
    try:
        tables, problems = compare(cat, fresh)
    finally:
        fresh.engine.dispose()
    problems += fresh.problems
    return {"database": db.describe_url(cat.url), "log_entries": cat.archive.log().size,
            "tables": tables, "problems": problems}


def text(res) -> str:
    lines = [_("catalogue %(db)s against %(n)d station log entries")
             % {"db": res["database"], "n": res["log_entries"]}]
    for name, t in sorted(res["tables"].items()):
        lines.append("  %-18s %8d %s" % (name, t["rows"], _("rows") if not (
            t["extra"] or t["missing"]) else _("rows, %(extra)d not from the log, %(missing)d "
                                               "missing or different")
            % {"extra": t["extra"], "missing": t["missing"]}))
    lines += ["  " + p for p in res["problems"]]
    lines.append(_("OK: every row is the station log's") if not res["problems"] else
                 _("NOT OK: %(n)d problems; `sealcam catalogue reindex` rebuilds the database "
                   "from the log") % {"n": len(res["problems"])})
    return "\n".join(lines)
