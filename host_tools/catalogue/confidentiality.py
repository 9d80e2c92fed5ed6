"""Confidentiality (R16; SPEC §14.8): who may even see that a record exists.

    cat.act(head, classified_event("recording", "restricted", "名单涉及证人",
                                   device="SC-0001", segment=2))
    cat.act(head, classified_event("case", "confidential", "专案", case_no="FZ-1"))
    level_of_recording(conn, recording_id)     # the highest of its own and its cases'
    level_of_case(conn, "FZ-1")
    sa.select(db.recordings.c.id).where(visible_clause(user))   # what ``user`` may see
    require_visible(conn, user, recording_id)  # PermissionRefused otherwise

Event (SPEC §14.8):
    classified  {kind: recording, device, segment, level, reason}
                {kind: case, case_no, level, reason}

Levels (confidentiality_levels.LEVELS): public < internal < restricted < confidential; a
record nobody classified is internal, a user without a clearance has internal. Each
classification is a row of ``classifications``; the newest for a target is current, the
older ones stay as its history. A recording's level is the highest of its own current
level and the current level of every case it is linked to (filed in the case, or carrying
its number as the `case` metadata value): filing a recording into a confidential case
hides it.

Rules (checked when the event is made and again when the log is replayed, against the
users as the log stated them then):
- only an archive head or the bureau chief classifies (permission ``classify``);
- nobody classifies above his own clearance, nor touches a record he may not see (it is
  "no recording" / "no case" to him, as if it did not exist);
- lowering a level (below the target's current own level) is the bureau chief's alone,
  with a reason (every classification has one); setting the current level again is
  refused.
"""
from __future__ import annotations

import sqlalchemy as sa

from . import db, store
from ..i18n import _
from .confidentiality_levels import DEFAULT_CLEARANCE, DEFAULT_LEVEL, LEVELS, may_see, rank
from .events import TEXT_MAX, base, field

__all__ = ["KINDS", "classified_event", "classify", "level_of_recording", "level_of_case",
           "own_level", "visible_clause", "require_visible", "case_visible",
           "require_case_visible", "clearance_of", "history", "hidden_levels", "may_see"]

KINDS = ("recording", "case")
LOWERS = ("bureau_chief",)          # who may lower a level


def clearance_of(user_or_clearance) -> str:
    """The clearance of a users.User, a level given as text, or the default (None)."""
    if user_or_clearance is None:
        return DEFAULT_CLEARANCE
    if isinstance(user_or_clearance, str):
        return user_or_clearance
    return getattr(user_or_clearance, "clearance", None) or DEFAULT_CLEARANCE


def hidden_levels(user_or_clearance) -> list:
    """The levels above the clearance: records at them are hidden."""
    r = rank(clearance_of(user_or_clearance))
    return [lv for lv in LEVELS if rank(lv) > r]


# -- events ------------------------------------------------------------------------------

def classified_event(kind, level, reason, *, device=None, segment=None, case_no=None):
    if kind not in KINDS:
        raise store.CatalogueError(_("classify a recording or a case, not %(kind)s")
                                   % {"kind": str(kind)[:40]})
    if kind == "recording":
        return base("classified", None, None, kind=kind, device=device, segment=segment,
                    level=level, reason=reason)
    return base("classified", None, None, kind=kind, case_no=case_no, level=level,
                reason=reason)


def classify(cat, user, kind, level, reason, *, device=None, segment=None, case_no=None):
    """Classify; returns the log index of the `classified` event."""
    return cat.act(user, classified_event(kind, level, reason, device=device,
                                          segment=segment, case_no=case_no))


def _cl():
    return db.classifications.c


def own_level(conn, kind, ref) -> str:
    """The current level a recording (id) or a case (number) was given, or the default."""
    c = _cl()
    col = c.recording_id if kind == "recording" else c.case_no
    r = conn.execute(sa.select(c.level).where(c.kind == kind, col == ref,
                                              c.current.is_(True))
                     .order_by(c.id.desc()).limit(1)).first()
    return r[0] if r is not None else DEFAULT_LEVEL


def level_of_case(conn, case_no) -> str:
    return own_level(conn, "case", case_no)


