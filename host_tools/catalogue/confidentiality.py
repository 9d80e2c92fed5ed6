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

Leaving a case does not lower a level (#16): a recording unlinked from a case, or whose
`case` tag stops naming it, keeps that case's level (as it was then) as a floor of its own
level until a `classified` event on the recording sets its level again (lowering it is the
bureau chief's, as always).

The levels are the signed log's (#10): the log's `classified`, case link and `case` tag
entries are read once per Catalogue (Catalogue.entries_with) and replayed here; the floors
come from that replay, and before a level is used the classifications rows are compared
with the rows the log makes: a row edited, added or deleted with SQL access refuses every
visibility question with one line (`sealcam catalogue reindex` rebuilds them). The
functions that get only a connection find their Catalogue by its engine
(store.catalogue_of).

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

import threading

import sqlalchemy as sa

from . import db, store
from ..i18n import _
from .confidentiality_levels import DEFAULT_CLEARANCE, DEFAULT_LEVEL, LEVELS, may_see, rank
from .events import TEXT_MAX, base, field

__all__ = ["KINDS", "classified_event", "classify", "level_of_recording", "level_of_case",
           "own_level", "visible_clause", "require_visible", "case_visible",
           "require_case_visible", "clearance_of", "history", "hidden_levels", "may_see",
           "log_actor", "require_visible_as_missing", "require_case_visible_to"]

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


# -- the signed log's levels (#10, #16) ------------------------------------------------------

_NEEDLES = (b"classified", b"case_linked", b"case_unlinked", b"dcase")   # dcase: CBOR "case"
_OTHERS = {"case_linked": "case", "case_unlinked": "case", "tag": "tag"}
_LOCK = threading.RLock()


def _cat_of(conn):
    """The Catalogue whose engine ``conn`` is of (None: none open)."""
    return store.catalogue_of(conn)


def _logged(cat):
    """The log's entries levels depend on, [(index, entry)] in log order, each made by a
    user the log allowed to (users.check_actor); read again only where the log grew."""
    from . import users
    from .events import CatalogueEventError
    memo = cat.__dict__.setdefault("_conf_logged", {"upto": 0, "events": [], "states": {}})
    lg = cat.archive.log()
    with _LOCK:
        if memo["upto"] < lg.size:
            for i, e in cat.entries_with(*_NEEDLES, start=memo["upto"], stop=lg.size):
                t = e.get("type") if isinstance(e, dict) else None
                if t == "tag" and not (isinstance(e.get("fields"), dict)
                                       and "case" in e["fields"]):
                    continue
                if t != "classified" and t not in _OTHERS:
                    continue
                try:
                    users.check_actor(cat, i, e, _OTHERS.get(t, "classify"))
                except (store.CatalogueError, CatalogueEventError):
                    continue
                memo["events"].append((i, e))
            memo["upto"] = lg.size
    return memo


def _new_state():
    return {"case": {}, "own": {}, "floor": {}, "linked": {}, "tagged": {}, "rows": []}


def _effective(st, key):
    """The recording ``key`` (device, segment)'s level in the replay state ``st``."""
    levels = [st["own"].get(key, DEFAULT_LEVEL), st["floor"].get(key, "public")]
    cases = set(st["linked"].get(key, ())) | {c for (k, _sp), c in st["tagged"].items()
                                              if k == key and c}
    levels += [st["case"].get(c, DEFAULT_LEVEL) for c in cases]
    return max(levels, key=rank)


def _keep(st, key, case_no):
    """``key`` leaves case ``case_no``: it keeps the case's level as a floor (#16)."""
    lv = st["case"].get(case_no)
    if lv is not None and rank(lv) > rank(st["floor"].get(key, "public")):
        st["floor"][key] = lv


def _classified_why(cat, st, i, e):
    """None if the `classified` entry ``e`` at log index ``i`` counts on the replay state
    ``st`` (the entries before it), else (exception class, one line): the rules of the
    module doc, on the users and levels as the log states them at ``i``."""
    from . import access_rules, users
    from .events import CatalogueEventError
    try:
        level = field(e, "level", str, max_len=32)
        reason = field(e, "reason", str, max_len=TEXT_MAX)
        kind = field(e, "kind", str, max_len=16)
        if kind == "recording":
            key = (field(e, "device", str, max_len=64), field(e, "segment", int))
        elif kind == "case":
            key = field(e, "case_no", str, max_len=64)
        else:
            return store.CatalogueError, _("classify a recording or a case, not %(kind)s") % {
                "kind": kind[:40]}
    except CatalogueEventError as ex:
        return store.CatalogueError, str(ex)
    if level not in LEVELS:
        return store.CatalogueError, _("unknown level %(level)s (levels: %(levels)s)") % {
            "level": level[:40], "levels": ", ".join(LEVELS)}
    if not reason.strip():
        return store.CatalogueError, _("a classification needs a reason")
    if kind == "case":
        opened = access_rules.logged(cat)["cases"].get(key)
        if opened is None or opened[0] >= i:
            return store.CatalogueError, _("no case %(case)s") % {"case": key}
    me = users._state_at(users._logged(cat, i + 1), e.get("by"), i) or {}
    role, clearance = me.get("role"), me.get("clearance") or DEFAULT_CLEARANCE
    if kind == "recording":
        seen, cur = _effective(st, key), max(st["own"].get(key, DEFAULT_LEVEL),
                                             st["floor"].get(key, "public"), key=rank)
        if not may_see(clearance, seen):
            return store.CatalogueError, _no_recording(*key)
    else:
        cur = st["case"].get(key, DEFAULT_LEVEL)
        if not may_see(clearance, cur):
            return store.CatalogueError, _("no case %(case)s") % {"case": key}
    if not may_see(clearance, level):
        return store.PermissionRefused, _(
            "user %(name)s (clearance %(clearance)s) may not classify above their own "
            "clearance: %(level)s") % {"name": e["by"], "clearance": clearance,
                                       "level": level}
    if level == cur:
        return store.CatalogueError, _("it is %(level)s already") % {"level": level}
    if rank(level) < rank(cur) and role not in LOWERS:
        return store.PermissionRefused, _(
            "lowering a level (%(cur)s to %(level)s) is the bureau chief's decision, with a "
            "reason; user %(name)s is %(role)s") % {"cur": cur, "level": level,
                                                   "name": e["by"], "role": role}
    return None


def _step(cat, st, i, e):
    """Apply the log entry ``e`` (index ``i``) to the replay state ``st``."""
    t = e.get("type")
    dev, seg = e.get("device"), e.get("segment")
    key = (dev, seg) if isinstance(dev, str) and type(seg) is int else None
    if t == "classified":
        if _classified_why(cat, st, i, e) is not None:
            return
        if e["kind"] == "recording":
            st["own"][key] = e["level"]
            st["floor"].pop(key, None)
            st["rows"].append((i, "recording", key, e["level"]))
        else:
            st["case"][e["case_no"]] = e["level"]
            st["rows"].append((i, "case", e["case_no"], e["level"]))
    elif t == "case_linked" and key is not None and isinstance(e.get("case_no"), str):
        st["linked"].setdefault(key, set()).add(e["case_no"])
    elif t == "case_unlinked" and key is not None and isinstance(e.get("case_no"), str):
        if e["case_no"] in st["linked"].get(key, ()):
            st["linked"][key].discard(e["case_no"])
            _keep(st, key, e["case_no"])
    elif t == "tag" and key is not None:
        new = e["fields"].get("case")
        new = new if isinstance(new, str) and new else None
        span = (e.get("span_from_ms"), e.get("span_to_ms"))
        old = st["tagged"].get((key, span))
        if old and old != new:
            _keep(st, key, old)
        st["tagged"][(key, span)] = new


def _state(cat, upto):
    """The replay state made by the log's entries before ``upto`` (kept per Catalogue for
    the last few ``upto``)."""
    import copy
    memo = _logged(cat)
    with _LOCK:
        st = memo["states"].get(upto)
        if st is not None:
            return st
        best = max((k for k in memo["states"] if k <= upto), default=None)
        st = copy.deepcopy(memo["states"][best]) if best is not None else _new_state()
        st.pop("_levels", None)
        start = best or 0
        for i, e in memo["events"]:
            if start <= i < upto:
                _step(cat, st, i, e)
        if len(memo["states"]) >= 8:
            memo["states"].pop(min(memo["states"]))
        memo["states"][upto] = st
        return st


def _rows_of_log(st):
    """The classifications rows (event, kind, target, level, current) the log makes, a
    recording's target its (device, segment)."""
    newest = {}
    for i, kind, ref, _lv in st["rows"]:
        newest[(kind, ref)] = i
    return {(i, kind, ref, lv, newest[(kind, ref)] == i) for i, kind, ref, lv in st["rows"]}


def _exists(conn, key):
    r = db.recordings.c
    return conn.execute(sa.select(r.id).where(r.device == key[0], r.segment == key[1])
                        ).first() is not None


def _log_state(conn):
    """The replay state for a visibility question on ``conn`` (None: no Catalogue of the
    engine is known: the rows alone answer). When the catalogue has applied the whole log,
    its classifications rows are first compared with the log's (CatalogueError: one line);
    while a sync applies entries, the state where it started."""
    cat = _cat_of(conn)
    if cat is None:
        return None
    applied = cat.applied(conn)
    st = _state(cat, applied)
    if applied < cat.archive.log().size:
        return st
    c, rec = _cl(), db.recordings.c
    have = {(r.id, r.kind, (r.device, r.segment) if r.kind == "recording" else r.case_no,
             r.level, bool(r.current)) for r in conn.execute(
        sa.select(c.id, c.kind, c.case_no, c.level, c.current, rec.device, rec.segment)
        .select_from(db.classifications.outerjoin(db.recordings,
                                                  rec.id == c.recording_id)))}
    want = _rows_of_log(st)
    # a recording the catalogue does not have: its event was refused there
    diff = [x for x in have ^ want if x in have or x[1] != "recording" or
            _exists(conn, x[2])]
    if diff:
        diff = sorted(diff, key=repr)[0]
        raise store.CatalogueError(
            _("the catalogue's confidentiality levels are not the station log's (row of log "
              "entry %(i)s: %(what)s): nothing is shown until `sealcam catalogue reindex` "
              "rebuilds them from the log (`sealcam catalogue check` names what differs)")
            % {"i": diff[0], "what": "added or changed" if diff in have else "missing"})
    return st


def _log_levels(st):
    """{(device, segment): level} of every recording the log classified, filed in a case
    or tagged with one: its own level, its floor and its cases' as the log states them
    (kept with the state)."""
    if st is None:
        return {}
    eff = st.get("_levels")
    if eff is None:
        keys = set(st["own"]) | set(st["floor"]) | set(st["linked"]) | {
            k for k, _sp in st["tagged"]}
        eff = st["_levels"] = {k: _effective(st, k) for k in keys}
    return eff


def _log_level(conn, st, recording_id):
    """The recording's level by the log alone (#10, #16): the rows' links and tags cannot
    lower it."""
    eff = _log_levels(st)
    if not eff:
        return "public"
    r = conn.execute(sa.select(db.recordings.c.device, db.recordings.c.segment).where(
        db.recordings.c.id == recording_id)).first()
    return eff.get((r[0], r[1]), "public") if r is not None else "public"


def _log_hidden(conn, st, hidden):
    """Catalogue ids of the recordings the log puts at a hidden level."""
    keys = sorted(k for k, lv in _log_levels(st).items() if lv in hidden)
    rec = db.recordings.c
    out = []
    for k in range(0, len(keys), 200):
        part = keys[k:k + 200]
        out += [x[0] for x in conn.execute(sa.select(rec.id).where(sa.or_(
            *[sa.and_(rec.device == d, rec.segment == g) for d, g in part])))]
    return out


def own_level(conn, kind, ref) -> str:
    """The current level a recording (id) or a case (number) was given, or the default
    (the rows, once checked against the signed log: _log_state)."""
    _log_state(conn)
    return _own_row_level(conn, kind, ref)


def _own_row_level(conn, kind, ref) -> str:
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
    """The highest of the recording's own level, those of the cases it is in now, and its
    level as the log alone states it (the floor kept from the cases it left, #16; the
    cases the log files it in whatever the rows say, #10)."""
    st = _log_state(conn)                   # the rows checked once
    levels = [_own_row_level(conn, "recording", recording_id),
              _log_level(conn, st, recording_id)]
    levels += [_own_row_level(conn, "case", c) for c in sorted(_cases_of(conn,
                                                                           recording_id))]
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
    floored = []
    if conn is not None:
        st = _log_state(conn)       # the rows checked; what the log hides hidden (#10, #16)
        floored = _log_hidden(conn, st, hidden)
        c = _cl()
        if conn.execute(sa.select(c.id).where(c.current.is_(True), c.level.in_(hidden))
                        .limit(1)).first() is None:
            return rec.id.notin_(floored) if floored else sa.true()
    own = db.classifications.alias("cl_own").c
    via_t = db.classifications.alias("cl_case")
    tag_t = db.classifications.alias("cl_tag")
    via, tagc = via_t.c, tag_t.c
    one = sa.select(sa.literal(1))
    # OFFSET 0 keeps each a probe per recording on PostgreSQL (search.py _tag_cond)
    return sa.not_(sa.or_(
        rec.id.in_(floored) if floored else sa.false(),
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


def require_visible_as_missing(conn, user, recording_id):
    """require_visible, refused exactly as a recording that does not exist (CatalogueError,
    not PermissionRefused: the same message and the same exit code)."""
    try:
        return require_visible(conn, user, recording_id)
    except store.PermissionRefused as e:
        raise store.CatalogueError(str(e)) from None


def require_case_visible_to(conn, user, case_no, message):
    """CatalogueError ``message`` (the caller's words for a case that does not exist)
    unless ``user`` may see case ``case_no``."""
    if not case_visible(conn, user, case_no):
        raise store.CatalogueError(message)


# -- the user of a clerk event as the signed log states it (write checks, on replay too) --

def _event_index(cat, conn, e):
    """The log index of clerk event ``e``: the log's size while Catalogue.act checks it
    (or a module checks it before act), else (a replay) the first entry equal to it not
    applied yet, found by its type, user and time (read once per Catalogue and type, then
    only where the log grew)."""
    import cbor2
    lg = cat.archive.log()
    size = lg.size
    start = cat.applied(conn)
    if start >= size:
        return size
    t = e.get("type")
    if not isinstance(t, str):
        return size
    memos = cat.__dict__.setdefault("_conf_event_index", {})
    with _LOCK:
        memo = memos.setdefault(t, {"upto": 0, "at": {}})
        if memo["upto"] < size:
            for i, x in cat.entries_with(cbor2.dumps(t), start=memo["upto"], stop=size):
                if isinstance(x, dict) and x.get("type") == t:
                    memo["at"].setdefault((str(x.get("by")), str(x.get("at"))), []).append(i)
            memo["upto"] = size
        for i in memo["at"].get((str(e.get("by")), str(e.get("at"))), ()):
            if i >= start and cat.entry(i) == e:
                return i
    for i, x in cat.entries_with(t.encode(), start=start, stop=size):   # another encoding
        if x == e:
            return i
    raise store.CatalogueError(_("%(type)s event not found in the station log") % {
        "type": t[:40]})


def log_actor(cat, conn, e):
    """The users.User that clerk event ``e`` names ("by"), with the role, unit and
    clearance the signed log gives it at that entry (when the event is made and when the
    log is replayed): whom the R16 checks of a write judge."""
    from . import users
    name = e.get("by")
    i = _event_index(cat, conn, e)
    st = users._state_at(users._logged(cat, i + 1), name, i) if isinstance(name, str) \
        else None
    st = st or {}
    return users.User(str(name), st.get("role") or "", st.get("display") or str(name), "log",
                      st.get("unit"), st.get("clearance"))


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


def _index(cat, conn, e):
    """The log index of `classified` event ``e``: the log's size while Catalogue.act
    checks it, else (a replay) the first entry equal to it not applied yet."""
    size = cat.archive.log().size
    start = cat.applied(conn)
    if start >= size:
        return size
    for i, x in _logged(cat)["events"]:
        if i >= start and x == e:
            return i
    return size


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
        _actor(conn, field(e, "by", str))
        # the rules on the log as it stands at the event (the same replay that checks
        # the rows): a record its classifier may not see does not exist for him, ...
        i = _index(cat, conn, e)
        why = _classified_why(cat, _state(cat, i), i, e)
        if why is not None:
            raise why[0](why[1])

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
