"""The human words of `sealcam report`'s text form in the user's language (host_tools.i18n).

The report's dict (its JSON) stays English: it is a machine format. Some of its strings are
sentences the report builds (report.py, report_items.py, workflow.py): a problem's message,
an interruption's explanation, a note. The text form shows them translated by matching
them against the English sentence they were made from (a msgid below, %(name)s standing
for a value) and formatting its translation with the same values; a sentence that matches
none of them (a new one, or one from a part of the program not listed here) is shown in
English, as it is. tests/test_i18n.py checks that each msgid, filled with the values it
matched, gives back the original sentence: a sentence changed at its source and not here
shows up there.

The codes records carry (an interruption's reason, a mark's kind, a self-check's reasons,
an interruption's status) are shown as words when the code is known, else as they are.
"""
from __future__ import annotations

import re

from . import report_custody as _C
from .i18n import N_, _, current

__all__ = ["word", "words", "sentence", "EXPLANATION", "PROBLEM", "NOTE", "UNVERIFIED",
           "INTEGRITY_TEXT"]

# --- codes -------------------------------------------------------------------------------

_WORDS = {
    # interruption status (host_tools.workflow)
    "annotated": N_("annotated"), "missing": N_("missing"),
    "unexplained": N_("unexplained"), "waiting": N_("waiting"),
    # interruption reasons (SPEC §10.1, §10.3)
    "weather": N_("weather"), "place_change": N_("place_change"), "other": N_("other"),
    "battery_low": N_("battery_low"), "storage_full": N_("storage_full"),
    "device_fault": N_("device_fault"), "overheat": N_("overheat"),
    "power_loss": N_("power_loss"),
    # marks (SPEC §10.4)
    "important": N_("important"), "notice_given": N_("notice_given"),
    "bookmark": N_("bookmark"),
    # self-check (SPEC §10.6)
    "READY": N_("READY"), "NOT_READY": N_("NOT_READY"), "battery": N_("battery"),
    "storage": N_("storage"), "clock_uncalibrated": N_("clock_uncalibrated"),
    "clock": N_("clock"), "offload_overdue": N_("offload_overdue"),
    "foreign_card": N_("foreign_card"), "card_error": N_("card_error"),
    # refused operations
    "delete": N_("delete"), "truncate": N_("truncate"), "overwrite": N_("overwrite"),
    "format": N_("format"), "write": N_("write"),
    # other cells
    "DRIFT": N_("DRIFT"), "yes": N_("yes"), "no": N_("no"),
}


def word(code):
    """A code a record carries, as a word of the user's language (unknown: as it is)."""
    if not isinstance(code, str):
        return code
    msgid = _WORDS.get(code)
    return _(msgid) if msgid else code


def words(codes):
    return [word(c) for c in codes]


# --- sentences the report builds ---------------------------------------------------------

_SLOT = re.compile(r"%\((\w+)\)s")
_compiled = {}
# values that are one word and a unit (report_items._fmt_s, "%.1f h"): a sentence's other
# values may hold ", " themselves
_VALUE = {"duration": r"\S+ s", "waited": r"\S+ s", "since": r"\S+(?: h)?"}


def _regex(msgid):
    rx = _compiled.get(msgid)
    if rx is None:
        parts, seen, pos = [], set(), 0
        for m in _SLOT.finditer(msgid):
            parts.append(re.escape(msgid[pos:m.start()]))
            name = m.group(1)
            parts.append("(?P=%s)" % name if name in seen else
                         "(?P<%s>%s)" % (name, _VALUE.get(name, ".*?")))
            seen.add(name)
            pos = m.end()
        parts.append(re.escape(msgid[pos:]))
        rx = _compiled[msgid] = re.compile("".join(parts), re.S)
    return rx


def match(text, spec):
    """(msgid, values) of the first sentence of ``spec`` that ``text`` is, or None.
    ``spec``: [(msgid, {name: nested spec})]."""
    if not isinstance(text, str) or len(text) > 16384:      # (a sentence, not a file)
        return None
    for msgid, nested in spec:
        m = _regex(msgid).fullmatch(text)
        if m:
            return msgid, nested, m.groupdict()
    return None


