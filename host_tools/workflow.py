"""The officer workflow (SPEC §10): one interpretation of its facts for verify and report.

- ``judge_interruption(seq, annotations, missing, later)``: what became of an
  INTERRUPTION: ``annotated`` (a VOICE_ANNOTATION refers to it), ``missing`` (an
  ANNOTATION_MISSING does), ``unexplained`` (neither, and the recorder restarted (BOOT) or
  the shift ended (ASSIGN) after it: none can come any more) or ``waiting`` (neither, and
  nothing after it ends the wait: the recorder may still make one). ``missing`` and
  ``unexplained`` are compliance problems; ``waiting`` is not (yet). Both ``sealcam
  verify`` and ``sealcam report`` use it, so they never disagree.
- ``check_workflow(verifier)``: the verifier's cross-record checks of workflow records
  (what ``refers`` names, where ``span`` / ``at`` point, what releases a segment's media)
  and its workflow lists.
- ``record_info(rec)``: a one-line summary of what a workflow record says.
"""
from __future__ import annotations

from .records import K
from .records import (ANNOTATION_MISSING, ASSIGN, BOOT, F_DRIFT, INTERRUPTION, MARK, RECEIPT,
                      REC_START, SEGMENT,
                      RECOVERY, RELEASE, SELF_CHECK, TIME_SET, TYPE_NAMES, VOICE_ANNOTATION,
                      printable)

__all__ = ["judge_interruption", "STATUSES", "PROBLEM_STATUSES", "check_workflow",
           "record_info", "describe_interruption"]

ANNOTATED, MISSING, UNEXPLAINED, WAITING = "annotated", "missing", "unexplained", "waiting"
STATUSES = (ANNOTATED, MISSING, UNEXPLAINED, WAITING)
#: statuses that make a report non-compliant
PROBLEM_STATUSES = (MISSING, UNEXPLAINED)


def judge_interruption(seq, annotations, missing, later):
    """(status, why) of the INTERRUPTION ``seq``: ``annotations`` the seqs of the
    VOICE_ANNOTATION records that refer to it, ``missing`` the seq of the first
    ANNOTATION_MISSING that does (or None), ``later`` the (seq, type) of the records after
    it, in seq order (only the first BOOT or ASSIGN matters). ``why`` is said only for
    unexplained and waiting."""
    if annotations:
        return ANNOTATED, ""
    if missing is not None:
        return MISSING, ""
    for s2, t2 in later:
        if t2 == BOOT:
            return UNEXPLAINED, "the recorder restarted at BOOT seq %d before one was made" % s2
        if t2 == ASSIGN:
            return UNEXPLAINED, "the shift ended at ASSIGN seq %d before one was made" % s2
    return WAITING, "the recorder may still make one: nothing after it ends the wait"


def describe_interruption(i) -> str:
    """The verifier's one line on an interruption entry of Report.interruptions."""
    st = i["status"]
    if st == ANNOTATED:
        how = "annotated: voice annotation seq %s" % ", ".join(map(str, i["annotations"]))
    elif st == MISSING:
        how = "missing: no voice annotation (seq %s ANNOTATION_MISSING)" % i["missing"]
    else:
        how = "%s: no voice annotation (%s)" % (st, i.get("why") or "")
    return "interruption seq %d: %s%s; %s" % (
        i["seq"], printable(i["reason"]),
        "" if i["segment"] is None else " (segment %d)" % i["segment"], how)


