"""`sealcam handover`: what a user who moves on hands to a named successor (R9, R21;
host_tools.catalogue.handover).

    sealcam handover offer --to USER --reason TEXT [--from USER] [--case NO]... [--hold ID]...
    sealcam handover accept ID
    sealcam handover withdraw ID --reason TEXT
    sealcam handover list [--pending | --orphaned]
    sealcam handover kept NAME

Each takes --archive DIR, --db URL, --user NAME and --json as the other clerk verbs do
(host_tools/cli_clerk.py); list and kept show what the signed-in --user may see, without
--user what the default clearance may (R16: other cases and holds are left out); exit codes are theirs: 0 done, 1 (list --orphaned) items have
no successor, 3 refused or a usage error (one line says why), 5 sign-in failed or the user
may not do this (e.g. accept a handover named for someone else).
"""
from __future__ import annotations

from ..i18n import _
from ..records import printable

def _lines(lines):
    """Lines for the terminal, each with its control characters escaped."""
    return "\n".join(printable(x, backslash=False) for x in lines)


__all__ = ["add_parsers", "orphans_text"]


def _cli():
    from .. import cli_clerk
    return cli_clerk


def _items(it):
    parts = []
    if it.get("cases"):
        parts.append(_("cases %(list)s") % {"list": ", ".join(it["cases"])})
    if it.get("holds"):
        parts.append(_("holds %(list)s") % {"list": ", ".join(str(x) for x in it["holds"])})
    return "; ".join(parts) or "-"


def _offer(args):
    from . import handover
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        chosen = bool(args.case or args.hold)
        hid = handover.offer(cat, who, args.to, args.reason, from_user=args.from_user,
                             cases=args.case if chosen else None,
                             holds=args.hold if chosen else None)
        row = [h for h in handover.handovers(cat) if h["id"] == hid][0]
    cli._emit(args, {"handover": hid, "from": row["from_user"], "to": row["to_user"],
                     "items": row["items"], "by": who.name, "log_entry": hid},
              printable(_("handover %(id)d offered by %(by)s: %(items)s of %(from)s to "
                          "%(to)s; %(to)s accepts it with `sealcam handover accept %(id)d`")
                        % {"id": hid, "by": who.name, "items": _items(row["items"]),
                           "from": row["from_user"], "to": row["to_user"]}, backslash=False))
    return 0


def _accept(args):
    from . import handover
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        i = handover.accept(cat, who, args.id)
        row = [h for h in handover.handovers(cat) if h["id"] == args.id][0]
    cli._emit(args, {"handover": args.id, "by": who.name, "items": row["items"],
                     "from": row["from_user"], "log_entry": i},
              printable(_("handover %(id)d accepted by %(by)s (station log entry %(i)d): "
                          "%(by)s now keeps %(items)s")
                        % {"id": args.id, "by": who.name, "i": i,
                           "items": _items(row["items"])}, backslash=False))
    return 0


def _withdraw(args):
    from . import handover
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        i = handover.withdraw(cat, who, args.id, args.reason)
        row = [h for h in handover.handovers(cat) if h["id"] == args.id][0]
    cli._emit(args, {"handover": args.id, "by": who.name, "items": row["items"],
                     "from": row["from_user"], "to": row["to_user"], "log_entry": i},
              printable(_("handover %(id)d withdrawn by %(by)s (station log entry %(i)d): "
                          "%(to)s can no longer accept it; %(items)s may be offered again")
                        % {"id": args.id, "by": who.name, "i": i, "to": row["to_user"],
                           "items": _items(row["items"])}, backslash=False))
    return 0


def orphans_text(rows) -> str:
    """What had no successor, as lines."""
    if not rows:
        return _("every open case and active hold has an active keeper")
    out = []
    for r in rows:
        what = (_("case %(id)s (%(title)s)") % {"id": r["id"], "title": r["title"]}
                if r["kind"] == "case" else _("hold %(id)s") % {"id": r["id"]})
        line = _("%(what)s: kept by %(keeper)s, who is no longer active; no successor")
        if r["offered_to"]:
            line = _("%(what)s: kept by %(keeper)s, who is no longer active; offered to "
                     "%(to)s (handover %(h)d), not accepted yet")
        out.append(line % {"what": what, "keeper": r["keeper"], "to": r["offered_to"],
                           "h": r["handover"] or 0})
    return _lines(out)


