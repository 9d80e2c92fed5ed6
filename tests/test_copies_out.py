"""`access export --out DIR`: a DIR that does not exist yet is made (0700), as `backup --to`
makes its folder; a link for DIR, or a DIR inside the archive, is refused in one line and
nothing is written (newcomer's run: a new folder was refused as "not a folder")."""
import os

import pytest

from test_access_common import approved_request
from test_copies_access import DEV, template, world          # noqa: F401 (fixtures)
from host_tools.catalogue import copies


def test_export_makes_a_new_out_folder_and_refuses_a_link(world, tmp_path):
    cat, u, seg = world
    rid = approved_request(cat, u, actions=("export",))
    out = tmp_path / "new-usb"
    x = copies.export_extract(cat, u["clerk"], rid, DEV, seg, out)
    assert os.path.dirname(x["file"]) == str(out)
    assert oct(os.stat(out).st_mode & 0o777) == "0o700"
    link = tmp_path / "link-usb"
    (tmp_path / "elsewhere").mkdir()
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(copies.CopyError, match="not a folder"):
        copies.export_extract(cat, u["clerk"], rid, DEV, seg, link)
    assert os.listdir(tmp_path / "elsewhere") == []
    with pytest.raises(copies.CopyError, match="inside the archive"):
        copies.export_extract(cat, u["clerk"], rid, DEV, seg,
                              os.path.join(cat.archive_dir, "out"))
    assert not os.path.exists(os.path.join(cat.archive_dir, "out"))
