"""The station's own bookkeeping per device (SPEC §8.3, §9): the receipts it sent (and
what the device said of them) and a row per offload session. Each change is also an
event in the station log."""
from __future__ import annotations

from ..tlog import events
from .common import RECEIPT, H, record_body, utcnow

__all__ = ["LedgerMixin"]


class LedgerMixin:
    """Uses ``db``, ``tx()`` and ``_log_event()`` of the Archive."""

    # -- receipts ------------------------------------------------------------------------
    def last_receipt(self, device_id, status=None):
        q = "SELECT * FROM receipts WHERE device = ?"
        a = [device_id]
        if status:
            q += " AND status = ?"
            a.append(status)
        row = self.db.execute(q + " ORDER BY number DESC LIMIT 1", a).fetchone()
        return dict(row) if row else None

    def next_receipt_number(self, device_id):
        """Greater than every receipt number this archive used for the device and every
        number in a RECEIPT record of its chain (receipts of other stations)."""
        n = self.db.execute("SELECT MAX(number) FROM receipts WHERE device = ?",
                            (device_id,)).fetchone()[0] or 0
        for (data,) in self.db.execute("SELECT data FROM records WHERE device = ? AND "
                                       "type = ?", (device_id, RECEIPT)):
            b = record_body(data) or {}
            if isinstance(b.get(27), int):
                n = max(n, b[27])
        return n + 1

    def add_receipt(self, device_id, number, covered, covered_hash, receipt):
        now = utcnow()
        with self.tx():
            self.db.execute("INSERT INTO receipts (device, number, covered, covered_hash, "
                            "sent_at, status, receipt, receipt_hash) VALUES (?, ?, ?, ?, ?, "
                            "'sent', ?, ?)", (device_id, number, covered, covered_hash,
                                              now, receipt, H(receipt)))
            self._log_event(events.receipt(now, device_id, number, covered, covered_hash,
                                           receipt))

    def update_receipt(self, device_id, number, status, record_seq=None, message=None):
        with self.tx():
            self.db.execute("UPDATE receipts SET status = ?, record_seq = ?, message = ? "
                            "WHERE device = ? AND number = ?",
                            (status, record_seq, message, device_id, number))
            self._log_event(events.receipt_status(utcnow(), device_id, number, status,
                                                  record_seq, message))

    def receipts(self, device_id):
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM receipts WHERE device = ? ORDER BY number", (device_id,))]

    # -- offloads ------------------------------------------------------------------------
    OFFLOAD_LOGGED = events.OFFLOAD_FIELDS

    def start_offload(self, device_id, port):
        with self.tx():
            cur = self.db.execute("INSERT INTO offloads (device, port, started, status) "
                                  "VALUES (?, ?, ?, 'running')", (device_id, port, utcnow()))
            return cur.lastrowid

    def update_offload(self, offload_id, **fields):
        if not fields:
            return
        cols = ", ".join("%s = ?" % k for k in fields)
        with self.tx():
            self.db.execute("UPDATE offloads SET %s WHERE id = ?" % cols,
                            list(fields.values()) + [offload_id])

    def finish_offload(self, offload_id, **fields):
        fields.setdefault("finished", utcnow())
        self.update_offload(offload_id, **fields)
        row = self.db.execute("SELECT * FROM offloads WHERE id = ?", (offload_id,)).fetchone()
        if row is not None:
            self._log_event(events.offload(fields["finished"], offload_id, row))

    def offloads(self, device_id=None):
        if device_id is None:
            return [dict(r) for r in self.db.execute("SELECT * FROM offloads ORDER BY id")]
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM offloads WHERE device = ? ORDER BY id", (device_id,))]
