"""Media segments and their staging (SPEC §9). A segment is tracked from its REC_START
(media path, chunk size) through its CHECKPOINTs to the SEGMENT or RECOVERY record that
closes it. Its media is transferred into staging/ID/<media>.part: chunks are appended only
after their hash matched the chunk index (whose chain root matched the signed root), and
the verified length is persisted, so a transfer resumes where it stopped. A finished
segment moves into objects/ and is linked into the view; an open one has its verified
prefix linked, so that the view is always a consistent store."""
from __future__ import annotations

import os

from .common import (CHECKPOINT, REC_START, RECOVERY, SEGMENT, ZERO, ArchiveError,
                     ArchiveTampered, safe_rel, utcnow)
from ..records import index_path, media_name_error, media_path
from .durable import fsync_dir, makedirs

__all__ = ["SegmentsMixin"]


class SegmentsMixin:
    """Uses ``db``, ``tx()``, ``staging_dir()``, ``put_file()``, ``put_bytes()`` and
    ``link()`` of the Archive."""

    def segments(self, device_id, state=None):
        q = "SELECT * FROM segments WHERE device = ?"
        a = [device_id]
        if state:
            q += " AND state = ?"
            a.append(state)
        return [dict(r) for r in self.db.execute(q + " ORDER BY segment", a)]

    def segment(self, device_id, seg):
        row = self.db.execute("SELECT * FROM segments WHERE device = ? AND segment = ?",
                              (device_id, seg)).fetchone()
        return dict(row) if row else None

    def track_segment(self, device_id, seq, rtype, body, now):
        """The segments row of a record just stored (inside the caller's transaction): a
        REC_START opens one, a CHECKPOINT moves its signed length forward, a SEGMENT or
        RECOVERY closes it. Records that do not say enough are left to the verifier."""
        db = self.db
        if rtype == REC_START:
            media, chunk = body.get(11), body.get(12)
            if not (safe_rel(media) and media_name_error(seq, media) is None
                    and isinstance(chunk, int) and chunk > 0):
                return        # the verifier reports it; nothing to transfer
            db.execute("INSERT OR IGNORE INTO segments (device, segment, media, chunk, root, "
                       "staged_root, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (device_id, seq, media, chunk, ZERO, ZERO, now))
            return
        if rtype not in (CHECKPOINT, SEGMENT, RECOVERY):
            return
        seg, L, n, root = body.get(10), body.get(13), body.get(14), body.get(15)
        if not (isinstance(seg, int) and isinstance(L, int) and isinstance(n, int)
                and isinstance(root, bytes) and len(root) == 32):
            return
        row = db.execute("SELECT chunks, closed_by FROM segments WHERE device = ? AND "
                         "segment = ?", (device_id, seg)).fetchone()
        if row is None or row["closed_by"] is not None:
            return
        if rtype == CHECKPOINT:
            if n >= row["chunks"]:
                db.execute("UPDATE segments SET length = ?, chunks = ?, root = ?, "
                           "updated_at = ? WHERE device = ? AND segment = ?",
                           (L, n, root, now, device_id, seg))
        else:
            db.execute("UPDATE segments SET length = ?, chunks = ?, root = ?, closed_by = ?, "
                       "updated_at = ? WHERE device = ? AND segment = ?",
                       (L, n, root, seq, now, device_id, seg))

    # -- staging -------------------------------------------------------------------------
    def media_rel(self, seg_row):
        """The media path of a segments row, as its seq gives it (SPEC §4.1: m/S.ext): the
        row's media column only chooses the extension, and a name its seq does not give is
        refused (an edited row never names a file)."""
        why = media_name_error(seg_row["segment"], seg_row["media"])
        if why:
            raise ArchiveTampered("segments row %s of archive.sqlite: %s (the row was edited; run "
                               "`sealcam verify %s`)" % (seg_row["segment"], why, self.root))
        return media_path(seg_row["segment"], seg_row["media"].rsplit(".", 1)[1])

    def staging_path(self, device_id, seg_row):
        return os.path.join(self.staging_dir(device_id),
                            os.path.basename(self.media_rel(seg_row)) + ".part")

    def open_staging(self, device_id, seg_row):
        """The staging file of an unfinished segment, opened for appending at the verified
        length persisted in the database (bytes written after it are dropped)."""
        makedirs(self.staging_dir(device_id))
        p = self.staging_path(device_id, seg_row)
        if os.path.islink(self.staging_dir(device_id)):
            raise ArchiveTampered("staging/%s in the archive %s is a symbolic link: the station "
                               "never writes through it" % (device_id, self.root))
        fd = os.open(p, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        f = os.fdopen(fd, "r+b")
        size = os.fstat(fd).st_size
        want = seg_row["staged_length"]
        if size < want:
            # the verified prefix is gone (staging was tampered with or lost): start over
            f.truncate(0)
            self.set_staged(device_id, seg_row["segment"], 0, 0, ZERO)
            seg_row.update(staged_length=0, staged_chunks=0, staged_root=ZERO)
        elif size > want:
            f.truncate(want)
        f.seek(0, 2)
        return f

    def set_staged(self, device_id, seg, length, chunks, root, error=None):
        with self.tx():
            self.db.execute("UPDATE segments SET staged_length = ?, staged_chunks = ?, "
                            "staged_root = ?, error = ?, updated_at = ? WHERE device = ? AND "
                            "segment = ?", (length, chunks, root, error, utcnow(), device_id,
                                            seg))

    def set_segment_error(self, device_id, seg, error):
        with self.tx():
            self.db.execute("UPDATE segments SET error = ?, updated_at = ? WHERE device = ? "
                            "AND segment = ?", (error, utcnow(), device_id, seg))

    def _link_media(self, device_id, seg_row, h, ih):
        """Link the media object ``h`` and its index object ``ih`` into the view."""
        media = self.media_rel(seg_row)
        self.link(device_id, media, h)
        self.link(device_id, index_path(media), ih)

    def _put_index(self, idx, entries):
        """Store the first ``entries`` entries of a chunk index, given as bytes or as the
        path of a file (the station streams a large index to staging, never to memory)."""
        if isinstance(idx, (bytes, bytearray, memoryview)):
            return self.put_bytes(bytes(idx[:32 * entries]), clear=True)   # chunk hashes
        return self.put_file(idx, limit=32 * entries, clear=True)

    def finish_segment(self, device_id, seg_row, idx_bytes, digest=None):
        """A closed segment whose every chunk is staged and verified: move its media into
        objects/, store the index (bytes or a file's path), link both into the view, mark
        it complete. ``digest``: the staged file's SHA-256 (hex) if the caller computed it
        as it wrote the file (put_file)."""
        p = self.staging_path(device_id, seg_row)
        if not os.path.exists(p) and seg_row["length"] == 0:
            open(p, "wb").close()
        if os.path.getsize(p) != seg_row["length"]:
            raise ArchiveError("segment %d: staged %d bytes, signed %d" % (
                seg_row["segment"], os.path.getsize(p), seg_row["length"]))
        h = self.put_file(p, move=True, digest=digest)
        ih = self._put_index(idx_bytes, seg_row["chunks"])
        self._link_media(device_id, seg_row, h, ih)
        with self.tx():
            self.db.execute("UPDATE segments SET state = 'complete', object = ?, idx_object = ?, "
                            "error = NULL, updated_at = ? WHERE device = ? AND segment = ?",
                            (h, ih, utcnow(), device_id, seg_row["segment"]))
        fsync_dir(self.staging_dir(device_id))
        return h

    def publish_partial(self, device_id, seg_row, idx_bytes):
        """An open segment: link the verified prefix (copied into an object) into the view,
        so that the view is a consistent store; the staging file stays for the rest. The
        index: bytes or a file's path."""
        if seg_row["staged_length"] == 0 and seg_row["length"] == 0:
            return None
        p = self.staging_path(device_id, seg_row)
        h = self.put_file(p, limit=seg_row["staged_length"])
        ih = self._put_index(idx_bytes, seg_row["staged_chunks"])
        self._link_media(device_id, seg_row, h, ih)
        with self.tx():
            self.db.execute("UPDATE segments SET object = ?, idx_object = ?, updated_at = ? "
                            "WHERE device = ? AND segment = ?",
                            (h, ih, utcnow(), device_id, seg_row["segment"]))
        return h