def _viewer(cat, args):
    """Who reads (R16): the user --user names, signed in; without --user, the default
    clearance. Cases and holds it may not see are left out as if they did not exist."""
    return _cli().signed_in(cat, args) if getattr(args, "user", None) else None


def _list(args):
    from . import handover
    from ..textcols import table
    cli = _cli()
    with cli.open_catalogue(args, readonly=True) as cat:
        who = _viewer(cat, args)
        if args.orphaned:
            rows = handover.without_successor(cat, viewer=who)
            cli._emit(args, {"without_successor": rows}, orphans_text(rows))
            return 1 if rows else 0
        rows = handover.pending(cat, viewer=who) if args.pending else \
            handover.handovers(cat, viewer=who)
    lines = table([_("id"), _("from"), _("to"), _("state"), _("items"), _("offered")],
                  [[str(r["id"]), r["from_user"], r["to_user"], _(r["state"]), _items(r["items"]),
                    r["offered_at"]] for r in rows]) if rows else [_("no handover")]
    cli._emit(args, {"handovers": rows}, _lines(lines))
    return 0


def _kept(args):
    from . import handover
    cli = _cli()
    with cli.open_catalogue(args, readonly=True) as cat:
        k = handover.kept_by(cat, args.name, viewer=_viewer(cat, args))
    cli._emit(args, dict(k, user=args.name), printable(
        _("%(name)s keeps: %(items)s") % {"name": args.name, "items": _items(k)},
        backslash=False))
    return 0


def add_parsers(sub, formatter):
    """Add `sealcam handover ACTION` (cli_clerk._MORE_VERBS)."""
    cli = _cli()
    h = sub.add_parser("handover", help=_("hand open cases and holds to a successor when "
                                          "someone moves on"),
                       description=_("The one who leaves offers the open cases and active "
                                     "holds they keep to a named successor, who accepts; "
                                     "both are signed events (SPEC §14.13). Once the one "
                                     "who left is inactive, an archive head or the bureau "
                                     "chief offers on their behalf (--from)."),
                       epilog=_(cli.EPILOG), formatter_class=formatter)
    hs = h.add_subparsers(dest="action", metavar="ACTION")
    hs.required = True
    p = hs.add_parser("offer", help=_("offer what you keep (or what --from kept) to a "
                                      "successor"))
    p.add_argument("--to", required=True, metavar="USER", help=_("the successor"))
    p.add_argument("--reason", required=True, help=_("why (transferred, retired, ...)"))
    p.add_argument("--from", dest="from_user", metavar="USER",
                   help=_("the user who left (an archive head or the bureau chief signs for "
                          "an inactive user)"))
    p.add_argument("--case", action="append", metavar="NO",
                   help=_("only this case (repeat; default: every open case kept)"))
    p.add_argument("--hold", action="append", type=int, metavar="ID",
                   help=_("only this hold (repeat; default: every active hold kept)"))
    cli.catalogue_common(p)
    p.set_defaults(func=cli.clerk_command(_offer))
    p = hs.add_parser("accept", help=_("accept a handover named for you"))
    p.add_argument("id", type=int, help=_("the handover id (`sealcam handover list`)"))
    cli.catalogue_common(p)
    p.set_defaults(func=cli.clerk_command(_accept))
    p = hs.add_parser("withdraw", help=_("withdraw an offer not accepted yet (the one who "
                                         "offered it, or an archive head)"))
    p.add_argument("id", type=int, help=_("the handover id (`sealcam handover list`)"))
    p.add_argument("--reason", required=True, help=_("why (wrong successor, ...)"))
    cli.catalogue_common(p)
    p.set_defaults(func=cli.clerk_command(_withdraw))
    p = hs.add_parser("list", help=_("list handovers, pending ones, or what has no "
                                     "successor"))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--pending", action="store_true", help=_("only offers not accepted yet"))
    g.add_argument("--orphaned", action="store_true",
                   help=_("open cases and holds whose keeper is inactive (exit 1 if any)"))
    cli.catalogue_common(p)
    p.set_defaults(func=cli.clerk_command(_list))
    p = hs.add_parser("kept", help=_("what a user keeps now"))
    p.add_argument("name")
    cli.catalogue_common(p)
    p.set_defaults(func=cli.clerk_command(_kept))
