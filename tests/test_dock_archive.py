"""`sealcam dock` leaves the archive complete (SPEC §10.7): the records the dock cycle writes
after its offload (TIME_SET, the officer's release, the self-check) reach the archive in
the same dock, through a last offload pass that is verified and receipted like any other.
Against the virtual recorder over a real pty (a shift recorded between check-out and
dock), the report of the archive shows the shift closed and the self-check; a second
dock stores nothing twice. A recorder that breaks the link during that last pass: the
dock says which records stay on it and what to run, and the next offload archives them.
"""
import os
import sqlite3

import pytest

from host_tools import station
from host_tools.report import build_report
from host_tools.verify import OK
from test_dock import DEV, archived, recording_hook, register, run_json, ASSIGN, SELF_CHECK
from test_offload import HAVE_SIM, Sim

RECEIPT = 8


def _rows(arch, device=DEV):
    c = sqlite3.connect(os.path.join(arch, "archive.sqlite"))
    try:
        return c.execute("SELECT seq, hash FROM records WHERE device = ? ORDER BY seq",
                         (device,)).fetchall()
    finally:
        c.close()


@pytest.fixture
def arch(tmp_path):
    station.init(tmp_path / "arch")
    return tmp_path / "arch"


@pytest.mark.skipif(not HAVE_SIM, reason="no virtual recorder")
def test_one_dock_closes_the_shift_in_the_archive(tmp_path, arch):
    card = tmp_path / "card"
    sim = Sim(card, trust=arch / "station.pub")
    try:
        register(arch, card)
        run_json("checkout", "--port", sim.port, "--archive", arch, "--officer", "PC-0042",
                 "--unit", "U2", want=0)
    finally:
        assert sim.stop() == 0
    # the shift: the recorder boots again (the assignment comes from its chain) and records
    sim = Sim(card, trust=arch / "station.pub", record=4)
    try:
        rc, j, err = run_json("dock", "--port", sim.port, "--archive", arch, want=0)
        assert j["officer_before"] == "PC-0042" and j["assign"]["officer"] is None
        fo = j["final_offload"]
        assert fo["verdict"] == OK and fo["exit_code"] == 0
        # the last pass pulled the cycle's three records (and the first pass's RECEIPT)
        # and its receipt covers everything up to the self-check
        assert fo["receipt"]["covered"] == j["check"]["seq"]
        assert fo["receipt"]["number"] == j["offload"]["receipt"]["number"] + 1
        rows = _rows(arch)
        assert [s for s, _ in rows] == list(range(len(rows)))       # the whole chain, once
        assert rows[-1][0] == fo["receipt"]["seq"]                  # its RECEIPT record too

        rep = build_report(arch, device=DEV)
        (sh,) = rep["shifts"]
        assert sh["officer"] == "PC-0042" and sh["unit"] == "U2"
        assert sh["open"] is False and sh["end_seq"] == j["assign"]["seq"], sh
        assert sh["segments"] >= 1
        checks = [c["seq"] for c in rep["self_checks"]]
        assert checks[-1] == j["check"]["seq"] and len(checks) == 2   # check-out, dock
        ts = [c["seq"] for c in rep["clock_adjustments"]]
        assert j["clock"]["seq"] in ts

        # the second dock: the first pass finds nothing new; the last pass archives only
        # what this dock wrote; nothing is stored twice, the shift is still the one
        rc, j2, err = run_json("dock", "--port", sim.port, "--archive", arch, want=0)
        assert j2["offload"]["records_pulled"] == 0 and j2["offload"]["receipt"] is None
        fo2 = j2["final_offload"]
        assert fo2["verdict"] == OK and fo2["receipt"]["covered"] == j2["check"]["seq"]
        new = [s for s, _ in _rows(arch) if s > rows[-1][0]]
        assert new == list(range(rows[-1][0] + 1, fo2["receipt"]["seq"] + 1))
        assert new[:3] == [j2["clock"]["seq"], j2["assign"]["seq"], j2["check"]["seq"]]
        rows2 = _rows(arch)
        assert rows2[:len(rows)] == rows                            # the old rows unchanged
        assert [s for s, _ in rows2] == list(range(len(rows2)))
        rep2 = build_report(arch, device=DEV)
        assert rep2["shifts"] == rep["shifts"]
        assert [c["seq"] for c in rep2["self_checks"]] == checks + [j2["check"]["seq"]]
        receipts = [b[1] for b in archived(arch, RECEIPT)]
        # receipts: the first dock's two passes, the second dock's last pass (its first
        # pass had nothing new to receipt)
        assert len(receipts) == len(set(receipts)) == 3
        assert receipts[-1] == fo2["receipt"]["seq"]
        # the text form says it in words
        from test_dock import sealcam
        p = sealcam("dock", "--port", sim.port, "--archive", arch)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "the dock's records archived: " in p.stdout and "verified OK" in p.stdout
        assert "receipt %d covers seq 0.." % (fo2["receipt"]["number"] + 1) in p.stdout
        rows2 = _rows(arch)
    finally:
        assert sim.stop() == 0
    # the whole archive verifies (log, index, views, receipts)
    from test_dock import sealcam
    p = sealcam("verify", arch)
    assert p.returncode == 0 and "OVERALL: OK" in p.stdout, p.stdout + p.stderr
    # the card and the archive hold the same records
    from host_tools.verify import verify_store
    card_rep = verify_store(str(card), None)
    assert card_rep.chain_end == rows2[-1][0]


