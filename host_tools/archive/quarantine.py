"""Quarantine (SPEC §8.4): what a session that failed verification brought is kept apart
from every device's history, in quarantine/<id>/, with a row in the quarantine table and
an event in the station log. Nothing of it reaches records, segments, a view or a
receipt."""
from __future__ import annotations

import hashlib
import json
import os

from ..tlog import events
from .common import ArchiveError, utcnow
from .durable import fsync_dir, makedirs, write_synced

__all__ = ["QuarantineMixin"]


class QuarantineMixin:
    """Uses ``root``, ``db``, ``tx()`` and ``_log_event()`` of the Archive."""

    QUARANTINE_MAX = 1 << 30

    def quarantine(self, device_id: str, reason: str, records: list, info: dict | None = None
                   ) -> str:
        """Keep what a session that failed verification brought: quarantine/<id>/records.log
        (the records byte for byte, concatenated; each is one CBOR item) and info.json.
        Returns the quarantine id."""
        recs = [bytes(r) for r in records]
        total = sum(len(r) for r in recs)
        if total > self.QUARANTINE_MAX:
            raise ArchiveError("quarantine of %d bytes refused (at most %d)"
                               % (total, self.QUARANTINE_MAX))
        now = utcnow()
        qid = "%s-%s" % (now[:19].replace("-", "").replace(":", ""), os.urandom(4).hex())
        qdir = os.path.join(self.root, "quarantine", qid)
        makedirs(qdir)
        blob = b"".join(recs)
        digest = hashlib.sha256(blob).digest()
        meta = {"id": qid, "device": str(device_id), "reason": str(reason), "created": now,
                "records": len(recs), "sha256": digest.hex(), "info": info or {}}
        for name, data in (("records.log", blob),
                           ("info.json", json.dumps(meta, indent=2, ensure_ascii=True,
                                                    default=repr).encode() + b"\n")):
            write_synced(os.path.join(qdir, name), data)
            os.chmod(os.path.join(qdir, name), 0o444)
        fsync_dir(qdir)
        with self.tx():
            self.db.execute("INSERT INTO quarantine (id, device, reason, created, records, "
                            "sha256, info) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (qid, str(device_id), str(reason), now, len(recs), digest,
                             json.dumps(info or {}, ensure_ascii=True, default=repr)))
            self._log_event(events.quarantine(now, qid, str(device_id), str(reason),
                                              len(recs), digest))
        return qid

    def quarantines(self):
        return [dict(r) for r in self.db.execute("SELECT * FROM quarantine ORDER BY created")]
