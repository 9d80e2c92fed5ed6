"""Access by approval and the register (host_tools.catalogue.access; R15; SPEC §14.9) on
SQLite and on a real PostgreSQL: no access without a valid approval, only the roles the
station's rule names (the case unit's leader, never the requester or a user it added),
other agencies through the custodian, expiry, refusal, the register with each use's
approvals, and decisions taken on the signed log, not on rows an SQL user can change."""
import datetime as dt
import zlib
import re

import pytest
import sqlalchemy as sa

from test_access_common import CASE, access_world, approved_request, second_head, ask
from test_clerk_common import A, B, real_archive
from host_tools.catalogue import access, cases, db, numbers, store, users
from host_tools.catalogue.store import Catalogue


@pytest.fixture
def world(tmp_path, catalogue_url):
    cat, u = access_world(tmp_path, catalogue_url)
    yield cat, u
    cat.close()


@pytest.fixture
def cleared_world(tmp_path, catalogue_url):
    """world, wang.head cleared confidential (he clears other users)."""
    cat, u = access_world(tmp_path, catalogue_url, head_clearance="confidential")
    yield cat, u
    cat.close()


_ask = ask


def _later(monkeypatch, days):
    """The station's clock ``days`` ahead (events' "at" and authorize's now)."""
    from host_tools.archive import common
    real = common.utcnow

    def ahead():
        t = dt.datetime.fromisoformat(real()) + dt.timedelta(days=days)
        return t.isoformat(timespec="milliseconds")
    monkeypatch.setattr(common, "utcnow", ahead)


def test_r15_refused_without_approval(world):
    cat, u = world
    rid = _ask(cat, u)
    assert re.fullmatch(r"AR-20[0-9]{2}-0001", rid)
    st = access.state(cat, rid)
    assert st["state"] == "requested" and st["missing"] == ["archive_head", "unit_leader"]
    assert st["recordings"] == [(A, 2), (A, 3)]
    with pytest.raises(access.AccessRefused, match="not approved: it still needs "
                                                   "archive_head \\+ unit_leader"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)
    with pytest.raises(access.AccessRefused, match="not approved"):
        access.record_use(cat, u["clerk"], rid, "view", device=A, segment=2)
    access.approve(cat, u["head2"], rid)
    with pytest.raises(access.AccessRefused, match="still needs unit_leader"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)
    access.approve(cat, u["leader"], rid)
    assert access.authorize(cat, u["clerk"], rid, "view", A, 2)["state"] == "approved"
    assert access.register(cat) == []
    with pytest.raises(access.AccessRefused, match="no access request"):
        access.authorize(cat, u["clerk"], "AR-2020-0009", "view", A, 2)


