"""Pulling a recorder's records and media into the archive, each checked as it arrives
(SPEC §8.4, §8.5), for `sealcam offload` (host_tools/offload.py).

Everything the recorder sends is bounded by what its signed head and signed records allow:

- LIST pages (Client.list_iter): seqs consecutive from what the archive holds, never past
  the signed head, at most a page at a time, each page that says `more` brings one;
- GET: each record at most MAX_RECORD bytes, parsed strictly (host_tools.records), its
  signature checked with the registered key and its link to the previous record's hash
  checked before it reaches SQLite; a record that fails goes to quarantine, never to the
  device's history;
- index READ: exactly chunks x 32 bytes (the signed chunk count), no more, streamed to a
  staging file as it arrives (its chain root computed on the way), never held in memory:
  at most INDEX_RAM bytes of index answers at once, the segments a group at a time
  (SEG_GROUP segments, GROUP_INDEX bytes of signed index), whatever the recorder claims;
- media READ: a segment's signed chunk size at most MAX_CHUNK, its chunk count at most
  MAX_CHUNKS, its signed length within chunks x chunk size and within the storage the
  recorder reports (AUTH result 7); a READ answer never longer than asked.

Requests are made lazily (one LIST page of GETs at a time; READs from a generator), and
the link bounds every wait (host_tools/link.py): no answer makes the station loop or grow.
"""
from __future__ import annotations

import hashlib
import os
import time

from . import records as R
from .archive import ZERO, ArchiveTampered
from .archive.durable import makedirs
from .link import GET, READ, LinkError, ProtocolViolation, SeqGap

__all__ = ["Puller", "CHUNK_TRIES", "PERSIST_BYTES", "PERSIST_SECONDS", "MAX_CARD",
           "BadRecords"]

CHUNK_TRIES = 3                # reads of a chunk whose hash does not match before giving up
PERSIST_BYTES = 8 << 20        # fsync staging + persist its verified length this often
PERSIST_SECONDS = 1.0
_RESP_OVERHEAD = 48            # bytes of a READ response besides the data
MAX_CARD = 1 << 41             # storage believed when the recorder reports none (2 TiB)
LIST_PAGE = 1000
MAX_INDEX = 32 * R.MAX_CHUNKS  # bytes of one segment's chunk index
INDEX_RAM = 8 << 20            # bytes of chunk index answers held in memory at once (§8.5)
SEG_GROUP = 64                 # segments whose index and media are pulled together
GROUP_INDEX = 64 << 20         # bytes of signed index one group may claim (more: one alone)


def _H(b):
    return hashlib.sha256(b).digest()


class _Index:
    """One segment's chunk index, appended to a staging file as it arrives (never held in
    memory), its chain root computed on the way; ``entry(i)`` reads entry i back."""

    def __init__(self, path, mark=0):
        self.path = path
        self.n, self.root, self.carry = 0, ZERO, b""
        self.mark, self.mark_root = mark, ZERO       # the root after ``mark`` entries
        self.missing = False                         # the device has no index (404)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC
                     | getattr(os, "O_NOFOLLOW", 0), 0o644)
        self.f = os.fdopen(fd, "r+b", buffering=0)

    def add(self, b):
        """Append index bytes: whole 32-byte entries go to the file and the chain root."""
        if self.carry:
            b = self.carry + b
        k = len(b) // 32 * 32
        self.carry = b[k:]
        if not k:
            return
        view = memoryview(b)[:k]
        while view:
            view = view[self.f.write(view):]
        r, n, mark = self.root, self.n, self.mark
        sha = hashlib.sha256                  # the chain's hot loop: no helper call per entry
        for i in range(0, k, 32):
            r = sha(r + b[i:i + 32]).digest()
            n += 1
            if n == mark:
                self.mark_root = r
        self.root, self.n = r, n

    def entry(self, i):
        return os.pread(self.f.fileno(), 32, 32 * i)

    def entry_run(self, i, m):
        """Entries i .. i+m-1, joined (the bulk path checks a block of chunks at once)."""
        return os.pread(self.f.fileno(), 32 * m, 32 * i)

    def drop(self):
        """Close and remove the staging file (the archive keeps its own copy, an object)."""
        try:
            self.f.close()
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


class BadRecords(Exception):
    """Records of this session that failed verification (kept in quarantine)."""

    def __init__(self, reason, recs, seq):
        super().__init__(reason)
        self.reason, self.records, self.seq = reason, recs, seq


