# Which firmware this recorder runs (protocol/SPEC.md §13): the firmware manifest that
# `sealcam flash` writes to internal flash, fw.cbor, and the FIRMWARE record.
#
# fw.cbor = {1: version, 2: build time (ms since 1970), 3: {path on the board: H(file
# bytes)}, 4: board}, deterministic CBOR. Its firmware id is H(fw.cbor bytes as stored).
# At boot (device.boot) the recorder reads it, bounded, hashes every file it lists, and
# writes a FIRMWARE record into its chain unless the chain's last FIRMWARE record already
# says the same: so the evidence says which firmware signed it. No manifest: a null id
# and reason "unmanaged"; a manifest it cannot read: the id of its bytes and reason
# "bad_manifest"; files that differ from their manifest (changed over the REPL, a flash
# cut short), or an importable name in the code folder the manifest does not list (a
# module file or a package folder, which would shadow a listed module): reason
# "modified" and the paths that differ. Which FIRMWARE record the
# chain holds last is remembered in internal flash (fwrec.cbor = {1: seq, 2: H(record),
# 3: id or null, 4: log, 5: offset, 6: size, 7: H(the files' actual hashes) or null})
# and checked against the card with one read (the record must be there, byte for byte):
# a new, emptied or older card gets a new record.
import hashlib

from sealcamfw import cbor
from sealcamfw import flashkv
from sealcamfw import refusals
from sealcamfw.logread import log_path
from sealcamfw.storedefs import FIRMWARE, K_CHANGED, K_FILES, K_FIRMWARE, K_REASON, K_VERSION

MANIFEST = "fw.cbor"
PRODUCTION = "production"     # the production lock's flag file (main.py)
MEMORY = "fwrec.cbor"
FLASH_PREFIX = "/flash/"      # a manifest path there is a file of hal.flash
MAX_BYTES = 16384             # a manifest longer than this is not parsed (only hashed)
MAX_FILES = 256
NAME_MAX = 64
VERSION_MAX = 32
MAX_CODE = 4194304            # bytes of listed files hashed at boot at most
CHANGED_MAX = 8               # paths named in a "modified" record at most
LIST_MAX = 256                # entries of the code folder looked at, at most
DATA_DIRS = ("flash", "sd")   # the folders (mount points) beside the code on an ESP32 root

_WIN = 4096


def _hash_file(flash, name, size, budget=None):
    # H(file) read in windows: bounded RAM whatever the size; None past the budget
    if budget is not None and size > budget[0]:
        return None
    h = hashlib.sha256()
    off = 0
    while off < size:
        b = flash.read(name, off, _WIN if size - off > _WIN else size - off)
        if not b:
            break
        h.update(b)
        off += len(b)
    if budget is not None:
        budget[0] -= off
    return h.digest()


def _hash_path(path, budget):
    # a file outside /flash (an ESP32 keeps its code at the root of its file system):
    # only on the board itself (MicroPython), never a host file of the simulator
    import sys
    if sys.implementation.name != "micropython":
        return None
    import os
    try:
        size = os.stat(path)[6]
    except OSError:
        return None
    if size > budget[0]:
        return None
    h = hashlib.sha256()
    buf = bytearray(512)
    mv = memoryview(buf)
    n = 0
    try:
        with open(path, "rb") as f:
            while n < size:
                k = f.readinto(buf)
                if not k:
                    break
                h.update(mv[:k])
                n += k
    except OSError:
        return None
    budget[0] -= n
    return h.digest()


def file_hash(flash, path, budget):
    """H(bytes) of a manifest path on this board, or None (missing, unreadable, or past
    the budget of bytes hashed at boot)."""
    if path.startswith(FLASH_PREFIX):
        rel = path[len(FLASH_PREFIX):]
        size = flash.size(rel)
        return _hash_file(flash, rel, size, budget) if size >= 0 else None
    return _hash_path(path, budget)


def _code_dir(files):
    # the folder the manifest installs the code in: main.py's (else the first path's)
    paths = sorted(files)
    for p in paths:
        if p.endswith("/main.py"):
            return p[:-7]
    p = paths[0]
    return p[:p.rfind("/") + 1]


def _entries(flash, folder):
    # (name, is a folder) of the code folder, at most LIST_MAX + 1 of them: one entry past
    # the cap says "too many"; the host folder of the simulator only through hal.flash
    import os
    if folder.startswith(FLASH_PREFIX):
        path = getattr(flash, "root", None)
        if path and folder != FLASH_PREFIX:
            path = path.rstrip("/") + "/" + folder[len(FLASH_PREFIX):]
    else:
        import sys
        path = folder if sys.implementation.name == "micropython" else None
    if not path:
        return []
    out = []
    try:
        if hasattr(os, "ilistdir"):
            it = os.ilistdir(path)
        else:
            it = ((n, None) for n in os.listdir(path))
        for e in it:
            name, kind = e[0], e[1]
            if kind is None:
                try:
                    kind = os.stat(path.rstrip("/") + "/" + name)[0]
                except OSError:
                    kind = 0
            out.append((name, kind & 0x4000 != 0))
            if len(out) > LIST_MAX:
                break
    except OSError:
        return []
    return out