def record_info(rec) -> str:
    """A one-line summary of what a workflow record says (RecordRow.info)."""
    b, t = rec.body, rec.type

    def at(p):
        return "segment %d chunk %d offset %d" % tuple(p)
    if t == TIME_SET:
        s = "clock set from %d to %d (%+d ms)" % (b[K.OLD], b[K.NEW], b[K.NEW] - b[K.OLD])
        if K.DRIFT in b and K.SINCE in b:
            s += "; drift %+d ms/day (%+d ms over %d ms)" % (b[K.DRIFT], b.get(K.ERROR, 0),
                                                             b[K.SINCE])
        elif K.DRIFT not in b and K.SINCE not in b:
            s += "; no drift measured (too soon after the measurement base)"
        if b.get(K.FLAGS, 0) & F_DRIFT:
            s += "; flag DRIFT: beyond the device's drift limit"
        return s
    if t == INTERRUPTION:
        s = "reason %s" % b[K.REASON]
        if K.SEGMENT in b:
            s += "; segment %d" % b[K.SEGMENT]
        if K.AT in b:
            s += "; at " + at(b[K.AT])
        if K.REFERS in b:
            s += "; recovery seq %d" % b[K.REFERS]
        return s
    if t == VOICE_ANNOTATION:
        sp = b[K.SPAN]
        return "explains seq %d; segment %d from chunk %d offset %d to chunk %d offset %d; " \
               "held %d ms" % (b[K.REFERS], sp[0], sp[1], sp[2], sp[3], sp[4], b[K.DURATION])
    if t == ANNOTATION_MISSING:
        return "no voice annotation for seq %d (waited %d ms)" % (b[K.REFERS], b[K.DURATION])
    if t == MARK:
        s = b[K.KIND]
        if K.AT in b:
            s += " at " + at(b[K.AT])
        if K.PHRASE in b:
            s += "; notice phrase %s" % ("played" if b[K.PHRASE] else "not played")
        return s
    if t == ASSIGN:
        if b[K.OFFICER] is None:
            return "released from its officer by station %s" % b[K.STATION]
        return "assigned to %s%s by station %s" % (
            b[K.OFFICER], " (unit %s)" % b[K.UNIT] if K.UNIT in b else "", b[K.STATION])
    if t == SELF_CHECK:
        s = "READY" if b[K.READY] else "NOT_READY: " + ", ".join(b[K.REASONS])
        facts = b[K.FACTS]
        names = {1: "battery %d%%", 2: "storage %d min", 3: "clock error %+d ms",
                 4: "oldest unreceipted record %d s", 5: "calibrated %d ms ago"}
        f = [names[k] % facts[k] for k in sorted(facts) if k in names]
        return s + ("; " + ", ".join(f) if f else "")
    if t == RELEASE:
        return "segment %d (%s, %d bytes) released against receipt %d" % (
            b[K.SEGMENT], b[K.MEDIA], b[K.LENGTH], b[K.NUMBER])
    if t == RECEIPT:
        return "receipt %d covers records 0..%d (station %s)" % (
            b[K.NUMBER], b[K.COVERED], b[K.STATION])
    return ""




