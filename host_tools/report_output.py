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

from .records import printable
from .report import CSV_COLUMNS, EXIT_USAGE, _CSV_SET, build_report, exit_code, write_clips
from .report_items import _SECTIONS, ReportError, _day, _positive

# --- output ------------------------------------------------------------------------------

def _cell(x):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, list):
        return "/".join(_cell(v) for v in x) if x else "-"
    return str(x)


def _t(iso):
    """A report time, shortened for tables: 2023-11-14 22:13:20Z."""
    return "-" if not iso else iso[:10] + " " + iso[11:19] + "Z"


def _table(headers, rows, indent="  "):
    rows = [[_cell(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = []
    for r in [headers] + rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _section(title, items, headers, row, empty="none"):
    out = ["", "%s (%d)" % (title, len(items))]
    if not items:
        out.append("  " + empty)
        return out
    return out + _table(headers, [row(it) for it in items])


def _at(at, at_byte):
    if not at:
        return "-"
    s = "%d:%d+%d" % tuple(at)
    return s + (" (byte %d)" % at_byte if at_byte is not None else "")


def to_text(rep):
    f = rep["filters"]
    sel = []
    if f["devices"]:
        sel.append("device " + ", ".join(f["devices"]))
    if f["officer"]:
        sel.append("officer " + f["officer"])
    if f["from"] or f["to"]:
        sel.append("days %s to %s (UTC, by record time)" % (f["from"] or "start",
                                                              f["to"] or "end"))
    out = ["sealcam compliance report",
           "archive:    %s%s" % (rep["archive"], " (id %s)" % rep["archive_id"]
                                 if rep["archive_id"] else ""),
           "generated:  %s" % rep["generated_at"],
           "selection:  %s" % ("; ".join(sel) or "every record"),
           "devices:    %s" % (", ".join(rep["devices"]) or "none"),
           "offload limit: %s h (R8)" % f["offload_limit_h"],
           "integrity:  %s" % rep["integrity"]]
    for n in rep["notes"]:
        out.append("note:       %s" % n)

    out += ["", "SUMMARY"]
    srows = []
    for did in rep["devices"]:
        s = rep["summary"][did]
        i, m = s["interruptions"], s["marks"]
        srows.append([did, s["records"], s["segments"], i["total"], i["annotated"],
                      i["missing"], i["unexplained"], s["late_segments"], s["drift_flags"],
                      s["refusals"], s["recoveries"], m["important"], m["notice_given"],
                      m["bookmark"], s["unassigned_records"], s["problems"]])
    out += _table(["device", "records", "segments", "interr.", "annotated", "missing",
                   "unexplained", "late seg.", "drift", "refusals", "recoveries",
                   "important", "notice", "bookmark", "unassigned", "problems"], srows)

    out += _section("INTERRUPTIONS", rep["interruptions"],
                    ["device", "seq", "time", "officer", "unit", "reason", "segment", "at",
                     "status", "explanation"],
                    lambda it: [it["device"], it["seq"], _t(it["time"]), it["officer"],
                                it["unit"], it["reason"], it["segment"],
                                _at(it["at"], it["at_byte"]), it["status"],
                                it["explanation"]])
    out += _section("LATE OFFLOADS", rep["late_offloads"],
                    ["device", "segment", "officer", "captured", "first offloaded",
                     "delay h", "limit h"],
                    lambda it: [it["device"], it["segment"], it["officer"], _t(it["capture"]),
                                _t(it["offloaded"]), "%.2f" % it["delay_h"], it["limit_h"]],
                    empty="none: every selected segment reached the archive in time")
    out += _section("CLOCK ADJUSTMENTS", rep["clock_adjustments"],
                    ["device", "seq", "old", "new", "correction ms", "drift ms/day",
                     "since h", "flag"],
                    lambda it: [it["device"], it["seq"], _t(it["old"]), _t(it["new"]),
                                it["correction_ms"], it["drift_ms_per_day"],
                                None if it["since_ms"] is None
                                else "%.1f" % (it["since_ms"] / 3_600_000),
                                "DRIFT" if it["drift_flag"] else ""])
    out += _section("REFUSED OPERATIONS", rep["refusals"],
                    ["device", "seq", "time", "op", "target", "source"],
                    lambda it: [it["device"], it["seq"], _t(it["time"]), it["op"],
                                it["target"], it["source"]])
    out += _section("POWER-LOSS RECOVERIES", rep["recoveries"],
                    ["device", "seq", "time", "segment", "length", "signed", "recovered",
                     "mismatch"],
                    lambda it: [it["device"], it["seq"], _t(it["time"]), it["segment"],
                                it["length"], it["signed"], it["recovered"], it["mismatch"]])
    out += _section("MARKS", rep["marks"],
                    ["device", "seq", "time", "officer", "kind", "at", "phrase"],
                    lambda it: [it["device"], it["seq"], _t(it["time"]), it["officer"],
                                it["kind"], _at(it["at"], it["at_byte"]), it["phrase"]])
    out += _section("SHIFTS", rep["shifts"],
                    ["device", "assign", "officer", "unit", "start", "end", "segments",
                     "interr.", "marks"],
                    lambda it: [it["device"], it["seq"], it["officer"], it["unit"],
                                _t(it["start"]), "open" if it["open"] else _t(it["end"]),
                                it["segments"], it["interruptions"], it["marks"]])
    out += _section("UNASSIGNED RECORDING (NO_OFFICER while recording)",
                    rep["unassigned_recording"],
                    ["device", "records", "segments", "first seq", "first", "last seq",
                     "last"],
                    lambda it: [it["device"], it["records"], it["segments"], it["first_seq"],
                                _t(it["first_time"]), it["last_seq"], _t(it["last_time"])])
    out += _section("SELF-CHECKS", rep["self_checks"],
                    ["device", "seq", "time", "ready", "reasons", "battery %",
                     "storage min"],
                    lambda it: [it["device"], it["seq"], _t(it["time"]),
                                "READY" if it["ready"] else "NOT_READY",
                                ", ".join(it["reasons"]) or "-",
                                it["facts"]["battery_pct"], it["facts"]["storage_min"]])
    out += _section("RELEASES", rep["releases"],
                    ["device", "seq", "time", "segment", "length", "receipt"],
                    lambda it: [it["device"], it["seq"], _t(it["time"]), it["segment"],
                                it["length"], it["number"]])
    out += ["", "STATEMENTS: HOW TO HEAR THEM (%d)" % len(rep["statements"])]
    for st in rep["statements"]:
        out.append("  %s seq %s at %s: the statement for INTERRUPTION seq %s (%s), %s spoken"
                   % (st["device"], st["seq"], _t(st["time"]), _cell(st["refers"]),
                      _cell(st["reason"]), "%g s" % st["duration_s"]
                      if st["duration_s"] is not None else "? s"))
        if st["clip_file"]:
            out.append("    written: %s (play: ffplay %s)" % (st["clip_file"], st["clip_file"]))
        elif st["clip_error"]:
            out.append("    no clip written: %s" % st["clip_error"])
        else:
            out.append("    " + st["clip_command"])
    if not rep["statements"]:
        out.append("  none")
    if rep["unverified"]:
        out += ["", "RECORDS LEFT OUT: THEY DO NOT VERIFY (%d device%s)" % (
            len(rep["unverified"]), "" if len(rep["unverified"]) == 1 else "s")]
        out += ["  %s: %d record(s) from seq %d: %s" % (u["device"], u["records"],
                                                         u["first_seq"], u["reason"])
                for u in rep["unverified"]]
    out += ["", "PROBLEMS (%d)" % len(rep["problems"])]
    if rep["problems"]:
        out += ["  " + p["message"] for p in rep["problems"]]
    else:
        out.append("  no compliance problem in the selected records")
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
                        help="the station archive (the folder holding archive.sqlite)")
    parser.add_argument("--device", action="append", metavar="ID", default=None,
                        help="report on this device only (repeat for several; default: "
                             "every device in the archive)")
    parser.add_argument("--officer", metavar="ID", default=None,
                        help="only records made while this officer was assigned (key 7)")
    parser.add_argument("--from", dest="since", type=_day, metavar="YYYY-MM-DD",
                        default=None, help="only records made on or after this UTC day")
    parser.add_argument("--to", dest="until", type=_day, metavar="YYYY-MM-DD", default=None,
                        help="only records made on or before this UTC day")
    parser.add_argument("--offload-limit-h", type=_positive, default=24.0, metavar="H",
                        help="hours within which media must reach the archive (R8; "
                             "default: %(default)g)")
    parser.add_argument("--clips", metavar="DIR", default=None,
                        help="write every statement (VOICE_ANNOTATION) of the report as a "
                             "playable, verifiable clip: DIR/DEVICE-SEQ.mkv and its .prov")
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true",
                   help="print one JSON object (keys documented in host_tools/report.py)")
    g.add_argument("--csv", action="store_true",
                   help="print one CSV table, a `section` column naming each row's kind")
    return parser


def run(args) -> int:
    """`sealcam report`: 0 report made, no problem; 1 report made, compliance problems;
    3 usage error, not an archive, or an officer no record names."""
    clips = getattr(args, "clips", None)
    try:
        rep = build_report(args.archive, device=args.device, officer=args.officer,
                           since=args.since, until=args.until,
                           offload_limit_h=args.offload_limit_h, clips_dir=clips)
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

