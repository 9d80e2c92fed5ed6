"""Approved disposal (SPEC §9.2): the only code path that ever removes an archived object.

``Archive.dispose(device, segment, request=..., approval=...)`` removes one segment's
media and chunk index from the archive once its retention has run out and two different
users asked for and approved it (the catalogue, host_tools.catalogue.retention, checks the
classes, holds and roles before calling). In order:

1. refuse what may not go: a segment still open, not fully offloaded, one whose index row
   disagrees with the station log, a device being offloaded (its lock is held);
2. append ONE signed `segment_disposed` event to the station log (host_tools.tlog.events),
   durable before anything is removed: it names the request, who asked, who approved and
   when, the reason, the retention class, the expiry, and every object the log ever
   linked at the segment's media and index paths (the complete files and the prefixes
   earlier offloads linked), each by its SHA-256;
3. unlink the view's hard links (devices/ID/m/S.ext, never through a symbolic link, only
   a regular file that is one of the objects named), then the objects named that no
   other path of the log still holds.

The signed records (rec/ logs, head.cbor, the records table) are never touched: verify
still checks every record and the chunk hashes they sign, and reports the segment as
disposed with approval (host_tools.verify_media). A cut between steps 2 and 3 leaves
objects the log says are gone: ``finish_disposals()`` (run by every ``dispose``) removes
them, and verify meanwhile reports the disposal as not finished, never as tampering.
"""
from __future__ import annotations

import os
import stat

from ..i18n import _
from ..records import has_control, index_path
from ..safeio import open_dir_nofollow
from ..tlog import events
from .common import ArchiveError, ArchiveTampered, DeviceLocked, utcnow, valid_device_id

__all__ = ["DisposeMixin", "DisposalRefused", "EMPTY"]

NAME_MAX = 128
TEXT_MAX = 2000
EMPTY = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


class DisposalRefused(ArchiveError):
    """A disposal that may not be done (one line naming the segment and why)."""


def _text(d, key, what, max_len=NAME_MAX, optional=False):
    v = d.get(key) if isinstance(d, dict) else None
    if v is None and optional:
        return None
    if not isinstance(v, str) or not v.strip() or len(v) > max_len or has_control(
            v.replace("\n", " ")):
        raise DisposalRefused(_("The disposal's %(what)s %(key)s is missing, longer than "
                                "%(max)d characters or holds a control character: nothing "
                                "was disposed.") % {"what": what, "key": key, "max": max_len})
    return v


