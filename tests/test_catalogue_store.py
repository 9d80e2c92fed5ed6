"""The catalogue's foundation (host_tools/catalogue: db, store, users) on SQLite and on a
real PostgreSQL server: users and roles, sign-in, events signed into the station log and
applied, rebuilt from the log, and what a tampered database or log entry gets."""
import os

import pytest
import sqlalchemy as sa

from host_tools import station
from host_tools.catalogue import db, store, users


@pytest.fixture
def archive(tmp_path):
    d = tmp_path / "archive"
    station.init(str(d))
    return str(d)


def _head(cat):
    boss = users.bootstrap_user(cat)
    cat.act(boss, users.add_event("li.na", "archive_head", "李娜", password="correct horse"))
    return users.authenticate(cat, "li.na", "correct horse")


def test_users_roles_and_sign_in(archive, catalogue_url):
    with store.Catalogue(archive, catalogue_url) as cat:
        head = _head(cat)
        assert head.role == "archive_head" and head.how == "password"
        with pytest.raises(users.AuthError):       # the first user exists: no more bootstrap
            users.bootstrap_user(cat)
        cat.act(head, users.add_event("wang.wei", "clerk", "王伟", password="clerk pass 1"))
        clerk = users.authenticate(cat, "wang.wei", "clerk pass 1")
        with pytest.raises(store.PermissionRefused, match="archive_head / bureau_chief"):
            cat.act(clerk, users.add_event("zhao.li", "clerk", password="12345678"))
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "wang.wei", "clerk pass 2")
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "nobody.here", "clerk pass 1")
        with pytest.raises(store.CatalogueError, match="exists already"):
            cat.act(head, users.add_event("wang.wei", "auditor", password="12345678"))
        # deactivated: no sign-in; a new password works, the old one not
        cat.act(head, users.password_event("wang.wei", "clerk pass 2"))
        users.authenticate(cat, "wang.wei", "clerk pass 2")
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "wang.wei", "clerk pass 1")
        cat.act(head, users.change_event("wang.wei", active=False))
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "wang.wei", "clerk pass 2")
        # the OS account binding
        cat.act(head, users.add_event("op.desk", "auditor", os_account=users.os_login()))
        assert users.authenticate(cat, "op.desk").how == "os"
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "li.na")          # bound to no OS account


def test_events_are_signed_log_entries_naming_their_user(archive, catalogue_url):
    with store.Catalogue(archive, catalogue_url) as cat:
        head = _head(cat)
        i = cat.act(head, users.add_event("wang.wei", "clerk", password="clerk pass 1"))
        e = cat.entry(i)
        assert e["type"] == "user_added" and e["by"] == "li.na" and e["user"] == "wang.wei"
        assert "clerk pass 1" not in repr(e) and e["pw_hash"].startswith("$argon2id$")
        assert cat.entry(0)["by"] == "os:" + users.os_login()
    # the station log's checkpoint covers them: verify's replay knows the clerk types
    from host_tools.archive import Archive
    from host_tools.tlog import replay
    with Archive(archive, readonly=True) as a:
        lg = a.log()
        acc = lg.account(lg.pub)
        assert acc.problem is None and acc.signed == lg.size == 2
        st = replay.replay(lg)
        assert st.problems == [] and st.clerk == 2


def test_reindex_rebuilds_rows_from_the_log_only(archive, catalogue_url):
    with store.Catalogue(archive, catalogue_url) as cat:
        head = _head(cat)
        cat.act(head, users.add_event("wang.wei", "clerk", password="clerk pass 1"))
        # a row written into the database without a log entry (an editor with SQL access)
        with cat.engine.begin() as conn:
            conn.execute(db.users.insert().values(
                name="evil.one", event=1, display="x", role="archive_head",
                pw_hash=users.hash_password("evil pass 1"), active=True, added_by="li.na",
                added_at="2026-01-01T00:00:00Z"))
        with pytest.raises(users.AuthError):          # its event is not its own: refused
            users.authenticate(cat, "evil.one", "evil pass 1")
        # the hash of a real user swapped in the database: refused too
        with cat.engine.begin() as conn:
            conn.execute(db.users.update().where(db.users.c.name == "wang.wei").values(
                pw_hash=users.hash_password("swapped pass")))
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "wang.wei", "swapped pass")
        assert cat.reindex() == 2
        names = [u["name"] for u in users.list_users(cat)]
        assert names == ["li.na", "wang.wei"]
        users.authenticate(cat, "wang.wei", "clerk pass 1")


def test_two_catalogues_follow_one_log(archive, tmp_path):
    """Another process (a second station desk) sees the first one's events on sync."""
    url = "sqlite:///%s" % (tmp_path / "c.sqlite")
    with store.Catalogue(archive, url) as a, store.Catalogue(archive, url) as b:
        head = _head(a)
        a.act(head, users.add_event("wang.wei", "clerk", password="clerk pass 1"))
        users.authenticate(b, "wang.wei", "clerk pass 1")     # b syncs first
    other = tmp_path / "other"
    station.init(str(other))
    with pytest.raises(store.CatalogueError, match="belongs to another archive"):
        store.Catalogue(str(other), url)


