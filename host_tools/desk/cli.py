"""`sealcam desk`: the clerk's desk, a local web application on the station.

    sealcam desk --archive DIR [--port 8470] [--host 127.0.0.1] [--db URL]
                 [--export-dir DIR] [--backup-dir DIR]... [--idle-minutes 30] [--lang zh_CN]
                 [--check]

Serves on 127.0.0.1 unless told otherwise; its first page is the sign-in (a user of the
archive and its password). Ctrl-C stops it. --check does all a start does (the port, the
archive and its catalogue, the app) and says in one line what it would serve, without
serving. Exit codes: 0 stopped (or checked), 3 usage error (not an archive, a catalogue
that cannot be used, a port in use).
"""
from __future__ import annotations

import os
import sys

from .. import i18n
from ..i18n import _

__all__ = ["add_parsers", "run", "DEFAULT_PORT"]

DEFAULT_PORT = 8470
LOCAL = ("127.0.0.1", "localhost", "::1")


def add_parsers(sub, formatter):
    p = sub.add_parser("desk", help=_("the clerk's desk: a local web application (search, "
                                      "cases, report, access, viewing copies, register, "
                                      "discs, backups)"),
                       description=_("Serve the clerk's desk for the archive on this station "
                                     "(127.0.0.1 unless told otherwise); open it in a browser "
                                     "and sign in as a user of the archive."),
                       epilog=_("exit codes: 0 stopped, 3 usage error, not an archive, a "
                                "catalogue that cannot be used or a port in use"),
                       formatter_class=formatter)
    p.add_argument("--archive", required=True, metavar="DIR", help=_("the station archive"))
    p.add_argument("--db", metavar="URL", default=None,
                   help=_("the catalogue database (sqlite:///FILE or postgresql://...; "
                          "default: [catalogue] url of station.toml, else "
                          "ARCHIVE/catalogue.sqlite)"))
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                   help=_("the TCP port (default %(default)s)"))
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                   help=_("the address to serve on (default 127.0.0.1: this computer only)"))
    p.add_argument("--server-name", action="append", default=[], metavar="NAME",
                   help=_("a host name browsers reach the desk by, besides the address "
                          "(repeatable; needed with --host 0.0.0.0)"))
    p.add_argument("--export-dir", metavar="DIR", default=None,
                   help=_("where disc images are written, outside the archive (default: "
                          "ARCHIVE-discs beside it)"))
    p.add_argument("--backup-dir", action="append", default=[], metavar="DIR",
                   help=_("a backup destination the desk offers (repeatable)"))
    p.add_argument("--idle-minutes", type=int, default=30, metavar="N",
                   help=_("sign a session out after N minutes without use (default 30)"))
    p.add_argument("--check", action="store_true",
                   help=_("check that the desk can start (port, archive, catalogue), say "
                          "what it would serve and exit without serving"))
    p.set_defaults(func=run)
    return p


def sign_in_users(cat):
    """How many users may sign in at the desk: active, with a password."""
    import sqlalchemy as sa
    from ..catalogue import db
    cat.sync()
    u = db.users.c
    with cat.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(db.users).where(
            u.active.is_(True), u.pw_hash.is_not(None), u.pw_hash != "")).scalar() or 0


def run(args) -> int:
    from ..cli_clerk import clerk_command
    return clerk_command(_serve)(args)


def _serve(args):
    import socket
    import uvicorn
    from .app import make_app
    if not 1 <= args.port <= 65535:
        print(_("sealcam desk: --port: a port from 1 to 65535"), file=sys.stderr)
        return 3
    if not 1 <= args.idle_minutes <= 24 * 60:
        print(_("sealcam desk: --idle-minutes: from 1 to 1440"), file=sys.stderr)
        return 3
    if not os.path.isdir(args.archive):
        print(_("sealcam desk: %(dir)s is not a directory (give the station archive with "
                "--archive DIR)") % {"dir": args.archive}, file=sys.stderr)
        return 3
    if args.host in ("0.0.0.0", "::", "[::]") and not args.server_name:
        print(_("sealcam desk: --host %(host)s needs --server-name NAME (the name or address "
                "browsers reach the desk by; requests naming another host are refused)")
              % {"host": args.host}, file=sys.stderr)
        return 3
    if args.export_dir:
        arch, out = os.path.realpath(args.archive), os.path.realpath(args.export_dir)
        if out == arch or out.startswith(arch.rstrip(os.sep) + os.sep):
            print(_("sealcam desk: --export-dir %(dir)s is inside the archive: discs go "
                    "outside it") % {"dir": args.export_dir}, file=sys.stderr)
            return 3
    hosts = list(dict.fromkeys([args.host, *LOCAL, "[::1]", *args.server_name]))
    if args.host not in LOCAL:
        print(_("sealcam desk: serving on %(host)s: other computers of the network can reach "
                "the sign-in page") % {"host": args.host}, file=sys.stderr)
    try:        # the port is checked before the catalogue is opened: one clear line
        with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((args.host, args.port))
    except OSError as e:
        print(_("sealcam desk: cannot serve on %(host)s port %(port)d: %(error)s")
              % {"host": args.host, "port": args.port, "error": e.strerror or e},
              file=sys.stderr)
        return 3
    app = make_app(args.archive, args.db, hosts=hosts, idle_s=args.idle_minutes * 60,
                   export_dir=args.export_dir, backup_dirs=args.backup_dir,
                   lang=i18n.lang_in_argv(sys.argv[1:]))     # `sealcam --lang X desk`
    shown = "[%s]" % args.host if ":" in args.host else args.host
    if getattr(args, "check", False):
        desk = app.state.desk
        try:
            n = sign_in_users(desk.cat)
        finally:
            desk.close()
        print(i18n.ngettext("the desk would serve %(archive)s at http://%(host)s:%(port)d/ "
                            "(%(n)d user may sign in)",
                            "the desk would serve %(archive)s at http://%(host)s:%(port)d/ "
                            "(%(n)d users may sign in)", n)
              % {"archive": os.path.abspath(args.archive), "host": shown, "port": args.port,
                 "n": n}, flush=True)
        return 0
    print(_("sealcam desk: http://%(host)s:%(port)d/ (archive %(archive)s); Ctrl-C stops it")
          % {"host": shown, "port": args.port, "archive": os.path.abspath(args.archive)},
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                server_header=False, proxy_headers=False, limit_concurrency=64,
                timeout_graceful_shutdown=5)
    return 0
