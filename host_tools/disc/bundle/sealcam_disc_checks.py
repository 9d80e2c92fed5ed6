"""Checks of the sealcam disc verifier (verify_disc.py) that need nothing of the disc's
layout: opening its files safely, signed notes, RFC 9162 inclusion proofs, records.
Standard library and the firmware's pure-Python modules (verifier/sealcamfw) only."""
import base64
import hashlib
import os
import stat

from sealcamfw import cbor, cose, ed25519

MAX_FILES = 100000
MAX_DEPTH = 8                   # folders
MAX_PROOF = 64                  # hashes of an inclusion proof
INT_MAX = (1 << 63) - 1
DASH = "\u2014 "
K_TYPE, K_SEQ, K_DEVICE = 0, 1, 3     # record body keys (SPEC §3.1)


class Bad(Exception):
    """A check that failed: the message names the file or record."""


# -- files: relative names only, no link followed, regular files only ---------------------

def _parts(rel):
    if not isinstance(rel, str) or not rel or len(rel.encode("utf-8", "replace")) > 1024:
        raise Bad("a file name of the manifest is not usable: %r" % (str(rel)[:80],))
    parts = rel.split("/")
    if len(parts) > MAX_DEPTH or any(p in ("", ".", "..") or "\\" in p or
                                     any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in p)
                                     for p in parts):
        raise Bad("a file name of the manifest is not usable: %r" % rel[:80])
    return parts


def _open(root, rel):
    """(binary file, size) of the regular file ``rel`` under ``root``, opened one folder
    at a time without following a link and without blocking (a FIFO never waits)."""
    parts = _parts(rel)
    fl = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    dfl = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_DIRECTORY", 0)
    if os.open not in getattr(os, "supports_dir_fd", ()):      # (Windows) a plain check
        path = os.path.join(root, *parts)
        for i in range(1, len(parts) + 1):
            if os.path.islink(os.path.join(root, *parts[:i])):
                raise Bad("%s is a link, not a file of the disc" % rel)
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise Bad("%s is not a regular file" % rel)
        return open(path, "rb"), st.st_size
    fd = os.open(root, dfl)
    try:
        for p in parts[:-1]:
            nfd = os.open(p, dfl, dir_fd=fd)
            os.close(fd)
            fd = nfd
        try:
            ffd = os.open(parts[-1], fl, dir_fd=fd)
        except OSError as e:
            if os.path.islink(os.path.join(root, *parts)):
                raise Bad("%s is a link, not a file of the disc" % rel) from None
            raise e
    except FileNotFoundError:
        raise Bad("%s is missing" % rel) from None
    except OSError as e:
        raise Bad("%s cannot be opened (%s)" % (rel, e.strerror or e)) from None
    finally:
        os.close(fd)
    st = os.fstat(ffd)
    if not stat.S_ISREG(st.st_mode):
        os.close(ffd)
        raise Bad("%s is not a regular file" % rel)
    return os.fdopen(ffd, "rb"), st.st_size


def _read(root, rel, cap):
    f, size = _open(root, rel)
    with f:
        if size > cap:
            raise Bad("%s is %d bytes, more than it may be (%d)" % (rel, size, cap))
        data = f.read(cap + 1)
    if len(data) > cap:
        raise Bad("%s grew while read" % rel)
    return data


def _walk(root):
    """Every entry under ``root`` as (relative name, kind): 'file', or what else it is."""
    out, todo = [], [("", 0)]
    while todo:
        d, depth = todo.pop()
        with os.scandir(os.path.join(root, d) if d else root) as it:
            for e in it:
                rel = d + "/" + e.name if d else e.name
                if len(out) > MAX_FILES + 10:
                    raise Bad("more than %d files on the disc" % MAX_FILES)
                if e.is_symlink():
                    out.append((rel, "a link"))
                elif e.is_dir(follow_symlinks=False):
                    if depth >= MAX_DEPTH:
                        raise Bad("%s: folders nested too deep" % rel)
                    todo.append((rel, depth + 1))
                elif e.is_file(follow_symlinks=False):
                    out.append((rel, "file"))
                else:
                    out.append((rel, "not a regular file"))
    return out


# -- CBOR within a budget -------------------------------------------------------------------

MAX_NEST = 20                   # the decoder's own limit is 16


