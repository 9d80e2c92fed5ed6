"""R14 (monthly off-site backups; issue 12 item 4): `sealcam backup` copies only the objects
the backup folder lacks, each checked on arrival, and records a `backup_made` event with
its checkpoint; `sealcam restore` into an empty folder, then `sealcam verify`, proves it
complete; a changed object in the backup is named; the report shows a missing or overdue
backup. Driven through the real `sealcam` command (host_tools.cli.main).

The archive: the clerk tests' real one (two recorders offloaded the station's way,
tests/test_clerk_common.py), with its users and a technician who backs up, built once.
"""
import json
import os
import shutil
import stat

import pytest

import test_clerk_common as cc
from host_tools import cli
from host_tools.catalogue import db, users
from host_tools.catalogue.store import Catalogue

TECH, TECH_PW = "ma.tech", "tech pass 2023"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A real archive in clerk use (catalogue in ARCHIVE/catalogue.sqlite), built once."""
    base = tmp_path_factory.mktemp("backup-tpl")
    arch, f = cc.real_archive(base, tmp_path_factory)
    with Catalogue(arch) as cat:
        cat.refresh_recordings(None)
        u = cc.add_users(cat)
        cat.act(u["head"], users.add_event(TECH, "technician", password=TECH_PW))
    return arch, f


@pytest.fixture
def world(template, tmp_path, monkeypatch, capsys):
    arch = tmp_path / "arch"
    shutil.copytree(template[0], arch, symlinks=True)
    monkeypatch.setenv("SEALCAM_PASSWORD", TECH_PW)
    monkeypatch.delenv("SEALCAM_USER", raising=False)

    def sealcam(*argv):
        capsys.readouterr()
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err
    return sealcam, str(arch), tmp_path


def _schema(rule):
    import re
    pycddl = pytest.importorskip("pycddl")
    text = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "protocol",
                             "schema.cddl")).read()
    for other in ("clerk-classified", "clerk-access-event", "clerk-copy-made",
                  "clerk-disc-made", "clerk-handover-event"):
        if not re.search(r"^%s\s*=" % other, text, re.M):
            text += "\n%s = nil\n" % other
    return pycddl.Schema("root = %s\n" % rule + text)


def _backup(sealcam, arch, dest, *extra):
    code, out, err = sealcam("backup", "--archive", arch, "--to", dest, "--user", TECH,
                             "--json", *extra)
    assert code == 0, (code, out, err)
    return json.loads(out)


def _objects(arch):
    return sum(len(fs) for _d, _s, fs in os.walk(os.path.join(arch, "objects")))


def test_r14_backup_then_restore_into_an_empty_folder_verifies(world):
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    res = _backup(sealcam, arch, dest)
    assert res["objects"] == res["objects_new"] == _objects(arch) > 0
    # the keys never travel with the backup; its README says how they do (EN + ZH)
    for d, _s, files in os.walk(dest):
        assert "station.key" not in files, d
    readme = (dest / "README.txt").read_text("utf-8")
    assert "station.key" in readme and "私钥" in readme and "at-rest key" in readme
    # the event names the checkpoint the backup holds: the log's own root at that size
    with Catalogue(arch) as cat:
        e = cat.entry(res["log_entry"])
        assert e["type"] == "backup_made" and e["by"] == TECH
        assert cat.archive.log().root(e["log_size"]).hex() == e["root"] == res["root"]
        raw = [r for i, r, _e in cat.archive.log().entries(res["log_entry"],
                                                           res["log_entry"] + 1)][0]
    for rule in ("clerk-backup-made", "log-entry"):       # as schema.cddl says it
        _schema(rule).validate_cbor(raw)
    new = tmp / "restored"
    code, out, err = sealcam("restore", "--from", dest, "--archive", new, "--json")
    assert code == 0, (code, out, err)
    r = json.loads(out)
    assert r["ok"] and r["objects"] == res["objects"] and r["log_size"] == res["log_size"]
    assert not (new / "station.key").exists()
    code, out, err = sealcam("verify", new)
    assert code == 0 and "OVERALL: OK" in out, (out, err)
    # the restored catalogue is the archive's: the users are there
    code, out, err = sealcam("user", "list", "--archive", new, "--json")
    assert code == 0 and TECH in {u["name"] for u in json.loads(out)["users"]}
    code, out, err = sealcam("catalogue", "check", "--archive", new)
    assert code == 0 and "every row is the station log's" in out, out
    # restore goes only into a new, empty folder
    code, out, err = sealcam("restore", "--from", dest, "--archive", new)
    assert code == 3 and "not empty" in err


def test_r14_a_second_backup_copies_only_new_objects(world):
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    first = _backup(sealcam, arch, dest)
    with Catalogue(arch) as cat:
        sha = cat.archive.put_bytes(b"a new object since the last backup" * 100)
    second = _backup(sealcam, arch, dest)
    assert (second["objects"], second["objects_new"], second["bytes_new"]) == (
        first["objects"] + 1, 1, 3400)
    assert os.path.isfile(dest / "objects" / sha[:2] / sha[2:])
    third = _backup(sealcam, arch, dest)
    assert third["objects_new"] == 0 and third["log_size"] > second["log_size"]
    with Catalogue(arch) as cat:
        with cat.engine.connect() as conn:
            rows = conn.execute(db.backups.select().order_by(db.backups.c.id)).fetchall()
    assert [r.objects_new for r in rows] == [first["objects"], 1, 0]
    # a folder another archive backs up into, or one that is not a backup, is refused
    (tmp / "junk").mkdir()
    (tmp / "junk" / "holiday.jpg").write_bytes(b"x")
    code, out, err = sealcam("backup", "--archive", arch, "--to", tmp / "junk", "--user", TECH)
    assert code == 3 and "not a sealcam backup" in err
    code, out, err = sealcam("backup", "--archive", arch, "--to", tmp, "--user", TECH)
    assert code == 3 and "overlap" in err


def test_r14_an_object_gone_from_the_archive_leaves_the_backup_with_its_snapshots(world):
    from host_tools.backup.backup import KEEP_SNAPSHOTS
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    with Catalogue(arch) as cat:
        sha = cat.archive.put_bytes(b"a recording disposed of later" * 20)
        path = cat.archive.object_path(sha)
    _backup(sealcam, arch, dest)
    os.chmod(os.path.dirname(path), 0o755)
    os.unlink(path)                             # as an approved disposal removes it
    for n in range(KEEP_SNAPSHOTS):
        assert os.path.isfile(dest / "objects" / sha[:2] / sha[2:])
        res = _backup(sealcam, arch, dest)
    assert res["objects_removed"] == 1
    assert not os.path.exists(dest / "objects" / sha[:2] / sha[2:])
    assert len(os.listdir(dest / "snapshots")) == KEEP_SNAPSHOTS


def test_r14_an_interrupted_backup_leaves_the_folder_usable_and_continues(world, monkeypatch):
    from host_tools.backup.backup import Progress, backup
    monkeypatch.setattr(Progress, "EVERY", 0)
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    first = _backup(sealcam, arch, dest)
    latest = (dest / "LATEST").read_text()

    def cut(state):                 # the power goes after the first new object arrived
        if state["phase"] == "objects" and state["done"] >= 1:
            raise KeyboardInterrupt
    with Catalogue(arch) as cat:
        for n in range(3):
            cat.archive.put_bytes(b"arrives during the next backup %d" % n * 50)
        with pytest.raises(KeyboardInterrupt):
            backup(cat, users.User(TECH, "technician"), dest, progress=cut)
    assert (dest / "LATEST").read_text() == latest      # the last complete snapshot stands
    code, out, err = sealcam("restore", "--from", dest, "--archive", tmp / "restored-mid")
    assert code == 0, err
    second = _backup(sealcam, arch, dest)               # and the rerun continues
    assert second["objects_new"] == 2 and second["objects"] == first["objects"] + 3


def test_r14_a_symbolic_link_in_the_backup_folder_is_refused(world):
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    _backup(sealcam, arch, dest)
    with Catalogue(arch) as cat:
        sha = cat.archive.put_bytes(b"a new object whose folder is a link in the backup")
    victim = tmp / "elsewhere"
    victim.mkdir()
    shutil.rmtree(dest / "objects" / sha[:2], ignore_errors=True)
    os.symlink(victim, dest / "objects" / sha[:2])
    code, out, err = sealcam("backup", "--archive", arch, "--to", dest, "--user", TECH)
    assert code == 3 and "symbolic link" in err, (out, err)
    assert os.listdir(victim) == []             # never followed
    link = tmp / "link-to-backup"
    os.symlink(dest, link)
    code, out, err = sealcam("backup", "--archive", arch, "--to", link, "--user", TECH)
    assert code == 3 and "symbolic link" in err


def test_r14_a_changed_object_in_the_backup_is_named_by_restore(world):
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    _backup(sealcam, arch, dest)
    objs = sorted((d, f) for d, _s, fs in os.walk(dest / "objects") for f in fs)
    d, f = objs[len(objs) // 2]
    victim = os.path.join(d, f)
    os.chmod(victim, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(open(victim, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(victim, "wb").write(bytes(data))
    new = tmp / "restored"
    code, out, err = sealcam("restore", "--from", dest, "--archive", new)
    assert code == 1, (out, err)
    rel = "objects/%s/%s" % (os.path.basename(d), f)
    assert rel in err and "has changed" in err and "another backup" in err, err
    assert "NOT RESTORED" in err and (new / "RESTORE-INCOMPLETE.txt").exists()
    # the next backup with --recheck reads every object back and repairs the damaged one
    res = _backup(sealcam, arch, dest, "--recheck")
    assert res["repaired"] == 1 and res["objects_new"] == 1, res
    code, out, err = sealcam("restore", "--from", dest, "--archive", tmp / "restored-1")
    assert code == 0, err
    # a changed snapshot file is named too (the manifest's hash)
    snap = (dest / "LATEST").read_text().strip()
    idx = dest / "snapshots" / snap / "archive.sqlite"
    os.chmod(idx, 0o644)
    with open(idx, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff")
    code, out, err = sealcam("restore", "--from", dest, "--archive", tmp / "restored-2")
    assert code == 3 and "archive.sqlite has changed" in err, err


def test_r14_restore_refuses_a_log_that_is_not_its_signed_checkpoint(world):
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    _backup(sealcam, arch, dest)
    snap = dest / "snapshots" / (dest / "LATEST").read_text().strip()
    man = json.loads((snap / "manifest.json").read_text())
    # an editor changes an entry (the manifest holds no hash of the log): the signature
    # catches it
    assert "log/entries" not in man["files"]
    ent = snap / "log" / "entries"
    os.chmod(ent, 0o644)
    data = bytearray(ent.read_bytes())
    i = data.index(b"wang.head")
    data[i:i + 9] = b"wang.hacd"
    ent.write_bytes(bytes(data))
    code, out, err = sealcam("restore", "--from", dest, "--archive", tmp / "restored")
    assert code == 3 and "signed by" in err, err


def test_r14_the_report_shows_a_missing_then_an_overdue_backup(world):
    sealcam, arch, tmp = world

    def problems():
        code, out, err = sealcam("report", "--archive", arch, "--json")
        rep = json.loads(out)
        return {p["kind"] for p in rep["problems"]}, rep["custody"]["backup"]
    kinds, st = problems()
    assert "backup_missing" in kinds and st["last"] is None and st["overdue"]
    _backup(sealcam, arch, tmp / "offsite")
    kinds, st = problems()
    assert not kinds & {"backup_missing", "backup_overdue"}
    assert st["days_since"] == 0 and st["max_age_days"] == 31 and not st["overdue"]
    with open(os.path.join(arch, "station.toml"), "w") as fh:
        fh.write("[backup]\nmax_age_days = 0\n")
    kinds, st = problems()
    assert "backup_overdue" in kinds and st["overdue"]
    code, out, err = sealcam("report", "--archive", arch)
    assert "CUSTODY" in out and "OVERDUE" in out
    # a report filtered to some records counts no custody problem (the archive's, not theirs)
    code, out, err = sealcam("report", "--archive", arch, "--json", "--device", cc.A)
    assert not {p["kind"] for p in json.loads(out)["problems"]} & {"backup_overdue"}


def test_r14_only_a_technician_or_archive_head_backs_up(world, monkeypatch):
    sealcam, arch, tmp = world
    with Catalogue(arch) as cat:
        head = users.User("wang.head", "archive_head", how="os")
        cat.act(head, users.add_event("xu.clerk", "clerk", password="clerk pass 2023"))
    monkeypatch.setenv("SEALCAM_PASSWORD", "clerk pass 2023")
    code, out, err = sealcam("backup", "--archive", arch, "--to", tmp / "b", "--user",
                             "xu.clerk")
    assert code == 5 and "archive_head / technician" in err
    assert not (tmp / "b").exists()


def test_r14_backup_and_restore_with_the_catalogue_in_either_database(
        template, tmp_path, catalogue_url, monkeypatch, capsys):
    arch = tmp_path / "arch"
    shutil.copytree(template[0], arch, symlinks=True)
    os.unlink(arch / "catalogue.sqlite")
    with Catalogue(arch, catalogue_url) as cat:
        cat.reindex()
    monkeypatch.setenv("SEALCAM_PASSWORD", TECH_PW)
    assert cli.main(["backup", "--archive", str(arch), "--to", str(tmp_path / "b"),
                     "--user", TECH, "--db", catalogue_url, "--json"]) == 0
    capsys.readouterr()
    snap = tmp_path / "b" / "snapshots" / (tmp_path / "b" / "LATEST").read_text().strip()
    pg = catalogue_url.startswith("postgresql")
    # never a copy of the catalogue: the restore rebuilds it from the signed log
    assert not (snap / "catalogue.txt").exists() and not (snap / "catalogue.sqlite").exists()
    assert cli.main(["restore", "--from", str(tmp_path / "b"), "--archive",
                     str(tmp_path / "new")]) == 0
    out = capsys.readouterr().out
    assert ("catalogue reindex" in out) == pg
    assert "\\n" not in out and len(out.splitlines()) >= 2       # one line each, readable
    assert cli.main(["verify", str(tmp_path / "new")]) == 0


def test_r14_a_hostile_backup_writes_nothing_outside_the_new_folder(world):
    import hashlib
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    _backup(sealcam, arch, dest)
    name = (dest / "LATEST").read_text().strip()
    snap = dest / "snapshots" / name
    man = json.loads((snap / "manifest.json").read_text())

    def restore(n):
        code, out, err = sealcam("restore", "--from", dest, "--archive", tmp / n)
        assert "Traceback" not in err
        return code, err
    (dest / "LATEST").write_text("../../etc\n")
    code, err = restore("n1")
    assert code == 3 and "does not name a snapshot" in err
    (dest / "LATEST").write_text(name + "\n")
    bad = dict(man, files=dict(man["files"], **{"../escaped": {"sha256": "0" * 64,
                                                               "size": 1}}))
    (snap / "manifest.json").write_text(json.dumps(bad))
    code, err = restore("n2")
    assert code == 3 and "not a path inside a backup" in err
    for planted in ("station.key", "objects/00/" + "0" * 62, "devices/X/rec/0.log"):
        bad = dict(man, files=dict(man["files"], **{planted: {"sha256": "0" * 64,
                                                              "size": 1}}))
        (snap / "manifest.json").write_text(json.dumps(bad))
        code, err = restore("n2-" + planted.split("/")[0])
        assert code == 3 and "no file of a snapshot" in err, err
    (snap / "views.json").write_bytes(b"{not json")
    man["files"]["views.json"] = {"sha256": hashlib.sha256(b"{not json").hexdigest(),
                                  "size": 9}
    (snap / "manifest.json").write_text(json.dumps(man))
    code, err = restore("n2-json")          # a manifest changed to match: not the signed one
    assert code == 3 and "not the manifest the station signed" in err
    # views that climb out of the new folder: named, never written
    views = {"../../../outside": {"x": "0" * 64}, cc.A: {"../../escape": "0" * 64}}
    raw = json.dumps(views).encode()
    (snap / "views.json").write_bytes(raw)
    man["files"]["views.json"] = {"sha256": hashlib.sha256(raw).hexdigest(),
                                  "size": len(raw)}
    (snap / "manifest.json").write_text(json.dumps(man))
    code, err = restore("n3")
    assert code == 3 and "not the manifest the station signed" in err
    assert not (tmp / "outside").exists() and not (tmp / "escape").exists()
    # a snapshot file replaced by a link: refused, not followed
    os.unlink(snap / "station.pub")
    os.symlink(tmp / "arch" / "station.pub", snap / "station.pub")
    code, err = restore("n4")
    assert code == 3 and "symbolic link" in err


def _restore(sealcam, dest, new, *extra):
    code, out, err = sealcam("restore", "--from", dest, "--archive", new, *extra)
    assert "Traceback" not in err
    return code, out, err


def _rehash(snap, man, rel):
    import hashlib
    raw = (snap / rel).read_bytes()
    man["files"][rel] = {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
    (snap / "manifest.json").write_text(json.dumps(man))


def test_r14_a_manifest_changed_off_site_is_refused(world):
    """Attack review #11: someone who may write to the off-site folder drops an object
    from the manifest (and fixes its hash): restore must not call that complete."""
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    _backup(sealcam, arch, dest)
    snap = dest / "snapshots" / (dest / "LATEST").read_text().strip()
    man = json.loads((snap / "manifest.json").read_text())
    names = (snap / "objects.txt").read_text().splitlines()
    os.chmod(snap / "objects.txt", 0o644)
    (snap / "objects.txt").write_text("".join(n + "\n" for n in names[1:]))
    man["objects"] = len(names) - 1
    _rehash(snap, man, "objects.txt")
    code, out, err = _restore(sealcam, dest, tmp / "n1")
    assert code == 3 and "manifest" in err and len(err.strip().splitlines()) == 1, (out, err)
    assert (tmp / "n1" / "RESTORE-INCOMPLETE.txt").exists() or not (tmp / "n1").exists()


def test_r14_restore_rebuilds_the_catalogue_from_the_signed_log(world):
    """Attack review #11: a catalogue row no log entry backs (a technician made archive
    head in a copied catalogue) never reaches the restored archive."""
    import sqlite3
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    _backup(sealcam, arch, dest)
    snap = dest / "snapshots" / (dest / "LATEST").read_text().strip()
    man = json.loads((snap / "manifest.json").read_text())
    cat_copy = snap / "catalogue.sqlite"
    if not cat_copy.exists():
        shutil.copy(os.path.join(arch, "catalogue.sqlite"), cat_copy)
    os.chmod(cat_copy, 0o644)
    con = sqlite3.connect(cat_copy)
    con.execute("UPDATE users SET role = 'archive_head' WHERE name = ?", (TECH,))
    con.commit()
    con.close()
    _rehash(snap, man, "catalogue.sqlite")
    code, out, err = _restore(sealcam, dest, tmp / "n1", "--json")
    if code == 0:
        code, out, err = sealcam("user", "list", "--archive", tmp / "n1", "--json")
        roles = {u["name"]: u["role"] for u in json.loads(out)["users"]}
        assert roles[TECH] == "technician", roles
    else:
        assert code == 3 and "manifest" in err, (out, err)
    # an untouched backup: the catalogue is rebuilt from the restored log, and says so
    shutil.rmtree(dest)
    _backup(sealcam, arch, dest)
    code, out, err = _restore(sealcam, dest, tmp / "n2", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["catalogue"]["rebuilt"] and r["catalogue"]["problems"] == [], r["catalogue"]
    code, out, err = sealcam("user", "list", "--archive", tmp / "n2", "--json")
    assert {u["name"]: u["role"] for u in json.loads(out)["users"]}[TECH] == "technician"


def test_r14_restore_pins_the_station_key(world):
    """Attack review #11: the restorer pins the station's key (--expect-key FILE or
    FINGERPRINT) and is told which key was trusted."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from host_tools import keys, station
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    res = _backup(sealcam, arch, dest)
    fp = keys.fingerprint(station.station_pub(arch))
    assert res["station_key"] == fp
    code, out, err = _restore(sealcam, dest, tmp / "n1", "--expect-key", fp)
    assert code == 0 and fp in out and "--expect-key" in out, (out, err)
    code, out, err = _restore(sealcam, dest, tmp / "n2", "--expect-key",
                              os.path.join(arch, "station.pub"), "--json")
    assert code == 0 and json.loads(out)["key"] == {"fingerprint": fp, "pinned": True}
    code, out, err = _restore(sealcam, dest, tmp / "n3")           # not pinned: said so
    assert code == 0 and fp in out and "not pinned" in out, out
    other = keys.fingerprint(Ed25519PrivateKey.generate().public_key())
    code, out, err = _restore(sealcam, dest, tmp / "n4", "--expect-key", other)
    assert code == 3 and fp in err and other in err and len(err.strip().splitlines()) == 1
    code, out, err = _restore(sealcam, dest, tmp / "n5", "--expect-key", "not-a-key")
    assert code == 3 and "--expect-key" in err, err
    # a station.pub replaced in the backup: refused against the pinned key
    snap = dest / "snapshots" / (dest / "LATEST").read_text().strip()
    os.chmod(snap / "station.pub", 0o644)
    (snap / "station.pub").write_text(keys.fingerprint(b"x" * 32).replace(":", "") * 2 + "\n")
    code, out, err = _restore(sealcam, dest, tmp / "n6", "--expect-key", fp)
    assert code == 3 and fp in err, err


