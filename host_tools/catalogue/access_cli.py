"""`sealcam access`: requests to view, copy, export or print recordings, their approval,
and the register (host_tools.catalogue.access; R15; SPEC §14.9).

    sealcam access request --case C (--recording DEV:SEG | --whole-case | --number N)
                           --purpose TEXT --action view,copy [--agency NAME] [--valid-days N]
    sealcam access approve ID [--reason TEXT]
    sealcam access refuse  ID --reason TEXT
    sealcam access revoke  ID --reason TEXT
    sealcam access show    ID
    sealcam access list    [--state requested|approved|refused|expired|revoked]
    sealcam access register [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json | --pdf FILE]

Each takes --archive DIR, --db URL, --user NAME and --json as the other clerk verbs do
(host_tools/cli_clerk.py; show, list and register too: each shows what the signed-in user
may see, access.state/requests/register viewer=); exit codes are theirs: 0 done, 1 the register holds a use the
rules refuse, 3 refused or a usage error (one line says why), 5 sign-in failed, the role
may not do this, or the rules allow no such approval or access.
"""
from __future__ import annotations

import datetime as dt
import os

from ..i18n import N_, _
from ..records import printable

__all__ = ["add_parsers", "register_text", "write_register_pdf", "show_text"]

# the words the tables print, translated (request states, actions, roles, target kinds)
WORDS = (N_("requested"), N_("approved"), N_("refused"), N_("expired"), N_("revoked"),
         N_("view"),
         N_("copy"), N_("export"), N_("print"), N_("archive_head"), N_("unit_leader"),
         N_("bureau_chief"), N_("recording"), N_("case"), N_("number"))

_ACTIONS = ("view", "copy", "export", "print")
_ROLES = ("archive_head", "unit_leader", "bureau_chief")

# the PDF is a record of the station: both languages, whatever the terminal's
PDF_TITLE = "调阅登记表 / Access register"
PDF_COLUMNS = ("时间 When (UTC)", "人员 Who", "操作 Action", "对象 What", "申请号 Request",
               "用途 Purpose", "批准 Approvals")
PDF_SIGNATURE = ("审核人签字 / Supervisor's signature: ______________________",
                 "日期 / Date: ______________")


def _cli():
    from .. import cli_clerk
    return cli_clerk


def _p(s):
    return printable("" if s is None else str(s), backslash=False)


def _when(at):
    """'2026-12-01 10:00:05' (UTC) of an ISO time."""
    s = str(at or "")[:40]
    return _p(s[:19].replace("T", " ") if len(s) >= 19 else s)


def _word(w, words=()):
    """A known word translated; anything else (read from the log) made printable."""
    return _(w) if w in words else _p(w)


def _approvals(r, sep="; "):
    return sep.join("%s (%s) %s" % (_p(a["by"]), _word(a["role"], _ROLES), _when(a["at"]))
                    for a in r["approvals"]) or "-"


def register_text(rows) -> str:
    from ..textcols import table
    if not rows:
        return _("no access in this period")
    lines = table([_("when (UTC)"), _("who"), _("action"), _("what"), _("request"),
                   _("purpose"), _("approvals")],
                  [[_when(r["at"]), _p(r["requester"]), _word(r["action"], _ACTIONS),
                    _p(r["target"]), _p(r["request_id"]), _p(r["purpose"])[:40],
                    _approvals(r)] for r in rows])
    out = lines[:1]
    for line, r in zip(lines[1:], rows):
        out.append(line)
        if not r["valid"]:
            out.append("    " + _("NOT ALLOWED by the rules: %(why)s") % {
                "why": _p(r["problem"])})
    bad = sum(1 for r in rows if not r["valid"])
    out.append(_("%(n)d accesses") % {"n": len(rows)} + (
        "; " + _("%(bad)d not allowed by the rules") % {"bad": bad} if bad else ""))
    return "\n".join(out)


