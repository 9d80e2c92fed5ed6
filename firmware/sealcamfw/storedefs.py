# What every module of the evidence store shares (protocol/SPEC.md §3): the record types,
# the body keys and flags, the store's errors and the hash helper. store.py names them all
# again (st.REC_START, st.StoreFull, ...), so other modules import only `store`.
import hashlib

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# record types (SPEC §3.2)
BOOT = const(1)
REC_START = const(2)
CHECKPOINT = const(3)
SEGMENT = const(4)
REC_STOP = const(5)
REFUSAL = const(6)
RECOVERY = const(7)
RECEIPT = const(8)
TIME_SET = const(9)
INTERRUPTION = const(10)
VOICE_ANNOTATION = const(11)
ANNOTATION_MISSING = const(12)
MARK = const(13)
ASSIGN = const(14)
SELF_CHECK = const(15)
RELEASE = const(16)
STORE_ALERT = const(17)
FIRMWARE = const(18)

# body keys (SPEC §3.1)
K_TYPE = const(0)
K_SEQ = const(1)
K_PREV = const(2)
K_BOOT = const(6)
K_SEGMENT = const(10)
K_MEDIA = const(11)
K_CHUNK = const(12)
K_LENGTH = const(13)
K_CHUNKS = const(14)
K_ROOT = const(15)
K_START = const(16)
K_REASON = const(17)
K_STATION = const(24)
K_COVERED = const(25)
K_RECEIPT = const(26)
K_NUMBER = const(27)
K_OLD = const(28)
K_NEW = const(29)
K_UNIT = const(30)
K_REFERS = const(31)
K_SPAN = const(32)
K_KIND = const(33)
K_AT = const(34)
K_DURATION = const(35)
K_READY = const(36)
K_REASONS = const(37)
K_FACTS = const(38)
K_DRIFT = const(39)
K_SINCE = const(40)
K_PREROLL = const(41)
K_PHRASE = const(42)
K_ERROR = const(43)
K_FIRMWARE = const(45)
K_VERSION = const(46)
K_FILES = const(47)
K_CHANGED = const(48)

# flags (SPEC §3.4)
F_NO_OFFICER = const(1)
F_RECOVERED = const(2)
F_MISMATCH = const(4)
F_DRIFT = const(8)

ZERO32 = bytes(32)

# the signed head on the card (SPEC §5.2): a copy of the last record, replaced whole
HEAD = "head.cbor"
HEAD_NEW = "head.new"


class StoreFull(OSError):
    pass


class CardError(OSError):
    """Nothing is written to this card: boot could not open its store (SPEC §5.4)."""


class ForeignCard(CardError):
    """The card holds another device's store: nothing is written to it (SPEC §5.2)."""


class Refused(Exception):
    """A delete/modify request: always refused, and recorded (seq of the REFUSAL record),
    or counted for the next REFUSAL record (seq None), SPEC §5.3."""

    def __init__(self, msg, seq=None):
        super().__init__(msg)
        self.msg = msg
        self.seq = seq


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()
