"""The filing verbs of ``sealcam``: metadata, archive numbers, cases and documents (issue 11
items 1-3; R3 written part, R10, R11, R18, R22; SPEC §14). cli_clerk.add_parsers adds them
with ``filing_cli.add_parsers(sub, formatter)``.

    sealcam tag DEVICE/SEGMENT [--from MS --to MS] [--party P] [--place P] [--event-type W]
                [--case NO] [--item-class K] [--note TEXT] [--retention-class C]
                [--reason TEXT] [--supersedes ENTRY]
    sealcam tag-history DEVICE/SEGMENT          (these read verbs: R16, below)
    sealcam number DEVICE/SEGMENT[:FROM-TO] ... --party P --step S
    sealcam number-show NUMBER
    sealcam number-due [--hours 24]             recordings without a number 24 h after
    sealcam case open NO --title T [--unit U]
    sealcam case link NO (DEVICE/SEGMENT [--role primary|angle|other] | --document SHA256)
    sealcam case unlink NO (DEVICE/SEGMENT | --document SHA256) --reason TEXT
    sealcam case close NO [--reason TEXT] | case archive NO --year YYYY
    sealcam case show NO | case incident DEVICE/SEGMENT
    sealcam doc add FILE --kind written_record|explanation|other [--name N]
                [--device D --interruption SEQ] [--case NO]
    sealcam doc explanations DEVICE SEQ

A recording is DEVICE/SEGMENT (the seq of its REC_START), as `sealcam retention` and
`sealcam search` print it; a span of it adds :FROM-TO, milliseconds from its start.
Each verb takes --archive DIR, --db URL, --user NAME and --json as the other clerk verbs do
(host_tools/cli_clerk.py); exit codes are theirs: 0 done, 3 refused or a usage error (one
line says why), 5 sign-in failed or the role may not do this. The read verbs (tag-history,
number-show, number-due, case show|incident, doc explanations) answer what the signed-in
--user may see, without --user what the default clearance may (R16, SPEC §14.8): a
recording or case above it is answered as one that does not exist.
"""
from __future__ import annotations

import argparse

from ..cli_clerk import (EPILOG, EXIT_OK, _emit, catalogue_common, clerk_command,
                         open_catalogue, signed_in)
from ..i18n import N_, _
from ..records import printable


def _p(x):
    """A value for the terminal: Chinese stays, control characters are escaped."""
    return "-" if x is None else printable(x, backslash=False) if isinstance(x, str) \
        else str(x)

__all__ = ["add_parsers"]

# the words the texts print, translated (case states, roles, history, document kinds)
WORDS = (N_("open"), N_("closed"), N_("archived"), N_("opened"), N_("linked"),
         N_("unlinked"), N_("primary"), N_("angle"), N_("other"), N_("written_record"),
         N_("explanation"))


def _recording(text):
    """DEVICE/SEGMENT, or DEVICE/SEGMENT:FROM-TO (milliseconds from the recording's start):
    recref's one reading, as an argparse type."""
    from . import recref
    return recref.parse_span(text, error=argparse.ArgumentTypeError)


def _whole(text):
    r = _recording(text)
    if len(r) != 2:
        raise argparse.ArgumentTypeError(_("%(text)r: give DEVICE/SEGMENT (a span is given "
                                           "with --from and --to)") % {"text": text[:60]})
    return r


def _viewer(cat, args):
    """Who reads (R16): the user --user names, signed in; without --user, the default
    clearance (what may be shown to anyone who runs the verb)."""
    return signed_in(cat, args) if getattr(args, "user", None) else None


def _done(args, i, what, **extra):
    _emit(args, dict(extra, log_entry=i), _("%(what)s (station log entry %(i)d)")
          % {"what": what, "i": i})
    return EXIT_OK


# -- tag -------------------------------------------------------------------------------

