"""Registered devices (SPEC §9): a device id and the public key an offload pins, the
folders that hold its view (devices/ID/) and its staging (staging/ID/), the lock
that lets one offload at a time work on a device, and its lifecycle (SPEC §9.1):
provisioned, revoked, re-keyed, firmware seen. Each lifecycle event is a signed entry of
the station log and a row of the index's device_events table (the entry's CBOR, which
`sealcam verify` compares with the log; `station reindex` rebuilds it)."""
from __future__ import annotations

import fcntl
import os
import re

import cbor2

from ..tlog import events
from .common import ArchiveError, DeviceLocked, utcnow, valid_device_id
from .durable import makedirs

__all__ = ["DevicesMixin", "LIFECYCLE_SCHEMA", "retired_name"]

# one row per lifecycle event of a recorder id, in log order (SPEC §9.1); made on first use
LIFECYCLE_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_events (
    device TEXT NOT NULL,             -- the recorder's id
    n INTEGER NOT NULL,               -- 0, 1, ... in log order
    type TEXT NOT NULL,               -- device_provisioned | device_revoked | device_rekeyed
                                      -- | firmware_seen
    at TEXT NOT NULL,
    entry BLOB NOT NULL,              -- the station log entry (deterministic CBOR)
    PRIMARY KEY (device, n))"""

_RETIRED_RE = re.compile(r".*\.key[0-9]+")


def retired_name(device_id, n):
    """The archive device that keeps the history of a recorder's n-th retired key."""
    return "%s.key%d" % (device_id, n)