class Puller:
    """Mixin of _Offload: needs self.a (Archive), self.c (Client), self.sm (Summary),
    self.bar, self.window, self.oid, self.seg_errors, self.say, self.pinned,
    self.capacity, self.fork."""

    def _check_record(self, dev_id, prev_seq, prev_hash, data):
        """The record ``data`` checked as it arrives: strictly parsed, signed with the
        registered key, the next link of the chain. Returns the Record; BadRecords (a
        record that is not valid or not signed) or sets self.fork (a validly signed record
        that does not continue the archived chain)."""
        seq = 0 if prev_seq is None else prev_seq + 1
        if not isinstance(data, bytes):
            raise ProtocolViolation("GET seq %d returned no record bytes" % seq)
        if len(data) > R.MAX_RECORD:
            raise BadRecords("GET seq %d returned %d bytes, more than a record may have "
                             "(%d)" % (seq, len(data), R.MAX_RECORD), [data[:R.MAX_RECORD]], seq)
        try:
            rec = R.parse(data)
        except R.RecordError as e:
            raise BadRecords("GET seq %d returned a record that is not valid: %s"
                             % (seq, R.printable(str(e))), [data], seq) from None
        if rec.seq != seq:
            raise BadRecords("GET seq %d returned seq %r" % (seq, rec.seq), [data], seq)
        if rec.body.get(R.K.DEVICE) != dev_id:
            raise BadRecords("seq %d names device %s, not %s" % (
                seq, R.printable(str(rec.body.get(R.K.DEVICE))), dev_id), [data], seq)
        try:
            ok = R.check_signature(self.pinned, rec)
        except ValueError:
            ok = False
        if not ok:
            raise BadRecords("seq %d does not verify with the registered key of %s"
                             % (seq, dev_id), [data], seq)
        why = R.check_next(prev_seq, prev_hash, rec)
        if why is not None:
            self.fork = ("seq %d does not chain to the archived seq %d (%s): the recorder's "
                         "chain was rewritten (fork)" % (seq, seq - 1, why))
            raise BadRecords(self.fork, [data], seq)
        return rec

    # -- records -----------------------------------------------------------------------
    def _pull_records(self, dev_id, held, upto):
        """Pull seqs held+1 .. upto (the signed head), LIST page by page, the GETs of a
        page in a window, each record checked as it arrives, stored in batches."""
        a, c, sm = self.a, self.c, self.sm
        since = 0 if held is None else held + 1
        if upto is None or upto < since:
            return
        self.bar.desc("%s records" % dev_id)
        prev_seq = held
        prev_hash = a.record(dev_id, held)["hash"] if held is not None else ZERO
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
            while prev_seq is None or prev_seq < upto:
                start = 0 if prev_seq is None else prev_seq + 1
                page = []
                gap = None
                try:
                    for e in c.list_iter(start, upto, LIST_PAGE):
                        page.append(e)
                        if len(page) >= LIST_PAGE:
                            break
                except SeqGap as g:
                    gap = g                     # pull up to it, then stop
                if not page and gap is not None:
                    self._gap(dev_id, gap)
                    return
                if not page:
                    raise ProtocolViolation("LIST from seq %d lists nothing, but the signed "
                                            "head is seq %d" % (start, upto))
                self.bar.add_total(sum(e[2] for e in page))
                ready = {}
                for seq, res in c.read_many(((e[0], {1: e[0]}) for e in page), self.window,
                                            op=GET):
                    ready[seq] = res.get(1)
                    while (0 if prev_seq is None else prev_seq + 1) in ready:
                        data = ready.pop(0 if prev_seq is None else prev_seq + 1)
                        rec = self._check_record(dev_id, prev_seq, prev_hash, data)
                        batch.append((rec.seq, data, rec.body))
                        sm.record_bytes += len(data)
                        sm.bytes += len(data)
                        self.bar.update(len(data))
                        prev_seq, prev_hash = rec.seq, rec.hash
                    if len(batch) >= 512 or time.monotonic() - last_flush > PERSIST_SECONDS:
                        flush()
                if gap is not None:
                    self._gap(dev_id, gap)
                    return
        finally:
            flush()

    def _gap(self, dev_id, g):
        """The recorder lacks seqs the archive does not hold either: records were removed
        from its card (a STORE_ALERT names them); the history cannot go on past them."""
        self.seg_errors[None] = (
            "records removed: the recorder %s does not have seqs %d..%d (its card lost them; "
            "seq %d is next, see its alerts) and the archive never held them; nothing after "
            "seq %d is stored, no receipt: have the recorder inspected"
            % (dev_id, g.missing, g.next - 1, g.next, g.missing - 1))

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
                                      "type = ?", (dev_id, R.RECEIPT)):
            b = R.decode(data).body or {}
            if isinstance(b.get(26), bytes):
                found[b[26]] = seq
        for r in sent:
            if r["receipt_hash"] in found:
                a.update_receipt(dev_id, r["number"], "accepted", found[r["receipt_hash"]])


    # -- media -----------------------------------------------------------------------
    def _staged_digest(self, S, row):
        """The SHA-256 (hex) of segment S's staging file if it was computed as the file was
        written (the bulk path, offload_bulk.py), else None: finish_segment hashes it."""
        return None

    def _piece(self, chunk):
        room = max(256, self.c.max_frame - _RESP_OVERHEAD)
        if chunk <= room:
            return chunk
        k = -(-chunk // room)
        return -(-chunk // k)

    def _index_file(self, dev_id, s, suffix):
        """A fresh staging file for segment ``s``'s chunk index (SPEC §8.5)."""
        d = self.a.staging_dir(dev_id)
        makedirs(d)
        if os.path.islink(d):
            raise ArchiveTampered("staging/%s in the archive %s is a symbolic link: the station "
                                  "never writes through it" % (dev_id, self.a.root))
        return _Index(self.a.staging_path(dev_id, s) + suffix, s["staged_chunks"])

    def _read_index(self, dev_id, segs, idx):
        """The device's chunk index of each segment (READ what=1): exactly the signed
        chunks x 32 bytes, no more (SPEC §8.5); shorter if the file ends first; ``missing``
        for a segment whose index the device does not have (404). Each index streams to a
        staging file (an _Index, put in ``idx`` as soon as it exists: the caller drops the
        files), at most INDEX_RAM bytes asked at a time."""
        room = max(256, self.c.max_frame - _RESP_OVERHEAD) // 32 * 32
        for s in segs:
            idx[s["segment"]] = self._index_file(dev_id, s, ".idx")
        todo = {s["segment"]: 0 for s in segs}          # segment -> bytes held
        want = {s["segment"]: 32 * s["chunks"] for s in segs}
        while todo:
            batch, budget = [], INDEX_RAM
            for S, off in todo.items():
                for o in range(off, want[S], room):
                    if budget <= 0:
                        break
                    k = min(room, want[S] - o)
                    batch.append(((S, o), {1: S, 2: 0, 3: o, 4: k, 5: 1}))
                    budget -= k
                if budget <= 0:
                    break
            asked = {key: args[4] for key, args in batch}
            got = {}
            for key, b in self._read_tolerant(iter(batch)):
                got[key] = b if b is None else b[:asked[key]]   # never more than asked
            nxt = {}
            for S, off in todo.items():
                while off < want[S]:
                    if (S, off) not in got:      # not asked yet, or after a short answer
                        nxt[S] = off
                        break
                    b = got.pop((S, off))
                    if b is None:                # 404: no index file
                        idx[S].missing = off == 0
                        break
                    if not b:
                        break                    # the file ends before the signed chunks
                    idx[S].add(b)
                    off += len(b)
            got = None
            todo = nxt

    def _bound_segment(self, s):
        """Why a segment's signed sizes are beyond what the station accepts, or None."""
        C, n, L = s["chunk"], s["chunks"], s["length"]
        cap = self.capacity
        if not (isinstance(C, int) and 0 < C <= R.MAX_CHUNK):
            return "a chunk size of %r bytes (1 to %d accepted)" % (C, R.MAX_CHUNK)
        if not (isinstance(n, int) and 0 <= n <= R.MAX_CHUNKS):
            return "%r chunks (at most %d accepted)" % (n, R.MAX_CHUNKS)
        if not (isinstance(L, int) and 0 <= L <= n * C):
            return "a length of %r bytes for %d chunks of %d bytes" % (L, n, C)
        if s["closed_by"] is not None and n > 0 and L <= (n - 1) * C:
            # the closing record's length must reach into its last chunk (chunks = ceil(L / C))
            return "a length of %d bytes, too short for %d chunks of %d bytes" % (L, n, C)
        if (n - 1) * C > cap or L > cap:
            return ("%d chunks of %d bytes, more than the %d bytes of storage the recorder "
                    "reports" % (n, C, cap))
        return None

    def _read_tolerant(self, reqs):
        """read_many of media bytes, with 404 answered as None instead of an exception."""
        for key, res in self.c.read_many(reqs, self.window, missing_ok=True):
            b = None if res is None else res.get(1)
            yield key, (None if res is None else
                        bytes(b) if isinstance(b, (bytes, bytearray)) else b"")

    def _pull_media(self, dev_id):
        a, sm = self.a, self.sm
        segs = [s for s in a.segments(dev_id, "partial")]
        d = a.staging_dir(dev_id)
        if os.path.isdir(d) and not os.path.islink(d):
            for name in os.listdir(d):       # index files a killed run left behind
                if name.endswith((".idx", ".idxm")):
                    try:
                        os.unlink(os.path.join(d, name))
                    except OSError:
                        pass
        if not segs:
            return
        todo = []
        for s in segs:
            if not (s["chunks"] > s["staged_chunks"] or s["closed_by"] is not None
                    or s["object"] is None):
                continue
            why = self._bound_segment(s)
            if why is not None:
                self.seg_errors[s["segment"]] = (
                    "segment %d: its signed records claim %s: not read" % (s["segment"], why))
                a.set_segment_error(dev_id, s["segment"], self.seg_errors[s["segment"]])
                continue
            todo.append(s)
        if not todo:
            sm.segments_pending = len(segs)
            return
        groups, g, claim = [], [], 0
        for s in todo:
            if g and (len(g) >= SEG_GROUP or claim + 32 * s["chunks"] > GROUP_INDEX):
                groups.append(g)
                g, claim = [], 0
            g.append(s)
            claim += 32 * s["chunks"]
        groups.append(g)
        for g in groups:
            idx = {}
            try:
                self._pull_group(dev_id, g, idx)
            finally:
                for ix in idx.values():
                    ix.drop()

    def _pull_group(self, dev_id, todo, idx):
        """Index and media of a group of segments; ``idx`` collects the index files the
        caller drops."""
        a, sm = self.a, self.sm
        self.bar.desc("%s index" % dev_id)
        self._read_index(dev_id, todo, idx)
        jobs = []
        for s in todo:
            S, n = s["segment"], s["chunks"]
            ix = s["_idx"] = idx[S]
            if ix.n < n:
                # an index shorter than signed: the chunks cannot be checked one by one
                s["_noidx"] = True
            else:
                s["_noidx"] = ix.root != s["root"]
            if s["_noidx"]:
                ix.drop()                        # the recorder's index is of no use
            elif ix.mark_root != s["staged_root"]:
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
        self._fetch_chunks(dev_id, jobs, idx)
        for s in jobs:
            S = s["segment"]
            if S in self.seg_errors:
                a.set_segment_error(dev_id, S, self.seg_errors[S])
                continue
            row = a.segment(dev_id, S)
            ix = s["_idx"]
            if row["closed_by"] is not None and row["staged_chunks"] == row["chunks"]:
                a.finish_segment(dev_id, row, ix.path, digest=self._staged_digest(S, row))
                sm.segments_completed += 1
            else:
                if row["closed_by"] is None:     # open on the device: link the signed prefix
                    if a.publish_partial(dev_id, row, ix.path) != s["object"]:
                        self._view_changed = True
                sm.segments_pending += 1

    def _fetch_chunks(self, dev_id, jobs, idx):
        """READ every chunk the archive lacks, check each against the index as it comes
        (or, without a usable index, the whole run against the signed root, the index made
        from the media streamed to a staging file put in ``idx``), append the verified ones
        to staging in order, persist the verified length as it grows."""
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
                     "base": (s["staged_chunks"], s["staged_length"], s["staged_root"])}
            if s["_noidx"]:
                # the index made from the media: the staged prefix's, then each new chunk's
                made = idx[S] = st[S]["made"] = self._index_file(dev_id, s, ".idxm")
                C = s["chunk"]
                with open(a.staging_path(dev_id, s), "rb") as g:
                    for _ in range(s["staged_chunks"]):
                        made.add(_H(g.read(C)))
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
                want = s["_idx"].entry(i)
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
                if x["noidx"]:
                    x["made"].add(hh)
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
            # the recorder's index was wrong but the media matches the signed root: the
            # archive keeps the index made from the media, never the recorder's
            s["_idx"] = x["made"]
            self.card_problems.append(
                "segment %d: the recorder's chunk index does not match the signed root (the "
                "card was changed or damaged); its media matches the root and is kept with an "
                "index made from it; no receipt: have the recorder inspected" % S)
            a.set_staged(dev_id, S, x["len"], x["next"], x["root"])

