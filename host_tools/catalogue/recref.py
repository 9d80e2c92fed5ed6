"""How a user names a recording: DEVICE/SEGMENT, one reading for every verb and the desk.

    split("SC-0001/12")            -> ("SC-0001", 12)
    split("SC-0001:12")            -> ("SC-0001", 12)    (the form access events store)
    split("nonsense")              -> None
    parse(text, error=CatalogueError) -> (device, segment), else error(one line)
    parse_span("SC-0001/12:60000-90000") -> ("SC-0001", 12, 60000, 90000)
    show(device, segment)          -> "SC-0001/12"

DEVICE is a device id (host_tools/records.py: 1-64 letters, digits, '.', '_' or '-'),
SEGMENT the seq of the REC_START that opened the recording (SPEC §14.1). DEVICE/SEGMENT is
what every command prints; DEVICE:SEGMENT is read too, as a user may copy it out of an
access request. Neither a device id nor a segment can hold the other separator, so the
two readings never disagree.
"""
from __future__ import annotations

from ..i18n import _
from ..records import DEVICE_ID_RE, printable

__all__ = ["split", "parse", "parse_span", "show", "SEG_DIGITS"]

SEG_DIGITS = 18           # a segment number: at most 18 decimal digits (fits 64 bits)


def _seg(s):
    return int(s) if s.isascii() and s.isdigit() and len(s) <= SEG_DIGITS else None


def split(text):
    """(device, segment) of "DEVICE/SEGMENT" or "DEVICE:SEGMENT", or None."""
    if not isinstance(text, str) or len(text) > 100:
        return None
    for sep in ("/", ":"):
        dev, s, seg = text.partition(sep)
        if s and DEVICE_ID_RE.fullmatch(dev) and _seg(seg) is not None:
            return dev, int(seg)
    return None


def _wrong(text):
    return _("%(rec)s is not DEVICE/SEGMENT (a device id and the seq of its REC_START, "
             "e.g. SC-0001/12)") % {"rec": printable(repr(str(text)[:80]), backslash=False)}


def parse(text, error=None):
    """(device, segment) of ``text``; else ``error`` (default CatalogueError) with one
    line naming what was given and the form."""
    r = split(text)
    if r is None:
        if error is None:
            from .store import CatalogueError as error
        raise error(_wrong(text))
    return r


def parse_span(text, error=None):
    """(device, segment) of DEVICE/SEGMENT, or (device, segment, from_ms, to_ms) of
    DEVICE/SEGMENT:FROM-TO (milliseconds from the recording's start)."""
    r = split(text)
    if r is not None:
        return r
    head, colon, span = str(text).rpartition(":")
    a, dash, b = span.partition("-")
    r = split(head) if colon and "/" in head else None
    if r is not None and dash and _seg(a) is not None and _seg(b) is not None:
        return r + (int(a), int(b))
    if error is None:
        from .store import CatalogueError as error
    raise error(_("%(rec)s is not DEVICE/SEGMENT or DEVICE/SEGMENT:FROM-TO (milliseconds)")
                % {"rec": printable(repr(str(text)[:80]), backslash=False)})


def show(device, segment) -> str:
    return "%s/%d" % (printable(str(device)), int(segment))
