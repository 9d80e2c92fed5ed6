"""The officer's voice is in the recording where the records say it is (SPEC §10.3, R5).

A shift on the virtual recorder (CPython and the MicroPython VM): NOTICE pressed while
recording, a VOICE hold with nothing waiting, then interruptions for different reasons,
each followed by a resume and a VOICE hold in which the simulated officer states the
reason (sim/hal/voicepcm.py, synthesized with espeak-ng). The segments are decoded with
FFmpeg (PyAV), and each VOICE_ANNOTATION span (media bytes) is mapped to the audio
samples it holds through the Matroska blocks it covers (tests/mkvdecode.blocks). Then:
- energy: in 20 ms windows, speech-loud audio lies only inside the spans and the notice
  phrase; everywhere else only the ambient noise (about -53 dBFS RMS) is heard;
- content: PCM is lossless, so each phrase is found by exact sample search: the right
  reason's statement lies inside the span of the annotation that refers to that
  interruption, the notice phrase starts within one capture tick after MARK notice_given,
  and nothing else was said anywhere.
"""
import glob
import io
import math
import os

import cbor2
import pytest

import mkvdecode
from sim.hal import voicepcm
from sim.record import run_job

REC_START, INTERRUPTION, VOICE_ANNOTATION, MARK = 2, 10, 11, 13
K_MEDIA, K_CHUNK, K_REASON, K_REFERS, K_SPAN, K_KIND, K_AT = 11, 12, 17, 31, 32, 33, 34
AUDIO = 2
RATE = 16000
WIN = RATE // 50                   # 20 ms windows
TICK = RATE // 10                  # one capture tick (tick_ms 100) of samples
LOUD = 32768 * 10 ** (-35 / 20)    # RMS above -35 dBFS: speech
QUIET = 32768 * 10 ** (-44 / 20)   # RMS below -44 dBFS: ambient (the sim's is ~ -53 dBFS)
FLOOR = 32768 * 10 ** (-70 / 20)   # ... but not silence: the ambient is there

SETTINGS = {"bitrate": 200000, "prerecord_s": 0, "annotation_s": 30, "checkpoint_s": 5}


def interruption(choose_marks, then):
    """Hold RECORD to choose a reason (each MARK press moves to the next one), confirm;
    resume after 1 s; `then` steps (the statement)."""
    return ([["hold", "record", 1.5]] + [["press", "mark"]] * choose_marks +
            [["press", "record"], ["run", 1], ["press", "record"], ["run", 0.5]] + then)


HOLD = 3.5
STATE = [["hold", "voice", HOLD], ["run", 1]]       # a statement is about 2.5 s
FULL = ([["press", "record"], ["run", 1.5],
         ["hold", "voice", 2], ["run", 0.5],         # nothing waits: nothing is said
         ["press", "notice"], ["run", 5.5]] +       # the speaker's phrase, about 4.7 s
        interruption(0, STATE) +                     # weather
        interruption(1, STATE) +                     # place_change
        [["temp", 80], ["run", 0.3], ["temp", 25],  # overheat: the device interrupts
         ["run", 0.5], ["press", "record"], ["run", 0.5]] + STATE +
        [["press", "record"]])
SHORT = ([["press", "record"], ["run", 1], ["press", "notice"], ["run", 5.5]] +
         interruption(0, STATE) + interruption(2, STATE) +   # weather, other
         [["press", "record"]])


def chain(sd):
    """Record bodies in seq order (cbor2, independent of the firmware)."""
    def key(p):
        n, _, k = os.path.basename(p)[:-4].partition("_")
        return int(n), int(k or 0)
    out = []
    for f in sorted(glob.glob(os.path.join(sd, "rec", "*.log")), key=key):
        data = open(f, "rb").read()
        b = io.BytesIO(data)
        while b.tell() < len(data):
            out.append(cbor2.loads(cbor2.load(b).value[2]))
    assert [r[1] for r in out] == list(range(len(out)))
    return out