def test_r15_only_the_right_roles(world):
    cat, u = world
    rid = _ask(cat, u, who="head2")
    # a clerk or an officer approves nothing (their role lacks the permission)
    for who in ("clerk", "officer", "auditor"):
        with pytest.raises(store.PermissionRefused):
            access.approve(cat, u[who], rid)
    # the requester never approves its own request, whatever its role
    with pytest.raises(access.AccessRefused, match="made request .* may not decide"):
        access.approve(cat, u["head2"], rid)
    # another unit's leader does not count
    with pytest.raises(access.AccessRefused, match="leads unit U-2, not U-1"):
        access.approve(cat, u["leader2"], rid)
    # the bureau chief is not the rule here
    with pytest.raises(access.AccessRefused, match="needs the approval of"):
        access.approve(cat, u["chief"], rid)
    # an archive head neither the requester (wu.head) nor who set up the leader (wang.head)
    cat.act(u["chief"], users.add_event("ma.head", "archive_head", os_account="nosuch-ma"))
    third = users.User("ma.head", "archive_head", how="os")
    access.approve(cat, third, rid)
    with pytest.raises(access.AccessRefused, match="approved request .* already"):
        access.approve(cat, third, rid)
    assert access.state(cat, rid)["missing"] == ["unit_leader"]
    access.approve(cat, u["leader"], rid, reason="for the hearing")
    st = access.state(cat, rid)
    assert st["state"] == "approved" and st["missing"] == []
    assert [(a["by"], a["role"], a["reason"]) for a in st["approvals"]] == [
        ("ma.head", "archive_head", None), ("zhao.lead", "unit_leader", "for the hearing")]
    with pytest.raises(access.AccessRefused, match="approved already"):
        access.refuse(cat, u["leader"], rid, "changed my mind")
    # only the requester uses it, only for the actions and recordings it names
    with pytest.raises(access.AccessRefused, match="only its requester"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)
    with pytest.raises(access.AccessRefused, match="allows view, not copy"):
        access.authorize(cat, u["head2"], rid, "copy", A, 2)
    with pytest.raises(access.AccessRefused, match="does not cover"):
        access.authorize(cat, u["head2"], rid, "view", B, 4)
    access.authorize(cat, u["head2"], rid, "view", A, 3)
    # an approver the requester added does not count
    cat.act(u["head2"], users.add_event("he.lead", "unit_leader", os_account="nosuch-x",
                                        unit="U-1"))
    rid2 = _ask(cat, u, who="head2")
    with pytest.raises(access.AccessRefused, match="was added by wu.head"):
        access.approve(cat, users.User("he.lead", "unit_leader", how="os", unit="U-1"), rid2)
    # an approval names the role the log gives its user
    with pytest.raises(access.AccessRefused, match="is unit_leader, not archive_head"):
        cat.act(u["leader"], {"type": "access_approved", "request": rid2,
                              "role": "archive_head"})


def test_r15_bureau_chief_mode(world):
    cat, u = world
    cat.config.values["access"] = {"approval": "bureau_chief"}
    rid = _ask(cat, u)
    st = access.state(cat, rid)
    assert st["rule"] == "bureau_chief" and st["missing"] == ["bureau_chief"]
    for who in ("head", "leader"):
        with pytest.raises(access.AccessRefused, match="needs the approval of bureau_chief"):
            access.approve(cat, u[who], rid)
    access.approve(cat, u["chief"], rid)
    assert access.state(cat, rid)["state"] == "approved"
    access.authorize(cat, u["clerk"], rid, "view", A, 2)
    # the rule is the station's: a request made under another one counts for nothing
    cat.config.values["access"] = {"approval": "head_and_unit_leader"}
    with pytest.raises(store.CatalogueError, match="no access request"):
        access.state(cat, rid)
    with pytest.raises(access.AccessRefused, match="no access request"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)
    assert access.state(cat, _ask(cat, u))["missing"] == ["archive_head", "unit_leader"]
    cat.config.values["access"] = {"approval": "anyone"}
    with pytest.raises(store.CatalogueError, match=r"\[access\] approval"):
        _ask(cat, u)


def test_r15_other_agency_goes_through_the_custodian(world):
    cat, u = world
    cat.config.values["access"] = {"approval": "bureau_chief"}
    rid = _ask(cat, u, agency="某某区人民法院", actions=("view", "copy"))
    st = access.state(cat, rid)
    assert st["agency"] == "某某区人民法院" and st["missing"] == ["bureau_chief",
                                                              "archive_head"]
    access.approve(cat, u["chief"], rid)
    with pytest.raises(access.AccessRefused, match="still needs archive_head"):
        access.authorize(cat, u["clerk"], rid, "copy", A, 2)
    access.approve(cat, u["head2"], rid)
    access.authorize(cat, u["clerk"], rid, "copy", A, 2)


