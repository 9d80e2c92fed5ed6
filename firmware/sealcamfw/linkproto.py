# The dock link's vocabulary (protocol/SPEC.md §7-§8): op numbers, status codes, the
# device's limits, LinkError, and the checks of a request's arguments. Every link module
# (link.py, linkdock.py, linkrec.py, receipts.py) takes its names from here; link.py
# names them all again (link.HELLO, link.LinkError, ...).

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

HELLO = const(1)
AUTH = const(2)
LIST = const(3)
GET = const(4)
READ = const(5)
RECEIPT = const(6)
TIME_SET = const(7)
DELETE = const(8)
FORMAT = const(9)
WRITE = const(10)
ASSIGN = const(11)
STATUS = const(12)
CHECK = const(13)
EXPOSE = const(14)                # the card as a read-only disk (SPEC §8.8, linkdock.py)
OP_NAMES = ("?", "HELLO", "AUTH", "LIST", "GET", "READ", "RECEIPT", "TIME_SET", "DELETE",
            "FORMAT", "WRITE", "ASSIGN", "STATUS", "CHECK", "EXPOSE")

OK = const(0)
BAD_REQUEST = const(400)
UNAUTHENTICATED = const(401)
FORBIDDEN = const(403)
NOT_FOUND = const(404)
REFUSED = const(405)
REPLAY = const(409)
TOO_LARGE = const(413)
LOCKED = const(423)               # the card is exposed read-only: nothing is written (§8.8)
DEVICE_ERROR = const(500)

MAX_FRAME_LIMIT = const(1048576)  # the most the device ever offers (1 MiB)
LIST_MAX = const(1000)            # entries per LIST answer (RAM bound)
RECEIPT_MAX = const(4096)         # a receipt is ~250 bytes; anything far larger is refused
TARGET_MAX = const(64)            # characters of a refused target kept in the REFUSAL record
NAME_MAX = const(64)              # characters of an officer id or unit (ASSIGN)
MESSAGE_MAX = const(200)
STALL_MS = const(500)             # a partial frame this long without a byte is given up
PROTOCOL = const(2)               # protocol version (HELLO key 12)


class LinkError(Exception):
    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status
        self.msg = msg


def kind(v):
    """The CBOR-ish name of a value's type, for messages."""
    if v is None:
        return "null"
    return type(v).__name__


def arg(args, k, op, what):
    if k not in args:
        raise LinkError(BAD_REQUEST, "%s: missing argument %d (%s)" % (op, k, what))
    return args[k]


def uint(args, k, op, what):
    v = arg(args, k, op, what)
    if type(v) is not int or v < 0:
        raise LinkError(BAD_REQUEST, "%s: argument %d (%s) must be an unsigned integer, not %s"
                        % (op, k, what, kind(v)))
    return v


def tstr(args, k, op, what):
    v = arg(args, k, op, what)
    if type(v) is not str:
        raise LinkError(BAD_REQUEST, "%s: argument %d (%s) must be a text string, not %s"
                        % (op, k, what, kind(v)))
    return v


def bstr(args, k, op, what, size=None):
    v = arg(args, k, op, what)
    if type(v) is not bytes:
        raise LinkError(BAD_REQUEST, "%s: argument %d (%s) must be a byte string, not %s"
                        % (op, k, what, kind(v)))
    if size is not None and len(v) != size:
        raise LinkError(BAD_REQUEST, "%s: argument %d (%s) must be %d bytes, not %d"
                        % (op, k, what, size, len(v)))
    return v