def write_register_pdf(cat, path, rows, since, until, *, printed_by=None, overwrite=False):
    """The register as a PDF (host_tools/pdfdoc.py) with a line for the supervisor to
    sign (审核人签字)."""
    from .. import pdfdoc
    agency = cat.config.values.get("agency", {})
    name = agency.get("name") or agency.get("code") or ""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = ["单位 Agency: %s" % name,
              "档案 Archive: %s (%s)" % (cat.archive_dir, cat.archive.archive_id),
              "期间 Period: %s" % ("%s — %s" % (since or "…", until or "…")
                                   if since or until else "全部 / all"),
              "打印 Printed: %s%s" % (now, " — %s" % printed_by if printed_by else ""),
              "站点日志 Station log: %d entries" % cat.archive.log().size]
    body = []
    for r in rows:
        what = _p(r["target"])
        if r.get("output"):
            what += "\n→ " + r["output"][:16]
        req = "%s\n%s" % (_p(r["request_id"]), _p(r["case_no"]))
        appr = _approvals(r, "\n")
        if not r["valid"]:
            appr = "未获批准 NOT ALLOWED: " + _p(r["problem"])
        body.append([_when(r["at"]), _p(r["requester"]), _p(r["action"]), what, req,
                     _p(r["purpose"]), appr])
    bad = sum(1 for r in rows if not r["valid"])
    footer = ["共 %d 次访问 / %d accesses" % (len(rows), len(rows))]
    if bad:
        footer.append("其中 %d 次未获批准 / %d not allowed by the rules" % (bad, bad))
    pdfdoc.write_table_pdf(path, PDF_TITLE, header, PDF_COLUMNS, body, footer,
                           signature_lines=PDF_SIGNATURE, overwrite=overwrite)
    return path


def show_text(st) -> str:
    lines = [_("request %(id)s: %(state)s") % {"id": st["id"], "state": _(st["state"])},
             "  " + _("requested by %(by)s at %(at)s") % {"by": _p(st["requester"]),
                                                          "at": _when(st["requested_at"])},
             "  " + _("purpose: %(p)s") % {"p": _p(st["purpose"])},
             "  " + _("case: %(case)s (unit %(unit)s)") % {"case": _p(st["case_no"]),
                                                           "unit": _p(st["case_unit"] or "-")},
             "  " + _("what: %(kind)s %(target)s") % {"kind": _(st["target_kind"]),
                                                      "target": _p(st["target"])},
             "  " + _("actions: %(a)s") % {"a": ", ".join(_(a) for a in st["actions"])},
             "  " + _("valid until: %(t)s") % {"t": _when(st["valid_until"])}]
    if st["agency"]:
        lines.append("  " + _("for another agency: %(a)s") % {"a": _p(st["agency"])})
    for a in st["approvals"]:
        lines.append("  " + _("approved by %(by)s (%(role)s) at %(at)s") % {
            "by": _p(a["by"]), "role": _(a["role"]), "at": _when(a["at"])})
    if st["refusal"]:
        lines.append("  " + _("refused by %(by)s at %(at)s: %(why)s") % {
            "by": _p(st["refusal"]["by"]), "at": _when(st["refusal"]["at"]),
            "why": _p(st["refusal"]["reason"])})
    if st.get("revocation"):
        lines.append("  " + _("revoked by %(by)s at %(at)s: %(why)s") % {
            "by": _p(st["revocation"]["by"]), "at": _when(st["revocation"]["at"]),
            "why": _p(st["revocation"]["reason"])})
    if st["missing"] and not st["refusal"] and not st.get("revocation"):
        lines.append("  " + _("still needs: %(roles)s") % {
            "roles": " + ".join(_(r) for r in st["missing"])})
    lines.append("  " + _("recordings: %(recs)s") % {
        "recs": ", ".join("%s:%s" % (_p(d), s) for d, s in st["recordings"]) or "-"})
    return "\n".join(lines)


def _json_state(st):
    j = dict(st)
    j["recordings"] = [{"device": d, "segment": s} for d, s in st["recordings"]]
    return j


