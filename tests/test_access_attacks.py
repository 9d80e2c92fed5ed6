"""The access register under attack (issue 12's attack review: #01 self-approval, #05 scope
grown after approval, #14 the requester picks the rule, #02 a hidden case seen through a
request, #03b the register read without signing in, #17 no revoke and no cap on validity):
each break reproduced, and refused, on the signed log (SQLite only: the rules read the
log, the database is the same code as in tests/test_access.py)."""
import datetime as dt

import pytest
import sqlalchemy as sa

from test_access_common import CASE, UNIT, access_world, approved_request, ask
from test_clerk_common import A, B
from host_tools.catalogue import access, cases, db, store, users


def _shift(monkeypatch, days):
    """The station's clock ``days`` ahead (negative: back)."""
    from host_tools.archive import common
    real = common.utcnow

    def moved():
        t = dt.datetime.fromisoformat(real()) + dt.timedelta(days=days)
        return t.isoformat(timespec="milliseconds")
    monkeypatch.setattr(common, "utcnow", moved)


@pytest.fixture
def world(tmp_path):
    cat, u = access_world(tmp_path, "sqlite:///%s" % (tmp_path / "c.sqlite"))
    yield cat, u
    cat.close()


@pytest.fixture
def cleared_world(tmp_path):
    """world after a first user gao.top cleared confidential (he clears wu.head, _hide)."""
    cat, u = access_world(tmp_path, "sqlite:///%s" % (tmp_path / "c.sqlite"),
                          top="confidential")
    yield cat, u
    cat.close()


@pytest.fixture
def old(tmp_path, monkeypatch):
    """The access world set up 60 days ago (users, units, the case): its users' set-up is
    long past, so the archive head and the unit leader approve together."""
    _shift(monkeypatch, -60)
    cat, u = access_world(tmp_path, "sqlite:///%s" % (tmp_path / "c.sqlite"))
    monkeypatch.undo()
    yield cat, u
    cat.close()


_ask = ask


def _raw(cat, e):
    """``e`` appended to the signed log past Catalogue.act (a forged entry); synced."""
    from host_tools.archive.common import utcnow
    i = cat.archive.log().append([dict(e, at=utcnow())])
    cat.sync()
    return i


# -- #01 one person, two approvals ------------------------------------------------------

def test_01_set_up_long_ago_head_and_leader_approve(old):
    """Set up 60 days ago; and a third person's reset is no reason: wang.head reset the
    leader's password, wu.head and the leader decide (wang.head added the requester
    li.na: it approves none of its requests, #01 of attack13)."""
    cat, u = old
    cat.act(u["head"], users.password_event("zhao.lead", "head-knows-it"))
    rid = _ask(cat, u)
    access.approve(cat, u["head2"], rid)
    access.approve(cat, u["leader"], rid)
    assert access.authorize(cat, u["clerk"], rid, "view", A, 2)["state"] == "approved"
    with pytest.raises(access.AccessRefused, match="wang.head added requester li.na"):
        access.approve(cat, u["head"], _ask(cat, u))        # 60 days ago: still not


def test_01_head_resets_the_leaders_password_then_approves_as_both(old):
    cat, u = old
    cat.act(u["head2"], users.password_event("zhao.lead", "head-knows-it"))
    rid = _ask(cat, u)
    access.approve(cat, u["head2"], rid)
    with pytest.raises(access.AccessRefused, match="zhao.lead was given a new password by "
                                                   "wu.head .*does not count"):
        access.approve(cat, u["leader"], rid)
    # the other order: the leader's approval first, the head's is refused
    rid2 = _ask(cat, u)
    access.approve(cat, u["leader"], rid2)
    with pytest.raises(access.AccessRefused, match="zhao.lead was given a new password by "
                                                   "wu.head"):
        access.approve(cat, u["head2"], rid2)
    # appended past Catalogue.act, the approval counts on no replay either
    _raw(cat, {"type": "access_approved", "by": "zhao.lead", "request": rid,
               "role": "unit_leader"})
    assert access.state(cat, rid)["missing"] == ["unit_leader"]
    with pytest.raises(access.AccessRefused, match="still needs unit_leader"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)
    assert any("access_approved" in p and "given a new password" in p for p in cat.problems)