def count_items(buf, limit):
    """The number of CBOR items (every array, map key and value, string, number...) of
    ``buf``, walking the heads only, nothing built; ValueError beyond ``limit`` items or
    MAX_NEST levels, or when a length runs past the end. Run before cbor.loads, whose
    objects take up to 64 times the bytes they come from."""
    n, off, end, todo = 0, 0, len(buf), [1]
    while todo:
        if not todo[-1]:
            todo.pop()
            continue
        todo[-1] -= 1
        n += 1
        if n > limit:
            raise ValueError("more than %d items" % limit)
        if off >= end:
            raise ValueError("truncated at byte %d" % off)
        ib = buf[off]
        mt, ai = ib >> 5, ib & 31
        off += 1
        if ai < 24:
            val = ai
        elif ai < 28:
            w = 1 << (ai - 24)
            if off + w > end:
                raise ValueError("truncated at byte %d" % off)
            val = int.from_bytes(buf[off:off + w], "big")
            off += w
        else:
            raise ValueError("not deterministic CBOR at byte %d" % (off - 1))
        if mt in (2, 3):
            if val > end - off:
                raise ValueError("a string runs past the end at byte %d" % off)
            off += val
        elif mt in (4, 5, 6):
            k = 1 if mt == 6 else val * 2 if mt == 5 else val
            if k > end - off:
                raise ValueError("a container runs past the end at byte %d" % off)
            todo.append(k)
            if len(todo) > MAX_NEST + 1:
                raise ValueError("nested deeper than %d" % MAX_NEST)
    if off != end:
        raise ValueError("trailing bytes at %d" % off)
    return n


# -- signatures, notes, proofs ------------------------------------------------------------

def fingerprint(pub):
    h = hashlib.sha256(pub).hexdigest()[:32]
    return ":".join(h[i:i + 4] for i in range(0, 32, 4))


def open_note(data, name, pub):
    """The text of a C2SP signed note signed by the Ed25519 key ``name``/``pub``, else Bad."""
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Bad("the note is not UTF-8") from None
    i = s.rfind("\n\n")
    if i < 0 or not s.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in s):
        raise Bad("not a signed note")
    text, sigs = s[:i + 1], s[i + 2:]
    kid = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
    for line in sigs[:-1].split("\n"):
        parts = line[len(DASH):].split(" ") if line.startswith(DASH) else ()
        if len(parts) != 2:
            raise Bad("a malformed signature line")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except ValueError:
            raise Bad("a signature line is not base64") from None
        if parts[0] == name and blob[:4] == kid:
            if not ed25519.verify(pub, text.encode(), blob[4:]):
                raise Bad("the signature by %s does not verify" % name)
            return text
    raise Bad("no signature by the station key %s" % fingerprint(pub))


def _node(a, b):
    return hashlib.sha256(b"\x01" + a + b).digest()


def inclusion_ok(index, size, leaf, proof, root):
    """RFC 9162 §2.1.3.2."""
    if not (isinstance(index, int) and 0 <= index < size) or len(proof) > MAX_PROOF:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0 or not isinstance(p, bytes) or len(p) != 32:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def _hostile(v, depth=0):
    """True if a record value breaks SPEC §3.1 (an int beyond 2^63-1, a control char)."""
    if depth > 16:
        return True
    if isinstance(v, int) and not isinstance(v, bool):
        return not -INT_MAX - 1 <= v <= INT_MAX
    if isinstance(v, str):
        return any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in v)
    if isinstance(v, list):
        return any(_hostile(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return any(_hostile(k, depth + 1) or _hostile(x, depth + 1) for k, x in v.items())
    return False


def decode_record(raw, device, key):
    """(seq, body, H(record)) of a record signed by ``key`` for ``device``; Bad otherwise."""
    try:
        prot, kid, payload, sig = cose.parse1(raw)
        body = cbor.loads(payload)
    except (ValueError, TypeError) as e:
        raise Bad("not a signed record (%s)" % e) from None
    if not isinstance(body, dict) or _hostile(body) or not isinstance(body.get(K_SEQ), int) \
            or not isinstance(body.get(K_TYPE), int):
        raise Bad("not a record body of SPEC §3")
    if kid != device.encode() or body.get(K_DEVICE) != device:
        raise Bad("seq %s is a record of another device" % body.get(K_SEQ))
    if not isinstance(sig, bytes) or not ed25519.verify(key, cose.sig_structure(prot, payload),
                                                        sig):
        raise Bad("seq %d is not signed by the device key %s" % (body[K_SEQ],
                                                                 fingerprint(key)))
    return body[K_SEQ], body, hashlib.sha256(raw).digest()
