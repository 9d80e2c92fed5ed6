"""Archive numbers (R11: 001 §16): the `number_assigned` event.

    e = number_event(cat, [("SC-0001", 12), ("SC-0002", 3, 0, 60_000)], party="张三",
                     step="inspection")
    cat.act(clerk, e)
    resolve(cat, e["number"])      # the number, its parts, its recordings and spans

A number is made from the station's [archive_number] pattern (station.toml) with
{agency} ([agency] code), {date} (YYYYMMDD of the first recording's start, in the
agency's local time: [agency] utc_offset_minutes when the station sets it, else UTC),
{party}, {step} (the enforcement step) and {serial} (the next free serial for that agency
and date, zero-padded to 4 digits). The event carries the number and every part of it,
and the pattern it was made with, so a later change of the pattern never changes a number.

A number is assigned once and never reused: not for another recording, not after the
recording is disposed, not after `catalogue reindex`. It is unique in the catalogue
(primary key) and checked against every number_assigned entry of the station log, so a
row removed from the database does not free its number. A recording or span that has a
number is not numbered again. The party and step may not hold the pattern's separators,
braces, slashes or control characters: each number reads back into one set of parts.
"""
from __future__ import annotations

import datetime as _dt
import re
import string

import sqlalchemy as sa

from . import db, store
from ..i18n import N_, _
from .events import NAME_MAX, bad_char, base, field
from .tags import check_span

__all__ = ["number_event", "assign", "numbers_of", "resolve", "unnumbered", "format_number", "PARTY_MAX", "STEP_MAX", "ITEMS_MAX"]

PARTY_MAX = 64
STEP_MAX = 32
ITEMS_MAX = 200                     # recordings and spans under one number
SERIAL_MAX = 999_999
_DATE = re.compile(r"[0-9]{8}")
_NEVER = "{}/\\\u3000"             # never in a party or step, whatever the pattern
_PARTY, _STEP = N_("party"), N_("step")     # the parts named in messages


def format_number(pattern, agency, date, party, step, serial):
    return pattern.format(agency=agency, date=date, party=party, step=step,
                          serial="%04d" % serial)


def _separators(pattern):
    """The literal characters of ``pattern`` (what stands between its fields)."""
    return set("".join(lit for lit, _f, _s, _c in string.Formatter().parse(pattern)))


def _check_part(pattern, what, value, max_len):
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise store.CatalogueError(_("the %(what)s of an archive number must be 1 to %(max)d "
                                     "characters") % {"what": _(what), "max": max_len})
    bad = [c for c in value if bad_char(c) is not None or c.isspace()
           or c in _NEVER or c in _separators(pattern) or c == "\u200b"]
    if bad:
        raise store.CatalogueError(
            _("the %(what)s %(value)r holds %(char)r, which would make the archive number "
              "ambiguous (it is a separator of the pattern %(pattern)s, a space, a brace, a "
              "slash or a control character): leave it out") %
            {"what": _(what), "value": value[:40], "char": bad[0], "pattern": pattern})


def _offset_minutes(cat):
    v = cat.config.values.get("agency", {}).get("utc_offset_minutes", 0)
    return v if type(v) is int and -720 <= v <= 840 else 0


def _day(ms, offset_min=0):
    return _dt.datetime.fromtimestamp((ms + offset_min * 60_000) / 1000,
                                      _dt.timezone.utc).strftime("%Y%m%d")


_ANYONE = object()


def _items(conn, e, who=_ANYONE):
    """[(recording_id, span_from, span_to, item start ms)] of the event, checked; with
    ``who`` (a users.User, a clearance, None: the default), a recording it may not see is
    refused as one that does not exist (R16)."""
    items = field(e, "items", list, max_len=ITEMS_MAX)
    if not items:
        raise store.CatalogueError(_("an archive number needs at least one recording"))
    out, seen = [], set()
    for it in items:
        if not isinstance(it, dict) or set(it) - {"device", "segment", "span_from_ms",
                                                  "span_to_ms"}:
            raise store.CatalogueError(_("an item of an archive number is a recording "
                                         "(device, segment) and an optional span"))
        it = dict(it, type="number_assigned")
        rid = store.recording_id(conn, field(it, "device", str, max_len=64),
                                 field(it, "segment", int))
        if who is not _ANYONE:
            from . import confidentiality
            confidentiality.require_visible_as_missing(conn, who, rid)
        a, b = check_span(conn, rid, it)
        if (rid, a, b) in seen:
            raise store.CatalogueError(_("recording %(device)s/%(segment)s is named twice")
                                       % {"device": it["device"], "segment": it["segment"]})
        seen.add((rid, a, b))
        start = conn.execute(sa.select(db.recordings.c.start_ms).where(
            db.recordings.c.id == rid)).scalar()
        out.append((rid, a, b, None if start is None else start + (a or 0)))
    return out