def test_01_a_reset_after_the_request_counts_the_same(old):
    cat, u = old
    rid3 = _ask(cat, u)
    access.approve(cat, u["head2"], rid3)
    cat.act(u["head2"], users.password_event("zhao.lead", "head2-knows-it"))
    with pytest.raises(access.AccessRefused, match="given a new password by wu.head"):
        access.approve(cat, u["leader"], rid3)


def test_01_head_makes_a_crony_leader(old):
    cat, u = old
    cat.act(u["head2"], users.add_event("crony", "unit_leader", os_account="nosuch-c",
                                        unit=UNIT))
    crony = users.User("crony", "unit_leader", how="os", unit=UNIT)
    cat.act(u["head2"], users.change_event("ofc-0001", role="unit_leader", unit=UNIT))
    promoted = users.User("ofc-0001", "unit_leader", how="os", unit=UNIT)
    rid = _ask(cat, u)
    access.approve(cat, u["head2"], rid)
    with pytest.raises(access.AccessRefused, match="crony was added by wu.head"):
        access.approve(cat, crony, rid)
    with pytest.raises(access.AccessRefused, match="ofc-0001 was changed .* by wu.head"):
        access.approve(cat, promoted, rid)
    assert access.state(cat, rid)["state"] == "requested"


def test_01_the_requester_promotes_an_approver(old):
    cat, u = old
    rid = _ask(cat, u, who="head2")
    cat.act(u["head2"], users.change_event("ofc-0002", role="unit_leader", unit=UNIT))
    with pytest.raises(access.AccessRefused, match="ofc-0002 was changed .* by wu.head"):
        access.approve(cat, users.User("ofc-0002", "unit_leader", how="os", unit=UNIT), rid)
    # the requester promoted into an approving role still decides nothing of its own
    rid2 = _ask(cat, u)
    cat.act(u["head"], users.change_event("li.na", role="unit_leader", unit=UNIT))
    with pytest.raises(access.AccessRefused, match="made request .* may not decide"):
        access.approve(cat, users.User("li.na", "unit_leader", how="os", unit=UNIT), rid2)


def test_01_set_up_just_before_the_request(world):
    """wang.head set up zhao.lead moments before: they do not approve together, wu.head
    and zhao.lead do (approved_request). The requester is sun.clerk, whom the bureau
    chief added (wang.head added li.na: it approves nothing of hers)."""
    cat, u = world
    u["sun"] = _sun(cat, u)
    rid = _ask(cat, u, who="sun")
    access.approve(cat, u["head"], rid)
    with pytest.raises(access.AccessRefused, match="zhao.lead was added by wang.head"):
        access.approve(cat, u["leader"], rid)
    ok = approved_request(cat, u)
    assert access.state(cat, ok)["state"] == "approved"


def _sun(cat, u, by="chief"):
    """sun.clerk, a clerk added by u[by]."""
    cat.act(u[by], users.add_event("sun.clerk", "clerk", os_account="nosuch-sun"))
    return users.User("sun.clerk", "clerk", how="os")


def test_01_an_approver_who_set_up_the_requester_does_not_count(world):
    """attack13 #01: the approver added the requester (at any time), or changed it or
    gave it a password less than RECENT_DAYS before the request or after it: under both
    rules its approval does not count, when made and on replay."""
    cat, u = world
    u["sun"] = _sun(cat, u)
    # the bureau chief's own sock puppet, under the bureau_chief rule
    cat.config.values["access"] = {"approval": "bureau_chief"}
    rid = _ask(cat, u, who="sun")
    with pytest.raises(access.AccessRefused, match="zhou.chief added requester sun.clerk "
                                                   "of request .* another user must"):
        access.approve(cat, u["chief"], rid)
    _raw(cat, {"type": "access_approved", "by": "zhou.chief", "request": rid,
               "role": "bureau_chief"})
    assert access.state(cat, rid)["state"] == "requested"
    with pytest.raises(access.AccessRefused, match="not approved"):
        access.authorize(cat, u["sun"], rid, "view", A, 2)
    assert any("access_approved" in p and "added requester sun.clerk" in p
               for p in cat.problems)
    # another bureau chief approves
    cat.act(u["chief"], users.add_event("he.chief", "bureau_chief", os_account="nosuch-he"))
    assert access.approve(cat, users.User("he.chief", "bureau_chief", how="os"), rid)
    assert access.state(cat, rid)["state"] == "approved"
    # the default rule: a head who gave the requester a password after the request
    cat.config.values["access"] = {}
    rid2 = _ask(cat, u)
    cat.act(u["head2"], users.password_event("li.na", "head2-knows-it"))
    with pytest.raises(access.AccessRefused, match="wu.head set the password of requester "
                                                   "li.na"):
        access.approve(cat, u["head2"], rid2)
    # and wang.head, who added li.na, approves none of her requests
    with pytest.raises(access.AccessRefused, match="wang.head added requester li.na"):
        access.approve(cat, u["head"], rid2)


