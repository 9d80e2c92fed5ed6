"""Exports to duplicate discs and backups, run in a background thread with a progress page
that reloads itself (<meta http-equiv=refresh>, no script).

    disc:   host_tools.disc build_disc(cat, user, ref, out_dir, progress, request=) (DISC
            contract): two identical ISO images and a label PDF under the desk's
            --export-dir (default: ARCHIVE-discs beside the archive; never inside it);
            a disc holds the originals, so the form names the user's approved export
            request of the case or archive number (R15): checked before anything is
            written, and the disc goes on the access register
    backup: host_tools.backup.backup(cat, user, dest, progress) (BACKUP contract): to one
            of the destinations the desk was started with (--backup-dir); a page never
            names a directory of its own

Each job runs with a Catalogue of its own (the desk's one serves the pages); one job of a
kind runs at a time. A disc job's page is its owner's; a backup job's, also of the roles
that may back up.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import secrets
import threading
import time
import traceback

import sqlalchemy as sa

from ..i18n import _
from . import web

__all__ = ["Job", "exports_page", "start_disc", "start_backup", "job_page", "job_label",
           "JOBS_MAX"]

JOBS_MAX = 50
MESSAGES_MAX = 20
REF_RE = re.compile(r"[^\x00-\x1f\x7f/\\]{1,64}")
JOB_RE = re.compile(r"[0-9a-f]{16}")


class Job:
    def __init__(self, kind, owner, what):
        self.id = secrets.token_hex(8)
        self.kind, self.owner, self.what = kind, owner, what
        self.state = "running"          # running | done | failed
        self.started = time.time()
        self.ended = None
        self.fraction = None            # 0..1 when the module says
        self.messages = []
        self.phase = None
        self.result = None
        self.error = None

    def progress(self, *args, **kw):
        """The callback handed to the module: (done, total), a fraction, a message, or
        keywords of them; whatever it says is kept, bounded."""
        for a in args:          # backup's {"phase", "done", "total", "bytes", ...}
            if isinstance(a, dict):
                kw = dict(a, **kw)
        args = [a for a in args if not isinstance(a, dict)]
        nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        texts = [a for a in args if isinstance(a, str)]
        if isinstance(kw.get("bytes"), int) and isinstance(kw.get("bytes_total"), int) \
                and kw["bytes_total"] > 0:
            kw.setdefault("done", kw["bytes"])
            kw["done"], kw["total"] = kw["bytes"], kw["bytes_total"]
        if isinstance(kw.get("phase"), str) and kw["phase"] != self.phase:
            self.phase = kw["phase"]
            texts.append(kw["phase"])
        done, total = kw.get("done"), kw.get("total")
        if done is None and len(nums) >= 2:
            done, total = nums[0], nums[1]
        elif done is None and len(nums) == 1 and 0 <= nums[0] <= 1:
            self.fraction = float(nums[0])
        if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total > 0:
            self.fraction = max(0.0, min(1.0, done / total))
        for k in ("message", "what", "step", "stage"):
            if isinstance(kw.get(k), str):
                texts.append(kw[k])
        for t in texts:
            self.messages.append(t[:300])
        del self.messages[:-MESSAGES_MAX]

    def percent(self):
        return None if self.fraction is None else int(self.fraction * 100)


def _run(desk, job, user, fn, *args, **kw):
    def work():
        cat = None
        try:
            cat = desk.new_catalogue()
            job.result = fn(cat, user, *args, progress=job.progress, **kw)
            job.state = "done"
            job.fraction = 1.0
        except Exception as e:       # noqa: BLE001 - shown on the job's page, never lost
            from ..catalogue.store import CatalogueError
            job.state = "failed"
            job.error = str(e).splitlines()[0][:500] if str(e) else type(e).__name__
            if not isinstance(e, (CatalogueError, OSError, ValueError)):
                traceback.print_exc()
        finally:
            job.ended = time.time()
            if cat is not None:
                cat.close()
    t = threading.Thread(target=work, name="desk-%s-%s" % (job.kind, job.id), daemon=True)
    t.start()


def _add(desk, job):
    if any(j.kind == job.kind and j.state == "running" for j in desk.jobs.values()):
        raise web.DeskError(409, _("a %(kind)s is running already: wait for it to end")
                            % {"kind": _(job.kind)})
    desk.jobs[job.id] = job
    while len(desk.jobs) > JOBS_MAX:
        old = [j for j in desk.jobs.values() if j.state != "running"]
        if not old:
            break
        desk.jobs.pop(min(old, key=lambda j: j.started).id)


def _discs(desk, user):
    """The last discs made, but those of a case ``user`` may not see, or of an archive
    number holding a recording it may not see (visibility.Seen): a disc is whole."""
    from ..catalogue import db
    from .visibility import Seen
    d = db.discs.c
    with desk.cat.engine.connect() as conn:
        seen = Seen(conn, user)
        rows = [dict(r) for r in conn.execute(sa.select(
            d.id, d.ref, d.image_sha256, d.by_user, d.at).order_by(d.id.desc())
            .limit(20)).mappings()]
        refs = {r["ref"] for r in rows}
        known = {r[0] for r in conn.execute(sa.select(db.cases.c.case_no).where(
            db.cases.c.case_no.in_(refs)))} if rows else set()
        items = {}
        if rows:
            rc, ni = db.recordings.c, db.number_items.c
            for num, dev, seg in conn.execute(
                    sa.select(ni.number, rc.device, rc.segment)
                    .join(db.recordings, rc.id == ni.recording_id)
                    .where(ni.number.in_(refs - known))):
                items.setdefault(num, []).append((dev, seg))

        def shown(ref):
            if ref in known:
                return seen.case(ref)
            return all(seen.recording(dev, seg) for dev, seg in items.get(ref, ()))
        return [r for r in rows if shown(r["ref"])]


def _export_requests(desk, user):
    """The user's own approved requests that allow a disc: the "export" action, on a
    case or an archive number (what build_disc's request= accepts), newest first."""
    from ..catalogue import users
    access = web.lazy("catalogue.access")
    if access is None or user.role not in users.PERMISSIONS["disc"]:
        return []
    out = []
    for st in access.requests(desk.cat, "approved", viewer=user):
        if st.get("requester") == user.name and "export" in (st.get("actions") or ()) \
                and st.get("target_kind") in ("case", "number"):
            out.append(st)
    return out


def _backups(desk, user):
    """The last backups, for those who may make one (where the archive's copies went is
    not every clerk's business)."""
    from ..catalogue import db, users
    if user.role not in users.PERMISSIONS["backup"]:
        return []
    b = db.backups.c
    with desk.cat.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(
            b.id, b.destination, b.objects, b.objects_new, b.bytes_new, b.by_user, b.at)
            .order_by(b.id.desc()).limit(20)).mappings()]


