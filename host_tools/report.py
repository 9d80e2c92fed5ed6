"""`sealcam report --archive DIR`: a compliance report from a station archive (SPEC §9, §10).

    sealcam report --archive DIR [--device ID]... [--officer ID] [--from YYYY-MM-DD]
                   [--to YYYY-MM-DD] [--offload-limit-h H] [--json | --csv]

The report reads DIR/archive.sqlite read-only and reports only what verifies: each device's
records are checked as they are read (host_tools.records: strict decoding, the signature
with the device's registered key, the chain from seq 0). From the first record that does
not verify, the device's records are left out: the report lists the verified prefix only,
names what was left out ("unverified") and counts it as a problem (kind "not_verified",
exit code 1). A chain that ends before the last signed head the station saw is "records
removed", the same way. The media is not checked here: `sealcam verify DIR` does that.
Strings from records are printed with control characters escaped (records.printable) in
the text and CSV forms; the JSON is ASCII.

Selection: records of the given devices (all devices when none is given) whose officer
(key 7) is --officer and whose record time (rtc, key 4) falls on or between --from and --to
(UTC days, both inclusive). Each item below is selected by its own record (an interruption
by the INTERRUPTION record, a late segment by its REC_START, a shift by its ASSIGN and its
time span overlapping the dates); what explains an item (a VOICE_ANNOTATION or
ANNOTATION_MISSING, the chunk size of a segment, the next ASSIGN) is looked up in the
device's whole chain, whatever the filters.

Sections:
  interruptions       INTERRUPTION records (R3), each joined with the VOICE_ANNOTATION or
                      ANNOTATION_MISSING that refers to it: "annotated", "missing",
                      "unexplained" (neither, and a later BOOT or ASSIGN ended the wait) or
                      "waiting" (neither, and nothing after it ends the wait: not a problem
                      yet); the judgement is host_tools.workflow's, which verify uses too
  late_offloads       segments (R8) whose media records (REC_START, CHECKPOINT, SEGMENT,
                      RECOVERY) reached the archive (first stored_at) more than
                      --offload-limit-h hours (default 24) after they were made
  clock_adjustments   TIME_SET records (R2): correction, measured drift, DRIFT flag
  refusals            REFUSAL records: refused delete / truncate / overwrite / format / write
  recoveries          RECOVERY records: segments sealed at boot after a power loss
  marks               MARK records (R5, R12): important / notice_given / bookmark
  shifts              ASSIGN records with an officer, until the device's next ASSIGN (R7)
  unassigned_recording  records flagged NO_OFFICER made while a segment was open
  self_checks         SELF_CHECK records (R6)
  releases            RELEASE records: media removed against a custody receipt (§10.8)
  summary             counts per device
  problems            what makes the report non-compliant: unexplained interruptions,
                      missing annotations, late offloads, DRIFT flags, records that do not
                      verify

Exit codes: 0 the report was made and shows no problem; 1 the report was made and lists
compliance problems (records that do not verify among them); 3 usage error, or DIR is not a
readable archive.

JSON (--json): one object; every key below is always present (lists may be empty, values
that a record does not carry are null). Times are UTC ISO 8601 strings with milliseconds
("2023-11-14T22:13:20.100Z"); `*_ms` are milliseconds, `*_s` seconds, `*_h` hours.

  {
    "format": "sealcam-report-1",
    "archive": "/abs/DIR", "archive_id": str | null, "generated_at": time,
    "filters": {"devices": [id] | null, "officer": str | null, "from": "YYYY-MM-DD" | null,
                "to": "YYYY-MM-DD" | null, "offload_limit_h": number},
    "integrity": "records verified: ... run `sealcam verify DIR` for the media",
    "devices": [id, ...],                           # the devices reported on
    "summary": {id: {"records", "segments",
                     "interruptions": {"total", "annotated", "missing", "unexplained",
                                       "waiting"},
                     "verified_through": seq | null,   # records 0..seq verify
                     "late_segments", "clock_adjustments", "drift_flags", "refusals",
                     "recoveries",
                     "marks": {"important", "notice_given", "bookmark", "other"},
                     "shifts", "unassigned_records", "self_checks", "self_checks_not_ready",
                     "releases", "problems"}},      # all ints
    "interruptions": [{"device", "seq", "time", "officer", "unit", "reason", "segment",
                       "at": [segment, chunk, offset] | null, "at_byte": int | null,
                       "refers": int | null,        # the RECOVERY of a power loss
                       "status": "annotated" | "missing" | "unexplained" | "waiting",
                       "annotation": null | {"seq", "time", "parts" [{seq, span,
                                              span_bytes}, one per segment],
                                             "span": [segment, chunk, offset, chunk, offset],
                                             "span_bytes": [start, end] | null,  # end excl.
                                             "duration_ms", "duration_s"},
                       "missing": null | {"seq", "time", "waited_ms", "waited_s"},
                       "explanation": str}],       # readable: the span, "missing, waited
                                                    # N s", or why it is unexplained
    "late_offloads": [{"device", "segment", "officer", "unit", "capture", "offloaded",
                       "delay_h", "worst_seq", "limit_h"}],
        # segment = its REC_START seq; capture = REC_START time; offloaded = the first
        # (lowest) stored_at of the segment's media records; delay_h = the largest
        # stored_at - rtc over them (worst_seq: that record), rounded to 0.01 h
    "clock_adjustments": [{"device", "seq", "time", "officer", "old", "new", "old_rtc",
                           "new_rtc", "correction_ms", "drift_ms_per_day", "since_ms",
                           "drift_flag"}],          # correction_ms = new - old
    "refusals": [{"device", "seq", "time", "officer", "op", "target", "source", "reason"}],
    "recoveries": [{"device", "seq", "time", "segment", "length", "signed",
                    "unsigned_tail", "recovered", "mismatch", "flags"}],
    "marks": [{"device", "seq", "time", "officer", "unit", "kind", "at", "at_byte",
               "phrase"}],
    "shifts": [{"device", "seq", "officer", "unit", "station", "start", "end", "end_seq",
                "open", "segments", "interruptions", "marks"}],
        # seq = the ASSIGN; end/end_seq = the next ASSIGN of the device (null: still open);
        # counts are of REC_START / INTERRUPTION / MARK records between the two
    "unassigned_recording": [{"device", "records", "segments", "first_seq", "first_time",
                              "last_seq", "last_time"}],
    "self_checks": [{"device", "seq", "time", "officer", "ready", "reasons", "facts"}],
        # facts: {"battery_pct", "storage_min", "clock_error_ms", "oldest_unreceipted_s",
        #         "since_calibration_ms"}, each int or null
    "releases": [{"device", "seq", "time", "segment", "media", "length", "number"}],
    "unverified": [{"device", "first_seq", "records", "reason"}],
        # per device: the records left out, from the first that does not verify
    "notes": [str],
    "problems": [{"device", "seq", "kind", "message"}]
        # kind: "interruption_unexplained" | "annotation_missing" | "late_offload" |
        #       "clock_drift" | "not_verified"; seq is the INTERRUPTION / REC_START /
        #       TIME_SET record, or the first record left out
  }

CSV (--csv): one table, header CSV_COLUMNS; one row per item, its `section` column one of
summary, interruption, late_offload, clock_adjustment, refusal, recovery, mark, shift,
unassigned_recording, self_check, release, problem. Nested values are flattened with "_"
(annotation_seq, interruptions_total, facts_battery_pct, ...); lists are JSON text.
"""
from __future__ import annotations

