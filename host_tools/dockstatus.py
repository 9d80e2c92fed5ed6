"""`sealcam status`: what a docked recorder says of itself (SPEC §8.2), after HELLO and
AUTH with its proof checked against the registered key. Its answers are bounded: a
malformed one (a bignum, a negative or thousands of waiting seqs) is one line, exit 3.

    st = status("/dev/ttyACM0", "/srv/sealcam")     # dict; raises dock._Fail

Storage is given once, in st["storage"], in the same numbers as the text: free_bytes and
total_bytes (what the recorder reports in AUTH), free_mb and total_mb (MB = 10^6 bytes,
rounded down to 0.1 MB), free_minutes (whole minutes of recording the free bytes hold at
bitrate_bps, rounded down, by the recorder's own formula: free // (bitrate // 8) // 60),
bitrate_bps ([recorder] bitrate_bps of ARCHIVE/station.toml, default 8,000,000, the
firmware's default) and bitrate_source (that file, or "default"). The last self-check's
storage_minutes is the recorder's own count (free space plus the media a receipt covers,
which it would release, at its configured bitrate): the text says so.
"""
from __future__ import annotations

import json
import os
import socket
import sys

from . import argtypes, stationconfig
from .dock import (EXIT_NOT_READY, Result, _facts, _Fail, _int, _printable,
                   _run, _session, _txt, _with_sigterm)
from .dock_text import _check_line
from .link import AUTH, HELLO, STATUS, ProtocolViolation
from .records import hostile_values
from .session import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

__all__ = ["status", "add_arguments_status", "run_status", "WAITING_MAX"]


def status(port, archive_dir, *, timeout=2.0, host_name=None) -> dict:
    """What a docked recorder says of itself: HELLO, AUTH (its proof checked with the
    registered key) and STATUS (SPEC §8.2: STATUS needs AUTH). Raises _Fail."""
    host_name = host_name or socket.gethostname()
    r = Result("status", port, os.path.abspath(archive_dir))
    box = {}
    try:
        cfg = stationconfig.load(archive_dir)       # before the port: a bad file is exit 3
    except stationconfig.StationConfigError as e:
        raise _Fail(EXIT_USAGE, str(e), "error") from None

    def body(c):
        # one deadline for the whole of it: a session and one request
        with c.deadline(c.budget(HELLO) + c.budget(AUTH) + c.budget(STATUS)):
            try:
                box["auth"] = _session(c, archive_dir, r, host_name)
                box["status"] = c.status()
            except ProtocolViolation as e:
                # a bignum, a wrong type: `status` only reads, so exit 3 as for a device
                # that is not a recorder (dock and checkout: 1, the recorder is not OK)
                raise _Fail(EXIT_USAGE, "the recorder %s's answer is malformed (%s): not a "
                            "sealcam recorder as the protocol says; have it inspected"
                            % (r.device or "on " + port, e), "malformed") from None

    _run(r, body, port, timeout, None)
    if r.exit_code != EXIT_OK:
        raise _Fail(r.exit_code, "; ".join(r.errors), r.status)
    h, st = box["auth"], box["status"]
    _well_formed(r, h, st)
    last = st.get(4)
    if isinstance(last, dict):
        facts = last.get(3) if isinstance(last.get(3), dict) else {}
        last = {"ready": last.get(1) is True,
                "reasons": [_txt(x) or "?" for x in last.get(2)] if isinstance(last.get(2), list)
                else [],
                "facts": _facts(facts),
                "seq": _int(last.get(4))}
    else:
        last = None
    storage = h.get(7) if isinstance(h.get(7), list) and len(h.get(7)) == 2 else [None, None]
    return {"device": r.device, "firmware": _txt(h.get(13)), "state": _txt(st.get(1)),
            "officer": _txt(st.get(2)), "unit": _txt(st.get(3)), "last_check": last,
            "waiting_interruptions": [q for q in st.get(5) if type(q) is int]
            if isinstance(st.get(5), list) else [],
            "rtc": _int(st.get(6)[0]) if isinstance(st.get(6), list) and st.get(6) else None,
            "battery_percent": _int(h.get(8)),
            "storage": _storage(_int(storage[0]), _int(storage[1]), cfg),
            "alerts": [{"kind": _txt(x.get(1)), "seq": _int(x.get(2)), "message": _txt(x.get(3))}
                       for x in (h.get(14) if isinstance(h.get(14), list) else [])[:16]
                       if isinstance(x, dict)]}


