"""argparse value types shared by the sealcam verbs (and `sim serve`): each names the
value it could not take; and the arguments of the verbs that talk to a docked recorder."""
import argparse
import math


def _number(conv, word, ok, rule):
    def parse(s):
        try:
            x = conv(s)
        except ValueError:
            raise argparse.ArgumentTypeError("not %s: %r" % (word, s)) from None
        if not ok(x):
            raise argparse.ArgumentTypeError("must be %s: %r" % (rule, s))
        return x
    return parse


integer = _number(int, "an integer", lambda x: True, "")
positive_int = _number(int, "an integer", lambda x: x > 0, "> 0")
positive_float = _number(float, "a number", lambda x: math.isfinite(x) and x > 0,
                         "a finite number > 0")
nonneg_float = _number(float, "a number", lambda x: math.isfinite(x) and x >= 0,
                       "a finite number >= 0")
#: a link timeout: a wait of more than an hour is not a timeout (and inf is no time_t)
TIMEOUT_MAX = 3600.0
timeout = _number(float, "a number", lambda x: math.isfinite(x) and 0 < x <= TIMEOUT_MAX,
                  "> 0 and at most %d seconds" % TIMEOUT_MAX)


def add_runtime_fs(p):
    """--runtime and --fs of the virtual recorder (`sim record`, `sim serve`)."""
    p.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython",
                   help="run the firmware on CPython or on the MicroPython VM "
                        "(default: %(default)s)")
    p.add_argument("--fs", choices=("littlefs", "fat"), default="littlefs",
                   help="filesystem semantics of the virtual SD card (default: %(default)s)")


# ---- arguments every verb that talks to a docked recorder takes (offload, dock, checkout)

def add_port(p):
    p.add_argument("--port", required=True, metavar="PORT",
                   help="the recorder's serial port (/dev/ttyACM0, or the pty printed by "
                        "`sealcam sim serve`)")


def add_port_archive(p):
    add_port(p)
    p.add_argument("--archive", required=True, metavar="DIR", help="the station archive")


def add_timeout_json(p):
    p.add_argument("--timeout", type=timeout, default=2.0, metavar="S",
                   help="seconds of silence before a request is sent again "
                        "(default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def add_progress(p, what="a progress bar"):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show %s on stderr (default: when it is a TTY)" % what)
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="never show a progress bar")
