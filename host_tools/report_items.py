"""The items of `sealcam report` (see host_tools/report.py): one device's verified records
and what the report makes of them (interruptions, late offloads, shifts, …).

``_Dev(did, rows, pubkey, last_head, logged)`` reads one device's archived rows in seq
order, keeping only the prefix that verifies (host_tools.records) and, with ``logged``
({seq: (hash, type, stored_at, offload)} from the station log), that the station log
holds with the same hash; stored_at is then the log's. With ``log_signed`` (the log's
checkpoint verified with the station key) a record whose hash the log holds is only
unpacked and chained: the station checked it in full when it arrived. The ``_*`` functions
below
build the report's sections from it.
"""
from __future__ import annotations

import argparse
import bisect
import datetime as _dt
import re

from . import records as R
from .records import K
from .records import (ANNOTATION_MISSING, ASSIGN, INTERRUPTION, MARK, MARK_KINDS,
                      MEDIA_TYPES, REC_START, RECOVERY, REFUSAL, RELEASE, SEGMENT,
                      SELF_CHECK, TIME_SET, VOICE_ANNOTATION)
from .workflow import ANNOTATED, MISSING, UNEXPLAINED, WAITING, judge_interruption

NO_OFFICER, RECOVERED, MISMATCH, DRIFT = (R.F_NO_OFFICER, R.F_RECOVERED, R.F_MISMATCH,
                                         R.F_DRIFT)
FACT_NAMES = {1: "battery_pct", 2: "storage_min", 3: "clock_error_ms",
              4: "oldest_unreceipted_s", 5: "since_calibration_ms"}
DAY_MS = 86_400_000
# body keys the report never reads, dropped as records are loaded (prev, device, mono,
# boot, fw, root, start, pubkey): a year of checkpoints fits in memory
_DROP = (2, 3, 5, 6, 8, 15, 16, 18)

# the JSON list of each section and its CSV `section` name, in report order
_SECTIONS = [("interruptions", "interruption"), ("late_offloads", "late_offload"),
             ("clock_adjustments", "clock_adjustment"), ("refusals", "refusal"),
             ("recoveries", "recovery"), ("marks", "mark"), ("shifts", "shift"),
             ("unassigned_recording", "unassigned_recording"),
             ("self_checks", "self_check"), ("releases", "release"),
             ("statements", "statement")]


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
    if rec.body[K.DEVICE] != did or rec.kid != did.encode():
        return "the record names device %s" % R.printable(repr(rec.body[K.DEVICE]))
    try:
        if not R.check_signature(pubkey, rec):
            return "its signature does not verify with the registered key"
    except ValueError as e:
        return "the registered key is refused: %s" % e
    return R.check_next(prev_seq, prev_hash, rec)


class _Dev:
    """One device's records, decoded, with the indexes the report joins on."""

    def __init__(self, did, rows, pubkey, last_head, logged=None, log_signed=False):
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
            data = row["data"] if isinstance(row["data"], bytes) else b""
            entry = logged.get(seq) if logged else None
            if log_signed and entry is not None and bytes(entry[0]) == R.H(data):
                # the station verified this record in full when it arrived and its signed
                # log holds its hash: unpacked only, and its place in the chain checked
                rec = R.decode(data, trusted_upto=seq)
                why = (R.check_next(prev_seq, prev_hash, rec) if rec.seq == seq
                       else "the record is not seq %d" % seq)
            else:
                rec = R.decode(data)
                why = _not_verified(did, rec, seq, pubkey, prev_seq, prev_hash)
            stored_at = row["stored_at"]
            if why is None and logged is not None:      # what the station log signed
                entry = logged.get(seq)
                if entry is None:
                    why = "seq %d is not in the station log: a row added to archive.sqlite" \
                          % seq
                elif bytes(entry[0]) != rec.hash:
                    why = "seq %d is not the record the station log holds" % seq
                else:
                    stored_at = entry[2]
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
            self.stored[seq] = _stored_ms(stored_at)
            t = body.get(K.TYPE)
            if t == REC_START and _int(body.get(K.CHUNK)) and body[K.CHUNK] > 0:
                self.chunk[seq] = body[K.CHUNK]
            elif t == VOICE_ANNOTATION and _int(body.get(K.REFERS)) is not None:
                self.voice.setdefault(body[K.REFERS], []).append(body)
            elif t == ANNOTATION_MISSING and _int(body.get(K.REFERS)) is not None:
                self.missing.setdefault(body[K.REFERS], []).append(body)
        end = self.last_seq()
        if self.unverified is None and logged:
            lost = [k for k in logged if end is None or k > end]
            if lost:
                self.unverified = {"device": did, "first_seq": min(lost), "records": 0,
                                   "reason": "records removed: the station log holds seq "
                                             "%d..%d, archive.sqlite does not"
                                             % (min(lost), max(lost))}
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
        a = body.get(K.AT)
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


