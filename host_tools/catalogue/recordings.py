"""Recordings: one per archived segment, with its facts from the archive's verified records.

    collect(archive_dir, devices=None) -> [recording, ...]   (device, then segment order)

A *recording* is one segment of one device, named by (device, segment = the seq of its
REC_START). Its facts come only from records that verify: each device's chain is read the
way `sealcam report` reads it (host_tools.report_items.load_dev: strict decoding, the
signature with the device's registered key, the chain from seq 0, the station log's
hashes and stored_at), so a record the report leaves out is left out here too, and a
segment whose REC_START is not in the verified prefix is no recording. Where the report
already judges a fact, its function is called (one interpretation): an interruption's
status is report_items._interruption's (host_tools.workflow.judge_interruption, which
verify uses too), a record's `at` is report_items._Dev.at, times are report_items._iso.

Each recording is a dict with exactly these keys:

    device, segment     the device id; the seq of the segment's REC_START
    start_ms            the REC_START's rtc (ms since the epoch, UTC), or None
    end_ms              the rtc of the first SEGMENT or RECOVERY record that closes it; None
                        while it is open (a RECOVERY is written at the next boot, so its rtc
                        is when the segment was sealed, not when the picture stopped)
    duration_ms         end_ms - start_ms, or None
    officer, unit       the officer (key 7) and unit (key 30) of the REC_START: who was
                        assigned when recording started (None: unassigned)
    bytes               the media bytes signed: `length` of the closing record, or of the
                        last CHECKPOINT while open (0: none yet)
    state               "complete": closed by a verified record, and archive.sqlite's
                        segments row holds its media whole (state complete, closed by that
                        record, the same length); else "partial" (still open, or media not
                        (all) transferred). The media bytes themselves are checked by
                        `sealcam verify`, not here.
    interruptions       the INTERRUPTION records of this segment (see below)
    statements          of those, how many are "annotated" (a VOICE_ANNOTATION explains it)
    unstated            of those, how many are "missing" or "unexplained" (the report's
                        problems); the rest are "waiting" (interruptions - statements -
                        unstated)
    marks_important, marks_notice, marks_bookmark
                        MARK records of kind important / notice_given / bookmark made in it
    first_stored_at     when the archive first stored one of its media records (REC_START,
                        CHECKPOINT, SEGMENT, RECOVERY), as the report's late-offload check
                        reads it (the station log's stored_at); UTC ISO, or None

Which segment an INTERRUPTION (or a MARK) belongs to (report_items.record_segments, the
rule `sealcam report` narrows its items by too): the segment it names (an INTERRUPTION's
`segment`, key 10, which SPEC §10.3 always writes, for a power loss the recovered
segment; else the segment of its `at`, key 34); a record that names none belongs to the
segment open at that point in the chain, else to none. An interruption is counted
on the segment it *interrupted*, not on the resumed one where the officer's statement is
spoken: an interruption that was never resumed (the shift ended; exactly the unexplained
case a clerk searches for) then still belongs to a recording.

Nothing here writes; archive.sqlite is opened read-only. Raises ReportError (not an
archive, unknown device, unreadable rows), with one line saying what and where.
"""
from __future__ import annotations

import sqlite3

from ..i18n import _
from ..records import K
from ..records import (CHECKPOINT, INTERRUPTION, MARK, MEDIA_TYPES, REC_START, RECOVERY,
                       SEGMENT)
from ..report_items import (ReportError, _int, _interruption, _iso, _str, load_dev,
                            record_segments)
from ..workflow import ANNOTATED, MISSING, UNEXPLAINED

__all__ = ["collect", "KEYS", "ReportError"]

KEYS = ("device", "segment", "start_ms", "end_ms", "duration_ms", "officer", "unit", "bytes",
        "state", "interruptions", "statements", "unstated", "marks_important",
        "marks_notice", "marks_bookmark", "first_stored_at")

_MARK_KEYS = {"important": "marks_important", "notice_given": "marks_notice",
              "bookmark": "marks_bookmark"}