# -- attack13 #04 the requester does not pick the approving unit ---------------------------

def test_04_each_unit_of_the_recordings_and_their_cases_approves(world, tmp_path):
    """A/2 is in FZ-1 (U-1) and recorded in U-1: filed into MY-1 of unit U-2 it still
    needs U-1's leader, besides U-2's; an unrelated unit's leader decides nothing; a
    recording of no unit in a case of no other: the case's unit as before."""
    from test_clerk_common import add_recording
    cat, u = world
    cat.act(u["clerk"], cases.opened_event("MY-1", "a case of my own", unit="U-2"))
    cat.act(u["clerk"], cases.linked_event("MY-1", device=A, segment=2))
    rid = _ask(cat, u, target="MY-1", case_no="MY-1")
    assert access.state(cat, rid)["units"] == ["U-1", "U-2"]
    access.approve(cat, u["head2"], rid)
    access.approve(cat, u["leader2"], rid)
    with pytest.raises(access.AccessRefused, match=r"still needs unit_leader \(U-1\)"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)
    cat.act(u["head"], users.add_event("sun.lead", "unit_leader", os_account="nosuch-s",
                                       unit="U-2"))
    with pytest.raises(access.AccessRefused, match="approval of a leader of unit U-2 "
                                                   "already: it still needs unit_leader"):
        access.approve(cat, users.User("sun.lead", "unit_leader", how="os", unit="U-2"), rid)
    cat.act(u["head"], users.add_event("li.lead", "unit_leader", os_account="nosuch-l",
                                       unit="U-3"))
    with pytest.raises(access.AccessRefused, match="leads unit U-3, not U-1, U-2"):
        access.approve(cat, users.User("li.lead", "unit_leader", how="os", unit="U-3"), rid)
    access.approve(cat, u["leader"], rid)
    assert access.authorize(cat, u["clerk"], rid, "view", A, 2)["state"] == "approved"
    # unlinked from FZ-1 first: the recording's own unit (its REC_START's) still counts
    cat.act(u["clerk"], cases.unlinked_event(CASE, "moved", device=A, segment=3))
    cat.act(u["clerk"], cases.linked_event("MY-1", device=A, segment=3))
    rid2 = _ask(cat, u, target_kind="recording", target="%s:3" % A, case_no="MY-1")
    assert access.state(cat, rid2)["units"] == ["U-1", "U-2"]
    access.approve(cat, u["head2"], rid2)
    access.approve(cat, u["leader2"], rid2)
    # appended past Catalogue.act, a replay counts U-2's approval for U-2 only
    _raw(cat, {"type": "access_approved", "by": "sun.lead", "request": rid2,
               "role": "unit_leader"})
    assert access.state(cat, rid2)["missing"] == ["unit_leader"]
    # a recording of no unit, in no other case: the case's unit alone
    add_recording(cat, B, 7, unit=None)
    cat.act(u["clerk"], cases.linked_event("MY-1", device=B, segment=7))
    rid3 = _ask(cat, u, target_kind="recording", target="%s:7" % B, case_no="MY-1")
    assert access.state(cat, rid3)["units"] == ["U-2"]
    access.approve(cat, u["head2"], rid3)
    access.approve(cat, u["leader2"], rid3)
    assert access.state(cat, rid3)["state"] == "approved"
    # the bureau chief rule stays one chief
    cat.config.values["access"] = {"approval": "bureau_chief"}
    rid4 = _ask(cat, u, target="MY-1", case_no="MY-1")
    access.approve(cat, u["chief"], rid4)
    assert access.state(cat, rid4)["state"] == "approved"