def load_dev(db, did, signed):
    """Device ``did``'s verified records (a _Dev) from the open archive.sqlite ``db``: its
    key, last head and the records it stored (hash, stored_at) from the replayed station
    log ``signed`` (report._station_facts; None: from archive.sqlite, unproven). The one
    reading of an archived chain that the report and the catalogue
    (host_tools.catalogue.recordings) share. Raises sqlite3.DatabaseError."""
    dev = db.execute("SELECT pubkey, last_head_seq FROM devices WHERE id = ?",
                     (did,)).fetchone()
    rows = db.execute("SELECT seq, stored_at, data FROM records WHERE device = ? "
                      "ORDER BY seq", (did,))
    key, head, logged = bytes(dev["pubkey"] or b""), dev["last_head_seq"], None
    if signed is not None:
        sd = signed.devices.get(did)
        if sd is None:
            key, logged = b"", {}    # not registered in the log: nothing verifies
        else:
            key, head = bytes(sd["key"]), sd["head_seq"]
            logged = signed.records.get(did, {})
    return _Dev(did, rows, key, head, logged, log_signed=signed is not None and signed.signed)


def record_segments(d):
    """{seq: segment} of device ``d``'s verified records: the segment a record belongs to
    (the REC_START's seq). A REC_START is its own; a record naming one (key 10) belongs to
    it; else the segment of its `at` (key 34); else the segment open at that point of the
    chain (None: no segment). The one rule of membership that the catalogue's recordings
    (host_tools.catalogue.recordings) and the report's catalogue filters use."""
    out, open_seg = {}, None
    for seq, b in d.recs:
        t = b.get(K.TYPE)
        if t == REC_START:
            open_seg = seq
        seg = seq if t == REC_START else _int(b.get(K.SEGMENT))
        if seg is None:
            at, _ = d.at(b)
            seg = at[0] if at else open_seg
        out[seq] = seg
        if t in (SEGMENT, RECOVERY) and seg == open_seg:
            open_seg = None
    return out


class _Sel:
    """The report's selection: officer and UTC days on each record; ``keep``, when the
    catalogue's filters are given ({(device, segment)} of the recordings `sealcam search`
    finds with them), only the records of those recordings (record_segments)."""

    def __init__(self, officer, since, until, keep=None):
        self.keep = keep
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
        if self.officer is not None and body.get(K.OFFICER) != self.officer:
            return False
        return self.time_ok(body.get(K.RTC))


def _secs(ms):
    return None if _int(ms) is None else _num(round(ms / 1000, 3))


def _fmt_s(s):
    return "%g s" % s if s is not None else "? s"



def _span_of(v, d):
    """(span, [start byte, end byte] or None) of a VOICE_ANNOTATION body; span None if
    malformed."""
    span = v.get(K.SPAN)
    if not (isinstance(span, list) and len(span) == 5 and
            all(_int(x) is not None for x in span)):
        return None, None
    span = list(span)
    a, b = d.byte(span[0], span[1], span[2]), d.byte(span[0], span[3], span[4])
    return span, ([a, b] if a is not None and b is not None else None)


def _interruption(d, seq, b):
    at, at_byte = d.at(b)
    item = {"device": d.id, "seq": seq, "time": _iso(b.get(K.RTC)),
            "officer": _str(b.get(K.OFFICER)), "unit": _str(b.get(K.UNIT)),
            "reason": _str(b.get(K.REASON)), "segment": _int(b.get(K.SEGMENT)),
            "at": at, "at_byte": at_byte, "refers": _int(b.get(K.REFERS)), "status": None,
            "annotation": None, "missing": None, "explanation": None}
    voice, miss = d.voice.get(seq, []), d.missing.get(seq, [])
    if miss:
        m = miss[0]
        item["missing"] = {"seq": m.get(K.SEQ), "time": _iso(m.get(K.RTC)),
                           "waited_ms": _int(m.get(K.DURATION)),
                           "waited_s": _secs(m.get(K.DURATION))}
    # the one interpretation verify uses too (host_tools/workflow.py)
    status, why = judge_interruption(seq, [w.get(K.SEQ) for w in voice],
                                     miss[0].get(K.SEQ) if miss else None,
                                     ((s2, b2.get(K.TYPE)) for s2, b2 in d.after(seq)))
    item["status"] = status
    if status == ANNOTATED:
        v = voice[0]
        span, span_bytes = _span_of(v, d)
        # a statement across a segment rollover has one record per segment (SPEC §10.3)
        parts = []
        for w in voice:
            sp, sb = _span_of(w, d)
            parts.append({"seq": w.get(K.SEQ), "span": sp, "span_bytes": sb})
        item["annotation"] = {"seq": v.get(K.SEQ), "time": _iso(v.get(K.RTC)), "span": span,
                              "span_bytes": span_bytes, "duration_ms": _int(v.get(K.DURATION)),
                              "duration_s": _secs(v.get(K.DURATION)), "parts": parts}
        where = ("segment %d, chunk %d offset %d to chunk %d offset %d" % tuple(span)
                 if span else "no span")
        if span_bytes:
            where += " (bytes %d-%d)" % tuple(span_bytes)
        for part in parts[1:]:
            if part["span"]:
                where += "; continued in segment %d to chunk %d offset %d (seq %s)" % (
                    part["span"][0], part["span"][3], part["span"][4], part["seq"])
        item["explanation"] = ("annotated: VOICE_ANNOTATION seq %s at %s, %s, %s spoken"
                               % (v.get(K.SEQ), item["annotation"]["time"], where,
                                  _fmt_s(item["annotation"]["duration_s"])))
    elif status == MISSING:
        item["explanation"] = ("missing, waited %s (ANNOTATION_MISSING seq %s at %s)"
                               % (_fmt_s(item["missing"]["waited_s"]), miss[0].get(K.SEQ),
                                  item["missing"]["time"]))
    elif status == UNEXPLAINED:
        item["explanation"] = "unexplained: no annotation and no missing record (%s)" % why
    else:
        item["explanation"] = ("waiting: no annotation yet; none in the archive up to seq %s, "
                               "its last record (%s)" % (d.last_seq(), why))
    return item