def test_r15_expired_request_refused(world, monkeypatch):
    cat, u = world
    rid = _ask(cat, u, valid_days=2)
    old = _ask(cat, u)
    approved = approved_request(cat, u)
    access.approve(cat, u["head2"], rid)
    _later(monkeypatch, 3)
    assert access.state(cat, rid)["state"] == "expired"
    with pytest.raises(access.AccessRefused, match="expired"):
        access.approve(cat, u["leader"], rid)
    assert access.state(cat, approved)["state"] == "approved"     # 7 days by default
    access.authorize(cat, u["clerk"], approved, "view", A, 2)
    _later(monkeypatch, 8)
    assert access.state(cat, old)["state"] == "expired"
    with pytest.raises(access.AccessRefused, match="expired"):
        access.authorize(cat, u["clerk"], approved, "view", A, 2)
    with pytest.raises(access.AccessRefused, match="expired"):
        access.record_use(cat, u["clerk"], approved, "view", device=A, segment=2)
    with pytest.raises(store.CatalogueError, match="1 to 7 days"):
        _ask(cat, u, valid_days=8)


def test_r15_a_refusal_ends_the_request(world):
    cat, u = world
    rid = _ask(cat, u)
    access.approve(cat, u["head2"], rid)
    with pytest.raises(store.CatalogueError, match="reason"):
        access.refuse(cat, u["leader"], rid, "  ")
    access.refuse(cat, u["leader"], rid, "不必要 not needed")
    st = access.state(cat, rid)
    assert st["state"] == "refused" and st["refusal"]["by"] == "zhao.lead"
    with pytest.raises(access.AccessRefused, match="refused"):
        access.approve(cat, u["head2"], rid)
    with pytest.raises(access.AccessRefused, match="refused"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)
    with cat.engine.connect() as conn:
        assert conn.execute(sa.select(db.access_requests.c.state)).scalar() == "refused"


def test_r15_request_names_purpose_case_and_target(world):
    cat, u = world
    with pytest.raises(store.CatalogueError, match="purpose"):
        _ask(cat, u, purpose=" ")
    with pytest.raises(store.CatalogueError, match="names a case"):
        _ask(cat, u, case_no=None)
    with pytest.raises(store.CatalogueError, match="no case FZ-404"):
        _ask(cat, u, case_no="FZ-404", target="FZ-404")
    with pytest.raises(store.CatalogueError, match="actions"):
        _ask(cat, u, actions=("view", "delete"))
    # a recording not filed in the case is not covered by the case's approvers
    with pytest.raises(store.CatalogueError, match="no recording filed in case"):
        _ask(cat, u, target_kind="recording", target="%s:4" % B)
    cat.act(u["clerk"], cases.opened_event("FZ-2", "no unit"))
    with pytest.raises(store.CatalogueError, match="names no unit"):
        _ask(cat, u, case_no="FZ-2", target="FZ-2")
    rid = _ask(cat, u, target_kind="recording", target="%s:3" % A, actions=("export",))
    assert access.state(cat, rid)["recordings"] == [(A, 3)]
    assert rid.endswith("-0001")
    # numbers are never reused, even when the row is gone (checked against the log)
    with cat.engine.begin() as conn:
        conn.execute(db.access_requests.delete())
    second = _ask(cat, u)
    assert second.endswith("-0002")
    # a row made by SQL with the next number neither is that request nor blocks one
    forged = second[:-4] + "0003"
    with cat.engine.begin() as conn:
        conn.execute(db.access_requests.insert().values(
            id=forged, event=1, requester="li.na", purpose="x", case_no=CASE,
            actions="view", target_kind="case", target=CASE, state="approved",
            requested_at="2026-01-01T00:00:00.000+00:00",
            valid_until="2099-01-01T00:00:00.000+00:00"))
    assert _ask(cat, u).endswith("-0004")
    with pytest.raises(store.CatalogueError, match="no access request"):
        access.state(cat, forged)


