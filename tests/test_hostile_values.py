"""Hostile integers and strings (attack round 2): a value no recorder writes (an integer past
2^63-1, a CBOR bignum of 5000 digits, text with ESC / BEL / C1) is judged, never a crash,
hang or raw terminal byte, in every host path: the link (before and after AUTH), offload
(quarantine), the archive, `verify` of a card or an archive, the report (text, JSON, CSV),
and the CLI's own arguments (a FIFO named as a file, --timeout inf).

SPEC §3.1 (integers at most 2^63-1, no control characters in a record's text), §6.1.
"""
import json
import os
import subprocess
import sys

import cbor2
import pytest

from host_tools import records as R
from host_tools.archive import Archive

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
import refwriter as rw  # noqa: E402
from test_hostile_recorder import (DEV, History, ok_answer, one_clear_line,  # noqa: E402
                                   run_offload)

BIG = 10 ** 5000          # past Python's 4300-digit str() limit: "%d" of it raises
I64 = 1 << 63             # the first value past SQLite's int64
ESC = "\x1b]0;PWNED\x07\x1b[2J\x9b31m"
RAW = ("\x1b", "\x07", "\x9b")


def sealcam(*args, timeout=60):
    p = subprocess.run([sys.executable, "-m", "host_tools.cli", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert "Traceback" not in p.stdout + p.stderr, p.stderr
    return p


def signed(body, key=None):
    return rw.sign_record(body, key or rw.key_from_seed(b"\x5e" * 32))


def body(rtype=13, **fields):
    b = {0: rtype, 1: 3, 2: b"\x11" * 32, 3: "SC-00A1B2C3", 4: 1_700_000_000_000, 5: 100,
         6: 1, 7: "OFC-1", 8: "1.0"}
    if rtype == 13:
        b[33] = "bookmark"
    b.update({int(k[1:]): v for k, v in fields.items()})
    return b


# --- records.py: the one rule --------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    {"k4": I64}, {"k4": BIG}, {"k5": I64}, {"k1": BIG}, {"k0": BIG}, {"k34": [BIG, 0, 0]},
    {"k0": 15, "k33": None, "k36": True, "k37": [], "k38": {1: BIG}},       # facts (E1)
    {"k0": 15, "k33": None, "k36": True, "k37": [], "k38": {BIG: 1}},
    {"k0": 9, "k33": None, "k28": 1, "k29": I64},
    {"k7": "OFC" + ESC}, {"k30": "U\x07"}, {"k8": "1.0\x85"},
    {"k0": 15, "k33": None, "k36": False, "k37": ["low\x1b[2J"], "k38": {}},
    {"k33": "bookmark\x1b"}, {"k0": 6, "k33": None, "k17": "x", "k19": "delete",
                              "k20": "m/\x1b[31m", "k21": "api"},
], ids=["rtc-2^63", "rtc-bignum", "mono-2^63", "seq-bignum", "type-bignum", "at-bignum",
        "facts-value", "facts-key", "timeset-new", "officer-esc", "unit-bel", "fw-c1",
        "reasons-csi", "kind-esc", "refusal-target-esc"])
def test_parse_refuses_hostile_values(fields):
    b = body(**fields)
    b = {k: v for k, v in b.items() if v is not None}
    with pytest.raises(R.RecordError) as e:
        R.parse(signed(b))
    msg = str(e.value)
    assert "64 bits" in msg or "control character" in msg, msg
    assert not any(c in msg for c in RAW), msg


def test_largest_int64_is_still_a_value():
    rec = R.parse(signed(body(k4=I64 - 1)))
    assert rec.body[4] == I64 - 1
    ts = {k: v for k, v in body(k0=9, k28=0, k29=I64 - 1).items() if k != 33}
    assert R.parse(signed(ts)).body[29] == I64 - 1


def test_trusted_unpacking_still_refuses_a_bignum():
    """An archive written before the rule (its station log signed the record's hash): the
    fast path does not skip the bound, the full decode names it."""
    rec = R.decode(signed(body(k4=BIG)), trusted_upto=10)
    assert rec.fatal and "64 bits" in rec.fatal


def test_archive_never_stores_a_value_past_int64(tmp_path):
    """Finding 1: add_records with rtc 2^63 was an OverflowError traceback from SQLite."""
    from host_tools import station
    from host_tools.archive import ArchiveError
    station.init(tmp_path / "arch")
    data = signed(body(k1=0, k2=bytes(32), k4=I64))
    b = cbor2.loads(cbor2.loads(data).value[2])
    with Archive(tmp_path / "arch") as a:
        with pytest.raises(ArchiveError, match="64 bits"):
            a.add_records(DEV, [(0, data, b)])
        assert a.max_seq(DEV) is None


# --- a card (C1-C3, finding 9) -------------------------------------------------------------

