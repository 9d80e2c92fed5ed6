"""`sealcam dock` and `sealcam checkout`: the station's side of a shift (SPEC §10.5-§10.7).

    r = dock("/dev/ttyACM0", "/srv/sealcam")      # offload + receipt, TIME_SET, ASSIGN null,
                                                  # CHECK, last offload pass + receipt
    r = checkout("/dev/ttyACM0", "/srv/sealcam", "PC-4711", "unit-7")   # TIME_SET, CHECK, ASSIGN
    r.exit_code, r.to_json()

Dock cycle (check-in): the offload of host_tools/offload.py (pull, verify, custody
receipt), then TIME_SET to the station's clock, which measures the recorder's drift since
the last calibration and flags it past the recorder's limit; ASSIGN null releases the
officer; CHECK runs the recorder's self-check; then a last, short offload pass pulls the
records those steps wrote (TIME_SET, ASSIGN, SELF_CHECK), verifies them and receipts them
like any other, so the archive ends the dock complete: the report shows the shift closed
and the self-check. The first pass comes first so that the evidence is in custody before
anything else is asked of the recorder (a recorder that fails in the later steps has
already handed over its shift); the last pass runs only after a first pass that ended OK.
If it fails, the cycle's records stay on the recorder (nothing is lost): the dock ends with
that pass's exit code and names them and the `sealcam offload` that archives them.
Check-out: TIME_SET, CHECK and, if the recorder is READY (or forced), ASSIGN of the next
officer and unit.

Both need the recorder registered in the archive with the key it presents (as offload
does: `sealcam offload --register` or `sealcam station register`) and AUTH with the
station key. Frames after AUTH carry no MAC (SPEC §8.3), so every TIME_SET, CHECK and
ASSIGN is read back: the signed record its answer names must say what was sent
(host_tools/readback.py); otherwise exit 1, status `tampered`, and a checkout whose ASSIGN
read back wrong releases the recorder (ASSIGN null, read back too).

Exit codes:
    dock      0 all fine; 1 offload verdict NOT_OK (no receipt sent), clock drift flagged
              or a signed record read back differs from what was sent (tampered);
              2 NOT_READY after the cycle; 3 usage or port error, 4 unknown device,
              5 authentication failed or receipt refused, 6 link broken, 130 interrupted
              (Ctrl-C) (offload's codes; the later steps are skipped after them; the
              same codes when the last pass fails, after the steps)
    checkout  0 assigned; 2 NOT_READY, not assigned; 1 the recorder presents another key
              than the registered one, or a signed record read back differs from what was
              sent (tampered: not assigned, released); 3 also for an officer id or unit
              that does not have the form ARCHIVE/station.toml sets (status "refused",
              checked before the port is opened: host_tools/stationconfig.py) or a bad
              station.toml; 4, 5, 6 as for dock
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass, field

from . import argtypes, stationconfig
from .archive import Archive, NotAnArchive
from .link import Client, LinkDown, LinkError, PortError, ProtocolViolation
from .records import F_DRIFT, INT_MAX, K
from .offload import _Interrupted, offload
from .readback import (TAMPER_HINT, Pins, Tampered, read_assign, read_self_check,
                       read_time_set)
from .receipts import IDLE_SAFE
from .session import (EXIT_INTERRUPTED, EXIT_LINK, EXIT_NOT_OK, EXIT_OK, EXIT_USAGE,
                      SessionError, auth_step, hello_step, unknown_text)
from .station import StationError
from .dock_text import _not_ready_text, format_result

__all__ = ["dock", "checkout", "Result", "add_arguments_dock", "run_dock",
           "add_arguments_checkout", "run_checkout", "EXIT_NOT_READY", "EPILOG_DOCK",
           "EPILOG_CHECKOUT", "DESCRIPTION_DOCK", "DESCRIPTION_CHECKOUT"]

EXIT_NOT_READY = 2
NAME_MAX = 64                  # characters of an officer id or unit (SPEC §8.2 ASSIGN)
TIME_MIN_MS = 1577836800000    # 2020-01-01: the range a recorder takes in TIME_SET (§8.7)
TIME_MAX_MS = 4102444800000    # 2100-01-01 (excluded)

FACT_NAMES = {1: "battery_percent", 2: "storage_minutes", 3: "clock_error_ms",
              4: "oldest_unreceipted_s", 5: "since_calibration_ms"}

DESCRIPTION_DOCK = (
    "The dock cycle at check-in (SPEC §10.7): offload the recorder into the archive and "
    "give it a custody receipt (as `sealcam offload`), set its clock to the station's "
    "(TIME_SET: the drift since the last calibration is measured and flagged past the "
    "recorder's limit), release the officer (ASSIGN null) and run the self-check (CHECK); "
    "then a last offload pass archives and receipts the records those steps wrote, so the "
    "archive shows the shift closed and the self-check. The recorder must be registered in "
    "the archive.")
EPILOG_DOCK = """\
exit codes: 0 all fine, 1 offload verdict NOT_OK (no receipt sent), clock drift
            flagged or the link was tampered with (a signed record read back says
            otherwise than what was sent), 2 NOT_READY after the cycle, 3 usage or port error, 4 unknown
            device, 5 authentication failed or receipt refused, 6 link broken (run again),
            130 interrupted (Ctrl-C)
