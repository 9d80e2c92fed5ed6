"""Metadata of a recording or of a span of it (R10, R18; SPEC §14): the `tag` event.

    e = tag_event("SC-0001", 12, party="张三", place="五一路", event_type="inspection",
                  item_class="001-03", note="...")
    cat.act(user, e)                       # a clerk, or the officer who made the recording
    current(cat, "SC-0001", 12)            # {"whole": {field: value}, "spans": [...]}
    history(cat, "SC-0001", 12)            # every value ever given, who, when and why

A `tag` event names one recording (device, segment: the seq of its REC_START), optionally a
span of it (span_from_ms / span_to_ms: milliseconds from the recording's start, both or
neither, from < to), and a map of fields:

    party         the party (当事人): a person or an organisation, at most 200 characters
    place         where, at most 200 characters
    event_type    a word of EVENT_TYPES (or of the station's [retention]
                  permanent_event_types): what the enforcement was
    case          a case number (卷宗号) the recording belongs to
    item_class    an item of the R18 catalogue ("001-05") or a record class (scene /
                  interview / confirmation): host_tools.catalogue.itemcatalogue
    note          free text, at most events.TEXT_MAX characters
    retention_class  a retention class (RETENTION_CLASSES) the clerk proposes

Metadata is append-only. Each field becomes one row of the tags table; a later event on
the same recording, span and field supersedes the current row (current = false), which
stays for the history. A correction (an event that supersedes a value) must give a
``reason``; ``supersedes`` may name the log index of the event it corrects. An empty
value withdraws a field (a correction, so with a reason). An officer (role officer) may
tag only the recordings he or she made (the REC_START's officer is the user's name,
compared without case).
"""
from __future__ import annotations

import re

import sqlalchemy as sa

from . import db, itemcatalogue, store
from ..i18n import N_, _
from .events import TEXT_MAX, bad_char, base, field

__all__ = ["EVENT_TYPES", "FIELDS", "RETENTION_CLASSES", "tag_event", "current", "history",
           "check_span", "event_types", "fresh"]

# event types (R10 "event type"; R12 permanent ones from stationconfig.DEFAULT_PERMANENT_TYPES)
EVENT_TYPES = {
    # ordinary enforcement (001's attachment; 000 §7)
    "inspection": (N_("inspection"), "检查"),
    "penalty": (N_("administrative penalty"), "行政处罚"),
    "licensing": (N_("licensing"), "行政许可"),
    "service_of_documents": (N_("service of documents"), "文书送达"),
    "interview": (N_("questioning or interview"), "询问（调查）"),
    "evidence_preservation": (N_("registering evidence for preservation"), "证据先行登记保存"),
    "hearing": (N_("hearing"), "听证"),
    "statement_defence": (N_("statement and defence"), "陈述、申辩"),
    "witness_testimony": (N_("taking witness testimony"), "收集证人证言"),
    "enforcement": (N_("compulsory enforcement"), "强制执行"),
    "demolition": (N_("forced demolition"), "强制拆除"),
    "special_operation": (N_("special operation"), "专项行动"),
    "patrol": (N_("patrol"), "巡查"),
    "reception": (N_("reception or complaint desk"), "接待"),
    "other": (N_("other"), "其他"),
    # kept permanently (R12: 000 §8(3); 001 §19; 002 §15; 004 §21)
    "case_evidence": (N_("used as evidence for a decision"), "作为证据使用"),
    "obstruction": (N_("obstruction, insult or violence against officers"), "阻碍执法"),
    "mass_incident": (N_("sudden or mass incident"), "突发事件、群体性事件"),
    "major_case": (N_("major, difficult or complex case"), "重大、疑难、复杂"),
    "dispute": (N_("dispute"), "纠纷"),
    "complaint": (N_("complaint"), "投诉"),
    "petition": (N_("petition"), "信访"),
    "review": (N_("administrative review"), "行政复议"),
    "lawsuit": (N_("lawsuit"), "行政诉讼"),
    "public_interest": (N_("public interest"), "公共利益"),
    "personal_safety": (N_("personal safety"), "人身安全"),
}
RETENTION_CLASSES = ("ordinary", "long_term", "permanent")
FIELDS = ("party", "place", "event_type", "case", "item_class", "note", "retention_class")
_MAX = {"party": 200, "place": 200, "event_type": 32, "case": 64, "item_class": 16,
        "note": TEXT_MAX, "retention_class": 32}