def _statement(d, base, b):
    """A VOICE_ANNOTATION: the officer's statement and how to hear it (the clip command is
    filled in by report.build_report, which knows the archive)."""
    i = d.by_seq.get(_int(b.get(K.REFERS)), {})
    span, _ = _span_of(b, d)
    return dict(base, officer=_str(b.get(K.OFFICER)), unit=_str(b.get(K.UNIT)),
                refers=_int(b.get(K.REFERS)), reason=_str(i.get(K.REASON)),
                segment=span[0] if span else None, span=span,
                duration_s=_secs(b.get(K.DURATION)), clip_command=None, clip_file=None,
                clip_error=None)


def _late_offloads(d, sel, limit_h):
    segs = {}
    for seq, b in d.recs:
        t = b.get(K.TYPE)
        if t not in MEDIA_TYPES:
            continue
        s = seq if t == REC_START else _int(b.get(K.SEGMENT))
        if s is not None:
            segs.setdefault(s, []).append((seq, b))
    out, limit_ms = [], limit_h * 3_600_000
    for s in sorted(segs):
        recs = segs[s]
        start = d.by_seq.get(s) if d.by_seq.get(s, {}).get(K.TYPE) == REC_START else recs[0][1]
        if not sel(start):
            continue
        worst, worst_seq, first = None, None, None
        for seq, b in recs:
            st, rtc = d.stored.get(seq), _int(b.get(K.RTC))
            if st is None or rtc is None:
                continue
            if first is None or st < d.stored[first]:
                first = seq
            if worst is None or st - rtc > worst:
                worst, worst_seq = st - rtc, seq
        if worst is None or worst <= limit_ms:
            continue
        out.append({"device": d.id, "segment": s, "officer": _str(start.get(K.OFFICER)),
                    "unit": _str(start.get(K.UNIT)), "capture": _iso(start.get(K.RTC)),
                    "offloaded": _iso(d.stored[first]), "delay_h": round(worst / 3_600_000, 2),
                    "worst_seq": worst_seq, "limit_h": _num(limit_h)})
    return out