def test_04_case_numbers_are_nfkc_of_a_safe_set(world):
    cat, u = world
    for bad in ("FZ\u20101", "\uff26\uff3a-1", "FZ 1", "FZ-1;", "\u0410-1", "FZ\u00a01"):
        with pytest.raises(store.CatalogueError, match="case number"):
            cat.act(u["clerk"], cases.opened_event(bad, "t", unit=UNIT))
    for good in ("(2026)京0105行初123号", "FZ-2026_01.a/b"):
        cat.act(u["clerk"], cases.opened_event(good, "t", unit=UNIT))


# -- #05 the scope is fixed when the request is made ------------------------------------

def test_05_recordings_filed_after_the_request_are_not_covered(world):
    cat, u = world
    rid = approved_request(cat, u)
    cat.act(u["clerk"], cases.linked_event(CASE, device=B, segment=4))
    assert access.state(cat, rid)["recordings"] == [(A, 2), (A, 3)]
    with pytest.raises(access.AccessRefused, match="does not cover recording"):
        access.authorize(cat, u["clerk"], rid, "view", B, 4)
    with pytest.raises(access.AccessRefused, match="does not cover recording"):
        access.record_use(cat, u["clerk"], rid, "view", device=B, segment=4)
    access.record_use(cat, u["clerk"], rid, "view", device=A, segment=2)
    # a whole-target use covers what it covered then
    access.authorize(cat, u["clerk"], rid, "view")
    # also between the request and its approval
    rid2 = access.request(cat, u["clerk"], target_kind="case", target=CASE, case_no=CASE,
                          purpose="x", actions=("view",))
    cat.act(u["clerk"], cases.opened_event("FZ-3", "y", unit=UNIT))
    cat.act(u["clerk"], cases.unlinked_event(CASE, "misfiled", device=B, segment=4))
    cat.act(u["clerk"], cases.linked_event(CASE, device=B, segment=4))
    access.approve(cat, u["head2"], rid2)
    access.approve(cat, u["leader"], rid2)
    assert (B, 4) in access.state(cat, rid2)["recordings"]     # filed when it was made
    # a new request covers the case as it is now
    rid3 = approved_request(cat, u)
    assert access.state(cat, rid3)["recordings"] == [(A, 2), (A, 3), (B, 4)]
    access.authorize(cat, u["clerk"], rid3, "view", B, 4)


# -- #14 the station names the rule, the number and the validity --------------------------

def test_14_the_requester_does_not_pick_the_rule(world):
    cat, u = world
    for extra in ({"rule": "bureau_chief"}, {"valid_until": "2099-01-01T00:00:00.000+00:00"},
                  {"request": "AR-2026-999999999"}):
        e = access.request_event(target_kind="case", target=CASE, case_no=CASE,
                                 purpose="x", actions=("view",))
        e.update(extra)
        with pytest.raises(store.CatalogueError, match="does not name its .*station gives"):
            cat.act(u["clerk"], e)
    with pytest.raises(store.CatalogueError, match="1 to 7 days"):
        _ask(cat, u, valid_days=30)
    rid = _ask(cat, u, valid_days=3)
    st = access.state(cat, rid)
    assert st["rule"] == "head_and_unit_leader"
    # forged into the log: a request naming another rule counts for nothing on replay
    year = st["requested_at"][:4]
    forged = "AR-%s-0777" % year
    _raw(cat, {"type": "access_requested", "by": "li.na", "request": forged,
               "purpose": "x", "case_no": CASE, "actions": ["view"], "target_kind": "case",
               "target": CASE, "rule": "bureau_chief",
               "valid_until": "%s-12-31T00:00:00.000+00:00" % year})
    assert any("access_requested" in p and "approval rule bureau_chief" in p
               for p in cat.problems)
    _raw(cat, {"type": "access_approved", "by": "zhou.chief", "request": forged,
               "role": "bureau_chief"})
    with pytest.raises(store.CatalogueError, match="no access request"):
        access.state(cat, forged)
    with pytest.raises(access.AccessRefused, match="no access request"):
        access.authorize(cat, u["clerk"], forged, "view", A, 2)
    assert forged not in [r["id"] for r in access.requests(cat)]


# -- #02 a hidden case is no case -----------------------------------------------------------

def _hide(cat, u):
    """Case FZ-2 (no unit, B/4 filed) confidential, A/3 confidential; wu.head cleared."""
    cat.act(u["top"], users.change_event("wu.head", clearance="confidential"))
    top = users.User("wu.head", "archive_head", how="os", clearance="confidential")
    cat.act(u["clerk"], cases.opened_event("FZ-2", "专案"))
    cat.act(u["clerk"], cases.linked_event("FZ-2", device=B, segment=4))
    cat.act(top, {"type": "classified", "kind": "case", "case_no": "FZ-2",
                  "level": "confidential", "reason": "专案"})
    cat.act(top, {"type": "classified", "kind": "recording", "device": A, "segment": 3,
                  "level": "confidential", "reason": "证人"})
    return top


