# Synthetic camera for the virtual recorder: an MJPEG stream (concatenated baseline JPEG
# frames) at a set bitrate and frame rate, driven by the simulated clock. Each frame is a
# real 160x120 JPEG with a COM segment carrying device id, officer id, frame number and
# time, padded with COM segments up to the frame size the bitrate asks for.
# Runs on MicroPython and CPython.
import binascii
import struct

_BASE = binascii.a2b_base64(
    b"/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAB4AKADASIAAhEBAxEB/8QAGgABAQADAQEAAAAAAAAAAAAAAAIDBAUBBv/EACsQAQACAgECBQIGAwAAAAAAAAABAgMRBBITBSExUpEiURQyM0FhgUJxsf/EABgBAQADAQAAAAAAAAAAAAAAAAABAgME/8QAIREBAAICAQMFAAAAAAAAAAAAAAERAiGxAxITIjFRgdH/2gAMAwEAAhEDEQA/APieBw55mTJWJvHbpN5ilOu1o3EaiNxv13/qJZsvB4uHjRmvyskxbJfHTow7301rPnu0a/PrXn6SwcWYw3tOXj5MkTGomszW1Z3vcTqf+fu6OXxfJmwWx3w8um7zbeLP09UTStfq+meqfo3v99ywzjq93pjX0nTX4/hPfrwp72p5OauO0dP6cWmYrPr576bTr+I+7W43GplxZc2bJOPDj1EzWvVM2neoiNx9pn1/Zv8AH8X5GLkUtbDlyYMc45x4ZvOqTSazEx5esxEx6f5S16ZsFMWTDHC5E4cmptE5Y6otG9TE9Hl6zHpPqR5t3HBp5xvDa8nl5MOPk1mlaRNLxX8021Fa635TuYift5+ulx4TNuP4fljN5cubRb6f0oi0xufPz8omf6eV5/IwRf8ABYsnFm96zvHaY8qxqI/n7z95bGXxa18eSlOFalbY7VpHVM9Eza879PbktXX9q5R171HHx+8Fw5vO4/4TncjjdXX2clsfVrW9TremBs82+Tl87kcns2p3slsnT663O9bYO1k9lvh0Yxl2xfui4SK7WT2W+DtZPZb4WqS0iu1k9lvg7WT2W+CpLSK7WT2W+DtZPZb4KktIrtZPZb4O1k9lvgqS0iu1k9lvg7WT2W+CpLSK7WT2W+DtZPZb4Kkt0gHYwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAf/9k=")
_BODY = _BASE[2:]          # after SOI
_SOI = b"\xff\xd8"
_COM_MAX = 65533           # payload bytes one COM segment can carry


def _com(payload_len, text=b""):
    # COM segment of payload_len bytes: text, then zero padding
    head = b"\xff\xfe" + struct.pack(">H", payload_len + 2)
    if text:
        return head + text + bytes(payload_len - len(text))
    return head + bytes(payload_len)


class SimCamera:
    MIME = "video/x-motion-jpeg"
    EXT = "mjpg"

    def __init__(self, clock, bitrate=2000000, fps=10, device="SC-SIM", officer=None):
        self.clock = clock
        self.bitrate = bitrate
        self.fps = fps
        self.device = device
        self.officer = officer
        self.frame_no = 0
        self._next_ms = None

    def start(self):
        self._next_ms = self.clock.mono_ms()

    def frame_size(self):
        return max(len(_BASE) + 64, self.bitrate // 8 // self.fps)

    def _frame(self):
        text = ("sealcam %s officer=%s frame=%d rtc=%d" % (
            self.device, self.officer or "-", self.frame_no, self.clock.rtc_ms())).encode()
        pad = self.frame_size() - len(_BASE) - 4 - len(text)
        parts = [_SOI, _com(len(text), text)]
        while pad > 0:
            n = min(pad - 4, _COM_MAX) if pad > 4 else 0
            if n <= 0:
                break
            parts.append(_com(n))
            pad -= n + 4
        parts.append(_BODY)
        self.frame_no += 1
        return b"".join(parts)

    def poll(self):
        """Frames due since the last poll (list of bytes), per the simulated clock."""
        if self._next_ms is None:
            self.start()
        now = self.clock.mono_ms()
        out = []
        step = 1000 // self.fps
        while self._next_ms <= now:
            out.append(self._frame())
            self._next_ms += step
        return out
