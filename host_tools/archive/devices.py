"""Registered devices (SPEC §9): a device id and the public key an offload pins, the
folders that hold its view (devices/ID/) and its staging (staging/ID/), and the lock
that lets one offload at a time work on a device."""
from __future__ import annotations

import fcntl
import os

from ..tlog import events
from .common import ArchiveError, DeviceLocked, utcnow, valid_device_id
from .durable import makedirs

__all__ = ["DevicesMixin"]


class DevicesMixin:
    """Uses ``db``, ``tx()``, ``_log_event()``, ``devices_dir`` and ``staging`` of the
    Archive."""

    def device(self, device_id):
        row = self.db.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchone()
        return dict(row) if row else None

    def devices(self):
        return [dict(r) for r in self.db.execute("SELECT * FROM devices ORDER BY id")]

    def register(self, device_id, pubkey: bytes):
        """Register a device with its public key. Returns (row, created). Raises
        ArchiveError if it is registered with another key or the id is not usable."""
        from .. import keys
        if not valid_device_id(device_id):
            raise ArchiveError("not a usable device id: %r (letters, digits, '.', '_', '-'; "
                               "at most 64)" % (device_id,))
        pubkey = bytes(pubkey)
        if len(pubkey) != 32:
            raise ArchiveError("a device key is 32 bytes, got %d" % len(pubkey))
        fp = keys.fingerprint(pubkey)
        with self.tx():
            row = self.device(device_id)
            if row is not None:
                if row["pubkey"] != pubkey:
                    raise ArchiveError(
                        "device %s is already registered with another key (fingerprint %s, "
                        "not %s)" % (device_id, row["fingerprint"], fp))
                return row, False
            now = utcnow()
            self.db.execute("INSERT INTO devices (id, pubkey, fingerprint, registered_at) "
                            "VALUES (?, ?, ?, ?)", (device_id, pubkey, fp, now))
            self._log_event(events.register(now, device_id, pubkey))
        makedirs(self.view_dir(device_id))
        return self.device(device_id), True

    def view_dir(self, device_id):
        return os.path.join(self.devices_dir, device_id)

    def staging_dir(self, device_id):
        return os.path.join(self.staging, device_id)

    def lock_device(self, device_id):
        """An exclusive lock on the device's part of the archive (one offload at a time)."""
        d = self.staging_dir(device_id)
        makedirs(d)
        fd = os.open(os.path.join(d, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DeviceLocked("device %s is being offloaded by another process" % device_id)
        return fd

    @staticmethod
    def unlock(fd):
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
