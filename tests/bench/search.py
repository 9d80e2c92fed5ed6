"""`sealcam search` on a large catalogue: p50 / p95 of each kind of filter.

A SQLite catalogue (the schema of host_tools/catalogue/db.py, made by its Alembic
migration) is filled by bulk insert with N recordings (default 1,000,000) of a realistic
mix: 500 devices, 2,000 officers, three years; metadata (tags) on 30 % of them, archive
numbers on 10 %, case files on 5 %, interruptions on 8 %, marks. Then at least 200 random
queries of each filter kind (a note: a common word, or in 30 % of them a party's name,
which few notes hold) run through host_tools.catalogue.search.search (a page of 50,
newest first, with its metadata), each timed; p50 / p95 per kind and overall are printed,
and whether p95 < 50 ms is met.

    python -m tests.bench.search [N] [--postgresql]
                        (make bench runs it with N = 1,000,000 on SQLite; --postgresql:
                        on a PostgreSQL server started for it, tests/pgserver.py)

``generate(n, seed)`` is also the data of tests/test_search.py (20,000 rows there).
"""
import datetime as dt
import os
import random
import shutil
import sys
import tempfile
import time

GOAL_MS = 50.0
T0 = int(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
YEARS3_MS = 3 * 365 * 86_400_000
EVENT_TYPES = ["traffic", "dispute", "theft", "inspection", "obstruction",
               "major_incident", "mass_event", "noise", "assault", "fraud",
               "交通违法", "纠纷调解"]
# item classes as `sealcam tag` stores them (host_tools/catalogue/itemcatalogue.py): the
# 13 items of 001's attachment and the three record classes
ITEM_CLASSES = ["scene", "interview", "confirmation"] + ["001-%02d" % i for i in range(1, 14)]
WORDS = ["calm", "refused", "witness", "vehicle", "door", "window", "second angle",
         "医院", "现场", "当事人拒绝签字", "Statement", "NIGHT", "rain", "100%", "a_b"]
REC_COLS = ("id", "device", "segment", "start_ms", "end_ms", "duration_ms", "officer",
            "unit", "bytes", "state", "interruptions", "statements", "unstated",
            "marks_important", "marks_notice", "marks_bookmark", "first_stored_at")
TAG_COLS = ("event", "recording_id", "span_from_ms", "span_to_ms", "field", "value",
            "current", "by_user", "at", "reason")
NUM_COLS = ("number", "event", "agency", "day", "party", "step", "serial", "by_user", "at")
NITEM_COLS = ("number", "recording_id", "span_from_ms", "span_to_ms")
CASE_COLS = ("case_no", "event", "title", "unit", "state", "opened_by", "opened_at")
CITEM_COLS = ("event", "case_no", "kind", "recording_id", "document", "role", "current",
              "by_user", "at")


def _iso(ms):
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def generate(n, seed=1, devices=500, officers=2000):
    """{table: (columns, [row tuple])} for n recordings (ids 1..n) and their metadata."""
    rnd = random.Random(seed)
    rand, randint, choice = rnd.random, rnd.randint, rnd.choice
    devs = ["SC-%08X" % (0x10000 + i) for i in range(devices)]
    ofcs = ["%06d" % (100000 + i) for i in range(officers)]
    parties = ["party-%d" % i for i in range(max(10, n // 20))] + ["张三", "李四", "王五"]
    places = ["place-%d" % i for i in range(max(10, n // 200))] + ["人民路", "火车站"]
    case_nos = ["C-%05d" % i for i in range(max(5, n // 50))]
    recs, tags, nums, nitems, citems = [], [], [], [], []
    cases = [(c, 0, "case " + c, None, "open", "clerk", _iso(T0)) for c in case_nos]
    seg = dict.fromkeys(devs, 0)
    ev = 0
    for rid in range(1, n + 1):
        d = choice(devs)
        seg[d] += 1 + int(rand() * 40)
        start = T0 + int(rand() * YEARS3_MS)
        dur = 5_000 + int(rand() * 3_595_000)
        x = rand()
        state = "complete" if x < 0.97 else "partial" if x < 0.995 else "disposed"
        end = None if state == "partial" and x < 0.9825 else start + dur
        x = rand()
        ints = 0 if x < 0.92 else 1 if x < 0.98 else 2
        stated = int(rand() * (ints + 1))
        unstated = int(rand() * (ints - stated + 1))
        officer = choice(ofcs) if x > 0.02 else None
        m = rand()
        recs.append((rid, d, seg[d], start, end, None if end is None else end - start,
                     officer, None if officer is None else "U-" + officer[-2:],
                     dur * 125, state, ints, stated, unstated,
                     1 if m < 0.03 else 0, 0 if m < 0.8 else 1 if m < 0.95 else 2,
                     3 if m > 0.98 else 1 if m > 0.90 else 0,
                     _iso(start + 600_000 + int(m * 90_000_000))))
        if rand() < 0.30:
            by = ("li.na", "wang.wei", "clerk")[rid % 3]
            at = _iso(start)
            fields = [("event_type", choice(EVENT_TYPES)), ("party", choice(parties))]
            y = rand()
            if y < 0.7:
                fields.append(("place", choice(places)))
            if y > 0.4:
                fields.append(("item_class", choice(ITEM_CLASSES)))
            if 0.2 < y < 0.5:
                note = " ".join(choice(WORDS) for _ in range(1 + int(rand() * 5)))
                if y < 0.25:                   # a note naming the party: a rare text
                    note += " " + fields[1][1]
                fields.append(("note", note))
            if y > 0.9:
                fields.append(("case", choice(case_nos)))
            if 0.5 < y < 0.53:                 # a clerk's retention proposal
                fields.append(("retention_class", ("ordinary", "long_term",
                                                   "permanent")[int(y * 1000) % 3]))
            for field, value in fields:
                y = rand()
                span = (start, start + dur // 2) if y < 0.2 else (None, None)
                if y > 0.9:          # a corrected value: the old one superseded
                    ev += 1
                    tags.append((ev, rid, span[0], span[1], field, value + "-old", False,
                                 by, at, None))
                ev += 1
                tags.append((ev, rid, span[0], span[1], field, value, True, by, at, None))
        x = rand()
        if x < 0.10:
            ev += 1
            number = "A%07d-%s" % (rid, _iso(start)[:10])
            nums.append((number, ev, "4401", number[9:], "p", "1", rid, "clerk", _iso(start)))
            nitems.append((number, rid, None, None))
            if x < 0.03 and rid > 1:        # a number over two recordings
                nitems.append((number, randint(1, rid - 1), None, None))
        elif x > 0.95:
            ev += 1
            citems.append((ev, choice(case_nos), "recording", rid, None,
                           "angle" if x > 0.99 else "primary", x < 0.995, "clerk",
                           _iso(start)))
    return {"recordings": (REC_COLS, recs), "tags": (TAG_COLS, tags),
            "archive_numbers": (NUM_COLS, nums), "number_items": (NITEM_COLS, nitems),
            "cases": (CASE_COLS, cases), "case_items": (CITEM_COLS, citems)}


ORDER = ("cases", "recordings", "archive_numbers", "number_items", "tags", "case_items")


def load_core(conn, data):
    """Insert ``data`` through SQLAlchemy Core (any dialect; the tests' way)."""
    from host_tools.catalogue import db
    for name in ORDER:
        cols, rows = data[name]
        t = db.metadata.tables[name]
        for i in range(0, len(rows), 5000):
            conn.execute(t.insert(), [dict(zip(cols, r)) for r in rows[i:i + 5000]])


def load_sqlite(path, data):
    """Bulk insert into the SQLite file ``path`` (schema made already): the indexes are
    dropped, the rows inserted by executemany in batches in one transaction, the indexes
    made again (the same definitions), then ANALYZE."""
    import sqlite3
    c = sqlite3.connect(path)
    c.execute("PRAGMA synchronous=OFF")
    c.execute("PRAGMA foreign_keys=OFF")
    c.execute("PRAGMA cache_size=-200000")
    indexes = c.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                        "sql IS NOT NULL").fetchall()
    with c:
        for name, _ in indexes:
            c.execute('DROP INDEX "%s"' % name)
        for name in ORDER:
            cols, rows = data[name]
            sql = "INSERT INTO %s (%s) VALUES (%s)" % (name, ", ".join(cols),
                                                       ", ".join("?" * len(cols)))
            for i in range(0, len(rows), 50_000):
                c.executemany(sql, rows[i:i + 50_000])
        for _, sql in indexes:
            c.execute(sql)
    c.execute("ANALYZE")
    c.close()


def load_postgresql(eng, data):
    """Bulk load into PostgreSQL (schema made already) with COPY, then ANALYZE."""
    raw = eng.raw_connection()
    try:
        with raw.cursor() as cur:
            for name in ORDER:
                cols, rows = data[name]
                with cur.copy("COPY %s (%s) FROM STDIN" % (name, ", ".join(cols))) as cp:
                    for r in rows:
                        cp.write_row(r)
            if "recordings" in data:      # the ids were given: move the sequence past them
                cur.execute("SELECT setval(pg_get_serial_sequence('recordings', 'id'), "
                            "(SELECT max(id) FROM recordings))")
        raw.commit()
        raw.driver_connection.autocommit = True
        with raw.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        raw.close()


def queries(data, per_kind, seed=2):
    """[(kind, Filters)]: per_kind random filters of each kind, values drawn from data."""
    from host_tools.catalogue.search import Filters
    rnd = random.Random(seed)
    recs = data["recordings"][1]
    tags = [t for t in data["tags"][1] if t[6]]
    by_field = {}
    for t in tags:
        by_field.setdefault(t[4], []).append(t[5])
    numbers = [r[0] for r in data["number_items"][1]]
    cases = [r[1] for r in data["case_items"][1]] or ["C-00000"]

    def day(ms):
        return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).date()

    def span(days=None):
        a = day(rnd.choice(recs)[3])
        return a, a + dt.timedelta(days=rnd.randint(0, 30) if days is None else days)

    def word():
        if rnd.random() < 0.3:                 # a rare text: a party named in a note
            return rnd.choice(by_field["party"])
        w = rnd.choice(WORDS)
        return w[:max(3, len(w) // 2)] if rnd.random() < 0.5 else w
    makers = {
        "none": lambda: Filters(),
        "device": lambda: Filters(device=[rnd.choice(recs)[1]
                                          for _ in range(rnd.choice((1, 1, 2, 3)))]),
        "officer": lambda: Filters(officer=rnd.choice(recs)[6] or "000000"),
        "date": lambda: Filters(**dict(zip(("date_from", "date_to"), span()))),
        "party": lambda: Filters(party=rnd.choice(by_field["party"])),
        "place": lambda: Filters(place=rnd.choice(by_field["place"])),
        "event_type": lambda: Filters(event_type=rnd.choice(EVENT_TYPES)),
        "item_class": lambda: Filters(item_class=rnd.choice(ITEM_CLASSES)),
        "note": lambda: Filters(note=word()),
        "case": lambda: Filters(case=rnd.choice(cases)),
        "archive_number": lambda: Filters(archive_number=rnd.choice(numbers)),
        "interruption": lambda: Filters(interruption=rnd.choice(("any", "stated",
                                                                 "unstated"))),
        "mark": lambda: Filters(mark=rnd.choice(("important", "notice", "bookmark"))),
        "state": lambda: Filters(state=rnd.choice(("complete", "partial", "disposed"))),
        "retention": lambda: Filters(retention=rnd.choice(("ordinary", "long_term",
                                                           "permanent"))),
        "officer+date": lambda: Filters(officer=rnd.choice(recs)[6] or "000000",
                                        **dict(zip(("date_from", "date_to"), span(90)))),
        "device+interruption": lambda: Filters(device=[rnd.choice(recs)[1]],
                                               interruption="unstated"),
        "event_type+date": lambda: Filters(event_type=rnd.choice(EVENT_TYPES),
                                           **dict(zip(("date_from", "date_to"), span(60)))),
    }
    out = []
    for kind, make in makers.items():
        out.extend((kind, make()) for _ in range(per_kind))
    rnd.shuffle(out)
    return out


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main(n=1_000_000, per_kind=200, postgresql=False):
    from host_tools.catalogue import db
    from host_tools.catalogue.search import search
    tmp = tempfile.mkdtemp(prefix="sealcam-bench-search-")
    pg = None
    try:
        t = time.perf_counter()
        data = generate(n)
        t_gen = time.perf_counter() - t
        if postgresql:
            from tests import pgserver      # run from the repository: python -m tests.bench
            why = pgserver.available()
            if why:
                print("search on PostgreSQL: not run: %s" % why)
                return None
            pg = pgserver.PgServer().start()
            eng = db.open_engine(pg.new_database())
            t = time.perf_counter()
            load_postgresql(eng, data)
            where, size = "PostgreSQL", ""
        else:
            path = os.path.join(tmp, "catalogue.sqlite")
            eng = db.open_engine("sqlite:///" + path)
            t = time.perf_counter()
            load_sqlite(path, data)
            where, size = "SQLite", ", %.0f MB" % (os.path.getsize(path) / 1e6)
        t_load = time.perf_counter() - t
        print("search: a %s catalogue of %d recordings (%d tags, %d numbered, %d filed "
              "in cases): generated in %.1f s, inserted and indexed in %.1f s%s"
              % (where, n, len(data["tags"][1]), len(data["number_items"][1]),
                 len(data["case_items"][1]), t_gen, t_load, size))
        qs = queries(data, per_kind)
        del data
        times = {}
        with eng.connect() as conn:
            for kind, f in qs[:20]:                     # warm the page cache
                search(conn, f, 50)
            for kind, f in qs:
                t = time.perf_counter()
                search(conn, f, 50)
                times.setdefault(kind, []).append((time.perf_counter() - t) * 1000)
        eng.dispose()
        every = [x for xs in times.values() for x in xs]
        print("  %-22s %6s %8s %8s" % ("filter (a page of 50)", "runs", "p50 ms", "p95 ms"))
        for kind in sorted(times):
            xs = times[kind]
            print("  %-22s %6d %8.2f %8.2f%s" % (kind, len(xs), _pct(xs, 50), _pct(xs, 95),
                                                "" if _pct(xs, 95) < GOAL_MS else "  <-"))
        p95 = _pct(every, 95)
        print("  %-22s %6d %8.2f %8.2f" % ("overall", len(every), _pct(every, 50), p95))
        worst = max(_pct(xs, 95) for xs in times.values())
        print("  goal: p95 < %g ms on %d recordings, every kind: %s (overall p95 %.2f ms, "
              "worst kind %.2f ms)" % (GOAL_MS, n, "met" if worst < GOAL_MS else "NOT met",
                                       p95, worst))
        return times
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 1_000_000, postgresql="--postgresql" in sys.argv)
