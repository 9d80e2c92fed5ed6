"""The archive's hooks into its station log (SPEC §11): every change the archive makes is
stated as a log entry, durable and signed by the station key before the change is relied
on. An archive whose log is missing is never written: an archive made before the log is
adopted into it only by a person, with `sealcam station adopt` (SPEC §11.5)."""
from __future__ import annotations

import os

from .common import StationLogError, StationLogMissing, StationLogRefused, utcnow

__all__ = ["StationLogMixin"]


def _station_pub(root):
    """The station public key from station.pub (regular file, no symlink, small), or
    None if it is absent or malformed (verify names that itself)."""
    from ..safeio import read_capped
    try:
        pub = bytes.fromhex(read_capped(root, "station.pub", 200).strip().decode("ascii"))
        return pub if len(pub) == 32 else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None


class StationLogMixin:
    """Uses ``root``, ``readonly``, ``archive_id``, ``db``, ``meta``, ``tx()`` and
    ``_log`` (the Log once opened) of the Archive."""

    def log(self):
        """The station log (read-only without the station key or when opened read-only)."""
        if self._log is None:
            from ..tlog.log import Log, origin_for
            signer = None
            if not self.readonly and os.path.exists(os.path.join(self.root, "station.key")):
                signer = self.station_key()
            self._log = Log(self.root, origin_for(self.archive_id), signer=signer,
                            readonly=self.readonly,
                            pub=None if signer is not None else _station_pub(self.root))
        return self._log

    def station_key(self):
        from .. import station
        return station.load_station_key(self.root)

    def log_is_absent(self) -> bool:
        """No checkpoint, no pending checkpoint and no entry: the archive has no log."""
        lg = self.log()
        d = os.path.join(self.root, "log")
        return not (lg.size or lg.unindexed or lg.torn
                    or os.path.lexists(os.path.join(d, "checkpoint"))
                    or os.path.lexists(os.path.join(d, "checkpoint.new")))

    def holds_history(self) -> bool:
        """Whether the archive holds anything a log must vouch for: devices in the index,
        objects or device views, or a meta row saying it was made with a log."""
        if self.meta.get("log"):
            return True
        if self.db.execute("SELECT COUNT(*) FROM devices").fetchone()[0]:
            return True
        for d in (self.objects, self.devices_dir):
            try:
                if os.listdir(d):
                    return True
            except OSError:
                pass
        return False

    def _require_log(self):
        """On every writable open: an archive with history and no log is refused (a person
        decides with `sealcam station adopt`); a log holding entries the station cannot
        account for is refused before anything is done."""
        from ..tlog.log import LogError
        try:
            absent = self.log_is_absent()
        except LogError as e:
            raise StationLogRefused("station log of %s: %s; not appending, not signing anything"
                                    % (self.root, e)) from None
        if absent:
            if not self.holds_history():
                return
            if self.meta.get("log"):
                raise StationLogMissing(
                    "the station log of %s is missing (log/checkpoint and log/entries): this "
                    "archive was made with one; restore log/ from a backup, or, if it is lost, "
                    "run `sealcam station adopt --archive %s` (what the archive holds is then "
                    "signed from now on, its history before stays unproven); nothing is "
                    "written until then" % (self.root, self.root))
            raise StationLogMissing(
                "%s was made before the station log: review it, then run `sealcam station "
                "adopt --archive %s` once to start its log; nothing is written until then"
                % (self.root, self.root))
        lg = self.log()
        if lg.signer is None:
            return
        acc = lg.account(lg.pub)
        if acc.problem or (acc.checkpoint is None and acc.pending is None and lg.size):
            raise StationLogRefused(
                "station log of %s: %s; not appending, not signing anything (run `sealcam "
                "verify %s`)"
                % (self.root, acc.problem or "entries and no signed checkpoint",
                   self.root))

    def adopt(self) -> int:
        """Start the log of an archive that has none by stating what the index holds
        (SPEC §11.5): an `adopt` entry first. Only `sealcam station adopt` calls this.
        Returns the number of entries written."""
        from ..tlog.adopt import adopt_entries
        from ..tlog.log import LogError
        if not self.log_is_absent():
            raise StationLogError("%s already has a station log: nothing to adopt" % self.root)
        lg = self.log()
        if lg.signer is None:
            raise StationLogError("no station key in %s: the log cannot be signed" % self.root)
        with self.tx():
            entries = adopt_entries(self, utcnow())
            try:
                lg.append(entries)
            except (LogError, OSError) as e:
                raise StationLogError("the station log of %s cannot be started (%s)"
                                      % (self.root, e)) from None
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('log', 'signed')")
        return len(entries)

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