class DevicesMixin:
    """Uses ``db``, ``tx()``, ``_log_event()``, ``devices_dir`` and ``staging`` of the
    Archive."""

    def device(self, device_id):
        row = self.db.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchone()
        return dict(row) if row else None

    def devices(self):
        return [dict(r) for r in self.db.execute("SELECT * FROM devices ORDER BY id")]

    def register(self, device_id, pubkey: bytes, *, technician=None):
        """Register a device with its public key. Returns (row, created). Raises
        ArchiveError if it is registered with another key or the id is not usable. With
        ``technician`` (`sealcam provision`) the log event is device_provisioned, naming
        who vouched for the key."""
        from .. import keys
        if not valid_device_id(device_id) or _RETIRED_RE.fullmatch(device_id):
            raise ArchiveError("not a usable device id: %r (letters, digits, '.', '_', '-'; "
                               "at most 64; not ending in .keyN, which names a retired key's "
                               "history)" % (device_id,))
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
                        "not %s); after a repair that gave it a new key, run `sealcam station "
                        "rekey --archive %s --device %s --key NEWKEY --by NAME`"
                        % (device_id, row["fingerprint"], fp, self.root, device_id))
                return row, False
            if device_id in self._signed().known:
                raise ArchiveError(
                    "device %s is in the station log (status %s) but has no row in "
                    "archive.sqlite: the index was edited; run `sealcam verify %s`, then "
                    "`sealcam station reindex --archive %s`" % (
                        device_id, self._signed().status(device_id), self.root, self.root))
            self._refuse_shared_key(device_id, pubkey)
            now = utcnow()
            self.db.execute("INSERT INTO devices (id, pubkey, fingerprint, registered_at) "
                            "VALUES (?, ?, ?, ?)", (device_id, pubkey, fp, now))
            if technician is None:
                self._log_event(events.register(now, device_id, pubkey))
            else:
                self._device_event(events.device_provisioned(now, device_id, pubkey,
                                                             str(technician), fp))
        makedirs(self.view_dir(device_id))
        return self.device(device_id), True

    # -- lifecycle (SPEC §9.1) ------------------------------------------------------------
    def _lifecycle_table(self):
        if not self.readonly:
            self.db.execute(LIFECYCLE_SCHEMA)

    def _device_event(self, entry):
        """Inside a transaction: the lifecycle event as a device_events row and a signed
        log entry."""
        self._lifecycle_table()
        d = entry["device"]
        n = self.db.execute("SELECT COUNT(*) FROM device_events WHERE device = ?",
                            (d,)).fetchone()[0]
        self.db.execute("INSERT INTO device_events (device, n, type, at, entry) VALUES "
                        "(?, ?, ?, ?, ?)", (d, n, entry["type"], entry["at"],
                                            cbor2.dumps(entry, canonical=True)))
        self._log_event(entry)

    def _signed(self):
        """What the station log (not archive.sqlite: an index row can be edited by anyone
        who can write the database) says about the recorders: their lifecycle entries in
        log order, the retired keys' histories and which ids ever held each key. Read
        incrementally: only entries appended since the last call are decoded."""
        lg = self.log()
        s = getattr(self, "_signed_cache", None)
        if s is None or s.log is not lg or s.size > lg.size:
            s = self._signed_cache = _SignedLifecycle(lg)
        s.catch_up()
        return s

    def device_events(self, device_id=None):
        """The lifecycle entries of a recorder id, or of all as {id: [...]}, as the signed
        station log holds them (never the index's device_events rows)."""
        lc = self._signed().lifecycle
        return {d: list(v) for d, v in lc.items()} if device_id is None \
            else list(lc.get(device_id, []))

    def device_status(self, device_id):
        """'active', 'revoked', 'retired' (the history of a re-keyed device's old key) or
        None (not registered), from the signed station log."""
        s = self._signed()
        if self.device(device_id) is None and device_id not in s.known:
            return None
        return s.status(device_id)

    def retired_keys(self, device_id):
        """[(old key, rekeyed entry)] of a recorder id (from the station log)."""
        return [(bytes(e["old_key"]), e) for e in self.device_events(device_id)
                if e.get("type") == "device_rekeyed"]

    def key_holders(self, pubkey, device_id):
        """The other recorder ids that hold or held ``pubkey`` (as the current key or a
        retired one), from the station log and the index: a key is one recorder's."""
        pubkey = bytes(pubkey)
        s = self._signed()
        out = set(s.holders.get(pubkey, ()))
        for r in self.db.execute("SELECT id FROM devices WHERE pubkey = ?", (pubkey,)):
            out.add(s.retired.get(r["id"], r["id"]))
        out.discard(device_id)
        return sorted(out)

    def _refuse_shared_key(self, device_id, pubkey):
        from .. import keys
        other = self.key_holders(pubkey, device_id)
        if other:
            raise ArchiveError(
                "the key with fingerprint %s is (or was) the key of %s: a key belongs to one "
                "recorder only; nothing registered. Check that the right recorder is in the "
                "dock and that the key was read from it" % (keys.fingerprint(pubkey),
                                                             ", ".join(other[:4])))

    def _usable(self, device_id):
        st = self.device_status(device_id)
        if st is None:
            raise ArchiveError("device %s is not registered in %s" % (device_id, self.root))
        if st == "retired":
            raise ArchiveError("%s is the history of a retired key, not a recorder"
                               % device_id)
        return st

    def revoke(self, device_id, reason, by):
        """Revoke a lost or stolen recorder: returns the log entry."""
        if self._usable(device_id) == "revoked":
            raise ArchiveError("device %s is already revoked" % device_id)
        try:
            lock = self.lock_device(device_id)
        except DeviceLocked:
            raise DeviceLocked(
                "device %s is being offloaded right now (another process holds its lock): "
                "run the same `sealcam station revoke` again as soon as that offload ends "
                "(or unplug the recorder to end it); nothing was revoked yet" % device_id) \
                from None
        try:
            e = events.device_revoked(utcnow(), device_id, str(reason), str(by))
            with self.tx():
                self._device_event(e)
        finally:
            self.unlock(lock)
        return e

    def firmware_seen(self, device_id, fw: bytes):
        """Log the firmware manifest hash a recorder reported (HELLO `fw`) if it is not the
        last one the log holds for it. Returns True if an event was written."""
        fw = bytes(fw)
        if not 1 <= len(fw) <= 64:
            raise ArchiveError("a firmware manifest hash of %d bytes" % len(fw))
        last = [e for e in self.device_events(device_id) if e.get("type") == "firmware_seen"]
        if last and last[-1].get("fw") == fw:
            return False
        self._usable(device_id)
        with self.tx():
            self._device_event(events.firmware_seen(utcnow(), device_id, fw))
        return True

    def rekey(self, device_id, new_key: bytes, by):
        """A new device key after a repair: the old key's history (records, segments,
        receipts, view, staging) becomes the archive device ``ID.keyN``, still verified with
        the old key, retired at the last head the archive holds; ``device_id`` starts a new
        chain with the new key. Returns the log entry."""
        from .. import keys
        self._usable(device_id)
        new_key = bytes(new_key)
        keys.check_public_key(new_key)
        row = self.device(device_id)
        if new_key == row["pubkey"]:
            raise ArchiveError("device %s already holds that key (fingerprint %s)"
                               % (device_id, row["fingerprint"]))
        for k, _ in self.retired_keys(device_id):
            if k == new_key:
                raise ArchiveError("that key (fingerprint %s) was retired from %s before; a "
                                   "retired key is never taken back" % (keys.fingerprint(k),
                                                                        device_id))
        self._refuse_shared_key(device_id, new_key)
        n = len(self.retired_keys(device_id)) + 1
        part = retired_name(device_id, n)
        if not valid_device_id(part) or self.device(part) is not None:
            raise ArchiveError("cannot retire the key of %s as %s (not a usable id, or taken)"
                               % (device_id, part))
        lock = self.lock_device(device_id)
        moved = []
        try:
            now = utcnow()
            e = events.device_rekeyed(now, device_id, row["pubkey"], new_key, part,
                                      row["last_head_seq"], row["last_head_hash"], str(by))
            with self.tx():
                db = self.db
                db.execute("INSERT INTO devices (id, pubkey, fingerprint, registered_at, "
                           "last_head_seq, last_head_hash, last_head) SELECT ?, pubkey, "
                           "fingerprint, registered_at, last_head_seq, last_head_hash, "
                           "last_head FROM devices WHERE id = ?", (part, device_id))
                for t in ("records", "segments", "receipts"):
                    db.execute("UPDATE %s SET device = ? WHERE device = ?" % t,
                               (part, device_id))
                db.execute("UPDATE devices SET pubkey = ?, fingerprint = ?, registered_at = ?, "
                           "last_head_seq = NULL, last_head_hash = NULL, last_head = NULL "
                           "WHERE id = ?", (new_key, keys.fingerprint(new_key), now,
                                            device_id))
                for old, new in ((self.view_dir(device_id), self.view_dir(part)),
                                 (self.staging_dir(device_id), self.staging_dir(part))):
                    if os.path.isdir(old) and not os.path.islink(old):
                        os.rename(old, new)
                        moved.append((old, new))
                self._device_event(e)
        except BaseException:
            for old, new in reversed(moved):
                try:
                    os.rename(new, old)
                except OSError:
                    pass
            raise
        finally:
            self.unlock(lock)
        makedirs(self.view_dir(device_id))
        return e

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