def check_workflow(v):
    """Cross-record checks of the workflow records: what ``refers`` names, where
    ``span`` / ``at`` point, what releases a segment's media; and the report's
    workflow lists. Only trusted records are looked at; a reference to a record that is
    itself NOT_OK is not reported again."""
    rep = v.rep
    trusted = sorted(v.trusted, key=lambda r: r.seq)
    by_seq = {r.seq: r for r in trusted}
    starts, members = v.starts, v.members
    close = {}
    for S, ms in members.items():
        cl = [r for r in ms if r.type in (SEGMENT, RECOVERY)]
        if cl:
            close[S] = min(cl, key=lambda r: r.seq)
    v.released = {}            # segment -> (RELEASE record, RECEIPT record)

    def refer(r, n, want):
        """The trusted record seq n of type ``want`` before r, or None (r.errors)."""
        o = by_seq.get(n)
        if o is not None and o.seq < r.seq and o.type == want:
            return o
        f = v.first.get(n)
        if o is None and f is not None and f.type == want and f.seq < r.seq:
            return None            # NOT_OK itself, reported there
        if n >= r.seq:
            what = "seq %d, which does not come before it" % n
        elif f is None:
            what = "seq %d, which is not in the chain" % n
        else:
            what = "seq %d, a %s, not a%s %s" % (
                n, f.tname, "n" if TYPE_NAMES[want][0] in "AEIOU" else "",
                TYPE_NAMES[want])
        r.errors.append("%s refers (key 31) to %s" % (r.tname, what))
        return None

    def segment(r, S, what):
        """The REC_START of segment S, if it stands before r; else None (r.errors)."""
        if S in starts and S < r.seq:
            return starts[S]
        o = v.first.get(S)
        if o is not None and o.type == REC_START and S < r.seq \
                and not (o.sig_ok and o.schema_ok):
            return None
        r.errors.append("%s names segment %d, which has no REC_START record before it"
                        % (what, S))
        return None

    def position(r, what, S, chunk, off, end=False):
        """Byte offset of (chunk, off) in segment S; None if it is not valid (r.errors).
        ``end``: an exclusive end, which may stand at the end of a chunk."""
        C = starts[S].body[K.CHUNK]
        if C <= 0:
            return None            # reported with the segment
        if off > C or (off == C and not end):
            r.errors.append("%s: offset %d is not inside a chunk of %d bytes"
                            % (what, off, C))
            return None
        p = chunk * C + off
        cl = close.get(S)
        if cl is not None and p > cl.body[K.LENGTH]:
            r.errors.append("%s: byte %d (chunk %d offset %d) lies beyond segment %d's "
                            "signed length of %d bytes (seq %d %s)"
                            % (what, p, chunk, off, S, cl.body[K.LENGTH], cl.seq, cl.tname))
            return None
        return p

    def at(r):
        a = r.body.get(K.AT)
        if a is not None and segment(r, a[0], "at (key 34)") is not None:
            position(r, "at (key 34)", a[0], a[1], a[2])
        return list(a) if a is not None else None

    intr = {}
    receipts = {}                 # number -> RECEIPT record (trusted, first)
    assigned, assigned_noted = None, False
    for r in trusted:
        b, t = r.body, r.type
        if assigned is not None and not assigned_noted and t != ASSIGN:
            a = assigned
            if (b[K.OFFICER], b.get(K.UNIT)) != (a.body[K.OFFICER], a.body.get(K.UNIT)):
                rep.notes.append(
                    "seq %d (%s) carries officer %r, unit %r, but the last ASSIGN (seq %d) "
                    "assigned officer %r, unit %r" % (
                        r.seq, r.tname, b[K.OFFICER], b.get(K.UNIT), a.seq,
                        a.body[K.OFFICER], a.body.get(K.UNIT)))
                assigned_noted = True
        if t == RECEIPT:
            receipts.setdefault(b[K.NUMBER], r)
        elif t == INTERRUPTION:
            if K.SEGMENT in b:
                segment(r, b[K.SEGMENT], "INTERRUPTION segment (key 10)")
            pos = at(r)
            if K.REFERS in b and b[K.REASON] == "power_loss":
                rc = refer(r, b[K.REFERS], RECOVERY)
                if rc is not None and K.SEGMENT in b and rc.body[K.SEGMENT] != b[K.SEGMENT]:
                    r.errors.append("INTERRUPTION names segment %d, but the RECOVERY it "
                                    "refers to (seq %d) recovered segment %d"
                                    % (b[K.SEGMENT], rc.seq, rc.body[K.SEGMENT]))
            intr[r.seq] = {"seq": r.seq, "reason": b[K.REASON], "segment": b.get(K.SEGMENT),
                           "at": pos,
                           "refers": b.get(K.REFERS), "rtc": b[K.RTC], "annotations": [],
                           "missing": None, "status": None, "why": ""}
        elif t in (VOICE_ANNOTATION, ANNOTATION_MISSING):
            i = refer(r, b[K.REFERS], INTERRUPTION)
            if t == VOICE_ANNOTATION:
                S, c0, o0, c1, o1 = b[K.SPAN]
                if segment(r, S, "span (key 32)") is not None:
                    p0 = position(r, "span (key 32) start", S, c0, o0)
                    p1 = position(r, "span (key 32) end", S, c1, o1, end=True)
                    if p0 is not None and p1 is not None and p0 > p1:
                        r.errors.append("span (key 32) starts after it ends (byte %d > "
                                        "byte %d of segment %d)" % (p0, p1, S))
            if i is not None and i.seq in intr:
                if t == VOICE_ANNOTATION:
                    intr[i.seq]["annotations"].append(r.seq)
                elif intr[i.seq]["missing"] is None:
                    intr[i.seq]["missing"] = r.seq
        elif t == MARK:
            rep.marks.append({"seq": r.seq, "kind": b[K.KIND], "at": at(r),
                              "phrase": b.get(K.PHRASE), "rtc": b[K.RTC]})
        elif t == ASSIGN:
            assigned, assigned_noted = r, False
            rep.assignments.append({"seq": r.seq, "officer": b[K.OFFICER], "unit": b.get(K.UNIT),
                                    "station": b[K.STATION]})
        elif t == SELF_CHECK:
            rep.self_checks.append({"seq": r.seq, "ready": b[K.READY],
                                    "reasons": list(b[K.REASONS]),
                                    "facts": dict(b[K.FACTS])})
        elif t == TIME_SET:
            rep.time_sets.append({"seq": r.seq, "old": b[K.OLD], "new": b[K.NEW],
                                  "drift": b.get(K.DRIFT), "since": b.get(K.SINCE),
                                  "drift_flag": bool(b.get(K.FLAGS, 0) & F_DRIFT)})
        elif t == RELEASE:
            _release(v, r, segment, close, receipts)
    later = [(r.seq, r.type) for r in trusted if r.type in (BOOT, ASSIGN)]
    for seq, d in intr.items():
        d["status"], d["why"] = judge_interruption(
            seq, d["annotations"], d["missing"], [x for x in later if x[0] > seq])
        if d["status"] == UNEXPLAINED:
            rep.notes.append("interruption seq %d (%s) was never explained: no "
                             "VOICE_ANNOTATION or ANNOTATION_MISSING (%s)"
                             % (seq, printable(d["reason"]), d["why"]))
        rep.interruptions.append(d)


