# Capture loop: pulls camera frames and microphone audio (capture.py) into the open
# segment's Matroska file (mkv.py, SPEC §4.3), writes signed checkpoints every
# checkpoint_s seconds and rolls segments over every segment_s seconds.
from sealcamfw import capture
from sealcamfw import mkv
from sealcamfw import store as st

EXT = "mkv"


class Recorder:
    def __init__(self, hal, store, cfg):
        self.hal = hal
        self.store = store
        self.cfg = cfg
        self.recording = False
        self._seg_ms = 0
        self._ckpt_ms = 0
        self.rolled = None         # (segment, length) of the last segment closed at rollover
        self.capture = capture.Capture(hal, store)
        self.mux = None

    def start(self, reason="button", ring=None):
        """Open a segment; a pre-record ring's frames and audio (SPEC §10.2) become its
        head. The container's header is written (and flushed) first."""
        if self.recording:
            return self.store.seg.seq
        cap = self.capture
        now = self.hal.clock.mono_ms()
        pre = ring.span_ms(now) if ring is not None else 0
        seq = self.store.start_segment(reason, cap.mime(), EXT, pre)
        self.recording = True
        self._seg_ms = now
        self._ckpt_ms = now + self.cfg["checkpoint_s"] * 1000
        m = self.mux = mkv.Muxer(self.store.write, cap.width(), cap.height(), cap.fps(),
                                 cap.mic is not None)
        m.start(now - pre)
        self.store.flush()
        if ring is not None and ring.n:
            def put(track, t, a, b):   # ring times are kept modulo 2**32 ms
                m.block(track, now - ((now - t) & 0xFFFFFFFF), a, b)
            ring.drain(put)
        else:
            cap.start()
        return seq

    def tick(self):
        """One pass of the capture loop; call every tick_ms."""
        if not self.recording:
            return
        s = self.store
        self.capture.pull(self.mux.block)
        now = self.hal.clock.mono_ms()
        if now >= self._ckpt_ms:
            s.checkpoint()
            self._ckpt_ms = now + self.cfg["checkpoint_s"] * 1000
        if now - self._seg_ms >= self.cfg["segment_s"] * 1000:
            self.rolled = (s.seg.seq, s.seg.length)   # where the old segment ended
            s.close_segment()
            self.recording = False
            self.start("rollover")

    def drain(self):
        """Write what the camera and microphone hold now; a full card or a failed camera
        drops it (the segment then ends with what was written)."""
        try:
            self.capture.pull(self.mux.block)
        except OSError:
            pass

    def stop(self, reason="button", poll=True):
        """Close the segment and write REC_STOP; poll=False drops what the camera holds."""
        if not self.recording:
            return None
        if poll:
            self.drain()
        seg = self.store.seg.seq
        self.recording = False
        self.store.close_segment()
        return self.store.record(st.REC_STOP, {st.K_SEGMENT: seg, st.K_REASON: reason})

    def ticks(self, ms, step=None):
        """Run the capture loop (or step, e.g. the officer workflow's tick) for ms of
        (device) time, yielding after every tick so a scheduler (asyncio on the board,
        the VM's event loop) can run between ticks."""
        tick = self.cfg["tick_ms"]
        step = step or self.tick
        clock = self.hal.clock
        end = clock.mono_ms() + ms
        while clock.mono_ms() < end:
            clock.sleep_ms(min(tick, end - clock.mono_ms()))
            step()
            yield

    def run_ms(self, ms):
        for _ in self.ticks(ms):
            pass