def _cases_of(conn, recording_id) -> set:
    ci, t = db.case_items.c, db.tags.c
    linked = {x[0] for x in conn.execute(sa.select(ci.case_no).where(
        ci.recording_id == recording_id, ci.kind == "recording", ci.current.is_(True)))}
    tagged = {x[0] for x in conn.execute(sa.select(t.value).where(
        t.recording_id == recording_id, t.field == "case", t.current.is_(True)))}
    return linked | tagged


def level_of_recording(conn, recording_id) -> str:
    """The highest of the recording's own level and those of the cases it is in now."""
    levels = [own_level(conn, "recording", recording_id)]
    levels += [level_of_case(conn, c) for c in sorted(_cases_of(conn, recording_id))]
    return max(levels, key=rank)


def visible_clause(user_or_clearance, conn=None):
    """An SQLAlchemy condition on db.recordings: the recording is visible at the user's
    clearance. NOT EXISTS probes, per recording, on indexed columns: its own current
    classification (classifications.recording_id), its cases' (case_items.recording_id,
    then classifications.case_no) and its `case` tags (tags (recording_id, field)). With
    ``conn``, a station where nothing is classified above the clearance gets no condition
    at all (nothing to hide)."""
    hidden = hidden_levels(user_or_clearance)
    if not hidden:
        return sa.true()
    rec, ci, t = db.recordings.c, db.case_items.c, db.tags.c
    if conn is not None:
        c = _cl()
        if conn.execute(sa.select(c.id).where(c.current.is_(True), c.level.in_(hidden))
                        .limit(1)).first() is None:
            return sa.true()
    own = db.classifications.alias("cl_own").c
    via_t = db.classifications.alias("cl_case")
    tag_t = db.classifications.alias("cl_tag")
    via, tagc = via_t.c, tag_t.c
    one = sa.select(sa.literal(1))
    # OFFSET 0 keeps each a probe per recording on PostgreSQL (search.py _tag_cond)
    return sa.not_(sa.or_(
        sa.exists(one.where(own.recording_id == rec.id, own.kind == "recording",
                            own.current.is_(True), own.level.in_(hidden)).offset(0)),
        sa.exists(one.select_from(db.case_items).join(
            via_t, via.case_no == ci.case_no).where(
            ci.recording_id == rec.id, ci.kind == "recording", ci.current.is_(True),
            via.kind == "case", via.current.is_(True), via.level.in_(hidden)).offset(0)),
        sa.exists(one.select_from(db.tags).join(
            tag_t, tagc.case_no == t.value).where(
            t.recording_id == rec.id, t.field == "case", t.current.is_(True),
            tagc.kind == "case", tagc.current.is_(True), tagc.level.in_(hidden)).offset(0))))


def _no_recording(device, segment):
    return _("no recording %(device)s/%(segment)s in the archive: `sealcam search` lists "
             "them (a recording is a device and the seq of its segment)") % {
        "device": device, "segment": segment}


def require_visible(conn, user, recording_id):
    """PermissionRefused unless ``user`` (a users.User, a clearance, or None: the default
    clearance) may see the recording of catalogue id ``recording_id``. The message is the
    one of a recording that does not exist: a hidden record's existence does not leak."""
    level = level_of_recording(conn, recording_id)
    if not may_see(clearance_of(user), level):
        r = conn.execute(sa.select(db.recordings.c.device, db.recordings.c.segment).where(
            db.recordings.c.id == recording_id)).first()
        raise store.PermissionRefused(_no_recording(*(r or ("?", "?"))))
    return level


def case_visible(conn, user, case_no) -> bool:
    return may_see(clearance_of(user), level_of_case(conn, case_no))


def require_case_visible(conn, user, case_no):
    """CatalogueError 'no case X' (as for a case that does not exist) unless visible."""
    if not case_visible(conn, user, case_no):
        raise store.CatalogueError(_("no case %(case)s") % {"case": case_no})