import argparse
import bisect
import csv
import datetime as _dt
import io
import json
import os
import re
import sqlite3
import sys
import urllib.parse

from . import records as R
from .records import printable
from .records import (ANNOTATION_MISSING, ASSIGN, INTERRUPTION, MARK,
                      MARK_KINDS, MEDIA_TYPES, REC_START, RECOVERY, REFUSAL, RELEASE,
                      SEGMENT, SELF_CHECK, TIME_SET, VOICE_ANNOTATION)
from .workflow import ANNOTATED, MISSING, UNEXPLAINED, WAITING, \
    judge_interruption

__all__ = ["build_report", "add_arguments", "run", "exit_code", "to_text", "to_csv",
           "ReportError",
           "CSV_COLUMNS", "FORMAT", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE"]

FORMAT = "sealcam-report-2"
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 3

NO_OFFICER, RECOVERED, MISMATCH, DRIFT = (R.F_NO_OFFICER, R.F_RECOVERED, R.F_MISMATCH,
                                         R.F_DRIFT)
FACT_NAMES = {1: "battery_pct", 2: "storage_min", 3: "clock_error_ms",
              4: "oldest_unreceipted_s", 5: "since_calibration_ms"}
DAY_MS = 86_400_000
# body keys the report never reads, dropped as records are loaded (prev, device, mono,
# boot, fw, root, start, pubkey): a year of checkpoints fits in memory
_DROP = (2, 3, 5, 6, 8, 15, 16, 18)
INTEGRITY = ("records verified: each record's signature with the device's registered key "
             "and its place in the chain from seq 0; a device's records after the first one "
             "that does not verify are left out (see unverified). The media is not checked "
             "here: run `sealcam verify %s` for that")

CSV_COLUMNS = [
    "section", "device", "seq", "time", "officer", "unit", "kind", "status", "reason",
    "message", "explanation",
    # interruption
    "segment", "at", "at_byte", "refers",
    "annotation_seq", "annotation_time", "annotation_span", "annotation_span_bytes",
    "annotation_duration_ms", "annotation_duration_s", "annotation_parts",
    "missing_seq", "missing_time", "missing_waited_ms", "missing_waited_s",
    # late offload
    "capture", "offloaded", "delay_h", "worst_seq", "limit_h",
    # clock
    "old", "new", "old_rtc", "new_rtc", "correction_ms", "drift_ms_per_day", "since_ms",
    "drift_flag",
    # refusal
    "op", "target", "source",
    # recovery / release
    "length", "signed", "unsigned_tail", "recovered", "mismatch", "flags", "media", "number",
    # mark
    "phrase",
    # shift
    "station", "start", "end", "end_seq", "open", "segments", "interruptions", "marks",
    # unassigned recording
    "records", "first_seq", "first_time", "last_seq", "last_time",
    # self-check
    "ready", "reasons", "facts_battery_pct", "facts_storage_min", "facts_clock_error_ms",
    "facts_oldest_unreceipted_s", "facts_since_calibration_ms",
    # summary
    "interruptions_total", "interruptions_annotated", "interruptions_missing",
    "interruptions_unexplained", "interruptions_waiting", "verified_through",
    "late_segments", "clock_adjustments", "drift_flags",
    "refusals", "recoveries", "marks_important", "marks_notice_given", "marks_bookmark",
    "marks_other", "shifts", "unassigned_records", "self_checks", "self_checks_not_ready",
    "releases", "problems",
]

_CSV_SET = frozenset(CSV_COLUMNS)

# the JSON list of each section and its CSV `section` name, in report order
_SECTIONS = [("interruptions", "interruption"), ("late_offloads", "late_offload"),
             ("clock_adjustments", "clock_adjustment"), ("refusals", "refusal"),
             ("recoveries", "recovery"), ("marks", "mark"), ("shifts", "shift"),
             ("unassigned_recording", "unassigned_recording"),
             ("self_checks", "self_check"), ("releases", "release")]


class ReportError(Exception):
    """A usage error or an unreadable archive (exit code 3)."""


# --- values ------------------------------------------------------------------------------

def _int(x):
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _str(x):
    return x if isinstance(x, str) else None


def _iso(ms):
    ms = _int(ms)
    if ms is None:
        return None
    try:
        t = _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def _stored_ms(stored_at):
    """An archive stored_at (ISO 8601, UTC) as ms since the epoch, or None."""
    try:
        t = _dt.datetime.fromisoformat(stored_at)
    except (TypeError, ValueError):
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return int(round(t.timestamp() * 1000))


_DAY_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _day(s):
    """argparse type: a UTC day YYYY-MM-DD."""
    if isinstance(s, str) and _DAY_RE.match(s):
        try:
            return _dt.date.fromisoformat(s)
        except ValueError:
            pass
    return _bad_day(s)


def _bad_day(s):
    raise argparse.ArgumentTypeError("not a date YYYY-MM-DD: %r" % (s,))


def _as_date(x, name):
    if x is None or (isinstance(x, _dt.date) and not isinstance(x, _dt.datetime)):
        return x
    if isinstance(x, _dt.datetime):
        return x.astimezone(_dt.timezone.utc).date() if x.tzinfo else x.date()
    if isinstance(x, str):
        try:
            return _day(x)
        except argparse.ArgumentTypeError as e:
            raise ReportError("%s: %s" % (name, e)) from None
    raise ReportError("%s: not a date: %r" % (name, x))


def _day_ms(d):
    return int(_dt.datetime(d.year, d.month, d.day, tzinfo=_dt.timezone.utc).timestamp()
               * 1000)


def _positive(s):
    try:
        x = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % (s,)) from None
    if not x > 0:
        raise argparse.ArgumentTypeError("must be > 0: %r" % (s,))
    return x


