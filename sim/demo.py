"""make demo: an officer's shift on the virtual recorder, from check-out to check-in,
offloaded over the serial link, verified and reported; then a tampered copy of the card.

1. The station makes its key pair and an empty archive (`sealcam station init`).
2. Check-out: the recorder is docked (`sealcam sim serve`: the firmware on the MicroPython
   1.27 VM, serving its dock link on a real pty); the station registers it, sets its
   clock, runs its self-check and assigns it to an officer (`sealcam checkout`).
3. The shift, driven through the recorder's buttons: pre-record in standby, RECORD, the
   notice to the party, a mark, an interruption the officer picks (change of place), the
   resume that prompts for an explanation, the VOICE button held while the officer states
   it, a refused delete, RECORD to end.
4. Check-in (`sealcam dock`): offload with verification and a custody receipt, clock
   calibration, the officer released, the self-check.
5. `sealcam verify` checks the archive offline; `sealcam report` lists the interruption
   with its voice annotation, the marks and the shift.
6. A copy of the card is tampered with (a media byte flipped, the newest records deleted)
   and verified: NOT_OK, naming the record and the reason.
7. The officer's statement is cut out of the archive as a clip anyone can play and check
   (`sealcam clip`, `sealcam verify-clip`).
8. The clerks file the interrupted recording: tags, an archive number, a case, the written
   explanation (sim/demo_clerk.py).
9. Access only by approval (sim/demo_access.py): the clerk asks to view and export the
   case, the archive head and the unit leader approve, the clerk gets a watermarked viewing
   copy and two identical disc images with their label, the disc verifies, the archive
   head makes the off-site backup, and the access register lists every use.

Each step is told in words (the key lines in Chinese and English); each command's full
output is kept in the output directory, named at the end with the commands to try next.

Time: the simulator runs the 94 s shift in a few seconds, faster than real time. So that
every time printed and stored runs forwards (check-out, then the shift, then check-in),
steps 1 and 2 run on a clock set back by the shift's length and some minutes' margin
(SHIFT_LEAD_S): the station's and the docked recorder's clocks both read that earlier time,
as if the check-out had happened then; the shift starts on the recorder's clock a little
after the check-out, and the check-in and everything after it run on the real clock.
"""
import argparse
import datetime
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import cbor2

from host_tools import records as R
from host_tools.verify import verify_store
from host_tools.verify_logs import list_logs, read_log
from sim.record import run_job

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "demo-out")
DEVICE = "SC-DEMO0001"
OFFICER, UNIT = "PC-0042", "Traffic Unit 2"
TECHNICIAN = "Tech Wang"
WALK_S = 20            # from the check-out to the first step of the shift
SHIFT_LEAD_S = 60      # the shift ends this long (minus the time it takes) before check-in


def shift_steps(first_segment):
    """The officer's shift (sim/hal/simdevice.py steps). ``first_segment``: the seq of the
    shift's first REC_START (the refused delete names its media)."""
    return [["run", 12],                                   # standby: pre-record fills
            ["press", "record"], ["run", 10],              # arrival: recording starts
            ["press", "notice"], ["run", 15],              # the party is told (R5)
            ["hold", "mark", 2], ["run", 8],               # IMPORTANT
            ["hold", "record", 2], ["press", "mark"],      # pick a reason: place_change
            ["press", "record"], ["run", 20],              # confirmed: interrupted; walking
            ["press", "record"], ["run", 2],               # resume: three beeps, "state why"
            ["hold", "voice", 5], ["run", 15],             # the officer explains aloud
            ["refuse", "delete", "m/%08d.mkv" % first_segment],
            ["press", "record"]]                           # the activity ends


def _seconds(steps):
    """Simulated seconds a shift script takes (sim/hal/simdevice.py's step lengths)."""
    t = 0.0
    for st in steps:
        t += {"run": lambda: st[1], "press": lambda: 0.4,
              "hold": lambda: st[2] + 0.3}.get(st[0], lambda: 0)()
    return t


SHIFT_S = _seconds(shift_steps(0))

# --- a clock set back, for steps 1 and 2 -----------------------------------------------