def _refusal(fn):
    with pytest.raises(store.CatalogueError) as ex:
        fn()
    return type(ex.value), str(ex.value)


def test_02_a_request_on_a_hidden_case_is_refused_as_a_missing_one(cleared_world):
    pytest.importorskip("host_tools.catalogue.confidentiality")
    cat, u = cleared_world
    top = _hide(cat, u)
    for kind, target in (("case", None), ("recording", "%s:4" % B), ("number", "N-1")):
        hidden = _refusal(lambda: _ask(cat, u, case_no="FZ-2", target_kind=kind,
                                       target=target or "FZ-2"))
        missing = _refusal(lambda: _ask(cat, u, case_no="FZ-9", target_kind=kind,
                                        target=target or "FZ-9"))
        assert hidden == (missing[0], missing[1].replace("FZ-9", "FZ-2")), kind
    # a hidden recording of a visible case: as a missing recording
    hidden = _refusal(lambda: _ask(cat, u, target_kind="recording", target="%s:3" % A))
    missing = _refusal(lambda: _ask(cat, u, target_kind="recording", target="%s:99" % A))
    assert hidden == (missing[0], missing[1].replace("/99", "/3"))
    # the whole case: what the requester may see is all it is shown
    rid = approved_request(cat, u)
    assert access.state(cat, rid, viewer=u["clerk"])["recordings"] == [(A, 2)]
    assert access.state(cat, rid, viewer=top)["recordings"] == [(A, 2), (A, 3)]
    # a request on a hidden case (by one who may see it) is no request to the others
    cat.act(top, cases.opened_event("FZ-5", "专案", unit=UNIT))     # B/4 is hidden
    cat.act(top, cases.linked_event("FZ-5", device=B, segment=4))   # from the clerk
    cat.act(top, {"type": "classified", "kind": "case", "case_no": "FZ-5",
                  "level": "confidential", "reason": "专案"})
    secret = access.request(cat, top, target_kind="case", target="FZ-5", case_no="FZ-5",
                            purpose="专案", actions=("view",))
    assert access.requests(cat, viewer=top)[0]["id"] == secret
    for who in ("head", "clerk", "auditor"):
        assert secret not in [r["id"] for r in access.requests(cat, viewer=u[who])]
        with pytest.raises(store.CatalogueError, match="there is no access request"):
            access.state(cat, secret, viewer=u[who])


# -- #03b what a signed-in user may see of the register ------------------------------------

def test_03b_each_user_sees_its_part_of_the_register(world):
    cat, u = world
    mine = approved_request(cat, u)
    access.record_use(cat, u["clerk"], mine, "view", device=A, segment=2)
    cat.act(u["head"], users.change_event("ofc-0001", role="clerk"))
    other = users.User("ofc-0001", "clerk", how="os")
    theirs = access.request(cat, other, target_kind="case", target=CASE, case_no=CASE,
                            purpose="y", actions=("view",))

    def ids(who):
        return sorted(r["id"] for r in access.requests(cat, viewer=who))
    assert ids(u["clerk"]) == [mine]
    assert ids(other) == [theirs]
    assert ids(u["leader2"]) == []                  # another unit's leader
    for who in ("head", "chief", "auditor", "leader"):
        assert ids(u[who]) == sorted([mine, theirs]), who
    with pytest.raises(store.CatalogueError, match="there is no access request"):
        access.state(cat, mine, viewer=other)
    assert [r["request_id"] for r in access.register(cat, viewer=u["clerk"])] == [mine]
    assert access.register(cat, viewer=other) == []
    assert len(access.register(cat, viewer=u["auditor"])) == 1
    with pytest.raises(store.CatalogueError, match="signed-in user"):
        access.register(cat, viewer="nobody")


# -- #17 revoke, and a cap on validity -------------------------------------------------------

