# Capture loop: pulls media from the camera into the open segment, writes signed
# checkpoints every checkpoint_s seconds and rolls segments over every segment_s seconds.
import store as st


class Recorder:
    def __init__(self, hal, store, cfg):
        self.hal = hal
        self.store = store
        self.cfg = cfg
        self.recording = False
        self._seg_ms = 0
        self._ckpt_ms = 0

    def start(self, reason="button"):
        if self.recording:
            return self.store.seg.seq
        cam = self.hal.camera
        seq = self.store.start_segment(reason, cam.MIME, cam.EXT)
        cam.start()
        now = self.hal.clock.mono_ms()
        self._seg_ms = now
        self._ckpt_ms = now + self.cfg["checkpoint_s"] * 1000
        self.recording = True
        return seq

    def tick(self):
        """One pass of the capture loop; call every tick_ms."""
        if not self.recording:
            return
        s = self.store
        for frame in self.hal.camera.poll():
            s.write(frame)
        now = self.hal.clock.mono_ms()
        if now >= self._ckpt_ms:
            s.checkpoint()
            self._ckpt_ms = now + self.cfg["checkpoint_s"] * 1000
        if now - self._seg_ms >= self.cfg["segment_s"] * 1000:
            s.close_segment()
            self.recording = False
            self.start("rollover")

    def stop(self, reason="button"):
        if not self.recording:
            return None
        for frame in self.hal.camera.poll():
            self.store.write(frame)
        seg = self.store.seg.seq
        self.store.close_segment()
        self.recording = False
        return self.store.record(st.REC_STOP, {st.K_SEGMENT: seg, st.K_REASON: reason})

    def ticks(self, ms):
        """Run the capture loop for ms of (device) time, yielding after every tick so a
        scheduler (asyncio on the board, the VM's event loop) can run between ticks."""
        tick = self.cfg["tick_ms"]
        clock = self.hal.clock
        end = clock.mono_ms() + ms
        while clock.mono_ms() < end:
            clock.sleep_ms(min(tick, end - clock.mono_ms()))
            self.tick()
            yield

    def run_ms(self, ms):
        for _ in self.ticks(ms):
            pass