def _request(args):
    from . import access
    cli = _cli()
    if args.recording:
        kind, target = "recording", args.recording
    elif args.number:
        kind, target = "number", args.number
    else:
        kind, target = "case", args.case
    if kind == "recording":
        from . import recref
        target = "%s:%d" % recref.parse(target)      # the event's form (SPEC §14.9)
    actions = [a.strip() for a in args.action.split(",") if a.strip()]
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        rid = access.request(cat, who, target_kind=kind, target=target, case_no=args.case,
                             purpose=args.purpose, actions=actions, agency=args.agency,
                             valid_days=args.valid_days)
        st = access.state(cat, rid, viewer=who)
    cli._emit(args, _json_state(st),
              _("access request %(id)s by %(by)s: it needs the approval of %(roles)s")
              % {"id": rid, "by": who.name, "roles": " + ".join(_(r) for r in st["missing"])})
    return 0


def _approve(args):
    from . import access
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        i = access.approve(cat, who, args.request, args.reason)
        st = access.state(cat, args.request, viewer=who)
    text = _("request %(id)s approved by %(by)s (%(role)s; station log entry %(i)d)") % {
        "id": _p(args.request), "by": who.name, "role": _(who.role), "i": i}
    text += "\n" + (_("it is approved: its requester may use it until %(t)s") % {
        "t": _when(st["valid_until"])} if st["approved"] else _("it still needs: %(roles)s")
        % {"roles": " + ".join(_(r) for r in st["missing"])})
    cli._emit(args, dict(_json_state(st), log_entry=i), text)
    return 0


def _refuse(args):
    from . import access
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        i = access.refuse(cat, who, args.request, args.reason)
    cli._emit(args, {"request": args.request, "by": who.name, "log_entry": i},
              _("request %(id)s refused by %(by)s (station log entry %(i)d)")
              % {"id": _p(args.request), "by": who.name, "i": i})
    return 0


def _revoke(args):
    from . import access
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        i = access.revoke(cat, who, args.request, args.reason)
    cli._emit(args, {"request": args.request, "by": who.name, "log_entry": i},
              _("request %(id)s revoked by %(by)s (station log entry %(i)d): nothing more "
                "is used under it") % {"id": _p(args.request), "by": who.name, "i": i})
    return 0


def _show(args):
    from . import access
    cli = _cli()
    with cli.open_catalogue(args, readonly=True) as cat:
        who = cli.signed_in(cat, args)
        st = access.state(cat, args.request, viewer=who)
    cli._emit(args, _json_state(st), show_text(st))
    return 0


def _list(args):
    from . import access
    from ..textcols import table
    cli = _cli()
    with cli.open_catalogue(args, readonly=True) as cat:
        who = cli.signed_in(cat, args)
        rows = access.requests(cat, args.state, viewer=who)
    text = "\n".join(table(
        [_("request"), _("state"), _("requester"), _("case"), _("what"), _("actions"),
         _("still needs")],
        [[r["id"], _(r["state"]), _p(r["requester"]), _p(r["case_no"]),
          _p(r["target"]), ",".join(r["actions"]),
          " + ".join(r["missing"]) if r["state"] == "requested" else "-"] for r in rows])) \
        if rows else _("no access requests")
    cli._emit(args, {"requests": [_json_state(r) for r in rows]}, text)
    return 0


def _register(args):
    from . import access
    cli = _cli()
    with cli.open_catalogue(args, readonly=True) as cat:
        who = cli.signed_in(cat, args)
        rows = access.register(cat, args.since, args.until, viewer=who)
        if args.pdf:
            path = os.path.abspath(args.pdf)
            from .. import pdfdoc
            try:
                write_register_pdf(cat, path, rows, args.since, args.until,
                                   printed_by=who.name)
            except (FileExistsError, pdfdoc.FontMissing, OSError) as ex:
                from .store import CatalogueError
                raise CatalogueError(_("the register cannot be written to %(path)s: %(why)s")
                                     % {"path": _p(path), "why": _p(str(ex))}) from None
            print(_("the register (%(n)d accesses) is in %(path)s: print it for the "
                    "supervisor to sign") % {"n": len(rows), "path": _p(path)})
        else:
            cli._emit(args, {"from": args.since, "to": args.until, "accesses": rows},
                      register_text(rows))
    return 1 if any(not r["valid"] for r in rows) else 0