class _SignedLifecycle:
    """The lifecycle part of the station log, read incrementally (Archive._signed)."""

    def __init__(self, log):
        self.log, self.size = log, 0
        self.lifecycle = {}     # recorder id -> [lifecycle entries, log order]
        self.retired = {}       # archive device of a retired key's history -> recorder id
        self.known = set()      # every id the log registered
        self.holders = {}       # key -> {recorder ids that held it}

    def catch_up(self):
        n = self.log.size
        if n <= self.size:
            return
        for _, _, e in self.log.entries(self.size, n):
            if not isinstance(e, dict):
                continue
            t, d = e.get("type"), e.get("device")
            if t in ("register", "device_provisioned") and isinstance(d, str):
                self.known.add(d)
                if isinstance(e.get("key"), bytes):
                    self.holders.setdefault(e["key"], set()).add(d)
            if t == "device_rekeyed" and isinstance(d, str):
                part = e.get("retired_as")
                if isinstance(part, str):
                    self.retired[part] = d
                    self.known.add(part)
                for k in (e.get("old_key"), e.get("new_key")):
                    if isinstance(k, bytes):
                        self.holders.setdefault(k, set()).add(d)
            if t in events.LIFECYCLE and isinstance(d, str):
                self.lifecycle.setdefault(d, []).append(e)
        self.size = n

    def status(self, d):
        return events.device_status(self.retired, self.lifecycle, d)


def lifecycle_check(a, st) -> list:
    """The index's device_events rows against the lifecycle the station log replays to
    (``st``: host_tools.tlog.replay.State): each row missing, differing or never logged is
    named (`sealcam verify ARCHIVE`)."""
    want = {}
    for d, evs in st.lifecycle.items():
        for n, e in enumerate(evs):
            want[(d, n)] = cbor2.dumps(e, canonical=True)
    for k, e in list(want.items()):
        ev = st.lifecycle[k[0]][k[1]]
        want[k] = (ev.get("type"), ev.get("at"), e)
    try:
        rows = a.db.execute("SELECT device, n, type, at, entry FROM device_events").fetchall()
    except Exception:
        rows = []
    have = {}
    for r in rows:
        # every column: the entry, and the type and time a query of the table reads
        have[(r["device"], r["n"])] = (r["type"], r["at"], bytes(r["entry"]) if isinstance(
            r["entry"], (bytes, bytearray, memoryview)) else b"")
    out = []
    for k in sorted(set(want) | set(have), key=lambda k: (str(k[0]), k[1])):
        if k not in have:
            out.append("device_events of %s: event %d (%s) of the station log is missing "
                       "from archive.sqlite" % (k[0], k[1], st.lifecycle[k[0]][k[1]]["type"]))
        elif k not in want:
            out.append("device_events of %s: row %d is in archive.sqlite but the station log "
                       "never recorded it" % (k[0], k[1]))
        elif have[k] != want[k]:
            cols = [c for c, x, y in zip(("type", "at", "entry"), have[k], want[k]) if x != y]
            out.append("device_events of %s: row %d differs from the station log's event "
                       "(%s)" % (k[0], k[1], ", ".join(cols)))
    return out