def _recordings(d, held):
    """The recordings of one device's verified chain ``d`` (report_items._Dev); ``held``:
    {segment: (state, length, closed_by)} from archive.sqlite's segments rows."""
    out = {}
    first_stored = {}
    segof = record_segments(d)            # the one rule of membership (the report's too)
    for seq, b in d.recs:
        t = b.get(K.TYPE)
        if t == REC_START:
            out[seq] = {"device": d.id, "segment": seq, "start_ms": _int(b.get(K.RTC)),
                        "end_ms": None, "duration_ms": None,
                        "officer": _str(b.get(K.OFFICER)), "unit": _str(b.get(K.UNIT)),
                        "bytes": 0, "state": "partial", "interruptions": 0,
                        "statements": 0, "unstated": 0, "marks_important": 0,
                        "marks_notice": 0, "marks_bookmark": 0, "first_stored_at": None,
                        "_closed_by": None}
        seg = segof.get(seq)
        r = out.get(seg)
        if r is None:
            continue
        if t in MEDIA_TYPES:
            st = d.stored.get(seq)
            if st is not None and (seg not in first_stored or st < first_stored[seg]):
                first_stored[seg] = st
        if t in (CHECKPOINT, SEGMENT, RECOVERY) and r["_closed_by"] is None:
            length = _int(b.get(K.LENGTH))
            if length is not None and (t != CHECKPOINT or length >= r["bytes"]):
                r["bytes"] = length
            if t != CHECKPOINT:
                r["_closed_by"] = seq
                r["end_ms"] = _int(b.get(K.RTC))
                if r["end_ms"] is not None and r["start_ms"] is not None:
                    r["duration_ms"] = r["end_ms"] - r["start_ms"]
        elif t == INTERRUPTION:
            status = _interruption(d, seq, b)["status"]
            r["interruptions"] += 1
            r["statements"] += status == ANNOTATED
            r["unstated"] += status in (MISSING, UNEXPLAINED)
        elif t == MARK:
            key = _MARK_KEYS.get(_str(b.get(K.KIND)))
            if key:
                r[key] += 1
    for seg, r in out.items():
        closed_by = r.pop("_closed_by")
        if seg in first_stored:
            r["first_stored_at"] = _iso(first_stored[seg])
        h = held.get(seg)
        if (closed_by is not None and h is not None and h[0] == "complete"
                and h[2] == closed_by and h[1] == r["bytes"]):
            r["state"] = "complete"
    return [out[s] for s in sorted(out)]


def collect(archive_dir, devices=None):
    """Every recording of the archive ``archive_dir`` (of ``devices``: an id or a list of
    ids; None: every device), in (device, segment) order: dicts with the keys KEYS (see the
    module doc). Raises ReportError."""
    from ..archive.typed import shadow
    from ..report import _open_ro, _station_facts
    if isinstance(devices, str):
        devices = [devices]
    root, db, _notes = _open_ro(archive_dir)
    try:
        shadow(db)                 # rows of the wrong SQLite type are left out
        try:
            known = [r["id"] for r in db.execute("SELECT id FROM devices ORDER BY id")]
        except sqlite3.DatabaseError as e:
            raise ReportError(_("%(archive)s: cannot read the archive's devices: %(error)s")
                              % {"archive": root, "error": e}) from None
        if devices:
            unknown = [x for x in devices if x not in known]
            if unknown:
                raise ReportError(_("device %(device)s is not in the archive %(archive)s")
                                  % {"device": ", ".join(map(str, unknown)), "archive": root})
            ids = [x for x in known if x in set(devices)]
        else:
            ids = known
        signed = _station_facts(root)[0]
        out = []
        for did in ids:
            try:
                d = load_dev(db, did, signed)
                held = {r["segment"]: (r["state"], r["length"], r["closed_by"])
                        for r in db.execute("SELECT segment, state, length, closed_by "
                                            "FROM segments WHERE device = ?", (did,))}
            except sqlite3.DatabaseError as e:
                raise ReportError(_("%(archive)s: cannot read the records of device "
                                    "%(device)s: %(error)s")
                                  % {"archive": root, "device": did, "error": e}) from None
            out.extend(_recordings(d, held))
        return out
    finally:
        db.close()
