"""Attacks on the catalogue's users (attack review 6: r12, r20, r6, r19, r7), each made the
way the attacker did, on SQLite and PostgreSQL: a users row rolled back to an older entry
of the user's signed chain, a "first user" bootstrapped with a fresh or emptied database, a
name reused after its row was deleted, events in the signed log by users the log does not
allow, a user changing its own role or state, a segment too large for SQL."""
import pytest
import sqlalchemy as sa

from host_tools.catalogue import cases, db, store, tags, users
from host_tools.catalogue.store import Catalogue
from test_clerk_common import A, add_recording, catalogue, count

AT = "2026-12-01T00:00:00Z"


def _row(cat, name):
    with cat.engine.connect() as conn:
        return conn.execute(sa.select(db.users).where(db.users.c.name == name)
                            ).mappings().first()


def _set_row(cat, name, **vals):
    """What an editor with SQL access does: a row changed, nothing appended to the log."""
    with cat.engine.begin() as conn:
        conn.execute(db.users.update().where(db.users.c.name == name).values(**vals))


def _append(cat, **event):
    """An entry signed into the station log without Catalogue.act's checks (as a replay
    of an old log, or a station key's holder writing the log, would give it)."""
    return cat.archive.log().append([dict(event, at=AT)])


def test_r12_a_row_rolled_back_to_an_earlier_chain_entry_signs_nobody_in(tmp_path,
                                                                         catalogue_url):
    cat, u = catalogue(tmp_path, catalogue_url)
    with cat:
        me = users.os_login()
        added = cat.act(u["head"], users.add_event("old.hand", "archive_head", os_account=me))
        assert users.authenticate(cat, "old.hand").role == "archive_head"
        cat.act(u["head"], users.change_event("old.hand", active=False))
        _set_row(cat, "old.hand", active=True, event=added)     # back to its user_added
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "old.hand")
        # demoted, then the row rolled back to the higher role
        cat.act(u["head"], users.add_event("was.head", "archive_head", os_account=me))
        first = _row(cat, "was.head")["event"]
        cat.act(u["head"], users.change_event("was.head", role="auditor"))
        assert users.authenticate(cat, "was.head").role == "auditor"
        _set_row(cat, "was.head", role="archive_head", event=first)
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "was.head")
        # an old password: the row's hash and event rolled back to the user_added entry
        cat.act(u["head"], users.add_event("pw.user", "clerk", password="old pass 2023"))
        first = _row(cat, "pw.user")
        cat.act(u["head"], users.password_event("pw.user", "new pass 2026"))
        _set_row(cat, "pw.user", pw_hash=first["pw_hash"], event=first["event"])
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "pw.user", "old pass 2023")
        # the log's state is the one that counts: a rebuild restores it
        cat.reindex()
        assert cat.problems == []
        assert not _row(cat, "old.hand")["active"] and _row(cat, "was.head")["role"] == "auditor"
        assert users.authenticate(cat, "was.head").role == "auditor"
        assert users.authenticate(cat, "pw.user", "new pass 2026").name == "pw.user"
        with pytest.raises(users.AuthError):
            users.authenticate(cat, "old.hand")


def test_r20_r6_bootstrap_and_name_reuse_follow_the_log_not_the_rows(tmp_path,
                                                                     catalogue_url):
    cat, u = catalogue(tmp_path, catalogue_url)
    arch = cat.archive_dir
    with cat:
        pass
    # r20: --db pointing at a new, empty database: the log has users, so no bootstrap
    empty = "sqlite:///%s" % (tmp_path / "empty.sqlite")
    with Catalogue(arch, empty) as fresh:
        with pytest.raises(users.AuthError, match="this archive has users"):
            users.bootstrap_user(fresh)
        assert count(fresh, db.users) == 0          # nothing was needed to refuse it
    with Catalogue(arch, catalogue_url) as cat:
        # r6: a row deleted, then its name added again (with a new password): refused
        with cat.engine.begin() as conn:
            conn.execute(db.users.delete().where(db.users.c.name == "wang.head"))
        boss = users.User("wang.head", "archive_head", how="os")
        chief = cat.act(boss, users.add_event("chen.chief", "bureau_chief",
                                              os_account="nosuch-chief"))
        assert chief > 0
        with pytest.raises(store.CatalogueError, match="exists already"):
            cat.act(users.User("chen.chief", "bureau_chief", how="os"),
                    users.add_event("wang.head", "archive_head", password="reused pass 1"))
        # every row deleted: still no bootstrap, and the station key's holder cannot act
        with cat.engine.begin() as conn:
            conn.execute(db.users.delete())
        with pytest.raises(users.AuthError, match="this archive has users"):
            users.bootstrap_user(cat)
        station = users.User("os:" + users.os_login(), "archive_head", how="station")
        with pytest.raises(store.PermissionRefused, match="only add the first user"):
            cat.act(station, users.add_event("mallory", "archive_head", os_account="x-m"))
        cat.reindex()
        assert cat.problems == []
        assert "mallory" not in users.logged_users(cat)
        assert {r["name"] for r in users.list_users(cat)} == set(users.logged_users(cat))


