"""Archive numbers (host_tools.catalogue.numbers; R11), on SQLite and on a real PostgreSQL:
made from the station's pattern, assigned once, never reused (not after a reindex, not
after the row is removed from the database), resolving to recordings and spans."""
import pytest
import sqlalchemy as sa

from test_clerk_common import A, B, T0, add_recording, add_users, catalogue, count, \
    real_archive
from host_tools.catalogue import db, numbers, store
from host_tools.catalogue.store import Catalogue

DAY = 86_400_000


@pytest.fixture
def world(tmp_path, catalogue_url):
    cat, u = catalogue(tmp_path, catalogue_url)
    add_recording(cat, A, 2, start_ms=T0)              # 2023-11-14T22:13:20Z
    add_recording(cat, B, 2, start_ms=T0 + 60_000)
    add_recording(cat, A, 9, start_ms=T0 + DAY)
    yield cat, u
    cat.close()


def _config(arch, text):
    (arch / "station.toml").write_text(text, encoding="utf-8")


def test_r11_number_holds_agency_date_party_step(world):
    cat, u = world
    e = numbers.number_event(cat, [(A, 2), (B, 2, 0, 30_000)], party="张三", step="检查")
    cat.act(u["clerk"], e)
    assert e["number"] == "AGENCY-20231114-张三-检查-0001"
    r = numbers.resolve(cat, e["number"])
    assert (r["agency"], r["day"], r["party"], r["step"], r["serial"], r["by_user"]) == (
        "AGENCY", "2023-11-14", "张三", "检查", 1, "li.na")
    assert [(x["device"], x["segment"], x["span_from_ms"], x["span_to_ms"])
            for x in r["items"]] == [(A, 2, None, None), (B, 2, 0, 30_000)]
    assert numbers.numbers_of(cat, B, 2) == [e["number"]]
    assert numbers.resolve(cat, "AGENCY-20231114-nobody-x-0001") is None
    # the next one of the same agency and day takes the next serial; another day starts at 1
    e2 = numbers.number_event(cat, [(B, 2, 30_000, 60_000)], party="张三", step="处罚")
    cat.act(u["clerk"], e2)
    assert e2["number"].endswith("-0002")
    e3 = numbers.number_event(cat, [(A, 9)], party="李四", step="检查")
    cat.act(u["head"], e3)
    assert e3["number"] == "AGENCY-20231115-李四-检查-0001"


def test_r11_pattern_and_agency_from_station_config(tmp_path, catalogue_url):
    arch = tmp_path / "arch"
    from host_tools import station
    station.init(arch)
    _config(arch, '[agency]\ncode = "FZMC"\nname = "福州市名城委"\n'
                  '[archive_number]\npattern = "{agency}{date}/{step}/{party}#{serial}"\n')
    with Catalogue(arch, catalogue_url) as cat:
        u = add_users(cat)
        add_recording(cat, A, 2, start_ms=T0)
        e = numbers.number_event(cat, [(A, 2)], party="张三", step="inspection")
        cat.act(u["clerk"], e)
        assert e["number"] == "FZMC20231114/inspection/张三#0001"
        for party in ("张/三", "张#三", "a b", "x\x00", "{agency}", "张\u202e三", ""):
            with pytest.raises(store.CatalogueError, match="ambiguous|1 to 64"):
                numbers.number_event(cat, [(A, 2)], party=party, step="x")
        with pytest.raises(store.CatalogueError, match="1 to 64"):
            numbers.number_event(cat, [(A, 2)], party="x" * 65, step="x")


def test_r11_assigned_once_per_recording_and_span(world):
    cat, u = world
    cat.act(u["clerk"], numbers.number_event(cat, [(A, 2)], party="p", step="s"))
    with pytest.raises(store.CatalogueError, match="has the archive number AGENCY-20231114"):
        cat.act(u["clerk"], numbers.number_event(cat, [(A, 2)], party="q", step="s"))
    with pytest.raises(store.CatalogueError, match="named twice"):
        numbers.number_event(cat, [(B, 2), (B, 2)], party="q", step="s")
    with pytest.raises(store.PermissionRefused):
        cat.act(u["officer"], numbers.number_event(cat, [(B, 2)], party="q", step="s"))
    with pytest.raises(store.CatalogueError, match="no recording"):
        numbers.number_event(cat, [(B, 77)], party="q", step="s")
    assert count(cat, db.archive_numbers) == 1


def test_r11_unnumbered_24_hours_after_the_item_ended(world):
    cat, u = world
    assert numbers.unnumbered(cat, now_ms=T0 + 600_000 + 3_600_000) == []
    cat.act(u["clerk"], numbers.number_event(cat, [(A, 2)], party="p", step="s"))
    late = numbers.unnumbered(cat, now_ms=T0 + 3 * DAY)
    assert [(x["device"], x["segment"], x["hours_since_end"]) for x in late] == [
        (B, 2, 71), (A, 9, 47)]
    assert [x["segment"] for x in numbers.unnumbered(cat, now_ms=T0 + 2 * DAY)] == [2]


