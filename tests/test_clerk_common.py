"""Shared helpers of the clerk tests (tags, numbers, cases, documents); no tests here.

    cat, u = catalogue(tmp_path, url)                 # an empty archive, users of each role
    add_recording(cat, "SC-1", 5, start_ms=..., duration_ms=..., officer="OFC-0001")
    arch, facts = real_archive(tmp_path)              # a copy of an offloaded real archive

Users are bound to OS accounts nobody signs in with (no argon2 cost); they act as
users.User values of their role, which is what `users.authenticate` returns.
"""
import shutil

import sqlalchemy as sa

from host_tools import station
from host_tools.catalogue import db, users
from host_tools.catalogue.store import Catalogue

A, B = "SC-00CLK0A1", "SC-00CLK0B2"
T0 = 1_700_000_000_000          # the reference writer's rtc0: 2023-11-14T22:13:20Z

ROLES = {"clerk": "li.na", "head": "wang.head", "officer": "ofc-0001",
         "officer2": "ofc-0002", "leader": "zhao.lead", "auditor": "sun.audit"}
_ROLE_OF = {"clerk": "clerk", "head": "archive_head", "officer": "officer",
            "officer2": "officer", "leader": "unit_leader", "auditor": "auditor"}


def add_users(cat, head_clearance=None, top=None):
    """The users of ROLES; wang.head, the first, added by the station key's holder with
    ``head_clearance`` (a world whose users are cleared above "internal" needs one who
    may grant it: nobody grants a clearance above his own, R16). With ``top`` (a clearance)
    the first user is gao.top, an archive head so cleared, who adds wang.head (out["top"])."""
    root = users.bootstrap_user(cat)
    out = {}
    if top is not None:
        cat.act(root, users.add_event("gao.top", "archive_head", os_account="nosuch-top",
                                      clearance=top))
        root = out["top"] = users.User("gao.top", "archive_head", how="os", clearance=top)
    cat.act(root, users.add_event("wang.head", "archive_head", os_account="nosuch-head",
                                  clearance=head_clearance))
    head = users.User("wang.head", "archive_head", how="os", clearance=head_clearance)
    out["head"] = head
    for k, name in ROLES.items():
        if k != "head":
            cat.act(head, users.add_event(name, _ROLE_OF[k], os_account="nosuch-" + k))
            out[k] = users.User(name, _ROLE_OF[k], how="os")
    return out


def catalogue(tmp_path, url, name="arch", head_clearance=None, top=None):
    arch = tmp_path / name
    station.init(arch)
    cat = Catalogue(arch, url)
    return cat, add_users(cat, head_clearance, top)


def add_recording(cat, device, segment, *, start_ms=T0, duration_ms=600_000,
                  officer="OFC-0001", unit="U-1"):
    """A recordings row as recordings.py makes them (unit tests without media)."""
    with cat.engine.begin() as conn:
        conn.execute(db.recordings.insert().values(
            device=device, segment=segment, start_ms=start_ms,
            end_ms=None if duration_ms is None else start_ms + duration_ms,
            duration_ms=duration_ms, officer=officer, unit=unit, bytes=1000,
            state="complete", interruptions=0, statements=0, unstated=0, marks_important=0,
            marks_notice=0, marks_bookmark=0))


def count(cat, table, *where):
    with cat.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)
                            ).scalar_one()


# -- a real archive: two recorders offloaded the station's way -------------------------

def _build(root):
    import random

    import fakedev
    import refwriter as rw
    from host_tools.offload import offload
    arch = root / "arch"
    station.init(arch)
    f = {}
    rnd = random.Random(7)
    a = rw.RefStore(root / "sd-a", seed=b"\x41" * 32, device=A, officer=None, chunk=4096)
    a.boot()
    a.assign("OFC-0001", "U-1")
    f["a1"] = a.rec_start().seq
    a.write(rnd.randbytes(8_000))
    a.checkpoint()
    f["int_weather"] = a.interrupt("weather").seq          # stated by voice in a2
    f["a2"] = a.rec_start("resume").seq
    start = a.position()
    a.write(rnd.randbytes(6_000))
    a.voice_annotation(f["int_weather"], start=start, duration=2000)
    f["int_fault"] = a.interrupt("device_fault").seq       # never resumed: explained in writing
    a.assign(None)
    b = rw.RefStore(root / "sd-b", seed=b"\x42" * 32, device=B, officer=None, chunk=4096)
    b.boot()
    b.assign("OFC-0002", "U-1")
    f["b1"] = b.rec_start().seq                             # the second angle, same time
    b.write(rnd.randbytes(7_000))
    b.close()
    b.rec_stop()
    f["b_stop"] = b.records[-1].seq
    for s in (a, b):
        d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)]).start()
        try:
            sm = offload(d.port, str(arch), register=True, progress=False)
        finally:
            d.stop()
        assert sm.exit_code == 0, sm.errors
    return arch, f


_TEMPLATE = []


def real_archive(tmp_path, tmp_path_factory):
    """A fresh copy of the real archive (built once per run): (path, facts)."""
    if not _TEMPLATE:
        _TEMPLATE.append(_build(tmp_path_factory.mktemp("clerk-real")))
    arch, f = _TEMPLATE[0]
    dst = tmp_path / "real"
    shutil.copytree(arch, dst, symlinks=True)
    return dst, dict(f)