def test_r15_register_lists_each_use_with_its_approval(world):
    cat, u = world
    rid = approved_request(cat, u, actions=("view", "copy"))
    sha = "ab" * 32
    i = access.record_use(cat, u["clerk"], rid, "view", device=A, segment=2, output=sha)
    access.record_use(cat, u["clerk"], rid, "copy", device=A, segment=3)
    with pytest.raises(store.CatalogueError, match="SHA-256"):
        access.record_use(cat, u["clerk"], rid, "view", device=A, segment=2, output="x")
    rows = access.register(cat)
    assert [(r["index"], r["requester"], r["action"], r["target"], r["request_id"],
             r["valid"]) for r in rows] == [
        (i, "li.na", "view", "%s:2" % A, rid, True),
        (i + 1, "li.na", "copy", "%s:3" % A, rid, True)]
    assert rows[0]["output"] == sha and rows[0]["purpose"] == "court hearing 庭审"
    assert [(a["by"], a["role"]) for a in rows[0]["approvals"]] == [
        ("wu.head", "archive_head"), ("zhao.lead", "unit_leader")]
    today = rows[0]["at"][:10]
    assert len(access.register(cat, today, today)) == 2
    assert access.register(cat, "2000-01-01", "2000-12-31") == []
    with pytest.raises(store.CatalogueError, match="not a day"):
        access.register(cat, "yesterday")
    e = cat.entry(i)
    assert (e["type"], e["by"], e["request"], e["device"], e["segment"]) == (
        "access_used", "li.na", rid, A, 2)
    with cat.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.accesses)
                            ).scalar() == 2


def test_r15_number_target(world):
    cat, u = world
    e = numbers.assign(cat, u["clerk"], [(A, 2), (B, 4)], party="张三", step="inspection")
    rid = approved_request(cat, u, target_kind="number", target=e["number"])
    # the number's recordings filed in the case: A/2 (B/4 is not in FZ-1)
    assert access.state(cat, rid)["recordings"] == [(A, 2)]
    access.authorize(cat, u["clerk"], rid, "view", A, 2)
    with pytest.raises(access.AccessRefused, match="does not cover"):
        access.authorize(cat, u["clerk"], rid, "view", B, 4)
    # taken out of the case: no longer covered
    cat.act(u["clerk"], cases.unlinked_event(CASE, "misfiled", device=A, segment=2))
    with pytest.raises(access.AccessRefused, match="does not cover"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)


def test_r15_forged_rows_do_not_authorize(world):
    cat, u = world
    rid = _ask(cat, u)
    access.approve(cat, u["head2"], rid)
    with cat.engine.begin() as conn:
        conn.execute(db.access_requests.update().values(state="approved"))
        conn.execute(db.access_decisions.insert().values(
            id=999, request_id=rid, decision="approved", role="unit_leader", reason=None,
            by_user="zhao.lead", at="2026-01-01T00:00:00.000+00:00"))
        # the U-2 leader made leader of U-1 in the database only
        conn.execute(db.users.update().where(db.users.c.name == "qian.lead").values(unit="U-1"))
        # a recording filed in the case by SQL
        rec = conn.execute(sa.select(db.recordings.c.id).where(
            db.recordings.c.device == B)).scalar()
        conn.execute(db.case_items.insert().values(
            event=998, case_no=CASE, kind="recording", recording_id=rec, role="primary",
            current=True, by_user="li.na", at="2026-01-01T00:00:00.000+00:00"))
    with pytest.raises(access.AccessRefused, match="still needs unit_leader"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)
    with pytest.raises(access.AccessRefused, match="not approved"):
        access.record_use(cat, u["clerk"], rid, "view", device=A, segment=2)
    with pytest.raises(access.AccessRefused, match="leads unit U-2"):
        access.approve(cat, users.User("qian.lead", "unit_leader", how="os", unit="U-1"),
                       rid)
    access.approve(cat, u["leader"], rid)
    with pytest.raises(access.AccessRefused, match="does not cover"):
        access.authorize(cat, u["clerk"], rid, "view", B, 4)
    # a request row made by SQL is no request
    with cat.engine.begin() as conn:
        conn.execute(db.access_requests.insert().values(
            id="AR-2026-0500", event=5, requester="li.na", purpose="x", case_no=CASE,
            actions="view", target_kind="case", target=CASE, state="approved",
            requested_at="2026-01-01T00:00:00.000+00:00",
            valid_until="2099-01-01T00:00:00.000+00:00"))
    with pytest.raises(access.AccessRefused, match="no access request AR-2026-0500"):
        access.authorize(cat, u["clerk"], "AR-2026-0500", "view", A, 2)


