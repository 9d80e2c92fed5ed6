"""The forms of `sealcam report` (see host_tools/report.py): text tables, CSV, and the
command line. Every string from a record is shown with control characters escaped
(records.printable); the JSON is ASCII.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys

from . import report_words as W
from .i18n import N_, _, ngettext, pgettext
from .records import printable
from .textcols import width as _width
from .report import CSV_COLUMNS, EXIT_USAGE, _CSV_SET, build_report, exit_code, write_clips
from .report_items import _SECTIONS, ReportError, _positive

# --- output ------------------------------------------------------------------------------
# Every word of the text form is in the user's language (host_tools.i18n); the JSON and
# CSV forms are machine formats and stay as they are. What the report's builders wrote as
# sentences (problems, explanations, notes) is translated by report_words.

def _cell(x):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return _("yes") if x else _("no")
    if isinstance(x, list):
        return "/".join(_cell(v) for v in x) if x else "-"
    return str(x)


def _t(iso):
    """A report time, shortened for tables: 2023-11-14 22:13:20Z."""
    return "-" if not iso else iso[:10] + " " + iso[11:19] + "Z"


def _table(headers, rows, indent="  "):
    headers = [_(h) for h in headers]
    rows = [[_cell(c) for c in r] for r in rows]
    widths = [max(_width(h), *(_width(r[i]) for r in rows)) if rows else _width(h)
              for i, h in enumerate(headers)]
    lines = []
    for r in [headers] + rows:
        cells = [c + " " * (w - _width(c)) for c, w in zip(r, widths)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _section(title, items, headers, row, empty=N_("none")):
    out = ["", _("%(title)s (%(n)d)") % {"title": _(title), "n": len(items)}]
    if not items:
        out.append("  " + _(empty))
        return out
    return out + _table(headers, [row(it) for it in items])


def _at(at, at_byte):
    if not at:
        return "-"
    s = "%d:%d+%d" % tuple(at)
    return s + (_(" (byte %(byte)d)") % {"byte": at_byte} if at_byte is not None else "")


def _secs(x):
    return _("%(s)s s") % {"s": "%g" % x} if x is not None else _("%(s)s s") % {"s": "?"}


def _head(rep):
    f = rep["filters"]
    sel = []
    if f["devices"]:
        sel.append(_("device %(devices)s") % {"devices": ", ".join(f["devices"])})
    if f["officer"]:
        sel.append(_("officer %(officer)s") % {"officer": f["officer"]})
    if f["from"] or f["to"]:
        sel.append(_("days %(from)s to %(to)s (UTC, by record time)")
                   % {"from": f["from"] or pgettext("day range", "start"),
                      "to": f["to"] or pgettext("day range", "end")})
    if rep["archive_id"]:
        archive = _("archive:    %(archive)s (id %(id)s)") % {"archive": rep["archive"],
                                                              "id": rep["archive_id"]}
    else:
        archive = _("archive:    %(archive)s") % {"archive": rep["archive"]}
    out = [_("sealcam compliance report"),
           archive,
           _("generated:  %(time)s") % {"time": rep["generated_at"]},
           _("selection:  %(selection)s") % {"selection": _("; ").join(sel)
                                              or _("every record")},
           _("devices:    %(devices)s") % {"devices": ", ".join(rep["devices"]) or _("none")},
           _("offload limit: %(hours)s h (R8)") % {"hours": f["offload_limit_h"]},
           _("integrity:  %(integrity)s") % {
               "integrity": W.sentence(rep["integrity"], W.INTEGRITY_TEXT)}]
    for n in rep["notes"]:
        out.append(_("note:       %(note)s") % {"note": W.sentence(n, W.NOTE)})
    return out


def _explanation(it):
    return W.sentence(it["explanation"], W.EXPLANATION)


def to_text(rep):
    out = _head(rep)
    out += ["", _("SUMMARY")]
    srows = []
    for did in rep["devices"]:
        s = rep["summary"][did]
        i, m = s["interruptions"], s["marks"]
        srows.append([did, s["records"], s["segments"], i["total"], i["annotated"],
                      i["missing"], i["unexplained"], s["late_segments"], s["drift_flags"],
                      s["refusals"], s["recoveries"], m["important"], m["notice_given"],
                      m["bookmark"], s["unassigned_records"], s["problems"]])
    out += _table([N_("device"), N_("records"), N_("segments"), N_("interr."),
                   N_("annotated"), N_("missing"), N_("unexplained"), N_("late seg."),
                   N_("drift"), N_("refusals"), N_("recoveries"), N_("important"),
                   N_("notice"), N_("bookmark"), N_("unassigned"), N_("problems")], srows)

    out += _section(N_("INTERRUPTIONS"), rep["interruptions"],
                    [N_("device"), N_("seq"), N_("time"), N_("officer"), N_("unit"),
                     N_("reason"), N_("segment"), pgettext("media position", "at"),
                     N_("status"), N_("explanation")],
                    lambda it: [it["device"], it["seq"], _t(it["time"]), it["officer"],
                                it["unit"], W.word(it["reason"]), it["segment"],
                                _at(it["at"], it["at_byte"]), W.word(it["status"]),
                                _explanation(it)])
    out += _section(N_("LATE OFFLOADS"), rep["late_offloads"],
                    [N_("device"), N_("segment"), N_("officer"), N_("captured"),
                     N_("first offloaded"), N_("delay h"), N_("limit h")],
                    lambda it: [it["device"], it["segment"], it["officer"], _t(it["capture"]),
                                _t(it["offloaded"]), "%.2f" % it["delay_h"], it["limit_h"]],
                    empty=N_("none: every selected segment reached the archive in time"))
    out += _section(N_("CLOCK ADJUSTMENTS"), rep["clock_adjustments"],
                    [N_("device"), N_("seq"), N_("old"), N_("new"), N_("correction ms"),
                     N_("drift ms/day"), N_("since h"), N_("flag")],
                    lambda it: [it["device"], it["seq"], _t(it["old"]), _t(it["new"]),
                                it["correction_ms"], it["drift_ms_per_day"],
                                None if it["since_ms"] is None
                                else "%.1f" % (it["since_ms"] / 3_600_000),
                                W.word("DRIFT") if it["drift_flag"] else ""])
    out += _section(N_("REFUSED OPERATIONS"), rep["refusals"],
                    [N_("device"), N_("seq"), N_("time"), N_("op"), N_("target"),
                     N_("source")],
                    lambda it: [it["device"], it["seq"], _t(it["time"]), W.word(it["op"]),
                                it["target"], it["source"]])
    out += _section(N_("POWER-LOSS RECOVERIES"), rep["recoveries"],
                    [N_("device"), N_("seq"), N_("time"), N_("segment"), N_("length"),
                     N_("signed"), N_("recovered"), N_("mismatch")],
                    lambda it: [it["device"], it["seq"], _t(it["time"]), it["segment"],
                                it["length"], it["signed"], it["recovered"], it["mismatch"]])
    out += _section(N_("MARKS"), rep["marks"],
                    [N_("device"), N_("seq"), N_("time"), N_("officer"), N_("kind"),
                     pgettext("media position", "at"), N_("phrase")],
                    lambda it: [it["device"], it["seq"], _t(it["time"]), it["officer"],
                                W.word(it["kind"]), _at(it["at"], it["at_byte"]),
                                it["phrase"]])
    out += _section(N_("SHIFTS"), rep["shifts"],
                    [N_("device"), N_("assign"), N_("officer"), N_("unit"), N_("start"),
                     N_("end"), N_("segments"), N_("interr."), N_("marks")],
                    lambda it: [it["device"], it["seq"], it["officer"], it["unit"],
                                _t(it["start"]), pgettext("shift", "open") if it["open"]
                                else _t(it["end"]),
                                it["segments"], it["interruptions"], it["marks"]])
    out += _section(N_("UNASSIGNED RECORDING (NO_OFFICER while recording)"),
                    rep["unassigned_recording"],
                    [N_("device"), N_("records"), N_("segments"), N_("first seq"),
                     N_("first"), N_("last seq"), N_("last")],
                    lambda it: [it["device"], it["records"], it["segments"], it["first_seq"],
                                _t(it["first_time"]), it["last_seq"], _t(it["last_time"])])
    out += _section(N_("SELF-CHECKS"), rep["self_checks"],
                    [N_("device"), N_("seq"), N_("time"), N_("ready"), N_("reasons"),
                     N_("battery %"), N_("storage min")],
                    lambda it: [it["device"], it["seq"], _t(it["time"]),
                                W.word("READY" if it["ready"] else "NOT_READY"),
                                ", ".join(W.words(it["reasons"])) or "-",
                                it["facts"]["battery_pct"], it["facts"]["storage_min"]])
    out += _section(N_("RELEASES"), rep["releases"],
                    [N_("device"), N_("seq"), N_("time"), N_("segment"), N_("length"),
                     N_("receipt")],
                    lambda it: [it["device"], it["seq"], _t(it["time"]), it["segment"],
                                it["length"], it["number"]])
    out += ["", _("STATEMENTS: HOW TO HEAR THEM (%(n)d)") % {"n": len(rep["statements"])}]
    for st in rep["statements"]:
        out.append("  " + _("%(device)s seq %(seq)s at %(time)s: the statement for "
                            "INTERRUPTION seq %(refers)s (%(reason)s), %(duration)s spoken")
                   % {"device": st["device"], "seq": st["seq"], "time": _t(st["time"]),
                      "refers": _cell(st["refers"]), "reason": _cell(W.word(st["reason"])),
                      "duration": _secs(st["duration_s"])})
        if st["clip_file"]:
            out.append("    " + _("written: %(file)s (play: ffplay %(file)s)")
                       % {"file": st["clip_file"]})
        elif st["clip_error"]:
            out.append("    " + _("no clip written: %(error)s") % {"error": st["clip_error"]})
        else:
            out.append("    " + st["clip_command"])
    if not rep["statements"]:
        out.append("  " + _("none"))
    if rep["unverified"]:
        n = len(rep["unverified"])
        out += ["", ngettext("RECORDS LEFT OUT: THEY DO NOT VERIFY (%(n)d device)",
                             "RECORDS LEFT OUT: THEY DO NOT VERIFY (%(n)d devices)", n)
                % {"n": n}]
        out += ["  " + _("%(device)s: %(records)d record(s) from seq %(seq)d: %(reason)s")
                % {"device": u["device"], "records": u["records"], "seq": u["first_seq"],
                   "reason": W.sentence(u["reason"], W.UNVERIFIED)}
                for u in rep["unverified"]]
    from .report_custody import text_lines
    out += text_lines(rep.get("custody"))
    out += ["", _("PROBLEMS (%(n)d)") % {"n": len(rep["problems"])}]
    if rep["problems"]:
        out += ["  " + W.sentence(p["message"], W.PROBLEM.get(p["kind"], []))
                for p in rep["problems"]]
    else:
        out.append("  " + _("no compliance problem in the selected records"))
    # whatever a record's strings hold is shown, never obeyed by the terminal
    return "\n".join(printable(x, backslash=False) for x in out) + "\n"


def _flat(prefix, x, row):
    if isinstance(x, dict):
        for k, v in x.items():
            _flat("%s_%s" % (prefix, k) if prefix else k, v, row)
    elif isinstance(x, list):
        row[prefix] = json.dumps(x, separators=(",", ":"), ensure_ascii=True)
    elif isinstance(x, bool):
        row[prefix] = "true" if x else "false"
    elif x is None:
        if prefix in _CSV_SET:      # (a null object, e.g. "annotation": its columns stay empty)
            row[prefix] = ""
    elif isinstance(x, str):
        row[prefix] = printable(x)       # a card's string never carries a control character
    else:
        row[prefix] = x


def to_csv(rep):
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="raise", lineterminator="\n")
    w.writeheader()
    for did in rep["devices"]:
        row = {"section": "summary", "device": did}
        _flat("", rep["summary"][did], row)
        w.writerow(row)
    for key, name in _SECTIONS:
        for it in rep[key]:
            row = {"section": name}
            _flat("", it, row)
            w.writerow(row)
    for p in rep["problems"]:
        row = {"section": "problem"}
        _flat("", p, row)
        w.writerow(row)
    return buf.getvalue()


# --- command line ------------------------------------------------------------------------

def add_arguments(parser):
    """The arguments of `sealcam report` (the caller's parser, e.g. a subparser)."""
    parser.add_argument("--archive", required=True, metavar="DIR",
                        help=_("the station archive (the folder holding archive.sqlite)"))
    # the filters of `sealcam search`, declared once (host_tools/catalogue/search.py)
    from .catalogue import search
    search.add_arguments(parser)
    parser.add_argument("--db", metavar="URL", default=None,
                        help=_("the catalogue database, for the catalogue's filters "
                               "(default: the station config's, else DIR/catalogue.sqlite)"))
    parser.add_argument("--offload-limit-h", type=_positive, default=24.0, metavar="H",
                        help=_("hours within which media must reach the archive (R8; "
                               "default: %(default)g)"))
    parser.add_argument("--clips", metavar="DIR", default=None,
                        help=_("write every statement (VOICE_ANNOTATION) of the report as a "
                               "playable, verifiable clip: DIR/DEVICE-SEQ.mkv and its .prov"))
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true",
                   help=_("print one JSON object (keys documented in host_tools/report.py)"))
    g.add_argument("--csv", action="store_true",
                   help=_("print one CSV table, a `section` column naming each row's kind"))
    return parser