_SHIFTED = """
import datetime, runpy, sys, time
offset = float(sys.argv[1])
real, real_ns = time.time, time.time_ns
time.time = lambda: real() + offset
time.time_ns = lambda: real_ns() + int(offset * 1e9)
base = datetime.datetime
class Shifted(base):
    @classmethod
    def now(cls, tz=None):
        return base.fromtimestamp(time.time(), tz)
    @classmethod
    def utcnow(cls):
        return base.fromtimestamp(time.time(), datetime.timezone.utc).replace(tzinfo=None)
datetime.datetime = Shifted
sys.argv = sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""
"""``python -c _SHIFTED OFFSET MODULE ARGS…`` runs ``python -m MODULE ARGS…`` with the wall
clock (time.time, time.time_ns, datetime.now / utcnow) moved by OFFSET seconds: the
station's clock, and the docked recorder's, of an earlier check-out. Monotonic clocks are
untouched."""


def _python(module, args, shift_s=0.0):
    args = [str(x) for x in args]
    if shift_s:
        return [sys.executable, "-c", _SHIFTED, repr(shift_s), module] + args
    return [sys.executable, "-m", module] + args


# --- output ---------------------------------------------------------------------------

class Demo:
    def __init__(self, out, runtime):
        self.out, self.runtime = out, runtime
        self.sd = os.path.join(out, "sd")
        self.flash = os.path.join(out, "sd.flash")
        self.arch = os.path.join(out, "archive")
        self.pub = os.path.join(self.flash, "device.pub")
        self.logs = []          # (what, file) of each command's saved output
        self.shift_s = 0.0      # the clock offset of steps 1 and 2 (negative)

    def rel(self, p):
        r = os.path.relpath(p)
        return p if r.startswith("..") else r

    def sealcam(self, args, save, what, shift_s=0.0):
        """Run `sealcam ARGS`; its output goes to OUT/save (named at the end)."""
        p = subprocess.run(_python("host_tools.cli", args, shift_s), text=True,
                           capture_output=True, cwd=ROOT)
        self.save(save, what, "$ sealcam %s\n%s%s\n" % (
            " ".join(shlex.quote(str(a)) for a in args), p.stdout, p.stderr))
        return p

    def save(self, name, what, text):
        path = os.path.join(self.out, name)
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
        if what and (what, path) not in self.logs:
            self.logs.append((what, path))

    def save_dock_text(self, name, what, d):
        """`sealcam dock` / `checkout` as they print without --json (host_tools.dock)."""
        from host_tools.dock import Result, format_result
        try:
            self.save(name, what, "$ sealcam %s (its --json output: %s)\n%s\n" % (
                d["verb"], name.replace(".txt", ".json"), format_result(Result(**d))))
        except (TypeError, KeyError, ValueError):
            pass


def banner(text):
    print("\n== %s ==" % text)


def say(zh, en, detail=""):
    """A key line, in Chinese and English."""
    print("  %s / %s%s" % (zh, en, (": " + detail) if detail else ""))


def hms(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%H:%M:%S")


def day(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")


def _json(p):
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


def store_records(root):
    """The decodable records of a store, in seq order (a record's type, body, seq)."""
    recs, events = [], []
    for rel in list_logs(root)[0]:
        read_log(root, rel, recs, events)
    return sorted((r for r in recs if r.fatal is None and r.schema_ok), key=lambda r: r.seq)


REASONS = {"weather": ("天气恶劣", "bad weather"),
           "place_change": ("更换地点", "change of place"),
           "other": ("其他原因", "another reason"),
           "battery_low": ("电量不足", "low battery"),
           "storage_full": ("存储已满", "storage full"),
           "device_fault": ("设备故障", "device fault"),
           "overheat": ("设备过热", "overheating"),
           "power_loss": ("断电", "power lost")}
PICKED = ("weather", "place_change", "other")      # reasons the officer picks


def narrate_shift(recs):
    """What the officer did, one line a step, from the records the recorder signed."""
    K = R.K
    segs, checkpoints = [], 0
    for r in recs:
        b, t, n = r.body, r.type, r.seq
        at = "  %s  " % hms(b[K.RTC])
        if t == R.BOOT:
            print(at + "开机 / The officer switched the recorder on (record #%d): in standby "
                  "it keeps the last seconds of picture and sound in its pre-record buffer"
                  % n)
        elif t == R.REC_START:
            segs.append(n)
            if b.get(K.REASON) == "resume":
                print(at + "恢复录像 / Recording resumed (record #%d): the recorder beeps, "
                      "vibrates and blinks amber until the officer states the reason" % n)
            else:
                pre = b.get(K.PRERECORD)
                print(at + "开始录像 / Recording started: RECORD pressed (record #%d)%s"
                      % (n, "; the %.0f s before the press, held in the pre-record buffer, "
                         "open the recording" % (pre / 1000) if pre else ""))
        elif t == R.MARK:
            kind = b[K.KIND]
            if kind == "notice_given":
                print(at + "告知当事人 / The party was told that recording is on: NOTICE "
                      "pressed, the recorder played the standard phrase (record #%d)" % n)
            elif kind == "important":
                print(at + "重要标记 / The officer marked this moment important: proposed "
                      "for permanent retention (record #%d)" % n)
            else:
                print(at + "书签 / The officer set a bookmark (record #%d)" % n)
        elif t == R.INTERRUPTION:
            zh, en = REASONS.get(b[K.REASON], (b[K.REASON], b[K.REASON]))
            who = "the officer picked the reason" if b[K.REASON] in PICKED \
                else "the recorder stopped by itself"
            print(at + "录像中断：%s / Recording interrupted: %s (%s; interruption #%d)"
                  % (zh, en, who, n))
        elif t == R.VOICE_ANNOTATION:
            print(at + "语音说明 / The officer stated the reason aloud: VOICE held %.1f s "
                  "(record #%d explains interruption #%d; it points at the exact audio and "
                  "video recorded meanwhile)" % (b[K.DURATION] / 1000, n, b[K.REFERS]))
        elif t == R.ANNOTATION_MISSING:
            print(at + "未作语音说明 / No statement within %d s of resuming: recorded as "
                  "missing (record #%d, interruption #%d)" % (b[K.DURATION] // 1000, n,
                                                              b[K.REFERS]))
        elif t == R.REFUSAL:
            print(at + "拒绝删除 / A request to %s %s was refused and recorded (record #%d): "
                  "the recorder never deletes evidence" % (b[K.OP], b[K.TARGET], n))
        elif t == R.REC_STOP and b.get(K.REASON) == "button":
            print(at + "结束录像 / Recording stopped: the activity ended, RECORD pressed "
                  "(record #%d)" % n)
        elif t == R.CHECKPOINT:
            checkpoints += 1
    return segs, checkpoints


# --- the steps ------------------------------------------------------------------------

def docked(d, verbs, shift_s=0.0):
    """Serve the card on a pty (the recorder in its dock), run `sealcam VERB --port PORT …`
    for each (verb, args, save, what), undock. Returns the completed processes."""
    srv = subprocess.Popen(_python("sim.serve", ["--store", d.sd, "--flash", d.flash,
                                                 "--runtime", d.runtime, "--device", DEVICE,
                                                 "--trust", os.path.join(d.arch, "station.pub")],
                                   shift_s),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    done = []
    try:
        line = srv.stdout.readline()
        if not line.startswith("PORT "):
            print("demo: the virtual recorder did not start:\n" + srv.stderr.read())
            return None
        port = line.split()[1]
        for verb, args, save, what in verbs:
            done.append(d.sealcam([verb, "--port", port] + args, save, what, shift_s))
    finally:
        srv.terminate()
        srv.wait(60)
    return done


def step_checkout(d):
    banner("2. 签出 / Check-out: the recorder is docked at the station before the shift")
    # first contact: a technician provisions it (sim serve installed the id and trust list)
    done = docked(d, [("provision", ["--archive", d.arch, "--device-id", DEVICE, "--technician",
                                     TECHNICIAN, "--installed", "--label",
                                     os.path.join(d.out, "label.png"), "--json"],
                       "provision.json", "provisioning (technician, label.png), JSON"),
                      ("offload", ["--archive", d.arch, "--no-progress",
                                   "--json"], "checkout.json", "check-out (offload, checkout), JSON"),
                      ("checkout", ["--archive", d.arch, "--officer", OFFICER, "--unit", UNIT,
                                    "--json"], "checkout.json", "")], d.shift_s)
    if done is None:
        return None
    prov, (off, co) = _json(done[0]), (_json(done[1]), _json(done[2]))
    if off is None or co is None or not co.get("clock"):
        print("demo: check-out failed; see %s" % d.rel(os.path.join(d.out, "checkout.json")))
        return None
    d.save_dock_text("checkout.txt", "check-out", co)
    ck = co["clock"]
    print("  station clock %s (times are UTC, %s)" % (hms(ck["new"]), day(ck["new"])))
    if prov is not None:
        say("登记设备", "Recorder provisioned",
            "%s by technician %s: the key it proved in the session (fingerprint %s) is now "
            "the one the station trusts for it; its label is label.png"
            % (prov["device"], prov["technician"], prov["fingerprint"]))
    say("校准时钟", "Clock set", "the recorder was %.1f s %s; now it reads the station's time "
        "(record #%s)" % (abs(ck["correction_ms"]) / 1000,
                          "slow" if ck["correction_ms"] >= 0 else "fast", ck["seq"]))
    ch = co.get("check") or {}
    f = ch.get("facts") or {}
    say("自检", "Self-check", "%s: battery %s %%, storage for %s min (record #%s)" % (
        "READY" if ch.get("ready") else "NOT READY (%s)" % ", ".join(ch.get("reasons") or []),
        f.get("battery_percent", "?"), f.get("storage_minutes", "?"), ch.get("seq")))
    if co.get("assigned"):
        say("领用", "Handed to the officer", "%s (%s): from now on every record names them "
            "(record #%s)" % (OFFICER, UNIT, (co.get("assign") or {}).get("seq")))
    return ck["new"] if co.get("exit_code") == 0 else None


def step_shift(d, checkout_ms):
    vm = "the MicroPython 1.27 VM" if d.runtime == "micropython" else "CPython"
    banner("3. 执勤 / The shift: the officer works the recorder's four buttons")
    before = store_records(d.sd)
    first = (before[-1].seq + 2) if before else 1      # BOOT, then the first REC_START
    steps = shift_steps(first)
    start_ms = checkout_ms + WALK_S * 1000
    job = {"sd_host": d.sd, "flash_host": d.flash, "steps": steps, "bitrate": 2000000, "fps": 10,
           "settings": {"checkpoint_s": 5, "segment_s": 60, "bitrate": 2000000,
                        "prerecord_s": 10},
           "device": DEVICE, "rtc_ms": start_ms}
    t = time.perf_counter()
    summary = run_job(job, d.runtime)
    took = time.perf_counter() - t
    recs = [r for r in store_records(d.sd) if r.seq > (before[-1].seq if before else -1)]
    segs, cps = narrate_shift(recs)
    mb = sum(os.path.getsize(os.path.join(d.sd, "m", "%08d.mkv" % s)) for s in segs
             if os.path.exists(os.path.join(d.sd, "m", "%08d.mkv" % s))) / 1e6
    print("  (%s to %s: %d records signed by the recorder; %d recordings, %.1f MB of video "
          "(MJPEG 2 Mbit/s) with 16 kHz sound, a signed checkpoint every 5 s (%d); the "
          "firmware ran on %s, %.0f s of shift simulated in %.1f s)"
          % (hms(recs[0].body[R.K.RTC]) if recs else "-",
             hms(recs[-1].body[R.K.RTC]) if recs else "-", len(recs), len(segs), mb,
             cps, vm, _seconds(steps), took))
    return recs


def step_checkin(d):
    banner("4. 签入 / Check-in: back at the station after the shift")
    done = docked(d, [("dock", ["--archive", d.arch, "--no-progress", "--json"],
                       "checkin.json", "check-in (dock), JSON")])
    if not done:
        return None
    r = _json(done[0])
    if r is None:
        print("demo: check-in failed; see %s" % d.rel(os.path.join(d.out, "checkin.json")))
        return None
    d.save_dock_text("checkin.txt", "check-in", r)
    ck = r.get("clock") or {}
    if ck:
        print("  station clock %s" % hms(ck["new"]))
    off = r.get("offload") or {}
    say("上传", "Offloaded", "%d records and %.1f MB of video and sound copied into the "
        "archive and checked on arrival: %s" % (off.get("records_pulled", 0),
                                                off.get("media_bytes", 0) / 1e6,
                                                off.get("verdict")))
    rc = off.get("receipt") or {}
    if rc:
        say("保管回执", "Custody receipt", "number %s, signed by the station, covers the "
            "recorder's records 0..%s: the station now answers for them, and the recorder "
            "may free their space when it runs short (never before)"
            % (rc.get("number"), rc.get("covered")))
    if ck:
        say("校准时钟", "Clock set", "corrected by %+.1f s (record #%s)"
            % (ck["correction_ms"] / 1000, ck["seq"]))
    a = r.get("assign") or {}
    if a.get("seq") is not None:
        say("归还", "Officer released", "%s's shift ends (record #%s)"
            % (r.get("officer_before") or OFFICER, a["seq"]))
    ch = r.get("check") or {}
    if ch:
        say("自检", "Self-check", "READY" if ch.get("ready") else
            "NOT READY (%s)" % ", ".join(ch.get("reasons") or []))
    return r


def step_verify_report(d):
    banner("5. 核验与合规报告 / Verification and the compliance report")
    p = d.sealcam(["verify", d.arch], "verify.txt", "verification of the archive")
    overall = [ln for ln in p.stdout.splitlines() if ln.startswith("OVERALL: ")]
    verdict = overall[0].split()[1] if overall else "?"
    if verdict in ("OK", "OK_WITH_MISSING_INFO"):
        say("核验通过", "Verified %s" % verdict, "every record carries the recorder's signature "
            "(the registered key), the records form one unbroken chain, and every byte of "
            "video and sound matches its signed hash")
    else:
        say("核验未通过", "Verification " + verdict, "see %s"
            % d.rel(os.path.join(d.out, "verify.txt")))
    d.sealcam(["report", "--archive", d.arch], "report.txt", "compliance report")
    q = d.sealcam(["report", "--archive", d.arch, "--json"], "report.json",
                  "compliance report (JSON)")
    rep = _json(q)
    if rep is None:
        print("demo: the report failed; see %s" % d.rel(os.path.join(d.out, "report.txt")))
        return verdict, None
    s = rep["summary"].get(DEVICE, {})
    it = s.get("interruptions", {})
    say("合规报告", "Compliance report", "%s, %d explained aloud, %d without a statement; "
        "%s offloaded later than 24 h; %s; %s" % (
            _n(it.get("total", 0), "interruption"), it.get("annotated", 0),
            it.get("missing", 0) + it.get("unexplained", 0),
            _n(s.get("late_segments", 0), "recording"), _n(s.get("refusals", 0),
                                                           "refused delete"),
            _n(s.get("problems", 0), "compliance problem")))
    for sh in rep.get("shifts", []):
        print("  shift of %s (%s): from %s to %s, %s, %s, %s" % (
            sh["officer"], sh.get("unit") or "no unit", sh["start"][11:19],
            (sh["end"] or "")[11:19] or "still open", _n(sh["segments"], "recording"),
            _n(sh["interruptions"], "interruption"), _n(sh["marks"], "mark")))
    return verdict, rep


def _n(k, what):
    return "%d %s%s" % (k, what, "" if k == 1 else "s")


def step_tamper(d):
    banner("6. 篡改检测 / A copy of the card, tampered with: one media byte flipped, the "
           "newest records deleted")
    bad = os.path.join(d.out, "sd-tampered")
    shutil.copytree(d.sd, bad)
    mdir = os.path.join(bad, "m")
    media = os.path.join(mdir, sorted(n for n in os.listdir(mdir) if n.endswith(".mkv"))[0])
    with open(media, "r+b") as f:
        f.seek(300000)
        b = f.read(1)
        f.seek(300000)
        f.write(bytes([b[0] ^ 0x20]))
    logs = sorted(os.listdir(os.path.join(bad, "rec")))
    last = os.path.join(bad, "rec", logs[-1])
    with open(last, "rb") as f:
        data = f.read()
    buf, ends = io.BytesIO(data), []
    while buf.tell() < len(data):
        cbor2.CBORDecoder(buf).decode()
        ends.append(buf.tell())
    with open(last, "wb") as f:
        f.write(data[:ends[-3] if len(ends) >= 3 else 0])   # the newest records deleted
    rep = verify_store(bad, pinned_key=d.pub, progress=False)
    path = os.path.join(d.out, "tampered-verify.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(rep.to_text())
    d.logs.append(("verification of the tampered card", path))
    if rep.verdict == "NOT_OK":
        say("发现篡改", "Tampering found", "NOT_OK")
    else:
        say("未发现篡改", "Tampering NOT found", rep.verdict)
    for reason in rep.reasons:
        print("    - " + reason)
    return bad, rep


def step_clip(d, rep):
    """The interruption's statement cut out of the archive as a clip, and checked."""
    intr = [i for i in (rep or {}).get("interruptions", []) if i.get("annotation")]
    if not intr:
        return None
    banner("7. 语音说明片段 / The officer's statement as a clip anyone can play and check")
    i = intr[0]
    out = os.path.join(d.out, "statement-%d.mkv" % i["seq"])
    args = ["clip", "--archive", d.arch, "--annotation", "%s:%d" % (DEVICE, i["seq"]),
            "--out", out]
    p = d.sealcam(args, "clip.txt", "the clip and its check (commands)")
    if p.returncode != 0 or not os.path.exists(out):
        print("  demo: `sealcam clip` did not write the clip (exit %d); see %s"
              % (p.returncode, d.rel(os.path.join(d.out, "clip.txt"))))
        return None
    v = d.sealcam(["verify-clip", out, "--archive", d.arch], "clip.txt", "")
    zh, en = REASONS.get(i["reason"], (i["reason"], i["reason"]))
    say("片段", "Clip written", "%s, the statement explaining interruption #%d (%s / %s), "
        "with its provenance %s.prov" % (d.rel(out), i["seq"], zh, en, d.rel(out)))
    say("片段核验", "Clip checked", "%s (exit %d)" % (
        "OK: every byte is proven by the recorder's signed chunk hashes, and its records "
        "by the station log" if v.returncode == 0 else "NOT OK", v.returncode))
    sc = _sealcam_cmd(d)
    print("  play it:   ffplay %s" % d.rel(out))
    print("  check it:  %s verify-clip %s --archive %s" % (sc, d.rel(out), d.rel(d.arch)))
    return out if v.returncode == 0 else None


def _sealcam_cmd(d):
    """How to type `sealcam` here: on PATH, or the venv's."""
    if shutil.which("sealcam"):
        return "sealcam"
    return os.path.join(d.rel(os.path.dirname(sys.executable)), "sealcam")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    ap.add_argument("--runtime", default="micropython", choices=["micropython", "cpython"])
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args(argv)
    d = Demo(os.path.abspath(a.out), a.runtime)
    shutil.rmtree(d.out, ignore_errors=True)
    os.makedirs(d.out)
    # steps 1 and 2 happen "earlier": the shift then fits between check-out and check-in
    d.shift_s = -(SHIFT_S + WALK_S + SHIFT_LEAD_S)

    banner("1. 建立档案 / The station sets up its archive")
    p = d.sealcam(["station", "init", "--archive", d.arch], "station-init.txt",
                  "station set-up", d.shift_s)
    if p.returncode != 0:
        print("demo: station init failed:\n" + p.stdout + p.stderr)
        return 1
    say("采集站", "Station", "archive %s, station key made (give %s to each recorder)"
        % (d.rel(d.arch), d.rel(os.path.join(d.arch, "station.pub"))))

    checkout_ms = step_checkout(d)
    if checkout_ms is None:
        return 1
    shift = step_shift(d, checkout_ms)
    dock = step_checkin(d)
    verdict, rep = step_verify_report(d)
    bad, trep = step_tamper(d)
    clip = step_clip(d, rep)
    from sim.demo_clerk import step_clerk
    filed = step_clerk(d, rep)      # 8. the clerks file it into a case (sim/demo_clerk.py)
    from sim.demo_access import step_access
    from sim.demo_clerk import CLERK as CLERK_NAME
    guarded = step_access(d, filed)  # 9. approved access, copies, discs, backup (issue 12)

    banner("输出 / Where the outputs are")
    print("  archive (the station's evidence store):  %s" % d.rel(d.arch))
    print("  the recorder's SD card:                 %s" % d.rel(d.sd))
    print("  its device key (pin it when verifying):  %s" % d.rel(d.pub))
    print("  the tampered copy of the card:          %s" % d.rel(bad))
    if clip:
        print("  the statement clip:                     %s (+ .prov)" % d.rel(clip))
    if filed:
        print("  the written explanation (scanned PDF):   %s" % d.rel(filed["scan"]))
    if guarded:
        print("  the viewing copy (watermarked MP4):      %s" % d.rel(guarded["copy"]))
        for n, img in enumerate(guarded["disc"], 1):
            print("  disc image %d of 2 (ISO 9660):            %s" % (n, d.rel(img)))
        print("  the discs' label (PDF):                 %s" % d.rel(guarded["label"]))
        print("  the off-site backup:                    %s" % d.rel(guarded["backup"]))
        print("  the access register (PDF to sign):      %s" % d.rel(guarded["register_pdf"]))
    for what, path in d.logs:
        if what:
            print("  %-40s %s" % (what + ":", d.rel(path)))

    sc = _sealcam_cmd(d)
    banner("下一步 / Try next")
    cmds = [("verify the archive, every record listed", "%s verify %s --all" % (sc, d.rel(d.arch))),
            ("verify the card against its device key", "%s verify %s --key %s"
             % (sc, d.rel(d.sd), d.rel(d.pub))),
            ("the tampered card", "%s verify %s --key %s" % (sc, d.rel(bad), d.rel(d.pub))),
            ("the officer's report", "%s report --archive %s --officer %s"
             % (sc, d.rel(d.arch), OFFICER))]
    important = [m for m in (rep or {}).get("marks", []) if m.get("kind") == "important"]
    if important and guarded:
        # the archive has clerk users now: originals leave it only under an approved export
        # request, by a signed-in user (the demo's password: sim/demo_clerk.py)
        from sim.demo_clerk import PASSWORDS
        mclip = os.path.join(d.out, "important-%d.mkv" % important[0]["seq"])
        cmds += [("cut 5 s before to 10 s after the IMPORTANT mark as a clip, under request "
                  "%s (on the register)" % guarded["request"],
                  "SEALCAM_PASSWORD=%s %s clip --archive %s --mark %s:%d --out %s --user %s "
                  "--request %s" % (shlex.quote(PASSWORDS[CLERK_NAME]), sc, d.rel(d.arch),
                                    DEVICE, important[0]["seq"], d.rel(mclip), CLERK_NAME,
                                    guarded["request"]))]
    if clip:
        cmds += [("check the statement clip (exit 0 OK, 1 NOT_OK)",
                  "%s verify-clip %s --archive %s" % (sc, d.rel(clip), d.rel(d.arch))),
                 ("hear and see the statement", "ffplay %s" % d.rel(clip))]
    if filed:
        cmds += [("the recordings of case %s (archive number %s)" % (filed["case"],
                                                                   filed["number"]),
                  "%s search --archive %s --case %s" % (sc, d.rel(d.arch), filed["case"]))]
    if guarded:
        cmds += [("check a disc image offline (or run verify_disc.py at a disc's root)",
                  "%s verify %s" % (sc, d.rel(guarded["disc"][0]))),
                 ("restore the backup into a new folder (the station key pinned by its "
                  "fingerprint), then `sealcam verify` it",
                  "%s restore --from %s --archive %s --expect-key %s" % (
                      sc, d.rel(guarded["backup"]), d.rel(os.path.join(d.out, "restored")),
                      guarded["station_key"])),
                 ("the clerks' desk in a browser (sign in as %s, password in "
                  "sim/demo_clerk.py)" % CLERK_NAME,
                  "%s desk --archive %s" % (sc, d.rel(d.arch)))]
    for what, cmd in cmds:
        print("  # %s\n  %s" % (what, cmd))

    ok = (checkout_ms is not None and shift and dock is not None
          and dock.get("exit_code") == 0 and verdict == "OK" and rep is not None
          and trep.verdict == "NOT_OK" and clip is not None and filed is not None
          and guarded is not None)
    print()
    if ok:
        print("demo: checked out, recorded, checked in, verified OK and reported; the "
              "tampered card is NOT_OK; the interrupted recording is filed into case %s "
              "with archive number %s; the officer's statement is a clip that verifies; "
              "access to the case was approved twice and is on the register, with a "
              "watermarked viewing copy, two disc images that verify and an off-site backup."
              % (filed["case"], filed["number"]))
        return 0
    print("demo: UNEXPECTED results (check-in exit %s, archive %s, report %s, tampered card "
          "%s, clip %s, filing %s)" % (dock and dock.get("exit_code"), verdict,
                                       "ok" if rep else "failed", trep.verdict,
                                       "ok" if clip else "failed",
                                       "ok" if filed else "failed")
          + " (access/copy/disc/backup %s)" % ("ok" if guarded else "failed"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