"""
DESCRIPTION_CHECKOUT = (
    "Check-out (SPEC §10.5-§10.7): set the recorder's clock (TIME_SET), run its self-check "
    "(CHECK) and, if it is READY, assign it to the officer and unit (ASSIGN). The recorder "
    "must be registered in the archive.")
EPILOG_CHECKOUT = """\
exit codes: 0 assigned, 2 NOT_READY and not assigned (the reasons are listed), 1 the
            recorder presents another key than the registered one, or the link was
            tampered with (the signed record read back says another officer or time:
            not assigned, the recorder released), 3 usage or port
            error, or an officer id or unit of another form than ARCHIVE/station.toml
            sets (nothing sent; docs/station-config.md), 4 unknown device, 5 authentication failed, 6 link broken, 130
            interrupted (Ctrl-C)
"""


class _Fail(Exception):
    def __init__(self, code, message, status):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Result:
    verb: str                            # "dock" or "checkout"
    port: str
    archive: str
    device: str | None = None
    fingerprint: str | None = None
    offload: dict | None = None          # the offload's summary (dock, unless --no-offload)
    final_offload: dict | None = None    # dock: the last pass's summary (the records the
                                         # cycle wrote, receipted), after an OK offload
    state: str | None = None             # the recorder's state before (STATUS, dock)
    officer_before: str | None = None    # assigned before this run
    unit_before: str | None = None
    clock: dict | None = None            # TIME_SET: old, new, seq, correction_ms,
                                         # drift_ms_per_day, since_ms, drift_flagged
    check: dict | None = None            # CHECK: ready, reasons, facts, seq
    assign: dict | None = None           # ASSIGN sent: officer, unit (None: released), seq
    assigned: bool = False               # checkout: the officer was assigned
    forced: bool = False                 # checkout: assigned although NOT_READY (--force)
    status: str = "running"              # ok, not_ok, drift_flagged, not_ready, assigned,
                                         # or an offload/link failure status
    errors: list = field(default_factory=list)
    exit_code: int = EXIT_OK

    def to_json(self):
        return asdict(self)


# --- steps ----------------------------------------------------------------------------

def _printable(s):
    from .records import printable
    return printable(str(s))


def _facts(facts):
    """The self-check's facts from the recorder, by name, values cleaned for output."""
    out = {}
    for k in sorted(k for k in facts if type(k) is int)[:16]:
        v = facts[k]
        out[FACT_NAMES.get(k, str(k))] = v if v is None or type(v) in (int, bool) else _txt(v)
    return out


def _int(v):
    return v if type(v) is int else None


def _txt(v):
    """A string the recorder sent, for output: control characters escaped; None stays."""
    return None if v is None else _printable(v)[:200]


def _client(port, timeout):
    try:
        return Client(port, timeout=timeout)
    except PortError as e:
        raise _Fail(EXIT_USAGE, str(e), "error") from None