def test_a_log_entry_the_catalogue_refuses_is_named_not_applied(archive, tmp_path):
    url = "sqlite:///%s" % (tmp_path / "c.sqlite")
    with store.Catalogue(archive, url) as cat:
        head = _head(cat)
        # signed by the station, but not a valid event (a role that does not exist)
        cat.archive.log().append([{"type": "user_added", "at": "2026-12-01T00:00:00Z",
                                   "by": "li.na", "user": "x.y", "role": "god",
                                   "display": "x", "pw_hash": "$argon2id$x"}])
        cat.sync()
        assert len(cat.problems) == 1 and "unknown role" in cat.problems[0]
        assert [u["name"] for u in users.list_users(cat)] == ["li.na"]


def test_bad_database_url_is_one_line(archive):
    with pytest.raises(db.CatalogueDBError, match="cannot be used") as ei:
        store.Catalogue(archive, "postgresql+psycopg://nobody@/none?host=/nonexistent")
    assert "\n" not in str(ei.value)
    assert not os.path.exists(os.path.join(archive, "catalogue.sqlite"))


def test_a_role_raised_in_the_database_signs_in_as_the_log_says(archive, tmp_path):
    """An editor with SQL access makes a clerk an archive head, or re-activates a user the
    log deactivated: the sign-in follows the signed log, and check names the row."""
    from host_tools.catalogue import check
    url = "sqlite:///%s" % (tmp_path / "c.sqlite")
    with store.Catalogue(archive, url) as cat:
        head = _head(cat)
        cat.act(head, users.add_event("wang.wei", "clerk", password="clerk pass 1"))
        cat.act(head, users.add_event("old.hand", "clerk", password="clerk pass 2"))
        cat.act(head, users.change_event("old.hand", active=False))
        with cat.engine.begin() as conn:
            conn.execute(db.users.update().where(db.users.c.name == "wang.wei")
                         .values(role="archive_head"))
            conn.execute(db.users.update().where(db.users.c.name == "old.hand")
                         .values(active=True))
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "wang.wei", "clerk pass 1")
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "old.hand", "clerk pass 2")
        res = check.check(cat)
        assert res["tables"]["users"]["extra"] == 2 and len(res["problems"]) == 4
        assert "clerk pass" not in check.text(res) and "$argon2" not in check.text(res)
        cat.reindex()
        assert check.check(cat)["problems"] == []
        assert users.authenticate(cat, "wang.wei", "clerk pass 1").role == "clerk"


def test_every_clerk_event_and_the_disposal_match_the_cddl(tmp_path, tmp_path_factory):
    """Every clerk event type (SPEC §14) and the approved disposal (§9.2), made through the
    catalogue on a real offloaded archive, are entries of `log-entry` in schema.cddl; an
    entry edited against the rule is not."""
    import io

    import cbor2
    import png
    pycddl = pytest.importorskip("pycddl")
    import test_clerk_common as cc
    from host_tools.catalogue import cases, documents, numbers, retention, tags
    from host_tools.catalogue.events import CLERK_TYPES
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    schema = pycddl.Schema("root = log-entry\n" + open(
        os.path.join(root, "protocol", "schema.cddl")).read())
    arch, f = cc.real_archive(tmp_path, tmp_path_factory)
    with store.Catalogue(arch, "sqlite:///%s" % (tmp_path / "c.sqlite")) as cat:
        cat.refresh_recordings(None)
        u = cc.add_users(cat, "confidential")
        pw = users.password_event("li.na", "a new password")
        cat.act(u["head"], pw)
        cat.act(u["head"], users.change_event("sun.audit", active=False))
        cat.act(u["clerk"], tags.tag_event(cc.A, f["a1"], party="张三", place="五一路",
                                           event_type="inspection", item_class="001-03"))
        numbers.assign(cat, u["clerk"], [(cc.A, f["a1"], None, None)], party="张三",
                       step="检查")
        cat.act(u["clerk"], cases.opened_event("FZ-2026-001", "违法建设 五一路", unit="U-1"))
        cat.act(u["clerk"], cases.linked_event("FZ-2026-001", device=cc.A, segment=f["a1"]))
        cat.act(u["clerk"], cases.linked_event("FZ-2026-001", device=cc.B, segment=f["b1"],
                                               role="angle"))
        cat.act(u["clerk"], cases.unlinked_event("FZ-2026-001", "wrong angle", device=cc.B,
                                                 segment=f["b1"]))
        buf = io.BytesIO()
        png.Writer(16, 16, greyscale=True).write(buf, [[i * 8] * 16 for i in range(16)])
        scan = tmp_path / "explanation.png"
        scan.write_bytes(buf.getvalue())
        documents.add_document(cat, u["clerk"], str(scan), "explanation", device=cc.A,
                               interruption_seq=f["int_fault"], case_no="FZ-2026-001")
        cat.act(u["clerk"], cases.closed_event("FZ-2026-001", "decided"))
        cat.act(u["clerk"], cases.archived_event("FZ-2026-001", int(utc_year())))
        h = retention.hold(cat, u["head"], "%s/%d" % (cc.B, f["b1"]), "legal", "a complaint")
        retention.release(cat, u["head"], h, "complaint withdrawn")
        rq = retention.request(cat, u["clerk"], cc.B, f["b1"], "24 months are over")
        retention.refuse(cat, u["head"], rq, "not yet")
        rq = retention.request(cat, u["clerk"], cc.B, f["b1"], "24 months are over")
        retention.approve(cat, u["head"], rq)
        _issue12_events(cat, u, cc.A, f["a1"], tmp_path)
        seen = set()
        for i, raw, e in cat.archive.log().entries():
            schema.validate_cbor(raw)
            seen.add(e["type"])
        assert CLERK_TYPES - {"copy_made"} <= seen and "segment_disposed" in seen, \
            CLERK_TYPES - seen
        bad = dict(e for e in cat.entry(0).items())
        bad["role"] = "superuser"
        with pytest.raises(Exception):
            schema.validate_cbor(cbor2.dumps(bad, canonical=True))


