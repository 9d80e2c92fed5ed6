"""`sealcam desk --check` refuses, in one line and exit 3, what would make a desk that
cannot work or writes where it must not: a wildcard address without --server-name (every
request would name a host the desk refuses), an --export-dir inside the archive."""
from host_tools import station
from host_tools.cli import main as cli


def test_desk_check_refuses_a_wildcard_host_without_a_name_and_exports_inside(tmp_path,
                                                                            capsys):
    arch = tmp_path / "arch"
    station.init(arch)
    import socket
    with socket.socket() as s:          # a port free now (the check binds it once)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = ["desk", "--check", "--archive", str(arch), "--port", str(port)]
    for extra, word in ((["--host", "0.0.0.0"], "--server-name"),
                        (["--export-dir", str(arch / "discs")], "inside the archive")):
        assert cli(base + extra) == 3, extra
        err = capsys.readouterr().err
        assert word in err and len(err.strip().splitlines()) == 1, err
    assert cli(base + ["--host", "0.0.0.0", "--server-name", "desk.station.local",
                       "--export-dir", str(tmp_path / "discs")]) == 0
    assert "would serve" in capsys.readouterr().out