def test_17_an_approval_is_revoked(world):
    cat, u = world
    rid = approved_request(cat, u, actions=("view", "copy"))
    access.record_use(cat, u["clerk"], rid, "view", device=A, segment=2)
    with pytest.raises(store.PermissionRefused):
        access.revoke(cat, u["clerk"], rid, "mine")
    with pytest.raises(access.AccessRefused, match="neither approved .* nor is an archive"):
        access.revoke(cat, u["leader2"], rid, "not mine")
    with pytest.raises(store.CatalogueError, match="reason"):
        access.revoke(cat, u["leader"], rid, " ")
    i = access.revoke(cat, u["leader"], rid, "the hearing was cancelled")
    st = access.state(cat, rid)
    assert st["state"] == "revoked" and st["revocation"]["by"] == "zhao.lead"
    assert not st["approved"]
    with pytest.raises(access.AccessRefused, match="revoked by zhao.lead"):
        access.authorize(cat, u["clerk"], rid, "copy", A, 2)
    with pytest.raises(access.AccessRefused, match="revoked by zhao.lead"):
        access.record_use(cat, u["clerk"], rid, "copy", device=A, segment=2)
    with pytest.raises(access.AccessRefused, match="revoked"):
        access.approve(cat, u["head"], rid)
    with pytest.raises(access.AccessRefused, match="revoked by zhao.lead already"):
        access.revoke(cat, u["head"], rid, "again")
    # the use before the revocation stays allowed on the register
    assert [r["valid"] for r in access.register(cat)] == [True]
    # any archive head revokes; a pending request too
    pending = _ask(cat, u)
    access.revoke(cat, u["head"], pending, "no longer needed")
    assert access.state(cat, pending)["state"] == "revoked"
    assert [r["id"] for r in access.requests(cat, "revoked")] == [pending, rid]
    e = cat.entry(i)
    assert (e["type"], e["request"], e["reason"]) == ("access_revoked", rid,
                                                      "the hearing was cancelled")
    with cat.engine.connect() as conn:
        assert conn.execute(sa.select(db.access_requests.c.state).where(
            db.access_requests.c.id == rid)).scalar() == "revoked"
        assert conn.execute(sa.select(db.access_decisions.c.decision).where(
            db.access_decisions.c.id == i)).scalar() == "revoked"
    # appended past Catalogue.act by one who may not, it revokes nothing
    rid2 = approved_request(cat, u)
    _raw(cat, {"type": "access_revoked", "by": "qian.lead", "request": rid2,
               "reason": "x"})
    assert access.state(cat, rid2)["state"] == "approved"


def test_17_validity_is_capped(tmp_path):
    from host_tools import station, stationconfig
    from host_tools.catalogue.store import Catalogue
    arch = tmp_path / "arch"
    station.init(arch)
    url = "sqlite:///%s" % (tmp_path / "c.sqlite")
    (arch / "station.toml").write_text('[access]\nvalid_days = 120\n')
    with pytest.raises(stationconfig.StationConfigError, match="valid_days.*1 to 90"):
        Catalogue(arch, url)
    (arch / "station.toml").write_text('[access]\nvalid_days = 90\n')
    with Catalogue(arch, url) as cat:
        assert access.settings(cat) == ("head_and_unit_leader", 90)
        cat.config.values["access"] = {"valid_days": 366}
        with pytest.raises(store.CatalogueError, match="valid_days is 1 to 90"):
            access.settings(cat)


def test_02_an_approver_who_may_not_see_the_case_finds_no_request(cleared_world):
    pytest.importorskip("host_tools.catalogue.confidentiality")
    cat, u = cleared_world
    top = _hide(cat, u)
    cat.act(top, cases.opened_event("FZ-5", "专案", unit=UNIT))     # B/4 is hidden
    cat.act(top, cases.linked_event("FZ-5", device=B, segment=4))   # from the clerk
    cat.act(top, {"type": "classified", "kind": "case", "case_no": "FZ-5",
                  "level": "confidential", "reason": "专案"})
    secret = access.request(cat, top, target_kind="case", target="FZ-5", case_no="FZ-5",
                            purpose="专案", actions=("view",))
    missing = _refusal(lambda: access.approve(cat, u["leader"], "AR-2020-0042"))
    for fn in (lambda: access.approve(cat, u["leader"], secret),
               lambda: access.refuse(cat, u["leader"], secret, "no"),
               lambda: access.revoke(cat, u["head"], secret, "no")):
        assert _refusal(fn) == (missing[0], missing[1].replace("AR-2020-0042", secret))
