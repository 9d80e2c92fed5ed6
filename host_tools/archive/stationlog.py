"""The archive's hooks into its station log (SPEC §11): every change the archive makes is
stated as a log entry, durable and signed by the station key before the change is relied
on; an archive made before the log is adopted into it once."""
from __future__ import annotations

import os

from .common import StationLogError, utcnow

__all__ = ["StationLogMixin"]


class StationLogMixin:
    """Uses ``root``, ``readonly``, ``archive_id``, ``db``, ``tx()`` and ``_log`` (the
    Log once opened) of the Archive."""

    def log(self):
        """The station log (read-only without the station key or when opened read-only)."""
        if self._log is None:
            from ..tlog.log import Log, origin_for
            signer = None
            if not self.readonly and os.path.exists(os.path.join(self.root, "station.key")):
                signer = self.station_key()
            self._log = Log(self.root, origin_for(self.archive_id), signer=signer,
                            readonly=self.readonly)
        return self._log

    def station_key(self):
        from .. import station
        return station.load_station_key(self.root)

    def _adopt_if_needed(self):
        """An archive made before the station log: state what the index holds in the log
        (once, with the station key), so that from now on it is signed (SPEC §11.5)."""
        p = os.path.join(self.root, "log", "entries")
        if os.path.exists(p) and os.path.getsize(p) > 0:
            return
        if not os.path.exists(os.path.join(self.root, "station.key")):
            return
        if self.db.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0:
            return
        from ..tlog.adopt import adopt_entries
        with self.tx():
            entries = adopt_entries(self, utcnow())
            lg = self.log()
            if lg.size == 0:
                try:
                    lg.append(entries)
                except Exception as e:
                    raise StationLogError("the station log of %s cannot be started (%s)"
                                          % (self.root, e)) from None

    def _log_event(self, entry):
        """Append an event to the station log (durable and signed before returning)."""
        from ..tlog.log import LogError
        try:
            self.log().append([entry])
        except LogError as e:
            raise StationLogError("station log of %s: %s" % (self.root, e)) from None
        except OSError as e:
            raise StationLogError("the station log of %s cannot be written (%s)"
                                  % (self.root, e.strerror or e)) from None