def _logged(cat):
    """{number: (agency, date, serial, log index)} of every number_assigned entry of the
    station log (read once per Catalogue, then only what was appended since; only the
    entries holding the bytes "number_assigned" are decoded: Catalogue.entries_with)."""
    memo = cat.__dict__.setdefault("_numbers_logged", {"upto": 0, "numbers": {}})
    lg = cat.archive.log()
    lg._catch_up()
    if memo["upto"] < lg.size:
        for i, e in cat.entries_with(b"number_assigned", start=memo["upto"], stop=lg.size):
            if e.get("type") == "number_assigned" and isinstance(e.get("number"), str):
                memo["numbers"].setdefault(e["number"], (e.get("agency"), e.get("date"),
                                                         e.get("serial"), i))
        memo["upto"] = lg.size
    return memo["numbers"]


def _next_serial(cat, conn, agency, date):
    c = db.archive_numbers.c
    hi = conn.execute(sa.select(sa.func.max(c.serial)).where(
        c.agency == agency, c.day == "%s-%s-%s" % (date[:4], date[4:6], date[6:]))).scalar()
    hi = hi or 0
    for ag, d, s, _i in _logged(cat).values():
        if ag == agency and d == date and type(s) is int and s > hi:
            hi = s
    return hi + 1


def number_event(cat, recordings, *, party, step, user=_ANYONE):
    """A `number_assigned` event for ``recordings``: [(device, segment) or (device,
    segment, span_from_ms, span_to_ms)], made from the station's pattern with the next
    free serial (checked again when `Catalogue.act` appends it). With ``user``, a
    recording the user may not see is refused as one that does not exist (R16)."""
    pattern = cat.config.get("archive_number", "pattern")
    agency = cat.config.get("agency", "code")
    _check_part(pattern, _PARTY, party, PARTY_MAX)
    _check_part(pattern, _STEP, step, STEP_MAX)
    items = []
    for r in recordings:
        if not isinstance(r, (tuple, list)) or len(r) not in (2, 4):
            raise store.CatalogueError(_("a recording to number is (device, segment) or "
                                         "(device, segment, from ms, to ms)"))
        it = {"device": r[0], "segment": r[1]}
        if len(r) == 4 and (r[2] is not None or r[3] is not None):    # else: no span
            it.update(span_from_ms=r[2], span_to_ms=r[3])
        items.append(it)
    cat.sync()
    probe = {"type": "number_assigned", "items": items}
    with cat.engine.connect() as conn:
        its = _items(conn, probe, user)
        starts = [s for _r, _a, _b, s in its if s is not None]
        if len(starts) != len(its):
            raise store.CatalogueError(_("a recording to number has no start time in its "
                                         "records: the number's date cannot be given"))
        date = _day(min(starts), _offset_minutes(cat))
        serial = _next_serial(cat, conn, agency, date)
    number = format_number(pattern, agency, date, party, step, serial)
    return base("number_assigned", None, None, number=number, pattern=pattern,
                agency=agency, date=date, party=party, step=step, serial=serial,
                items=items)


def assign(cat, user, recordings, *, party, step, tries=3):
    """Make and append the number of ``recordings`` (see number_event) for ``user``; if
    another clerk took the same serial meanwhile, the next one is made. Returns the
    event (its "number")."""
    for n in range(tries):
        e = number_event(cat, recordings, party=party, step=step, user=user)
        try:
            cat.act(user, e)
            return e
        except _Taken:
            if n == tries - 1:
                raise


class _Taken(store.CatalogueError):
    """The number was assigned by another event (a race between two clerks, or a forgery)."""


