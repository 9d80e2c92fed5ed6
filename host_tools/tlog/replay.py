"""What the station log says the archive holds: the log's events replayed into the state
that archive.sqlite indexes (devices and keys, records with their hashes and stored_at,
last heads, view files, receipts, offloads, quarantines, each device's lifecycle:
provisioned, revoked, re-keyed, firmware seen, and the segments disposed with approval,
whose media and index leave the view). Clerk events (host_tools.catalogue.events
CLERK_TYPES) are the catalogue's: replay leaves them to it. `sealcam verify ARCHIVE`
compares the database and the files with it; `sealcam station reindex` rebuilds the
database from it and the signed records.
"""
from __future__ import annotations

import re

from ..records import REC_START
from . import events

__all__ = ["State", "replay", "segment_of"]

OBJECTS_MAX = 256       # objects one disposal may name (the media and index and prefixes)
HISTORY_MAX = 120       # distinct objects kept per view path (each prefix an offload linked)
_SEG_PATH = re.compile(r"m/([0-9]{8,20})\.[a-z0-9]{1,8}")


def segment_of(path):
    """The segment (its REC_START seq) whose media or index ``path`` is (m/S.ext), or None
    for any other path (rec/ logs, head.cbor)."""
    m = _SEG_PATH.fullmatch(path) if isinstance(path, str) else None
    if m is None or "%08d" % int(m.group(1)) != m.group(1):
        return None
    return int(m.group(1))


_segment_of = segment_of


