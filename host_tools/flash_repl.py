"""The board side of `sealcam flash` (host_tools/flash.py): its MicroPython raw REPL
through mpremote's SerialTransport, every command bounded (SPEC §13.3): an overall
deadline, an idle limit and a cap on the answer's bytes, so that a hostile board that
drip-feeds or floods bytes never holds the station. Strings the board gives are shown
escaped (records.printable)."""
from __future__ import annotations

import os
import time

from .link import PortError, _check_port

__all__ = ["Repl", "FlashError", "EXEC_DEADLINE", "EXEC_IDLE", "OUTPUT_MAX", "LIST_MAX"]

CHUNK = 1024                         # bytes per write over the raw REPL
EXEC_DEADLINE = 60.0                 # seconds one command on the board may take at most
EXEC_IDLE = 10.0                     # seconds the board may stay silent within one
OUTPUT_MAX = 1 << 20                 # bytes one command's answer may hold at most
LIST_MAX = 1024                      # entries of the code folder listed at most
EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_LINK, EXIT_INTERRUPTED = 0, 1, 3, 6, 130


class FlashError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def _text(s, n=120):
    """A board's string for a message: control and bidi characters escaped, cut."""
    from .records import printable
    t = printable(s)
    return t if len(t) <= n else t[:n] + "..."


def _hex_of(s):
    try:
        b = bytes.fromhex(s)
    except ValueError:
        return None
    return b if len(b) == 32 else None


# --------------------------------------------------------------------------- the board

def _port_ok(port):
    if not os.path.exists(port):
        raise FlashError(EXIT_USAGE, "no such port: %s (is the board plugged in? for the "
                         "virtual board, use the PORT line printed by `sealcam sim board`)"
                         % port)
    try:
        _check_port(port)
    except PortError as e:
        raise FlashError(EXIT_USAGE, str(e)) from None


