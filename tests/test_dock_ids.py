"""`sealcam checkout` refuses an officer id (or unit) of the wrong form, before anything is
sent to the recorder: one line naming the id, the pattern and the station config file
(ARCHIVE/station.toml, host_tools/stationconfig.py), exit 3. The default takes the ids the
project uses (PC-0042, OFC-HONEST, a 6-digit police number 012345); a station sets its own
pattern in the file; a bad file is one line naming it, exit 3.
"""
import json
import os

import pytest

import fakedev
from host_tools import station, stationconfig
from test_dock import recording_hook, sealcam
from test_offload import shift


@pytest.fixture
def arch(tmp_path):
    station.init(tmp_path / "arch")
    return tmp_path / "arch"


@pytest.fixture
def dev(tmp_path, arch):
    """A registered fake recorder answering TIME_SET, CHECK and ASSIGN as the firmware does
    (its .ops lists every request it got)."""
    s = shift(tmp_path / "sd", segments=1)
    from host_tools.archive import Archive
    with Archive(arch) as a:
        a.register(s.device, s.pubkey)
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)],
                           hook=recording_hook(s, arch)).start()
    yield d
    d.stop()


def checkout(d, arch, officer, unit="U2", *extra):
    return sealcam("checkout", "--port", d.port, "--archive", arch, "--officer", officer,
                   "--unit", unit, "--timeout", "1", *extra)


def write_conf(arch, text):
    p = os.path.join(arch, "station.toml")
    with open(p, "w", encoding="utf-8") as f:
        f.write(text)
    return p


@pytest.mark.parametrize("officer", ["012345", "PC-0042", "OFC-HONEST", "PC-1"])
def test_default_pattern_takes_the_ids_in_use(dev, arch, officer):
    p = checkout(dev, arch, officer)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "%s (U2) assigned" % officer in p.stdout


@pytest.mark.parametrize("officer", ["pc-0042", "12345", "1234567", "PC 42", "PC-", "警号012345",
                                     "PC-0042;DROP"])
def test_wrong_form_is_refused_before_anything_is_sent(dev, arch, officer):
    p = checkout(dev, arch, officer)
    assert p.returncode == 3, p.stdout + p.stderr
    assert p.stdout == ""
    (line,) = p.stderr.strip().splitlines()
    conf = os.path.join(os.path.abspath(arch), "station.toml")
    assert '"%s"' % officer in line and stationconfig.DEFAULT_OFFICER_PATTERN in line
    assert "by default: there is no %s" % conf in line and "nothing was sent" in line
    assert dev.ops == []                       # not even HELLO


def test_json_refusal(dev, arch):
    p = checkout(dev, arch, "pc-7", "U2", "--json")
    assert p.returncode == 3
    j = json.loads(p.stdout)
    assert j["status"] == "refused" and not j["assigned"] and j["device"] is None
    assert len(j["errors"]) == 1 and "pc-7" in j["errors"][0]
    assert dev.ops == []


def test_configured_patterns(dev, arch):
    conf = write_conf(arch, '# this station: police numbers only\n'
                            '[officer]\nid_pattern = "[0-9]{6}"\n'
                            '[unit]\nid_pattern = "交警[一二三四五六七八九十]大队"\n')
    p = checkout(dev, arch, "PC-0042", "交警二大队")
    assert p.returncode == 3 and dev.ops == []
    (line,) = p.stderr.strip().splitlines()
    assert '"PC-0042"' in line and '"[0-9]{6}"' in line and conf in line
    assert "[officer] id_pattern of %s" % conf in line and "by default" not in line
    p = checkout(dev, arch, "012345", "交警二队")
    assert p.returncode == 3 and dev.ops == []
    assert '"交警二队"' in p.stderr and "[unit] id_pattern" in p.stderr
    p = checkout(dev, arch, "012345", "交警二大队")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "012345 (交警二大队) assigned" in p.stdout


@pytest.mark.parametrize("text,says", [
    ('[officer]\nid_pattern = "([0-9]"\n', "not a valid regular expression"),
    ('[officer]\nid_patern = "[0-9]{6}"\n', 'unknown key "id_patern" in [officer]'),
    ('[officers]\nid_pattern = "x"\n', 'unknown section "officers"'),
    ('id_pattern = "x"\n', "outside any section"),
    ('[officer]\nid_pattern = 12\n', "[officer] id_pattern must be a string"),
    ('[recorder]\nbitrate_bps = "8M"\n', "[recorder] bitrate_bps must be a whole number"),
    ('[recorder]\nbitrate_bps = 5\n', "must be 100000 to 1000000000"),
    ('[officer\n', "not valid TOML"),
    ('[officer]\nid_pattern = "%s"\n' % ("x" * 300), "more than 256"),
])
def test_bad_config_is_one_line_naming_the_file(dev, arch, text, says):
    conf = write_conf(arch, text)
    p = checkout(dev, arch, "PC-0042")
    assert p.returncode == 3 and p.stdout == "" and dev.ops == []
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith("sealcam checkout: %s: " % conf) and says in line, line
    assert "Traceback" not in p.stderr


def test_hostile_config_files(tmp_path, arch):
    conf = os.path.join(arch, "station.toml")
    with open(conf, "wb") as f:                            # larger than any settings file
        f.write(b"# " + b"x" * stationconfig.MAX_BYTES + b"\n")
    with pytest.raises(stationconfig.StationConfigError, match="regular file of at most"):
        stationconfig.load(arch)
    os.remove(conf)
    with open(conf, "wb") as f:
        f.write(b'[officer]\nid_pattern = "\xff"\n')
    with pytest.raises(stationconfig.StationConfigError, match="not UTF-8"):
        stationconfig.load(arch)
    os.remove(conf)
    target = tmp_path / "elsewhere.toml"
    target.write_text('[officer]\nid_pattern = ".*"\n')
    os.symlink(target, conf)                               # never followed
    with pytest.raises(stationconfig.StationConfigError, match="symbolic link"):
        stationconfig.load(arch)
    os.remove(conf)
    os.mkdir(conf)
    with pytest.raises(stationconfig.StationConfigError, match=str(conf)):
        stationconfig.load(arch)


def test_loader_defaults_and_sections(arch):
    cfg = stationconfig.load(arch)
    assert not cfg.exists
    assert cfg.values == {s: {k: spec.default for k, spec in keys.items()}
                          for s, keys in stationconfig.SECTIONS.items()}
    write_conf(arch, "[recorder]\nbitrate_bps = 2000000\n")
    cfg = stationconfig.load(arch)
    assert cfg.exists and cfg.get("recorder", "bitrate_bps") == 2_000_000
    assert cfg.get("officer", "id_pattern") == stationconfig.DEFAULT_OFFICER_PATTERN