def test_replay_refuses_events_by_users_the_log_does_not_allow(tmp_path, catalogue_url):
    """Signed entries by an inactive user, a role without the permission, the station key's
    holder once users exist, or a user changing itself: named, not applied, on sync and on
    a rebuild alike."""
    cat, u = catalogue(tmp_path, catalogue_url)
    with cat:
        cat.act(u["head"], users.change_event("li.na", active=False))
        n_users = count(cat, db.users)
        bad = [
            _append(cat, **dict(cases.opened_event("FZ-1", "by an inactive clerk"),
                                by="li.na")),
            _append(cat, **dict(cases.opened_event("FZ-2", "by an auditor"), by="sun.audit")),
            _append(cat, **dict(cases.opened_event("FZ-3", "by nobody"), by="no.body")),
            _append(cat, **dict(users.add_event("root.two", "bureau_chief", os_account="x"),
                                by="os:root")),
            _append(cat, **dict(users.add_event("clerk.two", "archive_head", os_account="x"),
                                by="ofc-0001")),
            _append(cat, **dict(users.change_event("wang.head", role="bureau_chief"),
                                by="wang.head", prev=_row(cat, "wang.head")["event"])),
            _append(cat, **dict(cases.opened_event("FZ-6", "by a terminal escape"),
                                by="wang.head\x1b[2J")),
        ]
        good = _append(cat, **dict(cases.opened_event("FZ-4", "by the archive head"),
                                   by="wang.head"))
        cat.sync()
        for problems in (cat.problems, None):
            if problems is None:
                cat.reindex()
                problems = cat.problems
            assert len(problems) == len(bad), problems
            for i, p in zip(bad, problems):
                assert p.startswith("log entry %d " % i), p
            assert "not an active user" in problems[0] and "li.na" in problems[0]
            assert "may not do this" in problems[1] and "not an active" in problems[2]
            assert "only add the first user" in problems[3]
            assert "may not do this" in problems[4]
            assert "its own role" in problems[5]
            assert "names no user" in problems[6] and "\x1b" not in problems[6]
            assert count(cat, db.cases) == 1 and count(cat, db.users) == n_users
            assert _row(cat, "wang.head")["role"] == "archive_head"
            assert good > bad[-1]
        # and Catalogue.act refuses them before anything is appended
        size = cat.archive.log().size
        with pytest.raises(store.PermissionRefused, match="not an active user"):
            cat.act(users.User("li.na", "clerk", how="os"), cases.opened_event("FZ-5", "x"))
        with pytest.raises(store.PermissionRefused, match="not an active user"):
            cat.act(users.User("no.body", "archive_head", how="os"),
                    cases.opened_event("FZ-5", "x"))
        assert cat.archive.log().size == size


def test_r19_nobody_changes_its_own_role_or_state(tmp_path, catalogue_url):
    cat, u = catalogue(tmp_path, catalogue_url)
    with cat:
        for ev in (users.change_event("wang.head", role="bureau_chief"),
                   users.change_event("wang.head", active=True),
                   users.change_event("wang.head", os_account=users.os_login())):
            with pytest.raises(store.PermissionRefused, match="its own role"):
                cat.act(u["head"], ev)
        assert _row(cat, "wang.head")["role"] == "archive_head"
        cat.act(u["head"], users.password_event("wang.head", "own new pass"))   # allowed
        cat.act(u["head"], users.add_event("wang.two", "archive_head", os_account="x-two"))
        # who added whom, as the log says (the disposal's two persons use it)
        logged = users.logged_users(cat)
        assert users.added_by(cat, "wang.two") == "wang.head"
        assert users.added_by(cat, "wang.head") == "os:" + users.os_login()
        assert users.added_by(cat, "no.body") is None
        assert set(logged["wang.head"]) >= {"role", "active", "os_account", "pw_hash",
                                            "added_by", "event"}
        assert logged["wang.head"]["pw_hash"].startswith("$argon2id$")
        assert logged["li.na"]["role"] == "clerk" and logged["li.na"]["active"] is True