def test_dock_link_lost_in_the_last_pass_names_what_stays(tmp_path, arch):
    """The link breaks when the last pass starts (after CHECK): exit 6, one error naming the
    cycle's records and the command that archives them; they stay on the recorder, and
    `sealcam offload` then archives them with a receipt."""
    import fakedev
    from test_dock import sealcam
    from test_offload import shift
    s = shift(tmp_path / "sd", segments=1)
    hook = recording_hook(s, arch)
    state = {"checked": False}

    def breaking(dev, req):
        if req.get(1) == 13 and dev.authed:
            state["checked"] = True
        elif req.get(1) == 1 and state["checked"]:
            dev._stop.set()                 # the recorder is pulled out: no answer, EOF
            return b""
        return hook(dev, req)

    from host_tools.archive import Archive
    with Archive(arch) as a:
        a.register(s.device, s.pubkey)
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)], hook=breaking).start()
    try:
        p = sealcam("dock", "--port", d.port, "--archive", arch, "--timeout", "1", "--json")
    finally:
        d.stop()
    import json
    j = json.loads(p.stdout)
    assert p.returncode == 6 and j["status"] == "link_broken", p.stdout + p.stderr
    assert j["offload"]["verdict"] == OK and j["check"]["ready"] is True
    seqs = [j["clock"]["seq"], j["assign"]["seq"], j["check"]["seq"]]
    assert j["final_offload"]["exit_code"] == 6
    (err,) = [e for e in j["errors"] if "did not all reach the archive" in e]
    assert "seq %d, %d, %d" % tuple(seqs) in err and "sealcam offload --port" in err
    held = [x for x, _ in _rows(arch, s.device)]
    assert not set(seqs) & set(held)                 # not archived, not half-archived
    # docked again: a plain offload archives them under a receipt
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)]).start()
    try:
        p = sealcam("offload", "--port", d.port, "--archive", arch, "--json")
    finally:
        d.stop()
    j2 = json.loads(p.stdout)
    assert p.returncode == 0 and j2["receipt"]["covered"] == seqs[-1], p.stdout + p.stderr
    held = [x for x, _ in _rows(arch, s.device)]
    assert set(seqs) <= set(held)
    assert [b[7] for b in archived_dev(arch, s.device, ASSIGN)] == [None]
    assert [b[1] for b in archived_dev(arch, s.device, SELF_CHECK)] == [seqs[-1]]


def archived_dev(arch, dev, rtype):
    import cbor2
    c = sqlite3.connect(os.path.join(arch, "archive.sqlite"))
    rows = c.execute("SELECT data FROM records WHERE device = ? AND type = ? ORDER BY seq",
                     (dev, rtype)).fetchall()
    c.close()
    return [cbor2.loads(cbor2.loads(x).value[2]) for (x,) in rows]
