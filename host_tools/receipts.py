"""Custody receipts (SPEC §8.6): making one, the seq it may cover, and sending it at the
end of an offload (a mixin of host_tools.offload._Offload)."""
from __future__ import annotations

import time

import cbor2

from . import keys
from .link import LinkDown, LinkError, ProtocolViolation
from .offload_pull import BadRecords
from .session import EXIT_AUTH, SessionError

__all__ = ["make_receipt", "covered_seq", "Receipts"]

REC_START, SEGMENT, RECOVERY, RECEIPT_T = 2, 4, 7, 8
IDLE_SAFE = 10.0               # seconds of silence after which a session may have ended


def _enc(x):
    return cbor2.dumps(x, canonical=True)


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


class Receipts:
    """Mixin of _Offload: needs self.a, self.c, self.sm, self._pull_records."""

    def _send_receipt(self, dev_id, sk):
        a, c, sm = self.a, self.c, self.sm
        rows = a.db.execute("SELECT seq, type, segment FROM records WHERE device = ? "
                            "ORDER BY seq", (dev_id,)).fetchall()
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
        if time.monotonic() - c.t_active > IDLE_SAFE:
            # nothing was asked while the archive was verified: the recorder may have ended
            # the session (its idle timeout, SPEC §8.3); start a new one first
            self._reauth(dev_id)
        try:
            try:
                seq, how = c.receipt(receipt, since, since + 4095)
            except LinkError as e:
                if e.status != 401:
                    raise
                # the session ended while the archive was verified (the recorder's idle
                # timeout, SPEC §8.3): a new one, the recorder's proof checked again
                self._reauth(dev_id)
                seq, how = c.receipt(receipt, since, since + 4095)
        except LinkError as e:
            a.update_receipt(dev_id, number, "refused", message=str(e))
            why = {403: "the recorder does not trust this station's receipts",
                   409: "the recorder holds a receipt with this number or a higher one"}
            raise SessionError(EXIT_AUTH, "receipt %d refused: %s (%s)" % (
                number, why.get(e.status, "error"), e), "receipt_refused")
        if type(seq) is not int or not since <= seq <= since + 4095:
            # left "sent": the next offload finds its RECEIPT record, or not
            raise ProtocolViolation("RECEIPT %d answered with seq %r for its RECEIPT record "
                                    "(expected %d..%d)" % (number, seq, since, since + 4095))
        a.update_receipt(dev_id, number, "accepted", seq)
        sm.receipt = {"number": number, "covered": cov, "seq": seq, "confirmed_by": how}
        # keep the chain complete: pull the RECEIPT record (and anything before it)
        try:
            held = a.max_seq(dev_id)
            if isinstance(seq, int) and held is not None and held < seq <= held + 4096:
                self._pull_records(dev_id, held, seq)
                a.commit_view(dev_id, None)
        except BadRecords as e:
            self._quarantine(dev_id, e)
            sm.errors.append(self.seg_errors.pop(None))
        except (LinkDown, LinkError, ProtocolViolation) as e:
            sm.errors.append("the RECEIPT record was not pulled (%s); the next offload "
                             "pulls it" % e)
