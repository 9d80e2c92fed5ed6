# Which firmware this recorder runs (protocol/SPEC.md §13): the firmware manifest that
# `sealcam flash` writes to internal flash, fw.cbor, and the FIRMWARE record.
#
# fw.cbor = {1: version, 2: build time (ms since 1970), 3: {file name: H(file bytes)},
# 4: board}, deterministic CBOR. Its firmware id is H(fw.cbor bytes as stored). At boot
# (device.boot) the recorder reads it, bounded, and writes a FIRMWARE record into its
# chain unless the chain's last FIRMWARE record already names the same id: so the
# evidence says which firmware signed it. No manifest: one FIRMWARE record with a null id
# and reason "unmanaged"; a manifest it cannot read: the id of its bytes and reason
# "bad_manifest". Which FIRMWARE record the chain holds last is remembered in internal
# flash (fwrec.cbor = {1: seq, 2: H(record), 3: id or null, 4: log, 5: offset, 6: size})
# and checked against the card with one read (the record must be there, byte for byte): a
# new, emptied or older card gets a new record.
import hashlib

import cbor
import flashkv
import refusals
from logread import log_path
from storedefs import FIRMWARE, K_FILES, K_FIRMWARE, K_REASON, K_VERSION

MANIFEST = "fw.cbor"
PRODUCTION = "production"     # the production lock's flag file (main.py)
MEMORY = "fwrec.cbor"
MAX_BYTES = 16384             # a manifest longer than this is not parsed (only hashed)
MAX_FILES = 256
NAME_MAX = 64
VERSION_MAX = 32

_WIN = 4096


def _hash_file(flash, name, size):
    # H(file) read in windows: bounded RAM whatever the size
    h = hashlib.sha256()
    off = 0
    while off < size:
        b = flash.read(name, off, _WIN if size - off > _WIN else size - off)
        if not b:
            break
        h.update(b)
        off += len(b)
    return h.digest()


def check(m):
    """Why m (a decoded manifest) is not one (SPEC §13.1), or None."""
    if type(m) is not dict or len(m) != 4:
        return "not a map of keys 1..4"
    v, t, files, board = m.get(1), m.get(2), m.get(3), m.get(4)
    if type(v) is not str or not 0 < len(v) <= VERSION_MAX or refusals.has_control(v):
        return "version (key 1) is not 1..%d printable characters" % VERSION_MAX
    if type(t) is not int or t < 0:
        return "build time (key 2) is not a uint"
    if type(board) is not str or not 0 < len(board) <= NAME_MAX or refusals.has_control(board):
        return "board (key 4) is not 1..%d printable characters" % NAME_MAX
    if type(files) is not dict or not 0 < len(files) <= MAX_FILES:
        return "files (key 3) is not a map of 1..%d files" % MAX_FILES
    for k in files:
        h = files[k]
        if type(k) is not str or not 0 < len(k) <= NAME_MAX or refusals.has_control(k):
            return "a file name is not 1..%d printable characters" % NAME_MAX
        if type(h) is not bytes or len(h) != 32:
            return "the hash of %s is not 32 bytes" % k
    return None


def read(flash):
    """(id, version, file count, reason) of the firmware on this flash: id H(fw.cbor) or
    None when there is no manifest; version and count None unless the manifest is good;
    reason None (good), "unmanaged" (none) or "bad_manifest"."""
    size = flash.size(MANIFEST)
    if size <= 0:
        return None, None, None, "unmanaged"
    if size > MAX_BYTES:
        return _hash_file(flash, MANIFEST, size), None, None, "bad_manifest"
    data = bytes(flash.read(MANIFEST, 0, size))
    fid = hashlib.sha256(data).digest()
    try:
        m = cbor.loads(data)
    except Exception:
        return fid, None, None, "bad_manifest"
    if check(m) is not None:
        return fid, None, None, "bad_manifest"
    return fid, m[1], len(m[3]), None


def locked(flash):
    """True if the board is production-locked (the flag file /flash/production)."""
    return flash.size(PRODUCTION) >= 0


def _recorded(s, flash, fid):
    # does the chain's last FIRMWARE record (remembered in flash, found on the card where
    # it was written: one read, whatever the chain's length) name fid?
    mem = flashkv.read(flash, MEMORY)
    if type(mem) is not dict or mem.get(3, 0) != fid:
        return False
    seq, h, log, off, size = mem.get(1), mem.get(2), mem.get(4), mem.get(5), mem.get(6)
    if type(seq) is not int or not 0 <= seq < s.seq or type(h) is not bytes \
            or log_path(log) is None or type(off) is not int or off < 0 \
            or type(size) is not int or not 0 < size <= 65536:
        return False
    try:
        rec = s.fs.read(log, off, size)
    except Exception:
        return False
    return len(rec) == size and hashlib.sha256(rec).digest() == h


def note(s, flash, info):
    """At boot, after the BOOT record: write a FIRMWARE record for info (read()) unless
    the chain's last one names the same firmware. Returns its seq, or None (none written:
    the same firmware, or a card the store writes nothing to)."""
    fid, version, count, reason = info
    if s.foreign or s.card_error or _recorded(s, flash, fid):
        return None
    fields = {K_FIRMWARE: fid}
    if reason is None:
        fields[K_VERSION] = version
        fields[K_FILES] = count
    else:
        fields[K_REASON] = reason
    rec = s.record(FIRMWARE, fields)
    seq = s.seq - 1
    try:
        flashkv.write(flash, MEMORY, {1: seq, 2: hashlib.sha256(rec).digest(), 3: fid,
                                      4: s.log_name, 5: s.log_off - len(rec), 6: len(rec)})
    except OSError:
        pass        # the record stands; the next boot writes another (never too few)
    return seq
