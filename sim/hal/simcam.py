# Synthetic camera for the virtual recorder: MJPEG frames (baseline JPEG, which the
# recorder puts into a Matroska file, firmware/sealcamfw/mkv.py) at a set bitrate and frame rate,
# driven by the simulated clock. Each frame is a
# real 160x120 grayscale JPEG with the device id, the officer id and the RTC time (UTC)
# burned into the picture, a COM segment carrying the same text with the frame number,
# padded with COM segments up to the frame size the bitrate asks for.
#
# No image library runs on a board, so frames are put together from pre-encoded 8x8
# blocks (sim/hal/camtiles.py, made by sim/make_camera_tiles.py): with a restart marker
# after every block, each block's bytes stand alone, and a character is two blocks.
# Runs on MicroPython and CPython.
import binascii
import struct

from sim.hal import camtiles

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
_COM_MAX = 65533           # payload bytes one COM segment can carry
_COLS = camtiles.W // 8
_ROWS = camtiles.H // 8
_LINES = 3                 # text lines, two block rows each, at the top
_RST = [bytes((0xFF, 0xD0 + i)) for i in range(8)]


def _b64(x):
    return binascii.a2b_base64(x.encode())


_HEAD = _b64(camtiles.HEAD)[2:]            # the JPEG header after SOI, through SOS
_BG = [_b64(x) for x in camtiles.BG]
_TOP = [_b64(x) for x in camtiles.TOP]
_BOTTOM = [_b64(x) for x in camtiles.BOTTOM]
_INDEX = {}
for _i, _c in enumerate(camtiles.CHARS):
    _INDEX[_c] = _i


def _blocks(first, blocks):
    # blocks numbered from `first`, each followed by its restart marker (none after the last)
    last = _COLS * _ROWS - 1
    out = []
    for k, blk in enumerate(blocks):
        out.append(blk)
        if first + k < last:
            out.append(_RST[(first + k) & 7])
    return b"".join(out)


_BELOW_TEXT = _blocks(2 * _LINES * _COLS, _BG[2 * _LINES * _COLS:])


def _text_rows(lines):
    blocks = []
    for r in range(_LINES):
        text = lines[r].upper()[:_COLS] if r < len(lines) else ""
        for half, tiles in ((0, _TOP), (1, _BOTTOM)):
            row = (2 * r + half) * _COLS
            for c in range(_COLS):
                i = _INDEX.get(text[c], 0) if c < len(text) else -1
                blocks.append(tiles[i] if i > 0 else _BG[row + c])
    return _blocks(0, blocks)


def _utc(ms):
    # "YYYY-MM-DD HH:MM:SS" of a Unix time in ms (civil-from-days; no time module needed)
    s = ms // 1000
    days, rem = s // 86400, s % 86400
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return "%04d-%02d-%02d %02d:%02d:%02d" % (y, m, d, rem // 3600, rem // 60 % 60, rem % 60)


def _com(payload_len, text=b""):
    # COM segment of payload_len bytes: text, then zero padding
    head = b"\xff\xfe" + struct.pack(">H", payload_len + 2)
    if text:
        return head + text + bytes(payload_len - len(text))
    return head + bytes(payload_len)


class SimCamera:
    WIDTH = camtiles.W
    HEIGHT = camtiles.H

    def __init__(self, clock, bitrate=2000000, fps=10, device="SC-SIM", officer=None):
        self.clock = clock
        self.bitrate = bitrate
        self.fps = fps
        self.device = device
        self.officer = officer
        self.frame_no = 0
        self.stamps = []             # mono ms each frame of the last poll() was captured at
        self._next_ms = None
        self._cache = (None, None)   # (text lines, their encoded blocks): one per second
        self.fault = False           # set: poll() fails as a broken sensor would

    def start(self):
        self._next_ms = self.clock.mono_ms()

    def frame_size(self):
        """Bytes per frame the bitrate asks for (a frame is never smaller than its picture)."""
        return self.bitrate // 8 // self.fps

    def _picture(self, rtc):
        lines = (self.device, self.officer or "NO OFFICER", _utc(rtc))
        if self._cache[0] != lines:
            self._cache = (lines, _text_rows(lines) + _BELOW_TEXT)
        return self._cache[1]

    def _frame(self):
        rtc = self.clock.rtc_ms()
        text = ("sealcam %s officer=%s frame=%d rtc=%d" % (
            self.device, self.officer or "-", self.frame_no, rtc)).encode()
        scan = self._picture(rtc)
        pad = self.frame_size() - 2 - (4 + len(text)) - len(_HEAD) - len(scan) - 2
        parts = [_SOI, _com(len(text), text)]
        while pad > 4:
            n = min(pad - 4, _COM_MAX)
            parts.append(_com(n))
            pad -= n + 4
        parts.append(_HEAD)
        parts.append(scan)
        parts.append(_EOI)
        self.frame_no += 1
        return b"".join(parts)

    def poll(self):
        """Frames due since the last poll (list of bytes), per the simulated clock;
        self.stamps then holds the mono ms each was captured at."""
        if self.fault:
            raise OSError(5, "camera fault")
        if self._next_ms is None:
            self.start()
        now = self.clock.mono_ms()
        out = []
        st = self.stamps = []
        step = 1000 // self.fps
        while self._next_ms <= now:
            out.append(self._frame())
            st.append(self._next_ms)
            self._next_ms += step
        return out