async def exports_page(request, status_code=200):
    from ..catalogue import users
    user = web.need_user(request)
    desk = request.app.state.desk
    desk.cat.sync()
    disc_ok = web.build_disc() is not None
    backup_ok = web.backup_fn() is not None
    status = None
    status_fn = web.backup_status()
    if status_fn is not None:
        try:
            status = status_fn(desk.cat)
        except Exception as e:      # noqa: BLE001 - the page still shows the rest
            status = {"error": str(e)[:300]}
    jobs = sorted((j for j in desk.jobs.values() if j.owner == user.name),
                  key=lambda j: -j.started)
    return web.render(request, "exports.html", status_code=status_code, disc_ok=disc_ok,
                      backup_ok=backup_ok, status=status, discs=_discs(desk, user),
                      backups=_backups(desk, user), jobs=jobs, backup_dirs=desk.backup_dirs,
                      may_disc=user.role in users.PERMISSIONS["disc"],
                      may_backup=user.role in users.PERMISSIONS["backup"],
                      export_dir=desk.export_dir,
                      export_requests=_export_requests(desk, user))


async def start_disc(request):
    from .access_pages import RID_RE
    user = web.need_user(request)
    desk = request.app.state.desk
    web.need_permission(user, "disc")
    form = await request.form()
    ref = web.field(form, "ref", max_len=64, label=_("case or archive number"))
    rid = web.field(form, "request", max_len=64, label=_("export request"))
    if ref is not None and not REF_RE.fullmatch(ref):
        raise web.DeskError(400, _("not a case or archive number: %(ref)s") % {"ref": ref})
    if rid is not None and not RID_RE.fullmatch(rid):
        raise web.DeskError(400, _("not a request number: %(rid)s") % {"rid": rid})
    build = web.build_disc()
    access = web.lazy("catalogue.access")
    if build is None or access is None:
        raise web.DeskError(503, _("disc export is not available on this station yet"))
    if rid is None:     # R15: a disc hands out the originals
        raise web.DeskError(400, _("a disc holds the originals: choose your approved export "
                                   "request of %(ref)s (ask for one under Access requests)")
                            % {"ref": ref or _("the case or archive number")})
    desk.cat.sync()
    # checked here too, so a refusal is a page and no job or folder is made: the request
    # is the user's, approved, allows "export" and names this case or number
    st = access.authorize(desk.cat, user, rid, "export")
    if ref is None and st.get("target_kind") in ("case", "number"):
        ref = st.get("target")
    if st.get("target_kind") not in ("case", "number") or st.get("target") != ref:
        raise web.DeskError(400, _("request %(id)s is for %(kind)s %(target)s, not for the "
                                   "disc of %(ref)s: a disc needs an export request of its "
                                   "case or archive number")
                            % {"id": rid, "kind": st.get("target_kind"),
                               "target": st.get("target"), "ref": ref or "-"})
    if not isinstance(ref, str) or not REF_RE.fullmatch(ref):
        raise web.DeskError(400, _("not a case or archive number: %(ref)s") % {"ref": ref})
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", ref)[:48]
    out = os.path.join(desk.export_dir, "disc-%s-%s" % (safe, stamp))
    job = Job("disc", user.name, ref)
    _add(desk, job)
    os.makedirs(out, exist_ok=True)
    _run(desk, job, user, build, ref, out, request=rid)
    return web.redirect(request.url_for("job", jid=job.id))