def test_r14_the_backups_log_ends_with_its_signed_event_when_the_log_grows(world, monkeypatch):
    """An entry appended between the backup_made event and the log's copy stays out of the
    snapshot: the station signs a checkpoint over exactly its log up to the event."""
    import importlib
    bk = importlib.import_module("host_tools.backup.backup")
    sealcam, arch, tmp = world
    real = bk._copy_log

    def meanwhile(a, d, snap, upto, prog):
        with Catalogue(arch) as cat:
            head = users.User("wang.head", "archive_head", how="os")
            cat.act(head, users.add_event("xu.clerk", "clerk", password="clerk pass 2023"))
        return real(a, d, snap, upto, prog)
    monkeypatch.setattr(bk, "_copy_log", meanwhile)
    res = _backup(sealcam, arch, tmp / "offsite")
    code, out, err = _restore(sealcam, tmp / "offsite", tmp / "new", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["log_entries"] == res["log_held"] == res["log_entry"] + 1 == r["backup_event"] + 1
    code, out, err = sealcam("verify", tmp / "new")
    assert code == 0 and "OVERALL: OK" in out, (out, err)


def test_r14_restore_names_hostile_views_and_writes_nothing_outside(tmp_path):
    """The views restore makes (from a manifest the station signed; checked all the same):
    a device id or a path that climbs out is named, never written."""
    from host_tools.backup.restore import _views
    from host_tools.backup.safefs import SafeDir
    n = SafeDir(tmp_path / "new", create=True)
    bad = []
    links = _views(n, {"../../../outside": {"x": "0" * 64}, cc.A: {"../../escape": "0" * 64}},
                   {"0" * 64}, bad)
    assert links == 0 and len(bad) == 2, bad
    assert "not a device id" in bad[0] and "names no restored object" in bad[1]
    assert not (tmp_path / "outside").exists() and not (tmp_path / "escape").exists()


def _sparse_object(dest, size):
    """Make the largest object objects.txt lists a sparse file of ``size`` bytes (a few KB
    on the hostile disk); returns its name."""
    snap = dest / "snapshots" / (dest / "LATEST").read_text().strip()
    names = [x.split(" ")[0] for x in (snap / "objects.txt").read_text().splitlines()]
    big = max(names, key=lambda n: os.path.getsize(dest / "objects" / n[:2] / n[2:]))
    p = dest / "objects" / big[:2] / big[2:]
    os.chmod(p, 0o644)
    with open(p, "r+b") as f:
        f.truncate(size)
    return big


def _restore_fsize_limited(dest, new, limit):
    """`sealcam restore` in a subprocess whose files may grow to ``limit`` bytes at most."""
    import resource
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run(
        [sys.executable, "-c", "import sys; from host_tools import cli; "
         "sys.exit(cli.main(sys.argv[1:]))", "restore", "--from", str(dest),
         "--archive", str(new)], capture_output=True, text=True, timeout=120,
        preexec_fn=cap, cwd=os.path.dirname(here),
        env=dict(os.environ, SEALCAM_LANG="en"))


def test_r14_restore_copies_no_object_beyond_the_size_the_signed_backup_states(world):
    """Attack review 14 #05: a sparse 1 GiB file at a listed object's place is refused,
    named, before anything is written (objects.txt, covered by the signed manifest, gives
    each object's size); nothing in NEW is larger than the archive's objects."""
    import signal
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    _backup(sealcam, arch, dest)
    snap = dest / "snapshots" / (dest / "LATEST").read_text().strip()
    for line in (snap / "objects.txt").read_text().splitlines():
        name, size = line.split(" ")
        assert int(size) == os.path.getsize(dest / "objects" / name[:2] / name[2:])
    big = _sparse_object(dest, 1 << 30)
    r = _restore_fsize_limited(dest, tmp / "new", 32 << 20)
    assert r.returncode == 1 and r.returncode != -signal.SIGXFSZ, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "NOT RESTORED" in r.stderr, r.stderr
    assert big[2:] in r.stderr and "1073741824 bytes" in r.stderr, r.stderr
    assert not (tmp / "new" / "objects" / big[:2] / big[2:]).exists()
    assert (tmp / "new" / "RESTORE-INCOMPLETE.txt").exists()


def test_r14_an_older_backup_without_sizes_hashes_an_object_before_copying_it(
        world, monkeypatch):
    """An older backup's objects.txt lists names alone: each object is hashed where it is
    (nothing written) before it is copied, so a sparse 1 GiB object is named, not copied;
    an intact older backup still restores."""
    import importlib
    bk = importlib.import_module("host_tools.backup.backup")
    monkeypatch.setattr(bk, "_objects_txt", lambda d, names: "".join(
        n + "\n" for n in sorted(names)).encode())
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    _backup(sealcam, arch, dest)
    snap = dest / "snapshots" / (dest / "LATEST").read_text().strip()
    assert " " not in (snap / "objects.txt").read_text()
    code, out, err = _restore(sealcam, dest, tmp / "ok")
    assert code == 0, (out, err)
    big = _sparse_object(dest, 1 << 30)
    r = _restore_fsize_limited(dest, tmp / "new", 32 << 20)
    assert r.returncode == 1 and "Traceback" not in r.stderr, (r.stdout, r.stderr)
    assert "NOT RESTORED" in r.stderr and big[2:] in r.stderr, r.stderr
    assert not (tmp / "new" / "objects" / big[:2] / big[2:]).exists()


def test_r14_restore_names_deeply_nested_json_in_one_line(world):
    """Attack review 14 #04: `[[[[…` as sealcam-backup.json, manifest.json or views.json
    (RecursionError in json) is one line naming the file, never a traceback."""
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    _backup(sealcam, arch, dest)
    snap = dest / "snapshots" / (dest / "LATEST").read_text().strip()
    mark = (dest / "sealcam-backup.json").read_bytes()
    (dest / "sealcam-backup.json").write_text("[" * 4000)
    code, out, err = _restore(sealcam, dest, tmp / "n1")
    assert code == 3 and len(err.strip().splitlines()) == 1, (out, err)
    assert "sealcam-backup.json" in err, err
    (dest / "sealcam-backup.json").write_bytes(mark)
    man = (snap / "manifest.json").read_bytes()
    os.chmod(snap / "manifest.json", 0o644)
    (snap / "manifest.json").write_text("[" * 100000)
    code, out, err = _restore(sealcam, dest, tmp / "n2")
    assert code == 3 and len(err.strip().splitlines()) == 1, (out, err)
    assert "manifest.json" in err, err
    (snap / "manifest.json").write_bytes(man)
    # views.json is hash-checked first: a nested one the manifest names is still one line
    import importlib
    rs = importlib.import_module("host_tools.backup.restore")
    assert rs._json(b"[" * 100000) is rs._BAD and rs._json(b"\xff") is rs._BAD
    assert rs._json(b'{"a": 1}') == {"a": 1}


def test_r14_restore_never_shows_a_traceback(world, monkeypatch):
    """Whatever a hostile backup makes the restore raise (RecursionError, MemoryError,
    ValueError), `sealcam restore` says it in one line naming the backup folder."""
    import importlib
    rs = importlib.import_module("host_tools.backup.restore")
    sealcam, arch, tmp = world
    for exc in (RecursionError("maximum recursion depth exceeded"), MemoryError(),
                ValueError("odd")):
        def boom(*a, **k):
            raise exc
        monkeypatch.setattr(rs, "restore", boom)
        code, out, err = _restore(sealcam, tmp / "somewhere", tmp / "n")
        assert code == 3 and len(err.strip().splitlines()) == 1, (exc, out, err)
        assert "somewhere" in err and type(exc).__name__ in err, err


def test_r14_restore_names_a_newer_snapshot_than_latest(world):
    """Attack review 14 (rollback): LATEST set back to an older kept snapshot while a newer
    one is in the folder restores the older one with a note naming the newer."""
    sealcam, arch, tmp = world
    dest = tmp / "offsite"
    first = _backup(sealcam, arch, dest)
    second = _backup(sealcam, arch, dest)
    code, out, err = _restore(sealcam, dest, tmp / "n0", "--json")
    assert code == 0 and not any("newer than" in x for x in json.loads(out)["notes"])
    (dest / "LATEST").write_text(first["snapshot"] + "\n")
    code, out, err = _restore(sealcam, dest, tmp / "n1", "--json")
    r = json.loads(out)
    assert code == 0 and r["snapshot"] == first["snapshot"], (out, err)
    assert any(second["snapshot"] in x and "newer than" in x for x in r["notes"]), r["notes"]
