"""The records of each device's chain (SPEC §9): kept in SQLite byte for byte as they
arrive, durable at once (a broken link loses nothing already pulled), held without gaps
from seq 0. Their media segments are tracked as they come (segments.py)."""
from __future__ import annotations

from .. import records as R
from ..tlog import events
from .common import ArchiveError, H, record_columns, utcnow

__all__ = ["ChainMixin"]


class ChainMixin:
    """Uses ``db``, ``tx()``, ``_log_event()`` and ``track_segment()`` of the Archive."""

    def max_seq(self, device_id):
        """Highest seq held (None if none); records are held without gaps from 0."""
        r = self.db.execute("SELECT MAX(seq) FROM records WHERE device = ?",
                            (device_id,)).fetchone()[0]
        return r

    def record(self, device_id, seq):
        row = self.db.execute("SELECT * FROM records WHERE device = ? AND seq = ?",
                              (device_id, seq)).fetchone()
        return dict(row) if row else None

    def record_count(self, device_id):
        return self.db.execute("SELECT COUNT(*) FROM records WHERE device = ?",
                               (device_id,)).fetchone()[0]

    def records_after(self, device_id, seq):
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM records WHERE device = ? AND seq > ? ORDER BY seq",
            (device_id, -1 if seq is None else seq))]

    def add_records(self, device_id, recs, offload_id=None):
        """Store records durably: ``recs`` is a list of (seq, data, body) in seq order,
        continuing the held chain. Also tracks segments (REC_START, CHECKPOINT, SEGMENT,
        RECOVERY)."""
        now = utcnow()
        logged = []
        for seq, data, body in recs:      # SQLite holds int64: never a traceback (SPEC §3.1)
            bad = R.hostile_values(body, text=False) if type(seq) is int and 0 <= seq <= R.INT_MAX \
                else "its seq is not an integer of 64 bits"
            if bad:
                raise ArchiveError("record %s of %s is not stored: %s" % (
                    seq if type(seq) is int and abs(seq) <= R.INT_MAX else "?",
                    R.printable(device_id), bad))
        with self.tx():
            for seq, data, body in recs:
                rtype = body.get(0)
                tcol = rtype if isinstance(rtype, int) else -1
                logged.append([seq, H(data), tcol])
                rtc, seg = record_columns(seq, rtype, body)
                self.db.execute(
                    "INSERT INTO records (device, seq, type, hash, size, rtc, segment, "
                    "stored_at, data, offload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (device_id, seq, tcol, H(data), len(data), rtc, seg, now, data,
                     offload_id))
                self.track_segment(device_id, seq, rtype, body, now)
            if logged:
                self._log_event(events.records(now, device_id, offload_id, logged))
