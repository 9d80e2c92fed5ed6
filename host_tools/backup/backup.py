"""`sealcam backup --archive A --to DIR` (R14; SPEC §14.12): a monthly off-site copy of the
archive, incremental, each object checked on arrival, recorded as a `backup_made` event.

    res = backup(cat, user, "/mnt/offsite/sealcam")   # {"snapshot", "log_size", "root",
                                                      #  "objects", "objects_new", ...}

DIR holds:

    DIR/sealcam-backup.json      which archive this folder backs up (archive_id, origin)
    DIR/README.txt               what this is, how to restore it, how the keys travel
    DIR/objects/ab/cdef…         the archive's objects, byte for byte as they are at rest
                                 (encrypted ones stay encrypted), read-only; shared by
                                 every snapshot: only objects not yet here travel
    DIR/snapshots/STAMP/         one per backup (the newest KEEP_SNAPSHOTS are kept; an
                                 object none of them lists leaves DIR/objects), complete
                                 before it is named in LATEST:
        archive.sqlite           the archive's index at the checkpoint (SQLite backup API)
        station.toml, station.pub, quarantine/…   as in the archive
        objects.txt              the objects the archive held ("SHA-256 SIZE" a line: the
                                 size a restore copies at most)
        views.json               each device view file: {device: {path: object}}
        manifest.json            the snapshot: archive, checkpoint, counts, every file's
                                 SHA-256 but the log's
        log/entries, log/checkpoint    the station log up to and with the backup_made
                                       event, which names the manifest's SHA-256, under
                                       a checkpoint the station signs over exactly them
    The catalogue is not copied: a restore rebuilds it from the signed log.
    DIR/LATEST                   the name of the newest complete snapshot

Never in DIR: station.key (the station's private key) nor the at-rest key: they stay at
the station or travel apart, under the custodian's control (README.txt says so).

An object is copied to DIR/incoming/ first, read back through the archive's own reading
(Archive.open_object: an object encrypted at rest is decrypted and checked) and hashed; only
an object that hashes to its name moves into DIR/objects/. An interrupted backup leaves DIR
as it was for its last complete snapshot; run again, it copies only what is still missing.
Every path in DIR is checked without following links: a symbolic link there is refused.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import re
import sqlite3
from urllib.parse import quote

from ..i18n import _
from . import safefs
from .progress import Progress
from .readme import write_readme
from .safefs import BackupError, SafeDir, open_nofollow

__all__ = ["backup", "BackupError", "FORMAT", "MARK", "LATEST", "SNAPSHOT_RE",
           "KEEP_SNAPSHOTS", "Progress", "plain_check"]

FORMAT = "sealcam-backup-1"
MARK = "sealcam-backup.json"
LATEST = "LATEST"
SNAPSHOT_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9]{1,18}")
KEEP_SNAPSHOTS = 3              # older snapshots are removed (objects stay: shared)
QUARANTINE_FILE_MAX = 256 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")


def plain_check(reader, name):
    """(True, None) when object ``name`` read through ``reader`` (an Archive whose
    ``objects`` folder holds it: open_object decrypts what is encrypted at rest) hashes to
    its name; (False, why) when it does not; (None, why) when it cannot be read without
    the at-rest key (its bytes are then compared as copied, not its content)."""
    try:
        with reader.open_object(name) as f:
            got = safefs.hash_stream(f)
    except OSError as e:
        from ..archive import atrest
        return (None if isinstance(e, atrest.KeyUnavailable) else False), str(e)
    if got != name:
        return False, _("its content hashes to %(got)s, not to its name") % {"got": got}
    return True, None


def _stamp():
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _mark(d, archive):
    """Check (or write) DIR/sealcam-backup.json: DIR backs up this archive only."""
    from ..safeio import StoreFileError, read_capped
    want = {"format": FORMAT, "archive_id": archive.archive_id}
    try:
        raw = read_capped(d.root, MARK, 4096, "backup mark")
    except FileNotFoundError:
        junk = [n for n, _k in d.listdir() if n not in ("README.txt",)]
        if junk:
            raise BackupError(_("%(dir)s is not empty and is not a sealcam backup (no "
                                "%(mark)s): give an empty folder or a backup of this "
                                "archive") % {"dir": d.root, "mark": MARK}) from None
        d.write(MARK, (json.dumps(want, sort_keys=True) + "\n").encode())
        return
    except (StoreFileError, OSError) as e:
        raise BackupError("%s/%s: %s" % (d.root, MARK, e)) from None
    try:
        have = json.loads(raw)
        ok = isinstance(have, dict) and have.get("format") == FORMAT
    except (ValueError, RecursionError, MemoryError):
        ok = False
    if not ok:
        raise BackupError(_("%(dir)s/%(mark)s is not a sealcam backup mark: give another "
                            "folder") % {"dir": d.root, "mark": MARK})
    if have.get("archive_id") != archive.archive_id:
        raise BackupError(_("%(dir)s is the backup of another archive (%(other)s, not "
                            "%(this)s): give each archive its own backup folder")
                          % {"dir": d.root, "other": str(have.get("archive_id"))[:40],
                             "this": archive.archive_id})


def _copy_objects(a, d, prog, recheck=False, repaired=None):
    """Copy the archive's objects that DIR lacks (or holds with another size, or, with
    ``recheck``, holds damaged: their names go into the set ``repaired``), each checked on
    arrival. Returns (names, new, bytes_new, unchecked, bad)."""
    from ..tlog.objects import list_objects
    if d.kind("incoming") == "dir":             # what an interrupted run left there
        import shutil
        shutil.rmtree(d.path("incoming"))
    items = [(p, n) for p, n in list_objects(a.objects) if _HEX64.fullmatch(n)]
    todo, gone = [], set()
    for p, n in items:
        try:
            size = os.lstat(p).st_size
        except OSError:
            gone.add(n)                         # disposed of since it was listed
            continue
        have = d.size("objects/%s/%s" % (n[:2], n[2:]))
        if have != size:
            todo.append((p, n, size))
        elif recheck:
            held = copy.copy(a)
            held.objects = d.path("objects")
            if plain_check(held, n)[0] is False:    # rotted on the backup disk: again
                repaired.add(n)
                todo.append((p, n, size))
    prog.total(len(todo), sum(s for _p, _n, s in todo))
    reader = copy.copy(a)                       # the archive's own reading of objects,
    reader.objects = d.path("incoming")         # pointed at what has just arrived
    new = nbytes = 0
    unchecked, bad = [], []
    for p, n, _size in todo:
        rel_in = "incoming/%s/%s" % (n[:2], n[2:])
        try:
            src, _sz = open_nofollow(p)
        except FileNotFoundError:
            gone.add(n)
            continue
        except (OSError, BackupError) as e:
            bad.append(_("object %(path)s cannot be read (%(err)s): run `sealcam verify` on "
                         "the archive") % {"path": p, "err": e})
            continue
        with src:
            tmp, copied, raw = d.copy_from(src, rel_in, mode=0o444, progress=prog.bytes)
        d.install(tmp, rel_in, 0o444)
        ok, why = plain_check(reader, n)
        if ok is None:                          # encrypted, no key here: bytes as copied
            with open_nofollow(d.path(rel_in))[0] as f:
                ok = safefs.hash_stream(f) == raw
            unchecked.append(n)
        if not ok:
            os.unlink(d.path(rel_in))
            bad.append(_("object %(path)s: %(why)s; it was not backed up: run `sealcam "
                         "verify` on the archive") % {"path": p, "why": why or _(
                             "the copy differs from what was read")})
            continue
        d.mkdirs("objects/" + n[:2])
        os.replace(d.path(rel_in), d.path("objects/%s/%s" % (n[:2], n[2:])))
        new += 1
        nbytes += copied
        prog.item()
    for sub, kind in d.listdir("objects"):
        if kind == "dir":
            d.sync("objects/" + sub)
    return [n for _p, n in items if n not in gone], new, nbytes, unchecked, bad


def _views(lg, size, names):
    """{device: {path: object}} of the device views as the station log's first ``size``
    entries state them (what `sealcam verify` expects to find), and the view files whose
    object the archive does not hold (named in a note)."""
    from ..tlog.replay import replay
    st = replay(lg, size)
    views, odd = {}, []
    for did, paths in sorted(st.objects.items()):
        for rel, sha in sorted(paths.items()):
            n = sha.hex() if isinstance(sha, bytes) and len(sha) == 32 else None
            if n is None or n not in names:
                odd.append("devices/%s/%s" % (did, rel))
            else:
                views.setdefault(did, {})[rel] = n
    return views, odd


def _sqlite_copy(src_path, d, rel):
    """A consistent copy of the SQLite database ``src_path`` (the backup API, read-only
    source) at ``rel`` of ``d``, as one file (journal mode DELETE)."""
    if d.kind(rel) is not None:
        raise BackupError(_("%(path)s is in the way: remove it") % {"path": d.path(rel)})
    src = sqlite3.connect("file:%s?mode=ro" % quote(src_path), uri=True, timeout=30.0)
    dst = sqlite3.connect(d.path(rel))
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    with open(d.path(rel), "rb+") as f:
        os.fsync(f.fileno())


def _snapshot(cat, d, snap, prog):
    """Write the station's state into ``snap`` (a fresh folder of DIR): the index at the
    log's signed checkpoint, the settings, the quarantine. The catalogue is not copied: a
    restore rebuilds it from the signed log. Returns (log size, root) of that checkpoint."""
    from ..safeio import StoreFileError, open_regular, read_capped
    a = cat.archive
    lg = a.log()
    d.mkdirs(snap)
    with lg._locked():                          # the index as of this checkpoint
        acc = lg.account(lg.pub)
        if acc.problem:
            raise BackupError(_("the station log of %(arch)s does not verify (%(why)s): "
                                "run `sealcam verify %(arch)s` first; nothing was "
                                "recorded") % {"arch": a.root, "why": acc.problem})
        cp = acc.pending or acc.checkpoint
        if cp is None:
            raise BackupError(_("the station log of %(arch)s has no signed checkpoint "
                                "yet: nothing to back up") % {"arch": a.root})
        size, root, _note = cp
        _sqlite_copy(a.db_path, d, snap + "/archive.sqlite")
    for name in ("station.toml", "station.pub"):
        try:
            d.write(snap + "/" + name, read_capped(a.root, name, 1 << 20, name),
                    sync_dir=False)
        except FileNotFoundError:
            pass
        except (StoreFileError, OSError) as e:
            raise BackupError("%s/%s: %s" % (a.root, name, e)) from None
    qdir = os.path.join(a.root, "quarantine")
    if os.path.isdir(qdir) and not os.path.islink(qdir):
        for dirpath, dirs, files in os.walk(qdir):
            dirs[:] = sorted(x for x in dirs if not os.path.islink(os.path.join(dirpath, x)))
            for fn in sorted(files):
                rel = os.path.relpath(os.path.join(dirpath, fn), a.root).replace(os.sep, "/")
                try:
                    src, sz = open_regular(a.root, rel)
                except (StoreFileError, OSError):
                    continue                     # not a regular file: verify names it
                with src:
                    if sz > QUARANTINE_FILE_MAX:
                        continue
                    tmp, _n, _h = d.copy_from(src, snap + "/" + rel)
                d.install(tmp, snap + "/" + rel)
    return size, root


def _copy_log(a, d, snap, upto, prog):
    """The station log's first ``upto`` entries (up to and with the backup_made event) and
    a checkpoint the station signs over exactly them into ``snap/log``."""
    from ..tlog import note
    from ..tlog.log import LogError
    lg = a.log()
    with lg._locked():
        acc = lg.account(lg.pub)
        cp = acc.pending or acc.checkpoint
        if acc.problem or cp is None or cp[0] < upto:
            raise BackupError(_("the station log of %(arch)s does not verify (%(why)s): run "
                                "`sealcam verify %(arch)s`") % {
                                    "arch": a.root, "why": acc.problem or _("no checkpoint")})
        if cp[0] == upto:
            signed = cp[2]
        elif lg.signer is not None:         # others appended since: the station's own prefix
            signed = note.sign_note(note.checkpoint_text(lg.origin, upto, lg.root(upto)),
                                    lg.origin, lg.signer)
        else:
            raise BackupError(_("the station log of %(arch)s grew during the backup and "
                                "station.key is not at hand: run the backup again") % {
                                    "arch": a.root})
        end = lg.offsets[upto] if upto < lg.size else lg.end
        try:
            f, _sz = lg._open(lg.entries_path)
        except (FileNotFoundError, LogError) as e:
            raise BackupError("%s: %s" % (lg.entries_path, e)) from None
        with f:
            tmp, n, _h = d.copy_from(f, snap + "/log/entries", limit=end,
                                     progress=prog.bytes)
        if n != end:
            os.unlink(tmp)
            raise BackupError(_("%(path)s is shorter than its signed checkpoint says: "
                                "run `sealcam verify`") % {"path": lg.entries_path})
        d.install(tmp, snap + "/log/entries")
        d.write(snap + "/log/checkpoint", signed, sync_dir=False)


def _objects_txt(d, names):
    """objects.txt: "NAME SIZE" a line, the size of the object as DIR holds it (a restore
    copies no more; SPEC §14.12)."""
    return "".join("%s %d\n" % (n, d.size("objects/%s/%s" % (n[:2], n[2:])))
                   for n in sorted(names)).encode()


def _finish_snapshot(d, snap, names, views):
    """objects.txt and views.json into ``snap``; {rel: {"sha256", "size"}} of its files."""
    d.write(snap + "/objects.txt", _objects_txt(d, names), sync_dir=False)
    d.write(snap + "/views.json", json.dumps(views, sort_keys=True).encode(), sync_dir=False)
    files = {}
    for dirpath, dirs, fnames in os.walk(d.path(snap)):
        dirs.sort()
        for fn in sorted(fnames):
            p = os.path.join(dirpath, fn)
            rel = os.path.relpath(p, d.path(snap)).replace(os.sep, "/")
            with open_nofollow(p)[0] as f:
                files[rel] = {"sha256": safefs.hash_stream(f), "size": os.lstat(p).st_size}
    return files



def _prune(d, keep):
    """Remove the oldest complete snapshots beyond ``keep``, leftovers of interrupted runs,
    and the objects no kept snapshot lists (a recording disposed of at the station, R12,
    leaves the backup once the snapshots that held it have gone). Returns how many objects
    were removed."""
    import shutil
    snaps = [n for n, k in d.listdir("snapshots") if k == "dir" and SNAPSHOT_RE.fullmatch(n)]
    for n in sorted(snaps)[:-keep]:
        shutil.rmtree(d.path("snapshots/" + n))
    for n, k in d.listdir("snapshots"):
        if n.startswith(".tmp-") and k == "dir":
            shutil.rmtree(d.path("snapshots/" + n))
    listed = set()
    for n in sorted(snaps)[-keep:]:
        try:
            with open_nofollow(d.path("snapshots/%s/objects.txt" % n))[0] as f:
                while True:
                    line = f.readline(100)      # a name and its newline: never more
                    if not line:
                        break
                    if not line.endswith(b"\n"):
                        return 0                # not what a backup writes: nothing goes
                    # "NAME SIZE" (or "NAME" alone: a backup made before sizes)
                    listed.add(line.split(b" ")[0].strip().decode("ascii", "replace"))
        except (OSError, BackupError):
            return 0                    # a snapshot that cannot be read: nothing goes
    gone = 0
    for sub, kind in d.listdir("objects"):
        if kind != "dir" or len(sub) != 2:
            continue
        for name, k in d.listdir("objects/" + sub):
            if k == "file" and _HEX64.fullmatch(sub + name) and sub + name not in listed:
                os.unlink(d.path("objects/%s/%s" % (sub, name)))
                gone += 1
    return gone


def backup(cat, user, dest, progress=None, recheck=False) -> dict:
    """Back the archive of ``cat`` up into folder ``dest`` for ``user`` (permission
    backup); returns {"destination", "snapshot", "log_size", "root", "objects",
    "objects_new", "bytes_new", "unchecked", "repaired", "notes", "log_entry"}.
    ``recheck``: also read back every object DIR holds already, copying a damaged one
    again. BackupError (one line) when it cannot; nothing is recorded then, and DIR stays
    usable."""
    from ..catalogue import users
    users.require(user, "backup")
    dest = os.path.abspath(os.fspath(dest))
    if any(ord(c) < 32 or ord(c) == 127 for c in dest) or len(dest) > 1000:
        raise BackupError(_("the backup folder's path holds a control character or is too "
                            "long: give another"))
    a = cat.archive
    for x, y in ((dest, a.root), (a.root, dest)):
        if os.path.commonpath([os.path.realpath(x), os.path.realpath(y)]) == \
                os.path.realpath(y):
            raise BackupError(_("the backup folder %(dest)s and the archive %(arch)s overlap: "
                                "back up to another disk") % {"dest": dest, "arch": a.root})
    d = SafeDir(dest, create=True)
    _mark(d, a)
    with _dir_lock(d):
        return _backup(cat, user, d, progress, recheck)


def _dir_lock(d):
    """One backup into a folder at a time: flock on DIR/.lock (BackupError if held)."""
    import contextlib
    import fcntl

    @contextlib.contextmanager
    def held():
        if d.kind(".lock") not in (None, "file"):
            raise BackupError(_("%(path)s is not a regular file: remove it")
                              % {"path": d.path(".lock")})
        fd = os.open(d.path(".lock"), os.O_RDWR | os.O_CREAT | safefs._NOFOLLOW, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BackupError(_("another backup into %(dir)s is running: wait for it")
                                  % {"dir": d.root}) from None
            yield
        finally:
            os.close(fd)
    return held()


def _backup(cat, user, d, progress, recheck):
    from ..catalogue import backups
    a = cat.archive
    write_readme(d)
    prog = Progress(progress, _("backup"))
    try:
        prog.phase("objects")
        repaired = set()
        names, new, nbytes, unchecked, bad = _copy_objects(a, d, prog, recheck, repaired)
        if bad:
            raise BackupError(_("%(n)d object(s) were not backed up: %(first)s")
                              % {"n": len(bad), "first": bad[0]})
        prog.phase("snapshot")
        d.mkdirs("snapshots")
        stamp = _stamp()
        tmpsnap = "snapshots/.tmp-%s-%d" % (stamp, os.getpid())
        size, root = _snapshot(cat, d, tmpsnap, prog)
        # objects stored while the first pass ran, which the copied log may name
        prog.phase("objects")
        names, new2, nbytes2, unchecked2, bad = _copy_objects(a, d, prog)
        if bad:
            raise BackupError(_("%(n)d object(s) were not backed up: %(first)s")
                              % {"n": len(bad), "first": bad[0]})
        new, nbytes, unchecked = new + new2, nbytes + nbytes2, unchecked + unchecked2
        views, odd = _views(a.log(), size, set(names))
        files = _finish_snapshot(d, tmpsnap, names, views)
        root = root.hex()
        name = "%s-%d" % (stamp, size)
        manifest = {"format": FORMAT, "archive_id": a.archive_id, "origin": a.log().origin,
                    "snapshot": name, "made_at": _dt.datetime.now(
                        _dt.timezone.utc).isoformat(timespec="seconds"),
                    "by": user.name, "log": {"size": size, "root": root},
                    "objects": len(names), "catalogue": cat.engine.url.get_backend_name(),
                    "files": files}
        raw = json.dumps(manifest, indent=1, sort_keys=True).encode()
        d.write(tmpsnap + "/manifest.json", raw, sync_dir=False)
        if d.kind("snapshots/" + name) is not None:
            raise BackupError(_("snapshot %(name)s exists already in %(dir)s: run the backup "
                                "again in a second") % {"name": name, "dir": d.root})
        # the signed event names the manifest's SHA-256; the snapshot's log ends with it
        prog.phase("recording")
        import hashlib
        index = cat.act(user, backups.made_event(
            destination=d.root, snapshot=name, log_size=size, root=root,
            objects=len(names), objects_new=new, bytes_new=nbytes,
            manifest=hashlib.sha256(raw).hexdigest()))
        _copy_log(a, d, tmpsnap, index + 1, prog)
        for sub in ("", "/log"):
            d.sync(tmpsnap + sub)
        os.rename(d.path(tmpsnap), d.path("snapshots/" + name))
        d.sync("snapshots")
        d.write(LATEST, (name + "\n").encode())
        pruned = _prune(d, KEEP_SNAPSHOTS)
    finally:
        prog.close()
    notes = []
    if unchecked:
        notes.append(_("%(n)d object(s) are encrypted at rest and the at-rest key is not at "
                       "hand: their bytes were compared as copied, not their content")
                     % {"n": len(unchecked)})
    if repaired:
        notes.append(_("%(n)d object(s) in the backup folder were damaged (first: "
                       "objects/%(first)s) and were copied again from the archive")
                     % {"n": len(repaired), "first": sorted(repaired)[0]})
    if odd:
        notes.append(_("%(n)d device view file(s) are no object of the archive (first: "
                       "%(first)s): run `sealcam verify`") % {"n": len(odd), "first": odd[0]})
    from ..keys import fingerprint
    return {"destination": d.root, "snapshot": name, "log_size": size, "root": root,
            "log_held": index + 1, "station_key": fingerprint(a.log().pub),
            "objects": len(names), "objects_new": new, "bytes_new": nbytes,
            "unchecked": len(unchecked), "repaired": len(repaired),
            "objects_removed": pruned, "notes": notes,
            "log_entry": index}