class DisposeMixin:
    """Uses ``root``, ``db``, ``log()``, ``_log_event()``, ``segment()``, ``media_rel()``,
    ``lock_device()``, ``unlock()`` and ``object_path()`` of the Archive."""

    def disposal_state(self):
        """The station log replayed (host_tools.tlog.replay): ``.disposed`` holds every
        disposal, ``.objects`` what the views still hold."""
        from ..tlog.replay import replay
        return replay(self.log())

    def dispose(self, device, segment, *, request, approval):
        """Dispose of the media of ``device``'s ``segment`` (its REC_START seq): returns the
        `segment_disposed` event. ``request``: {"id", "by", "at", "reason", "class",
        "expired_on"}; ``approval``: {"by", "at"}, by another user. The same request
        again (a retry after a cut) finishes the removal and returns the logged event."""
        if not valid_device_id(device):
            raise DisposalRefused(_("%(device)r is not a device id: nothing was disposed.")
                                  % {"device": device})
        if type(segment) is not int or segment < 0:
            raise DisposalRefused(_("%(segment)r is not a segment (the seq of its REC_START): "
                                    "nothing was disposed.") % {"segment": segment})
        rid = _text(request, "id", _("request"))
        by = _text(request, "by", _("request"))
        _text(request, "at", _("request"))
        reason = _text(request, "reason", _("request"), TEXT_MAX)
        klass = _text(request, "class", _("request"))
        expired = _text(request, "expired_on", _("request"), optional=True)
        ok_by = _text(approval, "by", _("approval"))
        ok_at = _text(approval, "at", _("approval"))
        if ok_by == by:
            raise DisposalRefused(_("Disposal request %(id)s of %(device)s segment %(seg)d: "
                                    "%(user)s asked for it and may not approve it; another "
                                    "user must approve.") % {"id": rid, "device": device,
                                                            "seg": segment, "user": by})
        try:
            lock = self.lock_device(device)
        except DeviceLocked:
            raise DeviceLocked(_("Device %(device)s is being offloaded right now (another "
                                 "process holds its lock): approve the disposal of segment "
                                 "%(seg)d again when the offload has ended; nothing was "
                                 "disposed.") % {"device": device, "seg": segment}) from None
        try:
            st = self.disposal_state()
            self.finish_disposals(st, locked=device)    # what a cut left, first
            done = st.disposed.get(device, {}).get(segment)
            if done is not None:
                if done.get("request") != rid:
                    raise DisposalRefused(
                        _("%(device)s segment %(seg)d was disposed already (request "
                          "%(id)s, %(at)s).") % {"device": device, "seg": segment,
                                                 "id": done.get("request"), "at": done["at"]})
                self._remove_disposed(device, done, st)
                return self._entry(done["entry"])
            objects = self._disposable(st, device, segment)
            e = events.segment_disposed(
                utcnow(), device, segment, objects, request=rid, requested_by=by,
                approved_by=ok_by, approved_at=ok_at, reason=reason, class_=klass,
                expired_on=expired)
            self._log_event(e)                 # durable and signed before any unlink
            st.apply(st.size, e)
            st.size += 1
            self._remove_disposed(device, st.disposed[device][segment], st)
            return e
        finally:
            self.unlock(lock)

    def _entry(self, i):
        for _j, _raw, e in self.log().entries(i, i + 1):
            return e
        return None

    def _disposable(self, st, device, segment):
        """The objects a disposal of ``segment`` names, or DisposalRefused saying why it
        may not go."""
        def refuse(why):
            return DisposalRefused(_("%(device)s segment %(seg)d cannot be disposed: %(why)s; "
                                     "nothing was disposed.")
                                   % {"device": device, "seg": segment, "why": why})
        if device not in st.devices:
            raise refuse(_("the station log never registered the device"))
        row = self.segment(device, segment)
        if row is None:
            raise refuse(_("the archive holds no such segment"))
        if row["closed_by"] is None:
            raise refuse(_("it is still open (no SEGMENT or RECOVERY record closes it yet)"))
        if row["state"] != "complete":
            raise refuse(_("it is not fully offloaded yet"))
        media = self.media_rel(row)
        idx = index_path(media)
        view = st.objects.get(device, {})
        if view.get(media) is None:
            raise refuse(_("the station log links no media for it"))
        if row["object"] != view[media].hex():
            raise refuse(_("archive.sqlite and the station log disagree on its media (run "
                           "`sealcam verify %(root)s`)") % {"root": self.root})
        from ..tlog.replay import HISTORY_MAX
        out = []
        for p in (media, idx):
            hist = list(st.history.get(device, {}).get(p, ()))
            cur = view.get(p)
            mine = []
            for h in ([cur] if cur is not None else []) + hist[::-1]:
                if isinstance(h, bytes) and len(h) == 32 and h not in mine:
                    mine.append(h)
            out += [{"path": p, "sha256": h} for h in mine[:HISTORY_MAX]]
        return out

    # -- removal (also finishing a disposal a cut interrupted) -----------------------------
    def finish_disposals(self, st=None, *, locked=None):
        """Remove what a logged disposal names and the archive still holds (a cut between
        the event and the unlinks). Returns [(device, segment)] of the disposals finished;
        a device whose lock another process holds is left to the next run. ``st``: the
        log replayed (default: replay it); ``locked``: a device whose lock the caller
        holds."""
        if self.readonly:
            return []
        st = self.disposal_state() if st is None else st
        live = _live(st)
        done = []
        for d in sorted(st.disposed):
            pending = [info for info in st.disposed[d].values()
                       if self.disposal_leftovers(d, info, st, live)]
            if not pending:
                continue
            try:
                lock = None if d == locked else self.lock_device(d)
            except DeviceLocked:
                continue
            try:
                for info in pending:
                    self._remove_disposed(d, info, st)
                    done.append((d, info["segment"]))
            finally:
                self.unlock(lock)
        return done

    def disposal_leftovers(self, device, info, st, live=None):
        """[relative paths] of what the disposal ``info`` names that is still in the archive:
        view files at its paths, objects no other path of the log holds (``live``: those
        held, as _live(st) gives them)."""
        out = []
        live = _live(st) if live is None else live
        for p in sorted({p for p, _h in info["objects"]}):
            if os.path.lexists(os.path.join(self.root, "devices", device, *p.split("/"))):
                out.append("devices/%s/%s" % (device, p))
        for _p, h in info["objects"]:
            if h in live or h == EMPTY:
                continue
            rel = os.path.relpath(self.object_path(h.hex()), self.root)
            if os.path.lexists(os.path.join(self.root, rel)) and rel not in out:
                out.append(rel)
        return out

    def _remove_disposed(self, device, info, st):
        """Unlink the view files at the disposal's paths (regular files holding one of the
        objects it names; nothing through a symbolic link), then its objects that no live
        path of the log holds, each folder fsynced."""
        named = {h for _p, h in info["objects"]}
        paths = sorted({p for p, _h in info["objects"]})
        inodes = {}
        for h in named:
            try:
                s = os.stat(self.object_path(h.hex()), follow_symlinks=False)
                if stat.S_ISREG(s.st_mode):
                    inodes[(s.st_dev, s.st_ino)] = h
            except OSError:
                pass

        def refuse(i, fd):
            raise ArchiveTampered(_("devices/%(device)s/m in the archive %(root)s is a symbolic "
                                    "link or not a folder: nothing is removed through it (run "
                                    "`sealcam verify %(root)s`).")
                                  % {"device": device, "root": self.root}) from None
        try:
            dfd = open_dir_nofollow(self.root, ["devices", device, "m"], refuse)
        except FileNotFoundError:
            dfd = None
        if dfd is not None:
            try:
                for p in paths:
                    name = p.split("/", 1)[1]
                    try:
                        s = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if not stat.S_ISREG(s.st_mode) or not (
                            (s.st_dev, s.st_ino) in inodes or _hash_at(dfd, name) in named):
                        raise ArchiveTampered(
                            _("devices/%(device)s/%(path)s is not one of the objects the "
                              "disposal of segment %(seg)d names: it is left in place (run "
                              "`sealcam verify %(root)s`).")
                            % {"device": device, "path": p, "seg": info["segment"],
                               "root": self.root})
                    os.unlink(name, dir_fd=dfd)
                os.fsync(dfd)
            finally:
                os.close(dfd)
        live = _live(st)
        for h in sorted(named - live - {EMPTY}):
            hx = h.hex()
            try:
                ofd = open_dir_nofollow(self.root, ["objects", hx[:2]], _no_link)
            except (FileNotFoundError, NotADirectoryError):
                continue
            try:
                try:
                    s = os.stat(hx[2:], dir_fd=ofd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(s.st_mode):
                    continue            # verify names it; never removed as a tree
                os.unlink(hx[2:], dir_fd=ofd)
                os.fsync(ofd)
            finally:
                os.close(ofd)


def _no_link(i, fd):
    raise NotADirectoryError("a symbolic link or not a folder")


def _live(st):
    """Every object a view path of the log still holds (any device), and every object a
    clerk event names (a document)."""
    return {h for objs in st.objects.values() for h in objs.values()
            if isinstance(h, bytes)} | set(getattr(st, "clerk_objects", ()))


def _hash_at(dfd, name):
    """SHA-256 (bytes) of the regular file ``name`` in the folder ``dfd`` (no link
    followed), or None."""
    import hashlib
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0), dir_fd=dfd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        h = hashlib.sha256()
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                return h.digest()
            h.update(b)
    finally:
        os.close(fd)