def _num(x):
    """A float that is a whole number, as an int (for JSON and text)."""
    return int(x) if isinstance(x, float) and x.is_integer() else x


# --- the archive, read-only --------------------------------------------------------------

def _connect(db_path, mode):
    uri = "file:%s?%s" % (urllib.parse.quote(db_path), mode)
    db = sqlite3.connect(uri, uri=True, timeout=30.0)
    db.row_factory = sqlite3.Row
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return db, names


def _open_ro(archive_dir):
    root = os.path.abspath(os.fspath(archive_dir))
    if not os.path.isdir(root):
        raise ReportError("%s is not a sealcam archive: no such directory" % root)
    db_path = os.path.join(root, "archive.sqlite")
    if not os.path.isfile(db_path):
        raise ReportError("%s is not a sealcam archive (no archive.sqlite); make one with "
                          "`sealcam station init --archive %s`" % (root, archive_dir))
    notes = []
    try:
        try:
            db, names = _connect(db_path, "mode=ro")
        except sqlite3.OperationalError:
            # a WAL database on a read-only medium without its -shm file: read the main
            # file as it is (changes still in the WAL file are not seen)
            db, names = _connect(db_path, "immutable=1")
            notes.append("the archive was read as immutable (read-only medium): changes not "
                         "yet checkpointed into archive.sqlite are not included")
    except sqlite3.DatabaseError as e:
        raise ReportError("%s is not a readable sealcam archive: %s: %s" % (root, db_path, e)) \
            from None
    if not {"devices", "records"} <= names:
        db.close()
        raise ReportError("%s is not a sealcam archive: %s has no devices/records tables"
                          % (root, db_path))
    return root, db, notes


