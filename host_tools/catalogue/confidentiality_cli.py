"""`sealcam classify`: confidentiality levels and the at-rest key (R16; SPEC §14.8).

    sealcam classify (--recording DEVICE/SEGMENT | --case NO) --level LEVEL --reason TEXT
    sealcam classify show (--recording DEVICE/SEGMENT | --case NO)   its level and history
    sealcam classify key-new --out PATH [--archive DIR]               a new at-rest key

Each takes --archive DIR, --db URL, --user NAME and --json as the other clerk verbs do
(host_tools/cli_clerk.py); exit codes are theirs: 0 done, 3 refused or a usage error (one
line says why), 5 sign-in failed or the role may not do this.
"""
from __future__ import annotations

import os

from ..i18n import _
from ..records import printable

__all__ = ["add_parsers", "parse_recording"]


def _cli():
    from .. import cli_clerk
    return cli_clerk


def parse_recording(text):
    """(device, segment) of DEVICE/SEGMENT (or DEVICE:SEGMENT): recref's one reading."""
    from . import recref
    return recref.parse(text)


def _target(args):
    from .store import CatalogueError
    if bool(args.recording) == bool(args.case):
        raise CatalogueError(_("name one recording (--recording DEVICE/SEGMENT) or one case "
                               "(--case NO)"))
    if args.recording:
        dev, seg = parse_recording(args.recording)
        return "recording", {"device": dev, "segment": seg}, "%s:%d" % (dev, seg)
    return "case", {"case_no": args.case}, "case %s" % args.case


def _classify(args):
    from . import confidentiality
    from .store import CatalogueError
    cli = _cli()
    if args.level is None or args.reason is None:
        raise CatalogueError(_("classify needs --level LEVEL and --reason TEXT"))
    kind, where, shown = _target(args)
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        i = confidentiality.classify(cat, who, kind, args.level, args.reason, **where)
    cli._emit(args, dict(where, kind=kind, level=args.level, by=who.name, log_entry=i),
              _("%(what)s classified %(level)s by %(by)s (station log entry %(i)d)")
              % {"what": printable(shown), "level": args.level, "by": who.name, "i": i})
    return 0


def _show(args):
    from . import confidentiality
    cli = _cli()
    kind, where, shown = _target(args)
    with cli.open_catalogue(args, readonly=True) as cat:
        who = cli.signed_in(cat, args) if args.user else None
        rows = confidentiality.history(cat, who, kind, **where)
        from . import store
        with cat.engine.connect() as conn:
            if kind == "recording":
                rid = store.recording_id(conn, where["device"], where["segment"])
                level = confidentiality.level_of_recording(conn, rid)
            else:
                level = confidentiality.level_of_case(conn, where["case_no"])
    lines = [_("%(what)s: %(level)s") % {"what": printable(shown), "level": level}]
    lines += ["  #%d %s %s %s %s%s" % (r["event"], r["level"], r["by_user"], r["at"],
                                      printable(r["reason"], backslash=False)[:80],
                                      "" if r["current"] else " " + _("(superseded)"))
              for r in rows]
    cli._emit(args, dict(where, kind=kind, level=level, history=rows), "\n".join(lines))
    return 0


def _key_new(args):
    from ..archive import atrest
    from .store import CatalogueError
    cli = _cli()
    out = os.path.abspath(args.out)
    if args.archive and atrest.inside(out, args.archive):
        raise CatalogueError(_("%(path)s is inside the archive %(archive)s: the at-rest key "
                               "is kept apart from the data (another disk, a token)")
                             % {"path": out, "archive": args.archive})
    if os.path.lexists(out):
        raise CatalogueError(_("%(path)s exists already: a key is never overwritten (the "
                               "objects sealed with it would be lost)") % {"path": out})
    try:
        key = atrest.new_key_file(out)
    except OSError as e:
        raise CatalogueError(_("%(path)s cannot be written (%(err)s)")
                             % {"path": out, "err": e.strerror or e}) from None
    cli._emit(args, {"key_file": out, "key_id": key.key_id.hex()},
              _("new at-rest key %(id)s in %(path)s (mode 0600); put it in the archive's "
                "station.toml:\n[confidentiality]\nkey_file = \"%(path)s\"\nkeep a copy "
                "apart from every backup of the archive: without it the encrypted objects "
                "cannot be read") % {"id": key.key_id.hex(), "path": out})
    return 0


def _run(args):
    if args.action == "key-new":
        return _key_new(args)
    if args.action == "show":
        return _show(args)
    return _classify(args)


def add_parsers(sub, formatter):
    """Add `sealcam classify` to the sub-parsers ``sub`` (cli_clerk.add_parsers)."""
    from .confidentiality_levels import LEVELS
    cli = _cli()
    p = sub.add_parser(
        "classify", help=_("confidentiality levels of recordings and cases; the at-rest key"),
        description=_("Restricted and confidential records are hidden from users whose "
                      "clearance is lower (search, case show); only an archive head or the "
                      "bureau chief classifies, never above their own clearance; lowering "
                      "is the bureau chief's (R16; SPEC §14.8). `key-new` makes the "
                      "station's at-rest key."),
        epilog=_(cli.EPILOG), formatter_class=formatter)
    p.add_argument("action", nargs="?", choices=("show", "key-new"),
                   help=_("show: a record's level and history; key-new: a new at-rest key "
                          "(none: classify)"))
    p.add_argument("--recording", metavar="DEVICE/SEGMENT")
    p.add_argument("--case", metavar="NO")
    p.add_argument("--level", choices=LEVELS)
    p.add_argument("--reason")
    p.add_argument("--out", metavar="PATH", help=_("key-new: the key file to write"))
    p.add_argument("--archive", metavar="DIR", help=_("the station archive"))
    p.add_argument("--db", metavar="URL", default=None,
                   help=_("the catalogue database (default: [catalogue] url of station.toml, "
                          "else ARCHIVE/catalogue.sqlite)"))
    p.add_argument("--user", metavar="NAME", default=os.environ.get("SEALCAM_USER"),
                   help=_("who you are (or SEALCAM_USER)"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    p.set_defaults(func=cli.clerk_command(_checked))
    return p


def _checked(args):
    from .store import CatalogueError
    if args.action == "key-new":
        if not args.out:
            raise CatalogueError(_("key-new needs --out PATH"))
    elif not args.archive:
        raise CatalogueError(_("--archive DIR is needed"))
    return _run(args)
