"""R14 with R16: a backup of an archive whose objects are encrypted at rest carries them
as they are at rest (ciphertext), never the at-rest key; it is checked on arrival and on
restore through Archive.open_object (decrypted with the key); without the key a restore
says its objects are not proven."""
import json
import os

from host_tools import cli
from host_tools.archive import atrest
from host_tools.backup.backup import backup
from host_tools.catalogue.store import Catalogue
from test_atrest import _offloaded
import test_clerk_common as cc


def test_r14_a_backup_of_sealed_objects_keeps_them_sealed_and_restores_with_the_key(
        tmp_path, capsys):
    key = tmp_path / "keys" / "atrest.key"
    key.parent.mkdir()
    arch, media = _offloaded(tmp_path, key)
    with Catalogue(arch) as cat:
        u = cc.add_users(cat)
        res = backup(cat, u["head"], tmp_path / "offsite", progress=False)
    assert res["objects_new"] > 0 and res["unchecked"] == 0
    sealed = 0
    for d, _s, files in os.walk(tmp_path / "offsite"):
        assert "atrest.key" not in files and "station.key" not in files
        for f in files:
            data = open(os.path.join(d, f), "rb").read()
            assert media[1000:1032] not in data, f       # no run of the plaintext
            sealed += data[:5] == atrest.MAGIC
    assert sealed >= 1
    assert cli.main(["restore", "--from", str(tmp_path / "offsite"), "--archive",
                     str(tmp_path / "new")]) == 0
    capsys.readouterr()
    assert cli.main(["verify", str(tmp_path / "new")]) == 0
    out = capsys.readouterr().out
    assert "OVERALL: OK" in out, out
    # the key taken away: the restore cannot prove the sealed objects and says so
    os.rename(key, tmp_path / "keys" / "elsewhere.key")
    code = cli.main(["restore", "--from", str(tmp_path / "offsite"), "--archive",
                     str(tmp_path / "new2"), "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 1 and not r["ok"] and r["unchecked"] >= 1 and r["bad"] == []
    assert any("at-rest key" in n for n in r["notes"])