# --- building the report -----------------------------------------------------------------

def _not_verified(did, rec, seq, pubkey, prev_seq, prev_hash):
    """None if the archived record ``rec`` (row seq ``seq``) verifies and follows the
    record (prev_seq, prev_hash); else why not."""
    if rec.fatal:
        return "not a record: %s" % rec.fatal
    if rec.errors:
        return "; ".join(rec.errors)
    if rec.seq != seq:
        return "the record is seq %d, its archive row says %d" % (rec.seq, seq)
    if rec.body[3] != did or rec.kid != did.encode():
        return "the record names device %s" % R.printable(repr(rec.body[3]))
    try:
        if not R.check_signature(pubkey, rec):
            return "its signature does not verify with the registered key"
    except ValueError as e:
        return "the registered key is refused: %s" % e
    return R.check_next(prev_seq, prev_hash, rec)


class _Dev:
    """One device's records, decoded, with the indexes the report joins on."""

    def __init__(self, did, rows, pubkey, last_head):
        self.id = did
        self.recs = []            # [(seq, body)] in seq order (bodies without the keys in _DROP)
        self.seqs = []            # the seqs of recs, for bisect
        self.by_seq = {}
        self.chunk = {}           # segment -> chunk size (REC_START key 12)
        self.voice = {}           # interruption seq -> [VOICE_ANNOTATION body]
        self.missing = {}         # interruption seq -> [ANNOTATION_MISSING body]
        self.stored = {}          # seq -> stored_at (ms)
        self.unverified = None    # {device, first_seq, records, reason} if rows are left out
        prev_seq, prev_hash = None, None
        for row in rows:
            if self.unverified is not None:
                self.unverified["records"] += 1
                continue
            seq = row["seq"]
            rec = R.decode(row["data"] if isinstance(row["data"], bytes) else b"")
            why = _not_verified(did, rec, seq, pubkey, prev_seq, prev_hash)
            if why:
                self.unverified = {"device": did, "first_seq": seq, "records": 1,
                                   "reason": why}
                continue
            prev_seq, prev_hash = seq, rec.hash
            body = dict(rec.body)
            for k in _DROP:
                body.pop(k, None)
            self.recs.append((seq, body))
            self.seqs.append(seq)
            self.by_seq[seq] = body
            self.stored[seq] = _stored_ms(row["stored_at"])
            t = body.get(0)
            if t == REC_START and _int(body.get(12)) and body[12] > 0:
                self.chunk[seq] = body[12]
            elif t == VOICE_ANNOTATION and _int(body.get(31)) is not None:
                self.voice.setdefault(body[31], []).append(body)
            elif t == ANNOTATION_MISSING and _int(body.get(31)) is not None:
                self.missing.setdefault(body[31], []).append(body)
        end = self.last_seq()
        if self.unverified is None and last_head is not None and (end is None
                                                                   or end < last_head):
            self.unverified = {"device": did, "first_seq": (end + 1) if end is not None else 0,
                               "records": 0,
                               "reason": "records removed: the archive's chain ends at seq %s, "
                                         "before the last signed head the station saw (seq "
                                         "%d)" % (end, last_head)}

    def byte(self, segment, chunk, offset):
        c = self.chunk.get(segment)
        if c is None or _int(chunk) is None or _int(offset) is None:
            return None
        return chunk * c + offset

    def at(self, body):
        """key 34 [segment, chunk, offset] and its byte offset, or (None, None)."""
        a = body.get(34)
        if not (isinstance(a, list) and len(a) == 3 and all(_int(v) is not None for v in a)):
            return None, None
        return list(a), self.byte(*a)

    def after(self, seq, end_seq=None):
        """The records with seq in (seq, end_seq)."""
        lo = bisect.bisect_right(self.seqs, seq)
        hi = len(self.seqs) if end_seq is None else bisect.bisect_left(self.seqs, end_seq)
        return self.recs[lo:hi]

    def last_seq(self):
        return self.recs[-1][0] if self.recs else None


