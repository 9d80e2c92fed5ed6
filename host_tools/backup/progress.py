"""Progress of a backup or a restore: a tqdm bar on a terminal (as `sealcam offload` shows
it), nothing, or a callable (the desk's job page; `--json` lines on stderr)."""
from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Progress of a backup or restore: a tqdm bar on stderr when ``show`` is None and
    stderr is a terminal (as `sealcam offload` shows it), nothing when False, or a
    callable given {"phase", "done", "total", "bytes", "bytes_total"} at most 5 times a
    second."""
    EVERY = 0.2                 # seconds between two calls of a callable

    def __init__(self, show, desc):
        self.cb = show if callable(show) else None
        self.bar = None
        if show is None:
            show = sys.stderr.isatty()
        if show is True and self.cb is None:
            from tqdm import tqdm
            self.bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=desc, file=sys.stderr, dynamic_ncols=True, leave=True,
                            mininterval=0.2)
        self.state = {"phase": desc, "done": 0, "total": 0, "bytes": 0, "bytes_total": 0}
        self._last = 0.0

    def total(self, n, nbytes):
        self.state["total"] += n
        self.state["bytes_total"] += nbytes
        if self.bar is not None:
            self.bar.total = self.state["bytes_total"]
            self.bar.refresh()
        self._tell(True)

    def phase(self, name):
        self.state["phase"] = name
        if self.bar is not None:
            self.bar.set_description(name, refresh=False)
        self._tell(True)

    def bytes(self, n):
        self.state["bytes"] += n
        if self.bar is not None:
            self.bar.update(n)
        self._tell()

    def item(self):
        self.state["done"] += 1
        self._tell()

    def _tell(self, force=False):
        if self.cb is None:
            return
        now = time.monotonic()
        if force or now - self._last >= self.EVERY:
            self._last = now
            self.cb(dict(self.state))

    def close(self):
        self._tell(True)
        if self.bar is not None:
            self.bar.close()
            self.bar = None