@pytest.mark.parametrize("key,value", [(4, BIG), (4, I64), (0, BIG), (5, BIG), (7, ESC)],
                         ids=["mark-rtc-bignum", "mark-rtc-2^63", "type-bignum",
                              "mono-bignum", "officer-esc"])
def test_card_with_a_hostile_signed_value_is_not_ok(tmp_path, key, value):
    s = rw.RefStore(tmp_path / "sd")
    s.boot()
    s.refusal()
    s.rec_start()
    s.write(os.urandom(9000))
    s.checkpoint()
    b = s.body(13, {33: "bookmark"})
    b[key] = value
    s.append_raw(rw.sign_record(b, s.key), s.seq, 13)
    s.rec_stop()
    kf = tmp_path / "device.pub"
    kf.write_bytes(s.pubkey)
    p = sealcam("verify", s.root, "--key", kf, "--all")
    assert p.returncode == 1 and "NOT_OK" in p.stdout, p.stdout
    assert ("64 bits" if key != 7 else "control character") in p.stdout
    assert not any(c in p.stdout + p.stderr for c in RAW)
    p = sealcam("verify", s.root, "--key", kf, "--json")
    j = json.loads(p.stdout)
    assert j["verdict"] == "NOT_OK" and p.stdout.isascii()


# --- the link: answers with bignums (B1, B2, B3, B7, B9) ----------------------------------

@pytest.fixture
def hist(tmp_path):
    return History(tmp_path)


def _offload(h, **device):
    """One `sealcam offload` from h's fake recorder (h.device(**device)) into h's archive:
    the finished process."""
    d = h.device(**device)
    try:
        p, _ = run_offload(d.port, h.arch)
    finally:
        d.stop()
    return p


def auth_error_bignum(dev, req):          # B2: before any proof
    if req.get(1) == 1:
        return None
    return {0: req[0], 1: BIG, 3: "x"}


def list_size_bignum(dev, req):           # B1
    if req.get(1) != 3:
        return None
    s = req[2][1]
    return ok_answer(req[0], {1: [[s, 13, BIG]], 2: s + 5, 3: True})


def _alerts(which):                       # B9: AUTH result alerts (not device-signed)
    def hook(dev, req):
        if req.get(1) != 2:
            return None
        resp = dev._handle(req)
        if resp.get(1) == 0:
            resp[2][14] = [{1: BIG, 2: None, 3: "x"}] if which == "kind" else \
                [{1: "head_back", 2: BIG, 3: "x"}]
        return resp
    return hook


@pytest.mark.parametrize("hook", [auth_error_bignum, list_size_bignum, _alerts("kind"),
                                  _alerts("seq")],
                         ids=["B2-auth-status", "B1-list-size", "B9-alert-kind",
                              "B9-alert-seq"])
def test_bignum_answer_is_a_protocol_violation(hist, hook):
    p = _offload(hist, hook=hook)
    line = one_clear_line(p)
    assert p.returncode == 1 and "broke the dock protocol" in line and "64 bits" in line, line
    hist.intact()


def test_bignum_in_status_answer(hist):
    """B3 (the link part): `sealcam status` of a recorder whose STATUS holds a bignum."""
    def hook(dev, req):
        if req.get(1) == 12:
            return ok_answer(req[0], {1: "standby", 2: "OFC", 3: None, 4: None, 5: [BIG],
                                      6: [1_700_000_000_000, 1000]})
        return None
    d = hist.device(hook=hook)
    try:
        p = sealcam("status", "--port", d.port, "--archive", hist.arch, "--timeout", "0.5")
    finally:
        d.stop()
    # dock.py (status) decides the code: NOT_OK or not-a-recorder; one line naming it
    assert p.returncode in (1, 3) and "64 bits" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_get_answer_with_a_bignum_type_is_quarantined(hist):
    """B7: an unsigned record whose type is 10**5000, checked before the signature."""
    def hook(dev, req):
        if req.get(1) != 4:
            return None
        b = dict(rw.decode_record(dev.records()[req[2][1]].data))
        b[0] = BIG
        prot = rw.enc({1: -8, 4: b[3].encode()})
        return ok_answer(req[0], {1: rw.enc(cbor2.CBORTag(18, [prot, {}, rw.enc(b),
                                                                bytes(64)]))})
    p = _offload(hist, hook=hook)
    line = one_clear_line(p)
    assert p.returncode == 1 and "quarantine" in line and "64 bits" in line, line
    hist.intact()


class _Hostile(History):
    """A compromised recorder (holds its key) signs a record with a hostile value before
    its newer records end (so the head is good and GET brings the record)."""

    def __init__(self, tmp, what):
        super().__init__(tmp)
        s = self.s
        if what == "mark-rtc":
            real = s._now
            s._now = lambda: (I64, 1)
            s.mark("bookmark")
            s._now = real
        elif what == "facts":
            s.self_check(True, [], {1: BIG})
        elif what == "officer-esc":
            s.record(13, {33: "bookmark", 7: "OFC" + ESC})
        s.rec_start()
        s.write(os.urandom(5000))
        s.close()
        s.rec_stop()