SPAN_MAX_MS = 7 * 86_400_000        # a span past a week after the start is refused
_WORD = re.compile(r"[a-z_]{1,32}")


def event_types(cat=None):
    """The event-type words this station takes: EVENT_TYPES and the station's permanent
    ones ([retention] permanent_event_types of station.toml)."""
    words = set(EVENT_TYPES)
    if cat is not None:
        words.update(cat.config.values.get("retention", {}).get("permanent_event_types", ()))
    return words


def _retention_classes():
    try:
        from . import retention
        return tuple(getattr(retention, "CLASSES", RETENTION_CLASSES))
    except ImportError:
        return RETENTION_CLASSES


def fresh(cat, conn):
    """True while `Catalogue.act` checks an event about to be appended (every log entry is
    applied), False while a log entry is replayed (sync, reindex, catalogue check): what
    depends on station.toml is checked against it only when the event is made, so a later
    change of the settings never drops an event already in the log."""
    lg = cat.archive.log()
    return cat.applied(conn) >= lg.size


def _check_value(cat, name, value, new=True):
    """Refuse (CatalogueError) a field value that is not allowed; "" (withdrawn) passes.
    ``new``: the event is being made (the station's event types apply), else replayed."""
    if not isinstance(value, str):
        raise store.CatalogueError(_("tag field %(field)s must be text") % {"field": name})
    if len(value) > _MAX[name]:
        raise store.CatalogueError(_("tag field %(field)s is longer than %(max)d characters")
                                   % {"field": name, "max": _MAX[name]})
    bad = bad_char(value, "\n\t" if name == "note" else "")
    if bad is not None:
        raise store.CatalogueError(_("tag field %(field)s holds a control character "
                                     "(U+%(code)04X): retype it") %
                                   {"field": name, "code": ord(bad)})
    if value == "":
        return
    if value != value.strip():
        raise store.CatalogueError(_("tag field %(field)s begins or ends with a space")
                                   % {"field": name})
    if name == "event_type" and not _WORD.fullmatch(value):
        raise store.CatalogueError(_("event type %(value)r is not a word of a-z and _")
                                   % {"value": value[:40]})
    if name == "event_type" and new and value not in event_types(cat):
        raise store.CatalogueError(_("event type %(value)r is not known; use one of: "
                                     "%(words)s") % {"value": value[:40], "words": ", ".join(
                                         sorted(event_types(cat)))})
    if name == "item_class" and itemcatalogue.normalize(value) != value:
        raise store.CatalogueError(_("item class %(value)r is not in the item catalogue "
                                     "(R18): give an item key such as 001-05, or scene, "
                                     "interview or confirmation") % {"value": value[:40]})
    if name == "retention_class" and value not in _retention_classes():
        raise store.CatalogueError(_("retention class %(value)r is not known; use one of: "
                                     "%(words)s") % {"value": value[:40],
                                                     "words": ", ".join(_retention_classes())})


def check_span(conn, rid, e):
    """(span_from_ms, span_to_ms) of event ``e`` (both None: the whole recording), checked
    against recording ``rid``; raises CatalogueError."""
    a = field(e, "span_from_ms", int, optional=True)
    b = field(e, "span_to_ms", int, optional=True)
    if a is None and b is None:
        return None, None
    if a is None or b is None or not 0 <= a < b <= SPAN_MAX_MS:
        raise store.CatalogueError(_("a span needs both ends, in milliseconds from the "
                                     "recording's start, 0 <= from < to"))
    dur = conn.execute(sa.select(db.recordings.c.duration_ms).where(
        db.recordings.c.id == rid)).scalar()
    if dur is not None and b > dur:
        raise store.CatalogueError(_("the span ends at %(to)d ms, after the recording's end "
                                     "(%(dur)d ms)") % {"to": b, "dur": dur})
    return a, b