@clerk_command
def _tag(args):
    from . import tags
    fields = {k: getattr(args, k) for k in tags.FIELDS if getattr(args, k) is not None}
    with open_catalogue(args) as cat:
        who = signed_in(cat, args)
        dev, seg = args.recording
        i = cat.act(who, tags.tag_event(dev, seg, span_from_ms=args.span_from,
                                        span_to_ms=args.span_to, reason=args.reason,
                                        supersedes=args.supersedes, **fields))
        return _done(args, i, _("%(device)s/%(segment)d tagged by %(by)s")
                     % {"device": dev, "segment": seg, "by": who.name},
                     current=tags.current(cat, dev, seg, viewer=who))


@clerk_command
def _tag_history(args):
    from . import tags
    from ..textcols import table
    with open_catalogue(args, readonly=True) as cat:
        rows = tags.history(cat, *args.recording, viewer=_viewer(cat, args))
    lines = table([_("entry"), _("span"), _("field"), _("value"), _("current"), _("by"),
                   _("at"), _("reason")],
                  [[str(r["event"]), "" if r["span_from_ms"] is None else "%d-%d" % (
                      r["span_from_ms"], r["span_to_ms"]), r["field"],
                    printable(r["value"], backslash=False),
                    _("yes") if r["current"] else _("no"), r["by_user"], r["at"],
                    printable(r["reason"] or "", backslash=False)] for r in rows])
    _emit(args, {"history": rows}, "\n".join(lines))
    return EXIT_OK


# -- number ----------------------------------------------------------------------------

@clerk_command
def _number(args):
    from . import numbers
    with open_catalogue(args) as cat:
        who = signed_in(cat, args)
        e = numbers.assign(cat, who, args.recordings, party=args.party, step=args.step)
        _emit(args, numbers.resolve(cat, e["number"], viewer=who),
              _("archive number %(number)s assigned by %(by)s") % {"number": e["number"],
                                                                   "by": who.name})
    return EXIT_OK


@clerk_command
def _number_show(args):
    from . import numbers
    from .store import CatalogueError
    with open_catalogue(args, readonly=True) as cat:
        r = numbers.resolve(cat, args.number, viewer=_viewer(cat, args))
    if r is None:               # R16: one whose recordings are all hidden, the same
        raise CatalogueError(_("no archive number %(number)s") % {"number": args.number})
    lines = [_("%(number)s: %(party)s, %(step)s, %(day)s (by %(by)s at %(at)s)")
             % {"number": _p(r["number"]), "party": _p(r["party"]), "step": _p(r["step"]),
                "day": r["day"], "by": r["by_user"], "at": r["at"]}]
    lines += ["  %s/%d%s %s" % (x["device"], x["segment"], "" if x["span_from_ms"] is None
                                else " %d-%d ms" % (x["span_from_ms"], x["span_to_ms"]),
                                x["state"]) for x in r["items"]]
    _emit(args, r, "\n".join(lines))
    return EXIT_OK


@clerk_command
def _number_due(args):
    from . import numbers
    with open_catalogue(args, readonly=True) as cat:
        rows = numbers.unnumbered(cat, hours=args.hours, viewer=_viewer(cat, args))
    _emit(args, {"unnumbered": rows}, "\n".join(
        [_("%(device)s/%(segment)d (%(officer)s): no archive number %(hours)d hours after it "
           "ended") % {"device": r["device"], "segment": r["segment"],
                       "officer": r["officer"] or "-", "hours": r["hours_since_end"]}
         for r in rows] or [_("every recording that ended has its archive number")]))
    return EXIT_OK


# -- case --------------------------------------------------------------------------------