class Segment:
    """One segment's audio as FFmpeg decodes it, and where its blocks lie in the file."""

    def __init__(self, path):
        data = open(path, "rb").read()
        self.pcm = mkvdecode.audio_pcm(data)
        self.blocks = [b for b in mkvdecode.blocks(data) if b[2] == AUDIO]
        # our parser and FFmpeg agree on every audio sample
        assert b"".join(b[4] for b in self.blocks) == self.pcm, path
        self.n = len(self.pcm) // 2

    def before(self, byte):
        """Samples in the audio blocks that start before `byte`."""
        return sum(len(b[4]) for b in self.blocks if b[0] < byte) // 2

    def within(self, start, end):
        """[lo, hi): the samples of the audio blocks lying wholly in bytes start..end."""
        return self.before(start), sum(len(b[4]) for b in self.blocks if b[1] <= end) // 2

    def find(self, phrase):
        """Sample indexes where phrase's samples occur exactly."""
        out, i = [], self.pcm.find(phrase)
        while i >= 0:
            if i % 2 == 0:
                out.append(i // 2)
            i = self.pcm.find(phrase, i + 1)
        return out

    def rms(self, w):
        a = memoryview(self.pcm)[2 * w * WIN:2 * (w + 1) * WIN].cast("h")
        return math.sqrt(sum(v * v for v in a) / len(a))


def check_shift(tmp_path, runtime, steps, reasons):
    sd = str(tmp_path / runtime)
    sm = run_job({"sd_host": sd, "flash_host": sd + ".flash", "steps": steps,
                  "settings": SETTINGS, "seed": 5, "bitrate": 200000, "heap": 4 << 20}, runtime)
    assert sm.get("cut") is None and sm["waiting"] == [], sm
    recs = chain(sd)
    segs = {r[1]: (Segment(os.path.join(sd, r[K_MEDIA])), r[K_CHUNK])
            for r in recs if r[0] == REC_START}
    phrases = {name: voicepcm.pcm(name) for name in voicepcm.TEXT}
    speech = {q: [] for q in segs}      # segment -> [(lo, hi)] where a phrase was found
    spans = {q: [] for q in segs}       # segment -> [(lo, hi)] of the voice annotations
    found = {(q, name): segs[q][0].find(p) for q in segs for name, p in phrases.items()}
    for (q, name), ks in found.items():
        speech[q] += [(k, k + len(phrases[name]) // 2) for k in ks]

    # each annotation: the statement of its interruption's reason lies inside its span
    anns = [r for r in recs if r[0] == VOICE_ANNOTATION]
    said = []
    for a in anns:
        reason = recs[a[K_REFERS]][K_REASON]
        assert recs[a[K_REFERS]][0] == INTERRUPTION
        q, c0, o0, c1, o1 = a[K_SPAN]
        seg, chunk = segs[q]
        lo, hi = seg.within(c0 * chunk + o0, c1 * chunk + o1)
        spans[q].append((lo, hi))
        n = len(phrases[reason]) // 2
        inside = [k for k in found[(q, reason)] if lo <= k and k + n <= hi]
        assert len(inside) == 1, (reason, a[K_SPAN], (lo, hi), found[(q, reason)])
        others = [name for name in phrases if name != reason and
                  any(lo <= k < hi for k in found[(q, name)])]
        assert not others, (reason, others)
        # speaking began with the press, and the span is the hold, to within a tick
        assert inside[0] - lo <= TICK and abs(hi - lo - HOLD * RATE) <= TICK, (lo, hi, inside)
        said.append(reason)
    assert sorted(said) == sorted(reasons), said

    # the notice phrase starts right after MARK notice_given (within the capture tick)
    (mark,) = [r for r in recs if r[0] == MARK and r[K_KIND] == "notice_given"]
    q, c, o = mark[K_AT]
    seg, chunk = segs[q]
    at = seg.before(c * chunk + o)
    assert len(found[(q, "notice")]) == 1 and 0 <= found[(q, "notice")][0] - at <= TICK, \
        (at, found[(q, "notice")])

    # nothing else was said: each phrase is found exactly as often as it was spoken
    for name in phrases:
        n = sum(len(found[(q, name)]) for q in segs)
        assert n == (1 if name == "notice" else reasons.count(name)), (name, n)

    # energy: loud only where a span or the notice is; elsewhere the ambient noise
    loud_in = {}
    for q, (seg, _) in segs.items():
        notice = [(k, k + len(phrases["notice"]) // 2) for k in found[(q, "notice")]]
        for w in range(seg.n // WIN):
            lo, hi = w * WIN, (w + 1) * WIN
            r = seg.rms(w)
            covered = [(a, b) for a, b in spans[q] + notice if a < hi and lo < b]
            if r > LOUD:
                assert covered and all(a <= lo and hi <= b for a, b in covered), \
                    (q, w, r, spans[q], notice)
                for a, b in covered:
                    loud_in[(q, a)] = loud_in.get((q, a), 0) + 1
            elif not covered and not any(a < hi and lo < b for a, b in speech[q]):
                assert FLOOR < r < QUIET, (q, w, r)
    # speech fills each statement and the notice: over 1 s of loud windows in each
    assert len(loud_in) == len(anns) + 1 and min(loud_in.values()) >= 50, loud_in
    return sm


def test_statements_inside_spans_and_notice_after_its_mark_cpython(tmp_path):
    sm = check_shift(tmp_path, "cpython", FULL, ["weather", "place_change", "overheat"])
    # the simulator said each statement once, whole (3.5 s hold, 0.2 s quiet at the end)
    assert [s[1] for s in sm["statements"]] == [["weather"], ["place_change"], ["overheat"]]
    assert [s[2] for s in sm["statements"]] == \
        [len(voicepcm.pcm(r)) // 2 for r in ("weather", "place_change", "overheat")]


def test_statements_inside_spans_and_notice_after_its_mark_micropython(tmp_path):
    check_shift(tmp_path, "micropython", SHORT, ["weather", "other"])


def test_a_statement_is_cut_to_the_hold(tmp_path):
    """An officer speaks only while holding VOICE: a 1.5 s hold carries the first 1.3 s of
    the statement, inside the span; the rest is never said."""
    steps = ([["press", "record"], ["run", 1]] +
             interruption(0, [["hold", "voice", 1.5], ["run", 1]]) + [["press", "record"]])
    sd = str(tmp_path / "cut")
    sm = run_job({"sd_host": sd, "flash_host": sd + ".flash", "steps": steps,
                  "settings": SETTINGS, "seed": 5, "bitrate": 200000}, "cpython")
    assert sm["statements"][0][1:] == [["weather"], 1300 * RATE // 1000]
    recs = chain(sd)
    (a,) = [r for r in recs if r[0] == VOICE_ANNOTATION]
    q, c0, o0, c1, o1 = a[K_SPAN]
    (st,) = [r for r in recs if r[1] == q]
    seg = Segment(os.path.join(sd, st[K_MEDIA]))
    lo, hi = seg.within(c0 * st[K_CHUNK] + o0, c1 * st[K_CHUNK] + o1)
    part = voicepcm.pcm("weather")[:2 * 1300 * RATE // 1000]
    (k,) = seg.find(part)
    assert lo <= k and k + len(part) // 2 <= hi
    assert not seg.find(voicepcm.pcm("weather"))


def test_assets_are_what_the_docs_say():
    """Every reason of SPEC §10.3 has a statement, and every phrase is 16 kHz s16le speech
    at a clear level (-6 dBFS peak), short, and starts and ends on speech (trimmed)."""
    reasons = {"weather", "place_change", "other", "battery_low", "storage_full",
               "device_fault", "overheat", "power_loss"}
    assert set(voicepcm.TEXT) == reasons | {"notice"} and voicepcm.RATE == RATE
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    doc = open(os.path.join(root, "docs", "simulator.md"), encoding="utf-8").read()
    readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    assert voicepcm.TEXT["notice"][0].rstrip("。") in readme     # the phrase NOTICE plays
    for name, (zh, en) in voicepcm.TEXT.items():
        assert zh.endswith("。") and zh in doc and en in doc, name
        p = voicepcm.pcm(name)
        a = memoryview(p).cast("h")
        assert 1.5 <= len(a) / RATE <= (5 if name == "notice" else 3), name
        assert max(abs(v) for v in a) == pytest.approx(16384, abs=64), name
        head = max(abs(v) for v in a[:RATE // 20])
        tail = max(abs(v) for v in a[-RATE // 20:])
        assert head > 16384 // 50 and tail > 16384 // 50, name
