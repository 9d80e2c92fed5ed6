# The officer's shift on the recorder (SPEC §10): buttons in, LED/vibration/beeps out;
# pre-record, interruptions with voice-annotation markers, marks, storage policy.
# One object per boot; tick() runs every tick_ms and drives the capture loop.
from sealcamfw import buttons as bt
from sealcamfw import prerecord
from sealcamfw import store as st

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

STANDBY = "standby"
RECORDING = "recording"
CHOOSING = "choosing"
REASONS = ("weather", "place_change", "other")   # the officer's reasons (§10.1)
_MAX_WAITING = const(8)
_HEAP_RESERVE = const(262144)  # heap left free after the pre-record ring is allocated
_START_MIN = const(131072)   # free bytes a start needs (a write keeps 64 KiB in reserve)


def _mem_free():
    import gc
    if not hasattr(gc, "mem_free"):   # CPython: no fixed heap (and no full collection,
        return 1 << 30                # which costs much in a large test process)
    gc.collect()
    return gc.mem_free()


class _NoUI:
    def led(self, c):
        pass

    def vibrate(self, ms):
        pass

    def beep(self, n):
        pass

    def show(self, text):
        pass

    def say(self, phrase):
        pass


class Workflow:
    def __init__(self, hal, store, rec, cfg):
        self.hal = hal
        self.store = store
        self.rec = rec
        self.cfg = cfg
        self.clock = hal.clock
        self.ui = getattr(hal, "ui", None) or _NoUI()
        src = getattr(hal, "buttons", None)
        self.buttons = bt.Buttons(src, cfg["long_press_ms"]) if src is not None else None
        self.state = RECORDING if rec.recording else STANDBY
        self.pending = []          # seqs of interruptions waiting for a voice annotation
        self.events = []           # what happened, for a display log and the simulator
        self.resumed = None        # mono ms of the resume that prompted the officer
        self.voice = None          # (pos, mono ms) when VOICE went down while recording
        self.choice = 0
        self.choose_until = 0
        self.ring = None
        ps = cfg["prerecord_s"]
        if ps:
            cap = ps * (cfg["bitrate"] // 4 + 32000)  # video at twice the nominal rate
            # (a VBR peak fits) and 16 kHz 16-bit audio
            if cap > cfg["prerecord_ram"]:
                cap = cfg["prerecord_ram"]
            while cap and self.ring is None:
                try:
                    self.ring = prerecord.Ring(cap, ps * 1000)
                    if _mem_free() < _HEAP_RESERVE:   # the store and signing need the rest
                        self.ring = None
                        raise MemoryError
                except MemoryError:  # less RAM than prerecord_ram: a shorter pre-record
                    cap = cap // 2 if cap >= 131072 else 0
            if self.ring is None:
                self._log("no RAM for pre-record")
            self._standby_camera()
        rv = store.recovered
        if rv and "interruption" in rv:
            self._wait(rv["interruption"])
            self.ui.led("amber")
            self.ui.show("POWER LOST WHILE RECORDING")

    # ------------------------------------------------------------ helpers
    def _log(self, what):
        ev = self.events
        ev.append(what)
        if len(ev) > 64:
            ev.pop(0)

    def waiting(self):
        return list(self.pending)

    def _wait(self, seq):
        self.pending.append(seq)
        if len(self.pending) > _MAX_WAITING:
            self._missing([self.pending.pop(0)], 0)

    def _missing(self, seqs, waited):
        s = self.store
        for q in seqs:
            s.record(st.ANNOTATION_MISSING, {st.K_REFERS: q, st.K_DURATION: waited})
            self._log("annotation missing for %d" % q)

    # ------------------------------------------------------------ officer actions
    def start(self, reason="button"):
        if self.state != STANDBY:
            return None
        if self.pending:
            reason = "resume"
        hz = self._hazard()
        if hz:
            self.ui.led("red")      # starting would only be interrupted again
            self.ui.show("CANNOT RECORD: " + hz)
            self._log("start refused: " + hz)
            return None
        if self.store.seg is not None and not self.rec.recording:
            try:                    # left open by an earlier failure: close it first
                self.store.close_segment()
            except OSError as e:
                self._fail(e)
                return None
        self._make_room()
        if self.store.fs.free() < _START_MIN:
            self.ui.led("red")      # nothing a receipt covers is left to release
            self.ui.show("STORAGE FULL")
            self._log("start refused: storage full")
            return None
        try:
            seq = self.rec.start(reason, self.ring)
        except OSError as e:        # StoreFull, or the medium failed
            if self.rec.recording:
                self.state = RECORDING
            self._fail(e)
            self._log("start failed: %s" % e)
            return None
        self.state = RECORDING
        self._log("start %d %s" % (seq, reason))
        if self.pending:
            self.resumed = self.clock.mono_ms()
            self.ui.beep(3)
            self.ui.vibrate(800)
            self.ui.led("amber-blink")
            self.ui.show("HOLD VOICE: STATE WHY RECORDING WAS INTERRUPTED")
        else:
            self.ui.beep(1)
            self.ui.led("green")
        return seq

    def stop(self, reason="button"):
        """The officer ends the activity (not an interruption)."""
        if self.state == STANDBY:
            return None
        self.state = STANDBY
        self.voice = None
        try:
            r = self.rec.stop(reason)
        except (OSError, MemoryError) as e:   # the segment stays open: closed at the next
            self._fail(e)                     # start, or sealed at the next boot
            return None
        self.ui.beep(2)
        self.ui.led("off")
        self._log("stop %s" % reason)
        self._standby_camera()
        return r

    def _standby_camera(self):
        # the camera keeps filling the pre-record ring in standby
        if self.ring is not None:
            self.ring.clear()
            try:
                self.rec.capture.start()
            except OSError:
                pass

    def interrupt(self, reason):
        """Recording stops for reason (SPEC §10.3): INTERRUPTION, then SEGMENT and REC_STOP."""
        s = self.store
        if not self.rec.recording or s.seg is None:
            self.rec.recording = False
            self.state = STANDBY
            return None
        if reason not in ("storage_full", "device_fault"):
            self.rec.drain()        # `at` is where the media stops
        seg = s.seg.seq
        s.record(st.INTERRUPTION, {st.K_REASON: reason, st.K_SEGMENT: seg, st.K_AT: s.pos()})
        q = s.seq - 1
        self.state = STANDBY
        self.voice = None
        self.rec.stop("interrupted", False)
        self._wait(q)
        self.resumed = None
        self.ui.beep(2)
        self.ui.vibrate(400)
        self.ui.led("amber")
        self.ui.show("INTERRUPTED: " + reason)
        self._log("interrupted %d %s" % (q, reason))
        self._standby_camera()
        return q

    def _fail(self, e):
        """A storage or camera error: interrupt with its reason; if even that cannot be
        written, stop trying (the next boot seals the open segment, SPEC §5.4)."""
        code = e.args[0] if e.args else 0
        reason = "storage_full" if isinstance(e, st.StoreFull) or code == 28 else "device_fault"
        try:
            if self.rec.recording:
                self.interrupt(reason)
                return
        except OSError as e2:
            self.rec.recording = False      # the segment stays open: closed at the next
            self._log("cannot record: %s" % e2)  # start, or sealed at the next boot
        self.state = STANDBY
        self.voice = None
        self.ui.led("red")
        self.ui.show("STORAGE FULL" if reason == "storage_full" else "DEVICE FAULT")

    def mark(self, kind):
        s = self.store
        if self.state == STANDBY:
            self.ui.beep(1)
            return None
        f = {st.K_KIND: kind, st.K_AT: s.pos()}
        if kind == "notice_given" and self.cfg["notice_phrase"]:
            self.ui.say("notice")   # the standard phrase of R5
            f[st.K_PHRASE] = True
        s.record(st.MARK, f)
        self.ui.vibrate(100)
        self._log("mark %s" % kind)
        return s.seq - 1

    def _voice_done(self, t):
        pos0, t0 = self.voice
        self.voice = None
        s = self.store
        end = s.pos()
        if end is None or t - t0 < self.cfg["voice_min_ms"] or not self.pending:
            self.ui.beep(1)
            return
        spans = [[end[0], pos0[1], pos0[2], end[1], end[2]]]
        rolled = self.rec.rolled
        if end[0] != pos0[0]:   # the segment rolled over while the officer spoke: one
            spans = [[end[0], 0, 0, end[1], end[2]]]      # span in each segment
            if rolled is not None and rolled[0] == pos0[0]:
                c = s.chunk
                spans.insert(0, [pos0[0], pos0[1], pos0[2], rolled[1] // c, rolled[1] % c])
        while self.pending:
            q = self.pending[0]
            for span in spans:
                s.record(st.VOICE_ANNOTATION, {st.K_REFERS: q, st.K_SPAN: span,
                                               st.K_DURATION: t - t0})
            self.pending.pop(0)     # explained: never also "missing"
            self._log("annotation for %d" % q)
        self.resumed = None
        self.ui.beep(1)
        self.ui.led("green")
        self.ui.show("")

    # ------------------------------------------------------------ the loop
    def _input(self, name, kind, t):
        state = self.state
        if name == "voice":     # recording goes on while choosing: so does a statement
            if kind == bt.DOWN and state != STANDBY:
                self.voice = (self.store.pos(), t)
                self.ui.led("red")
            elif kind == bt.UP and self.voice is not None:
                self._voice_done(t)
            return
        if state == CHOOSING:
            if name == "record" and kind == bt.PRESS:
                self.state = RECORDING
                self.interrupt(REASONS[self.choice])
            elif name == "mark" and kind == bt.PRESS:
                self.choice = (self.choice + 1) % len(REASONS)
                self.choose_until = t + self.cfg["choose_s"] * 1000
                self.ui.show("REASON: " + REASONS[self.choice])
            return
        if name == "record":
            if kind == bt.PRESS:
                if state == STANDBY:
                    self.start("button")
                else:
                    self.stop("button")
            elif kind == bt.HOLD and state == RECORDING:
                self.state = CHOOSING
                self.choice = 0
                self.choose_until = t + self.cfg["choose_s"] * 1000
                self.ui.vibrate(200)
                self.ui.show("REASON: " + REASONS[0])
        elif name == "mark":
            if kind == bt.PRESS:
                self.mark("bookmark")
            elif kind == bt.HOLD:
                self.mark("important")
        elif name == "notice" and kind == bt.PRESS:
            self.mark("notice_given")

    def _hazard(self):
        if self.store.foreign:
            return "foreign_card"   # another device's card: nothing is written to it
        if getattr(self.store, "card_error", None):
            return "card_error"     # boot could not open the card's store: the same
        if getattr(self.store, "exposed", None):
            return "card_exposed"   # the station reads the card as a disk (SPEC §8.8)
        bat = getattr(self.hal, "battery", None)
        if bat is not None and bat() < self.cfg["battery_stop"]:
            return "battery_low"
        temp = getattr(self.hal, "temperature", None)
        if temp is not None and temp() > self.cfg["temp_stop"]:
            return "overheat"
        return None

    def _make_room(self):
        s = self.store
        lw = self.cfg["low_water"]
        if s.covered >= 0 and s.fs.free() < lw:
            if s.release_covered(lw):
                self._log("released media for room")

    def tick(self):
        now = self.clock.mono_ms()
        evs = self.buttons.events(now) if self.buttons is not None else ()
        try:
            # a statement starts before this tick's frames and ends after them, so its
            # span covers all of it (to within a tick)
            for name, kind, t in evs:
                if name == "voice" and kind == bt.DOWN:
                    self._input(name, kind, t)
            if self.rec.recording:
                reason = self._hazard()
                if reason:
                    self.interrupt(reason)
                else:
                    self._make_room()
                    self.rec.tick()
            elif self.ring is not None:
                try:
                    self.rec.capture.pull(self.ring.add)
                except OSError:
                    self.ring.clear()
            for name, kind, t in evs:
                if not (name == "voice" and kind == bt.DOWN):
                    self._input(name, kind, t)
        except (OSError, MemoryError) as e:  # StoreFull, ENOSPC, a failed medium or camera
            self._fail(e)
        if self.state == CHOOSING and now >= self.choose_until:
            self.state = RECORDING   # no reason confirmed: recording simply goes on
            self.ui.show("")
        if self.pending and self.resumed is not None and self.voice is None and \
                now - self.resumed >= self.cfg["annotation_s"] * 1000 and \
                not getattr(self.store, "exposed", None):   # exposed: due when it ends
            waited = now - self.resumed
            self.resumed = None
            try:
                while self.pending:     # each one leaves pending once its record is written
                    self._missing(self.pending[:1], waited)
                    self.pending.pop(0)
            except OSError as e:        # the rest stay waiting (written at the next resume)
                self._fail(e)
            self.ui.led("green" if self.rec.recording else "off")

    def ticks(self, ms):
        return self.rec.ticks(ms, self.tick)
