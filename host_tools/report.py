"""`sealcam report --archive DIR`: a compliance report from a station archive (SPEC §9, §10).

    sealcam report --archive DIR [--device ID]... [--officer ID] [--from YYYY-MM-DD]
                   [--to YYYY-MM-DD] [--offload-limit-h H] [--json | --csv]

The report reads DIR/archive.sqlite read-only and reports only what verifies: each device's
records are checked as they are read (host_tools.records: strict decoding, the signature
with the device's registered key, the chain from seq 0). From the first record that does
not verify, the device's records are left out: the report lists the verified prefix only,
names what was left out ("unverified") and counts it as a problem (kind "not_verified",
exit code 1). A chain that ends before the last signed head the station saw is "records
removed", the same way. What only the station knows is taken from its signed station log
(SPEC §11), not from archive.sqlite: each device's registered key and last head, which
records it stored (a row the log does not hold with that hash is not verified, a record
the log holds that archive.sqlite lacks is "records removed") and when (stored_at, so a
back-dated row cannot hide a late offload); a device the log registered that
archive.sqlite lacks is named. An archive without a log falls back to archive.sqlite,
with a note. When a checkpoint signed by the station key covers the log, a record whose
hash the log holds is only unpacked and chained, not re-checked (the station checked it
in full as it arrived): measured 13 µs per record against 156 µs (10,601 records). The media is not checked here: `sealcam verify DIR` does that.
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
  statements          VOICE_ANNOTATION records, each with the `sealcam clip` command that
                      writes it as a clip to hear (--clips DIR writes them all)
  summary             counts per device
  problems            what makes the report non-compliant: unexplained interruptions,
                      missing annotations, late offloads, DRIFT flags, records that do not
                      verify

Exit codes: 0 the report was made and shows no problem; 1 the report was made and lists
compliance problems (records that do not verify among them); 3 usage error, DIR is not a
readable archive, or --officer names an officer no record of the archive names.

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
                       "explanation": str,          # readable: the span, "missing, waited
                                                    # N s", or why it is unexplained
                       "written": [{"sha256", "name", "by", "at", "log_entry"}]}],
        # written: the written explanations a clerk filed for it (`sealcam doc add --kind
        # explanation`, SPEC §14.5), from the signed station log; a missing or unexplained
        # interruption with one is no longer a problem (R3: explained in writing)
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
    "statements": [{"device", "seq", "time", "officer", "unit", "refers", "reason",
                    "segment", "span", "duration_s", "clip_command", "clip_file",
                    "clip_error"}],
        # each VOICE_ANNOTATION (the officer's statement): refers/reason = the INTERRUPTION
        # it explains; clip_command = the exact `sealcam clip` that writes it as a playable,
        # verifiable clip (SPEC §12); clip_file / clip_error: set by --clips DIR, which
        # writes DIR/DEVICE-SEQ.mkv (+ .prov) for each, or says why it could not
    "unverified": [{"device", "first_seq", "records", "reason"}],
        # per device: the records left out, from the first that does not verify
    "notes": [str],
    "custody": {"backup": {"last": null | {"id", "destination", "snapshot", "log_size",
                                           "root", "objects", "objects_new", "bytes_new",
                                           "by_user", "at"},
                           "overdue": bool, "days_since": int | null, "max_age_days": int},
                "without_successor": [{"kind": "case" | "hold", "id", "keeper",
                                       "offered_to", "handover", ...}],
                "pending_handovers": int},
        # only when the archive is in clerk use (its log holds a user): the last backup
        # (R14) and what has no successor (R21); host_tools/report_custody.py
    "problems": [{"device", "seq", "kind", "message"}]
        # kind: "interruption_unexplained" | "annotation_missing" | "late_offload" |
        #       "clock_drift" | "not_verified" | "log_not_verified" | "backup_missing" |
        #       "backup_overdue" | "no_successor"; seq is the
        #       INTERRUPTION / REC_START / TIME_SET record, or the first record left out;
        #       device and seq are null for the archive's own log and for custody problems
        #       (counted only in a report not filtered to some records)
  }

CSV (--csv): one table, header CSV_COLUMNS; one row per item, its `section` column one of
summary, interruption, late_offload, clock_adjustment, refusal, recovery, mark, shift,
unassigned_recording, self_check, release, statement, problem. Nested values are flattened with "_"
(annotation_seq, interruptions_total, facts_battery_pct, ...); lists are JSON text.
"""
from __future__ import annotations