@store.handles("number_assigned", permission="number")
class _Assigned:
    @staticmethod
    def check(cat, conn, e):
        number = field(e, "number", str, max_len=NAME_MAX)
        pattern = field(e, "pattern", str, max_len=200)
        from ..stationconfig import _number_pattern
        why = _number_pattern(pattern)
        if why:
            raise store.CatalogueError(_("the archive number pattern %(pattern)r %(why)s")
                                       % {"pattern": pattern[:80], "why": why})
        agency = field(e, "agency", str, max_len=32)
        from ..stationconfig import _agency_code
        if _agency_code(agency):
            raise store.CatalogueError(_("archive number %(number)s: the agency code %(agency)r "
                                         "is not one a station may set")
                                       % {"number": number, "agency": agency})
        date = field(e, "date", str, max_len=8)
        party = field(e, "party", str, max_len=PARTY_MAX)
        step = field(e, "step", str, max_len=STEP_MAX)
        serial = field(e, "serial", int)
        _check_part(pattern, _PARTY, party, PARTY_MAX)
        _check_part(pattern, _STEP, step, STEP_MAX)
        if not _DATE.fullmatch(date) or not 1 <= serial <= SERIAL_MAX:
            raise store.CatalogueError(_("archive number %(number)s: bad date or serial")
                                       % {"number": number})
        if format_number(pattern, agency, date, party, step, serial) != number:
            raise store.CatalogueError(_("archive number %(number)s is not what its pattern "
                                         "and parts make") % {"number": number})
        from . import confidentiality           # R16: as the log states the user
        its = _items(conn, e, confidentiality.log_actor(cat, conn, e))
        first = min((s for _r, _a, _b, s in its if s is not None), default=None)
        # the local date of the first start, in any time zone of the world (UTC-12..+14)
        if first is None or date not in {_day(first, m) for m in (-720, 0, 840)}:
            raise store.CatalogueError(_("archive number %(number)s: %(date)s is not the day "
                                         "its first recording started") %
                                       {"number": number, "date": date})
        if conn.execute(sa.select(db.archive_numbers.c.number).where(
                db.archive_numbers.c.number == number)).first() is not None:
            raise _Taken(_("archive number %(number)s is assigned already: a number is never "
                           "given twice") % {"number": number})
        # a log entry already applied that gave this number (in `act`, every entry is
        # applied and this event is not in the log yet; in a replay, this very entry and
        # those after it are not applied yet)
        logged = _logged(cat).get(number)
        if logged is not None and logged[3] < cat.applied(conn):
            raise _Taken(
                _("archive number %(number)s was assigned by log entry %(index)d: a number "
                  "is never reused, even when its row is gone (run `sealcam catalogue "
                  "reindex`)") % {"number": number, "index": logged[3]})
        ni = db.number_items.c
        for rid, a, b, _s in its:
            span = sa.and_(ni.span_from_ms.is_(None), ni.span_to_ms.is_(None)) if a is None \
                else sa.and_(ni.span_from_ms == a, ni.span_to_ms == b)
            had = conn.execute(sa.select(ni.number).where(ni.recording_id == rid, span)
                               ).first()
            if had is not None:
                raise store.CatalogueError(_("that recording (or span) has the archive number "
                                             "%(number)s already") % {"number": had[0]})

    @staticmethod
    def apply(cat, conn, i, e):
        d = e["date"]
        conn.execute(db.archive_numbers.insert().values(
            number=e["number"], event=i, agency=e["agency"], day="%s-%s-%s" % (
                d[:4], d[4:6], d[6:]), party=e["party"], step=e["step"],
            serial=e["serial"], by_user=e["by"], at=e["at"]))
        for rid, a, b, _s in _items(conn, e):
            conn.execute(db.number_items.insert().values(
                number=e["number"], recording_id=rid, span_from_ms=a, span_to_ms=b))


def resolve(cat, number, viewer=None):
    """The archive number ``number``: its parts, who assigned it and when, and its items
    (device, segment, span_from_ms, span_to_ms, start_ms, end_ms, officer, state); None if
    no such number. ``viewer``: the users.User reading, or its clearance (None: the
    default clearance): the items it may not see are left out, and a number none of whose
    items it may see is None, as one that does not exist (R16)."""
    from . import confidentiality
    cat.sync()
    n, ni, r = db.archive_numbers.c, db.number_items.c, db.recordings.c
    with cat.engine.connect() as conn:
        row = conn.execute(sa.select(db.archive_numbers).where(n.number == number)
                           ).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["items"] = [dict(x) for x in conn.execute(
            sa.select(r.device, r.segment, ni.span_from_ms, ni.span_to_ms, r.start_ms,
                      r.end_ms, r.officer, r.state)
            .join(db.recordings, r.id == ni.recording_id)
            .where(ni.number == number, confidentiality.visible_clause(viewer, conn))
            .order_by(r.start_ms, r.device, r.segment, ni.span_from_ms)).mappings()]
    return out if out["items"] else None


def numbers_of(cat, device, segment, viewer=None):
    """The archive numbers of a recording (any span), oldest first; a recording ``viewer``
    (as for resolve) may not see is refused as one that does not exist."""
    from . import confidentiality
    cat.sync()
    ni = db.number_items.c
    with cat.engine.connect() as conn:
        rid = store.recording_id(conn, device, segment)
        confidentiality.require_visible_as_missing(conn, viewer, rid)      # R16
        return [x[0] for x in conn.execute(
            sa.select(ni.number).join(db.archive_numbers,
                                      db.archive_numbers.c.number == ni.number)
            .where(ni.recording_id == rid).order_by(db.archive_numbers.c.event))]


def unnumbered(cat, now_ms=None, hours=24, viewer=None):
    """The recordings still without an archive number ``hours`` after they ended (R11: 001
    §16 asks for the number within 24 hours of the item's end), oldest first: device,
    segment, end_ms, officer, hours_since_end. Disposed recordings are left out, and so
    are those ``viewer`` (a users.User or a clearance; None: the default) may not see."""
    import time
    from . import confidentiality
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    cat.sync()
    r, ni = db.recordings.c, db.number_items.c
    with cat.engine.connect() as conn:
        rows = conn.execute(
            sa.select(r.device, r.segment, r.end_ms, r.officer)
            .where(r.end_ms.is_not(None), r.end_ms < now_ms - hours * 3_600_000,
                   r.state != "disposed",
                   ~sa.exists().where(ni.recording_id == r.id),
                   confidentiality.visible_clause(viewer, conn))
            .order_by(r.end_ms, r.device, r.segment)).mappings()
        return [dict(x, hours_since_end=(now_ms - x["end_ms"]) // 3_600_000) for x in rows]