def _recording(conn, e):
    dev = field(e, "device", str, max_len=64)
    seg = field(e, "segment", int)
    return store.recording_id(conn, dev, seg)


def _officer_may(conn, e, rid, a=None, b=None):
    role = conn.execute(sa.select(db.users.c.role).where(db.users.c.name == e.get("by"))
                        ).scalar()
    if role != "officer":
        return
    officer = conn.execute(sa.select(db.recordings.c.officer).where(
        db.recordings.c.id == rid)).scalar()
    if not officer or officer.casefold() != str(e.get("by")).casefold():
        raise store.PermissionRefused(
            _("officer %(user)s may tag only the recordings he or she made; %(device)s/"
              "%(segment)s was made by %(officer)s: ask a clerk")
            % {"user": e.get("by"), "device": e.get("device"), "segment": e.get("segment"),
               "officer": officer or _("no assigned officer")})
    # the recorded officer never lowers what others decided about the evidence: no
    # retention class, and no correction of a value another user gave (SPEC §14.3)
    fields = e.get("fields") if isinstance(e.get("fields"), dict) else {}
    if "retention_class" in fields:
        raise store.PermissionRefused(
            _("officer %(user)s may not set a retention class: ask a clerk")
            % {"user": e.get("by")})
    c = db.tags.c
    others = sorted({r[0] for r in conn.execute(sa.select(c.field).where(
        c.recording_id == rid, c.current.is_(True), c.field.in_(list(fields)),
        c.by_user != e.get("by"), _same_span(a, b)))})
    if others:
        raise store.PermissionRefused(
            _("officer %(user)s may not correct %(fields)s of %(device)s/%(segment)s: "
              "another user gave those values; ask a clerk")
            % {"user": e.get("by"), "fields": ", ".join(others), "device": e.get("device"),
               "segment": e.get("segment")})