class _Sel:
    def __init__(self, officer, since, until):
        self.officer = officer
        self.lo = _day_ms(since) if since else None
        self.hi = _day_ms(until) + DAY_MS if until else None   # exclusive

    def dated(self):
        return self.lo is not None or self.hi is not None

    def time_ok(self, rtc):
        if not self.dated():
            return True
        if _int(rtc) is None:
            return False
        return (self.lo is None or rtc >= self.lo) and (self.hi is None or rtc < self.hi)

    def overlaps(self, start, end):
        """[start, end] (end None: still open) meets the selected days."""
        if not self.dated():
            return True
        if _int(start) is None:
            return False
        if self.hi is not None and start >= self.hi:
            return False
        if self.lo is not None and end is not None and end < self.lo:
            return False
        return True

    def __call__(self, body):
        if self.officer is not None and body.get(7) != self.officer:
            return False
        return self.time_ok(body.get(4))


def _secs(ms):
    return None if _int(ms) is None else _num(round(ms / 1000, 3))


def _fmt_s(s):
    return "%g s" % s if s is not None else "? s"



def _span_of(v, d):
    """(span, [start byte, end byte] or None) of a VOICE_ANNOTATION body; span None if
    malformed."""
    span = v.get(32)
    if not (isinstance(span, list) and len(span) == 5 and
            all(_int(x) is not None for x in span)):
        return None, None
    span = list(span)
    a, b = d.byte(span[0], span[1], span[2]), d.byte(span[0], span[3], span[4])
    return span, ([a, b] if a is not None and b is not None else None)


def _interruption(d, seq, b):
    at, at_byte = d.at(b)
    item = {"device": d.id, "seq": seq, "time": _iso(b.get(4)), "officer": _str(b.get(7)),
            "unit": _str(b.get(30)), "reason": _str(b.get(17)), "segment": _int(b.get(10)),
            "at": at, "at_byte": at_byte, "refers": _int(b.get(31)), "status": None,
            "annotation": None, "missing": None, "explanation": None}
    voice, miss = d.voice.get(seq, []), d.missing.get(seq, [])
    if miss:
        m = miss[0]
        item["missing"] = {"seq": m.get(1), "time": _iso(m.get(4)),
                           "waited_ms": _int(m.get(35)), "waited_s": _secs(m.get(35))}
    # the one interpretation verify uses too (host_tools/workflow.py)
    status, why = judge_interruption(seq, [w.get(1) for w in voice],
                                     miss[0].get(1) if miss else None,
                                     ((s2, b2.get(0)) for s2, b2 in d.after(seq)))
    item["status"] = status
    if status == ANNOTATED:
        v = voice[0]
        span, span_bytes = _span_of(v, d)
        # a statement across a segment rollover has one record per segment (SPEC §10.3)
        parts = []
        for w in voice:
            sp, sb = _span_of(w, d)
            parts.append({"seq": w.get(1), "span": sp, "span_bytes": sb})
        item["annotation"] = {"seq": v.get(1), "time": _iso(v.get(4)), "span": span,
                              "span_bytes": span_bytes, "duration_ms": _int(v.get(35)),
                              "duration_s": _secs(v.get(35)), "parts": parts}
        where = ("segment %d, chunk %d offset %d to chunk %d offset %d" % tuple(span)
                 if span else "no span")
        if span_bytes:
            where += " (bytes %d-%d)" % tuple(span_bytes)
        for part in parts[1:]:
            if part["span"]:
                where += "; continued in segment %d to chunk %d offset %d (seq %s)" % (
                    part["span"][0], part["span"][3], part["span"][4], part["seq"])
        item["explanation"] = ("annotated: VOICE_ANNOTATION seq %s at %s, %s, %s spoken"
                               % (v.get(1), item["annotation"]["time"], where,
                                  _fmt_s(item["annotation"]["duration_s"])))
    elif status == MISSING:
        item["explanation"] = ("missing, waited %s (ANNOTATION_MISSING seq %s at %s)"
                               % (_fmt_s(item["missing"]["waited_s"]), miss[0].get(1),
                                  item["missing"]["time"]))
    elif status == UNEXPLAINED:
        item["explanation"] = "unexplained: no annotation and no missing record (%s)" % why
    else:
        item["explanation"] = ("waiting: no annotation yet; none in the archive up to seq %s, "
                               "its last record (%s)" % (d.last_seq(), why))
    return item


