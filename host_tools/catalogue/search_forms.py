"""The forms of `sealcam search` (see host_tools/catalogue/search.py, which re-exports
them): the table for people, JSON, CSV, and the command line (the filter options that
`sealcam report` declares through the same add_arguments). Every string from the catalogue
is shown with control characters escaped (records.printable); the JSON is ASCII."""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Optional

from ..i18n import _, ngettext
from ..records import printable
from ..report_items import _day
from ..textcols import pad as _pad, width as _width     # CJK takes two columns
from .search import (FORMAT, INTERRUPTION, MARKS, RETENTION, STATES, Filters, SearchError,
                     search)

__all__ = ["as_table", "as_json", "as_csv", "CSV_COLUMNS", "add_arguments",
           "filters_from_args", "add_command_arguments", "retention_types", "run"]


# --- output ------------------------------------------------------------------------------



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


def _table_lines(rows, header=True) -> str:
    headers = [_("start (UTC)"), _("device"), _("segment"), _("officer"), _("duration"),
               _("state"), _("interruptions"), _("marks"), _("archive no."), _("case"),
               _("metadata")]
    body = [[printable(c) for c in _table_row(r)] for r in rows]
    widths = [max([_width(h)] + [_width(b[i]) for b in body]) for i, h in enumerate(headers)]
    return "\n".join("  ".join(_pad(c, w) for c, w in zip(line, widths)).rstrip()
                     for line in ([headers] if header else []) + body)


def as_table(rows) -> str:
    """An aligned table for people (UTC times; interruptions as total/stated/unstated,
    marks as important/notice/bookmark); strings from the catalogue are escaped."""
    lines = [_table_lines(rows)]
    if not rows:
        lines.append(_("no recording matches"))
    else:
        lines.append(ngettext("%(n)d recording", "%(n)d recordings", len(rows)) % {"n": len(rows)})
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
            ("--note", _("only recordings whose note contains this text"))):
        parser.add_argument(opt, metavar="TEXT", default=None, help=text)
    parser.add_argument("--retention", choices=RETENTION, default=None,
                        help=_("only recordings of this retention class"))
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
    parser.add_argument("--user", metavar="NAME", default=os.environ.get("SEALCAM_USER"),
                        help=_("who searches (or SEALCAM_USER): recordings above your "
                               "clearance are not listed; without it, the default "
                               "clearance (internal) applies"))
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help=_("at most N recordings (default: all)"))
    parser.add_argument("--offset", type=int, default=0, metavar="N",
                        help=_("skip the first N recordings"))
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help=_("print one JSON object"))
    g.add_argument("--csv", action="store_true", help=_("print a CSV table"))
    return parser


def retention_types(cat):
    """(permanent_event_types, long_term_event_types) of the catalogue's station."""
    from .retention_rules import settings
    return settings(cat)[1:]


def run(args) -> int:
    """`sealcam search`: 0 listed (possibly none), 3 usage error or no usable catalogue."""
    import sys
    from ..archive import ArchiveError
    from ..stationconfig import StationConfigError
    from sqlalchemy.exc import SQLAlchemyError
    from ..report_items import ReportError
    from ..tlog.log import LogError
    from .db import CatalogueDBError
    from .store import Catalogue, CatalogueError
    from .users import AuthError
    from .store import PermissionRefused
    try:
        f = filters_from_args(args).checked()
        with Catalogue(args.archive, args.db, readonly=True) as cat:
            cat.sync()
            viewer = None
            if getattr(args, "user", None):
                from ..cli_clerk import signed_in
                viewer = signed_in(cat, args)
            _write(cat.engine, f, args, retention_types(cat), viewer)
    except (AuthError, PermissionRefused) as e:
        print(_("sealcam search: %(error)s") % {"error": e}, file=sys.stderr)
        return 5
    except (SearchError, CatalogueError, CatalogueDBError, ArchiveError, StationConfigError,
            LogError, ReportError) as e:
        print(_("sealcam search: %(error)s") % {"error": e}, file=sys.stderr)
        return 3
    except SQLAlchemyError as e:
        e = str(e).splitlines()[0][:300]
        print(_("sealcam search: the catalogue cannot be read: %(error)s") % {"error": e},
              file=sys.stderr)
        return 3
    except OSError as e:
        e = "%s: %s" % (e.filename or args.archive, e.strerror or e)
        print(_("sealcam search: %(error)s") % {"error": e}, file=sys.stderr)
        return 3
    return 0


PAGE = 1000     # rows `sealcam search` reads and prints at a time


def _write(engine, f, args, types, viewer=None):
    """Print the list page by page (memory stays bounded however many match): the table
    repeats its header every PAGE rows, JSON and CSV are one document as as_json /
    as_csv make it (JSON with "count" after the list). A closed pipe ends it quietly."""
    import sys
    out = sys.stdout
    left, offset, after, n = args.limit, args.offset, None, 0
    try:
        if args.json:
            out.write(json.dumps({"format": FORMAT, "filters": f.given()}, indent=2,
                                 ensure_ascii=True)[:-2] + ',\n  "recordings": [')
        with engine.connect() as conn:
            while left is None or left > 0:
                size = PAGE if left is None else min(PAGE, left)
                rows = search(conn, f, size, offset if after is None else 0,
                              retention_types=types, after=after, viewer=viewer)
                if args.json:
                    out.write(",".join("\n    " + json.dumps(r, ensure_ascii=True)
                                       for r in rows) if n == 0 else
                              "".join(",\n    " + json.dumps(r, ensure_ascii=True)
                                      for r in rows))
                elif args.csv:
                    text = as_csv(rows)
                    out.write(text if n == 0 else text.split("\n", 1)[1])
                elif rows or n == 0:
                    out.write(_table_lines(rows, header=True) + "\n")
                n += len(rows)
                if len(rows) < size:
                    break
                left = None if left is None else left - len(rows)
                after = (rows[-1]["start_ms"], rows[-1]["id"])
        if args.json:
            out.write('\n  ],\n  "count": %d\n}\n' % n)
        elif not args.csv:
            out.write((ngettext("%(n)d recording", "%(n)d recordings", n) % {"n": n} if n else
                       _("no recording matches")) + "\n")
        out.flush()
    except BrokenPipeError:
        pass
