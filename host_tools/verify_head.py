"""The signed head of a store (SPEC §5.2) for the verifier."""
from __future__ import annotations

from collections.abc import Mapping

import cbor2

from . import records as R
from . import safeio

MAX_HEAD = 64 << 10             # bytes of head.cbor / head.new


class _Bad(Exception):
    pass


# head -----------------------------------------------------------------------
def _read_head(v, name):
    data = safeio.read_capped(v.root, name, MAX_HEAD, "head file")
    try:
        h = cbor2.loads(data)
    except Exception:
        raise _Bad("not CBOR") from None
    if not (isinstance(h, Mapping) and {1, 2, 3} <= set(h) <= {1, 2, 3, 4}):
        raise _Bad("not a map {1: log, 2: offset, 3: last, ?4: open}")
    log, offset, last, open_ = h[1], h[2], h[3], h.get(4)
    if not (type(log) is str and R.is_uint(offset) and type(last) is bytes):
        raise _Bad("log, offset or last has the wrong type")
    if 4 in h and not (isinstance(open_, (list, tuple)) and len(open_) == 7):
        raise _Bad("open is not a 7-element array")
    rec = R.decode(last, name, 0)
    if rec.fatal:
        raise _Bad("last is not a record: " + rec.fatal)
    if v.pubraw is None:
        raise _Bad("no device key to check it with")
    if not R.check_signature(v.pubraw, rec):
        raise _Bad("its last record (seq %d) does not verify with the device key" % rec.seq)
    if rec.errors:
        raise _Bad("last record: " + "; ".join(rec.errors))
    if rec.kid != rec.body[3].encode() or (v.rep.device is not None
                                            and rec.body[3] != v.rep.device):
        raise _Bad("its last record comes from another device (%s)"
                   % R.printable(repr(rec.body[3])))
    return rec

def _offloaded_at(v, m):
    """True when the record after head seq ``m`` is the RECEIPT a station gave for records
    0..m: the head is the one the station offloaded (an archive's view keeps it) and the
    records after it were pulled after the offload, as usual. On a card the recorder
    rewrites its head after every record, so there records after the head mean a power cut
    (worth a note)."""
    r = v.first.get(m + 1)
    return r is not None and r.type == R.RECEIPT and r.schema_ok \
        and r.body.get(R.K.COVERED) == m


def check_head(v):
    """The signed head (SPEC §5.2; verifier rules §6.1): head.cbor and head.new are
    both read; the valid one with the higher seq wins; neither with records is NOT_OK."""
    rep = v.rep
    cands, bad = [], {}
    for name in ("head.cbor", "head.new"):
        try:
            cands.append((name, _read_head(v, name)))
        except FileNotFoundError:
            continue
        except _Bad as e:
            bad[name] = str(e)
        except safeio.StoreFileError as e:
            bad[name] = str(e)
        except OSError as e:
            bad[name] = "cannot be read (%s)" % (e.strerror or e)
    present = set(bad) | {n for n, _ in cands}
    if not present:
        if v.recs:
            v._failure("signed head missing (no head.cbor or head.new) while the "
                          "store holds records", None, "head.cbor")
        return
    if "head.cbor" in bad:
        v._failure("signed head head.cbor is invalid: %s" % bad["head.cbor"],
                      None, "head.cbor")
    if "head.new" in bad:
        if "head.cbor" in present:
            rep.notes.append("head.new ignored (%s): a head being written when power "
                             "was lost" % bad["head.new"])
        else:
            v._failure("signed head missing: head.cbor is absent and head.new is "
                          "invalid (%s)" % bad["head.new"], None, "head.new")
    if not cands:
        return
    name, last = max(cands, key=lambda c: c[1].seq)
    rep.head_seq, rep.head_file = last.seq, name
    m = last.seq
    end = rep.chain_end
    if m in v.first:
        if v.first[m].hash != last.hash:
            v._failure("the head's last record (seq %d) differs from seq %d in the "
                          "chain (%s)" % (m, m, v.first[m].where), None, name,
                          head_seq=m)
        elif end is not None and end > m and not _offloaded_at(v, m):
            rep.notes.append("the chain goes on after the signed head (seq %d to %d): the "
                             "recorder lost power after writing %s and before rewriting "
                             "its head (SPEC §5.2); the chain proves %s"
                             % (m + 1, end, "that record" if end == m + 1 else "them",
                                "it" if end == m + 1 else "them"))
    elif end is None:
        v._failure("all records are missing (%s says seq %d)" % (name, m), None, name,
                      head_seq=m)
    elif end < m:
        v._failure("records after seq %d are missing (the signed head %s says %d)"
                      % (end, name, m), None, name, head_seq=m)
    else:
        v._failure("seq %d, the last record named by the signed head %s, is missing "
                      "from the chain" % (m, name), None, name, head_seq=m)