def tag_event(device, segment, *, span_from_ms=None, span_to_ms=None, reason=None,
              supersedes=None, **fields):
    """A `tag` event (not yet checked against the catalogue: `Catalogue.act` does that).
    ``fields``: any of FIELDS; item_class may be given in any form itemcatalogue takes."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise store.CatalogueError(_("unknown tag field %(field)s (fields: %(fields)s)")
                                   % {"field": unknown[0][:40], "fields": ", ".join(FIELDS)})
    vals = {k: v for k, v in fields.items() if v is not None}
    if not vals:
        raise store.CatalogueError(_("a tag needs at least one field (%(fields)s)")
                                   % {"fields": ", ".join(FIELDS)})
    ic = vals.get("item_class")
    if isinstance(ic, str) and ic and itemcatalogue.normalize(ic):
        vals["item_class"] = itemcatalogue.normalize(ic)
    return base("tag", None, None, device=device, segment=segment, span_from_ms=span_from_ms,
                span_to_ms=span_to_ms, fields=vals, reason=reason, supersedes=supersedes)


def _same_span(a, b):
    c = db.tags.c
    return sa.and_(c.span_from_ms.is_(None), c.span_to_ms.is_(None)) if a is None else \
        sa.and_(c.span_from_ms == a, c.span_to_ms == b)


@store.handles("tag", permission="tag")
class _Tag:
    @staticmethod
    def check(cat, conn, e):
        from . import confidentiality
        rid = _recording(conn, e)
        # R16: a recording the user (as the log states him at this entry) may not see
        # does not exist for him, before anything about it is said
        confidentiality.require_visible_as_missing(
            conn, confidentiality.log_actor(cat, conn, e), rid)
        a, b = check_span(conn, rid, e)
        fields = field(e, "fields", dict)
        if not fields or len(fields) > len(FIELDS):
            raise store.CatalogueError(_("a tag needs 1 to %(n)d fields") % {"n": len(FIELDS)})
        new = fresh(cat, conn)
        for k, v in fields.items():
            if k not in FIELDS:
                raise store.CatalogueError(_("unknown tag field %(field)s (fields: "
                                             "%(fields)s)") % {"field": str(k)[:40],
                                                               "fields": ", ".join(FIELDS)})
            _check_value(cat, k, v, new)
        reason = field(e, "reason", str, optional=True, max_len=TEXT_MAX)
        sup = field(e, "supersedes", int, optional=True)
        c = db.tags.c
        held = {r[0]: r[1] for r in conn.execute(sa.select(c.field, c.value).where(
            c.recording_id == rid, c.current.is_(True), c.field.in_(list(fields)),
            _same_span(a, b)))}
        corrects = [k for k in fields if k in held]
        if corrects and not (reason and reason.strip()):
            raise store.CatalogueError(
                _("%(device)s/%(segment)s has %(fields)s already: a correction needs a "
                  "reason (--reason)") % {"device": e["device"], "segment": e["segment"],
                                          "fields": ", ".join(corrects)})
        empty = [k for k, v in fields.items() if v == "" and k not in held]
        if empty:
            raise store.CatalogueError(_("tag field %(field)s is empty and there is no value "
                                         "to withdraw") % {"field": empty[0]})
        if sup is not None and conn.execute(sa.select(sa.func.count()).select_from(db.tags)
                                            .where(c.event == sup, c.recording_id == rid)
                                            ).scalar_one() == 0:
            raise store.CatalogueError(_("log entry %(index)d is no tag of %(device)s/"
                                         "%(segment)s: it cannot be superseded here")
                                       % {"index": sup, "device": e["device"],
                                          "segment": e["segment"]})
        _officer_may(conn, e, rid, a, b)

    @staticmethod
    def apply(cat, conn, i, e):
        rid = _recording(conn, e)
        a, b = e.get("span_from_ms"), e.get("span_to_ms")
        c = db.tags.c
        for k, v in e["fields"].items():
            conn.execute(db.tags.update().where(
                c.recording_id == rid, c.field == k, c.current.is_(True), _same_span(a, b))
                .values(current=False))
            conn.execute(db.tags.insert().values(
                event=i, recording_id=rid, span_from_ms=a, span_to_ms=b, field=k, value=v,
                current=v != "", by_user=e["by"], at=e["at"], reason=e.get("reason")))


def _rows(cat, device, segment, only_current, viewer=None):
    from . import confidentiality
    cat.sync()
    c = db.tags.c
    with cat.engine.connect() as conn:
        rid = store.recording_id(conn, device, segment)
        confidentiality.require_visible_as_missing(conn, viewer, rid)      # R16
        q = sa.select(c.event, c.span_from_ms, c.span_to_ms, c.field, c.value, c.current,
                      c.by_user, c.at, c.reason).where(c.recording_id == rid)
        if only_current:
            q = q.where(c.current.is_(True))
        return [dict(r) for r in conn.execute(q.order_by(c.event, c.id)).mappings()]


def history(cat, device, segment, viewer=None):
    """Every tag row of a recording, oldest first: event (log index), span_from_ms,
    span_to_ms, field, value ("" = withdrawn), current, by_user, at, reason. ``viewer``:
    the users.User reading, or its clearance (None: the default clearance); a recording
    it may not see is refused as one that does not exist (R16)."""
    return _rows(cat, device, segment, False, viewer)


def current(cat, device, segment, viewer=None):
    """The current metadata of a recording: {"whole": {field: value}, "spans":
    [{"span_from_ms", "span_to_ms", field: value, ...}]} (spans in order); ``viewer`` as
    for history."""
    whole, spans = {}, {}
    for r in _rows(cat, device, segment, True, viewer):
        if r["span_from_ms"] is None:
            whole[r["field"]] = r["value"]
        else:
            key = (r["span_from_ms"], r["span_to_ms"])
            spans.setdefault(key, {"span_from_ms": key[0], "span_to_ms": key[1]})[
                r["field"]] = r["value"]
    return {"whole": whole, "spans": [spans[k] for k in sorted(spans)]}