def _release(v, r, segment, close, receipts):
    b = r.body
    S, n = b[K.SEGMENT], b[K.NUMBER]
    entry = {"seq": r.seq, "segment": S, "media": b[K.MEDIA], "length": b[K.LENGTH], "number": n,
             "receipt_seq": None, "valid": False}
    v.rep.releases.append(entry)
    st = segment(r, S, "RELEASE segment (key 10)")
    if st is None:
        return
    errs = []
    cl = close.get(S)
    why = "segment %d released without a covering receipt: " % S
    rc = receipts.get(n)
    if cl is None or cl.seq > r.seq:
        errs.append(why + "the segment is not closed (no SEGMENT or RECOVERY) before the "
                          "RELEASE")
    elif rc is None:
        o = [x for x in v.recs if x.fatal is None and x.type == RECEIPT
             and x.seq < r.seq and x.body.get(K.NUMBER) == n]
        if o and v.first.get(o[0].seq) is o[0]:
            return                 # that RECEIPT is NOT_OK itself, reported there
        errs.append(why + "no RECEIPT record numbered %d before it" % n)
    elif rc.body[K.COVERED] < cl.seq:
        errs.append(why + "receipt %d (seq %d) covers records 0..%d, but the segment is "
                          "closed by seq %d (%s)" % (n, rc.seq, rc.body[K.COVERED], cl.seq,
                                                      cl.tname))
    if b[K.MEDIA] != st.body[K.MEDIA]:
        errs.append("RELEASE media %r is not segment %d's media %r" % (b[K.MEDIA], S,
                                                                        st.body[K.MEDIA]))
    if cl is not None and b[K.LENGTH] != cl.body[K.LENGTH]:
        errs.append("RELEASE length %d is not segment %d's signed length %d (seq %d %s)"
                    % (b[K.LENGTH], S, cl.body[K.LENGTH], cl.seq, cl.tname))
    if errs:
        r.errors.extend(errs)
        return
    entry["receipt_seq"], entry["valid"] = rc.seq, True
    if S in v.released:
        v.rep.notes.append("segment %d released again by seq %d (first by seq %d)"
                              % (S, r.seq, v.released[S][0].seq))
    else:
        v.released[S] = (r, rc)