def _shifts(d, sel):
    assigns = [(seq, b) for seq, b in d.recs if b.get(K.TYPE) == ASSIGN]
    out = []
    for i, (seq, b) in enumerate(assigns):
        officer = b.get(K.OFFICER)
        if not isinstance(officer, str):
            continue                         # a release
        nxt = assigns[i + 1] if i + 1 < len(assigns) else None
        end_seq = nxt[0] if nxt else None
        end = _int(nxt[1].get(K.RTC)) if nxt else None
        if sel.officer is not None and officer != sel.officer:
            continue
        if not sel.overlaps(_int(b.get(K.RTC)), end):
            continue
        inside = [b2.get(K.TYPE) for _, b2 in d.after(seq, end_seq)]
        out.append({"device": d.id, "seq": seq, "officer": officer, "unit": _str(b.get(K.UNIT)),
                    "station": _str(b.get(K.STATION)), "start": _iso(b.get(K.RTC)),
                    "end": _iso(end),
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
        t = b.get(K.TYPE)
        recording = open_seg is not None or t == REC_START
        if t == REC_START:
            open_seg = seq
        elif t in (SEGMENT, RECOVERY) and b.get(K.SEGMENT) == open_seg:
            open_seg = None
        flags = _int(b.get(K.FLAGS)) or 0
        if recording and flags & NO_OFFICER and sel(b):
            n += 1
            segs += t == REC_START
            first = first or (seq, b)
            last = (seq, b)
    if not n:
        return []
    return [{"device": d.id, "records": n, "segments": segs, "first_seq": first[0],
             "first_time": _iso(first[1].get(K.RTC)), "last_seq": last[0],
             "last_time": _iso(last[1].get(K.RTC))}]


def _device_items(d, sel, limit_h):
    out = {k: [] for k, _ in _SECTIONS}
    selected = 0
    segof = record_segments(d) if sel.keep is not None else None
    for seq, b in d.recs:
        if not sel(b):
            continue
        if segof is not None and (d.id, segof.get(seq)) not in sel.keep:
            continue
        selected += 1
        t = b.get(K.TYPE)
        base = {"device": d.id, "seq": seq, "time": _iso(b.get(K.RTC))}
        if t == INTERRUPTION:
            out["interruptions"].append(_interruption(d, seq, b))
        elif t == TIME_SET:
            old, new = _int(b.get(K.OLD)), _int(b.get(K.NEW))
            out["clock_adjustments"].append(dict(
                base, officer=_str(b.get(K.OFFICER)), old=_iso(old), new=_iso(new), old_rtc=old,
                new_rtc=new, correction_ms=None if old is None or new is None else new - old,
                drift_ms_per_day=_int(b.get(K.DRIFT)), since_ms=_int(b.get(K.SINCE)),
                drift_flag=bool((_int(b.get(K.FLAGS)) or 0) & DRIFT)))
        elif t == REFUSAL:
            out["refusals"].append(dict(base, officer=_str(b.get(K.OFFICER)), op=_str(b.get(K.OP)),
                                        target=_str(b.get(K.TARGET)), source=_str(b.get(K.SOURCE)),
                                        reason=_str(b.get(K.REASON))))
        elif t == RECOVERY:
            flags = _int(b.get(K.FLAGS)) or 0
            length, signed = _int(b.get(K.LENGTH)), _int(b.get(K.SIGNED))
            out["recoveries"].append(dict(
                base, segment=_int(b.get(K.SEGMENT)), length=length, signed=signed,
                unsigned_tail=None if length is None or signed is None else length - signed,
                recovered=bool(flags & RECOVERED), mismatch=bool(flags & MISMATCH),
                flags=flags))
        elif t == MARK:
            at, at_byte = d.at(b)
            phrase = b.get(K.PHRASE)
            out["marks"].append(dict(base, officer=_str(b.get(K.OFFICER)), unit=_str(b.get(K.UNIT)),
                                     kind=_str(b.get(K.KIND)), at=at, at_byte=at_byte,
                                     phrase=phrase if isinstance(phrase, bool) else None))
        elif t == SELF_CHECK:
            facts = b.get(K.FACTS) if isinstance(b.get(K.FACTS), dict) else {}
            reasons = b.get(K.REASONS)
            out["self_checks"].append(dict(
                base, officer=_str(b.get(K.OFFICER)),
                ready=b.get(K.READY) if isinstance(b.get(K.READY), bool) else None,
                reasons=[r for r in reasons if isinstance(r, str)]
                if isinstance(reasons, list) else [],
                facts={name: _int(facts.get(k)) for k, name in FACT_NAMES.items()}))
        elif t == RELEASE:
            out["releases"].append(dict(base, segment=_int(b.get(K.SEGMENT)),
                                        media=_str(b.get(K.MEDIA)),
                                        length=_int(b.get(K.LENGTH)), number=_int(b.get(K.NUMBER))))
        elif t == VOICE_ANNOTATION:
            out["statements"].append(_statement(d, base, b))
    out["late_offloads"] = _late_offloads(d, sel, limit_h)
    out["shifts"] = _shifts(d, sel)
    out["unassigned_recording"] = _unassigned(d, sel)
    if segof is not None:       # only the chosen recordings, and the shifts they were in
        out["late_offloads"] = [x for x in out["late_offloads"]
                                if (d.id, x["segment"]) in sel.keep]
        kept = sorted(s for (dv, s) in sel.keep if dv == d.id)
        out["shifts"] = [x for x in out["shifts"] if any(
            x["seq"] < s and (x["end_seq"] is None or s < x["end_seq"]) for s in kept)]
        out["unassigned_recording"] = []
    segments = sum(1 for seq, b in d.recs if b.get(K.TYPE) == REC_START and sel(b)
                   and (segof is None or (d.id, seq) in sel.keep))
    return out, selected, segments


def _problems(items):
    probs = []
    for it in items["interruptions"]:
        if it.get("written"):           # explained in writing afterwards (R3)
            continue
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


