"""Several dock-link requests in flight (SPEC §8.5), for host_tools/link.py's Client."""
from __future__ import annotations

import time
from collections import OrderedDict, deque

from .link import _NOT_IDEMPOTENT, _SLOW, OP_NAMES, LinkTimeout, _Pending

__all__ = ["Pipeline"]


class Pipeline:
    """Several requests in flight (SPEC §8.5). submit() queues a request; next() sends
    queued requests while the window has room and returns the next answer as (key,
    response map). Responses are matched by id; a response to a later send means earlier
    sends were lost (the device answers in order) and they are sent again at once; after
    ``timeout`` s of silence everything outstanding is sent again. The oldest outstanding
    request must be answered within its deadline (Client.budget) of the previous answer:
    garbage or foreign frames that keep bytes flowing do not extend it."""

    def __init__(self, client, window=8):
        self.c = client
        self.t_progress = None       # when the last answer came (or the first send)
        self.window = max(1, int(window))
        self.queue = deque()
        self.out = OrderedDict()     # id -> _Pending (every id of every send)
        self.live = []               # _Pending outstanding, in send order

    @property
    def queued(self):
        return len(self.queue) + len(self.live)

    @property
    def busy(self):
        return bool(self.queue or self.live)

    def submit(self, key, op, args):
        if op in _NOT_IDEMPOTENT:
            raise ValueError("RECEIPT and TIME_SET are not pipelined")
        self.queue.append(_Pending(key, op, args))

    def _send(self, p):
        rid = self.c._send(p)
        self.out[rid] = p

    def _resend(self, p, why):
        # a frame found lost because a later one was answered costs no waiting: the link
        # works, so it gets a larger budget than silences (timeouts)
        if why == "timeout":
            p.stalls += 1
        if p.stalls > self.c.retries or p.tries > 4 * self.c.retries + 4:
            raise LinkTimeout("no answer from the recorder on %s to %s after %d attempts (%s)"
                              % (self.c.port, OP_NAMES.get(p.op, p.op), p.tries, why))
        self.c.resent += 1
        self.live.remove(p)
        self.live.append(p)
        self._send(p)

    def next(self):
        c = self.c
        while True:
            while self.queue and len(self.live) < self.window:
                p = self.queue.popleft()
                if not self.live:
                    self.t_progress = time.monotonic()
                self.live.append(p)
                self._send(p)
            if not self.live:
                raise IndexError("nothing outstanding")
            timeout = max(c.slow_timeout if p.op in _SLOW else c.timeout
                          for p in self.live)
            hard = self.t_progress + max(c.budget(p.op) for p in self.live)
            if c.op_deadline is not None:
                hard = min(hard, c.op_deadline)
            resp = c._recv(timeout, hard)
            if resp is None:
                c.timeouts += 1
                c._check_op_deadline(self.live[0].op)
                if time.monotonic() >= hard:
                    p = self.live[0]
                    raise LinkTimeout("no answer from the recorder on %s to %s within its "
                                      "deadline of %.0f s (%d attempts)" % (
                                          c.port, OP_NAMES.get(p.op, p.op), c.budget(p.op),
                                          p.tries))
                for p in list(self.live):
                    self._resend(p, "timeout")
                continue
            p = self.out.get(resp[0])
            if p is None or p not in self.live:
                continue             # an answer to a send already answered
            self.live.remove(p)
            self.t_progress = time.monotonic()
            for rid in p.ids:
                self.out.pop(rid, None)
            # the device answers in order and ids grow with sends: a request whose latest
            # send came before the one answered was lost (or its answer was)
            for q in [q for q in self.live if q.ids[-1] < resp[0]]:
                self._resend(q, "lost frame")
            return p.key, resp