@pytest.fixture
def real(tmp_path, tmp_path_factory):
    arch, f = real_archive(tmp_path, tmp_path_factory)
    cat = Catalogue(arch)
    from test_clerk_common import add_users
    u = add_users(cat)
    cat.act(u["head"], users.change_event("zhao.lead", unit="U-1"))
    u["leader"] = users.User("zhao.lead", "unit_leader", how="os", unit="U-1")
    cat.act(u["clerk"], cases.opened_event(CASE, "现场执法", unit="U-1"))
    for dev, seg in ((A, f["a1"]), (B, f["b1"])):
        cat.act(u["clerk"], cases.linked_event(CASE, device=dev, segment=seg))
    yield arch, f, cat, u
    cat.close()


def test_r15_replay_refuses_a_use_appended_without_approval(real, capsys, monkeypatch):
    monkeypatch.delenv("SEALCAM_PASSWORD", raising=False)
    from host_tools.archive.common import utcnow
    from host_tools.catalogue import check
    arch, f, cat, u = real
    rid = _ask(cat, u)
    access.approve(cat, second_head(cat, u), rid)
    ok = approved_request(cat, u)
    good = access.record_use(cat, u["clerk"], ok, "view", device=A, segment=f["a1"])
    # appended to the signed log directly, past Catalogue.act: the use has no approval
    forged = cat.archive.log().append([{"type": "access_used", "at": utcnow(), "by": "li.na",
                                        "request": rid, "action": "view", "device": A,
                                        "segment": f["a1"]}])
    # and an approval by a unit leader of another unit, appended the same way
    cat.archive.log().append([{"type": "access_approved", "at": utcnow(), "by": "sun.audit",
                               "request": rid, "role": "unit_leader"}])
    cat.sync()
    assert any("log entry %d (access_used) is not applied" % forged in p and
               "not approved" in p for p in cat.problems)
    assert access.state(cat, rid)["state"] == "requested"
    n = cat.reindex()
    assert n == cat.archive.log().size
    assert [p.split(":")[0] for p in cat.problems] == [
        "log entry %d (access_used) is not applied" % forged,
        "log entry %d (access_approved) is not applied" % (forged + 1)]
    with cat.engine.connect() as conn:
        assert [r[0] for r in conn.execute(sa.select(db.accesses.c.id))] == [good]
        assert conn.execute(sa.select(db.access_requests.c.state).where(
            db.access_requests.c.id == rid)).scalar() == "requested"
    # the register hides nothing the log holds: the forged use is there, not allowed
    rows = access.register(cat)
    assert [(r["index"], r["valid"]) for r in rows] == [(good, True), (forged, False)]
    assert "not approved" in rows[1]["problem"]
    # a catalogue rebuilt from the log matches the database
    # `sealcam access register` says so and exits 1
    import argparse
    from host_tools.catalogue import access_cli
    p = argparse.ArgumentParser(prog="sealcam")
    access_cli.add_parsers(p.add_subparsers(dest="verb"), argparse.HelpFormatter)
    args = p.parse_args(["access", "register", "--archive", str(arch), "--db", cat.url])
    assert args.func(args) == 5                         # no one signed in
    assert "--user" in capsys.readouterr().err
    cat.act(u["head"], users.add_event("sun.view", "auditor", os_account=users.os_login()))
    args = p.parse_args(["access", "register", "--archive", str(arch), "--db", cat.url,
                         "--user", "sun.view"])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "NOT ALLOWED by the rules: request %s is not approved" % rid in out
    assert "1 not allowed by the rules" in out
    tables = check.check(cat)["tables"]
    assert tables["accesses"] == {"rows": 1, "extra": 0, "missing": 0}
    assert tables["access_decisions"] == {"rows": 3, "extra": 0, "missing": 0}
    assert tables["access_requests"] == {"rows": 2, "extra": 0, "missing": 0}