@pytest.mark.parametrize("what", ["mark-rtc", "facts", "officer-esc"])
def test_offload_quarantines_a_hostile_record_and_every_output_stays_clean(tmp_path, what):
    """E1 (finding 1, 4), E2 (finding 8): offload quarantines the record; verify ARCHIVE
    [--json] and report [--json|--csv] work after it, with no raw control byte."""
    h = _Hostile(tmp_path, what)
    p = _offload(h)
    line = one_clear_line(p)
    assert p.returncode == 1 and "quarantine" in line, line
    assert ("control character" if what == "officer-esc" else "64 bits") in line, line
    assert not any(c in p.stdout + p.stderr for c in RAW)
    h.intact()
    for args in (["verify", h.arch], ["verify", h.arch, "--json"],
                 ["report", "--archive", h.arch], ["report", "--archive", h.arch, "--json"],
                 ["report", "--archive", h.arch, "--csv"]):
        q = sealcam(*args)
        assert q.returncode in (0, 1), (args, q.stderr)
        assert not any(c in q.stdout + q.stderr for c in RAW), args
        if "--json" in args:
            json.loads(q.stdout)
            assert q.stdout.isascii(), args


def test_report_csv_list_cells_are_ascii():
    """A list cell of the CSV (reasons) was json.dumps(ensure_ascii=False): raw ESC."""
    from host_tools import report  # noqa: F401  (report_output is imported through it)
    from host_tools.report_output import _flat
    row = {}
    _flat("", {"reasons": ["low" + ESC, "\u202e"]}, row)
    assert row["reasons"].isascii() and "\\u001b" in row["reasons"]


# --- the CLI's own arguments (finding 10) ---------------------------------------------------

def test_fifo_arguments_do_not_hang(tmp_path):
    from host_tools import station
    station.init(tmp_path / "arch")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    for args, want in (
            (["verify", tmp_path / "dir", "--key", fifo], "not a regular file"),
            (["station", "register", "--archive", tmp_path / "arch", "--device", "SC-1",
              "--key", fifo], "not a regular file"),
            (["station", "checkpoint", "--archive", tmp_path / "arch", "--out", fifo],
             "is a FIFO")):
        p = sealcam(*args, timeout=20)
        assert p.returncode == 3 and want in p.stderr, (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_checkpoint_out_still_writes_a_regular_file(tmp_path):
    from host_tools import station
    station.init(tmp_path / "arch")
    out = tmp_path / "cp.txt"
    out.write_text("old content that is longer than nothing" * 100)
    p = sealcam("station", "checkpoint", "--archive", tmp_path / "arch", "--out", out)
    assert p.returncode == 0
    assert out.read_text() == sealcam("station", "checkpoint", "--archive",
                                      tmp_path / "arch").stdout


@pytest.mark.parametrize("value", ["inf", "nan", "1e300", "0", "-1"])
def test_timeout_must_be_finite(tmp_path, value):
    p = sealcam("offload", "--port", "/dev/ptmx", "--archive", tmp_path, "--timeout", value)
    assert p.returncode == 3 and "--timeout" in p.stderr, p.stderr


def test_station_never_sends_an_assign_with_a_control_character(hist):
    """E2 (station side): the recorder refuses such a name (firmware/sealcamfw/linkdock.py); the
    station is no weaker: it refuses it before anything is sent."""
    from host_tools.link import Client, LinkError
    d = hist.device()
    try:
        with Client(d.port, timeout=0.5) as c:
            for officer, unit in (("OFC" + ESC, "U1"), ("OFC-1", "U\x85"), ("O\x7f", None)):
                with pytest.raises(LinkError) as e:
                    c.assign(officer, unit)
                assert "control character" in str(e.value)
                assert not any(ch in str(e.value) for ch in RAW)
        assert 11 not in d.ops
    finally:
        d.stop()


def test_alerts_of_any_shape_are_shown_short(hist):
    """B9 (within 64 bits): alert kind / message of another type or of a megabyte are not
    formatted whole; the offload goes on."""
    def hook(dev, req):
        if req.get(1) != 2:
            return None
        resp = dev._handle(req)
        if resp.get(1) == 0:
            resp[2][14] = [{1: ["x" * 100_000], 2: -5, 3: {1: 2}},
                           {1: "head_back" + ESC * 1000, 2: I64 - 1, 3: "m" * 100_000}]
        return resp
    p = _offload(hist, hook=hook, max_frame=1 << 20)
    assert "Traceback" not in p.stderr and p.returncode in (0, 1), p.stderr
    alerts = [x for x in (p.stdout + p.stderr).splitlines() if "ALERT" in x]
    assert alerts and all(len(x) < 400 for x in alerts), alerts
    assert not any(c in p.stdout + p.stderr for c in RAW)
    hist.intact()