def test_r7_a_segment_or_device_out_of_range_is_a_catalogue_error(tmp_path, catalogue_url):
    cat, u = catalogue(tmp_path, catalogue_url)
    with cat:
        add_recording(cat, A, 5)
        with cat.engine.connect() as conn:
            assert store.recording_id(conn, A, 5) > 0
            for dev, seg in ((A, 10 ** 30), (A, 1 << 63), (A, -1), (A, "5"), (A, True),
                             (A, 5.0), ("X" * 65, 5), ("", 5), (None, 5), ("SC-\x1b[2J", 5)):
                with pytest.raises(store.CatalogueError) as ei:
                    store.recording_id(conn, dev, seg)
                assert "\n" not in str(ei.value) and "\x1b" not in str(ei.value)
            with pytest.raises(store.CatalogueError, match="no recording"):
                store.recording_id(conn, A, (1 << 63) - 1)
        with pytest.raises(store.CatalogueError, match="whole number from 0"):
            cat.act(u["clerk"], tags.tag_event(A, 10 ** 30, party="p"))


def test_entries_with_finds_only_the_entries_holding_a_needle(tmp_path):
    cat, u = catalogue(tmp_path, "sqlite:///%s" % (tmp_path / "c.sqlite"))
    with cat:
        lg = cat.archive.log()
        want = [i for i, _, e in lg.entries() if e["type"] == "user_added"]
        got = cat.entries_with(b"user_added")
        assert [i for i, _ in got] == want and len(want) == len(u)
        assert all(e["type"] == "user_added" for _, e in got)
        assert [i for i, _ in cat.entries_with(b"user_added", start=2, stop=4)] == [2, 3]
        assert cat.entries_with(b"user_added", start=3, stop=3) == []
        assert cat.entries_with(b"no such bytes") == []
        i = cat.act(u["head"], users.change_event("li.na", role="auditor"))
        assert [j for j, _ in cat.entries_with(b"user_changed", b"user_added")] == want + [i]


def test_an_archive_head_cannot_demote_or_lock_out_the_bureau_chief(tmp_path):
    """Attack 6 (r19): once there is a bureau chief, an archive head who manages users may
    not demote, deactivate or re-password the chief, nor make another chief; the chief may."""
    from host_tools.catalogue import store, users
    from test_clerk_common import catalogue
    cat, u = catalogue(tmp_path, "sqlite:///%s" % (tmp_path / "c.sqlite"))
    cat.act(u["head"], users.add_event("chen.chief", "bureau_chief", os_account="x-chen"))
    chief = users.User("chen.chief", "bureau_chief", how="os")
    for ev in (users.change_event("chen.chief", role="clerk"),
               users.change_event("chen.chief", active=False),
               users.password_event("chen.chief", "a new password"),
               users.add_event("second.chief", "bureau_chief", os_account="x-2"),
               users.change_event("li.na", role="bureau_chief")):
        with pytest.raises(store.PermissionRefused, match="bureau chief"):
            cat.act(u["head"], ev)
    cat.act(chief, users.add_event("second.chief", "bureau_chief", os_account="x-2"))
    cat.act(chief, users.change_event("wang.head", role="clerk"))
    assert users.logged_users(cat)["wang.head"]["role"] == "clerk"
    cat.close()


def test_r16_nobody_grants_a_clearance_above_his_own(tmp_path, catalogue_url):
    """R16 (SPEC §14.8): a user of clearance internal may not add or raise a user above it,
    when made and on replay (a forged entry in the signed log is named, not applied); the
    station key's holder clears the first user, who may clear others up to his own."""
    cat, u = catalogue(tmp_path, catalogue_url)
    with cat:
        size = cat.archive.log().size
        for ev in (users.add_event("qian.head", "archive_head", os_account="x-q",
                                   clearance="confidential"),
                   users.change_event("li.na", clearance="restricted")):
            with pytest.raises(store.PermissionRefused,
                               match=r"wang.head \(clearance internal\) may not grant "
                                     r"clearance (confidential|restricted)"):
                cat.act(u["head"], ev)
        assert cat.archive.log().size == size
        cat.act(u["head"], users.change_event("li.na", clearance="public"))     # below: fine
        bad = _append(cat, **dict(users.change_event("sun.audit", clearance="confidential"),
                                  by="wang.head", prev=_row(cat, "sun.audit")["event"]))
        cat.sync()
        for problems in (cat.problems, None):
            if problems is None:
                cat.reindex()
                problems = cat.problems
            assert len(problems) == 1 and problems[0].startswith("log entry %d " % bad)
            assert "may not grant clearance confidential" in problems[0], problems
            assert users.logged_users(cat)["sun.audit"]["clearance"] is None
            assert _row(cat, "sun.audit")["clearance"] is None
