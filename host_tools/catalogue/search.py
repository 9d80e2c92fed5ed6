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
    retention       the recording's retention class (recordings.retention_class, kept by
                    host_tools.catalogue.retention)

Each row: the recordings columns (recordings.py), "start" and "end" (UTC ISO), and for
the page only "party", "place", "event_type", "item_class", "note" (current values,
sorted lists), "cases" and "archive_numbers" (sorted lists).

Hot filters use indexed columns only: recordings (start_ms), (device, start_ms), (officer,
start_ms); tags (field, value); number_items (number); case_items (case_no); the counts
(interruptions, statements, unstated, marks_*) and state are read while walking the
start_ms index, newest first, which stops after ``limit`` rows.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import io
import json
import unicodedata
from typing import Optional

import sqlalchemy as sa

from ..i18n import _
from ..records import printable
from ..report_items import DAY_MS, _as_date, _day, _day_ms, _iso, ReportError
from . import db

__all__ = ["Filters", "SearchError", "search", "add_arguments", "filters_from_args",
           "as_table", "as_json", "as_csv", "CSV_COLUMNS", "FORMAT", "TAG_FIELDS",
           "INTERRUPTION", "MARKS", "STATES", "add_command_arguments", "run", "matching"]

FORMAT = "sealcam-search-1"
INTERRUPTION = ("any", "stated", "unstated")
MARKS = {"important": "marks_important", "notice": "marks_notice",
         "bookmark": "marks_bookmark"}
STATES = ("complete", "partial", "disposed")
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
                     "item_class", "note", "retention"):
            _text("--" + name.replace("_", "-"), getattr(f, name))
        for name, allowed in (("interruption", INTERRUPTION), ("mark", tuple(MARKS)),
                              ("state", STATES)):
            v = getattr(f, name)
            if v is not None and v not in allowed:
                raise SearchError(_("--%(option)s: %(value)s is not one of %(allowed)s")
                                  % {"option": name, "value": printable(repr(v)),
                                     "allowed": ", ".join(allowed)})
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


def where_clauses(conn, f: Filters) -> list:
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
        if v is not None:
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
        col = getattr(rec, "retention_class", None)
        if col is None:
            raise SearchError(_("--retention: this catalogue keeps no retention classes yet"))
        w.append(col == f.retention)
    return w


def _select(cond, limit, offset):
    """The ids of the page: only indexed columns are read when the conditions allow."""
    rec = db.recordings.c
    q = sa.select(rec.id).where(*cond).order_by(rec.start_ms.desc(), rec.id.desc())
    if limit is not None:
        q = q.limit(limit)
    return q.offset(offset) if offset else q


