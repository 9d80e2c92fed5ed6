# FAKE of the `camera` module of micropython-camera-API (the ESP32 camera driver built
# into the esp32s3_cam firmware), for tests/test_board_port.py: no camera runs here.
# It keeps the parts of the API the board port uses: Camera(**pins and settings),
# frame_available(), capture() -> memoryview into the driver's frame buffer, free_buffer(),
# pixel_width / pixel_height, and PixelFormat / FrameSize / GrabMode.
#
# Every frame is the same real 64x48 baseline JPEG (made once with FFmpeg) with a comment
# segment "fakecam frame=NNNNNN" after SOI, written into one frame buffer allocated here.
# Like the real driver, a buffer goes back to the driver at free_buffer() or the next
# capture(); this fake then overwrites it with 0xEE bytes, so a frame used after that no
# longer decodes: a port that keeps a frame too long fails the test.
import binascii

_JPEG = binascii.a2b_base64(b"/9j//gAQTGF2YzYyLjI4LjEwMgD/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBgYHBwcICAgHBwcGBgcHCAgICAkJCQgICAgJCQoKCgwMCwsODg4RERT/3QAEAAT/xAGiAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgsBAAMBAQEBAQEBAQEAAAAAAAABAgMEBQYHCAkKCxAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6EQACAQIEBAMEBwUEBAABAncAAQIDEQQFITEGEkFRB2FxEyIygQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqCg4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2dri4+Tl5ufo6ery8/T19vf4+fr/wAARCAAwAEADASIAAhEAAxEA/9oADAMBAAIRAxEAPwDnY6sR1XjqxHX1VOj/ANOv/KH/AODD9mp0f+nX/lD/APBhYjqxHVeOrEddFOj/ANOv/KH/AODDx/E2t9Q4EzfEe1+o8n1L/aPb/wBnez5sdh4/73/afCvs+a/L/wAjvCc1+X97f2U7EdWI6rx1Yjrop0f+nX/lD/8ABh+T0+KP+qm/82//APOHLEdWI6rx1Yjrop0f+nX/AJQ//Bh0U+KP+qm/82//APOHP//Q52OrEdV46sR19VTo/wDTr/yh/wDgw/ZqdH/p1/5Q/wDwYWI6sR1XjqxHXRTo/wDTr/yh/wDgw8fxNrfUOBM3xHtfqPJ9S/2j2/8AZ3s+bHYeP+9/2nwr7Pmvy/8AI7wnNfl/e39lOxHViOq8dWI66KdH/p1/5Q//AAYfk9Pij/qpv/Nv/wDzhyxHViOq8dWI66KdH/p1/wCUP/wYdFPij/qpv/Nv/wDzhz//0edjqxHVeOrEdfVU6P8A06/8of8A4MP2anR/6df+UP8A8GFiOrEdV46sR10U6P8A06/8of8A4MPH8Ta31DgTN8R7X6jyfUv9o9v/AGd7Pmx2Hj/vf9p8K+z5r8v/ACO8JzX5f3t/ZTsR1YjqvHViOuinR/6df+UP/wAGH5PT4o/6qb/zb/8A84csR1YjqvHViOuinR/6df8AlD/8GHRT4o/6qb/zb/8A84c//9k=")


class PixelFormat:
    RGB565 = 0
    JPEG = 4


class FrameSize:
    QQVGA = 1
    QVGA = 6
    VGA = 10


class GrabMode:
    WHEN_EMPTY = 0
    LATEST = 1


instances = []          # every Camera made (the test looks at the settings asked for)
FAIL = None             # set to a message: Camera() raises, as a missing sensor does


class Camera:
    def __init__(self, **kw):
        if FAIL:
            raise OSError(FAIL)
        self.kw = kw
        self.pixel_width = 64       # what the fake's picture is, whatever size was asked
        self.pixel_height = 48
        self.fb = bytearray(len(_JPEG) + 32)
        self.held = 0               # bytes of fb lent out (0: none)
        self.frames = 0             # frames captured
        self.freed = 0
        instances.append(self)

    def frame_available(self):
        return True

    def _give_back(self):
        if self.held:
            self.fb[:self.held] = b"\xee" * self.held
            self.held = 0
            self.freed += 1

    def capture(self):
        self._give_back()
        com = ("fakecam frame=%06d" % self.frames).encode()
        n = 0
        for part in (_JPEG[:2], b"\xff\xfe", bytes((0, len(com) + 2)), com, _JPEG[2:]):
            self.fb[n:n + len(part)] = part
            n += len(part)
        self.frames += 1
        self.held = n
        return memoryview(self.fb)[:n]

    def free_buffer(self):
        self._give_back()

    def deinit(self):
        self._give_back()
