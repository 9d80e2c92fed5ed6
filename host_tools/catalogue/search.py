"""`sealcam search`: the catalogue's recordings by any filter, newest first (issue 11 item 4).

    f = Filters(officer="012345", date_from=date(2026, 3, 1), interruption="unstated")
    rows = search(engine_or_connection, f, limit=50, offset=0)
    print(as_table(rows))            # or as_json(rows, f), as_csv(rows)

    add_arguments(parser)            # the filter options, shared with `sealcam report`
    f = filters_from_args(args)

Each filter narrows the list; all given filters must hold (AND). No filter lists every
recording. Order: start_ms descending (the REC_START's RTC; every verified REC_START has
one), then the catalogue id descending.

    device          one of these device ids (--device, repeatable)
    officer         the officer assigned when the recording started (recordings.officer)
    date_from/_to   UTC days, both inclusive, on which the recording started (start_ms),
                    the report's day rule (report_items._day_ms)
    party, place, event_type, item_class
                    a current metadata value (tags: field, value, current) equal to it,
                    on the recording or on a span of it; superseded values do not match
    case            the recording is filed into this case (case_items, current) or carries
                    it as its case-number metadata (tags field "case", current)
    archive_number  the number resolves to this recording (number_items)
    note            a current note containing this text, ASCII letters case-insensitive
                    (LIKE on SQLite, ILIKE on PostgreSQL: the same for ASCII)
    interruption    "any": at least one interruption; "stated": at least one with the
                    officer's statement; "unstated": at least one missing or unexplained
                    (recordings.py states which segment an interruption belongs to)
    mark            "important" | "notice" | "bookmark": at least one MARK of that kind
    state           "complete" | "partial" | "disposed"
    retention       "ordinary" | "long_term" | "permanent": the class retention_rules
                    gives it (the longest wins: a retention_class tag, an event_type tag
                    of the station's permanent / long-term types, a case tag or filing,
                    an IMPORTANT mark), stated here in SQL; ``retention_types`` of search()
                    are the station's (permanent_event_types, long_term_event_types)

Each row: the recordings columns (recordings.py), "start" and "end" (UTC ISO), and for
the page only "party", "place", "event_type", "item_class", "note" (current values,
sorted lists), "cases" and "archive_numbers" (sorted lists).

Hot filters use indexed columns only: recordings (start_ms), (device, start_ms), (officer,
start_ms); tags (field, value) and (recording_id, field); number_items (number);
case_items (case_no) and (recording_id); the counts (interruptions, statements, unstated,
marks_*) and state are read while walking the start_ms index, newest first, which stops
after ``limit`` rows. How each metadata filter is planned is said above _tag_cond.
Measured on 1,000,000 recordings (tests/bench/search.py; `make bench`): p95 of a page of
50 under 30 ms for every kind of filter on SQLite, under 40 ms on PostgreSQL.

The forms (as_table, as_json, as_csv) and the command line (add_arguments,
filters_from_args, add_command_arguments, run) live in search_forms and are re-exported.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Optional

import sqlalchemy as sa

from ..i18n import _
from ..records import printable
from ..report_items import DAY_MS, _as_date, _day_ms, _iso, ReportError
from . import db, itemcatalogue

__all__ = ["Filters", "SearchError", "search", "add_arguments", "filters_from_args",
           "as_table", "as_json", "as_csv", "CSV_COLUMNS", "FORMAT", "TAG_FIELDS",
           "INTERRUPTION", "MARKS", "STATES", "RETENTION", "add_command_arguments", "run",
           "matching", "retention_types"]

FORMAT = "sealcam-search-1"
INTERRUPTION = ("any", "stated", "unstated")
MARKS = {"important": "marks_important", "notice": "marks_notice",
         "bookmark": "marks_bookmark"}
STATES = ("complete", "partial", "disposed")
RETENTION = ("ordinary", "long_term", "permanent")      # retention_rules.CLASSES
TAG_FIELDS = ("party", "place", "event_type", "item_class")   # exact, current values
EXTRA_FIELDS = TAG_FIELDS + ("note",)
MAX_TEXT = 128                 # characters of a filter value (events.NAME_MAX)
MAX_DEVICES = 500
MAX_LIMIT = 10_000_000
_PAGE = 500                    # ids per query when the page's metadata is read


class SearchError(ValueError):
    """A filter that cannot be used (one line naming the option and what it takes)."""


@dataclasses.dataclass
class Filters:
    device: list = dataclasses.field(default_factory=list)
    officer: Optional[str] = None
    date_from: Optional[_dt.date] = None
    date_to: Optional[_dt.date] = None
    party: Optional[str] = None
    place: Optional[str] = None
    event_type: Optional[str] = None
    case: Optional[str] = None
    archive_number: Optional[str] = None
    item_class: Optional[str] = None
    note: Optional[str] = None
    interruption: Optional[str] = None
    mark: Optional[str] = None
    state: Optional[str] = None
    retention: Optional[str] = None

    def checked(self) -> "Filters":
        """A copy with dates as dates; SearchError for a value no recording can have."""
        dev = self.device
        f = dataclasses.replace(self, device=[dev] if isinstance(dev, str) else list(dev or []))
        if len(f.device) > MAX_DEVICES:
            raise SearchError(_("--device: at most %(n)d devices") % {"n": MAX_DEVICES})
        for d in f.device:
            _text("--device", d)
        for name in ("officer", "party", "place", "event_type", "case", "archive_number",
                     "item_class", "note"):
            _text("--" + name.replace("_", "-"), getattr(f, name))
        for name, allowed in (("interruption", INTERRUPTION), ("mark", tuple(MARKS)),
                              ("state", STATES), ("retention", RETENTION)):
            v = getattr(f, name)
            if v is not None and v not in allowed:
                raise SearchError(_("--%(option)s: %(value)s is not one of %(allowed)s")
                                  % {"option": name, "value": printable(repr(v)),
                                     "allowed": ", ".join(allowed)})
        if f.item_class is not None:         # "1-9", "场景类": as `sealcam tag` stores them
            ic = itemcatalogue.normalize(f.item_class)
            if ic is None:
                raise SearchError(_("--item-class: %(value)s is not an item of the catalogue "
                                    "(001-01 to 001-13) nor a record class (scene, interview, "
                                    "confirmation)") % {"value": printable(f.item_class)})
            f.item_class = ic
        try:
            f.date_from = _as_date(f.date_from, "--from")
            f.date_to = _as_date(f.date_to, "--to")
        except ReportError as e:
            raise SearchError(str(e)) from None
        if f.date_from and f.date_to and f.date_from > f.date_to:
            raise SearchError(_("--from %(from)s is after --to %(to)s")
                              % {"from": f.date_from, "to": f.date_to})
        return f

    def given(self) -> dict:
        """The filters that are set, as JSON values."""
        out = {}
        for k, v in dataclasses.asdict(self).items():
            if v is None or v == []:
                continue
            out[k] = v.isoformat() if isinstance(v, _dt.date) else v
        return out


def _text(option, v):
    if v is None:
        return
    if not isinstance(v, str) or not v or len(v) > MAX_TEXT or any(
            ord(c) < 32 or 127 <= ord(c) < 160 for c in v):
        raise SearchError(_("%(option)s: not a value a recording can have: %(value)s (1 to "
                            "%(max)d characters, no control character)")
                          % {"option": option, "value": printable(repr(v))[:80],
                             "max": MAX_TEXT})


# --- the query ---------------------------------------------------------------------------
#
# A metadata value matched by many recordings (an event type) is found by walking the
# recordings newest first and probing tags (recording_id, field) for each: the walk stops
# after one page. A value matched by few (a party, a case) is looked up in tags (field,
# value) and only its recordings are sorted. Which of the two is decided per value by
# counting its tags, up to WALK_FROM, on the (field, value) index. A note (a substring,
# which no index serves) is first looked for among the NOTE_WINDOW newest recordings that
# match the other filters (walking, as above); when they do not fill the page, in every
# current note. Each way gives the same rows: the plans differ, the conditions do not.

WALK_FROM = 5000        # tags of one value from which its recordings are found by walking
NOTE_WINDOW = 5000      # newest recordings in which a note is looked for first
_NOTE_FIRST_MAX = 1000  # limit + offset up to which the window is tried


def _tag_cond(field, value, *, walk, like=None):
    t, rec = db.tags.c, db.recordings.c
    cond = [t.field == field, t.current == sa.true()]
    cond.append(like if like is not None else t.value == value)
    if walk:
        # OFFSET 0 keeps PostgreSQL from turning the probe into a (hash or parallel) semi
        # join over every tag of the value: it stays a probe per recording walked
        return sa.exists(sa.select(sa.literal(1)).where(t.recording_id == rec.id, *cond)
                         .offset(0))
    return rec.id.in_(_tag_ids(field, value, like))


def _tag_ids(field, value, like=None):
    t = db.tags.c
    return sa.select(t.recording_id).where(
        t.field == field, t.current == sa.true(),
        like if like is not None else t.value == value)


def _many(conn, field, value):
    """Whether at least WALK_FROM tags hold ``value`` in ``field``, superseded ones
    included (an estimate for the plan, counted on the (field, value) index alone)."""
    t = db.tags.c
    sub = sa.select(sa.literal(1)).where(t.field == field, t.value == value).limit(
        WALK_FROM).subquery()
    return conn.execute(sa.select(sa.func.count()).select_from(sub)).scalar() >= WALK_FROM


def _note_like(conn, text, v=None):
    """The note condition on tags.value (or ``v``): ASCII letters case-insensitive on both
    databases (SQLite's LIKE is; PostgreSQL's ILIKE is)."""
    v = db.tags.c.value if v is None else v
    if conn.dialect.name == "sqlite":
        return v.contains(text, autoescape=True)
    return v.icontains(text, autoescape=True)


def where_clauses(conn, f: Filters, types=None, after=None) -> list:
    """The SQL conditions on db.recordings of the checked filters ``f``, but the note."""
    rec = db.recordings.c
    w = []
    if f.device:
        w.append(rec.device.in_(sorted(set(f.device))))
    if f.officer is not None:
        w.append(rec.officer == f.officer)
    if f.date_from:
        w.append(rec.start_ms >= _day_ms(f.date_from))
    if f.date_to:
        w.append(rec.start_ms < _day_ms(f.date_to) + DAY_MS)
    for name in TAG_FIELDS:
        v = getattr(f, name)
        if v is None:
            continue
        if name == "item_class" and v in itemcatalogue.CLASSES:
            # a record class: recordings tagged with the class or any item of it (R18)
            vals = [v] + itemcatalogue.items_of_class(v)
            w.append(_tag_cond(name, v, walk=True, like=db.tags.c.value.in_(vals)))
        else:
            w.append(_tag_cond(name, v, walk=_many(conn, name, v)))
    if f.case is not None:
        ci = db.case_items.c
        # one IN over a UNION: an OR of two INs is a scan of every recording on PostgreSQL
        w.append(rec.id.in_(sa.union(
            sa.select(ci.recording_id).where(ci.case_no == f.case, ci.kind == "recording",
                                             ci.current == sa.true()),
            _tag_ids("case", f.case))))
    if f.archive_number is not None:
        ni = db.number_items.c
        w.append(rec.id.in_(sa.select(ni.recording_id).where(ni.number == f.archive_number)))
    if f.interruption is not None:
        col = {"any": rec.interruptions, "stated": rec.statements,
               "unstated": rec.unstated}[f.interruption]
        w.append(col > 0)
    if f.mark is not None:
        w.append(getattr(rec, MARKS[f.mark]) > 0)
    if f.state is not None:
        w.append(rec.state == f.state)
    if f.retention is not None:
        w.extend(_retention(f.retention, *(types or _default_types())))
    if after is not None:
        # a range on start_ms (the index walks from it), then the ties by id
        w.append(rec.start_ms <= after[0])
        w.append(sa.or_(rec.start_ms < after[0], rec.id < after[1]))
    return w


def _default_types():
    from ..stationconfig import DEFAULT_PERMANENT_TYPES
    return DEFAULT_PERMANENT_TYPES, ()


def _probe(q):
    """EXISTS (q) kept a probe per recording (see _tag_cond)."""
    return sa.exists(q.offset(0))


def _permanent(r, permanent_types):
    """Whether the recording of columns ``r`` (id, marks_important) is permanent."""
    t, ci = db.tags.c, db.case_items.c
    one = sa.select(sa.literal(1))
    # one probe of the recording's current tags says whether any of them makes it permanent
    why = [sa.and_(t.field == "retention_class", t.value == "permanent"), t.field == "case"]
    if permanent_types:
        why.append(sa.and_(t.field == "event_type",
                           t.value.in_(sorted(set(permanent_types)))))
    return sa.or_(r.marks_important > 0,
                  _probe(one.where(t.recording_id == r.id, t.current == sa.true(),
                                   sa.or_(*why))),
                  _probe(one.select_from(db.case_items).where(
                      ci.recording_id == r.id, ci.current == sa.true(),
                      ci.kind == "recording")))


def _retention(klass, permanent_types, long_term_types):
    """[conditions] of the recordings of retention class ``klass``: retention_rules'
    assess_rows rule in SQL (tests/test_search.py holds the two to the same answer)."""
    t, rec = db.tags.c, db.recordings.c
    long_ids = [sa.select(t.recording_id).where(t.current == sa.true(),
                                                t.field == "retention_class",
                                                t.value == "long_term")]
    if long_term_types:
        long_ids.append(sa.select(t.recording_id).where(
            t.current == sa.true(), t.field == "event_type",
            t.value.in_(sorted(set(long_term_types)))))
    long_term = rec.id.in_(sa.union(*long_ids) if len(long_ids) > 1 else long_ids[0])
    if klass == "permanent":
        return [_permanent(rec, permanent_types)]
    if klass == "long_term":      # few: found by their tags, then checked newest first
        return [long_term, _Late(lambda r: sa.not_(_permanent(r, permanent_types)))]
    return [sa.not_(_permanent(rec, permanent_types)), sa.not_(long_term)]


class _Late:
    """A condition checked only on the rows that reach it, newest first (see _select)."""

    def __init__(self, make):
        self.make = make              # make(columns of id, start_ms, marks_important)


def _split(cond):
    return ([c for c in cond if not isinstance(c, _Late)],
            [c for c in cond if isinstance(c, _Late)])


def _select(cond, limit, offset):
    """The ids of the page: only indexed columns are read when the conditions allow. Late
    conditions are checked on the others' rows in order, until the page is full (OFFSET 0
    keeps the sorted rows a subquery of its own on PostgreSQL)."""
    now, late = _split(cond)
    rec = db.recordings.c
    if late:
        c = sa.select(rec.id, rec.start_ms, rec.marks_important).where(*now).order_by(
            rec.start_ms.desc(), rec.id.desc()).offset(0).subquery("c").c
        q = sa.select(c.id).where(*[x.make(c) for x in late]).order_by(c.start_ms.desc(),
                                                                        c.id.desc())
    else:
        q = sa.select(rec.id).where(*now).order_by(rec.start_ms.desc(), rec.id.desc())
    if limit is not None:
        q = q.limit(limit)
    return q.offset(offset) if offset else q


_EVERY = object()      # matching(): no clearance applies (the report's own rules do)


def _ids(conn, f, limit, offset, types=None, after=None, viewer=_EVERY):
    cond = where_clauses(conn, f, types, after)
    if viewer is not _EVERY:       # R16: what the viewer may not see does not exist for it
        from .confidentiality import visible_clause
        cond.append(visible_clause(viewer, conn))
    if f.note is None:
        return [r[0] for r in conn.execute(_select(cond, limit, offset))]
    like = _note_like(conn, f.note)
    if limit is not None and limit + offset <= _NOTE_FIRST_MAX:
        rec = db.recordings.c
        bound = conn.execute(sa.select(rec.start_ms).where(*_split(cond)[0]).order_by(
            rec.start_ms.desc(), rec.id.desc()).limit(1).offset(NOTE_WINDOW)).first()
        near = cond + [_tag_cond("note", None, walk=True, like=like)]
        if bound is not None and bound[0] is not None:
            near.append(rec.start_ms >= bound[0])
        rows = [r[0] for r in conn.execute(_select(near, limit, offset))]
        # exact when the page is full (every match outside is older) or nothing is outside
        if len(rows) == limit or bound is None:
            return rows
    # every current note: the matching texts first, read from the (field, value) index
    # alone, then the tags holding them
    nv = db.tags.alias("nv")
    texts = sa.select(nv.c.value).where(nv.c.field == "note", _note_like(conn, f.note,
                                                                          nv.c.value))
    t = db.tags.c
    ids = sa.select(t.recording_id).where(t.field == "note", t.current == sa.true(),
                                          t.value.in_(texts))
    return [r[0] for r in conn.execute(_select(cond + [db.recordings.c.id.in_(ids)],
                                               limit, offset))]


def search(conn_or_engine, filters: Filters, limit=50, offset=0, *,
           retention_types=None, after=None, viewer=None) -> list:
    """The recordings matching ``filters``, newest first: ``limit`` of them (None: all)
    after skipping ``offset``; each a dict (see the module doc). ``retention_types``:
    (permanent_event_types, long_term_event_types) of the station (retention_rules.settings;
    None: stationconfig's defaults). ``after``: (start_ms, id) of the last row of the
    previous page: the next page starts after it (a long list read page by page without
    an ever larger offset). ``viewer``: the users.User searching, or its clearance; None:
    the default clearance (internal). Recordings above it are left out (R16; SPEC §14.8).
    Raises SearchError."""
    f = filters.checked()
    if after is not None and not (isinstance(after, tuple) and len(after) == 2
                                  and all(type(x) is int for x in after)):
        raise SearchError(_("after: (start_ms, id) of a row"))
    if limit is not None and (type(limit) is not int or not 0 <= limit <= MAX_LIMIT):
        raise SearchError(_("--limit: a whole number from 0 to %(max)d")
                          % {"max": MAX_LIMIT})
    if type(offset) is not int or offset < 0:
        raise SearchError(_("--offset: a whole number of at least 0"))
    if isinstance(conn_or_engine, sa.engine.Engine):
        with conn_or_engine.connect() as conn:
            return _run(conn, f, limit, offset, retention_types, after, viewer)
    return _run(conn_or_engine, f, limit, offset, retention_types, after, viewer)


def matching(conn_or_engine, filters: Filters, *, retention_types=None) -> set:
    """{(device, segment)} of every recording matching ``filters``: how `sealcam report`
    narrows its items to the recordings the same filters select."""
    f = filters.checked()
    rec = db.recordings
    if isinstance(conn_or_engine, sa.engine.Engine):
        with conn_or_engine.connect() as conn:
            return matching(conn, f, retention_types=retention_types)
    ids = _ids(conn_or_engine, f, None, 0, retention_types)
    out = set()
    for i in range(0, len(ids), _PAGE):
        out.update((d, s) for d, s in conn_or_engine.execute(
            sa.select(rec.c.device, rec.c.segment).where(rec.c.id.in_(ids[i:i + _PAGE]))))
    return out


def _run(conn, f, limit, offset, types=None, after=None, viewer=None):
    ids = _ids(conn, f, limit, offset, types, after, viewer)
    rec = db.recordings
    by_id = {}
    for i in range(0, len(ids), _PAGE):
        for r in conn.execute(sa.select(rec).where(rec.c.id.in_(ids[i:i + _PAGE]))):
            by_id[r.id] = dict(r._mapping)
    rows = [by_id[i] for i in ids]
    for r in rows:
        r["start"], r["end"] = _iso(r["start_ms"]), _iso(r["end_ms"])
        for k in EXTRA_FIELDS:
            r[k] = []
        r["cases"], r["archive_numbers"] = [], []
    t, ci, ni = db.tags.c, db.case_items.c, db.number_items.c
    for i in range(0, len(ids), _PAGE):
        part = ids[i:i + _PAGE]
        for rid, field, value in conn.execute(
                sa.select(t.recording_id, t.field, t.value).where(
                    t.recording_id.in_(part), t.current == sa.true(),
                    t.field.in_(EXTRA_FIELDS + ("case",)))):
            by_id[rid]["cases" if field == "case" else field].append(value)
        for rid, case_no in conn.execute(sa.select(ci.recording_id, ci.case_no).where(
                ci.recording_id.in_(part), ci.kind == "recording", ci.current == sa.true())):
            by_id[rid]["cases"].append(case_no)
        for rid, number in conn.execute(sa.select(ni.recording_id, ni.number).where(
                ni.recording_id.in_(part))):
            by_id[rid]["archive_numbers"].append(number)
    for r in rows:
        for k in EXTRA_FIELDS + ("cases", "archive_numbers"):
            r[k] = sorted(set(r[k]))
    return rows


# the forms (table, JSON, CSV, command line) live in search_forms; they are part of this API
from .search_forms import (CSV_COLUMNS, add_arguments, add_command_arguments,  # noqa: E402
                           as_csv, as_json, as_table, filters_from_args, retention_types,
                           run)
