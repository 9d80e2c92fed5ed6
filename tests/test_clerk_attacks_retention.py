"""Attack 6 on disposal and retention (r1, r2, r18, r19, r9, r7): the approval decides on
the signed station log, never on catalogue rows an SQL user edited; nothing leaves the
archive and nothing is logged when it is refused."""
import os
import shutil

import pytest
import sqlalchemy as sa

from test_clerk_common import A, B, add_users, real_archive
from host_tools.catalogue import check, db, retention, store, tags, users
from host_tools.catalogue.retention_cli import _split
from host_tools.catalogue.store import Catalogue


@pytest.fixture
def real(tmp_path, tmp_path_factory):
    arch, f = real_archive(tmp_path, tmp_path_factory)
    cat = Catalogue(arch)
    u = add_users(cat)
    cat.refresh_recordings()
    yield arch, f, cat, u
    cat.close()


def _media(arch, f):
    return os.path.join(arch, "devices", A, "m", "%08d.mkv" % f["a1"])


def _rid(cat, seg):
    with cat.engine.connect() as conn:
        return store.recording_id(conn, A, seg)


def test_r1_request_row_made_by_sql_is_never_approved(real):
    arch, f, cat, u = real
    with cat.engine.begin() as conn:
        conn.execute(db.disposal_requests.insert().values(
            id="DR-20261201-deadbeef", event=9999, recording_id=_rid(cat, f["a1"]),
            reason="forged", retention_class="ordinary", expired_on="2025-11-15",
            requested_by="li.na", requested_at="2026-12-01T00:00:00Z", state="requested"))
    n = cat.archive.log().size
    with pytest.raises(store.CatalogueError, match="does not match the signed station log "
                       r"\(1 differences\).*nothing was disposed"):
        retention.approve(cat, u["head"], "DR-20261201-deadbeef")
    assert os.path.exists(_media(arch, f)) and cat.archive.log().size == n
    assert check.check(cat)["problems"]             # check names the forged row


def test_r1_edited_requester_is_never_believed(real):
    arch, f, cat, u = real
    rq = retention.request(cat, u["head"], A, f["a1"], "24 months ended")
    with cat.engine.begin() as conn:                # the head makes it look like the clerk's
        conn.execute(db.disposal_requests.update().values(requested_by="li.na"))
    n = cat.archive.log().size
    with pytest.raises(store.CatalogueError, match="does not match"):
        retention.approve(cat, u["leader"], rq)
    assert os.path.exists(_media(arch, f)) and cat.archive.log().size == n
    cat.reindex()                                   # the log says the head asked
    assert retention.requests(cat)[0]["requested_by"] == "wang.head"


def test_r2_hold_released_only_in_the_database_still_holds(real):
    arch, f, cat, u = real
    rq = retention.request(cat, u["clerk"], A, f["a1"], "expired")
    retention.hold(cat, u["head"], "%s/%d" % (A, f["a1"]), "legal", "lawsuit")
    with pytest.raises(store.CatalogueError, match="is held"):
        retention.approve(cat, u["leader"], rq)
    with cat.engine.begin() as conn:
        conn.execute(db.holds.update().values(released_by="wang.head",
                                              released_at="2026-12-01T00:00:00Z"))
    n = cat.archive.log().size
    with pytest.raises(store.CatalogueError, match="does not match"):
        retention.approve(cat, u["leader"], rq)
    assert os.path.exists(_media(arch, f)) and cat.archive.log().size == n


def test_r18_check_counts_a_duplicated_row(real):
    arch, f, cat, u = real
    cat.act(u["clerk"], tags.tag_event(A, f["a1"], party="P"))
    assert not check.check(cat)["problems"]
    with cat.engine.begin() as conn:
        row = dict(conn.execute(sa.select(db.tags)).mappings().first())
        row.pop("id", None)
        conn.execute(db.tags.insert().values(**row))
    res = check.check(cat)
    assert res["tables"]["tags"]["extra"] == 1
    assert any("tags: a row the station log does not make" in p for p in res["problems"])


def test_r19_requester_may_not_approve_through_a_user_it_added(real):
    arch, f, cat, u = real
    rq = retention.request(cat, u["head"], A, f["a1"], "expired")
    cat.act(u["head"], users.add_event("wang.two", "archive_head", os_account="nosuch-two"))
    two = users.User("wang.two", "archive_head", how="os")
    n = cat.archive.log().size
    with pytest.raises(store.PermissionRefused, match="was added by wang.head, who asked"):
        retention.approve(cat, two, rq)
    assert os.path.exists(_media(arch, f)) and cat.archive.log().size == n
    rq2 = retention.request(cat, u["clerk"], B, f["b1"], "expired")
    e = retention.approve(cat, two, rq2)            # the clerk did not add wang.two
    assert (e["requested_by"], e["approved_by"]) == ("li.na", "wang.two")


def test_r9_repeated_approval_finishes_a_removal_stopped_part_way(real):
    arch, f, cat, u = real
    m = os.path.join(arch, "devices", A, "m")
    idx = os.path.join(m, "%08d.idx" % f["a1"])
    victim = os.path.join(arch, "outside-victim.txt")
    with open(victim, "w") as fh:
        fh.write("keep me")
    saved = os.path.join(arch, "idx.saved")
    shutil.copyfile(idx, saved)
    os.unlink(idx)
    os.symlink(victim, idx)
    rq = retention.request(cat, u["clerk"], A, f["a1"], "expired")
    with pytest.raises(store.CatalogueError, match="left in place"):
        retention.approve(cat, u["leader"], rq)
    assert open(victim).read() == "keep me"
    n = cat.archive.log().size                      # the segment_disposed event is logged
    with pytest.raises(store.CatalogueError, match="left in place"):
        retention.approve(cat, u["leader"], rq)     # still planted: still refused
    os.unlink(idx)                                  # the operator removes the link
    e = retention.approve(cat, u["leader"], rq)
    assert e["type"] == "segment_disposed" and e["request"] == rq
    assert cat.archive.log().size == n              # nothing new written
    assert not os.path.exists(_media(arch, f)) and not os.path.lexists(idx)
    assert open(victim).read() == "keep me"
    with pytest.raises(store.CatalogueError, match="no pending disposal request"):
        retention.approve(cat, u["leader"], rq)     # finished: nothing left to do
    assert cat.archive.log().size == n


def test_r7_arguments_refused_in_one_line(real):
    arch, f, cat, u = real
    for bad in ("%s/\u00b2" % A, "%s/\u0663" % A, "%s/%s" % (A, "9" * 30)):
        with pytest.raises(store.CatalogueError, match="neither case:NUMBER"):
            retention.hold(cat, u["leader"], bad, "legal", "r")
        with pytest.raises(store.CatalogueError, match="is not DEVICE/SEGMENT"):
            _split(bad)
    with pytest.raises(store.CatalogueError, match="out of range"):
        retention.due(cat, "0001-01-01")
    assert retention.due(cat, "1000-01-01") == []
    assert retention.due(cat, "9000-12-31")
    n = cat.archive.log().size
    for hid in (10 ** 20, -1):
        with pytest.raises(store.CatalogueError, match="no active hold"):
            retention.release(cat, u["leader"], hid, "x")
    with pytest.raises(store.CatalogueError) as ei:
        retention.hold(cat, u["leader"], "\x1b[2J/1", "legal", "r")
    assert "\x1b" not in str(ei.value)
    assert cat.archive.log().size == n
