"""`sealcam retention`: the clerk verbs of retention (host_tools.catalogue.retention; R12).

    sealcam retention due      [--today YYYY-MM-DD] [--all]   what may go now, and why
    sealcam retention request  DEVICE/SEGMENT --reason TEXT   ask for a disposal
    sealcam retention approve  REQUEST                         another user approves: disposed
    sealcam retention refuse   REQUEST --reason TEXT
    sealcam retention hold     (case:NUMBER | DEVICE/SEGMENT) --kind case|legal --reason TEXT
    sealcam retention release  HOLD --reason TEXT
    sealcam retention requests [--state requested|approved|refused]
    sealcam retention holds    [--all]

Each takes --archive DIR, --db URL, --user NAME and --json as the other clerk verbs do
(host_tools/cli_clerk.py); exit codes are theirs: 0 done, 3 refused or a usage error (one
line says why), 5 sign-in failed or the role may not do this.
"""
from __future__ import annotations

from ..i18n import N_, _
from ..records import printable

__all__ = ["add_parsers", "due_text"]

# the words the tables print, translated (classes, statuses, hold kinds, request states)
WORDS = (N_("ordinary"), N_("long_term"), N_("permanent"), N_("due"), N_("held"),
         N_("kept"), N_("not_yet"), N_("undated"), N_("disposed"), N_("partial"),
         N_("case"), N_("legal"), N_("requested"), N_("approved"), N_("refused"))


def _cli():
    from .. import cli_clerk
    return cli_clerk


def _rec(x):
    return "%s/%s" % (printable(x["device"]), x["segment"])


def due_text(rows) -> str:
    """The table `sealcam retention due` prints (and why each row is what it is)."""
    from ..textcols import table
    if not rows:
        return _("nothing is due")
    lines = table([_("recording"), _("class"), _("expires"), _("status"), _("request")],
                  [[_rec(x), _(x["class"]), x["expires_on"] or "-", _(x["status"]),
                    printable(x["request"] or "-")] for x in rows])
    out = lines[:1]
    for line, x in zip(lines[1:], rows):
        out.append(line)
        out += ["    " + printable(w, backslash=False) for w in x["why"]]
    return "\n".join(out)


def _due(args):
    from . import retention
    cli = _cli()
    with cli.open_catalogue(args, readonly=True) as cat:
        rows = retention.due(cat, args.today, everything=args.all)
    cli._emit(args, {"today": str(retention.day_of(args.today)), "recordings": rows},
              due_text(rows))
    return 0


def _split(rec):
    from . import recref
    from .retention_rules import RetentionRefused
    return recref.parse(rec, error=RetentionRefused)


def _request(args):
    from . import retention
    cli = _cli()
    dev, seg = _split(args.recording)
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        rq = retention.request(cat, who, dev, seg, args.reason)
    cli._emit(args, {"request": rq, "device": dev, "segment": seg, "by": who.name},
              _("disposal request %(id)s for %(rec)s by %(by)s: another user approves or "
                "refuses it") % {"id": rq, "rec": printable("%s/%d" % (dev, seg)),
                                   "by": who.name})
    return 0


def _approve(args):
    from . import retention
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        e = retention.approve(cat, who, args.request)
    j = {k: v for k, v in e.items() if k != "objects"}
    j["objects"] = [{"path": o["path"], "sha256": o["sha256"].hex()} for o in e["objects"]]
    cli._emit(args, j, _("%(rec)s disposed: request %(id)s by %(by)s, approved by "
                         "%(approver)s; %(n)d objects left the archive, its signed records "
                         "stay") % {"rec": _rec(e), "id": e["request"],
                                    "by": e["requested_by"], "approver": e["approved_by"],
                                    "n": len(e["objects"])})
    return 0


def _refuse(args):
    from . import retention
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        i = retention.refuse(cat, who, args.request, args.reason)
    cli._emit(args, {"request": args.request, "by": who.name, "log_entry": i},
              _("disposal request %(id)s refused by %(by)s (station log entry %(i)d)")
              % {"id": printable(args.request), "by": who.name, "i": i})
    return 0


def _hold(args):
    from . import retention
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        h = retention.hold(cat, who, args.scope, args.kind, args.reason)
    cli._emit(args, {"hold": h, "scope": args.scope, "kind": args.kind, "by": who.name},
              _("hold %(id)d (%(kind)s) on %(scope)s placed by %(by)s")
              % {"id": h, "kind": args.kind, "scope": printable(args.scope), "by": who.name})
    return 0


def _release(args):
    from . import retention
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        i = retention.release(cat, who, args.hold, args.reason)
    cli._emit(args, {"hold": args.hold, "by": who.name, "log_entry": i},
              _("hold %(id)d released by %(by)s (station log entry %(i)d)")
              % {"id": args.hold, "by": who.name, "i": i})
    return 0