def _late_offloads(d, sel, limit_h):
    segs = {}
    for seq, b in d.recs:
        t = b.get(0)
        if t not in MEDIA_TYPES:
            continue
        s = seq if t == REC_START else _int(b.get(10))
        if s is not None:
            segs.setdefault(s, []).append((seq, b))
    out, limit_ms = [], limit_h * 3_600_000
    for s in sorted(segs):
        recs = segs[s]
        start = d.by_seq.get(s) if d.by_seq.get(s, {}).get(0) == REC_START else recs[0][1]
        if not sel(start):
            continue
        worst, worst_seq, first = None, None, None
        for seq, b in recs:
            st, rtc = d.stored.get(seq), _int(b.get(4))
            if st is None or rtc is None:
                continue
            if first is None or st < d.stored[first]:
                first = seq
            if worst is None or st - rtc > worst:
                worst, worst_seq = st - rtc, seq
        if worst is None or worst <= limit_ms:
            continue
        out.append({"device": d.id, "segment": s, "officer": _str(start.get(7)),
                    "unit": _str(start.get(30)), "capture": _iso(start.get(4)),
                    "offloaded": _iso(d.stored[first]), "delay_h": round(worst / 3_600_000, 2),
                    "worst_seq": worst_seq, "limit_h": _num(limit_h)})
    return out


def _shifts(d, sel):
    assigns = [(seq, b) for seq, b in d.recs if b.get(0) == ASSIGN]
    out = []
    for i, (seq, b) in enumerate(assigns):
        officer = b.get(7)
        if not isinstance(officer, str):
            continue                         # a release
        nxt = assigns[i + 1] if i + 1 < len(assigns) else None
        end_seq = nxt[0] if nxt else None
        end = _int(nxt[1].get(4)) if nxt else None
        if sel.officer is not None and officer != sel.officer:
            continue
        if not sel.overlaps(_int(b.get(4)), end):
            continue
        inside = [b2.get(0) for _, b2 in d.after(seq, end_seq)]
        out.append({"device": d.id, "seq": seq, "officer": officer, "unit": _str(b.get(30)),
                    "station": _str(b.get(24)), "start": _iso(b.get(4)), "end": _iso(end),
                    "end_seq": end_seq, "open": nxt is None,
                    "segments": inside.count(REC_START),
                    "interruptions": inside.count(INTERRUPTION),
                    "marks": inside.count(MARK)})
    return out


def _unassigned(d, sel):
    n = segs = 0
    first = last = None
    open_seg = None
    for seq, b in d.recs:
        t = b.get(0)
        recording = open_seg is not None or t == REC_START
        if t == REC_START:
            open_seg = seq
        elif t in (SEGMENT, RECOVERY) and b.get(10) == open_seg:
            open_seg = None
        flags = _int(b.get(9)) or 0
        if recording and flags & NO_OFFICER and sel(b):
            n += 1
            segs += t == REC_START
            first = first or (seq, b)
            last = (seq, b)
    if not n:
        return []
    return [{"device": d.id, "records": n, "segments": segs, "first_seq": first[0],
             "first_time": _iso(first[1].get(4)), "last_seq": last[0],
             "last_time": _iso(last[1].get(4))}]


def _device_items(d, sel, limit_h):
    out = {k: [] for k, _ in _SECTIONS}
    selected = 0
    for seq, b in d.recs:
        if not sel(b):
            continue
        selected += 1
        t = b.get(0)
        base = {"device": d.id, "seq": seq, "time": _iso(b.get(4))}
        if t == INTERRUPTION:
            out["interruptions"].append(_interruption(d, seq, b))
        elif t == TIME_SET:
            old, new = _int(b.get(28)), _int(b.get(29))
            out["clock_adjustments"].append(dict(
                base, officer=_str(b.get(7)), old=_iso(old), new=_iso(new), old_rtc=old,
                new_rtc=new, correction_ms=None if old is None or new is None else new - old,
                drift_ms_per_day=_int(b.get(39)), since_ms=_int(b.get(40)),
                drift_flag=bool((_int(b.get(9)) or 0) & DRIFT)))
        elif t == REFUSAL:
            out["refusals"].append(dict(base, officer=_str(b.get(7)), op=_str(b.get(19)),
                                        target=_str(b.get(20)), source=_str(b.get(21)),
                                        reason=_str(b.get(17))))
        elif t == RECOVERY:
            flags = _int(b.get(9)) or 0
            length, signed = _int(b.get(13)), _int(b.get(22))
            out["recoveries"].append(dict(
                base, segment=_int(b.get(10)), length=length, signed=signed,
                unsigned_tail=None if length is None or signed is None else length - signed,
                recovered=bool(flags & RECOVERED), mismatch=bool(flags & MISMATCH),
                flags=flags))
        elif t == MARK:
            at, at_byte = d.at(b)
            phrase = b.get(42)
            out["marks"].append(dict(base, officer=_str(b.get(7)), unit=_str(b.get(30)),
                                     kind=_str(b.get(33)), at=at, at_byte=at_byte,
                                     phrase=phrase if isinstance(phrase, bool) else None))
        elif t == SELF_CHECK:
            facts = b.get(38) if isinstance(b.get(38), dict) else {}
            reasons = b.get(37)
            out["self_checks"].append(dict(
                base, officer=_str(b.get(7)),
                ready=b.get(36) if isinstance(b.get(36), bool) else None,
                reasons=[r for r in reasons if isinstance(r, str)]
                if isinstance(reasons, list) else [],
                facts={name: _int(facts.get(k)) for k, name in FACT_NAMES.items()}))
        elif t == RELEASE:
            out["releases"].append(dict(base, segment=_int(b.get(10)), media=_str(b.get(11)),
                                        length=_int(b.get(13)), number=_int(b.get(27))))
    out["late_offloads"] = _late_offloads(d, sel, limit_h)
    out["shifts"] = _shifts(d, sel)
    out["unassigned_recording"] = _unassigned(d, sel)
    segments = sum(1 for seq, b in d.recs if b.get(0) == REC_START and sel(b))
    return out, selected, segments