def sentence(text, spec, translate=None):
    """``text`` in the user's language if it is one of the sentences of ``spec``, its
    values translated in turn where ``spec`` says how; else ``text`` as it is.
    ``translate``: the msgid -> text function (default: _)."""
    tr = translate or _
    if translate is None and current() == "en":
        return text
    found = match(text, spec)
    if found is None:
        return text
    msgid, nested, vals = found
    for name, sub in (nested or {}).items():
        if name in vals:
            vals[name] = sentence(vals[name], sub, tr) if isinstance(sub, list) \
                else sub(vals[name], tr)
    try:
        return tr(msgid) % vals
    except (KeyError, ValueError, TypeError):   # a broken translation: the English
        return text


def _word_value(value, tr):
    msgid = _WORDS.get(value)
    return tr(msgid) if msgid else value


# the reasons workflow.judge_interruption gives
WHY = [
    (N_("the recorder restarted at BOOT seq %(seq)s before one was made"), None),
    (N_("the shift ended at ASSIGN seq %(seq)s before one was made"), None),
    (N_("the recorder may still make one: nothing after it ends the wait"), None),
]

SECONDS = [(N_("%(s)s s"), None)]
HOURS = [(N_("%(h)s h"), None)]

_WHERE_ONE = N_("segment %(segment)s, chunk %(c1)s offset %(o1)s to chunk %(c2)s offset "
                "%(o2)s")
_BYTES = N_(" (bytes %(a)s-%(b)s)")
_CONTINUED = N_("; continued in segment %(segment)s to chunk %(chunk)s offset %(offset)s "
                "(seq %(seq)s)")


def _where(text, tr):
    """The span of an annotation (report_items._interruption): a segment span, its bytes,
    then each part continued in the next segment."""
    m = re.match(r"segment (\d+), chunk (\d+) offset (\d+) to chunk (\d+) offset (\d+)", text)
    if not m:
        return tr(N_("no span")) if text == "no span" else text
    out = [tr(_WHERE_ONE) % dict(zip(("segment", "c1", "o1", "c2", "o2"), m.groups()))]
    rest = text[m.end():]
    m = re.match(r" \(bytes (\d+)-(\d+)\)", rest)
    if m:
        out.append(tr(_BYTES) % {"a": m.group(1), "b": m.group(2)})
        rest = rest[m.end():]
    while rest:
        m = re.match(r"; continued in segment (\d+) to chunk (\d+) offset (\d+) \(seq "
                     r"([^)]*)\)", rest)
        if not m:
            return text
        out.append(tr(_CONTINUED) % dict(zip(("segment", "chunk", "offset", "seq"),
                                            m.groups())))
        rest = rest[m.end():]
    return "".join(out)


# an interruption's explanation (report_items._interruption)
EXPLANATION = [
    (N_("annotated: VOICE_ANNOTATION seq %(seq)s at %(time)s, %(where)s, %(duration)s "
        "spoken"), {"where": _where, "duration": SECONDS}),
    (N_("missing, waited %(waited)s (ANNOTATION_MISSING seq %(seq)s at %(time)s)"),
     {"waited": SECONDS}),
    (N_("unexplained: no annotation and no missing record (%(why)s)"), {"why": WHY}),
    (N_("waiting: no annotation yet; none in the archive up to seq %(last)s, its last "
        "record (%(why)s)"), {"why": WHY}),
]