def unlisted(flash, files):
    """The importable names of the code folder, and of the package folders in its lib/
    (lib/sealcamfw/), that the manifest does not list (SPEC §13.1): a module file (.py,
    .mpy) or a folder (a package; MicroPython imports it before the .mpy of the same name)
    other than the data folders and the folders of listed files. At most CHANGED_MAX
    paths; bounded: LIST_MAX entries a folder are looked at."""
    code = _code_dir(files)
    folders = [code]
    for p in sorted(files):     # the package folders holding listed files (a few)
        if p.startswith(code + "lib/"):
            d = p[:p.rfind("/") + 1]
            if d not in folders:
                folders.append(d)
    out = []
    for folder in folders:
        _unlisted_in(flash, files, folder, out)
    return out[:CHANGED_MAX]


def _unlisted_in(flash, files, folder, out):
    dirs = {}
    for p in files:
        if p.startswith(folder):
            rest = p[len(folder):]
            if "/" in rest:
                dirs[rest[:rest.find("/")]] = True
    if len(out) >= CHANGED_MAX:
        return
    ents = _entries(flash, folder)
    if len(ents) > LIST_MAX:
        out.append(folder + "...")      # more entries than looked at: not what was flashed
        ents = ents[:LIST_MAX]
    for name, isdir in ents:
        if len(out) >= CHANGED_MAX:
            break
        if isdir:
            if name in dirs or (folder == "/" and name in DATA_DIRS):
                continue
        elif not (name.endswith(".py") or name.endswith(".mpy")) or folder + name in files:
            continue
        p = folder + name + ("/" if isdir else "")
        out.append(p if _path_ok(p.rstrip("/") or "/x") else folder + "?")


def _path_ok(p):
    return type(p) is str and 1 < len(p) <= NAME_MAX and p[0] == "/" and \
        not refusals.has_control(p) and "/../" not in p + "/" and "//" not in p


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
        if not _path_ok(k):
            return "a file path is not absolute, of 2..%d printable characters" % NAME_MAX
        if type(h) is not bytes or len(h) != 32:
            return "the hash of %s is not 32 bytes" % k
    return None


def read(flash):
    """(id, version, file count, reason, changed, code) of the firmware on this flash: id
    H(fw.cbor) or None when there is no manifest; version and count None unless the
    manifest is good; reason None (good: every file as listed), "unmanaged" (none),
    "bad_manifest" or "modified"; changed: the paths that differ (at most CHANGED_MAX);
    code: H of the listed files' actual hashes when modified, else None."""
    size = flash.size(MANIFEST)
    if size <= 0:
        return None, None, None, "unmanaged", None, None
    if size > MAX_BYTES:
        return _hash_file(flash, MANIFEST, size), None, None, "bad_manifest", None, None
    data = bytes(flash.read(MANIFEST, 0, size))
    fid = hashlib.sha256(data).digest()
    try:
        m = cbor.loads(data)
    except Exception:
        return fid, None, None, "bad_manifest", None, None
    if check(m) is not None:
        return fid, None, None, "bad_manifest", None, None
    files = m[3]
    budget = [MAX_CODE]
    changed = []
    code = hashlib.sha256()
    for p in sorted(files):
        h = file_hash(flash, p, budget)
        code.update(h or bytes(32))
        if h != files[p]:
            changed.append(p)
    # code the manifest does not list shadows what it does (workflow.py or a workflow/
    # package before workflow.mpy): the firmware is modified as much as by a changed file
    for p in unlisted(flash, files):
        changed.append(p)
        code.update(hashlib.sha256(p.encode()).digest())
        if not p.endswith("/") and not p.endswith("..."):
            code.update(file_hash(flash, p, budget) or bytes(32))
    if changed:
        return fid, m[1], len(files), "modified", changed[:CHANGED_MAX], code.digest()
    return fid, m[1], len(files), None, None, None


def locked(flash):
    """True if the board is production-locked (the flag file /flash/production)."""
    return flash.size(PRODUCTION) >= 0


def _recorded(s, flash, fid, code):
    # does the chain's last FIRMWARE record (remembered in flash, found on the card where
    # it was written: one read, whatever the chain's length) say the same?
    mem = flashkv.read(flash, MEMORY)
    if type(mem) is not dict or mem.get(3, 0) != fid or mem.get(7) != code:
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
    the chain's last one says the same. Returns its seq, or None (none written: the same
    firmware, or a card the store writes nothing to)."""
    fid, version, count, reason, changed, code = info
    if s.foreign or s.card_error or _recorded(s, flash, fid, code):
        return None
    fields = {K_FIRMWARE: fid}
    if version is not None:
        fields[K_VERSION] = version
        fields[K_FILES] = count
    if reason is not None:
        fields[K_REASON] = reason
    if changed:
        fields[K_CHANGED] = changed
    rec = s.record(FIRMWARE, fields)
    seq = s.seq - 1
    try:
        flashkv.write(flash, MEMORY, {1: seq, 2: hashlib.sha256(rec).digest(), 3: fid,
                                      4: s.log_name, 5: s.log_off - len(rec), 6: len(rec),
                                      7: code})
    except OSError:
        pass        # the record stands; the next boot writes another (never too few)
    return seq
