"""The archive's objects: each must hash to its name and be read-only (SPEC §9 step 6).
Files are opened without following links, regular files only, read in 4 MiB blocks into a
reused buffer (hashlib releases the GIL), by a thread per core but one."""
from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor

from ..verify import OK

__all__ = ["hash_file", "list_objects", "hash_objects", "object_caps"]

READ = 4 << 20


def _unfit(st):
    """Why a file with this stat is not hashed (not regular, or sparse), or None."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    on_disk = getattr(st, "st_blocks", None)
    if on_disk is not None and st.st_size - on_disk * 512 > SPARSE_SLACK:
        return "a sparse file (%d bytes, %d of them on disk): the station never writes " \
               "one; not hashed" % (st.st_size, on_disk * 512)
    return None


def hash_file(path):
    """(hex digest, None) or (None, why) for a regular file, never following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        return None, "cannot be opened (%s)" % (e.strerror or e)
    try:
        st = os.fstat(fd)
        why = _unfit(st)
        if why is not None:
            return None, why
        hs = hashlib.sha256()
        buf = bytearray(READ)
        mv = memoryview(buf)
        left = st.st_size
        while left > 0:
            n = os.readv(fd, [mv[:min(READ, left)]])
            if n <= 0:
                break
            hs.update(mv[:n])
            left -= n
        if left:
            return None, "shorter than its size"
        return hs.hexdigest(), None
    finally:
        os.close(fd)


def list_objects(objects_dir):
    """[(path, name)] of every object (temporary files of an interrupted write aside)."""
    out = []
    for dirpath, dirs, files in os.walk(objects_dir):
        dirs.sort()
        for fn in sorted(files):
            if not fn.startswith(".tmp-"):
                out.append((os.path.join(dirpath, fn), os.path.basename(dirpath) + fn))
    return out


SPARSE_SLACK = 1 << 20          # bytes a file may hold beyond what is allocated to it
SMALL_MAX = 64 << 20            # a view file other than media and index: log file, head
OTHER_MAX = 64 << 20            # an object the log names nowhere, with no segment to bound it


def object_caps(st):
    """{object name (hex): most bytes it may hold} from the replayed station log ``st``:
    a media file at most its segment's signed length, an index 32 bytes a signed chunk,
    any other view file SMALL_MAX; None (the key) for an object the log names nowhere:
    at most the largest signed segment (an older prefix of one), or OTHER_MAX."""
    caps, biggest = {}, OTHER_MAX
    segs = getattr(st, "expected_segments", {}) or {}
    for d, objs in st.objects.items():
        mine = segs.get(d, {})
        for path, sha in objs.items():
            if not isinstance(sha, (bytes, bytearray)) or not isinstance(path, str):
                continue
            cap = SMALL_MAX
            if path.startswith("m/"):
                try:
                    seg = mine.get(int(path[2:].split(".", 1)[0]))
                except ValueError:
                    seg = None
                if seg is not None:     # media: its signed length; index: 32 B a chunk
                    cap = max(32 * seg["chunks"], seg["length"])
                    biggest = max(biggest, cap)
            name = bytes(sha).hex()
            caps[name] = max(cap, caps.get(name, 0))
    caps[None] = biggest
    return caps


def _sealed_head(p):
    """The first bytes of the file ``p`` if it is an object sealed at rest, else None."""
    from ..archive import atrest
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        head = os.read(fd, atrest.HEADER_SIZE)
    finally:
        os.close(fd)
    return head if atrest.is_sealed(head) else None


def hash_sealed(p, name, key):
    """(hex digest of the plaintext, None) or (None, why) of a sealed object: every chunk
    authenticated (wrong key, changed or cut ciphertext: why), the plaintext hashed;
    (None, atrest.LOCKED) without the key."""
    from ..archive import atrest
    if key is None:
        return None, atrest.LOCKED
    try:
        f = open(p, "rb", opener=lambda path, fl: os.open(path, fl | getattr(os, "O_NOFOLLOW", 0)))
    except OSError as e:
        return None, "cannot be opened (%s)" % (e.strerror or e)
    try:
        r = atrest.SealedReader(f, name, key, "object")
    except atrest.AtRestError as e:
        return None, str(e).replace("object: ", "", 1)
    hs = hashlib.sha256()
    try:
        with r:
            while True:
                b = r.read(READ)
                if not b:
                    break
                hs.update(b)
    except atrest.AtRestError as e:
        return None, str(e).replace("object: ", "", 1)
    except OSError as e:
        return None, "cannot be read (%s)" % (e.strerror or e)
    return hs.hexdigest(), None