CATALOGUE_ONLY = ("party", "place", "event_type", "case", "archive_number", "item_class",
                  "note", "interruption", "mark", "state", "retention")


def _catalogue_keep(args):
    """{(device, segment)} the catalogue's filters choose (None when none is given: the
    report then reads the archive alone, as it always did)."""
    if not any(getattr(args, k, None) for k in CATALOGUE_ONLY):
        return None
    from .archive import ArchiveError
    from .catalogue import search
    from .catalogue.db import CatalogueDBError
    from .catalogue.store import Catalogue, CatalogueError
    try:
        f = search.filters_from_args(args).checked()
        with Catalogue(args.archive, getattr(args, "db", None), readonly=True) as cat:
            cat.sync()
            return search.matching(cat.engine, f, retention_types=search.retention_types(cat))
    except (search.SearchError, CatalogueError, CatalogueDBError, ArchiveError) as e:
        raise ReportError(str(e)) from None


def run(args) -> int:
    """`sealcam report`: 0 report made, no problem; 1 report made, compliance problems;
    3 usage error, not an archive, or an officer no record names."""
    clips = getattr(args, "clips", None)
    if clips:
        from .clip import has_users
        if has_users(args.archive):
            # originals leave an archive with clerk users only under the register (R15)
            print("sealcam report: " + _(
                "--clips: this archive has clerk users, so originals are cut only under an "
                "approved export request: `sealcam clip --annotation DEVICE:SEQ --user NAME "
                "--request N --out FILE.mkv` for each statement"), file=sys.stderr)
            return EXIT_USAGE
    try:
        keep = _catalogue_keep(args)
        rep = build_report(args.archive, device=args.device, officer=args.officer,
                           since=args.since, until=args.until,
                           offload_limit_h=args.offload_limit_h, clips_dir=clips, keep=keep,
                           catalogue_url=getattr(args, "db", None))
        if clips:
            write_clips(rep, clips)
    except ReportError as e:
        print("sealcam report: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print("sealcam report: --clips %s: %s" % (clips, e.strerror or e), file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "json", False):
        # ASCII: no raw control or bidi character of a record reaches the terminal
        text = json.dumps(rep, indent=2, ensure_ascii=True) + "\n"
    elif getattr(args, "csv", False):
        text = to_csv(rep)
    else:
        text = to_text(rep)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:     # `sealcam report … | head`: the exit code still tells
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    return exit_code(rep)