@clerk_command
def _case(args):
    from . import cases
    from .store import CatalogueError
    ro = args.action in ("show", "incident")
    with open_catalogue(args, readonly=ro) as cat:
        viewer = _viewer(cat, args) if ro else None
        if args.action == "show":       # R16: what the viewer may not see does not exist
            s = cases.show(cat, args.case_no, viewer)
            if s is None:
                raise CatalogueError(_("no case %(case)s") % {"case": args.case_no})
            _emit(args, s, _show_text(s))
            return EXIT_OK
        if args.action == "incident":
            rows = cases.incident(cat, args.recording[0], args.recording[1], viewer)
            _emit(args, {"incident": rows}, "\n".join(
                "%s/%d %s %s" % (x["device"], x["segment"], _p(x["officer"]),
                                 "; ".join(_p(w) for w in x["why"])) for x in rows))
            return EXIT_OK
        who = signed_in(cat, args)
        rec = getattr(args, "recording", None) or (None, None)
        doc = getattr(args, "document", None)
        if args.action == "open":
            e = cases.opened_event(args.case_no, args.title, args.unit)
        elif args.action == "link":
            e = cases.linked_event(args.case_no, device=rec[0], segment=rec[1],
                                   role=args.role, document=doc)
        elif args.action == "unlink":
            e = cases.unlinked_event(args.case_no, args.reason, device=rec[0],
                                     segment=rec[1], document=doc)
        elif args.action == "close":
            e = cases.closed_event(args.case_no, args.reason)
        else:
            e = cases.archived_event(args.case_no, args.year)
        i = cat.act(who, e)
        said = {"open": _("case %(case)s opened by %(by)s"),
                "link": _("filed into case %(case)s by %(by)s"),
                "unlink": _("taken out of case %(case)s by %(by)s"),
                "close": _("case %(case)s closed by %(by)s"),
                "archive": _("case %(case)s archived by %(by)s")}[args.action]
        return _done(args, i, said % {"case": args.case_no, "by": who.name})


def _show_text(s):
    lines = [_("case %(case)s (%(state)s): %(title)s") % {"case": _p(s["case_no"]),
                                                          "state": _(s["state"]),
                                                          "title": _p(s["title"])}]
    lines += ["  %s/%d %s %s %s" % (r["device"], r["segment"], _(r["role"]),
                                    _p(r["officer"]), " ".join(_p(n) for n in r["numbers"]))
              for r in s["recordings"]]
    lines += ["  %s %s %s" % (d["sha256"][:16], _(d["kind"]), _p(d["name"]))
              for d in s["documents"]]
    lines += ["  #%d %s %s %s %s" % (h["event"], _(h["what"]), h["by_user"], h["at"],
                                     _p(h["reason"] or "")) for h in s["history"]]
    return "\n".join(lines)


# -- doc ---------------------------------------------------------------------------------

@clerk_command
def _doc(args):
    from . import documents
    if args.action == "explanations":
        with open_catalogue(args, readonly=True) as cat:
            rows = documents.explanations(cat, args.device, args.seq,
                                          viewer=_viewer(cat, args))
        _emit(args, {"explanations": rows}, "\n".join(
            "%s %s %s %s" % (r["sha256"][:16], _p(r["name"]), r["by_user"], r["at"])
            for r in rows))
        return EXIT_OK
    with open_catalogue(args) as cat:
        who = signed_in(cat, args)
        sha = documents.add_document(cat, who, args.file, args.kind, name=args.name,
                                     device=args.device, interruption_seq=args.interruption,
                                     case_no=args.case)
        _emit(args, documents.document(cat, sha),
              _("document %(sha)s stored and recorded by %(by)s") % {"sha": sha,
                                                                    "by": who.name})
    return EXIT_OK