class Repl:
    """The board's raw REPL through mpremote's SerialTransport."""

    def __init__(self, port, soft_reset=True, timeout=10):
        _port_ok(port)
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport
        self.port = port
        self.Error = TransportError
        try:
            # a read timeout: on a pty mpremote reads without waiting for input first, so
            # a board that never answers would block it forever
            self.t = SerialTransport(port, baudrate=115200, timeout=0.5)
        except TransportError as e:
            raise FlashError(EXIT_USAGE, "cannot open port %s: %s" % (port, e)) from None
        try:
            self.t.enter_raw_repl(soft_reset=soft_reset, timeout_overall=timeout)
        except Exception:
            self.close()
            raise FlashError(EXIT_LINK, "the board on %s gives no MicroPython REPL: it is "
                             "production-locked (unlock it with its bootloader: SPEC §13.3), "
                             "busy, or not a MicroPython board; check the port" % port) from None

    def close(self):
        try:
            self.t.close()
        except Exception:
            pass

    def _exec(self, code, what, deadline=None):
        """Run code in the raw REPL: its output. Bounded: the board must end its answer
        within ``deadline`` seconds, never stay silent EXEC_IDLE seconds, and answer at
        most OUTPUT_MAX bytes (a hostile board dripping or flooding bytes stops here)."""
        deadline = EXEC_DEADLINE if deadline is None else deadline
        try:
            self.t.exec_raw_no_follow(code)
            out, err = self._follow(what, deadline)
        except FlashError:
            raise
        except self.Error as e:
            out = str(getattr(e, "error_output", e)).strip().splitlines()
            raise FlashError(EXIT_LINK, "the board on %s failed to %s: %s" % (
                self.port, what, _text(out[-1] if out else e))) from None
        except Exception as e:       # the port went away
            raise FlashError(EXIT_LINK, "the link to %s broke while trying to %s (%s): run "
                             "sealcam flash again" % (self.port, what, _text(e))) from None
        if err:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            raise FlashError(EXIT_LINK, "the board on %s failed to %s: %s" % (
                self.port, what, _text(lines[-1] if lines else "an error")))
        return out

    def _follow(self, what, deadline):
        ser = self.t.serial
        t0 = last = time.monotonic()
        parts, k = [bytearray(), bytearray()], 0
        while True:
            now = time.monotonic()
            if now - t0 > deadline or now - last > EXEC_IDLE:
                raise FlashError(EXIT_LINK, "the board on %s did not finish trying to %s "
                                 "(%s): not a sealcam board, or a broken one; check the port "
                                 "and the board, then run sealcam flash again" % (
                                     self.port, what, "no end after %d s" % deadline
                                     if now - t0 > deadline else "silent for %d s"
                                     % EXEC_IDLE))
            # up to the next end mark, never past it: the prompt after the answer is the
            # next command's (mpremote reads it)
            b = ser.read_until(b"\x04", 65536)
            if not b:
                continue
            last = time.monotonic()
            if b.endswith(b"\x04"):
                parts[k] += b[:-1]
                k += 1
                if k == 2:
                    return bytes(parts[0]), bytes(parts[1])
            else:
                parts[k] += b
            if len(parts[0]) + len(parts[1]) > OUTPUT_MAX:
                raise FlashError(EXIT_LINK, "the board on %s answered more than %d bytes "
                                 "trying to %s: not a sealcam board, or a broken one; check "
                                 "it" % (self.port, OUTPUT_MAX, what))

    def entries(self, d):
        """[(name, is a folder)] of the board folder d (at most LIST_MAX + 1 entries;
        names as the board gives them, hex-encoded on the way)."""
        out = self._exec("import os,binascii\nn=0\ntry:\n for e in os.ilistdir(%r):\n"
                         "  print(binascii.hexlify(e[0].encode()).decode(),e[1])\n  n+=1\n"
                         "  if n>%d: break\nexcept OSError:\n pass\n" % (d, LIST_MAX),
                         "list %s" % d)
        res = []
        for ln in out.decode("ascii", "replace").splitlines()[:LIST_MAX + 1]:
            parts = ln.split()
            try:
                name = bytes.fromhex(parts[0]).decode("utf-8")
                kind = int(parts[1])
            except (IndexError, ValueError):
                continue
            res.append((name, bool(kind & 0x4000)))
        return res

    def rmtree(self, d):
        """Remove the board folder d and all it holds (iteratively, at most LIST_MAX
        entries: a folder holding more is left and named)."""
        out = self._exec(
            "import os\nst=[%r]\nal=[]\nn=0\nwhile st and n<%d:\n p=st.pop()\n al.append(p)\n"
            " for e in os.ilistdir(p):\n  n+=1\n  q=p+'/'+e[0]\n  if e[1]&0x4000: st.append(q)\n"
            "  else: os.remove(q)\nfor p in reversed(al):\n try:\n  os.rmdir(p)\n"
            " except OSError:\n  print('left',p)\n" % (d, LIST_MAX), "remove the folder %s" % d)
        if b"left" in out:
            raise FlashError(EXIT_MISMATCH, "the folder %s on the board could not be removed "
                             "(it holds more than %d entries, or a file is in use): it would "
                             "shadow the firmware's modules; remove it over the REPL "
                             "(mpremote rm -r), then flash again" % (_text(d), LIST_MAX))

    def listdir(self, d):
        out = self._exec("import os\ntry:\n for n in os.listdir(%r): print(n)\n"
                         "except OSError:\n pass\n" % d, "list %s" % d)
        return [ln.strip() for ln in out.decode("utf-8", "replace").splitlines() if ln.strip()]

    def mkdir(self, d):
        if d in ("", "/"):
            return
        self._exec("import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass\n" % d,
                   "make the folder %s" % d)

    def remove(self, path):
        self._exec("import os\ntry:\n os.remove(%r)\nexcept OSError:\n pass\n" % path,
                   "remove %s" % path)

    def write(self, path, data):
        self._exec("f=open(%r,'wb')\nw=f.write" % path, "open %s for writing" % path)
        for i in range(0, len(data), CHUNK):
            self._exec("w(%r)" % bytes(data[i:i + CHUNK]), "write %s" % path)
        self._exec("f.close()", "close %s" % path)

    def sha256(self, paths):
        """{path: hash or None (missing)} computed on the board (hashlib), one exec."""
        code = ("import hashlib,binascii\nb=bytearray(512)\nm=memoryview(b)\n"
                "for p in %r:\n try:\n  h=hashlib.sha256()\n  f=open(p,'rb')\n"
                "  while True:\n   n=f.readinto(b)\n   if not n: break\n   h.update(m[:n])\n"
                "  f.close()\n  print(p,binascii.hexlify(h.digest()).decode())\n"
                " except OSError:\n  print(p,'-')\n" % (list(paths),))
        out = self._exec(code, "hash its files").decode("utf-8", "replace")
        got = {}
        for ln in out.splitlines()[:len(paths) + 8]:
            parts = ln.strip().split(" ")
            if len(parts) == 2 and parts[0] in paths:
                got[parts[0]] = _hex_of(parts[1])
        return got

    def read(self, path, limit):
        """The first `limit` bytes of path on the board, or None if there is no such file."""
        code = ("import binascii\ntry:\n f=open(%r,'rb')\n d=f.read(%d)\n f.close()\n"
                " print(binascii.hexlify(d).decode())\nexcept OSError:\n print('-')\n"
                % (path, limit))
        out = self._exec(code, "read %s" % path).decode("ascii", "replace").strip()
        if out == "-":
            return None
        try:
            return bytes.fromhex(out)
        except ValueError:
            raise FlashError(EXIT_LINK, "the board on %s answered garbage reading %s"
                             % (self.port, path)) from None

    def reset(self):
        try:
            self.t.exec_raw_no_follow("import machine\nmachine.reset()")
        except Exception:
            pass