def test_r11_number_collision_is_refused(world):
    cat, u = world
    e1 = numbers.number_event(cat, [(A, 2)], party="p", step="s")
    e2 = numbers.number_event(cat, [(B, 2)], party="p", step="s")   # made before e1 lands
    assert e1["number"] == e2["number"]
    cat.act(u["clerk"], e1)
    with pytest.raises(store.CatalogueError, match="assigned already"):
        cat.act(u["clerk"], e2)
    got = numbers.assign(cat, u["clerk"], [(B, 2)], party="p", step="s")
    assert got["serial"] == 2 and numbers.resolve(cat, got["number"])["items"][0]["device"] == B
    forged = dict(numbers.number_event(cat, [(A, 9)], party="p", step="s"), serial=7)
    with pytest.raises(store.CatalogueError, match="not what its pattern"):
        cat.act(u["clerk"], forged)
    wrong_day = numbers.number_event(cat, [(A, 9)], party="p", step="s")
    wrong_day = dict(wrong_day, date="20240101",
                     number=wrong_day["number"].replace("20231115", "20240101"))
    with pytest.raises(store.CatalogueError, match="not the day"):
        cat.act(u["clerk"], wrong_day)
    foreign = numbers.number_event(cat, [(A, 9)], party="p", step="s")
    foreign = dict(foreign, agency="A-B", number=foreign["number"].replace("AGENCY", "A-B"))
    with pytest.raises(store.CatalogueError, match="agency code"):
        cat.act(u["clerk"], foreign)


def test_r11_two_desks_never_get_the_same_number(world, catalogue_url):
    """Two clerks' catalogues on one archive and database: both make serial 1 at once; the
    one that appends second is refused, and `assign` makes the next number instead."""
    cat, u = world
    with Catalogue(cat.archive_dir, catalogue_url) as desk2:
        e1 = numbers.number_event(cat, [(A, 2)], party="p", step="s")
        e2 = numbers.number_event(desk2, [(B, 2)], party="p", step="s")
        assert e1["number"] == e2["number"]
        cat.act(u["clerk"], e1)
        with pytest.raises(store.CatalogueError, match="assigned already"):
            desk2.act(u["head"], e2)
        got = numbers.assign(desk2, u["head"], [(B, 2)], party="p", step="s")
        assert got["serial"] == 2
        assert numbers.resolve(cat, got["number"])["by_user"] == "wang.head"


def test_r11_never_reused_after_reindex_or_a_removed_row(tmp_path, tmp_path_factory,
                                                          catalogue_url):
    arch, f = real_archive(tmp_path, tmp_path_factory)
    with Catalogue(arch, catalogue_url) as cat:
        u = add_users(cat)
        cat.refresh_recordings()
        e1 = numbers.number_event(cat, [(A, f["a1"]), (B, f["b1"])], party="张三",
                                  step="检查")
        cat.act(u["clerk"], e1)
        assert e1["date"] == "20231115"                 # rtc 1700010000300: 01:00Z
        cat.reindex()
        assert cat.problems == []
        assert [(x["device"], x["segment"]) for x in numbers.resolve(cat, e1["number"])[
            "items"]] == [(A, f["a1"]), (B, f["b1"])]
        e2 = numbers.number_event(cat, [(A, f["a2"])], party="张三", step="检查")
        assert e2["serial"] == 2
        # the row is removed from the database (not through the log): the number stays taken
        with cat.engine.begin() as conn:
            conn.execute(db.number_items.delete())
            conn.execute(db.archive_numbers.delete())
        e3 = numbers.number_event(cat, [(A, f["a2"])], party="张三", step="检查")
        assert e3["serial"] == 2                        # the log still knows serial 1
        reuse = dict(e3, serial=1, number=e1["number"])
        with pytest.raises(store.CatalogueError, match="never reused"):
            cat.act(u["clerk"], reuse)
        cat.act(u["clerk"], e3)
        # a number row forged into the database without the log: reindex removes it
        with cat.engine.begin() as conn:
            conn.execute(db.archive_numbers.insert().values(
                number="AGENCY-20231115-x-y-0099", event=1, agency="AGENCY",
                day="2023-11-15", party="x", step="y", serial=99, by_user="li.na",
                at="2026-01-01T00:00:00Z"))
        cat.reindex()
        assert cat.problems == []
        assert numbers.resolve(cat, "AGENCY-20231115-x-y-0099") is None
        with cat.engine.connect() as conn:
            held = sorted(r[0] for r in conn.execute(sa.select(db.archive_numbers.c.number)))
        assert held == sorted([e1["number"], e3["number"]])


def test_r11_local_date_of_the_agency(tmp_path, catalogue_url):
    """[agency] utc_offset_minutes (when the station config has it) gives the local day."""
    from host_tools import stationconfig
    if "utc_offset_minutes" not in stationconfig.SECTIONS["agency"]:
        pytest.skip("station.toml has no [agency] utc_offset_minutes yet (c-handoff.md)")
    arch = tmp_path / "arch"
    from host_tools import station
    station.init(arch)
    _config(arch, "[agency]\ncode = \"FZ\"\nutc_offset_minutes = 480\n")
    with Catalogue(arch, catalogue_url) as cat:
        u = add_users(cat)
        add_recording(cat, A, 2, start_ms=T0)          # 22:13Z = 06:13 next day in Fuzhou
        e = numbers.number_event(cat, [(A, 2)], party="p", step="s")
        cat.act(u["clerk"], e)
        assert e["date"] == "20231115"
