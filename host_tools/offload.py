"""`sealcam offload`: pull a docked recorder's records and media into the station archive,
verify them, and hand the recorder a custody receipt (SPEC §8, §9).

    summary = offload("/dev/ttyACM0", "/srv/sealcam", register=False, window=8)
    summary.exit_code, summary.to_json()

Steps: HELLO; the device must be registered (``register=FINGERPRINT`` registers an unknown
device whose proven key has that fingerprint, from its label: what `offload --register
--fingerprint FP` passes; ``register=True``, kept for the tests' fake recorders, trusts the
key it proves, which the command line never does; `sealcam provision` is the normal way);
AUTH both ways: the station signs the session's
transcript, the recorder answers its own signature, checked with the registered key before
anything the recorder says is used (host_tools/session.py); the signed head (AUTH result)
is compared with the archive's (a head that went back is flagged and no receipt is sent);
records from what the archive lacks up to the signed head, each checked as it arrives
(strict parse, signature, chain link) before it is stored; for each unfinished segment the
chunk index (exactly the signed chunks), its chain root checked against the signed root,
then only the chunks the archive lacks, windowed, each checked against its index entry
before it is stored (host_tools/offload_pull.py); the store view is written and verified
with the offline verifier and the registered key; only if it is OK (or
OK_WITH_MISSING_INFO with no NOT_OK record) a receipt covers every record up to the last
one at which no segment is open (host_tools/receipts.py). Records that fail verification
are kept in quarantine (Archive.quarantine), never in the device's history.

Exit codes: 0 ok; 1 NOT_OK (verification failed, quarantine, head went back, another key,
a recorder that broke the protocol; no receipt); 3 usage, port or archive error, or the
port is not a sealcam recorder; 4 unknown device; 5 authentication failed (the station is
not trusted, or the recorder did not prove the registered key; a recorder that proves a
key `station rekey` retired has what its old chain holds past that key's history kept in
quarantine) or receipt refused; 6 link broken (everything verified so far is kept: run
again to resume); 7 the recorder is revoked (`sealcam station revoke`: it proved its key,
what it sent is in quarantine, no receipt; also when the signed log revoked it while the
offload ran: nothing more stored, no receipt); 130 interrupted (Ctrl-C; also resumable).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass, field

from . import keys
from . import records as R
from .archive import Archive, ArchiveError, DeviceLocked, NotAnArchive
from .link import Client, LinkDown, LinkError, PortError, ProtocolViolation
from .offload_bulk import Bulk
from .offload_pull import BadRecords, MAX_CARD, Puller
from .receipts import Receipts, covered_seq, make_receipt
from .session import (EXIT_AUTH, EXIT_INTERRUPTED, EXIT_LINK, EXIT_NOT_OK, EXIT_OK,
                      EXIT_UNKNOWN_DEVICE, EXIT_USAGE, SessionError, auth_step, hello_step)
from .session import (EXIT_REVOKED, RetiredKey, Revoked, firmware_text, note_firmware,
                      quarantine_retired, quarantine_revoked)
from .station import StationError
from .stationconfig import fmt_mb

__all__ = ["offload", "run_offload", "Summary", "OffloadError", "EXIT_OK", "EXIT_NOT_OK",
           "EXIT_USAGE", "EXIT_UNKNOWN_DEVICE", "EXIT_AUTH", "EXIT_LINK", "EXIT_INTERRUPTED",
           "make_receipt", "covered_seq"]

OffloadError = SessionError
MIN_RECORD = 96                # bytes: no record is smaller (signature 64, header, body)


class _Interrupted(Exception):
    pass


@dataclass
class Summary:
    port: str
    archive: str
    device: str | None = None
    fingerprint: str | None = None
    firmware: str | None = None          # version and firmware id from AUTH (SPEC §13)
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
    alerts: list = field(default_factory=list)   # what the recorder found at boot (AUTH 14)
    quarantine: str | None = None        # id of the quarantine holding what failed
    verified_from: int | None = None     # seq of the earlier verified head the check of the
                                         # archived store was anchored on (None: in full)
    # the bulk offload (SPEC §8.8, host_tools/offload_bulk.py)
    media_path: str | None = None        # "bulk" (media read from the card as a disk),
                                         # "serial" (READ over the link), None: none pulled
    volume: str | None = None            # the folder the media was read from
    bulk_bytes: int = 0                  # media bytes read from the volume, each checked
    bulk_segments: int = 0               # segments staged from the volume
    bulk_fallbacks: list = field(default_factory=list)  # segments read over the link after
                                         # the volume failed them, and why
    bulk_note: str | None = None         # why the bulk path was not used
    status: str = "running"
    errors: list = field(default_factory=list)
    exit_code: int = EXIT_OK

    def to_json(self):
        return asdict(self)


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

class _Offload(Bulk, Puller, Receipts):
    def __init__(self, port, archive_dir, *, register=False, window=8, timeout=2.0,
                 slow_timeout=None, progress=None, host_name=None, say=None, client=None,
                 bulk="auto", volume=None):
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
        self.card_problems = []    # what was wrong on the card though the evidence verified
        self.fork = None
        self.pinned = None         # the key the recorder proved (the registered one)
        self.capacity = MAX_CARD   # storage the recorder reports (bounds media sizes)
        self.auth_result = None
        self._own_client = client is None
        self._t_pull = self._t_transfer = None
        self._view_changed = False
        self.bulk, self.volume = bulk, volume      # offload_bulk.Bulk

    def fail(self, code, msg, status):
        raise SessionError(code, msg, status)

    def run(self) -> Summary:
        sm = self.sm
        try:
            try:
                self._run()
            except SessionError as e:
                sm.errors.append(e.message)
                sm.exit_code, sm.status = e.code, e.status
                sm.device = sm.device or e.device
            except ProtocolViolation as e:
                sm.errors.append("the recorder %s broke the dock protocol (%s): the station "
                                 "stopped; what was verified before is kept, nothing more is "
                                 "receipted; have the recorder inspected"
                                 % (sm.device or "on " + self.port, e))
                sm.exit_code, sm.status, sm.verdict = EXIT_NOT_OK, "not_ok", "NOT_OK"
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
            except KeyboardInterrupt:
                sm.errors.append("interrupted (Ctrl-C); everything verified so far is kept: run "
                                 "the same command again to resume")
                sm.exit_code, sm.status = EXIT_INTERRUPTED, "interrupted"
            except (ArchiveError, OSError) as e:
                # the archive (not the recorder) failed: a disk error, a full or read-only
                # disk, a link where a folder belongs
                sm.errors.append("the archive %s could not be written (%s); what was stored "
                                 "before is kept: fix it and run the same command again"
                                 % (os.path.abspath(self.archive_dir), e))
                sm.exit_code, sm.status = EXIT_USAGE, "error"
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
                if getattr(self, "_was_exposed", False) and not self._own_client:
                    try:      # dock goes on with this session: end the exposure (§8.8)
                        self._unexpose()
                    except Exception:
                        pass  # the session's end (HELLO, idle timeout) ends it too
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
            sk = a.station_key()
        except (NotAnArchive, StationError) as e:
            self.fail(EXIT_USAGE, str(e), "error")
        if self.c is None:
            try:
                self.c = Client(self.port, timeout=self.timeout,
                                slow_timeout=self.slow_timeout)
            except PortError as e:
                self.fail(EXIT_USAGE, str(e), "error")
        c = self.c
        self.t0 = time.monotonic()
        dev_id, row = hello_step(c, a, self.host_name, register=self.register)
        sm.device, sm.max_frame = dev_id, c.max_frame
        try:
            self.lock = a.lock_device(dev_id)
        except DeviceLocked as e:
            self.fail(EXIT_USAGE, str(e), "error")
        self.oid = sm.offload_id = a.start_offload(dev_id, self.port)
        try:
            self.pinned, res = auth_step(c, a, dev_id, row, self.host_name, expect=(
                self.register if isinstance(self.register, str) else None))
        except Revoked as e:        # `station revoke`: what it sends goes to quarantine, exit 7
            quarantine_revoked(self, dev_id, e)
        except RetiredKey as e:     # `station rekey` retired its key: what it holds past the
            quarantine_retired(self, dev_id, e)     # old history, in quarantine (exit 5)
        self.auth_result = res
        pinned = self.pinned
        sm.fingerprint = keys.fingerprint(pinned)
        sm.firmware = firmware_text(res)
        storage = res.get(7)
        if isinstance(storage, list) and len(storage) == 2 and type(storage[1]) is int \
                and storage[1] > 0:
            self.capacity = min(storage[1], MAX_CARD)
        self._alerts(res.get(14), dev_id)
        # the signed head
        head = res.get(5)
        if head is None:
            self.fail(EXIT_NOT_OK, "the recorder %s reports no signed head (an empty store, "
                      "or its head was lost): nothing to pull" % dev_id, "not_ok")
        why = None
        try:
            if not isinstance(head, bytes) or len(head) > R.MAX_RECORD:
                raise R.RecordError("not the bytes of one record")
            hrec = R.parse(head)
            if hrec.body.get(R.K.DEVICE) != dev_id:
                why = "it names another device"
            elif not R.check_signature(pinned, hrec):
                why = ("it does not verify with the registered key (fingerprint %s)"
                       % keys.fingerprint(pinned))
        except (R.RecordError, ValueError) as e:
            why = "it is not a valid record (%s)" % R.printable(str(e))[:200]
        if why is not None:
            sm.verdict = "NOT_OK"
            self.fail(EXIT_NOT_OK, "the signed head the recorder %s sent in AUTH is refused: "
                      "%s; nothing pulled" % (dev_id, why), "not_ok")
        hs = hrec.seq
        sm.head_seq = hs
        if (hs + 1) * MIN_RECORD > self.capacity:
            sm.verdict = "NOT_OK"
            self.fail(EXIT_NOT_OK, "the signed head of %s claims %d records, more than the %d "
                      "bytes of storage the recorder reports can hold; nothing pulled: have the "
                      "recorder inspected" % (dev_id, hs + 1, self.capacity), "not_ok")
        if row is None:
            try:
                row, _ = a.register(dev_id, pinned)
            except ArchiveError as e:
                self.fail(EXIT_USAGE, str(e), "error")
            sm.registered = True
            self.say("registered %s: the key it proved has the fingerprint %s%s"
                     % (dev_id, sm.fingerprint, ", as on its label"
                        if isinstance(self.register, str) else ""))
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
        self._still_not_revoked(dev_id, "before storing anything")
        if self.fork is None:
            try:
                self._pull_records(dev_id, held, hs)
            except BadRecords as e:
                self._quarantine(dev_id, e)
        self._reconcile_receipts(dev_id)
        self._pull_media(dev_id)
        self._unexpose()          # the card is not exposed when anything is written to it
        self.bar.close()
        self._t_transfer = time.monotonic() - self._t_pull
        self._commit_and_verify(dev_id, head, pinned, sk, row)
        # the firmware it runs, from its chain's signed FIRMWARE record (SPEC §13.2)
        why = note_firmware(a, dev_id, res, pinned)
        if why is not None:
            self.say("WARNING: " + why)
            sm.errors.append(why)

    def _still_not_revoked(self, dev_id, when):
        """A revocation the signed station log took since AUTH (`station revoke` waits for
        the device lock, so only a writer that ignored it): nothing more is stored, no
        receipt is sent (exit 7)."""
        from .session import revoked_text
        if self.a.device_status(dev_id) != "revoked":
            return
        sm = self.sm
        sm.verdict = "NOT_OK"
        sm.receipt_skipped = "the recorder was revoked during the offload"
        raise SessionError(EXIT_REVOKED, "%s; it was revoked while this offload ran (seen %s): "
                           "nothing more was stored and no receipt was sent"
                           % (revoked_text(self.a, dev_id), when), "revoked", dev_id)

    def _reauth(self, dev_id):
        """A new session with the same recorder (after its idle timeout): HELLO, AUTH, the
        proof checked with the key this offload started with."""
        again, row = hello_step(self.c, self.a, self.host_name)
        if again != dev_id:
            self.fail(EXIT_NOT_OK, "another recorder (%s) answers on %s now, not %s"
                      % (again, self.port, dev_id), "not_ok")
        pinned, _ = auth_step(self.c, self.a, dev_id, row, self.host_name)
        if pinned != self.pinned:           # pragma: no cover - the row is the same
            self.fail(EXIT_AUTH, "the key of %s changed during the offload" % dev_id,
                      "auth_failed")

    def _alerts(self, alerts, dev_id):
        """AUTH result 14: what the recorder found at boot about its card (SPEC §8.3)."""
        if not isinstance(alerts, list):
            return
        for x in alerts[:16]:
            if not isinstance(x, dict):
                continue
            kind, seq, msg = x.get(1), x.get(2), x.get(3)
            # only text and an int64 seq are taken: no value of any size or shape is formatted
            a = {"kind": R.printable(kind[:40]) if type(kind) is str else "?",
                 "seq": seq if type(seq) is int and 0 <= seq <= R.INT_MAX else None,
                 "message": R.printable(msg[:200]) if type(msg) is str else ""}
            self.sm.alerts.append(a)
            self.say("ALERT from %s at boot: %s%s: %s" % (
                dev_id, a["kind"], "" if a["seq"] is None else " (STORE_ALERT seq %d)"
                % a["seq"], a["message"]))

    def _quarantine(self, dev_id, e: BadRecords):
        """Records of this session that failed verification: kept apart, named."""
        sm = self.sm
        try:
            qid = self.a.quarantine(dev_id, e.reason, e.records,
                                    {"offload": self.oid, "seq": e.seq, "port": self.port})
        except (ArchiveError, OSError) as x:
            qid = None
            sm.errors.append("the records that failed could not be kept in quarantine: %s" % x)
        sm.quarantine = qid
        self.seg_errors[None] = "%s%s" % (e.reason, "" if qid is None else
                                          "; kept in quarantine %s, not in the history" % qid)

    # -- view, verification, receipt ---------------------------------------------------
    def _commit_and_verify(self, dev_id, head, pinned, sk, row):
        from .tlog.replay import replay
        from .verify import NOT_OK, OK, OK_WITH_MISSING_INFO, verify_store
        a, sm = self.a, self.sm
        changed = a.commit_view(dev_id, None if (sm.head_went_back or self.fork) else head)
        changed = changed or sm.segments_completed or self._view_changed
        # earlier offloads as the signed station log states them, never archive.sqlite's
        # rows: an edited row must not vouch for a prefix nobody verified (SPEC §11)
        signed = replay(a.log())
        prev = sorted(({"id": i, **o} for i, o in signed.offloads.items()
                       if o.get("device") == dev_id and i != self.oid and o.get("verdict")),
                      key=lambda o: o["id"])
        if not changed and not self.seg_errors and not self.fork and not sm.head_went_back \
                and prev and prev[-1].get("status") == "ok" and prev[-1]["verdict"] in (
                    OK, OK_WITH_MISSING_INFO):
            # nothing new in the view since it was verified: no receipt to give, and
            # verifying the whole history again would only cost time
            sm.verdict = sm.store_verdict = prev[-1]["verdict"]
            sm.status = "ok"
            sm.receipt_skipped = ("nothing new (the archived store is unchanged since offload "
                                  "%d, which verified it %s; `sealcam verify ARCHIVE` checks "
                                  "it again)" % (prev[-1]["id"], prev[-1]["verdict"]))
            return
        # the prefix an earlier offload verified (and the station anchored) is checked by
        # its hash chain only and its closed segments are not hashed again: an offload's
        # cost does not grow with what the archive already holds for the device
        anchor = None
        good = [o for o in prev if o.get("status") == "ok" and o.get("head_seq") is not None
                and o.get("verdict") in (OK, OK_WITH_MISSING_INFO)]
        if good and not self.fork:
            seq = good[-1]["head_seq"]
            h = signed.records.get(dev_id, {}).get(seq)
            if h is not None:
                anchor = (seq, h[0])
        rep = verify_store(a.view_dir(dev_id), pinned, progress=False, trusted=anchor,
                           media_opener=a.media_opener(signed.objects.get(dev_id, {})))
        sm.verified_from = None if anchor is None else anchor[0]
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
        problems.extend(self.card_problems)
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
                                    or rep.verdict == NOT_OK or self.seg_errors
                                    or self.card_problems) else rep.verdict
            sm.receipt_skipped = "not verified OK"
            sm.exit_code, sm.status = EXIT_NOT_OK, "not_ok"
            return
        sm.verdict = rep.verdict
        self._still_not_revoked(dev_id, "before the custody receipt")
        sm.status = "ok"
        self._send_receipt(dev_id, sk)


def offload(port, archive_dir, **kw) -> Summary:
    """Offload the recorder on ``port`` into the archive ``archive_dir``; see the module
    doc. Keywords: register, window, timeout, progress, host_name, say."""
    return _Offload(port, archive_dir, **kw).run()


# --- CLI ---------------------------------------------------------------------------------

def _fmt_summary(sm: Summary) -> str:
    out = []
    out.append("device   %s   key %s%s" % (sm.device or "?", sm.fingerprint or "?",
                                         "   (registered now)" if sm.registered else ""))
    if sm.firmware:
        out.append("firmware %s" % sm.firmware)
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
    if sm.media_path == "bulk":
        out.append("bulk     %s read from the card as a disk (%s), every chunk checked against "
                   "its signed hash%s" % (_mb(sm.bulk_bytes), sm.volume,
                                          "" if not sm.bulk_fallbacks else
                                          "; %d segment%s read over the link instead" % (
                                              len(sm.bulk_fallbacks),
                                              "" if len(sm.bulk_fallbacks) == 1 else "s")))
        for x in sm.bulk_fallbacks:
            out.append("  - " + x)
    elif sm.bulk_note:
        out.append("bulk     not used: %s" % sm.bulk_note)
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
    """Bytes for the summary: MB of 10^6 bytes rounded down, as everywhere the station
    prints sizes (stationconfig.fmt_mb)."""
    return fmt_mb(n, 2) if n >= 100_000 else "%d bytes" % n


def run_offload(args) -> int:
    """`sealcam offload` (args from the CLI parser). Returns the exit code."""
    def on_term(signum, frame):
        raise _Interrupted("signal %d" % signum)

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        sm = None
        try:
            sm = offload(args.port, args.archive, register=args.register, window=args.window,
                         timeout=args.timeout, progress=args.progress,
                         bulk=getattr(args, "bulk", "auto"), volume=getattr(args, "volume", None))
        except KeyboardInterrupt:
            print("sealcam offload: interrupted (Ctrl-C)", file=sys.stderr)
            return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, old)
    if args.json:
        json.dump(sm.to_json(), sys.stdout, indent=2, ensure_ascii=True)
        sys.stdout.write("\n")
    elif sm.device is not None and sm.status not in ("unknown_device",):
        sys.stdout.write(_fmt_summary(sm))
    if (sm.exit_code != EXIT_OK or (not args.json and sm.device is None)) and sm.errors:
        # one line on stderr: the first problem; every one is in the summary (or the JSON)
        more = len(sm.errors) - 1
        print("sealcam offload: %s%s" % (sm.errors[0], "" if not more else
                                          " (and %d more problem%s, listed %s)" % (
                                              more, "" if more == 1 else "s",
                                              "in the JSON" if args.json else "above")),
              file=sys.stderr)
    sys.stdout.flush()
    return sm.exit_code