WAITING_MAX = 4096          # interruptions a STATUS answer may list as waiting


def _storage(free, total, cfg):
    """The storage numbers `status` prints and its JSON holds (module doc)."""
    bps = cfg.get("recorder", "bitrate_bps")
    return {"free_bytes": free, "total_bytes": total,
            "free_mb": None if free is None else stationconfig.mb_down(free),
            "total_mb": None if total is None else stationconfig.mb_down(total),
            "free_minutes": None if free is None else stationconfig.minutes_down(free, bps),
            "bitrate_bps": bps, "bitrate_source": cfg.path if cfg.exists else "default"}


def storage_line(sto):
    """The text of st["storage"]: the same numbers, formatted by the same rule (two
    lines)."""
    if sto["free_bytes"] is None:
        return "storage  not reported by the recorder"
    line = "storage  %s free" % stationconfig.fmt_mb(sto["free_bytes"])
    if sto["total_bytes"] is not None:
        line += " of %s" % stationconfig.fmt_mb(sto["total_bytes"])
    line += " (MB = 10^6 bytes; rounded down)\n         %d min of recording at %s" % (
        sto["free_minutes"], stationconfig.fmt_bitrate(sto["bitrate_bps"]))
    src = sto["bitrate_source"]
    return line + (" ([recorder] bitrate_bps of %s)" % src if src != "default" else
                   " (the default: set [recorder] bitrate_bps in ARCHIVE/station.toml to "
                   "the recorders' bitrate)")


def _well_formed(r, h, st):
    """The AUTH result ``h`` and STATUS answer ``st`` within the bounds `status` prints
    (SPEC §3.1: integers within int64; seqs, storage and battery not negative): else
    _Fail, exit 3, one line. A bignum (10**400) or a list of thousands would crash the
    output or the JSON."""
    why = hostile_values(st, text=False) or hostile_values(h, text=False)
    if why is None:
        w, sto, bat = st.get(5), h.get(7), h.get(8)
        if isinstance(w, list) and (len(w) > WAITING_MAX or any(
                type(q) is not int or q < 0 for q in w)):
            why = "waiting interruptions are not up to %d seqs" % WAITING_MAX
        elif isinstance(sto, list) and any(type(x) is int and x < 0 for x in sto):
            why = "negative storage"
        elif bat is not None and not (type(bat) is int and 0 <= bat <= 100):
            why = "battery %s %% is not 0 to 100" % _printable(bat)[:20]
    if why is not None:
        raise _Fail(EXIT_USAGE, "the recorder %s's answer is malformed (%s): not a sealcam "
                    "recorder as the protocol says; have it inspected" % (r.device, why),
                    "malformed")


def add_arguments_status(p):
    """The arguments of `sealcam status` on an argparse parser."""
    argtypes.add_port_archive(p)
    argtypes.add_timeout_json(p)
    return p


def run_status(args) -> int:
    """`sealcam status`: 0 READY (or never checked), 2 the last self-check was NOT_READY or
    interruptions wait for a voice annotation; otherwise the codes of `checkout` (1 another
    key, 3 usage, port or not a recorder, 4 unknown device, 5 authentication, 6 link
    broken, 130 interrupted)."""
    try:
        st = _with_sigterm(lambda: status(args.port, args.archive, timeout=args.timeout))
    except _Fail as e:
        print("sealcam status: %s" % e.message, file=sys.stderr)
        return e.code
    if st is None:
        print("sealcam status: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    last = st["last_check"]
    bad = (last is not None and not last["ready"]) or st["waiting_interruptions"]
    if args.json:
        json.dump(st, sys.stdout, indent=2, ensure_ascii=True)
        print()
    else:
        who = st["officer"] and "%s (%s)" % (st["officer"], st["unit"] or "no unit")
        print("device   %s   firmware %s" % (st["device"], st["firmware"]))
        print("state    %s; officer %s" % (st["state"], who or "none (unassigned)"))
        print("battery  %s %%" % st["battery_percent"])
        print(storage_line(st["storage"]))
        if last is None:
            print("check    none since boot")
        else:
            print(_check_line(last))
        if st["waiting_interruptions"]:
            print("waiting  interruptions %s wait for the officer's voice annotation"
                  % ", ".join("seq %d" % q for q in st["waiting_interruptions"]))
    return EXIT_NOT_READY if bad else EXIT_OK