class State:
    def __init__(self):
        self.devices = {}       # id -> {key, registered_at, head_seq, head_hash, head_at}
        self.records = {}       # id -> {seq: (hash, type, stored_at, offload)}
        self.objects = {}       # id -> {path: sha256 bytes}
        self.receipts = {}      # id -> {number: {...}}
        self.offloads = {}      # offload id -> {...}
        self.quarantines = {}   # id -> {...}
        self.lifecycle = {}     # recorder id -> [lifecycle entries, in log order]
        self.retired = {}       # archive device id of a retired key's history -> recorder id
        self.problems = []      # events that contradict earlier ones (index, what)
        self.holders = {}       # key -> recorder ids that held it (a key is one recorder's)
        self.adopted = None     # the `adopt` entry of an archive older than its log
        self.history = {}       # id -> {path: [every sha256 the log linked there, in order]}
        self.disposed = {}      # id -> {segment: {entry, at, objects, request, ...}}
        self.clerk_objects = set()  # objects clerk events name (documents, SPEC §14)
        self.clerk = 0          # clerk events (SPEC §14): the catalogue replays them
        self.explanations = {}  # (device, INTERRUPTION seq) -> written explanations (§14.5)
        self.size = 0

    def _dev(self, i, e):
        d = e.get("device")
        if d not in self.devices:
            self.problems.append("log entry %d (%s) names device %r, which the log never "
                                 "registered" % (i, e.get("type"), d))
            return None
        return d

    def _key_of(self, i, d, key):
        """A key is one recorder's: another id holding (or having held) it is flagged."""
        if not isinstance(key, bytes):
            return
        other = sorted(x for x in self.holders.get(key, ()) if x != d)
        if other:
            self.problems.append("log entry %d gives %s the key of %s (a key belongs to one "
                                 "recorder only)" % (i, d, ", ".join(other[:4])))
        self.holders.setdefault(key, set()).add(d)

    def _after_revoke(self, i, d, what):
        """Records, heads, receipts and view files of a recorder the log revoked (and did
        not re-key since) are never stored: an entry saying so is flagged (SPEC §9.1)."""
        if d in self.retired or self.status(d) != "revoked":
            return False
        self.problems.append("log entry %d %s of device %s after its device_revoked entry: "
                             "a revoked recorder's offloads go to quarantine, never into its "
                             "history" % (i, what, d))
        return True

    def _new_device(self, d, key, at, i):
        self.devices[d] = {"key": key, "registered_at": at, "head_seq": None,
                           "head_hash": None, "head_at": None, "entry": i}
        self.records[d], self.objects[d], self.receipts[d] = {}, {}, {}
        self.history[d], self.disposed[d] = {}, {}

    def _rekeyed(self, i, e):
        """The old key's history moves to the archive device ``retired_as`` (its records,
        view files, receipts and last head, verified with the old key); the device starts
        again with the new key."""
        d = self._dev(i, e)
        if d is None:
            return
        old, new, part = e.get("old_key"), e.get("new_key"), e.get("retired_as")
        dv = self.devices[d]
        if dv["key"] != old:
            self.problems.append("log entry %d re-keys device %s from a key it does not hold"
                                 % (i, d))
            return
        if part in self.devices or part in self.retired or not isinstance(part, str):
            self.problems.append("log entry %d retires the key of %s as %r, which is taken"
                                 % (i, d, part))
            return
        if dv["head_seq"] != e.get("retired_seq") or dv["head_hash"] != e.get("retired_hash"):
            self.problems.append("log entry %d retires the key of %s at seq %r, but its last "
                                 "head in the log is seq %r" % (i, d, e.get("retired_seq"),
                                                                dv["head_seq"]))
        self.devices[part] = dv
        self.records[part] = self.records.pop(d)
        self.objects[part] = self.objects.pop(d)
        self.receipts[part] = self.receipts.pop(d)
        self.history[part] = self.history.pop(d)
        self.disposed[part] = self.disposed.pop(d)
        self.retired[part] = d
        self.lifecycle.setdefault(d, []).append(e)
        self._key_of(i, d, new)
        self._new_device(d, new, e.get("at"), i)

    def status(self, d):
        """'active', 'revoked' or 'retired' (the history of a re-keyed device's old key)."""
        return events.device_status(self.retired, self.lifecycle, d)

    def apply(self, i, e):
        t, at = e.get("type"), e.get("at")
        if t in ("register", "device_provisioned"):
            d, key = e.get("device"), e.get("key")
            if d in self.retired:
                self.problems.append("log entry %d registers %r, the history of a retired key"
                                     % (i, d))
                return
            if t == "device_provisioned":
                self.lifecycle.setdefault(d, []).append(e)
            if d in self.devices:
                if self.devices[d]["key"] != key:
                    self.problems.append("log entry %d registers device %r again with another "
                                         "key" % (i, d))
                return
            self._key_of(i, d, key)
            self._new_device(d, key, at, i)
        elif t == "device_revoked" or t == "firmware_seen":
            d = self._dev(i, e)
            if d is not None:
                self.lifecycle.setdefault(d, []).append(e)
        elif t == "device_rekeyed":
            self._rekeyed(i, e)
        elif t == "records":
            d = self._dev(i, e)
            if d is None:
                return
            self._after_revoke(i, d, "stores records")
            recs = self.records[d]
            for item in e.get("records") or ():
                seq, h, rtype = item
                if seq in recs and recs[seq][0] != h:
                    self.problems.append("log entry %d stores device %s seq %d again with "
                                         "another hash" % (i, d, seq))
                    continue
                recs.setdefault(seq, (h, rtype, at, e.get("offload")))
        elif t == "object":
            d = self._dev(i, e)
            if d is not None:
                self._after_revoke(i, d, "stores a view file")
                path = e.get("path")
                seg = _segment_of(path)
                if seg is not None and seg in self.disposed[d]:
                    self.problems.append("log entry %d links %s of device %s, whose segment "
                                         "%d was disposed (log entry %d): a disposed "
                                         "segment's media never comes back"
                                         % (i, path, d, seg, self.disposed[d][seg]["entry"]))
                self.objects[d][path] = e.get("sha256")
                hist = self.history[d].setdefault(path, [])
                if e.get("sha256") not in hist and len(hist) < HISTORY_MAX:
                    hist.append(e.get("sha256"))
        elif t == "segment_disposed":
            self._disposed(i, e)
        elif t == "head":
            d = self._dev(i, e)
            if d is not None:
                self._after_revoke(i, d, "takes a signed head")
                dv = self.devices[d]
                if dv["head_seq"] is None or e["seq"] >= dv["head_seq"]:
                    dv.update(head_seq=e["seq"], head_hash=e["hash"], head_at=at)
        elif t == "receipt":
            d = self._dev(i, e)
            if d is not None:
                self._after_revoke(i, d, "issues a custody receipt")
                self.receipts[d][e["number"]] = {
                    "covered": e["covered"], "covered_hash": e["covered_hash"],
                    "receipt": e["receipt"], "sent_at": at, "status": "sent",
                    "record_seq": None, "message": None}
        elif t == "receipt_status":
            d = self._dev(i, e)
            if d is not None:
                r = self.receipts[d].get(e.get("number"))
                if r is None:
                    self.problems.append("log entry %d updates receipt %r of %s, never issued"
                                         % (i, e.get("number"), d))
                else:
                    r.update(status=e.get("status"), record_seq=e.get("record_seq"),
                             message=e.get("message"))
        elif t == "offload":
            self.offloads[e.get("id")] = {k: v for k, v in e.items()
                                          if k not in ("type", "at", "id")}
        elif t == "adopt":
            if i != 0 or self.adopted is not None:
                self.problems.append("log entry %d is an adoption, which only ever starts a "
                                     "log (entry 0)" % i)
                return
            self.adopted = {"entry": i, "at": at, "devices": e.get("devices")}
        elif t == "quarantine":
            self.quarantines[e.get("id")] = {k: v for k, v in e.items() if k != "type"}
        elif t in _clerk_types():
            self.clerk += 1             # the catalogue's (host_tools.catalogue, SPEC §14)
            sha = e.get("sha256")       # a document is an archive object: never disposed
            if isinstance(sha, str) and len(sha) == 64:
                try:
                    self.clerk_objects.add(bytes.fromhex(sha))
                except ValueError:
                    pass
            if t == "document_added" and e.get("kind") == "explanation" and isinstance(
                    e.get("device"), str) and type(e.get("interruption_seq")) is int:
                self.explanations.setdefault((e["device"], e["interruption_seq"]), []).append(
                    {"sha256": sha, "name": e.get("name"), "by": e.get("by"), "at": at,
                     "log_entry": i})
        else:
            self.problems.append("log entry %d has an unknown type %r" % (i, t))

    def _disposed(self, i, e):
        """A segment's media and index leave the view (SPEC §9.2): the entry must name a
        segment whose REC_START the log stored, only the media and index paths of that
        segment, and only objects the log linked there; the objects it names are no longer
        expected in the view. The signed records stay."""
        d = self._dev(i, e)
        if d is None:
            return
        seg, objs = e.get("segment"), e.get("objects")
        why = None
        if type(seg) is not int or seg < 0:
            why = "names no segment"
        elif seg in self.disposed[d]:
            why = "disposes segment %d again (log entry %d disposed it)" % (
                seg, self.disposed[d][seg]["entry"])
        elif self.records[d].get(seg, (None, None))[1] != REC_START:
            why = "disposes segment %d, whose REC_START the log never stored" % seg
        elif not isinstance(objs, list) or not objs or len(objs) > OBJECTS_MAX:
            why = "names no objects (or more than %d)" % OBJECTS_MAX
        else:
            for o in objs:
                p = o.get("path") if isinstance(o, dict) else None
                h = o.get("sha256") if isinstance(o, dict) else None
                if not isinstance(p, str) or _segment_of(p) != seg:
                    why = "names %r, which is not the media or index of segment %d" % (p, seg)
                    break
                if not isinstance(h, bytes) or (h not in self.history[d].get(p, ())
                                                and h != self.objects[d].get(p)):
                    why = "names an object the log never linked at %s" % p
                    break
        if why is None:
            for p in sorted({o["path"] for o in objs}):
                cur = self.objects[d].get(p)
                if cur is not None and cur not in [o["sha256"] for o in objs if o["path"] == p]:
                    why = "leaves out the object the view holds at %s" % p
                    break
        if why:
            self.problems.append("log entry %d (segment_disposed, device %s) %s" % (i, d, why))
            return
        paths = {o["path"] for o in objs}
        for p in paths:
            self.objects[d].pop(p, None)
        info = {k: e.get(k) for k in events.DISPOSAL_FIELDS}
        info.update(entry=i, at=e.get("at"), segment=seg,
                    objects=[(o["path"], o["sha256"]) for o in objs])
        self.disposed[d][seg] = info


def _clerk_types():
    from ..catalogue.events import CLERK_TYPES
    return CLERK_TYPES


def replay(log, size: int | None = None) -> State:
    """The state after the first ``size`` entries (default: all) of ``log``: nothing past
    them is read or decoded (an entry beyond what a checkpoint signed is no part of it)."""
    st = State()
    n = log.size if size is None else min(size, log.size)
    for i, _, e in log.entries(0, n):
        try:
            st.apply(i, e)
        except (KeyError, TypeError, ValueError) as ex:
            st.problems.append("log entry %d (%s) is malformed: %s" % (i, e.get("type"), ex))
    st.size = n
    return st
