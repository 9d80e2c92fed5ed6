"""Reading a store's record logs (SPEC §5.1) for the verifier, bounded.

``list_logs(root)`` -> (log files in (N, K) order, [(name, kind)] of everything else in
rec/); ``read_log(root, rel, items, events)`` appends a records.Record per item and the
torn tails / garbage as events. A log file is at most MAX_LOG bytes (a device rolls over
past 256 KiB): a larger one, a symlink, a FIFO or a device is NOT_OK, named, never read.
"""
from __future__ import annotations

import re

import cbor2

from . import records as R
from . import safeio

__all__ = ["LOG_RE", "MAX_LOG", "list_logs", "read_log", "log_first_seq"]

# rec/NNNNNNNN.log, or rec/NNNNNNNN_K.log when a torn file already holds that name
LOG_RE = re.compile(r"^(\d+)(?:_(\d+))?\.log$")
MAX_LOG = 1 << 20                # bytes of one log file (256 KiB + a record, with room)


def log_first_seq(rel) -> int:
    """The seq a log file's name says it starts with."""
    return int(LOG_RE.match(rel.rsplit("/", 1)[-1]).group(1))


def list_logs(root):
    """(["rec/…log", …] in (N, K) order, [(rel, kind)] of other entries of rec/)."""
    logs, other = [], []
    for name, kind in safeio.list_dir(root, "rec"):
        m = LOG_RE.match(name)
        if m:                   # (a link or a FIFO with that name: named by read_log)
            logs.append((int(m.group(1)), int(m.group(2) or 0), name))
        else:
            other.append(("rec/" + name, kind))
    logs.sort()
    return ["rec/" + n for _, _, n in logs], other


def _plausible_torn(tail: bytes) -> bool:
    return tail[:2] == b"\xd2\x84"[:len(tail[:2])]


def read_log(root, rel: str, items: list, events: list, cap: int = MAX_LOG, trusted_upto=-1):
    """Append a Record for each item of one log file to ``items``; torn tails and garbage
    to ``events`` as (kind, file, offset, message) with kind "torn" or "bad".
    ``trusted_upto``: see records.decode."""
    try:
        data = safeio.read_capped(root, rel, cap, "record log")
    except safeio.StoreFileError as e:
        events.append(("bad", rel, 0, str(e)))
        return
    except OSError as e:
        events.append(("bad", rel, 0, "%s cannot be read (%s)"
                       % (R.printable(rel), e.strerror or e)))
        return
    pos = 0
    while pos < len(data):
        tail = data[pos:]
        if not tail.strip(b"\x00"):
            events.append(("torn", rel, pos, "torn log tail: %d zero bytes at the end of %s"
                           % (len(tail), rel)))
            break
        try:
            item, end = R.decode_item(data, pos)
        except cbor2.CBORDecodeEOF:
            if _plausible_torn(tail):
                events.append(("torn", rel, pos, "torn log tail: %d bytes of an unfinished "
                               "record at the end of %s" % (len(tail), rel)))
            else:
                events.append(("bad", rel, pos, "garbage at the end of %s (offset %d, %d bytes)"
                               % (rel, pos, len(tail))))
            break
        except Exception as e:  # not CBOR: cannot find the next record boundary
            events.append(("bad", rel, pos, "undecodable CBOR in %s at offset %d (%s); the "
                           "rest of the file (%d bytes) cannot be read"
                           % (rel, pos, R.printable(e), len(tail))))
            break
        if end <= pos:  # pragma: no cover - defensive
            events.append(("bad", rel, pos, "decoder made no progress"))
            break
        if end - pos > R.MAX_RECORD:
            events.append(("bad", rel, pos, "an item of %d bytes in %s at offset %d: more "
                           "than the %d bytes a record may have" % (end - pos, rel, pos,
                                                                   R.MAX_RECORD)))
            break
        items.append(R.decode(data[pos:end], rel, pos, item, trusted_upto))
        pos = end
