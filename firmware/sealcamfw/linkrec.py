# The link's ops on records and media (protocol/SPEC.md §8.4, §8.5): LIST, GET, and READ
# of a segment's media or chunk index, answered without a copy of the data. Each op takes
# the Link (link.py) and the request's args map; LinkError for what the device cannot
# answer.
from sealcamfw import cbor
from sealcamfw import frame
from sealcamfw.linkproto import (BAD_REQUEST, DEVICE_ERROR, LIST_MAX, NOT_FOUND, TOO_LARGE,
                       LinkError, uint)


def list_records(lnk, args):
    since = uint(args, 1, "LIST", "since seq")
    count = uint(args, 2, "LIST", "max count")
    s = lnk.store
    cap = (lnk.max_frame - 48) // 17   # an entry takes at most 17 bytes
    n = count if count < cap else cap
    if n > LIST_MAX:
        n = LIST_MAX
    entries = s.list(since, n) if n else []
    if n and not entries and since < s.seq:
        raise LinkError(DEVICE_ERROR, "LIST from seq %d: the records could not be read from "
                        "the card" % since)
    nxt = entries[-1][0] + 1 if entries else since
    return {1: entries, 2: s.seq - 1, 3: nxt < s.seq}


def record(lnk, seq, what):
    """Record seq's bytes; 404 if the device has no such record, 500 if it cannot read
    one it has."""
    s = lnk.store
    rec = s.find(seq)
    if rec is None:
        if seq < s.seq and s.locate(seq) is not None:
            raise LinkError(DEVICE_ERROR, "%s: the record could not be read from the card"
                            % what)
        if seq < s.seq:   # in a gap a STORE_ALERT names (SPEC §5.2), or a log is gone
            raise LinkError(NOT_FOUND, "%s: not on this card (its chain has a gap there)"
                            % what)
        raise LinkError(NOT_FOUND, "%s: no such record (this device holds seq 0..%d)"
                        % (what, s.seq - 1))
    return rec


def get(lnk, args):
    seq = uint(args, 1, "GET", "seq")
    rec = record(lnk, seq, "GET seq %d" % seq)
    return {1: rec}


def read(lnk, rid, args):
    """READ: answers request rid itself, the frame written around the data."""
    seg = uint(args, 1, "READ", "segment")
    ci = uint(args, 2, "READ", "chunk index")
    off = uint(args, 3, "READ", "offset in chunk")
    want = uint(args, 4, "READ", "length")
    what = args.get(5, 0)
    if type(what) is not int or what < 0 or what > 1:
        raise LinkError(BAD_REQUEST, "READ: argument 5 (what) must be 0 (media) or 1 (chunk "
                        "index), not %r" % (what,))
    if want > lnk.max_frame:
        raise LinkError(TOO_LARGE, "READ segment %d chunk %d: %d bytes is longer than the "
                        "agreed frame (%d bytes)" % (seg, ci, want, lnk.max_frame))
    s = lnk.store
    info = s.segment_files(seg)
    if info is None:
        raise LinkError(NOT_FOUND, "READ segment %d: no such segment (seq %d is not a "
                        "REC_START record)" % (seg, seg))
    path = info[what]
    fs = s.fs
    size = fs.size(path)
    if size < 0:
        raise LinkError(NOT_FOUND, "READ segment %d: %s does not exist (yet)" % (seg, path))
    csize = size if what else info[2]
    pos = ci * csize + off
    if pos > size or (ci and ci * csize >= size):
        raise LinkError(NOT_FOUND, "READ segment %d chunk %d offset %d: past the end of %s "
                        "(%d bytes)" % (seg, ci, off, path, size))
    # response {0: id, 1: 0, 2: {1: data}}, encoded by hand around the data
    pre = bytearray(b"\xa3\x00")
    pre += cbor.dumps(rid)
    pre += b"\x01\x00\x02\xa1\x01"
    n = lnk.max_frame - len(pre) - 5
    if want < n:
        n = want
    if size - pos < n:
        n = size - pos
    data = fs.read(path, pos, n) if n > 0 else b""
    pre += cbor.bstr_head(len(data))
    head, crc = frame.wrap(pre, len(data))
    lnk._send(head, data, frame.finish(crc, data))