def _issue12_events(cat, u, device, segment, tmp_path):
    """The events of SPEC §14.8-14.13 on recording device/segment of case FZ-2026-001
    (unit U-1): made through each module's own function, so each passes its rule. (A
    `copy_made` needs real media: tests/test_copies_access.py checks it against the CDDL.)"""
    from host_tools.catalogue import access, confidentiality, discs
    from host_tools.catalogue import cases, handover
    head, clerk = u["head"], u["clerk"]
    cat.act(head, users.add_event("qian.head", "archive_head", os_account="nosuch-qian",
                                  clearance="confidential"))
    qian = users.User("qian.head", "archive_head", how="os", clearance="confidential")
    cat.act(head, users.change_event("zhao.lead", unit="U-1"))
    lead = users.User("zhao.lead", "unit_leader", how="os", unit="U-1")
    rid = access.request(cat, clerk, target_kind="case", target="FZ-2026-001",
                         case_no="FZ-2026-001", purpose="庭审 court", actions=["export"])
    access.approve(cat, qian, rid)          # not head: head set up zhao.lead (a crony)
    access.approve(cat, lead, rid, reason="ok")
    access.record_use(cat, clerk, rid, "export", device=device, segment=segment)
    access.revoke(cat, head, rid, "hearing over")
    confidentiality.classify(cat, qian, "recording", "restricted", "证人 名单",
                             device=device, segment=segment)
    no = access.request(cat, clerk, target_kind="case", target="FZ-2026-001",
                        case_no="FZ-2026-001", purpose="curiosity", actions=["view"])
    access.refuse(cat, head, no, "no purpose the rules know")
    cat.act(head, discs.made_event("FZ-2026-001", "ab" * 32, "cd" * 32, {
        "archive_number": "-", "case": "FZ-2026-001", "dates": "2026", "copy": "A of 2",
        "contents_sha256": "cd" * 32}))
    cat.act(clerk, cases.opened_event("FZ-2026-002", "另一案件", unit="U-1"))
    wrong = handover.offer(cat, clerk, "zhao.lead", "li.na moves to another unit")
    handover.withdraw(cat, clerk, wrong, "wrong successor")
    hid = handover.offer(cat, clerk, "qian.head", "li.na moves to another unit")
    handover.accept(cat, qian, hid)
    from host_tools.backup import backup
    backup(cat, head, str(tmp_path / "offsite"))


def utc_year():
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).year


def test_a_damaged_catalogue_database_is_one_line_exit_3(archive, capsys):
    from host_tools.cli import main as cli
    with store.Catalogue(archive) as cat:
        _head(cat)
    p = os.path.join(archive, "catalogue.sqlite")
    for x in ("-wal", "-shm"):
        if os.path.exists(p + x):
            os.remove(p + x)
    b = bytearray(open(p, "rb").read())
    b[4096:8192] = b"\x5a" * 4096
    open(p, "wb").write(bytes(b))
    for argv in (["catalogue", "check"], ["user", "list"], ["search"],
                 ["retention", "due"]):
        assert cli(argv + ["--archive", archive]) == 3, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "catalogue" in err and "malformed" in err, err


def test_revision_0003_adds_the_tag_probe_index_to_an_older_database(tmp_path):
    """A catalogue database at revision 0002 gets the (recording_id, field, value) tags
    index when opened (Alembic upgrade): nothing else changes."""
    import sqlalchemy as sa
    from host_tools.catalogue import db
    url = "sqlite:///%s" % (tmp_path / "c.sqlite")
    eng = db.open_engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_tags_recording_value"))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0002'"))
    eng.dispose()
    eng = db.open_engine(url)
    try:
        names = {ix["name"] for ix in sa.inspect(eng).get_indexes("tags")}
        with eng.connect() as conn:
            ver = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        eng.dispose()
    assert "ix_tags_recording_value" in names and ver == db.REVISION == "0003"
