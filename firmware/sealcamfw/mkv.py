# Matroska muxer in live mode (protocol/SPEC.md §4.3, "Container profile"): what a segment's
# media file holds. Append-only: an EBML header, a Segment of unknown size, Info, Tracks
# (1: V_MJPEG, 2: A_PCM/INT/LIT, 16 kHz mono 16-bit), then Clusters of unknown size holding
# SimpleBlocks. Nothing written is ever patched, so a file cut at any byte after the first
# block still decodes up to its last complete block.
#
# Timestamps: TimestampScale 1 ms. A block's time is the monotonic ms it was captured at,
# minus the muxer's origin (the segment's first instant, pre-record included), so a file
# starts at 0. A new Cluster starts every CLUSTER_MS of media time, or before a block's
# time relative to its Cluster would leave the signed 16-bit range.
#
# The muxer only hands bytes to write(buf); block and cluster headers live in buffers
# allocated once, so a block costs two or three write calls and no per-byte work.
# Runs on MicroPython and CPython.
import struct

VIDEO = 1
AUDIO = 2
RATE = 16000               # audio samples per second
CLUSTER_MS = 1000          # media time one Cluster covers at most
APP = "sealcam"

_UNKNOWN = b"\x01\xff\xff\xff\xff\xff\xff\xff"   # 8-byte "unknown size"


def _vsize(n):
    # EBML variable-size integer, smallest width that holds n (all-ones values reserved)
    w = 1
    while n >= (1 << (7 * w)) - 1:
        w += 1
    return ((1 << (7 * w)) | n).to_bytes(w, "big")


def _uint(n):
    w = 1
    while n >> (8 * w):
        w += 1
    return n.to_bytes(w, "big")


def _el(eid, payload):
    if type(payload) is int:
        payload = _uint(payload)
    elif type(payload) is str:
        payload = payload.encode()
    return eid + _vsize(len(payload)) + payload


def header(width, height, fps, audio=True, app=APP):
    """The bytes before the first Cluster: EBML header, Segment start, Info, Tracks."""
    ebml = _el(b"\x1a\x45\xdf\xa3", b"".join((
        _el(b"\x42\x86", 1), _el(b"\x42\xf7", 1), _el(b"\x42\xf2", 4), _el(b"\x42\xf3", 8),
        _el(b"\x42\x82", "matroska"), _el(b"\x42\x87", 4), _el(b"\x42\x85", 2))))
    info = _el(b"\x15\x49\xa9\x66", b"".join((
        _el(b"\x2a\xd7\xb1", 1000000), _el(b"\x4d\x80", app), _el(b"\x57\x41", app))))
    video = _el(b"\xae", b"".join((
        _el(b"\xd7", VIDEO), _el(b"\x73\xc5", VIDEO), _el(b"\x83", 1), _el(b"\x9c", 0),
        _el(b"\x86", "V_MJPEG"), _el(b"\x23\xe3\x83", 1000000000 // fps),
        _el(b"\xe0", _el(b"\xb0", width) + _el(b"\xba", height)))))
    tracks = video
    if audio:
        tracks += _el(b"\xae", b"".join((
            _el(b"\xd7", AUDIO), _el(b"\x73\xc5", AUDIO), _el(b"\x83", 2), _el(b"\x9c", 0),
            _el(b"\x86", "A_PCM/INT/LIT"),
            _el(b"\xe1", _el(b"\xb5", struct.pack(">d", RATE)) + _el(b"\x9f", 1) +
                _el(b"\x62\x64", 16)))))
    return ebml + b"\x18\x53\x80\x67" + _UNKNOWN + info + _el(b"\x16\x54\xae\x6b", tracks)


class Muxer:
    """Writes one Matroska file through write(buf): start(origin_ms) once, then block()
    for every video frame and audio piece, in time order."""

    def __init__(self, write, width, height, fps, audio=True):
        self.write = write
        self.width = width
        self.height = height
        self.fps = fps
        self.audio = audio
        self.origin = 0
        self.cluster = -1          # media ms of the open Cluster; -1: none yet
        # Cluster: ID, unknown size, Timestamp (ID E7, 8-byte uint)
        self._ch = bytearray(b"\x1f\x43\xb6\x75" + _UNKNOWN + b"\xe7\x88" + bytes(8))
        # SimpleBlock: ID A3, 4-byte size, track number, int16 relative time, flags
        self._bh = bytearray(b"\xa3\x10\x00\x00\x00\x81\x00\x00\x80")
        self.blocks = 0

    def start(self, origin_ms):
        """Write the header; block times are counted from origin_ms (monotonic ms)."""
        self.origin = origin_ms
        self.write(header(self.width, self.height, self.fps, self.audio))

    def block(self, track, t_ms, data, data2=None):
        """One SimpleBlock of track (VIDEO: a JPEG frame; AUDIO: s16le samples) captured
        at monotonic t_ms; data2, if given, follows data (a piece that wrapped in a ring)."""
        t = t_ms - self.origin
        if t < 0:
            t = 0
        rel = t - self.cluster
        if self.cluster < 0 or rel >= CLUSTER_MS or rel > 32767 or rel < -32768:
            self.cluster = t
            rel = 0
            struct.pack_into(">Q", self._ch, 14, t)
            self.write(self._ch)
        n = len(data) + (len(data2) if data2 is not None else 0) + 4
        if n >= 0x0fffffff:
            raise ValueError("block of %d bytes is too large" % n)
        bh = self._bh
        struct.pack_into(">I", bh, 1, 0x10000000 | n)
        bh[5] = 0x80 | track
        struct.pack_into(">h", bh, 6, rel)
        self.write(bh)
        self.write(data)
        if data2 is not None:
            self.write(data2)
        self.blocks += 1