def _problems(items):
    probs = []
    for it in items["interruptions"]:
        if it["status"] == UNEXPLAINED:
            probs.append({"device": it["device"], "seq": it["seq"],
                          "kind": "interruption_unexplained",
                          "message": "%s seq %d: interruption (%s) at %s is %s"
                                     % (it["device"], it["seq"], it["reason"], it["time"],
                                        it["explanation"])})
        elif it["status"] == MISSING:
            probs.append({"device": it["device"], "seq": it["seq"],
                          "kind": "annotation_missing",
                          "message": "%s seq %d: interruption (%s) at %s was not explained "
                                     "aloud: annotation %s"
                                     % (it["device"], it["seq"], it["reason"], it["time"],
                                        it["explanation"])})
    for it in items["late_offloads"]:
        probs.append({"device": it["device"], "seq": it["segment"], "kind": "late_offload",
                      "message": "%s segment %d (REC_START seq %d): captured %s, first "
                                 "offloaded %s; seq %s reached the archive %.2f h after it "
                                 "was made, over the %s h limit (R8)"
                                 % (it["device"], it["segment"], it["segment"], it["capture"],
                                    it["offloaded"], it["worst_seq"], it["delay_h"],
                                    it["limit_h"])})
    for it in items["clock_adjustments"]:
        if it["drift_flag"]:
            probs.append({"device": it["device"], "seq": it["seq"], "kind": "clock_drift",
                          "message": "%s seq %d: TIME_SET at %s corrected the clock by %s ms; "
                                     "the drift measured over %s, %s ms/day, is beyond the "
                                     "limit (DRIFT)"
                                     % (it["device"], it["seq"], it["time"],
                                        it["correction_ms"],
                                        "?" if it["since_ms"] is None
                                        else "%.1f h" % (it["since_ms"] / 3_600_000),
                                        it["drift_ms_per_day"])})
    probs.sort(key=lambda p: (p["device"], p["seq"]))
    return probs


def _summary(did, items, probs, selected, segments, verified_through):
    def mine(key):
        return [it for it in items[key] if it["device"] == did]
    ints = mine("interruptions")
    marks = mine("marks")
    checks = mine("self_checks")
    return {
        "records": selected, "segments": segments,
        "interruptions": {"total": len(ints),
                          "annotated": sum(i["status"] == "annotated" for i in ints),
                          "missing": sum(i["status"] == "missing" for i in ints),
                          "unexplained": sum(i["status"] == "unexplained" for i in ints),
                          "waiting": sum(i["status"] == WAITING for i in ints)},
        "verified_through": verified_through,
        "late_segments": len(mine("late_offloads")),
        "clock_adjustments": len(mine("clock_adjustments")),
        "drift_flags": sum(c["drift_flag"] for c in mine("clock_adjustments")),
        "refusals": len(mine("refusals")),
        "recoveries": len(mine("recoveries")),
        "marks": {"important": sum(m["kind"] == "important" for m in marks),
                  "notice_given": sum(m["kind"] == "notice_given" for m in marks),
                  "bookmark": sum(m["kind"] == "bookmark" for m in marks),
                  "other": sum(m["kind"] not in MARK_KINDS for m in marks)},
        "shifts": len(mine("shifts")),
        "unassigned_records": sum(u["records"] for u in mine("unassigned_recording")),
        "self_checks": len(checks),
        "self_checks_not_ready": sum(c["ready"] is False for c in checks),
        "releases": len(mine("releases")),
        "problems": sum(p["device"] == did for p in probs),
    }