def _unknown(r, archive_dir):
    return unknown_text(r.device, archive_dir)


def _session(c, archive_dir, r, host_name):
    """HELLO; the recorder must be registered; AUTH both ways, its proof checked with the
    registered key (host_tools/session.py). Returns the AUTH result."""
    try:
        with Archive(archive_dir) as a:
            dev_id, row = hello_step(c, a, host_name)
            r.device = dev_id
            r.fingerprint = row["fingerprint"]
            _, res = auth_step(c, a, dev_id, row, host_name)
    except (NotAnArchive, StationError) as e:
        raise _Fail(EXIT_USAGE, str(e), "error") from None
    except SessionError as e:
        r.device = r.device or e.device
        raise _Fail(e.code, e.message, e.status) from None
    return res


def _pins(archive_dir, r):
    try:
        return Pins.load(archive_dir, r.device)
    except (NotAnArchive, StationError) as e:
        raise _Fail(EXIT_USAGE, str(e), "error") from None


def _time_set(c, pins):
    """TIME_SET to this host's clock, read back: the signed TIME_SET record the answer names
    must carry the time sent (readback.py). Returns (the clock dict, from the signed record;
    the Anchor the later read-backs follow)."""
    sent = int(time.time() * 1000)
    if not TIME_MIN_MS <= sent < TIME_MAX_MS:
        raise _Fail(EXIT_USAGE, "this station's clock (%d ms since 1970) is outside "
                    "2020-01-01..2100-01-01, which a recorder refuses (SPEC §8.7): set the "
                    "station's clock; nothing was sent" % sent, "error")
    try:
        res = c.time_set(sent)
    except LinkError as e:
        if e.status != 400:
            raise
        # the recorder refuses only a time outside 2020..2100, and this one is not:
        # the request it got is not the one sent
        raise Tampered("the recorder refused TIME_SET %d ms as out of range (%s): it did not "
                       "get the time sent; %s" % (sent, e, TAMPER_HINT)) from None
    anchor = read_time_set(c, pins, res.get(3), sent, res.get(2))
    b = anchor.rec.body
    old, new = b[K.OLD], b[K.NEW]
    return {"old": old, "new": new, "seq": anchor.seq, "correction_ms": new - old,
            "drift_ms_per_day": b.get(K.DRIFT), "since_ms": b.get(K.SINCE),
            "drift_flagged": bool(b.get(K.FLAGS, 0) & F_DRIFT)}, anchor


def _check(c, pins, anchor):
    """CHECK, read back: the signed SELF_CHECK record must say what the answer says; the
    facts shown are the record's."""
    res = c.check()
    ready = res.get(1) is True
    reasons = res.get(2) if isinstance(res.get(2), list) else []
    seq = res.get(4)
    if seq is None:
        # no record (foreign card, card error: SPEC §10.6): only a NOT_READY answer may say so
        if ready:
            raise Tampered("the recorder answered CHECK READY but names no SELF_CHECK record: "
                           "%s" % TAMPER_HINT)
        facts = res.get(3) if isinstance(res.get(3), dict) else {}
        facts = {k: v for k, v in facts.items() if type(v) is not int or abs(v) <= INT_MAX}
    else:
        rec = read_self_check(c, pins, seq, ready, reasons, anchor)
        facts = rec.body.get(K.FACTS) or {}
    return {"ready": ready, "reasons": [_txt(x) or "?" for x in reasons[:16]],
            "facts": _facts(facts), "seq": seq}


def _assign(c, pins, anchor, officer, unit):
    """ASSIGN, read back (the signed ASSIGN record names officer, unit and this station).
    Returns the record's seq."""
    seq = c.assign(officer, unit)
    read_assign(c, pins, seq, officer, unit, anchor)
    return seq