def add_parsers(sub, formatter):
    """Add tag, tag-history, number, number-show, number-due, case and doc to the
    sub-parsers ``sub``."""
    from . import cases, documents, tags
    t = sub.add_parser("tag", help=_("attach metadata to a recording or a span of it"),
                       description=_("Party, place, event type, case, item class (R18), note: "
                                     "a new value supersedes the old one, which stays in "
                                     "the history; a correction needs --reason."),
                       epilog=_(EPILOG), formatter_class=formatter)
    t.add_argument("recording", type=_whole, metavar="DEVICE/SEGMENT")
    t.add_argument("--from", dest="span_from", type=int, metavar="MS",
                   help=_("the span's start, milliseconds from the recording's start"))
    t.add_argument("--to", dest="span_to", type=int, metavar="MS")
    for f in tags.FIELDS:
        t.add_argument("--" + f.replace("_", "-"), dest=f, metavar="TEXT")
    t.add_argument("--reason", help=_("why a value is corrected"))
    t.add_argument("--supersedes", type=int, metavar="ENTRY")
    catalogue_common(t)
    t.set_defaults(func=_tag)
    h = sub.add_parser("tag-history", help=_("every value a recording's metadata ever had"),
                       formatter_class=formatter)
    h.add_argument("recording", type=_whole, metavar="DEVICE/SEGMENT")
    catalogue_common(h)
    h.set_defaults(func=_tag_history)
    n = sub.add_parser("number", help=_("assign an archive number (R11)"),
                       description=_("The number is made from [archive_number] pattern of "
                                     "station.toml and is never given again."),
                       epilog=_(EPILOG), formatter_class=formatter)
    n.add_argument("recordings", nargs="+", type=_recording,
                   metavar="DEVICE/SEGMENT[:FROM-TO]")
    n.add_argument("--party", required=True)
    n.add_argument("--step", required=True, help=_("the enforcement step"))
    catalogue_common(n)
    n.set_defaults(func=_number)
    ns = sub.add_parser("number-show", help=_("what an archive number holds"),
                        formatter_class=formatter)
    ns.add_argument("number")
    catalogue_common(ns)
    ns.set_defaults(func=_number_show)

    nd = sub.add_parser("number-due", help=_("recordings still without an archive number "
                                             "24 hours after they ended (R11)"),
                        formatter_class=formatter)
    nd.add_argument("--hours", type=int, default=24)
    catalogue_common(nd)
    nd.set_defaults(func=_number_due)

    c = sub.add_parser("case", help=_("case files: recordings and documents together"),
                       epilog=_(EPILOG), formatter_class=formatter)
    cs = c.add_subparsers(dest="action", metavar="ACTION")
    cs.required = True
    p = cs.add_parser("open", help=_("open a case"))
    p.add_argument("case_no")
    p.add_argument("--title", required=True)
    p.add_argument("--unit")
    for name, hlp in (("link", _("file a recording or a document into an open case")),
                      ("unlink", _("take one out again (with --reason)"))):
        q = cs.add_parser(name, help=hlp)
        q.add_argument("case_no")
        g = q.add_mutually_exclusive_group(required=True)
        g.add_argument("recording", nargs="?", type=_whole, metavar="DEVICE/SEGMENT")
        g.add_argument("--document", metavar="SHA256")
        if name == "link":
            q.add_argument("--role", choices=cases.ROLES, default="primary")
        else:
            q.add_argument("--reason", required=True)
        catalogue_common(q)
        q.set_defaults(func=_case)
    p2 = cs.add_parser("close", help=_("close a case"))
    p2.add_argument("case_no")
    p2.add_argument("--reason")
    p3 = cs.add_parser("archive", help=_("archive a closed case at year end"))
    p3.add_argument("case_no")
    p3.add_argument("--year", type=int, required=True)
    p4 = cs.add_parser("show", help=_("everything filed in a case"))
    p4.add_argument("case_no")
    p5 = cs.add_parser("incident", help=_("the recordings of the same incident (R22)"))
    p5.add_argument("recording", type=_whole, metavar="DEVICE/SEGMENT")
    for q, user in ((p, True), (p2, True), (p3, True), (p4, True), (p5, True)):
        catalogue_common(q, user=user)
        q.set_defaults(func=_case)

    d = sub.add_parser("doc", help=_("scanned written records and explanations"),
                       epilog=_(EPILOG), formatter_class=formatter)
    ds = d.add_subparsers(dest="action", metavar="ACTION")
    ds.required = True
    a = ds.add_parser("add", help=_("store a scanned PDF, JPEG or PNG in the archive"))
    a.add_argument("file")
    a.add_argument("--kind", required=True, choices=documents.KINDS)
    a.add_argument("--name")
    a.add_argument("--device")
    a.add_argument("--interruption", type=int, metavar="SEQ",
                   help=_("the INTERRUPTION record a written explanation explains"))
    a.add_argument("--case", metavar="NO")
    catalogue_common(a)
    a.set_defaults(func=_doc)
    x = ds.add_parser("explanations", help=_("the written explanations of an interruption"))
    x.add_argument("device")
    x.add_argument("seq", type=int)
    catalogue_common(x)
    x.set_defaults(func=_doc)
    return sub