def build_report(archive_dir, device=None, officer=None, since=None, until=None,
                 offload_limit_h=24):
    """The report as a dict (the JSON object of the module docstring). ``device``: an id or
    a list of ids (None: every device); ``since``/``until``: UTC days (date or
    "YYYY-MM-DD"), inclusive, by record time. Raises ReportError (not an archive, unknown
    device, bad dates)."""
    since, until = _as_date(since, "--from"), _as_date(until, "--to")
    if since and until and since > until:
        raise ReportError("--from %s is after --to %s" % (since, until))
    if isinstance(device, str):
        device = [device]
    if officer is not None and not isinstance(officer, str):
        raise ReportError("--officer: not an officer id: %r" % (officer,))
    try:
        limit_h = float(offload_limit_h)
    except (TypeError, ValueError):
        raise ReportError("--offload-limit-h: not a number: %r" % (offload_limit_h,)) \
            from None
    if not limit_h > 0:
        raise ReportError("--offload-limit-h must be > 0: %r" % (offload_limit_h,))
    root, db, notes = _open_ro(archive_dir)
    try:
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            meta = {}
        try:
            known = [r["id"] for r in db.execute("SELECT id FROM devices ORDER BY id")]
        except sqlite3.DatabaseError as e:
            raise ReportError("%s: cannot read the archive's devices: %s" % (root, e)) \
                from None
        if device:
            unknown = [x for x in device if x not in known]
            if unknown:
                raise ReportError("device %s is not in the archive %s (devices: %s)"
                                  % (", ".join(unknown), root, ", ".join(known) or "none"))
            ids = [x for x in known if x in set(device)]
        else:
            ids = known
        sel = _Sel(officer, since, until)
        items = {k: [] for k, _ in _SECTIONS}
        unverified = []
        counts = {}
        for did in ids:
            try:
                dev = db.execute("SELECT pubkey, last_head_seq FROM devices WHERE id = ?",
                                 (did,)).fetchone()
                rows = db.execute("SELECT seq, stored_at, data FROM records WHERE device = ? "
                                  "ORDER BY seq", (did,))
                d = _Dev(did, rows, bytes(dev["pubkey"] or b""), dev["last_head_seq"])
                if d.unverified is not None:
                    unverified.append(d.unverified)
            except sqlite3.DatabaseError as e:
                raise ReportError("%s: cannot read the records of device %s: %s"
                                  % (root, did, e)) from None
            dev_items, selected, segments = _device_items(d, sel, limit_h)
            for k in items:
                items[k].extend(dev_items[k])
            counts[did] = (selected, segments, d.last_seq())
    finally:
        db.close()
    probs = _problems(items)
    for u in unverified:
        probs.append({"device": u["device"], "seq": u["first_seq"], "kind": "not_verified",
                      "message": "%s: %s; %s; `sealcam verify %s` tells more" % (
                          u["device"], u["reason"],
                          "the report lists only records 0..%d, which verify" % (
                              u["first_seq"] - 1) if u["first_seq"] else
                          "no record of it is reported", root)})
        notes.append("%s: %d archived record(s) from seq %d are left out: they do not verify"
                     % (u["device"], u["records"], u["first_seq"]))
    probs.sort(key=lambda p: (p["device"], p["seq"]))
    rep = {
        "format": FORMAT,
        "archive": root,
        "archive_id": meta.get("archive_id"),
        "generated_at": _iso(int(_dt.datetime.now(_dt.timezone.utc).timestamp() * 1000)),
        "filters": {"devices": list(device) if device else None, "officer": officer,
                    "from": since.isoformat() if since else None,
                    "to": until.isoformat() if until else None,
                    "offload_limit_h": _num(limit_h)},
        "integrity": INTEGRITY % root,
        "devices": ids,
        "summary": {did: _summary(did, items, probs, *counts[did]) for did in ids},
    }
    rep.update(items)
    rep["unverified"] = unverified
    rep["notes"] = notes
    rep["problems"] = probs
    return rep


def exit_code(rep):
    return EXIT_PROBLEMS if rep["problems"] else EXIT_OK


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
        row[prefix] = json.dumps(x, separators=(",", ":"), ensure_ascii=False)
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
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true",
                   help="print one JSON object (keys documented in host_tools/report.py)")
    g.add_argument("--csv", action="store_true",
                   help="print one CSV table, a `section` column naming each row's kind")
    return parser


def run(args) -> int:
    """`sealcam report`: 0 report made, no problem; 1 report made, compliance problems;
    3 usage error or not an archive."""
    try:
        rep = build_report(args.archive, device=args.device, officer=args.officer,
                           since=args.since, until=args.until,
                           offload_limit_h=args.offload_limit_h)
    except ReportError as e:
        print("sealcam report: %s" % e, file=sys.stderr)
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