def _run(r, body, port, timeout, client):
    """Run body(c) on a client (client, or one opened on port and closed after); failures
    become the result's status, errors and exit code."""
    box = [client]
    try:
        box[0] = box[0] or _client(port, timeout)
        body(box[0])
    except _Fail as e:
        r.errors.append(e.message)
        r.exit_code, r.status = e.code, e.status
    except Tampered as e:
        r.errors.append(str(e))
        r.exit_code, r.status = EXIT_NOT_OK, "tampered"
    except LinkDown as e:
        r.errors.append("%s; run the same command again" % e)
        r.exit_code, r.status = EXIT_LINK, "link_broken"
    except LinkError as e:
        r.errors.append("the recorder answered an error (%s)" % e)
        r.exit_code, r.status = EXIT_LINK, "link_broken"
    except ProtocolViolation as e:
        r.errors.append("the recorder %s broke the dock protocol (%s); have it inspected"
                        % (r.device or "on " + port, e))
        r.exit_code, r.status = EXIT_NOT_OK, "not_ok"
    except KeyboardInterrupt:
        r.errors.append("interrupted (Ctrl-C)")
        r.exit_code, r.status = EXIT_INTERRUPTED, "interrupted"
    except _Interrupted as e:
        r.errors.append("interrupted (%s)" % e)
        r.exit_code, r.status = EXIT_LINK, "interrupted"
    finally:
        if client is None and box[0] is not None:
            box[0].close()
    return r


def _release_after_tamper(c, pins, anchor):
    """After an ASSIGN read back wrong: release the recorder (ASSIGN null), so it does not
    record under the wrong officer, and read that back too. Returns what happened."""
    try:
        seq = c.assign(None)
        read_assign(c, pins, seq, None, None, anchor)
    except (Tampered, LinkError, LinkDown, ProtocolViolation) as e:
        return ("releasing it failed too (%s): take the recorder out of service and dock it "
                "at another station" % e)
    return ("the recorder was released (ASSIGN null, seq %d, read back): nothing is assigned; "
            "check it out again on another cable or station" % seq)


def dock(port, archive_dir, *, do_offload=True, window=8, timeout=2.0, progress=None,
         host_name=None, say=None, client=None) -> Result:
    """The dock cycle on the recorder at ``port`` (see the module doc)."""
    r = Result("dock", port, os.path.abspath(archive_dir))
    host_name = host_name or socket.gethostname()
    def body(c):
        authed = False
        if do_offload:
            sm = offload(port, archive_dir, client=c, window=window, timeout=timeout,
                         progress=progress, host_name=host_name, say=say)
            r.offload = sm.to_json()
            r.device, r.fingerprint = sm.device, sm.fingerprint
            if sm.status == "unknown_device":
                raise _Fail(sm.exit_code, _unknown(r, archive_dir), sm.status)
            if sm.exit_code not in (EXIT_OK, EXIT_NOT_OK):
                raise _Fail(sm.exit_code, "offload failed (%s): %s; the recorder was not "
                            "calibrated, released or checked" % (
                                sm.status, "; ".join(sm.errors) or "no details"), sm.status)
            authed = sm.status == "ok"      # offload authenticated this session
        if not authed or time.monotonic() - c.t_active > IDLE_SAFE:
            _session(c, archive_dir, r, host_name)
        try:
            st = c.status()
        except LinkError as e:
            if e.status != 401:
                raise
            # the offload's session ended (the recorder's idle timeout): a new one
            _session(c, archive_dir, r, host_name)
            st = c.status()
        r.state, r.officer_before, r.unit_before = _txt(st.get(1)), _txt(st.get(2)), \
            _txt(st.get(3))
        pins = _pins(archive_dir, r)
        r.clock, anchor = _time_set(c, pins)
        seq = _assign(c, pins, anchor, None, None)      # Tampered: r.assign stays None
        r.assign = {"officer": None, "unit": None, "seq": seq}
        r.check = _check(c, pins, anchor)
        final = None
        if r.offload is not None and r.offload["exit_code"] == EXIT_OK:
            final = _final_pass(r, port, archive_dir, c, window, timeout, host_name, say)
        if r.offload is not None and r.offload["exit_code"] == EXIT_NOT_OK:
            r.exit_code, r.status = EXIT_NOT_OK, "not_ok"
            r.errors.append("offload verdict %s: no custody receipt was sent"
                            % (r.offload["verdict"] or "NOT_OK"))
        elif r.clock["drift_flagged"]:
            r.exit_code, r.status = EXIT_NOT_OK, "drift_flagged"
        elif not r.check["ready"]:
            r.exit_code, r.status = EXIT_NOT_READY, "not_ready"
        else:
            r.status = "ok"
        if r.clock["drift_flagged"]:
            r.errors.append("the recorder's clock drifts %+d ms/day, beyond its limit (TIME_SET "
                            "seq %s is flagged DRIFT)" % (r.clock["drift_ms_per_day"],
                                                          r.clock["seq"]))
        if not r.check["ready"]:
            r.errors.append("self-check NOT_READY: %s" % _not_ready_text(r.check))
        if final is not None:
            # the dock's own records did not reach the archive: that outranks drift and
            # NOT_READY (the cycle itself is done; only the archiving is to be repeated)
            r.errors.append(final.message)
            r.exit_code, r.status = final.code, final.status

    return _run(r, body, port, timeout, client)