def _pdf_text_codes(data):
    """The Unicode code points the PDF's ToUnicode maps name (its streams inflated)."""
    out = set()
    for m in re.finditer(rb"(?<!end)stream\r?\n", data):
        start = m.end()
        end = data.find(b"endstream", start)
        try:
            s = zlib.decompress(data[start:end].rstrip(b"\r\n"))
        except zlib.error:
            s = data[start:end]
        if b"beginbfchar" in s or b"beginbfrange" in s:
            out.update(int(u, 16) for _g, u in re.findall(
                rb"<([0-9A-Fa-f]{4})>\s*<([0-9A-Fa-f]{4,8})>", s))
    return out


def test_r15_register_pdf_with_the_chinese_text(world, tmp_path):
    cat, u = world
    rid = approved_request(cat, u)
    access.record_use(cat, u["clerk"], rid, "view", device=A, segment=2)
    path = tmp_path / "register.pdf"
    rows = access.register_pdf(cat, path, overwrite=False)
    assert len(rows) == 1
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert b"FontFile2" in data and b"WenQuanYi" in data.replace(b" ", b"")
    codes = _pdf_text_codes(data)
    for ch in "审核人签字访问登记庭审":
        assert ord(ch) in codes, ch
    with pytest.raises(FileExistsError):
        access.register_pdf(cat, path, overwrite=False)


def test_r15_access_events_match_the_cddl(real):
    """The five access events, as the catalogue writes them to the signed log, are
    `clerk-access-event` and `log-entry` of schema.cddl; an edited one is not."""
    import os

    import cbor2
    pycddl = pytest.importorskip("pycddl")
    arch, f, cat, u = real
    rid = access.request(cat, u["clerk"], target_kind="recording",
                         target="%s:%d" % (A, f["a1"]), case_no=CASE, purpose="复核",
                         actions=("view", "copy"), agency="某某法院")
    access.approve(cat, second_head(cat, u), rid, reason="ok")
    access.approve(cat, u["leader"], rid)
    access.record_use(cat, u["clerk"], rid, "view", device=A, segment=f["a1"],
                      output="0f" * 32)
    access.record_use(cat, u["clerk"], rid, "copy")
    access.revoke(cat, u["head"], rid, "the hearing is over 庭审结束")
    access.refuse(cat, u["head"], _ask(cat, u), "不需要")
    here = os.path.dirname(os.path.abspath(__file__))
    text = open(os.path.join(here, "..", "protocol", "schema.cddl")).read()
    for rule in ("clerk-classified", "clerk-copy-made", "clerk-disc-made",
                 "clerk-backup-made", "clerk-handover-event"):    # others' rules, if not yet
        if not re.search(r"^%s\s*=" % rule, text, re.M):
            text += "\n%s = nil\n" % rule
    one = pycddl.Schema("root = clerk-access-event\n" + text)
    entry = pycddl.Schema("root = log-entry\n" + text)
    seen = []
    for i, raw, e in cat.archive.log().entries():
        if e["type"] in access.TYPES:
            one.validate_cbor(raw)
            entry.validate_cbor(raw)
            seen.append(e["type"])
    assert sorted(set(seen)) == sorted(access.TYPES) and len(seen) == 8
    bad = dict(cat.entry(cat.archive.log().size - 1), reason=None)
    with pytest.raises(Exception):
        one.validate_cbor(cbor2.dumps(bad, canonical=True))
    bad = dict(cat.entry(cat.archive.log().size - 2), action="burn")
    with pytest.raises(Exception):
        one.validate_cbor(cbor2.dumps(bad, canonical=True))


