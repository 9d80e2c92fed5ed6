"""Retention (host_tools.catalogue.retention; R12, issue 11 item 5) on SQLite and on a real
PostgreSQL: classes from station.toml and the recordings' tags and marks (the longest wins),
holds, what is due, and disposal with a request by one user and an approval by another,
which removes the media from a real archive while verify stays OK."""
import datetime as dt
import os

import pytest
import sqlalchemy as sa

from test_clerk_common import A, B, add_recording, add_users, catalogue, real_archive
from host_tools.archive import Archive
from host_tools.archive_verify import verify_archive
from host_tools.catalogue import db, retention, store, tags
from host_tools.catalogue.store import Catalogue
from host_tools.tlog.replay import replay
from host_tools.verify import NOT_OK, OK

# T0 + 10 minutes is 2023-11-14 (UTC): ordinary (24 months) expires on 2025-11-15
EXPIRES = "2025-11-15"


@pytest.fixture
def world(tmp_path, catalogue_url):
    cat, u = catalogue(tmp_path, catalogue_url)
    for seg in (2, 3, 4, 5, 6):
        add_recording(cat, A, seg)
    yield cat, u
    cat.close()


def status(cat, seg, today="2026-12-01"):
    return retention.assess(cat, A, seg, today)


def test_r12_classes_longest_wins_and_expiry(world):
    cat, u = world
    assert retention.add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    a = status(cat, 2, "2025-11-14")
    assert (a["class"], a["expires_on"], a["status"]) == ("ordinary", EXPIRES, "not_yet")
    assert status(cat, 2, EXPIRES)["status"] == "due"
    # an event type of the station's permanent list: permanent, never due
    cat.act(u["clerk"], tags.tag_event(A, 3, event_type="obstruction"))
    a = status(cat, 3, "2099-01-01")
    assert (a["class"], a["status"], a["expires_on"]) == ("permanent", "kept", None)
    assert any("obstruction" in w for w in a["why"])
    # a clerk's proposal of long_term (120 months); a later ordinary proposal never shortens
    cat.act(u["clerk"], tags.tag_event(A, 4, retention_class="long_term"))
    a = status(cat, 4)
    assert (a["class"], a["expires_on"], a["status"]) == ("long_term", "2033-11-15", "not_yet")
    cat.act(u["head"], tags.tag_event(A, 4, retention_class="ordinary", reason="re-filed"))
    assert status(cat, 4)["class"] == "ordinary"        # superseded: the current tag counts
    # on a span only: counts for the whole recording
    cat.act(u["clerk"], tags.tag_event(A, 4, span_from_ms=1000, span_to_ms=5000,
                                       event_type="mass_incident"))
    assert status(cat, 4)["class"] == "permanent"
    # an IMPORTANT mark proposes permanent
    with cat.engine.begin() as conn:
        conn.execute(db.recordings.update().where(db.recordings.c.segment == 5)
                     .values(marks_important=1))
    a = status(cat, 5)
    assert a["class"] == "permanent" and any("IMPORTANT" in w for w in a["why"])
    # what is due: only the ordinary recordings past their expiry
    due = retention.due(cat, "2026-12-01")
    assert [(x["device"], x["segment"]) for x in due] == [(A, 2), (A, 6)]
    assert all(x["class"] == "ordinary" and x["expires_on"] == EXPIRES for x in due)
    assert retention.due(cat, "2025-11-14") == []
    assert len(retention.due(cat, "2026-12-01", everything=True)) == 5


def test_r12_six_months_where_the_station_says_so(tmp_path, catalogue_url):
    arch = tmp_path / "arch6"
    from host_tools import station
    station.init(arch)
    (arch / "station.toml").write_text("[retention]\nordinary_months = 6\n")
    with Catalogue(arch, catalogue_url) as cat:
        add_users(cat)
        add_recording(cat, A, 2)
        a = retention.assess(cat, A, 2, "2024-05-15")
        assert (a["class"], a["expires_on"], a["status"]) == ("ordinary", "2024-05-15", "due")
        assert retention.assess(cat, A, 2, "2024-05-14")["status"] == "not_yet"
    (arch / "station.toml").write_text("[retention]\nordinary_months = 5\n")
    from host_tools.stationconfig import StationConfigError
    with pytest.raises(StationConfigError, match="at least 6"):
        Catalogue(arch, catalogue_url)


