"""A real PostgreSQL server for the tests, started and stopped by them (no mock).

    with PgServer() as pg:              # initdb in a temporary folder, pg_ctl start
        url = pg.new_database()         # postgresql+psycopg://... of a fresh database

The server listens on a Unix socket in its own folder only (no TCP port). PostgreSQL
refuses to run as root, and CI runs as root: then the cluster is made and run as the
unprivileged account ``nobody`` (runuser), its folder handed to that account.
`available()` says why PostgreSQL cannot start here (not installed: `make setup` installs
Debian's postgresql when apt-get can), so that a test names the reason.
"""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile

__all__ = ["PgServer", "bindir", "available"]

_counter = itertools.count()


def bindir():
    """The folder holding initdb and pg_ctl, or None."""
    exe = shutil.which("initdb")
    if exe:
        return os.path.dirname(os.path.realpath(exe))
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def available():
    """None if a server can be started here, else why not."""
    if bindir() is None:
        return "PostgreSQL is not installed (initdb not found; `make setup` installs it)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


class PgServer:
    def __init__(self):
        self.dir = None
        self.proc_user = None

    def _run(self, argv, **kw):
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "nobody", "--"] + argv
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)

    def start(self):
        why = available()
        if why:
            raise RuntimeError(why)
        b = bindir()
        self.dir = tempfile.mkdtemp(prefix="sealcam-pg-")
        os.chmod(self.dir, 0o755)
        data = os.path.join(self.dir, "data")
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
        r = self._run([os.path.join(b, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
                       "-E", "UTF8", "--locale=C", "--no-sync"])
        if r.returncode:
            raise RuntimeError("initdb failed: %s" % (r.stderr or r.stdout)[-800:])
        r = self._run([os.path.join(b, "pg_ctl"), "-D", data, "-w", "-t", "60", "-l",
                       os.path.join(self.dir, "log"), "-o",
                       "-k %s -c listen_addresses='' -c fsync=off -c full_page_writes=off"
                       % self.dir, "start"])
        if r.returncode:
            log = ""
            try:
                log = open(os.path.join(self.dir, "log")).read()[-800:]
            except OSError:
                pass
            raise RuntimeError("pg_ctl start failed: %s %s" % (r.stderr[-400:], log))
        return self

    def url(self, database="postgres"):
        return "postgresql+psycopg://postgres@/%s?host=%s" % (database, self.dir)

    def new_database(self):
        """A fresh, empty database; its URL."""
        import sqlalchemy as sa
        name = "sealcam_t%d_%d" % (os.getpid(), next(_counter))
        eng = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(sa.text('CREATE DATABASE "%s"' % name))
        eng.dispose()
        return self.url(name)

    def stop(self):
        if self.dir is None:
            return
        b = bindir()
        self._run([os.path.join(b, "pg_ctl"), "-D", os.path.join(self.dir, "data"), "-m",
                   "immediate", "-w", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