def test_r15_r16_no_access_to_what_the_user_may_not_see(cleared_world):
    """authorize and the use's handler ask confidentiality (R16): a recording classified
    above the requester's clearance is refused like one that does not exist."""
    conf = pytest.importorskip("host_tools.catalogue.confidentiality")
    cat, u = cleared_world
    rid = approved_request(cat, u)
    cat.act(u["head"], users.change_event("wu.head", clearance="confidential"))
    head2 = users.User("wu.head", "archive_head", how="os", clearance="confidential")
    conf.classify(cat, head2, "recording", "confidential", "证人名单", device=A, segment=2)
    with pytest.raises(store.PermissionRefused, match="no recording"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)
    with pytest.raises(store.PermissionRefused, match="no recording"):
        access.record_use(cat, u["clerk"], rid, "view", device=A, segment=2)
    access.authorize(cat, u["clerk"], rid, "view", A, 3)
    # a request for that one recording is refused as if it did not exist
    with pytest.raises(store.CatalogueError, match="no recording"):
        _ask(cat, u, target_kind="recording", target="%s:2" % A)
    # given the clearance (in the log), the same request serves it
    cat.act(u["head"], users.change_event("li.na", clearance="confidential"))
    clerk = users.User("li.na", "clerk", how="os", clearance="confidential")
    access.authorize(cat, clerk, rid, "view", A, 2)
    access.record_use(cat, clerk, rid, "view", device=A, segment=2)


def test_r15_station_toml_names_the_rule(tmp_path, catalogue_url):
    """station.toml [access] approval = "bureau_chief" (002 §16) and valid_days, once the
    station's settings declare the section (host_tools/stationconfig.py SECTIONS)."""
    from host_tools import station, stationconfig
    if "access" not in stationconfig.SECTIONS:
        pytest.skip("station.toml [access] is not declared in stationconfig.SECTIONS yet")
    arch = tmp_path / "arch"
    station.init(arch)
    (arch / "station.toml").write_text('[access]\napproval = "bureau_chief"\n'
                                       'valid_days = 3\n')
    with Catalogue(arch, catalogue_url) as cat:
        assert access.settings(cat) == ("bureau_chief", 3)
    (arch / "station.toml").write_text('[access]\napproval = "anyone"\n')
    with pytest.raises(stationconfig.StationConfigError, match="approval"):
        Catalogue(arch, catalogue_url)


def test_r15_each_decision_is_judged_where_it_stands_in_the_log(world):
    """An approval counts by its user's role and unit at its place in the log: a later
    move to another unit does not undo it; a leader moved in later approves the next
    request; a requester no longer active uses nothing."""
    cat, u = world
    rid = approved_request(cat, u)
    cat.act(u["head"], users.change_event("zhao.lead", unit="U-2"))
    cat.act(u["head"], users.change_event("qian.lead", unit="U-1"))
    assert access.state(cat, rid)["state"] == "approved"
    access.authorize(cat, u["clerk"], rid, "view", A, 2)
    rid2 = _ask(cat, u)
    with pytest.raises(access.AccessRefused, match="leads unit U-2, not U-1"):
        access.approve(cat, users.User("zhao.lead", "unit_leader", how="os", unit="U-2"),
                       rid2)
    access.approve(cat, users.User("qian.lead", "unit_leader", how="os", unit="U-1"), rid2)
    assert access.state(cat, rid2)["missing"] == ["archive_head"]
    cat.act(u["head"], users.change_event("li.na", active=False))
    with pytest.raises(access.AccessRefused, match="not an active user"):
        access.authorize(cat, u["clerk"], rid, "view", A, 2)
    with pytest.raises(store.PermissionRefused, match="not an active user"):
        access.record_use(cat, u["clerk"], rid, "view", device=A, segment=2)
