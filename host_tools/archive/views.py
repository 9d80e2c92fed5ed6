"""Device views (SPEC §9): devices/ID/ holds the device's store in the layout of a card
(SPEC §5.1), every file a hard link to an object, so that `sealcam verify` checks it like
a card. Records reach the view as log files only when an offload has all their media;
head.cbor never goes back."""
from __future__ import annotations

import os
import stat

import cbor2

from ..safeio import open_dir_nofollow
from ..tlog import events
from .common import (ArchiveError, ArchiveTampered, H, record_body, safe_rel, utcnow,
                     valid_device_id)

__all__ = ["ViewsMixin", "LOG_MAX"]

LOG_MAX = 256 * 1024          # a view log file rolls over past this size (as on the card)


class ViewsMixin:
    """Uses ``db``, ``tx()``, ``_log_event()``, ``view_dir()``, ``device()``,
    ``record()``, ``object_path()`` and ``put_bytes()`` of the Archive."""

    def _view_dirfd(self, device_id, parts):
        """An fd of the folder devices/ID/<parts…>, every component opened without
        following a symlink (created when missing): the station never writes through a
        link an editor planted in a view."""
        names = ["devices", device_id] + list(parts)

        def refuse(i, fd):
            raise ArchiveTampered(
                "%s in the archive %s is a symbolic link or not a folder: the "
                "station never writes through it (run `sealcam verify %s`)"
                % ("/".join(names[:i + 1]), self.root, self.root)) from None
        return open_dir_nofollow(self.root, names, refuse, create=True)

    def link(self, device_id, rel, hexdigest):
        """Make devices/ID/rel a hard link to the object (replacing what was there). No
        symlink on the way is followed; the old file is replaced, never written into."""
        if not safe_rel(rel) or not valid_device_id(device_id):
            raise ArchiveError("unsafe path in device %s: %r" % (device_id, rel))
        obj = self.object_path(hexdigest)
        parts = rel.split("/")
        dst = os.path.join(self.view_dir(device_id), *parts)
        dfd = self._view_dirfd(device_id, parts[:-1])
        try:
            name = parts[-1]
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None:
                if stat.S_ISDIR(st.st_mode):
                    raise ArchiveTampered("devices/%s/%s in the archive %s is a folder where the "
                                       "station keeps a file (run `sealcam verify %s`)"
                                       % (device_id, rel, self.root, self.root))
                ost = os.stat(obj)
                if stat.S_ISREG(st.st_mode) and (st.st_ino, st.st_dev) == (ost.st_ino,
                                                                            ost.st_dev):
                    return dst
            tmp = name + ".tmp-link"
            try:
                os.unlink(tmp, dir_fd=dfd)
            except FileNotFoundError:
                pass
            os.link(obj, tmp, dst_dir_fd=dfd, follow_symlinks=False)
            self._log_event(events.object_(utcnow(), device_id, rel,
                                           bytes.fromhex(hexdigest)))
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return dst

    def _read_view_file(self, device_id, rel, cap=1 << 20):
        """The bytes of a small view file (no symlink followed, regular files only, never
        blocking), or None if it is absent or not one."""
        from ..safeio import read_capped
        try:
            return read_capped(self.root, "devices/%s/%s" % (device_id, rel), cap)
        except OSError:
            return None

    def commit_view(self, device_id, head: bytes | None):
        """Write the records not yet in the view as log files (in seq order, each file named
        by its first seq, rolled over past 256 KiB), then head.cbor from ``head`` (a record
        the device signed as its last) if it is held and not older than the view's head.
        Returns the number of changes: records written, plus one if the head moved."""
        rows = self.db.execute("SELECT seq, data FROM records WHERE device = ? AND log IS NULL "
                               "ORDER BY seq", (device_id,)).fetchall()
        n = 0
        i = 0
        while i < len(rows):
            first = rows[i]["seq"]
            name = "rec/%08d.log" % first
            k = 0
            while os.path.lexists(os.path.join(self.view_dir(device_id), *name.split("/"))):
                k += 1
                name = "rec/%08d_%d.log" % (first, k)
            parts, offsets, size = [], [], 0
            while i < len(rows) and (size == 0 or size + len(rows[i]["data"]) <= LOG_MAX):
                offsets.append((rows[i]["seq"], size))
                parts.append(rows[i]["data"])
                size += len(rows[i]["data"])
                i += 1
            h = self.put_bytes(b"".join(parts), clear=True)   # signed metadata
            self.link(device_id, name, h)
            with self.tx():
                self.db.executemany("UPDATE records SET log = ?, offset = ? WHERE device = ? "
                                    "AND seq = ?", [(name, off, device_id, s)
                                                    for s, off in offsets])
            n += len(offsets)
        if head is not None and self.set_head(device_id, head):
            n += 1
        return n

    def view_head_seq(self, device_id):
        data = self._read_view_file(device_id, "head.cbor")
        try:
            return record_body(cbor2.loads(data)[3]).get(1)
        except Exception:
            return None

    def set_head(self, device_id, head: bytes):
        """head.cbor of the view := {1: log, 2: offset past it, 3: head}; only if the record
        is held byte for byte and the head does not go back. Returns True if it changed."""
        body = record_body(head)
        if body is None or not isinstance(body.get(1), int):
            return False
        seq = body[1]
        rec = self.record(device_id, seq)
        if rec is None or rec["data"] != head or rec["log"] is None:
            return False
        cur = self.view_head_seq(device_id)
        if cur is not None and cur > seq:
            return False
        data = cbor2.dumps({1: rec["log"], 2: rec["offset"] + rec["size"], 3: head},
                           canonical=True)
        if self._read_view_file(device_id, "head.cbor") == data:
            return False                    # already this head
        self.link(device_id, "head.cbor", self.put_bytes(data, clear=True))
        with self.tx():
            dev = self.device(device_id)
            if dev["last_head_seq"] is None or dev["last_head_seq"] <= seq:
                self.db.execute("UPDATE devices SET last_head_seq = ?, last_head_hash = ?, "
                                "last_head = ? WHERE id = ?", (seq, H(head), head, device_id))
                self._log_event(events.head(utcnow(), device_id, seq, H(head)))
        return True