import datetime as _dt
import os
import sqlite3
import urllib.parse

from . import records as R
from .workflow import MISSING, UNEXPLAINED
from .report_items import (_SECTIONS, ReportError, _Sel, _as_date, _device_items, _iso,
                           _num, _problems, _summary, load_dev)

__all__ = ["build_report", "add_arguments", "run", "exit_code", "to_text", "to_csv",
           "ReportError",
           "CSV_COLUMNS", "FORMAT", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE"]

FORMAT = "sealcam-report-2"
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 3

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
    "missing_seq", "missing_time", "missing_waited_ms", "missing_waited_s", "written",
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
    # statement
    "span", "duration_s", "clip_command", "clip_file", "clip_error",
]

_CSV_SET = frozenset(CSV_COLUMNS)


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


def _station_facts(root):
    """(replayed station log state or None, notes, problems): what the station signed
    about each device (its key, last head, records with their hashes and stored_at; SPEC
    §11), read only as far as a checkpoint signed by the station key covers (nothing past
    it is decoded). An archive with history and no station log, a log that does not match
    its signed checkpoint, holds entries the station did not write, contradicts itself or
    cannot be read, is a problem: the report then rests on what the log still proves, and
    says that whatever it takes from archive.sqlite is unproven."""
    from .archive import Archive, ArchiveError
    from .archive_verify import check_log, station_pub_checked
    from .tlog.log import LogError
    from .tlog.replay import replay
    try:
        with Archive(root, readonly=True) as a:
            if a.log_is_absent():
                if not a.holds_history():
                    return None, [], []
                return None, [], ["the station log is missing (no log/checkpoint, no "
                                  "log/entries): facts from archive.sqlite (keys, last heads, "
                                  "stored_at) are unproven; restore log/ from a backup and run "
                                  "`sealcam verify %s`" % a.root]
            log = a.log()
            pub, why = station_pub_checked(a.root)
            notes, problems, reasons, info = [], [], [], {}
            if why:
                trusted = log.size
                problems.append("%s: the station log cannot be checked, its entries are used "
                                "unsigned (unproven)" % why)
            else:
                trusted, reasons, info = check_log(a, pub)
                problems.extend(reasons)
            st = replay(log, trusted)
            problems.extend(st.problems[:20])
            # signed: a checkpoint signed by the station key covers what is used
            st.signed = not why and not reasons and info.get("checkpoint_size") == trusted
            return st, notes, problems
    except (ArchiveError, LogError, OSError, sqlite3.DatabaseError) as e:
        return None, [], ["the station log cannot be read (%s): keys, last heads and "
                          "stored_at are taken from archive.sqlite, unproven"
                          % R.printable(str(e))]


