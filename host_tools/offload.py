"""`sealcam offload`: pull a docked recorder's records and media into the station archive,
verify them, and hand the recorder a custody receipt (SPEC §8, §9).

    summary = offload("/dev/ttyACM0", "/srv/sealcam", register=False, window=8)
    summary.exit_code, summary.to_json()

Steps: HELLO; the device must be registered (``register=True`` trusts the HELLO key of an
unknown device); AUTH with the station key; the signed head is compared with the archive's
(a head that went back is flagged and no receipt is sent); LIST from what the archive
lacks, GET each record (checked against the chain as it arrives, stored durably); for each
unfinished segment READ the chunk index, check its chain root against the signed root,
READ only the chunks the archive lacks (windowed), each checked against its index entry
before it is stored; the store view is written and verified with the offline verifier and
the registered key; only if it is OK (or OK_WITH_MISSING_INFO with no NOT_OK record) a
receipt covers every record up to the last one at which no segment is open.

A broken link (timeouts, an undocked recorder, Ctrl-C) ends the command with exit code 6
after persisting every verified chunk; the next run continues from there.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass, field

import cbor2
from cryptography.exceptions import InvalidSignature

from . import keys
from .archive import (Archive, ArchiveError, DeviceLocked, NotAnArchive, record_body,
                      valid_device_id, ZERO)
from .link import (GET, READ, Client, LinkDown, LinkError, LinkTimeout, PortError)
from .station import StationError

__all__ = ["offload", "run_offload", "Summary", "OffloadError", "EXIT_OK", "EXIT_NOT_OK",
           "EXIT_USAGE", "EXIT_UNKNOWN_DEVICE", "EXIT_AUTH", "EXIT_LINK", "make_receipt",
           "covered_seq"]

EXIT_OK, EXIT_NOT_OK, EXIT_USAGE, EXIT_UNKNOWN_DEVICE, EXIT_AUTH, EXIT_LINK = 0, 1, 3, 4, 5, 6
REC_START, SEGMENT, RECOVERY, RECEIPT_T = 2, 4, 7, 8
CHUNK_TRIES = 3                # reads of a chunk whose hash does not match before giving up
PERSIST_BYTES = 8 << 20        # fsync staging + persist its verified length this often
PERSIST_SECONDS = 1.0
_RESP_OVERHEAD = 48            # bytes of a READ response besides the data


class OffloadError(Exception):
    def __init__(self, code, message, status=None):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class _Interrupted(Exception):
    pass


@dataclass
class Summary:
    port: str
    archive: str
    device: str | None = None
    fingerprint: str | None = None
    offload_id: int | None = None
    registered: bool = False             # registered by this run (--register)
    records_pulled: int = 0
    record_bytes: int = 0
    media_bytes: int = 0
    bytes: int = 0                       # records + media pulled
    seconds: float = 0.0                 # the whole run, HELLO to receipt
    mb_per_s: float = 0.0                # bytes / seconds, 10^6 bytes per second
    transfer_seconds: float = 0.0        # pulling records and media only
    transfer_mb_per_s: float = 0.0       # bytes / transfer_seconds
    max_frame: int | None = None         # the agreed frame size
    segments_completed: int = 0
    segments_pending: int = 0            # open on the device or not finished
    segments_resumed: int = 0            # continued from staging
    chunks_reread: int = 0               # chunks read again after a hash mismatch
    frames_resent: int = 0
    head_seq: int | None = None          # the device's signed head now
    archive_head_seq: int | None = None  # the archive's last signed head before this run
    head_went_back: bool = False
    verdict: str | None = None           # overall: the store's verdict, NOT_OK if the head
                                         # went back or a segment could not be completed
    store_verdict: str | None = None     # the offline verifier's verdict on the archive view
    receipt: dict | None = None          # {number, covered, seq, confirmed_by} if sent
    receipt_skipped: str | None = None   # why no receipt was sent
    status: str = "running"
    errors: list = field(default_factory=list)
    exit_code: int = EXIT_OK

    def to_json(self):
        return asdict(self)


# --- records -------------------------------------------------------------------------

def _enc(x):
    return cbor2.dumps(x, canonical=True)


def _H(b):
    return hashlib.sha256(b).digest()


def _sig_ok(pub, data) -> bool:
    """Does the record (tagged COSE_Sign1 bytes) verify with ``pub`` (raw 32 bytes)?"""
    try:
        item = cbor2.loads(data)
        prot, _, payload, sig = item.value
        keys.public_key_object(pub).verify(sig, _enc(["Signature1", prot, b"", payload]))
        return True
    except (InvalidSignature, Exception):
        return False


def make_receipt(station_key, device_id, covered, covered_hash, number, archive_id,
                 rtc_ms=None) -> bytes:
    """A custody receipt (SPEC §8.6): COSE_Sign1 by the station, kid = its fingerprint."""
    from cryptography.hazmat.primitives import serialization
    pub = station_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
    kid = keys.fingerprint(pub).encode()
    body = {1: device_id, 2: covered, 3: covered_hash, 4: number,
            5: int(time.time() * 1000) if rtc_ms is None else rtc_ms, 6: archive_id}
    protected = _enc({1: -8, 4: kid})
    payload = _enc(body)
    sig = station_key.sign(_enc(["Signature1", protected, b"", payload]))
    return _enc(cbor2.CBORTag(18, [protected, {}, payload, sig]))


def covered_seq(rows):
    """SPEC §8.6: the highest seq such that every segment started at or before it is closed
    at or before it. ``rows``: (seq, type, segment) in seq order. None if there is none."""
    open_ = set()
    c = None
    for seq, rtype, seg in rows:
        if rtype == REC_START:
            open_.add(seq)
        elif rtype in (SEGMENT, RECOVERY):
            open_.discard(seg)
        if not open_:
            c = seq
    return c


# --- progress ------------------------------------------------------------------------

class _Bar:
    def __init__(self, show, desc):
        self.bar = None
        if show:
            from tqdm import tqdm
            self.bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1000, desc=desc,
                            file=sys.stderr, dynamic_ncols=True, leave=True, miniters=1,
                            mininterval=0.2)

    def add_total(self, n):
        if self.bar is not None and n:
            self.bar.total = (self.bar.total or 0) + n
            self.bar.refresh()

    def update(self, n):
        if self.bar is not None and n:
            self.bar.update(n)

    def desc(self, d):
        if self.bar is not None:
            self.bar.set_description(d, refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --- the offload -----------------------------------------------------------------------

class _Offload:
    def __init__(self, port, archive_dir, *, register=False, window=8, timeout=2.0,
                 slow_timeout=None, progress=None, host_name=None, say=None, client=None):
        self.port, self.archive_dir = port, archive_dir
        self.register, self.window, self.timeout = register, max(1, int(window)), timeout
        self.slow_timeout = slow_timeout
        self.progress = progress
        self.host_name = host_name or socket.gethostname()
        self.say = say or (lambda msg: print(msg, file=sys.stderr))
        self.sm = Summary(port=port, archive=os.path.abspath(archive_dir))
        self.a = None
        self.c = client
        self.lock = None
        self.oid = None
        self.bar = _Bar(False, "")
        self.t0 = None
        self.seg_errors = {}       # segment -> reason
        self.fork = None
        self._own_client = client is None
        self._t_pull = self._t_transfer = None
        self._view_changed = False

    # -- helpers ----------------------------------------------------------------
    def fail(self, code, msg, status):
        raise OffloadError(code, msg, status)

    def run(self) -> Summary:
        sm = self.sm
        try:
            try:
                self._run()
            except OffloadError as e:
                sm.errors.append(e.message)
                sm.exit_code, sm.status = e.code, e.status
            except LinkDown as e:
                sm.errors.append("%s; everything verified so far is kept: run the same command "
                                 "again to resume" % e)
                sm.exit_code, sm.status = EXIT_LINK, "link_broken"
            except LinkError as e:
                sm.errors.append("the recorder answered an error (%s); everything verified so "
                                 "far is kept: run the same command again to resume" % e)
                sm.exit_code, sm.status = EXIT_LINK, "link_broken"
            except _Interrupted as e:
                sm.errors.append("interrupted (%s); everything verified so far is kept: run the "
                                 "same command again to resume" % e)
                sm.exit_code, sm.status = EXIT_LINK, "interrupted"
        finally:
            self.bar.close()
            if self.t0 is not None:
                sm.seconds = round(time.monotonic() - self.t0, 3)
                if sm.seconds > 0:
                    sm.mb_per_s = round(sm.bytes / sm.seconds / 1e6, 3)
                t = self._t_transfer
                if t is None and self._t_pull is not None:
                    t = time.monotonic() - self._t_pull
                if t:
                    sm.transfer_seconds = round(t, 3)
                    sm.transfer_mb_per_s = round(sm.bytes / t / 1e6, 3)
            if self.c is not None:
                sm.frames_resent = self.c.resent
            if self.a is not None and self.oid is not None:
                try:
                    self.a.finish_offload(
                        self.oid, records=sm.records_pulled, bytes=sm.bytes, status=sm.status,
                        verdict=sm.verdict, error="; ".join(sm.errors) or None,
                        head_went_back=int(sm.head_went_back), head_seq=sm.head_seq,
                        receipt_number=(sm.receipt or {}).get("number"))
                except Exception as e:  # pragma: no cover - the database itself failed
                    sm.errors.append("could not record the offload: %s" % e)
            if self.c is not None and self._own_client:
                self.c.close()
            if self.a is not None:
                self.a.unlock(self.lock)
                self.a.close()
        return sm

    def _run(self):
        sm = self.sm
        try:
            self.a = a = Archive(self.archive_dir)
        except NotAnArchive as e:
            self.fail(EXIT_USAGE, str(e), "error")
        try:
            sk = a.station_key()
        except StationError as e:
            self.fail(EXIT_USAGE, str(e), "error")
        if self.c is None:
            try:
                self.c = Client(self.port, timeout=self.timeout,
                                slow_timeout=self.slow_timeout)
            except PortError as e:
                self.fail(EXIT_USAGE, str(e), "error")
        c = self.c
        self.t0 = time.monotonic()
        try:
            hello = c.hello(self.host_name)
        except LinkTimeout as e:
            self.fail(EXIT_LINK, "no answer from %s to HELLO (%s): is the recorder docked and "
                      "serving the dock link?" % (self.port, e), "link_broken")
        dev_id, pub, head, nonce = hello.get(1), hello.get(3), hello.get(5), hello.get(9)
        sm.max_frame = c.max_frame
        if not valid_device_id(dev_id) or not isinstance(pub, bytes) or len(pub) != 32 \
                or not isinstance(nonce, bytes):
            self.fail(EXIT_NOT_OK, "the recorder on %s sent a malformed HELLO (device id %r)"
                      % (self.port, dev_id), "error")
        sm.device, sm.fingerprint = dev_id, keys.fingerprint(pub)
        row = a.device(dev_id)
        if row is None and not self.register:
            self.fail(EXIT_UNKNOWN_DEVICE,
                      "unknown device %s (key fingerprint %s); register it with --register or "
                      "`sealcam station register --archive %s --device %s --key KEY`"
                      % (dev_id, sm.fingerprint, self.archive_dir, dev_id), "unknown_device")
        pinned = row["pubkey"] if row is not None else pub
        try:
            self.lock = a.lock_device(dev_id)
        except DeviceLocked as e:
            self.fail(EXIT_USAGE, str(e), "error")
        self.oid = sm.offload_id = a.start_offload(dev_id, self.port)
        if pub != pinned:
            self.fail(EXIT_NOT_OK,
                      "device %s presents another key than the registered one (fingerprint %s, "
                      "registered %s): not its registered recorder, or it was re-keyed; nothing "
                      "pulled" % (dev_id, sm.fingerprint, row["fingerprint"]), "not_ok")
        # the signed head
        if head is None:
            self.fail(EXIT_NOT_OK, "the recorder %s reports no signed head (an empty store, "
                      "or its head was lost): nothing to pull" % dev_id, "not_ok")
        hbody = record_body(head) if isinstance(head, bytes) else None
        if hbody is None or not _sig_ok(pinned, head) or hbody.get(3) != dev_id \
                or not isinstance(hbody.get(1), int):
            self.fail(EXIT_NOT_OK, "the head record in HELLO of %s does not verify with the "
                      "registered key (fingerprint %s): nothing pulled"
                      % (dev_id, keys.fingerprint(pinned)), "not_ok")
        hs = hbody[1]
        sm.head_seq = hs
        # AUTH
        try:
            c.auth(sk, dev_id, nonce)
        except LinkError as e:
            from cryptography.hazmat.primitives import serialization
            spub = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
            if e.status == 403:
                why = ("the recorder %s does not trust this station (station key fingerprint "
                       "%s): add %s to its trusted station keys" % (
                           dev_id, keys.fingerprint(spub),
                           os.path.join(a.root, "station.pub")))
            elif e.status == 409:
                why = ("the recorder %s refused AUTH as a replay (stale nonce: another station "
                       "or program talked to it in between); try again" % dev_id)
            else:
                why = "AUTH failed on %s" % dev_id
            self.fail(EXIT_AUTH, "%s (%s)" % (why, e), "auth_failed")
        if row is None:
            try:
                row, _ = a.register(dev_id, pub)
            except ArchiveError as e:
                self.fail(EXIT_USAGE, str(e), "error")
            sm.registered = True
            self.say("registered %s (key fingerprint %s), trusting the key it presented"
                     % (dev_id, sm.fingerprint))
        sm.archive_head_seq = row["last_head_seq"]
        held = a.max_seq(dev_id)
        ref = max(x for x in (row["last_head_seq"], held, -1) if x is not None)
        if hs < ref:
            sm.head_went_back = True
            self.say("!" * 78)
            self.say("WARNING: the signed head of %s WENT BACK: seq %d now, the archive holds "
                     "records up to seq %d (last head seq %s). Records were removed from the "
                     "recorder. Pulling what is new, but NO custody receipt will be sent."
                     % (dev_id, hs, ref, row["last_head_seq"]))
            self.say("!" * 78)
        if held is not None and hs <= held:
            mine = a.record(dev_id, hs)
            if mine is not None and mine["data"] != head:
                self.fork = ("the recorder's record seq %d differs from the archived one: the "
                             "recorder's chain was rewritten (fork)" % hs)
        self.bar = _Bar(self.progress if self.progress is not None else sys.stderr.isatty(),
                        dev_id)
        self._t_pull = time.monotonic()
        if self.fork is None:
            self._pull_records(dev_id, held)
        self._reconcile_receipts(dev_id)
        self._pull_media(dev_id)
        self.bar.close()
        self._t_transfer = time.monotonic() - self._t_pull
        self._commit_and_verify(dev_id, head, pinned, sk, row)

    # -- receipts sent earlier whose answer was lost ----------------------------------
    def _reconcile_receipts(self, dev_id):
        """A receipt sent by an earlier run whose answer never came (the link broke): it was
        accepted if the device's chain now holds a RECEIPT record with its hash."""
        a = self.a
        sent = [r for r in a.receipts(dev_id) if r["status"] == "sent"]
        if not sent:
            return
        found = {}
        for seq, data in a.db.execute("SELECT seq, data FROM records WHERE device = ? AND "
                                      "type = ?", (dev_id, RECEIPT_T)):
            b = record_body(data) or {}
            if isinstance(b.get(26), bytes):
                found[b[26]] = seq
        for r in sent:
            if r["receipt_hash"] in found:
                a.update_receipt(dev_id, r["number"], "accepted", found[r["receipt_hash"]])

    # -- records -----------------------------------------------------------------------
    def _pull_records(self, dev_id, held):
        a, c, sm = self.a, self.c, self.sm
        since = 0 if held is None else held + 1
        self.bar.desc("%s records" % dev_id)
        entries = c.list_all(since)
        want = []
        for i, e in enumerate(entries):
            if not (isinstance(e, (list, tuple)) and len(e) == 3 and e[0] == since + i):
                self.seg_errors[None] = ("the recorder lists seq %r where seq %d was expected: "
                                         "records are missing on the recorder" % (e, since + i))
                break
            want.append(e)
        if not want:
            return
        self.bar.add_total(sum(e[2] for e in want if isinstance(e[2], int)))
        prev = a.record(dev_id, held)["hash"] if held is not None else ZERO
        expect = since
        ready = {}
        batch = []
        last_flush = time.monotonic()

        def flush():
            nonlocal batch, last_flush
            if batch:
                a.add_records(dev_id, batch, self.oid)
                sm.records_pulled += len(batch)
                batch = []
            last_flush = time.monotonic()

        try:
            for seq, res in c.read_many(((e[0], {1: e[0]}) for e in want), self.window,
                                        op=GET):
                data = res.get(1)
                ready[seq] = data
                while expect in ready:
                    data = ready.pop(expect)
                    body = record_body(data) if isinstance(data, bytes) else None
                    if body is None or body.get(1) != expect:
                        self.seg_errors[None] = ("GET seq %d returned %s" % (
                            expect, "not a record" if body is None else
                            "seq %r" % body.get(1)))
                        return
                    if body.get(2) != prev:
                        self.fork = ("seq %d does not chain to the archived seq %d (prev "
                                     "differs): the recorder's chain was rewritten (fork)"
                                     % (expect, expect - 1))
                        return
                    batch.append((expect, data, body))
                    sm.record_bytes += len(data)
                    sm.bytes += len(data)
                    self.bar.update(len(data))
                    prev = _H(data)
                    expect += 1
                if len(batch) >= 512 or time.monotonic() - last_flush > PERSIST_SECONDS:
                    flush()
        finally:
            flush()

    # -- media -----------------------------------------------------------------------
    def _piece(self, chunk):
        room = max(256, self.c.max_frame - _RESP_OVERHEAD)
        if chunk <= room:
            return chunk
        k = -(-chunk // room)
        return -(-chunk // k)

    def _read_index(self, segs):
        """The device's chunk index file of each segment (READ what=1), read to its end
        (an empty answer); None for a segment whose index the device does not have."""
        room = max(256, self.c.max_frame - _RESP_OVERHEAD) // 32 * 32
        idx = {s["segment"]: bytearray() for s in segs}
        todo = {s["segment"]: 0 for s in segs}          # segment -> next offset
        while todo:
            reqs = []
            for S, off in todo.items():
                # enough pieces for the signed chunks, then one to find the end
                seg = next(s for s in segs if s["segment"] == S)
                need = max(0, seg["chunks"] * 32 - off)
                for k in range(max(1, -(-need // room))):
                    reqs.append(((S, off + k * room), {1: S, 2: 0, 3: off + k * room,
                                                       4: room, 5: 1}))
            got = dict(self._read_tolerant(reqs))
            nxt = {}
            for S, off in todo.items():
                while True:
                    b = got.get((S, off), b"")
                    if b is None:                # 404: no index file
                        if off == 0:
                            idx[S] = None
                        break
                    if not b:
                        break
                    idx[S] += b
                    if (S, off + len(b)) not in got:
                        nxt[S] = off + len(b)    # maybe more
                        break
                    off += len(b)
            todo = nxt
        return {S: (bytes(b) if b is not None else b"") for S, b in idx.items()}

    def _read_tolerant(self, reqs):
        """read_many of media bytes, with 404 answered as None instead of an exception."""
        for key, res in self.c.read_many(reqs, self.window, missing_ok=True):
            b = None if res is None else res.get(1)
            yield key, (None if res is None else
                        bytes(b) if isinstance(b, (bytes, bytearray)) else b"")

    def _pull_media(self, dev_id):
        a, sm = self.a, self.sm
        segs = [s for s in a.segments(dev_id, "partial")]
        if not segs:
            return
        todo = [s for s in segs if s["chunks"] > s["staged_chunks"] or s["closed_by"]
                is not None or s["object"] is None]
        if not todo:
            sm.segments_pending = len(segs)
            return
        self.bar.desc("%s index" % dev_id)
        idx = self._read_index(todo)
        jobs = []
        for s in todo:
            S, n = s["segment"], s["chunks"]
            entries = bytes(idx[S])
            s["_idx"] = entries
            if len(entries) < 32 * n:
                # an index shorter than signed: the chunks cannot be checked one by one
                s["_noidx"] = True
            else:
                r = ZERO
                for i in range(n):
                    r = _H(r + entries[32 * i:32 * i + 32])
                s["_noidx"] = r != s["root"]
            if not s["_noidx"]:
                r = ZERO
                for i in range(s["staged_chunks"]):
                    r = _H(r + entries[32 * i:32 * i + 32])
                if r != s["staged_root"]:
                    # what is staged does not continue what is signed now: start over
                    a.set_staged(dev_id, S, 0, 0, ZERO)
                    s.update(staged_length=0, staged_chunks=0, staged_root=ZERO)
            if s["staged_chunks"] > 0:
                sm.segments_resumed += 1
            jobs.append(s)
        total = 0
        for s in jobs:
            total += s["length"] - s["staged_length"] if s["closed_by"] is not None else \
                max(0, s["chunks"] * s["chunk"] - s["staged_length"])
        self.bar.add_total(total)
        self.bar.desc("%s media" % dev_id)
        for s in jobs:
            if s["_noidx"] and s["chunks"] > s["staged_chunks"]:
                self.say("segment %d of %s: the recorder's chunk index does not match the "
                         "signed root; checking the whole segment against the root instead"
                         % (s["segment"], dev_id))
        self._fetch_chunks(dev_id, jobs)
        for s in jobs:
            S = s["segment"]
            if S in self.seg_errors:
                a.set_segment_error(dev_id, S, self.seg_errors[S])
                continue
            row = a.segment(dev_id, S)
            row["_idx"] = s["_idx"]
            if row["closed_by"] is not None and row["staged_chunks"] == row["chunks"]:
                a.finish_segment(dev_id, row, s["_idx"])
                sm.segments_completed += 1
            else:
                if row["closed_by"] is None:     # open on the device: link the signed prefix
                    if a.publish_partial(dev_id, row, s["_idx"]) != s["object"]:
                        self._view_changed = True
                sm.segments_pending += 1

    def _fetch_chunks(self, dev_id, jobs):
        """READ every chunk the archive lacks, check each against the index as it comes
        (or, without a usable index, the whole run against the signed root), append the
        verified ones to staging in order, persist the verified length as it grows."""
        a, c, sm = self.a, self.c, self.sm
        st = {}
        for s in jobs:
            S = s["segment"]
            n = s["chunks"]
            if n <= s["staged_chunks"]:
                continue
            f = a.open_staging(dev_id, s)
            st[S] = {"seg": s, "f": f, "next": s["staged_chunks"], "len": s["staged_length"],
                     "root": s["staged_root"], "pieces": {}, "done": {}, "tries": {},
                     "dirty": 0, "t": time.monotonic(), "noidx": s["_noidx"],
                     "nohashes": [], "base": (s["staged_chunks"], s["staged_length"],
                                              s["staged_root"])}
        if not st:
            return

        def clen(s, i):
            C = s["chunk"]
            if s["closed_by"] is not None:
                return min(C, s["length"] - i * C)
            return C

        def chunk_reqs(S, i, front=False):
            s = st[S]["seg"]
            L = clen(s, i)
            P = self._piece(s["chunk"])
            reqs = [((S, i, off), {1: S, 2: i, 3: off, 4: min(P, L - off)})
                    for off in range(0, L, P)]
            return reqs

        def gen():
            for S in st:
                s = st[S]["seg"]
                for i in range(s["staged_chunks"], s["chunks"]):
                    if S in self.seg_errors:
                        break
                    yield from chunk_reqs(S, i)

        pl = c.pipeline(self.window)
        it = gen()
        more = True
        retry = []        # requests to send before the rest (re-reads)

        def persist(S, force=False):
            x = st[S]
            now = time.monotonic()
            if x["dirty"] and (force or x["dirty"] >= PERSIST_BYTES
                               or now - x["t"] >= PERSIST_SECONDS):
                x["f"].flush()
                os.fsync(x["f"].fileno())
                if not x["noidx"]:
                    a.set_staged(dev_id, S, x["len"], x["next"], x["root"])
                x["dirty"] = 0
                x["t"] = now

        def accept(S, i, data):
            x = st[S]
            s = x["seg"]
            h = _H(data)
            if not x["noidx"]:
                want = s["_idx"][32 * i:32 * i + 32]
                if h != want:
                    tries = x["tries"].get(i, 0) + 1
                    x["tries"][i] = tries
                    sm.chunks_reread += 1
                    if tries >= CHUNK_TRIES:
                        self.seg_errors[S] = (
                            "segment %d: chunk %d read %d times, never matching its signed hash "
                            "(the recorder's media is damaged); not stored" % (S, i, tries))
                        return
                    retry.extend(chunk_reqs(S, i))
                    return
            x["done"][i] = (data, h)
            while x["next"] in x["done"]:
                d, hh = x["done"].pop(x["next"])
                x["f"].write(d)
                x["root"] = _H(x["root"] + hh)
                x["len"] += len(d)
                x["next"] += 1
                x["dirty"] += len(d)
            persist(S)

        try:
            while True:
                while pl.queued < self.window and (retry or more):
                    if retry:
                        key, args = retry.pop(0)
                    else:
                        try:
                            key, args = next(it)
                        except StopIteration:
                            more = False
                            break
                    if key[0] in self.seg_errors:
                        continue
                    pl.submit(key, READ, args)
                if not pl.busy:
                    break
                key, resp = pl.next()
                S, i, off = key
                if S in self.seg_errors:
                    continue
                x = st[S]
                status = resp.get(1)
                if status == 404:
                    self.seg_errors[S] = ("segment %d: the recorder has no media for chunk %d "
                                          "(%s)" % (S, i, resp.get(3) or "404"))
                    continue
                if status != 0:
                    raise LinkError(status, resp.get(3) or "", READ, key)
                b = (resp.get(2) or {}).get(1)
                b = bytes(b) if isinstance(b, (bytes, bytearray)) else b""
                L = clen(x["seg"], i)
                asked = min(self._piece(x["seg"]["chunk"]), L - off)
                if not b and asked:
                    self.seg_errors[S] = ("segment %d: the recorder's media file ends before "
                                          "chunk %d (offset %d): shorter than signed"
                                          % (S, i, off))
                    continue
                if len(b) > asked:
                    b = b[:asked]
                pieces = x["pieces"].setdefault(i, {})
                pieces[off] = b
                sm.media_bytes += len(b)
                sm.bytes += len(b)
                self.bar.update(len(b))
                if len(b) < asked:      # the device sent less than asked: ask for the rest
                    retry.insert(0, ((S, i, off + len(b)), {1: S, 2: i, 3: off + len(b),
                                                            4: asked - len(b)}))
                    continue
                if sum(len(p) for p in pieces.values()) >= L:
                    data = b"".join(pieces[o] for o in sorted(pieces))[:L]
                    del x["pieces"][i]
                    accept(S, i, data)
        finally:
            for S, x in st.items():
                if x["noidx"]:
                    continue
                try:
                    persist(S, force=True)
                finally:
                    x["f"].close()
        for S, x in st.items():
            if not x["noidx"] or S in self.seg_errors:
                continue
            s = x["seg"]
            x["f"].close()
            if x["root"] != s["root"]:
                self.seg_errors[S] = ("segment %d: the media read from the recorder does not "
                                      "match the signed root, and its chunk index does not "
                                      "either: the recorder's media is damaged; not stored" % S)
                a.open_staging(dev_id, dict(s, staged_length=x["base"][1])).close()
                continue
            a.set_staged(dev_id, S, x["len"], x["next"], x["root"])

    # -- view, verification, receipt ---------------------------------------------------
    def _commit_and_verify(self, dev_id, head, pinned, sk, row):
        from .verify import NOT_OK, OK, OK_WITH_MISSING_INFO, verify_store
        a, sm = self.a, self.sm
        changed = a.commit_view(dev_id, None if (sm.head_went_back or self.fork) else head)
        changed = changed or sm.segments_completed or self._view_changed
        prev = [o for o in a.offloads(dev_id) if o["id"] != self.oid and o["verdict"]]
        if not changed and not self.seg_errors and not self.fork and not sm.head_went_back \
                and prev and prev[-1]["status"] == "ok" and prev[-1]["verdict"] in (
                    OK, OK_WITH_MISSING_INFO):
            # nothing new in the view since it was verified: no receipt to give, and
            # verifying the whole history again would only cost time
            sm.verdict = sm.store_verdict = prev[-1]["verdict"]
            sm.status = "ok"
            sm.receipt_skipped = ("nothing new (the archived store is unchanged since offload "
                                  "%d, which verified it %s; `sealcam verify ARCHIVE` checks "
                                  "it again)" % (prev[-1]["id"], prev[-1]["verdict"]))
            return
        rep = verify_store(a.view_dir(dev_id), pinned, progress=False)
        sm.store_verdict = rep.verdict
        bad_rows = [r for r in rep.records if r.verdict == NOT_OK]
        problems = []
        if rep.verdict not in (OK, OK_WITH_MISSING_INFO) or bad_rows:
            problems.append("the archived store of %s verifies %s%s" % (
                dev_id, rep.verdict, (": " + rep.reasons[0]) if rep.reasons else ""))
        if self.fork:
            problems.append(self.fork)
        for S, why in self.seg_errors.items():
            problems.append(why)
        last = a.device(dev_id)["last_head_seq"]
        if last is not None and (rep.chain_end is None or rep.chain_end < last):
            problems.append("the archived chain ends at seq %s, before the last signed head "
                            "seq %d" % (rep.chain_end, last))
        if sm.head_went_back:
            problems.append("the recorder's signed head went back (seq %d < %d)"
                            % (sm.head_seq, max(x for x in (sm.archive_head_seq,
                                                             a.max_seq(dev_id)) if x is not None)))
        sm.errors.extend(problems)
        if problems:
            sm.verdict = NOT_OK if (self.fork or sm.head_went_back or bad_rows
                                    or rep.verdict == NOT_OK or self.seg_errors) else rep.verdict
            sm.receipt_skipped = "not verified OK"
            sm.exit_code, sm.status = EXIT_NOT_OK, "not_ok"
            return
        sm.verdict = rep.verdict
        sm.status = "ok"
        self._send_receipt(dev_id, sk)

    def _send_receipt(self, dev_id, sk):
        a, c, sm = self.a, self.c, self.sm
        rows = [(r["seq"], r["type"], r["segment"]) for r in a.records_after(dev_id, -1)]
        cov = covered_seq(rows)
        segs = {s["segment"]: s for s in a.segments(dev_id)}
        if cov is not None:
            # defensive: every segment up to it must be complete in the archive
            for S, s in segs.items():
                if S <= cov and s["state"] != "complete":
                    cov = min(cov, S - 1)
        if cov is None or cov < 0:
            sm.receipt_skipped = "nothing to cover: no record at which every segment is closed"
            return
        prev = a.last_receipt(dev_id, "accepted")
        prev_cov = prev["covered"] if prev else -1
        new = [t for s, t, _ in rows if prev_cov < s <= cov]
        if cov <= prev_cov or all(t == RECEIPT_T for t in new):
            sm.receipt_skipped = "nothing new to cover (receipt %d covers seq %d)" % (
                prev["number"], prev_cov) if prev else "nothing new to cover"
            return
        number = a.next_receipt_number(dev_id)
        rec = a.record(dev_id, cov)
        receipt = make_receipt(sk, dev_id, cov, rec["hash"], number, a.archive_id)
        a.add_receipt(dev_id, number, cov, rec["hash"], receipt)   # durable before sending
        since = a.max_seq(dev_id) + 1
        try:
            seq, how = c.receipt(receipt, since)
        except LinkError as e:
            a.update_receipt(dev_id, number, "refused", message=str(e))
            why = {403: "the recorder does not trust this station's receipts",
                   409: "the recorder holds a receipt with this number or a higher one"}
            raise OffloadError(EXIT_AUTH, "receipt %d refused: %s (%s)" % (
                number, why.get(e.status, "error"), e), "receipt_refused")
        a.update_receipt(dev_id, number, "accepted", seq)
        sm.receipt = {"number": number, "covered": cov, "seq": seq, "confirmed_by": how}
        # keep the chain complete: pull the RECEIPT record (and anything before it)
        try:
            held = a.max_seq(dev_id)
            self._pull_records(dev_id, held)
            a.commit_view(dev_id, None)
        except (LinkDown, LinkError) as e:
            sm.errors.append("the RECEIPT record was not pulled (%s); the next offload "
                             "pulls it" % e)


def offload(port, archive_dir, **kw) -> Summary:
    """Offload the recorder on ``port`` into the archive ``archive_dir``; see the module
    doc. Keywords: register, window, timeout, progress, host_name, say."""
    return _Offload(port, archive_dir, **kw).run()


# --- CLI ---------------------------------------------------------------------------------

def _fmt_summary(sm: Summary) -> str:
    out = []
    out.append("device   %s   key %s%s" % (sm.device or "?", sm.fingerprint or "?",
                                         "   (registered now)" if sm.registered else ""))
    out.append("pulled   %d records (%s), %s of media in %.1f s: %.2f MB/s (%.2f MB/s "
               "including verification)" % (
                   sm.records_pulled, _mb(sm.record_bytes), _mb(sm.media_bytes),
                   sm.transfer_seconds, sm.transfer_mb_per_s, sm.mb_per_s))
    seg = "%d segment%s completed" % (sm.segments_completed,
                                       "" if sm.segments_completed == 1 else "s")
    if sm.segments_resumed:
        seg += ", %d resumed" % sm.segments_resumed
    if sm.segments_pending:
        seg += ", %d still open or unfinished" % sm.segments_pending
    if sm.chunks_reread:
        seg += ", %d chunk re-reads" % sm.chunks_reread
    out.append("media    " + seg)
    out.append("head     seq %s (archive had %s)%s" % (
        sm.head_seq, "none" if sm.archive_head_seq is None else "seq %d" % sm.archive_head_seq,
        "   *** HEAD WENT BACK: records were removed from the recorder ***"
        if sm.head_went_back else ""))
    out.append("VERDICT: %s%s" % (sm.verdict or "-", "" if sm.store_verdict in (None,
                                                                             sm.verdict)
                                  else " (archived store: %s)" % sm.store_verdict))
    if sm.receipt:
        out.append("receipt  %d sent, covers seq 0..%d (RECEIPT record seq %s)" % (
            sm.receipt["number"], sm.receipt["covered"], sm.receipt["seq"]))
    elif sm.receipt_skipped:
        out.append("receipt  none: %s" % sm.receipt_skipped)
    for e in sm.errors:
        out.append("  - " + e)
    return "\n".join(out) + "\n"


def _mb(n):
    return "%.2f MB" % (n / 1e6) if n >= 100_000 else "%d bytes" % n


def run_offload(args) -> int:
    """`sealcam offload` (args from the CLI parser). Returns the exit code."""
    def on_term(signum, frame):
        raise _Interrupted("signal %d" % signum)

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        sm = None
        try:
            sm = offload(args.port, args.archive, register=args.register, window=args.window,
                         timeout=args.timeout, progress=args.progress)
        except KeyboardInterrupt:
            print("sealcam offload: interrupted", file=sys.stderr)
            return EXIT_LINK
    finally:
        signal.signal(signal.SIGTERM, old)
    if args.json:
        json.dump(sm.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif sm.device is not None and sm.status not in ("unknown_device",):
        sys.stdout.write(_fmt_summary(sm))
    if sm.exit_code != EXIT_OK or (not args.json and sm.device is None):
        for e in sm.errors:
            print("sealcam offload: %s" % e, file=sys.stderr)
    sys.stdout.flush()
    return sm.exit_code
