"""`sealcam catalogue check`: the catalogue's database against the station log.

The catalogue is rebuilt from the log into a private in-memory SQLite database, and every
table is compared row by row with the real one (recordings by device and segment, never
by their database ids). A row the log does not make (an edit with SQL access), a row the
log makes that is missing or different, and a log entry the catalogue refuses are each
named. The database is not changed: `sealcam catalogue reindex` rebuilds it.
"""
from __future__ import annotations

import sqlalchemy as sa

from . import db
from ..i18n import _

__all__ = ["check", "text", "rows"]

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


def check(cat) -> dict:
    from .store import Catalogue
    cat.sync()
    fresh = Catalogue.__new__(Catalogue)
    fresh.__dict__.update(cat.__dict__)
    fresh.engine = db.open_engine("sqlite://")
    fresh.problems = []
    problems = []
    try:
        with fresh.engine.begin() as conn:
            conn.execute(db.cat_meta.insert(), [
                {"key": "archive_id", "value": cat.archive.archive_id},
                {"key": "applied", "value": "0"}])
        fresh.refresh_recordings(None)
        fresh._sync(refresh=False)
        tables = {}
        with cat.engine.connect() as a, fresh.engine.connect() as b:
            for t in db.metadata.sorted_tables:
                if t is db.cat_meta:
                    continue
                have, want = rows(a, t), rows(b, t)
                extra = [r for r in have if r not in set(want)]
                missing = [r for r in want if r not in set(have)]
                tables[t.name] = {"rows": len(have), "extra": len(extra),
                                  "missing": len(missing)}
                for r in extra[:_SHOWN]:
                    problems.append(_("%(table)s: a row the station log does not make: "
                                      "%(row)s") % {"table": t.name, "row": dict(r)})
                for r in missing[:_SHOWN]:
                    problems.append(_("%(table)s: a row the station log makes is missing or "
                                      "differs: %(row)s") % {"table": t.name, "row": dict(r)})
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