def _ids(conn, f, limit, offset):
    cond = where_clauses(conn, f)
    if f.note is None:
        return [r[0] for r in conn.execute(_select(cond, limit, offset))]
    like = _note_like(conn, f.note)
    if limit is not None and limit + offset <= _NOTE_FIRST_MAX:
        rec = db.recordings.c
        bound = conn.execute(sa.select(rec.start_ms).where(*cond).order_by(
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


def search(conn_or_engine, filters: Filters, limit=50, offset=0) -> list:
    """The recordings matching ``filters``, newest first: ``limit`` of them (None: all)
    after skipping ``offset``; each a dict (see the module doc). Raises SearchError."""
    f = filters.checked()
    if limit is not None and (type(limit) is not int or not 0 <= limit <= MAX_LIMIT):
        raise SearchError(_("--limit: a whole number from 0 to %(max)d")
                          % {"max": MAX_LIMIT})
    if type(offset) is not int or offset < 0:
        raise SearchError(_("--offset: a whole number of at least 0"))
    if isinstance(conn_or_engine, sa.engine.Engine):
        with conn_or_engine.connect() as conn:
            return _run(conn, f, limit, offset)
    return _run(conn_or_engine, f, limit, offset)


def matching(conn_or_engine, filters: Filters) -> set:
    """{(device, segment)} of every recording matching ``filters``: how `sealcam report`
    narrows its items to the recordings the same filters select."""
    f = filters.checked()
    rec = db.recordings
    if isinstance(conn_or_engine, sa.engine.Engine):
        with conn_or_engine.connect() as conn:
            return matching(conn, f)
    ids = _ids(conn_or_engine, f, None, 0)
    out = set()
    for i in range(0, len(ids), _PAGE):
        out.update((d, s) for d, s in conn_or_engine.execute(
            sa.select(rec.c.device, rec.c.segment).where(rec.c.id.in_(ids[i:i + _PAGE]))))
    return out


def _run(conn, f, limit, offset):
    ids = _ids(conn, f, limit, offset)
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


# --- output ------------------------------------------------------------------------------

def _width(s):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else
               0 if unicodedata.combining(c) else 1 for c in s)


def _pad(s, w):
    return s + " " * (w - _width(s))


def _dur(ms):
    if ms is None:
        return "-"
    s = ms // 1000
    return "%d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)


def _short(iso):
    return "-" if not iso else iso[:10] + " " + iso[11:19]


def _state_word(state):
    words = {"complete": _("complete"), "partial": _("partial"), "disposed": _("disposed")}
    return words.get(state, state)


def _table_row(r):
    meta = "; ".join("%s: %s" % (name, ", ".join(r[k])) for k, name in (
        ("party", _("party")), ("place", _("place")), ("event_type", _("event type")),
        ("item_class", _("item class"))) if r.get(k))
    return [_short(r["start"]), r["device"], str(r["segment"]), r["officer"] or "-",
            _dur(r["duration_ms"]), _state_word(r["state"]),
            "%d/%d/%d" % (r["interruptions"], r["statements"], r["unstated"]),
            "%d/%d/%d" % (r["marks_important"], r["marks_notice"], r["marks_bookmark"]),
            ", ".join(r["archive_numbers"]) or "-", ", ".join(r["cases"]) or "-",
            meta or "-"]


def as_table(rows) -> str:
    """An aligned table for people (UTC times; interruptions as total/stated/unstated,
    marks as important/notice/bookmark); strings from the catalogue are escaped."""
    headers = [_("start (UTC)"), _("device"), _("segment"), _("officer"), _("duration"),
               _("state"), _("interruptions"), _("marks"), _("archive no."), _("case"),
               _("metadata")]
    body = [[printable(c) for c in _table_row(r)] for r in rows]
    widths = [max([_width(h)] + [_width(b[i]) for b in body]) for i, h in enumerate(headers)]
    lines = ["  ".join(_pad(c, w) for c, w in zip(line, widths)).rstrip()
             for line in [headers] + body]
    if not rows:
        lines.append(_("no recording matches"))
    else:
        lines.append(_("%(n)d recording(s)") % {"n": len(rows)})
    return "\n".join(lines) + "\n"


def as_json(rows, filters: Optional[Filters] = None) -> str:
    """One JSON object (ASCII): {"format", "filters", "count", "recordings": [row]}."""
    return json.dumps({"format": FORMAT,
                       "filters": filters.given() if filters is not None else None,
                       "count": len(rows), "recordings": list(rows)},
                      indent=2, ensure_ascii=True) + "\n"


CSV_COLUMNS = ["id", "device", "segment", "start", "end", "start_ms", "end_ms",
               "duration_ms", "officer", "unit", "bytes", "state", "interruptions",
               "statements", "unstated", "marks_important", "marks_notice",
               "marks_bookmark", "first_stored_at", "party", "place", "event_type",
               "item_class", "note", "cases", "archive_numbers"]


def _csv_cell(v):
    if v is None:
        return ""
    if isinstance(v, list):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, str):
        v = printable(v)
        # a spreadsheet must not take a value for a formula
        return "'" + v if v[:1] in ("=", "+", "-", "@") else v
    return v


