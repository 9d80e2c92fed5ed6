# What the recorder captures: camera frames and microphone audio, handed on in time order
# with the monotonic ms each was captured at (SPEC §4.3). The camera says when each frame
# of a poll was taken (camera.stamps, else the poll's time); audio times follow from the
# sample count since the microphone started (16 kHz: 16 samples a ms), so audio and video
# share one clock. Audio is read into one preallocated buffer: a consumer must use
# (write or copy) each piece before the next pull.
#
# No microphone (hal.mic is None): the segments carry a video track only, and the
# container's header says so (Tracks without track 2) and REC_START's mime says
# "video/x-matroska; audio=none" (SPEC §4.3): the absence is recorded, never filled in
# with silence.
from sealcamfw import mkv

_AUDIO_BUF = 2 * mkv.RATE // 2       # bytes of audio one read takes at most: 0.5 s


class Capture:
    def __init__(self, hal, store=None):
        self.store = store         # its officer is burned into the picture (camera.officer)
        self.cam = hal.camera
        self.mic = getattr(hal, "mic", None)
        self.clock = hal.clock
        self.abuf = bytearray(_AUDIO_BUF) if self.mic is not None else None
        self.t0 = 0                # mono ms the microphone started at
        self.samples = 0           # samples read since

    def width(self):
        return getattr(self.cam, "WIDTH", 0)

    def height(self):
        return getattr(self.cam, "HEIGHT", 0)

    def fps(self):
        return getattr(self.cam, "fps", 10)

    def mime(self):
        return "video/x-matroska" if self.mic is not None else "video/x-matroska; audio=none"

    def start(self):
        """Start (or restart) both sources now."""
        self.cam.start()
        if self.mic is not None:
            self.t0 = self.clock.mono_ms()
            self.samples = 0
            self.mic.start()

    def pull(self, out):
        """Call out(track, mono ms, data) for everything captured since the last pull, in
        time order (video frames, and audio in pieces of at most 0.5 s)."""
        now = self.clock.mono_ms()
        cam = self.cam
        if self.store is not None and hasattr(cam, "officer"):
            cam.officer = self.store.officer   # the assigned officer, as the chain says now
        frames = cam.poll()
        st = getattr(cam, "stamps", None)
        if st is None or len(st) != len(frames):
            st = [now] * len(frames)
        i = 0
        mic = self.mic
        if mic is not None:
            mv = memoryview(self.abuf)
            while True:
                n = mic.readinto(self.abuf)
                if n <= 0:
                    break
                at = self.t0 + self.samples * 1000 // mkv.RATE
                while i < len(frames) and st[i] <= at:
                    out(mkv.VIDEO, st[i], frames[i])
                    i += 1
                out(mkv.AUDIO, at, mv[:n])
                self.samples += n // 2
                if n < len(self.abuf):
                    break
        while i < len(frames):
            out(mkv.VIDEO, st[i], frames[i])
            i += 1