def history(cat, user, kind, *, device=None, segment=None, case_no=None) -> list:
    """The classifications of a target, oldest first (level, reason, by_user, at, current),
    if ``user`` may see it (else the 'no recording' / 'no case' refusal)."""
    cat.sync()
    c = _cl()
    with cat.engine.connect() as conn:
        if kind == "recording":
            rid = store.recording_id(conn, device, segment)
            try:
                require_visible(conn, user, rid)
            except store.PermissionRefused as e:    # as for one that does not exist
                raise store.CatalogueError(str(e)) from None
            where = (c.kind == "recording", c.recording_id == rid)
        else:
            _case_row(conn, case_no)
            require_case_visible(conn, user, case_no)
            where = (c.kind == "case", c.case_no == case_no)
        return [dict(r) for r in conn.execute(
            sa.select(c.id.label("event"), c.level, c.reason, c.by_user, c.at, c.current)
            .where(*where).order_by(c.id)).mappings()]


def _case_row(conn, case_no):
    r = conn.execute(sa.select(db.cases.c.case_no).where(db.cases.c.case_no == case_no)
                     ).first()
    if r is None:
        raise store.CatalogueError(_("no case %(case)s") % {"case": case_no})
    return r


def _actor(conn, name):
    u = db.users.c
    r = conn.execute(sa.select(u.role, u.clearance).where(u.name == name)).first()
    if r is None:
        raise store.PermissionRefused(_("no user %(name)s") % {"name": name})
    return r[0], r[1] or DEFAULT_CLEARANCE


@store.handles("classified", permission="classify")
class _Classified:
    @staticmethod
    def _target(conn, e):
        kind = field(e, "kind", str, max_len=16)
        if kind not in KINDS:
            raise store.CatalogueError(_("classify a recording or a case, not %(kind)s")
                                       % {"kind": kind[:40]})
        if kind == "recording":
            if "case_no" in e:
                raise store.CatalogueError(_("a classification names a recording or a "
                                             "case, not both"))
            dev, seg = field(e, "device", str, max_len=64), field(e, "segment", int)
            return kind, store.recording_id(conn, dev, seg), (dev, seg)
        if "device" in e or "segment" in e:
            raise store.CatalogueError(_("a classification names a recording or a case, "
                                         "not both"))
        case_no = field(e, "case_no", str, max_len=64)
        _case_row(conn, case_no)
        return kind, case_no, None

    @staticmethod
    def check(cat, conn, e):
        level = field(e, "level", str, max_len=32)
        if level not in LEVELS:
            raise store.CatalogueError(_("unknown level %(level)s (levels: %(levels)s)")
                                       % {"level": level[:40], "levels": ", ".join(LEVELS)})
        reason = field(e, "reason", str, max_len=TEXT_MAX)
        if not reason.strip():
            raise store.CatalogueError(_("a classification needs a reason"))
        kind, ref, rec = _Classified._target(conn, e)
        role, clearance = _actor(conn, field(e, "by", str))
        # a record its classifier may not see does not exist for him
        if kind == "recording":
            if not may_see(clearance, level_of_recording(conn, ref)):
                raise store.CatalogueError(_no_recording(*rec))
        elif not may_see(clearance, level_of_case(conn, ref)):
            raise store.CatalogueError(_("no case %(case)s") % {"case": ref})
        if not may_see(clearance, level):
            raise store.PermissionRefused(
                _("user %(name)s (clearance %(clearance)s) may not classify above their own "
                  "clearance: %(level)s") % {"name": e["by"], "clearance": clearance,
                                             "level": level})
        cur = own_level(conn, kind, ref)
        if level == cur:
            raise store.CatalogueError(_("it is %(level)s already") % {"level": level})
        if rank(level) < rank(cur) and role not in LOWERS:
            raise store.PermissionRefused(
                _("lowering a level (%(cur)s to %(level)s) is the bureau chief's decision, "
                  "with a reason; user %(name)s is %(role)s")
                % {"cur": cur, "level": level, "name": e["by"], "role": role})

    @staticmethod
    def apply(cat, conn, i, e):
        kind, ref, _rec = _Classified._target(conn, e)
        c = _cl()
        col = c.recording_id if kind == "recording" else c.case_no
        conn.execute(db.classifications.update().where(c.kind == kind, col == ref)
                     .values(current=False))
        conn.execute(db.classifications.insert().values(
            id=i, kind=kind, recording_id=ref if kind == "recording" else None,
            case_no=ref if kind == "case" else None, level=e["level"], reason=e["reason"],
            current=True, by_user=e["by"], at=e["at"]))