def test_r12_holds_block_and_release(world):
    cat, u = world
    h = retention.hold(cat, u["leader"], "%s/2" % A, "legal", "lawsuit pending")
    a = status(cat, 2)
    assert a["status"] == "held" and a["holds"] == [h]
    with pytest.raises(retention.RetentionRefused, match="held"):
        retention.request(cat, u["clerk"], A, 2, "expired")
    # a case hold covers every recording tagged with (or filed in) the case
    cat.act(u["clerk"], tags.tag_event(A, 6, case="FZ-2023-001"))
    hc = retention.hold(cat, u["head"], "case:FZ-2023-001", "case", "case under review")
    assert status(cat, 6)["status"] == "held"
    assert [x["segment"] for x in retention.due(cat, "2026-12-01")] == [3, 4, 5]
    with pytest.raises(store.PermissionRefused):
        retention.hold(cat, u["clerk"], "%s/3" % A, "legal", "x")
    with pytest.raises(store.CatalogueError, match="kind"):
        retention.hold(cat, u["head"], "%s/3" % A, "forever", "x")
    with pytest.raises(store.CatalogueError, match="reason"):
        retention.hold(cat, u["head"], "%s/3" % A, "legal", "  ")
    retention.release(cat, u["leader"], h, "judgment final")
    retention.release(cat, u["head"], hc, "review done")
    with pytest.raises(store.CatalogueError, match="no active hold"):
        retention.release(cat, u["head"], hc, "again")
    # the released hold no longer keeps 2; 6 stays: it is case evidence (permanent)
    assert [x["segment"] for x in retention.due(cat, "2026-12-01")] == [2, 3, 4, 5]
    assert status(cat, 6)["class"] == "permanent" and status(cat, 6)["status"] == "kept"
    assert retention.holds(cat) == [] and len(retention.holds(cat, active=False)) == 2
    # the holds are signed log entries naming their users
    e = cat.entry(h)
    assert e["type"] == "hold_placed" and e["by"] == "zhao.lead" and e["kind"] == "legal"
    assert e["device"] == A and e["segment"] == 2 and e["reason"] == "lawsuit pending"
    r = cat.entry(hc + 2)
    assert r["type"] == "hold_released" and r["hold"] == hc and r["by"] == "wang.head"


def test_request_and_refusal_rules(world):
    cat, u = world
    with pytest.raises(store.PermissionRefused):
        retention.request(cat, u["officer"], A, 2, "expired")
    cat.act(u["clerk"], tags.tag_event(A, 3, event_type="lawsuit"))
    with pytest.raises(store.CatalogueError, match="kept permanently"):
        retention.request(cat, u["clerk"], A, 3, "expired")
    assert "kept until 2025-11-15 (class ordinary)" in retention.refusal(
        status(cat, 4, "2025-01-01"))
    with pytest.raises(store.CatalogueError, match="needs a reason"):
        retention.request(cat, u["clerk"], A, 4, " ")
    rq = retention.request(cat, u["clerk"], A, 2, "24 months ended")
    with pytest.raises(store.CatalogueError, match="pending disposal request"):
        retention.request(cat, u["head"], A, 2, "again")
    with pytest.raises(store.PermissionRefused):
        retention.refuse(cat, u["clerk"], rq, "no")
    retention.refuse(cat, u["leader"], rq, "keep it for training")
    r = retention.requests(cat)
    assert [(x["id"], x["state"], x["decided_by"]) for x in r] == [(rq, "refused",
                                                                     "zhao.lead")]
    with pytest.raises(store.CatalogueError, match="no pending"):
        retention.approve(cat, u["leader"], rq)
    # a request the head made: the head may not approve it
    rq2 = retention.request(cat, u["head"], A, 2, "24 months ended")
    with pytest.raises(store.PermissionRefused, match="another user"):
        retention.approve(cat, u["head"], rq2)
    with pytest.raises(store.PermissionRefused):
        retention.approve(cat, u["auditor"], rq2)
    # a hold placed after the request blocks the approval
    h = retention.hold(cat, u["leader"], "%s/2" % A, "legal", "complaint filed")
    with pytest.raises(store.CatalogueError, match="held"):
        retention.approve(cat, u["leader"], rq2)
    assert retention.requests(cat, "requested")[0]["id"] == rq2
    assert h


@pytest.fixture
def real(tmp_path, tmp_path_factory, catalogue_url):
    arch, f = real_archive(tmp_path, tmp_path_factory)
    cat = Catalogue(arch, catalogue_url)
    u = add_users(cat)
    cat.refresh_recordings()
    yield arch, f, cat, u
    cat.close()


