"""Text output of `sealcam station devices` (host_tools.station.devices)."""
from __future__ import annotations

__all__ = ["devices_text"]


def _battery(b):
    if not isinstance(b, dict):
        return "unknown"
    return "%d %% (self-check seq %d, %s)" % (b["percent"], b["self_check_seq"],
                                               b["stored_at"][:16])


def _t(s):
    """A string from the log (a name, a reason) as printed: controls escaped."""
    from .records import printable
    return printable("" if s is None else s)


def devices_text(r) -> str:
    lines = ["archive %s: %d recorder%s" % (r["archive"], len(r["devices"]),
                                             "" if len(r["devices"]) == 1 else "s")]
    for d in r["devices"]:
        lines.append("")
        status = d["status"].upper()
        if d["revoked"]:
            status += " (%s by %s: %s)" % (d["revoked"]["at"][:16], _t(d["revoked"]["by"]),
                                           _t(d["revoked"]["reason"]))
        lines.append("%s  %s" % (d["id"], status))
        lines.append("  key          %s" % d["fingerprint"])
        if d["provisioned"]:
            lines.append("  provisioned  %s by %s" % (d["provisioned"]["at"][:16],
                                                      _t(d["provisioned"]["technician"])))
        else:
            lines.append("  registered   %s (not provisioned by a technician)"
                         % d["registered_at"][:16])
        for k in d["retired_keys"]:
            lines.append("  retired key  %s at %s by %s (history kept as %s, up to seq %s)"
                         % (k["fingerprint"], (k["at"] or "?")[:16], _t(k["by"]), k["history"],
                            "-" if k["retired_at_seq"] is None else k["retired_at_seq"]))
        lines.append("  firmware     %s" % d["firmware"])
        o = d["last_offload"]
        lines.append("  last offload %s" % ("never" if o is None else "%s (%s, %s)" % (
            (o["finished"] or "?")[:16], o["status"], o["verdict"] or "no verdict")))
        h = d["last_head"]
        lines.append("  last head    %s" % ("none" if h is None else "seq %d (%s)" % (
            h["seq"], (h["at"] or "?")[:16])))
        lines.append("  battery      %s" % _battery(d["battery"]))
    if r["problems"]:
        lines.append("")
        lines.append("THE STATION LOG DOES NOT VERIFY: what is listed may be wrong; run "
                     "`sealcam verify %s`" % r["archive"])
        for p in r["problems"][:20]:
            lines.append("  - %s" % p)
    return "\n".join(lines) + "\n"