def _check_object(item, proven=frozenset(), caps=None, key=None):
    """(path, problem) or None. ``proven``: (st_dev, st_ino) of files whose every byte was
    already checked against signed chunk hashes: their content is the signed one, so
    hashing them whole again would prove nothing more (their name was logged by the
    station from that same content). A sealed object (archive/atrest.py) is decrypted with
    ``key`` and its plaintext hashed; without the key its problem is atrest.LOCKED."""
    from ..archive import atrest
    p, name = item
    try:
        st = os.lstat(p)
    except OSError as e:
        return p, "cannot be read (%s)" % (e.strerror or e)
    why = _unfit(st)
    if why is not None:
        return p, why
    sealed = _sealed_head(p) if st.st_size >= atrest.HEADER_SIZE else None
    size = st.st_size
    if sealed is not None:
        body = st.st_size - atrest.HEADER_SIZE
        size = max(0, body - atrest.TAG * max(1, -(-body // (atrest.CHUNK + atrest.TAG))))
    if caps is not None:
        cap = caps.get(name, caps.get(None))
        if cap is not None and size > cap:
            return p, "%d bytes, more than the %d the station log and the signed records " \
                      "allow for it; not hashed" % (size, cap)
    if (st.st_dev, st.st_ino) not in proven:
        if sealed is not None:
            h, why = hash_sealed(p, name, key)
            if why is not None:             # content in clear that starts like a sealed one?
                h2, why2 = hash_file(p)
                if why2 is not None or h2 != name:
                    return p, why
                h = h2
        else:
            h, why = hash_file(p)
            if why:
                return p, why
        if h != name:
            return p, "content does not match its name"
    if st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return p, "writable"
    return None


_AUTO = object()


def hash_objects(objects_dir, workers=None, items=None, proven=frozenset(), caps=None,
                 key=_AUTO):
    """[(path, problem)] for every object in ``objects_dir`` (or of ``items``) that does not
    hash to its name, is writable, is not a regular file, is sparse or larger than its cap
    (``caps``, from object_caps); a thread per core but one. Objects sealed at rest are
    decrypted with ``key`` (default: the at-rest key of the archive holding
    ``objects_dir``, if its station.toml names one that is at hand); without it their
    problem is atrest.LOCKED ("encrypted at rest, key not available"), which a caller
    reports as missing information, not as damage."""
    items = list_objects(objects_dir) if items is None else items
    if key is _AUTO:
        key = _key_of(objects_dir)
    # one thread per core but one: the device views are verified beside it in the caller
    workers = workers or max(1, min(8, (os.cpu_count() or 1) - 1))
    with ThreadPoolExecutor(workers) as ex:
        return [r for r in ex.map(lambda it: _check_object(it, proven, caps, key), items)
                if r is not None]


def _key_of(objects_dir):
    from ..archive import atrest
    from ..stationconfig import StationConfigError
    try:
        return atrest.load_key(os.path.dirname(os.path.abspath(objects_dir)))
    except (atrest.AtRestError, StationConfigError):
        return None


def _media_inodes(a):
    """(st_dev, st_ino) of every media file in the device views (not .idx, not rec/)."""
    out = set()
    if not os.path.isdir(a.devices_dir):
        return out
    for d in os.listdir(a.devices_dir):
        m = os.path.join(a.devices_dir, d, "m")
        if not os.path.isdir(m) or os.path.islink(m):
            continue
        for fn in os.listdir(m):
            if fn.endswith(".idx"):
                continue
            try:
                st = os.lstat(os.path.join(m, fn))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.add((st.st_dev, st.st_ino))
    return out


def _proven_media(view, rep):
    """(st_dev, st_ino) of the view's media files whose every signed chunk verified and
    that hold nothing beyond the signed length."""
    out = set()
    for sr in getattr(rep, "segments", ()) or ():
        if sr.verdict != OK or sr.file_size is None or sr.file_size != sr.length \
                or not sr.marks or set(sr.marks) != {"."}:
            continue
        try:
            st = os.lstat(os.path.join(view, *sr.media.split("/")))
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.add((st.st_dev, st.st_ino))
    return out
