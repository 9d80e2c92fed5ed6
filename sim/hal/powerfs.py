# Storage model with power cuts, for the virtual recorder. Implements the firmware's
# storage HAL (see firmware/sealcamfw/hal.py) over a real folder that holds only what is durable.
#
# What reaches the folder is what survives a cut:
#   - write() only buffers in RAM; flush() (and close()) makes the buffered bytes durable.
#   - littlefs model: replace(src, dst) is one atomic rename; a new file appears only at
#     its first flush.
#   - FAT model: replace(src, dst) onto an existing dst is remove-then-rename (two steps,
#     a cut between them leaves dst missing); a new file's directory entry is durable at
#     creation (empty).
# Every write, flush, remove and rename is a numbered step. With cut_at=k, step k raises
# PowerCut before it takes effect and every later call raises PowerCut too: RAM is lost.
# With fail_at=k, step k alone fails with OSError(EIO) and nothing of it happens.
# Killing a process is not a power cut (the kernel keeps what was written); this is.
# Runs on MicroPython and CPython.
import os

from sealcamfw.hal import PosixFS, _exists

LITTLEFS = "littlefs"
FAT = "fat"
ENOSPC = 28


class PowerCut(Exception):
    pass


class _File:
    def __init__(self, fs, path):
        self.fs = fs
        self.path = path
        self.pending = []
        self.npending = 0
        self.closed = False

    def write(self, buf):
        fs = self.fs
        fs._step("write", self.path)
        if self.closed:
            raise OSError(9)  # EBADF
        n = len(buf)
        if fs.capacity is not None and fs.used + fs.reserved + n > fs.capacity:
            raise OSError(ENOSPC)
        self.pending.append(bytes(buf))
        self.npending += n
        fs.reserved += n
        return n

    def flush(self):
        fs = self.fs
        fs._step("flush", self.path)
        if self.pending:
            with open(fs._p(self.path), "ab") as f:
                for part in self.pending:
                    f.write(part)
            fs.used += self.npending
            fs.reserved -= self.npending
            self.pending = []
            self.npending = 0
        elif not _exists(fs._p(self.path)):
            open(fs._p(self.path), "ab").close()

    def close(self):
        if not self.closed:
            if self.pending or not _exists(self.fs._p(self.path)):
                self.flush()
            self.closed = True


class PowerFS(PosixFS):
    # paths, size(), exists() and listdir() are the firmware's PosixFS (firmware/sealcamfw/hal.py)
    def __init__(self, root, model=LITTLEFS, cut_at=None, capacity=None):
        if model not in (LITTLEFS, FAT):
            raise ValueError("unknown storage model: %s" % model)
        self.root = root.rstrip("/")
        self.model = model
        self.cut_at = cut_at
        self.fail_at = None        # set: one OSError(EIO) at that step, then the medium works
        self.capacity = capacity
        self.steps = 0
        self.dead = False
        self.last_step = None
        self.reserved = 0
        self.used = self._du(self.root)
        self.bytes_read = 0    # what boot reads, to show recovery does not scan history

    def _du(self, path):
        total = 0
        if not _exists(path):
            return 0
        for name in os.listdir(path):
            p = path + "/" + name
            st = os.stat(p)
            if st[0] & 0x4000:
                total += self._du(p)
            else:
                total += st[6]
        return total

    def _step(self, kind, path):
        if self.dead:
            raise PowerCut("power is off")
        if self.fail_at is not None and self.steps >= self.fail_at:
            self.fail_at = None     # one transient I/O error: the step does not happen
            self.steps += 1
            raise OSError(5, "I/O error at step %d (%s %s)" % (self.steps - 1, kind, path))
        if self.cut_at is not None and self.steps >= self.cut_at:
            self.dead = True
            self.last_step = (self.steps, kind, path)
            raise PowerCut("power cut at step %d (%s %s)" % (self.steps, kind, path))
        self.steps += 1

    # --- the storage HAL ---
    def open_append(self, path):
        if self.dead:
            raise PowerCut("power is off")
        if self.model == FAT and not _exists(self._p(path)):
            open(self._p(path), "ab").close()
        return _File(self, path)

    def create(self, path):
        """A new empty scratch file (only for head.new), replacing any earlier one."""
        if self.dead:
            raise PowerCut("power is off")
        p = self._p(path)
        if _exists(p):
            self._step("remove", path)
            self.used -= os.stat(p)[6]
            os.remove(p)
        return self.open_append(path)

    def replace(self, src, dst):
        s, d = self._p(src), self._p(dst)
        if self.model == FAT and _exists(d):
            self._step("remove", dst)
            self.used -= os.stat(d)[6]
            os.remove(d)
        elif _exists(d):
            self.used -= os.stat(d)[6]
        self._step("rename", src)
        os.rename(s, d)

    def power_cycle(self):
        """Power comes back after a cut (or a pulled battery): what was only in RAM is
        gone; the medium works again."""
        self.dead = False
        self.cut_at = None
        self.reserved = 0

    def release(self, path):
        """Remove a file (released media, SPEC §10.8): one step."""
        p = self._p(path)
        self._step("remove", path)
        self.used -= os.stat(p)[6]
        os.remove(p)

    def read(self, path, offset=0, n=-1):
        if self.dead:
            raise PowerCut("power is off")
        data = PosixFS.read(self, path, offset, n)
        self.bytes_read += len(data)
        return data

    def readinto(self, path, offset, buf):
        if self.dead:
            raise PowerCut("power is off")
        n = PosixFS.readinto(self, path, offset, buf)
        self.bytes_read += n
        return n

    def mkdir(self, path):
        if self.dead:
            raise PowerCut("power is off")
        PosixFS.mkdir(self, path)

    def free(self):
        if self.capacity is None:
            return 1 << 40
        return self.capacity - self.used - self.reserved

    def total(self):
        """Size of the medium in bytes (used + free)."""
        if self.capacity is None:
            return self.used + self.reserved + (1 << 40)
        return self.capacity