def _final_pass(r, port, archive_dir, c, window, timeout, host_name, say):
    """The dock's last step: a short offload of the records the cycle wrote after the first
    pass (TIME_SET, ASSIGN null, SELF_CHECK), pulled, verified and receipted like any other,
    so that the archive ends the dock complete (the shift closed, the self-check in it) and
    the receipt covers everything stored. Only after a first pass that ended OK. Returns
    None, or a _Fail saying what to run (it is not raised: the cycle itself is done)."""
    wrote = [x for x in (r.clock and r.clock["seq"], r.assign and r.assign["seq"],
                         r.check and r.check["seq"]) if isinstance(x, int)]
    sm = offload(port, archive_dir, client=c, window=window, timeout=timeout, progress=False,
                 host_name=host_name, say=say)
    r.final_offload = sm.to_json()
    if sm.exit_code == EXIT_OK:
        return None
    what = "the records this dock wrote (%s)" % (
        "seq %s" % ", ".join(str(x) for x in wrote) if wrote else "none named")
    return _Fail(sm.exit_code, "%s did not all reach the archive: the last offload pass "
                 "ended %s (%s); they stay on the recorder, nothing is lost: run `sealcam "
                 "offload --port %s --archive %s` to archive them"
                 % (what, sm.status, "; ".join(sm.errors) or "no details", port,
                    r.archive), sm.status)


def checkout(port, archive_dir, officer, unit, *, force=False, timeout=2.0, host_name=None,
             client=None) -> Result:
    """Check-out of the recorder at ``port`` to ``officer`` / ``unit`` (module doc)."""
    r = Result("checkout", port, os.path.abspath(archive_dir))
    host_name = host_name or socket.gethostname()
    # the form of the ids the station takes (ARCHIVE/station.toml): checked before the
    # port is opened, so a wrong id reaches no recorder
    try:
        cfg = stationconfig.load(archive_dir)
        why = cfg.refuse_officer(officer) or cfg.refuse_unit(unit)
    except stationconfig.StationConfigError as e:
        why = str(e)
    if why is not None:
        r.errors.append(why)
        r.exit_code, r.status = EXIT_USAGE, "refused"
        return r
    def body(c):
        res = _session(c, archive_dir, r, host_name)
        r.officer_before = _txt(res.get(11)) if isinstance(res.get(11), str) else None
        pins = _pins(archive_dir, r)
        r.clock, anchor = _time_set(c, pins)
        r.check = _check(c, pins, anchor)
        if r.check["ready"] or force:
            seq = c.assign(officer, unit)
            r.assign = {"officer": officer, "unit": unit, "seq": _int(seq)}
            try:
                read_assign(c, pins, seq, officer, unit, anchor)
            except Tampered as e:
                r.assign["seq"] = None
                raise Tampered("%s; %s" % (e, _release_after_tamper(c, pins, anchor))) \
                    from None
            r.assigned = True
            r.forced = not r.check["ready"]
            r.status = "assigned"
            if r.forced:
                r.errors.append("assigned although NOT_READY (--force): %s"
                                % _not_ready_text(r.check))
        else:
            r.exit_code, r.status = EXIT_NOT_READY, "not_ready"
            r.errors.append("%s not assigned to %s: self-check NOT_READY: %s" % (
                r.device, officer, _not_ready_text(r.check)))

    return _run(r, body, port, timeout, client)