def test_r12_disposal_with_approval_on_a_real_archive(real):
    arch, f, cat, u = real
    due = {(x["device"], x["segment"]) for x in retention.due(cat)}
    assert {(A, f["a1"]), (B, f["b1"])} <= due            # recorded in 2023: expired
    # B's recording is held for a case; A's first is requested and approved
    retention.hold(cat, u["head"], "%s/%d" % (B, f["b1"]), "case", "second angle, case open")
    rq = retention.request(cat, u["clerk"], A, f["a1"], "ordinary, 24 months ended")
    media = os.path.join(arch, "devices", A, "m", "%08d.mkv" % f["a1"])
    assert os.path.exists(media)
    exp = retention.assess(cat, A, f["a1"])["expires_on"]
    assert exp.startswith("2025-11-1")
    e = retention.approve(cat, u["leader"], rq)
    assert e["type"] == "segment_disposed" and e["request"] == rq
    assert (e["requested_by"], e["approved_by"]) == ("li.na", "zhao.lead")
    assert e["class"] == "ordinary" and e["expired_on"] == exp
    assert not os.path.exists(media)
    held = os.path.join(arch, "devices", B, "m", "%08d.mkv" % f["b1"])
    assert os.path.exists(held)
    r = retention.requests(cat)[0]
    assert (r["state"], r["decided_by"]) == ("approved", "zhao.lead")
    a = retention.assess(cat, A, f["a1"])
    assert a["status"] == "disposed"
    assert (A, f["a1"]) not in {(x["device"], x["segment"]) for x in retention.due(cat)}
    with pytest.raises(store.CatalogueError):
        retention.approve(cat, u["head"], rq)          # once only
    # verify: OK, the segment disposed with approval; the log replays without problems
    res = verify_archive(arch)
    assert res["verdict"] == OK, res["reasons"]
    dev = next(d for d in res["devices"] if d["device"] == A)
    assert dev["disposed"][0]["request"] == rq and dev["disposed"][0]["finished"]
    with Archive(arch, readonly=True) as ar:
        st = replay(ar.log())
    assert st.problems == [] and f["a1"] in st.disposed[A]
    # the catalogue rebuilt from the log alone says the same
    cat.reindex()
    assert [(x["id"], x["state"], x["decided_by"]) for x in retention.requests(cat)] == [
        (rq, "approved", "zhao.lead")]
    assert retention.assess(cat, A, f["a1"])["status"] == "disposed"
    assert retention.assess(cat, B, f["b1"])["status"] == "held"
    assert cat.problems == []
    # removing the held recording's media by hand (no event) is still found
    os.unlink(held)
    assert verify_archive(arch)["verdict"] == NOT_OK


def test_r12_an_open_case_holds_what_is_filed_in_it(world):
    """Case evidence is kept with the case file: a recording filed in a case that is still
    open is held; once the case is closed it is kept permanently as case evidence (R12;
    issue 11: permanent for case evidence), never due."""
    cat, u = world
    with cat.engine.begin() as conn:       # the rows cases.py writes for a case_opened event
        conn.execute(db.cases.insert().values(case_no="FZ-2023-009", event=0, title="t",
                                              state="open", opened_by="li.na",
                                              opened_at="2023-11-15T00:00:00Z"))
        rid = conn.execute(sa.select(db.recordings.c.id).where(
            db.recordings.c.segment == 3)).scalar_one()
        conn.execute(db.case_items.insert().values(event=0, case_no="FZ-2023-009",
                                                   kind="recording", recording_id=rid,
                                                   current=True, by_user="li.na",
                                                   at="2023-11-15T00:00:00Z"))
    a = status(cat, 3)
    assert a["status"] == "held" and a["holds"] == ["case:FZ-2023-009"]
    assert any("open case FZ-2023-009" in w for w in a["why"])
    with cat.engine.begin() as conn:
        conn.execute(db.cases.update().values(state="closed"))
    a = status(cat, 3)
    assert (a["status"], a["class"]) == ("kept", "permanent")
    assert any("case evidence, filed in case FZ-2023-009" in w for w in a["why"])