# why a device's records are left out (report_items._Dev, report.build_report)
UNVERIFIED = [
    (N_("registered in the station log but missing from archive.sqlite: the recorder was "
        "deleted from the index"), None),
    (N_("records removed: the station log holds seq %(first)s..%(last)s, archive.sqlite "
        "does not"), None),
    (N_("records removed: the archive's chain ends at seq %(end)s, before the last signed "
        "head the station saw (seq %(head)s)"), None),
    (N_("seq %(seq)s is not in the station log: a row added to archive.sqlite"), None),
    (N_("seq %(seq)s is not the record the station log holds"), None),
    (N_("its signature does not verify with the registered key"), None),
    (N_("the registered key is refused: %(error)s"), None),
    (N_("the record is seq %(seq)s, its archive row says %(row)s"), None),
    (N_("the record is not seq %(seq)s"), None),
    (N_("the record names device %(device)s"), None),
    (N_("not a record: %(error)s"), None),
    (N_("prev of seq 0 is not 32 zero bytes"), None),
    (N_("prev of seq %(seq)s does not match H(seq %(prev)s)"), None),
    (N_("seq %(seq)s where seq %(expected)s was expected%(more)s"), None),
]

_SCOPE = [
    (N_("the report lists only records 0..%(last)s, which verify"), None),
    (N_("no record of it is reported"), None),
]

# what the station log says about itself (report._station_facts)
_LOG = [
    (N_("the station log is missing (no log/checkpoint, no log/entries): facts from "
        "archive.sqlite (keys, last heads, stored_at) are unproven; restore log/ from a "
        "backup and run `sealcam verify %(archive)s`"), None),
    (N_("%(why)s: the station log cannot be checked, its entries are used unsigned "
        "(unproven)"), None),
    (N_("the station log cannot be read (%(error)s): keys, last heads and stored_at are "
        "taken from archive.sqlite, unproven"), None),
]

# a problem's message, by its kind (report_items._problems, report.build_report)
PROBLEM = {
    "interruption_unexplained": [
        (N_("%(device)s seq %(seq)s: interruption (%(reason)s) at %(time)s is "
            "%(explanation)s"), {"explanation": EXPLANATION, "reason": _word_value})],
    "annotation_missing": [
        (N_("%(device)s seq %(seq)s: interruption (%(reason)s) at %(time)s was not explained "
            "aloud: annotation %(explanation)s"),
         {"explanation": EXPLANATION, "reason": _word_value})],
    "late_offload": [
        (N_("%(device)s segment %(segment)s (REC_START seq %(segment)s): captured "
            "%(capture)s, first offloaded %(offloaded)s; seq %(worst)s reached the archive "
            "%(delay)s h after it was made, over the %(limit)s h limit (R8)"), None)],
    "clock_drift": [
        (N_("%(device)s seq %(seq)s: TIME_SET at %(time)s corrected the clock by "
            "%(correction)s ms; the drift measured over %(since)s, %(drift)s ms/day, is "
            "beyond the limit (DRIFT)"), {"since": HOURS})],
    "not_verified": [
        (N_("%(device)s: %(reason)s; %(scope)s; `sealcam verify %(archive)s` tells more"),
         {"reason": UNVERIFIED, "scope": _SCOPE})],
    "log_not_verified": [(N_("archive: %(problem)s"), {"problem": _LOG})],
    # the custody section (host_tools/report_custody.py: R14 backups, R21 handover)
    "backup_missing": [(_C.MSG_MISSING, None)],
    "backup_overdue": [(_C.MSG_OVERDUE, None)],
    "no_successor": [(_C.MSG_CASE, None), (_C.MSG_HOLD, None), (_C.MSG_OFFERED, None)],
}

# the report's notes (report.py)
NOTE = [
    (N_("the archive was read as immutable (read-only medium): changes not yet "
        "checkpointed into archive.sqlite are not included"), None),
    (N_("%(device)s: %(records)s archived record(s) from seq %(seq)s are left out: they do "
        "not verify"), None),
    (N_("%(device)s seq %(seq)s: no clip written: %(error)s"), None),
    (_C.MSG_FILTERED, None),
]

# report.INTEGRITY, with the archive
INTEGRITY_TEXT = [
    (N_("records verified: each record's signature with the device's registered key and "
        "its place in the chain from seq 0; a device's records after the first one that "
        "does not verify are left out (see unverified). The media is not checked here: run "
        "`sealcam verify %(archive)s` for that"), None),
]