def build_report(archive_dir, device=None, officer=None, since=None, until=None,
                 offload_limit_h=24, clips_dir=None, keep=None, catalogue_url=None):
    """The report as a dict (the JSON object of the module docstring). ``device``: an id or
    a list of ids (None: every device); ``since``/``until``: UTC days (date or
    "YYYY-MM-DD"), inclusive, by record time. ``keep``: {(device, segment)} of the
    recordings the catalogue's filters chose (catalogue.search.matching; None: no such
    filter): only their records are reported. ``clips_dir``: where the clip commands of the
    statements write (default: the current folder). ``catalogue_url``: the catalogue of
    the custody section (report_custody; default: the station's). Raises ReportError (not an archive,
    unknown device, an officer no record names, bad dates)."""
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
    from .archive.typed import shadow
    typed_problems = shadow(db)         # rows of the wrong type: named, left out
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
        sel = _Sel(officer, since, until, keep)
        items = {k: [] for k, _ in _SECTIONS}
        unverified = []
        counts = {}
        officer_seen = officer is None     # no --officer: nothing to look for
        signed, log_notes, log_problems = _station_facts(root)
        log_problems = typed_problems + log_problems
        notes.extend(log_notes)
        if signed is not None and not device:
            for did in sorted(set(signed.devices) - set(ids)):
                unverified.append({"device": did, "first_seq": 0, "records": 0,
                                   "reason": "registered in the station log but missing "
                                             "from archive.sqlite: the recorder was deleted "
                                             "from the index"})
        for did in ids:
            try:
                d = load_dev(db, did, signed)
                if d.unverified is not None:
                    unverified.append(d.unverified)
            except sqlite3.DatabaseError as e:
                raise ReportError("%s: cannot read the records of device %s: %s"
                                  % (root, did, e)) from None
            officer_seen = officer_seen or officer is None or any(
                b.get(R.K.OFFICER) == officer for _, b in d.recs)
            dev_items, selected, segments = _device_items(d, sel, limit_h)
            for k in items:
                items[k].extend(dev_items[k])
            counts[did] = (selected, segments, d.last_seq())
    finally:
        db.close()
    if not officer_seen:
        raise ReportError("officer %s is not in the archive %s: no record of %s names them "
                          "(check the id; `sealcam report --archive %s` lists every shift)"
                          % (R.printable(officer), root, "device " + ", ".join(ids)
                             if device else "any device", archive_dir))
    from .clip import clip_command
    for st in items["statements"]:
        st["clip_command"] = clip_command(root, st["device"], st["seq"], os.path.join(
            clips_dir or "", "%s-%d.mkv" % (st["device"], st["seq"])))
    for it in items["interruptions"]:     # R3's written part, from the signed log
        it["written"] = list((signed.explanations if signed is not None else {}).get(
            (it["device"], it["seq"]), []))
        if it["written"] and it["status"] in (UNEXPLAINED, MISSING):
            w = it["written"][-1]
            it["explanation"] += "; explained in writing: %s (%s…) filed by %s at %s" % (
                R.printable(str(w["name"])), str(w["sha256"])[:12], R.printable(str(w["by"])),
                w["at"])
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
    probs[:0] = [{"device": None, "seq": None, "kind": "log_not_verified",
                  "message": "archive: %s" % m} for m in log_problems]
    from .report_custody import custody        # backups (R14), handover (R21)
    cus = custody(root, catalogue_url, count=not (device or officer or since or until
                                                 or keep is not None))
    probs.extend(cus["problems"])
    notes.extend(cus["notes"])
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
    if cus["section"] is not None:
        rep["custody"] = cus["section"]
    rep["unverified"] = unverified
    rep["notes"] = notes
    rep["problems"] = probs
    return rep


def write_clips(rep, clips_dir):
    """--clips DIR: write every statement of the report as DIR/DEVICE-SEQ.mkv and its
    provenance (SPEC §12); each statement's clip_file or clip_error says how it went."""
    from .clip import ClipError, make_clip
    os.makedirs(clips_dir, exist_ok=True)
    for st in rep["statements"]:
        out = os.path.join(clips_dir, "%s-%d.mkv" % (st["device"], st["seq"]))
        try:
            res = make_clip(rep["archive"], out, annotation=(st["device"], st["seq"]))
            st["clip_file"] = res["clips"][0]["file"]
        except (ClipError, OSError) as e:
            st["clip_error"] = str(e)
            rep["notes"].append("%s seq %d: no clip written: %s" % (st["device"], st["seq"], e))


def exit_code(rep):
    return EXIT_PROBLEMS if rep["problems"] else EXIT_OK



# the forms (text, CSV, command line) live in report_output; they are part of this API
from .report_output import add_arguments, run, to_csv, to_text  # noqa: E402
