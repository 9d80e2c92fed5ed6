"""Bounded helpers of the media verifier (host_tools.verify_media): a spool of 32-byte
entries (chunk hashes or index entries) with the running chain root at given counts, and
runs of chunk numbers that a message names without one entry per chunk."""
from __future__ import annotations

import tempfile

from . import records as R
from .records import ZERO

__all__ = ["_Spool", "_Runs", "_SPOOL_STEP", "_SPOOL_RAM"]

_SPOOL_STEP = 1 << 20      # bytes of hashes (32 a chunk) handled at a time
_SPOOL_RAM = 4 << 20       # a spool stays in memory up to this, then goes to a temp file


class _Spool:
    """32-byte entries (chunk hashes or index entries) in order, in a spooled temporary
    file: the count, and the running chain root at each of the given chunk counts."""

    def __init__(self, counts):
        self.f = None
        self.n = 0
        self.counts = counts
        self.r = ZERO
        self.roots = {0: ZERO}

    def add(self, b):
        if not b:
            return
        if self.f is None:
            self.f = tempfile.SpooledTemporaryFile(max_size=_SPOOL_RAM)
        self.f.write(b)
        r, n, counts, roots = self.r, self.n, self.counts, self.roots
        for k in range(0, len(b), 32):
            r = R.H(r + b[k:k + 32])
            n += 1
            if n in counts:
                roots[n] = r
        self.r, self.n = r, n

    def rewind(self):
        if self.f is not None:
            self.f.seek(0)

    def read(self, entries):
        if self.f is None or entries <= 0:
            return b""
        return self.f.read(32 * entries)

    def close(self):
        if self.f is not None:
            self.f.close()
            self.f = None


class _Runs:
    """Chunk numbers added in increasing order: the first, how many, and the first few runs
    (what a message names), never one entry per chunk."""

    def __init__(self):
        self.count = 0
        self.runs = []
        self.more = False

    def add(self, i):
        self.count += 1
        if self.runs and self.runs[-1][1] + 1 == i:
            self.runs[-1][1] = i
        elif len(self.runs) < 10:
            self.runs.append([i, i])
        else:
            self.more = True

    def __len__(self):
        return self.count

    def __getitem__(self, k):
        if k != 0 or not self.runs:
            raise IndexError(k)
        return self.runs[0][0]

    def text(self, skip_first=False, most=8):
        """As verify_report.ranges of the numbers (without the first if skip_first)."""
        runs = [list(x) for x in self.runs]
        if skip_first and runs:
            if runs[0][0] == runs[0][1]:
                runs.pop(0)
            else:
                runs[0][0] += 1
        out = [str(a) if a == b else "%d-%d" % (a, b) for a, b in runs]
        if len(out) > most or self.more:
            out = out[:most] + ["…"]
        return ",".join(out)
