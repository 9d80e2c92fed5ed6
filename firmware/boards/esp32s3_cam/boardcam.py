# The camera of the esp32s3_cam board: an OV2640 / OV3660 / OV5640 on the ESP32-S3's DVP
# port, driven by the `camera` C module of micropython-camera-API (built into the board's
# firmware, README.md), in JPEG mode with its frame buffers in PSRAM.
#
# The hal camera interface (firmware/sealcamfw/hal.py): start(); poll() -> the JPEG frames due since
# the last poll; stamps; fps; WIDTH, HEIGHT. Frames are not copied: poll() hands on the
# driver's frame buffer (a memoryview into PSRAM, one of fb_count buffers the driver
# allocated once) and gives it back to the driver at the next poll(), so a frame must be
# used (written, or copied into the pre-record ring) before the next poll; capture.Capture
# does exactly that. One frame a poll at most, and no more often than fps: the driver's
# LATEST grab mode keeps the newest frame, older ones are dropped by the driver, and each
# frame is stamped with the time it was taken from the driver.
#
# The officer id is not burned into the picture on this board (no JPEG overlay here); the
# simulated camera does it, a real board's picture shows only what the sensor saw.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_STALL_MS = const(3000)     # no frame for this long while started: the camera has failed


class DeadCamera:
    """Stands in for a camera that did not come up at boot: start() and poll() raise, so a
    start is refused as a device fault (red LED) while the dock link keeps working."""
    WIDTH = 0
    HEIGHT = 0
    fps = 10

    def __init__(self, why):
        self.why = why
        self.stamps = []

    def start(self):
        raise OSError(19, "camera not working: " + self.why)

    def poll(self):
        raise OSError(19, "camera not working: " + self.why)


class Camera:
    def __init__(self, cam, clock, fps=10):
        self.cam = cam              # a camera.Camera, initialised, pixel_format JPEG
        self.clock = clock
        self.fps = fps
        self.WIDTH = cam.pixel_width
        self.HEIGHT = cam.pixel_height
        self.period = 1000 // fps
        self._held = False          # the driver's frame buffer is lent out
        self._next = 0              # mono ms the next frame is due
        self._last = 0              # mono ms a frame last came (or start)
        self._one = [None]          # the lists poll() returns, reused
        self._none = []
        self._st = [0]
        self.stamps = self._none
        self.dropped = 0            # frames the driver gave no data for

    def _release(self):
        if self._held:
            self._held = False
            self._one[0] = None
            self.cam.free_buffer()

    def start(self):
        self._release()
        now = self.clock.mono_ms()
        self._next = now
        self._last = now

    def poll(self):
        self._release()
        now = self.clock.mono_ms()
        self.stamps = self._none
        if now < self._next:
            return self._none
        if not self.cam.frame_available():
            if now - self._last > _STALL_MS:
                raise OSError(5, "camera: no frame for %d ms" % (now - self._last))
            return self._none
        mv = self.cam.capture()
        if mv is None or not len(mv):
            self.dropped += 1
            if now - self._last > _STALL_MS:
                raise OSError(5, "camera: capture failed for %d ms" % (now - self._last))
            return self._none
        self._held = True
        self._last = now
        nxt = self._next + self.period
        self._next = nxt if nxt > now - self.period else now   # late: do not burst
        self._one[0] = mv
        self._st[0] = now
        self.stamps = self._st
        return self._one
