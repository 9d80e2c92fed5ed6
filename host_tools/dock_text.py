"""The text `sealcam dock` and `sealcam checkout` print (host_tools/dock.py): the offload's
summary, the clock, the release or assignment, the self-check, the dock's last offload pass
and one RESULT line. ``format_result(Result)`` also serves sim/demo.py."""
from __future__ import annotations

from .offload import _fmt_summary
from .session import EXIT_NOT_OK, EXIT_OK

__all__ = ["format_result", "REASON_TEXT"]

REASON_TEXT = {"battery": "battery below the minimum charge",
               "storage": "too little storage left",
               "clock_uncalibrated": "clock never calibrated",
               "clock": "estimated clock error too large",
               "offload_overdue": "records not offloaded for too long"}


def _not_ready_text(check):
    return ", ".join("%s (%s)" % (x, REASON_TEXT[x]) if x in REASON_TEXT else x
                     for x in check["reasons"])


# --- output -------------------------------------------------------------------------------

def _clock_lines(ck):
    out = []
    corr = ck["correction_ms"]
    if corr is None:
        out.append("clock    set (TIME_SET seq %s)" % ck["seq"])
    else:
        how = "" if corr == 0 else " (the recorder was %.3f s %s)" % (
            abs(corr) / 1000, "slow" if corr > 0 else "fast")
        out.append("clock    corrected by %+d ms%s; TIME_SET seq %s" % (corr, how, ck["seq"]))
    d = ck["drift_ms_per_day"]
    if d is None:
        out.append("drift    not measured yet (a rate needs an hour or more since the "
                   "measurement base; the correction is summed for the next one)")
    else:
        out.append("drift    %+d ms/day over %s%s" % (
            d, _span(ck["since_ms"] or 0),
            ": FLAGGED, beyond the recorder's limit" if ck["drift_flagged"] else ", within "
            "the limit"))
    return out


def _span(ms):
    for unit, n in (("days", 86400000), ("h", 3600000), ("min", 60000)):
        if ms >= 2 * n:
            return "%.1f %s" % (ms / n, unit)
    return "%.1f s" % (ms / 1000)


def _check_line(ch):
    f = ch["facts"]
    facts = []
    # the storage minutes are the recorder's own count (at its bitrate, with the media a
    # receipt covers, which it would release): said so, last
    for k, fmt in (("battery_percent", "battery %d %%"), ("clock_error_ms", "clock error %+d ms"),
                   ("oldest_unreceipted_s", "oldest record not receipted %d s"),
                   ("storage_minutes", "storage %d min by the recorder's count (free and "
                                       "releasable, at its bitrate)")):
        if isinstance(f.get(k), int):
            facts.append(fmt % f[k])
    head = "READY" if ch["ready"] else "NOT_READY: " + _not_ready_text(ch)
    return "check    %s\n         %s; SELF_CHECK seq %s" % (head, ", ".join(facts), ch["seq"])


def _final_line(f):
    """What the dock's last offload pass did, in one or two lines."""
    if f["exit_code"] != EXIT_OK:
        return "archive  the dock's records were NOT all archived (%s): see below" % f["status"]
    n = f["records_pulled"]
    rc = f["receipt"]
    last = rc["seq"] if rc and isinstance(rc.get("seq"), int) else f["head_seq"]
    line = "archive  the dock's records archived: %d record%s, up to seq %s, verified %s" % (
        n, "" if n == 1 else "s", last, f["verdict"] or "-")
    if rc:
        line += ("\n         receipt %d covers seq 0..%d (its RECEIPT record is seq %s)"
                 % (rc["number"], rc["covered"], rc["seq"]))
    elif f["receipt_skipped"]:
        line += "\n         no new receipt: %s" % f["receipt_skipped"]
    return line


def format_result(r) -> str:
    """The text of a dock.Result."""
    out = []
    if r.verb == "dock" and r.offload is not None and r.offload["head_seq"] is not None:
        from .offload import Summary
        sm = Summary(**r.offload)
        out.append(_fmt_summary(sm).rstrip("\n"))
    elif r.device:
        out.append("device   %s   key %s" % (r.device, r.fingerprint or "?"))
    if r.clock:
        out.extend(_clock_lines(r.clock))
    if r.verb == "dock" and r.assign:
        who = r.officer_before
        if who:
            out.append("officer  %s%s released (ASSIGN seq %s)" % (
                who, " (%s)" % r.unit_before if r.unit_before else "", r.assign["seq"]))
        else:
            out.append("officer  none was assigned; released anyway (ASSIGN seq %s)"
                       % r.assign["seq"])
    if r.check:
        out.append(_check_line(r.check))
    if r.verb == "dock" and r.final_offload is not None:
        out.append(_final_line(r.final_offload))
    if r.verb == "checkout":
        if r.assigned:
            out.append("officer  %s (%s) assigned%s (ASSIGN seq %s)%s" % (
                r.assign["officer"], r.assign["unit"],
                ", replacing %s" % r.officer_before if r.officer_before else "",
                r.assign["seq"], "   *** FORCED: NOT_READY ***" if r.forced else ""))
        elif r.check:
            out.append("officer  NOT assigned")
    if r.status in ("ok", "not_ok", "drift_flagged", "not_ready", "assigned"):
        issues = []
        if r.offload is not None and r.offload["exit_code"] == EXIT_NOT_OK:
            issues.append("offload NOT_OK")
        if r.clock and r.clock["drift_flagged"]:
            issues.append("DRIFT FLAGGED")
        if r.check and not r.check["ready"]:
            issues.append("NOT_READY")
        if r.status == "not_ok" and not issues:
            issues.append("NOT_OK")       # the recorder broke the protocol (one line says how)
        result = ", ".join(issues) or "OK"
        if r.verb == "checkout":
            result = ("ASSIGNED (%s)" % result) if r.assigned else "NOT ASSIGNED (%s)" % result
    else:
        result = r.status.upper()
    out.append("RESULT   %s" % result)
    return "\n".join(out) + "\n"