def _requests(args):
    from . import retention
    from ..textcols import table
    cli = _cli()
    with cli.open_catalogue(args, readonly=True) as cat:
        rows = retention.requests(cat, args.state)
    text = "\n".join(table(
        [_("request"), _("recording"), _("state"), _("requested by"), _("decided by"),
         _("reason")],
        [[r["id"], _rec(r), _(r["state"]), r["requested_by"], r["decided_by"] or "-",
          printable(r["reason"], backslash=False)[:60]] for r in rows])) if rows \
        else _("no disposal requests")
    cli._emit(args, {"requests": rows}, text)
    return 0


def _holds(args):
    from . import retention
    from ..textcols import table
    cli = _cli()
    with cli.open_catalogue(args, readonly=True) as cat:
        rows = retention.holds(cat, active=not args.all)
        ids = {}
        want = sorted({r["recording_id"] for r in rows if r["recording_id"] is not None})
        if want:
            import sqlalchemy as sa
            from . import db
            c = db.recordings.c
            with cat.engine.connect() as conn:
                for k in range(0, len(want), 500):
                    ids.update((r[0], (r[1], r[2])) for r in conn.execute(sa.select(
                        c.id, c.device, c.segment).where(c.id.in_(want[k:k + 500]))))
    for r in rows:
        d = ids.get(r["recording_id"])
        r["scope"] = "case:" + r["case_no"] if r["case_no"] else \
            "%s/%s" % d if d else "?"
    text = "\n".join(table(
        [_("hold"), _("kind"), _("on"), _("placed by"), _("released by"), _("reason")],
        [[str(r["id"]), _(r["kind"]), printable(r["scope"]), r["placed_by"],
          r["released_by"] or "-", printable(r["reason"], backslash=False)[:60]]
         for r in rows])) if rows else _("no holds")
    cli._emit(args, {"holds": rows}, text)
    return 0


def add_parsers(sub, formatter):
    """Add `sealcam retention ACTION` to the sub-parsers ``sub`` (cli_clerk.add_parsers)."""
    cli = _cli()
    common = cli.catalogue_common
    r = sub.add_parser("retention", help=_("how long recordings are kept: what is due, "
                                           "holds, disposal with approval"),
                       description=_("Retention classes (station.toml [retention]), holds "
                                     "and disposal: a request by one user, an approval by "
                                     "another (R12; SPEC §9.2, §14)."),
                       epilog=_(cli.EPILOG), formatter_class=formatter)
    rs = r.add_subparsers(dest="action", metavar="ACTION")
    rs.required = True
    p = rs.add_parser("due", help=_("list what may be disposed of now, and why"))
    p.add_argument("--today", metavar="YYYY-MM-DD", default=None,
                   help=_("the day to judge on (default: today, UTC)"))
    p.add_argument("--all", action="store_true",
                   help=_("every recording with its class, expiry and status"))
    common(p, user=False)
    p.set_defaults(func=cli.clerk_command(_due))
    p = rs.add_parser("request", help=_("ask for the disposal of a recording that is due"))
    p.add_argument("recording", metavar="DEVICE/SEGMENT")
    p.add_argument("--reason", required=True)
    common(p)
    p.set_defaults(func=cli.clerk_command(_request))
    p = rs.add_parser("approve", help=_("approve another user's request: the media is "
                                        "disposed of"))
    p.add_argument("request", metavar="REQUEST")
    common(p)
    p.set_defaults(func=cli.clerk_command(_approve))
    p = rs.add_parser("refuse", help=_("refuse a disposal request"))
    p.add_argument("request", metavar="REQUEST")
    p.add_argument("--reason", required=True)
    common(p)
    p.set_defaults(func=cli.clerk_command(_refuse))
    p = rs.add_parser("hold", help=_("keep a recording or a case's recordings (blocks "
                                     "disposal)"))
    p.add_argument("scope", metavar="case:NUMBER|DEVICE/SEGMENT")
    p.add_argument("--kind", required=True, choices=("case", "legal"))
    p.add_argument("--reason", required=True)
    common(p)
    p.set_defaults(func=cli.clerk_command(_hold))
    p = rs.add_parser("release", help=_("release a hold"))
    p.add_argument("hold", metavar="HOLD", type=int)
    p.add_argument("--reason", required=True)
    common(p)
    p.set_defaults(func=cli.clerk_command(_release))
    p = rs.add_parser("requests", help=_("list the disposal requests"))
    p.add_argument("--state", choices=("requested", "approved", "refused"))
    common(p, user=False)
    p.set_defaults(func=cli.clerk_command(_requests))
    p = rs.add_parser("holds", help=_("list the holds"))
    p.add_argument("--all", action="store_true", help=_("released ones too"))
    common(p, user=False)
    p.set_defaults(func=cli.clerk_command(_holds))
    return r