def _sealcam_retention(argv, capsys):
    """`sealcam retention ...` through its parser (host_tools/catalogue/retention_cli.py)."""
    import argparse
    from host_tools.catalogue import retention_cli
    p = argparse.ArgumentParser(prog="sealcam")
    sub = p.add_subparsers(dest="verb")
    retention_cli.add_parsers(sub, argparse.HelpFormatter)
    args = p.parse_args(["retention"] + [str(a) for a in argv])
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_r12_retention_verbs(real, capsys, monkeypatch):
    import json
    from host_tools.catalogue import users
    arch, f, cat, u = real
    cat.act(u["head"], users.add_event("ma.clerk", "clerk", password="clerk pass 1"))
    cat.act(u["head"], users.add_event("ma.chief", "bureau_chief", password="chief pass 1"))
    url = str(cat.url)
    base = ["--archive", arch, "--db", url]
    code, out, err = _sealcam_retention(["due"] + base, capsys)
    assert code == 0 and "%s/%d" % (A, f["a1"]) in out and "ordinary: kept 24 months" in out
    code, out, err = _sealcam_retention(["due", "--today", "2024-01-01", "--json"] + base,
                                        capsys)
    assert code == 0 and json.loads(out)["recordings"] == []
    monkeypatch.setenv("SEALCAM_PASSWORD", "clerk pass 1")
    code, out, err = _sealcam_retention(
        ["hold", "%s/%d" % (B, f["b1"]), "--kind", "legal", "--reason", "x", "--user",
         "ma.clerk"] + base, capsys)
    assert code == 5 and "may not do this" in err            # a clerk places no hold
    code, out, err = _sealcam_retention(
        ["request", "%s/%d" % (A, f["a1"]), "--reason", "24 months ended", "--json",
         "--user", "ma.clerk"] + base, capsys)
    assert code == 0, err
    rq = json.loads(out)["request"]
    code, out, err = _sealcam_retention(["approve", rq, "--user", "ma.clerk"] + base, capsys)
    assert code == 5                                          # not an approving role
    monkeypatch.setenv("SEALCAM_PASSWORD", "chief pass 1")
    code, out, err = _sealcam_retention(["approve", rq, "--user", "ma.chief"] + base, capsys)
    assert code == 0, err
    assert "disposed: request %s by ma.clerk, approved by ma.chief" % rq in out
    code, out, err = _sealcam_retention(["approve", rq, "--user", "ma.chief"] + base, capsys)
    assert code == 3 and "no pending disposal request" in err
    code, out, err = _sealcam_retention(
        ["hold", "case:FZ-1", "--kind", "case", "--reason", "review", "--user",
         "ma.chief"] + base, capsys)
    assert code == 0 and "hold" in out
    code, out, err = _sealcam_retention(["holds", "--json"] + base, capsys)
    assert [h["scope"] for h in json.loads(out)["holds"]] == ["case:FZ-1"]
    code, out, err = _sealcam_retention(["requests", "--state", "approved"] + base, capsys)
    assert code == 0 and rq in out and "ma.chief" in out
    assert not os.path.exists(os.path.join(arch, "devices", A, "m", "%08d.mkv" % f["a1"]))


def test_a_later_station_config_never_drops_a_logged_request(real):
    """The rules are checked when an event is made: a request in the log stays after the
    station keeps ordinary recordings longer (reindex), but its approval is then refused."""
    arch, f, cat, u = real
    rq = retention.request(cat, u["clerk"], A, f["a1"], "24 months ended")
    (arch / "station.toml").write_text("[retention]\nordinary_months = 1200\n")
    with Catalogue(arch, cat.url) as cat2:
        cat2.reindex()
        assert cat2.problems == []
        assert [(x["id"], x["state"]) for x in retention.requests(cat2)] == [(rq, "requested")]
        with pytest.raises(store.CatalogueError, match="kept until 2123-11-1"):
            retention.approve(cat2, u["leader"], rq)
    assert os.path.exists(os.path.join(arch, "devices", A, "m", "%08d.mkv" % f["a1"]))


def test_catalogue_check_after_an_approval_and_a_reindex(real):
    from host_tools.catalogue import check
    arch, f, cat, u = real
    rq = retention.request(cat, u["clerk"], A, f["a1"], "24 months ended")
    retention.approve(cat, u["leader"], rq)
    retention.hold(cat, u["leader"], "%s/%d" % (B, f["b1"]), "legal", "complaint")
    res = check.check(cat)
    assert res["problems"] == [], res["problems"]
    cat.reindex()
    assert cat.problems == [] and check.check(cat)["problems"] == []
    # an edited request row is named
    with cat.engine.begin() as conn:
        conn.execute(db.disposal_requests.update().values(decided_by="someone.else"))
    assert any("disposal_requests" in p for p in check.check(cat)["problems"])