def as_csv(rows) -> str:
    """A CSV table, header CSV_COLUMNS; lists as JSON text; a text starting with = + - @
    gets a leading ' so that a spreadsheet shows it as text."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([_csv_cell(r.get(k)) for k in CSV_COLUMNS])
    return buf.getvalue()


# --- command line ------------------------------------------------------------------------

def add_arguments(parser):
    """The filter options (the caller's parser): `sealcam search` and `sealcam report`
    declare them through this one function, so the two never disagree. --device,
    --officer, --from and --to keep the report's names (dest device, officer, since,
    until)."""
    parser.add_argument("--device", action="append", metavar="ID", default=None,
                        help=_("only this device (repeat for several)"))
    parser.add_argument("--officer", metavar="ID", default=None,
                        help=_("only recordings made while this officer was assigned"))
    parser.add_argument("--from", dest="since", type=_day, metavar="YYYY-MM-DD",
                        default=None, help=_("only from this UTC day on"))
    parser.add_argument("--to", dest="until", type=_day, metavar="YYYY-MM-DD", default=None,
                        help=_("only up to this UTC day (inclusive)"))
    for opt, text in (
            ("--party", _("only recordings with this party")),
            ("--place", _("only recordings at this place")),
            ("--event-type", _("only recordings of this event type")),
            ("--item-class", _("only recordings of this item class")),
            ("--case", _("only recordings filed into this case or tagged with its number")),
            ("--archive-number", _("only the recordings this archive number resolves to")),
            ("--note", _("only recordings whose note contains this text")),
            ("--retention", _("only recordings of this retention class"))):
        parser.add_argument(opt, metavar="TEXT", default=None, help=text)
    parser.add_argument("--interruption", choices=INTERRUPTION, default=None,
                        help=_("only recordings with an interruption: any, stated (with "
                               "the officer's statement) or unstated (missing or "
                               "unexplained)"))
    parser.add_argument("--mark", choices=tuple(MARKS), default=None,
                        help=_("only recordings with a mark of this kind"))
    parser.add_argument("--state", choices=STATES, default=None,
                        help=_("only recordings in this state"))
    return parser


def filters_from_args(args) -> Filters:
    """Filters from the options of add_arguments (options a parser lacks are unset)."""
    g = lambda name: getattr(args, name, None)    # noqa: E731
    return Filters(device=list(g("device") or []), officer=g("officer"),
                   date_from=g("since"), date_to=g("until"), party=g("party"),
                   place=g("place"), event_type=g("event_type"), case=g("case"),
                   archive_number=g("archive_number"), item_class=g("item_class"),
                   note=g("note"), interruption=g("interruption"), mark=g("mark"),
                   state=g("state"), retention=g("retention"))


def add_command_arguments(parser):
    """`sealcam search`: the archive, the catalogue URL, the filters, paging, the form."""
    parser.add_argument("--archive", required=True, metavar="DIR",
                        help=_("the station archive"))
    parser.add_argument("--db", metavar="URL", default=None,
                        help=_("the catalogue database (default: the station config's, "
                               "else DIR/catalogue.sqlite)"))
    add_arguments(parser)
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help=_("at most N recordings (default: all)"))
    parser.add_argument("--offset", type=int, default=0, metavar="N",
                        help=_("skip the first N recordings"))
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help=_("print one JSON object"))
    g.add_argument("--csv", action="store_true", help=_("print a CSV table"))
    return parser


def run(args) -> int:
    """`sealcam search`: 0 listed (possibly none), 3 usage error or no usable catalogue."""
    import sys
    from ..archive import ArchiveError
    from .db import CatalogueDBError
    from .store import Catalogue, CatalogueError
    try:
        f = filters_from_args(args).checked()
        with Catalogue(args.archive, args.db, readonly=True) as cat:
            cat.sync()
            rows = search(cat.engine, f, args.limit, args.offset)
    except (SearchError, CatalogueError, CatalogueDBError, ArchiveError) as e:
        print(_("sealcam search: %(error)s") % {"error": e}, file=sys.stderr)
        return 3
    text = as_json(rows, f) if args.json else as_csv(rows) if args.csv else as_table(rows)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return 0