async def start_backup(request):
    user = web.need_user(request)
    desk = request.app.state.desk
    web.need_permission(user, "backup")
    form = await request.form()
    n = web.number(form, "dest", lo=0, hi=max(0, len(desk.backup_dirs) - 1))
    if not desk.backup_dirs or n is None:
        raise web.DeskError(400, _("this desk was started without a backup destination "
                                   "(sealcam desk --backup-dir DIR)"))
    backup = web.backup_fn()
    if backup is None:
        raise web.DeskError(503, _("backup is not available on this station yet"))
    dest = desk.backup_dirs[n]
    job = Job("backup", user.name, dest)
    _add(desk, job)
    _run(desk, job, user, backup, dest)
    return web.redirect(request.url_for("job", jid=job.id))


def _result_lines(res):
    """What a finished job made, as (key, text) pairs for the page."""
    if not isinstance(res, dict):
        return []
    out = []
    for k, v in res.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v)
        elif isinstance(v, dict):
            v = ", ".join("%s: %s" % (a, b) for a, b in v.items())
        out.append((str(k), str(v)[:500]))
    return out[:30]


def _job(request):
    from ..catalogue import users
    user = web.need_user(request)
    desk = request.app.state.desk
    jid = request.path_params["jid"]
    job = desk.jobs.get(jid) if JOB_RE.fullmatch(jid) else None
    if job is None:
        raise web.DeskError(404, _("no such job (jobs are kept until the desk stops)"))
    # a disc job (its case, its label) is its owner's alone, under the owner's request; a
    # backup job is also for the others who may back up
    if job.owner != user.name and (job.kind == "disc" or user.role not in
                                   users.PERMISSIONS.get(job.kind, ())):
        raise web.DeskError(404, _("no such job (jobs are kept until the desk stops)"))
    return job


async def job_label(request):
    """The disc's label PDF, to print."""
    from starlette.responses import FileResponse
    job = _job(request)
    path = (job.result or {}).get("label_pdf") if job.kind == "disc" else None
    if job.state != "done" or not isinstance(path, str) or not os.path.isfile(path):
        raise web.DeskError(404, _("this job made no label"))
    return FileResponse(path, media_type="application/pdf",
                        filename=os.path.basename(path))


async def job_page(request):
    job = _job(request)
    label = job.kind == "disc" and job.state == "done" and isinstance(
        (job.result or {}).get("label_pdf"), str)
    return web.render(request, "job.html", label=label, job=job, result=_result_lines(job.result),
                      refresh=job.state == "running",
                      elapsed=int((job.ended or time.time()) - job.started))