def add_parsers(sub, formatter):
    """Add `sealcam access ACTION` to the sub-parsers ``sub`` (cli_clerk.add_parsers)."""
    from . import access
    cli = _cli()
    common = cli.catalogue_common
    r = sub.add_parser("access", help=_("requests to view, copy, export or print records, "
                                        "their approval, and the register"),
                       description=_("Every view, copy, export or print of recordings "
                                     "needs a request naming its purpose and its case, "
                                     "approved by the roles the station's rule names; "
                                     "each use goes on the register (R15; SPEC §14.9)."),
                       epilog=_(cli.EPILOG), formatter_class=formatter)
    rs = r.add_subparsers(dest="action_verb", metavar="ACTION")
    rs.required = True
    p = rs.add_parser("request", help=_("ask for access to a recording, a case or an archive "
                                        "number"))
    p.add_argument("--case", required=True, metavar="CASE",
                   help=_("the case the access is for"))
    w = p.add_mutually_exclusive_group(required=True)
    w.add_argument("--recording", metavar="DEVICE/SEGMENT",
                   help=_("one recording (filed in the case)"))
    w.add_argument("--whole-case", action="store_true",
                   help=_("every recording filed in the case"))
    w.add_argument("--number", metavar="NUMBER",
                   help=_("the recordings of an archive number (filed in the case)"))
    p.add_argument("--purpose", required=True, help=_("why the access is needed"))
    p.add_argument("--action", required=True, metavar="view,copy,...",
                   help=_("what is needed, comma-separated: %(actions)s")
                   % {"actions": ", ".join(access.ACTIONS)})
    p.add_argument("--agency", metavar="NAME",
                   help=_("another agency the request is made for (the custodian approves "
                          "too)"))
    p.add_argument("--valid-days", type=int, metavar="DAYS",
                   help=_("how long the request is valid (default: station.toml [access] "
                          "valid_days, 7)"))
    common(p)
    p.set_defaults(func=cli.clerk_command(_request))
    p = rs.add_parser("approve", help=_("approve a request in your role"))
    p.add_argument("request", metavar="ID")
    p.add_argument("--reason")
    common(p)
    p.set_defaults(func=cli.clerk_command(_approve))
    p = rs.add_parser("refuse", help=_("refuse a request (it ends)"))
    p.add_argument("request", metavar="ID")
    p.add_argument("--reason", required=True)
    common(p)
    p.set_defaults(func=cli.clerk_command(_refuse))
    p = rs.add_parser("revoke", help=_("withdraw a request or its approval (one who "
                                       "approved it, or an archive head)"))
    p.add_argument("request", metavar="ID")
    p.add_argument("--reason", required=True)
    common(p)
    p.set_defaults(func=cli.clerk_command(_revoke))
    p = rs.add_parser("show", help=_("a request, its decisions and what it covers"))
    p.add_argument("request", metavar="ID")
    common(p)
    p.set_defaults(func=cli.clerk_command(_show))
    p = rs.add_parser("list", help=_("list the requests"))
    p.add_argument("--state", choices=("requested", "approved", "refused", "expired",
                                       "revoked"))
    common(p)
    p.set_defaults(func=cli.clerk_command(_list))
    p = rs.add_parser("register", help=_("the register of accesses for a period (a table, "
                                         "JSON, or a PDF to sign)"))
    p.add_argument("--from", dest="since", metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="until", metavar="YYYY-MM-DD")
    p.add_argument("--pdf", metavar="FILE", help=_("write a PDF for the supervisor to sign"))
    common(p)
    p.set_defaults(func=cli.clerk_command(_register))
    from .copies_cli import add_access_actions      # access copy | access export
    add_access_actions(rs)
    return r