# --- CLI --------------------------------------------------------------------------------------

def _name(s):
    import argparse
    if not s or len(s) > NAME_MAX:
        raise argparse.ArgumentTypeError("must be 1 to %d characters: %r" % (NAME_MAX, s))
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in s):
        raise argparse.ArgumentTypeError("must not hold control characters (the recorder "
                                         "refuses them): %s" % ascii(s))
    return s


def add_arguments_dock(p):
    """The arguments of `sealcam dock` on an argparse parser."""
    argtypes.add_port_archive(p)
    p.add_argument("--no-offload", dest="offload", action="store_false",
                   help="skip the offload: only calibrate the clock, release the officer and "
                        "run the self-check")
    p.add_argument("--window", type=argtypes.positive_int, default=8, metavar="N",
                   help="READ requests in flight during the offload (default: %(default)s)")
    argtypes.add_timeout_json(p)
    argtypes.add_progress(p, "the offload's progress bar")
    return p


def add_arguments_checkout(p):
    """The arguments of `sealcam checkout` on an argparse parser."""
    argtypes.add_port_archive(p)
    p.add_argument("--officer", required=True, type=_name, metavar="ID",
                   help="the officer's id (1 to %d characters, of the form "
                        "ARCHIVE/station.toml sets; by default a 6-digit police number "
                        "such as 012345, or PC-0042)" % NAME_MAX)
    p.add_argument("--unit", required=True, type=_name, metavar="UNIT",
                   help="the officer's unit (1 to %d characters; station.toml may set "
                        "its form)" % NAME_MAX)
    p.add_argument("--force", action="store_true",
                   help="assign even if the self-check says NOT_READY")
    argtypes.add_timeout_json(p)
    return p


def _emit(verb, r: Result, as_json):
    try:
        if as_json:
            json.dump(r.to_json(), sys.stdout, indent=2, ensure_ascii=True)
            sys.stdout.write("\n")
        elif r.device is not None:
            sys.stdout.write(format_result(r))
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    for e in r.errors:
        print("sealcam %s: %s" % (verb, e), file=sys.stderr)
    return r.exit_code


def _with_sigterm(fn):
    def on_term(signum, frame):
        raise _Interrupted("signal %d" % signum)
    old = signal.signal(signal.SIGTERM, on_term)
    try:
        return fn()
    except KeyboardInterrupt:
        return None
    finally:
        signal.signal(signal.SIGTERM, old)


def run_dock(args) -> int:
    """`sealcam dock` (args from add_arguments_dock). Returns the exit code."""
    r = _with_sigterm(lambda: dock(args.port, args.archive, do_offload=args.offload,
                                   window=args.window, timeout=args.timeout,
                                   progress=args.progress))
    if r is None:
        print("sealcam dock: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _emit("dock", r, args.json)


def run_checkout(args) -> int:
    """`sealcam checkout` (args from add_arguments_checkout). Returns the exit code."""
    r = _with_sigterm(lambda: checkout(args.port, args.archive, args.officer, args.unit,
                                       force=args.force, timeout=args.timeout))
    if r is None:
        print("sealcam checkout: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _emit("checkout", r, args.json)


# --- sealcam status: in dockstatus.py (it uses the session and output helpers above) ---------

def status(port, archive_dir, **kw) -> dict:
    """dockstatus.status (what a docked recorder says of itself)."""
    from .dockstatus import status as f
    return f(port, archive_dir, **kw)


def add_arguments_status(p):
    from .dockstatus import add_arguments_status as f
    return f(p)


def run_status(args) -> int:
    """`sealcam status` (dockstatus.run_status). Returns the exit code."""
    from .dockstatus import run_status as f
    return f(args)
