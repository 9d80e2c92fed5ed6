"""The verifier's report: verdicts, rows and the text form (SPEC §6).

``Report`` is what ``verify_store`` returns; ``RecordRow`` and ``SegmentRow`` are its rows.
Every string that came from a card is passed through records.printable before it is
printed, so a crafted store cannot drive the terminal.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .records import printable
from .workflow import describe_interruption

__all__ = ["Report", "RecordRow", "SegmentRow", "OK", "OK_WITH_MISSING_INFO", "NOT_OK",
           "NOT_SIGNED", "VERDICTS", "EXIT_CODES", "ranges"]

OK = "OK"
OK_WITH_MISSING_INFO = "OK_WITH_MISSING_INFO"
NOT_SIGNED = "NOT_SIGNED"
NOT_OK = "NOT_OK"
VERDICTS = (OK, OK_WITH_MISSING_INFO, NOT_SIGNED, NOT_OK)        # from best to worst
#: process exit code of ``sealcam verify`` for each overall verdict (3: usage or I/O error)
EXIT_CODES = {OK: 0, OK_WITH_MISSING_INFO: 0, NOT_OK: 1, NOT_SIGNED: 2}


@dataclass
class RecordRow:
    seq: int | None          # None when the bytes are not a record
    type: str | None         # "BOOT", …, "UNKNOWN(9)", "TORN_TAIL", or None
    file: str                # log file, relative to the store root
    offset: int              # byte offset of the item in that file
    verdict: str
    reason: str = ""
    info: str = ""           # what the record says, for workflow records (SPEC §10)


@dataclass
class SegmentRow:
    segment: int | None      # seq of its REC_START; None for media with no records
    media: str               # media path relative to the store root
    length: int              # media bytes covered by signatures (closing or last checkpoint)
    file_size: int | None    # bytes in the media file (None: missing)
    chunks: int              # number of chunk marks
    chunk_size: int | None
    closed_by: str | None    # "SEGMENT", "RECOVERY", or None (open)
    verdict: str
    marks: str               # one character per chunk: . M - U R X T D (SPEC §6)
    reason: str = ""


@dataclass
class Report:
    store: str
    verdict: str = NOT_SIGNED
    reasons: list = field(default_factory=list)       # overall reasons, worst first
    notes: list = field(default_factory=list)         # facts that do not change the verdict
    first_failure: dict | None = None   # {seq, file, offset, reason, [segment, record, chunk,
                                        #  head_seq]}
    records: list = field(default_factory=list)       # RecordRow, in file order
    segments: list = field(default_factory=list)      # SegmentRow, by segment seq
    device: str | None = None
    fingerprint: str | None = None                    # of the device key in use
    origin_checked: bool = False                      # True only with a pinned key
    head_seq: int | None = None
    head_file: str | None = None                      # "head.cbor" or "head.new"
    chain_end: int | None = None                      # highest seq in the chain
    record_count: int = 0
    verified_through: int | None = None               # records 0..this seq are each OK
    log_files: list = field(default_factory=list)
    # the pinned key verifies none of the records (a wrong --key, or a card that is not
    # the registered recorder's): one reason says so; rows keep their own reasons
    key_mismatch: bool = False
    store_key_fingerprint: str | None = None          # of the key in the store's BOOT
    # the officer workflow (SPEC §10), from records whose signature and body verify
    interruptions: list = field(default_factory=list)  # {seq, reason, segment, at, refers,
                                                       #  annotations, missing, status}
    marks: list = field(default_factory=list)          # {seq, kind, at, phrase, rtc}
    releases: list = field(default_factory=list)       # {seq, segment, media, length,
                                                       #  number, receipt_seq, valid}
    time_sets: list = field(default_factory=list)      # {seq, old, new, drift, since,
                                                       #  drift_flag}
    self_checks: list = field(default_factory=list)    # {seq, ready, reasons, facts}
    assignments: list = field(default_factory=list)    # {seq, officer, unit, station}

    @property
    def ok(self) -> bool:
        return self.verdict in (OK, OK_WITH_MISSING_INFO)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict:
        d = asdict(self)
        d["exit_code"] = self.exit_code
        return d

    def to_text(self, all_records: bool = False) -> str:
        return _format_text(self, all_records)


def ranges(xs, dash="-", sep=",", most=8):
    """[1, 2, 3, 7] -> '1-3,7' (at most `most` ranges shown; None: all)."""
    out, i = [], 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        out.append(str(xs[i]) if i == j else "%d%s%d" % (xs[i], dash, xs[j]))
        i = j + 1
    if most is not None and len(out) > most:
        out = out[:most] + ["…"]
    return sep.join(out)


# --- text output ----------------------------------------------------------------

def _marks_window(marks: str, width: int = 60) -> str:
    if len(marks) <= width:
        return marks
    bad = next((i for i, c in enumerate(marks) if c != "."), None)
    if bad is None or bad < width - 10:
        return marks[:width - 1] + "…"
    start = max(0, bad - 10)
    s = "…" + marks[start:start + width - 2]
    return s + "…" if start + width - 2 < len(marks) else s


_MARK_ORDER = ".MU-RXTE"


def _marks_count(marks: str) -> str:
    """'210 . 1 M': how many chunks have each mark (the table column under --all)."""
    n = {c: marks.count(c) for c in _MARK_ORDER}
    return " ".join("%d %s" % (n[c], c) for c in _MARK_ORDER if n[c]) or "no chunks"


def _marks_lines(s: SegmentRow, group: int = 10, per_line: int = 50) -> list:
    """Every chunk mark of a segment, 50 a line in groups of 10, each line led by the
    number of its first chunk (--all: nothing is cut)."""
    out = ["segment %s (%s): %d chunk%s%s" % (
        s.segment if s.segment is not None else "of no record", s.media, len(s.marks),
        "" if len(s.marks) == 1 else "s",
        " of %d bytes" % s.chunk_size if s.chunk_size else "")]
    for i in range(0, len(s.marks), per_line):
        line = s.marks[i:i + per_line]
        out.append("  %7d  %s" % (i, " ".join(line[j:j + group]
                                              for j in range(0, len(line), group))))
    return out


def _where(f: dict) -> str:
    """'seq 5 (rec/00000000.log@1234)', 'head.cbor', … for a failure; '' if nowhere."""
    place = ""
    if f.get("file"):
        place = f["file"] + ("@%d" % f["offset"] if f.get("offset") is not None else "")
    if f.get("seq") is not None:
        return "seq %d%s" % (f["seq"], " (%s)" % place if place else "")
    return place


def _workflow_lines(rep: Report) -> list:
    out = []
    for i in rep.interruptions:
        out.append(describe_interruption(i))
    if rep.marks:
        kinds = {}
        for m in rep.marks:
            kinds.setdefault(m["kind"], []).append(str(m["seq"]))
        out.append("officer's marks: " + "; ".join("%s seq %s" % (k, ", ".join(v))
                                         for k, v in sorted(kinds.items())))
    for t in rep.time_sets:
        if t["drift"] is not None:
            out.append("clock set at seq %d: drift %+d ms/day%s" % (
                t["seq"], t["drift"], " (flag DRIFT: beyond the limit)" if t["drift_flag"]
                else ""))
    for r in rep.releases:
        if r["valid"]:
            out.append("segment %d released against receipt %d (seq %d)"
                       % (r["segment"], r["number"], r["seq"]))
    return out


def _segment_table(rep: Report, all_records: bool) -> list:
    out = ["%8s  %-22s %9s %7s  %-21s %s" % ("segment", "media", "MB", "chunks", "verdict",
                                             "marks")]
    for s in rep.segments:
        mb = (s.file_size if s.file_size is not None else 0) / 1e6
        marks = _marks_count(s.marks) if all_records else _marks_window(s.marks)
        out.append(("%8s  %-22s %9.2f %7d  %-21s %s" % (
            "" if s.segment is None else s.segment, s.media, mb, s.chunks, s.verdict,
            marks)).rstrip())
    legend = "marks: . verified  M mismatch  - missing  U unsigned (open)  " \
             "R sealed at recovery"
    if any("X" in s.marks for s in rep.segments):
        legend += "  X released against a receipt"
    if any("D" in s.marks for s in rep.segments):
        legend += "  D disposed with approval"
    if any("T" in s.marks for s in rep.segments):
        legend += "  T verified at an earlier offload (not re-hashed)"
    if any("E" in s.marks for s in rep.segments):
        legend += "  E encrypted at rest, key not available (not checked)"
    out.append(legend)
    if all_records:
        for s in rep.segments:
            if s.marks:
                out.append("")
                out.extend(_marks_lines(s))
    return out


def _record_rows(rep: Report, all_records: bool) -> list:
    rows = rep.records if all_records else [r for r in rep.records if r.verdict != OK]
    if not rows:
        return []
    out = [""]
    if rep.key_mismatch and not all_records:
        out.append("records: none of the %d verifies with the pinned key (below; --all lists "
                   "them)" % rep.record_count)
        return out
    out.append("records%s:" % ("" if all_records else " not OK"))
    for r in rows[:200]:
        what = "seq %d" % r.seq if r.seq is not None else ""
        out.append(("  %-10s %-26s %-18s %-21s %s" % (
            what, "%s@%d" % (r.file, r.offset), r.type or "(not a record)", r.verdict,
            "; ".join(x for x in (r.reason, r.info) if x))).rstrip())
    if len(rows) > 200:
        out.append("  … and %d more" % (len(rows) - 200))
    return out


def _format_text(rep: Report, all_records: bool = False) -> str:
    out = ["store   %s" % rep.store]
    out.append("device  %s   key %s   origin %s" % (
        rep.device or "?", rep.fingerprint or "?",
        "checked (pinned key)" if rep.origin_checked else "NOT checked (no pinned key)"))
    chain = "none"
    if rep.record_count:
        chain = "%d records, seq 0..%d, in %d log file%s" % (
            rep.record_count, rep.chain_end, len(rep.log_files),
            "" if len(rep.log_files) == 1 else "s")
    head = "none"
    if rep.head_seq is not None:
        head = "seq %d (%s)" % (rep.head_seq, rep.head_file)
    elif rep.key_mismatch:
        head = "not checked (the key does not match)"
    out.append("chain   %s; head %s" % (chain, head))
    out.append("")
    if rep.key_mismatch:
        out.append("segments: not checked (no record verifies with the pinned key)")
    elif rep.segments:
        out.extend(_segment_table(rep, all_records))
    else:
        out.append("no segments")
    out.extend(_record_rows(rep, all_records))
    wf = _workflow_lines(rep)
    if wf:
        out.append("")
        out.extend(wf)
    out.append("")
    out.append("VERDICT: %s" % rep.verdict)
    if rep.first_failure and not rep.key_mismatch:
        where = _where(rep.first_failure)
        if where:
            out.append("first failure: " + where)
    for reason in rep.reasons:
        out.append("  - " + reason)
    for note in rep.notes:
        out.append("  note: " + note)
    out.append("key fingerprint: %s%s" % (rep.fingerprint or "unknown",
                                          "" if rep.origin_checked else
                                          " (compare it with the registered one)"))
    # whatever a card put in a name or a reason is shown, never obeyed by the terminal
    return "\n".join(printable(x, backslash=False) for x in out) + "\n"
