# Deterministic CBOR (RFC 8949) for MicroPython and CPython.
#
# dumps(obj) -> bytes       core deterministic encoding (RFC 8949 section 4.2.1)
# loads(buf) -> obj         exactly one item; trailing bytes are an error
# decode_one(buf, offset)   -> (obj, next_offset), for logs of concatenated items
# bstr_head(n)              the head of a byte string of n bytes (its content sent apart)
# bstr_span(buf, q, n)      where the content of the byte string whose head is at q is,
# uint_at(buf, q, n)        and the uint at q: item heads read in place, for walking a
#                           buffer of items without decoding them (logread.py)
#
# Supported: int (-2**64 .. 2**64-1), bytes/bytearray/memoryview (byte string),
# str (text string), list/tuple (array), dict (map; keys int, str or bytes),
# True/False/None, Tag. Not supported: floats, undefined, other simple values,
# bignums (tags 2/3 are only returned as Tag), indefinite lengths.
#
# The decoder is strict: it accepts exactly what dumps() produces, so for any
# accepted buf, dumps(loads(buf)) == buf. It rejects, with CBORError naming the
# byte offset: truncation, indefinite lengths and break, reserved additional info
# 28-30, non-shortest heads, floats and simple values, invalid UTF-8, map keys of
# other types, duplicate or unsorted map keys, nesting deeper than MAX_DEPTH
# (arrays, maps and tags each count one level), and lengths longer than the data
# left (checked before anything is allocated).
#
# UTF-8 on MicroPython: str(b, "utf-8") checks only the structure of UTF-8
# (lead/continuation bytes, F8-FF, truncated sequences); it accepts overlong forms
# (C0 AF), surrogates (ED A0 80) and code points above U+10FFFF (F4 90 80 80,
# F5-F7 leads). When the runtime is that lax (probed at import) _check_utf8() adds
# those checks with bytes.find, no per-byte loop. A port built without
# MICROPY_PY_BUILTINS_STR_UNICODE_CHECK checks nothing at all: the unit test
# test_runtime_checks_utf8_structure fails there.
import struct

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MAX_DEPTH = const(16)

_pack = struct.pack
_unpack_from = struct.unpack_from


class CBORError(ValueError):
    pass


class Tag:
    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Tag) and self.tag == other.tag and self.value == other.value

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "Tag(%r, %r)" % (self.tag, self.value)


# ---------------------------------------------------------------- encoding

def _head(out, mt, n):
    # mt is the major type already shifted into the top 3 bits.
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out += _pack(">BH", mt | 25, n)
    elif n < 0x100000000:
        out += _pack(">BI", mt | 26, n)
    elif n < 0x10000000000000000:
        out += _pack(">BQ", mt | 27, n)
    else:
        raise CBORError("integer too large for CBOR (more than 64 bits)")


def bstr_head(n):
    """The head of a byte string of n bytes (its content follows apart: READ replies)."""
    out = bytearray()
    _head(out, 0x40, n)
    return bytes(out)


def _first(item):
    return item[0]


def _enc(obj, out, depth):
    t = type(obj)
    if t is int:
        if obj >= 0:
            _head(out, 0x00, obj)
        elif obj >= -0x10000000000000000:
            _head(out, 0x20, -1 - obj)
        else:
            raise CBORError("integer too small for CBOR (more than 64 bits)")
    elif t is bytes or t is bytearray:
        _head(out, 0x40, len(obj))
        out += obj
    elif t is str:
        try:
            b = obj.encode("utf-8")
        except UnicodeError:
            raise CBORError("text string is not encodable as UTF-8")
        _head(out, 0x60, len(b))
        out += b
    elif t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise CBORError("nesting deeper than %d" % MAX_DEPTH)
        _head(out, 0x80, len(obj))
        for x in obj:
            _enc(x, out, depth + 1)
    elif t is dict:
        _enc_map(obj, out, depth)
    elif obj is None:
        out.append(0xF6)
    elif obj is False:
        out.append(0xF4)
    elif obj is True:
        out.append(0xF5)
    elif t is Tag:
        if depth >= MAX_DEPTH:
            raise CBORError("nesting deeper than %d" % MAX_DEPTH)
        n = obj.tag
        if type(n) is not int or n < 0:
            raise CBORError("tag number must be an unsigned integer: %r" % (n,))
        _head(out, 0xC0, n)
        _enc(obj.value, out, depth + 1)
    elif t is memoryview:
        _enc(bytes(obj), out, depth)
    elif t is float:
        raise CBORError("floats are not supported")
    # Subclasses (IntEnum, OrderedDict, ...): encode as their base type.
    elif isinstance(obj, int):
        _enc(int(obj), out, depth)
    elif isinstance(obj, str):
        _enc(str(obj), out, depth)
    elif isinstance(obj, (bytes, bytearray)):
        _enc(bytes(obj), out, depth)
    elif isinstance(obj, (list, tuple)):
        _enc(list(obj), out, depth)
    elif isinstance(obj, dict):
        _enc_map(obj, out, depth)
    else:
        raise CBORError("cannot encode type %s" % t.__name__)


def _enc_map(d, out, depth):
    if depth >= MAX_DEPTH:
        raise CBORError("nesting deeper than %d" % MAX_DEPTH)
    _head(out, 0xA0, len(d))
    # Fast path: unsigned integer keys only, whose numeric order is their bytewise order.
    try:
        ks = sorted(d)
    except TypeError:  # keys of mixed types
        ks = None
    if ks and type(ks[0]) is int and ks[0] >= 0:
        for k in ks:
            if type(k) is not int:  # True or 1.5 among the ints
                break
        else:
            for k in ks:
                _head(out, 0x00, k)
                _enc(d[k], out, depth + 1)
            return
    items = []
    for k, v in d.items():
        if k is True or k is False or not isinstance(k, (int, str, bytes)):
            raise CBORError("map key must be int, str or bytes, not %s" % type(k).__name__)
        kb = bytearray()
        _enc(k, kb, depth + 1)
        items.append((kb, v))
    # Section 4.2.1: keys in bytewise lexicographic order of their encodings.
    items.sort(key=_first)
    prev = None
    for kb, v in items:
        if kb == prev:
            raise CBORError("duplicate map key %r" % (bytes(kb),))
        prev = kb
        out += kb
        _enc(v, out, depth + 1)


def dumps(obj):
    out = bytearray()
    _enc(obj, out, 0)
    return bytes(out)


# ---------------------------------------------------------------- decoding

def _probe_utf8():
    try:
        b"\xed\xa0\x80".decode("utf-8")  # a surrogate: CPython rejects it
        return True
    except UnicodeError:
        return False


_LAX_UTF8 = _probe_utf8()
# Lead bytes never valid in UTF-8 that a structure-only check lets through.
_BAD_LEADS = (b"\xc0", b"\xc1", b"\xf5", b"\xf6", b"\xf7")
# Lead bytes whose second byte has a narrower range (RFC 3629 section 4).
_SECOND = ((b"\xe0", 0xA0, 0xBF), (b"\xed", 0x80, 0x9F),
           (b"\xf0", 0x90, 0xBF), (b"\xf4", 0x80, 0x8F))


def _check_utf8(raw):
    # raw has passed a structural check: every byte >= 0xC0 is a lead byte
    # followed by its continuation bytes.
    if max(raw) < 0xC0:
        return True  # ASCII only
    for b in _BAD_LEADS:
        if b in raw:
            return False
    for lead, lo, hi in _SECOND:
        i = raw.find(lead)
        while i >= 0:
            c = raw[i + 1]
            if c < lo or c > hi:
                return False
            i = raw.find(lead, i + 2)
    return True


def _err(what, off):
    return CBORError("%s at offset %d" % (what, off))


_MAJOR = ("unsigned integer", "negative integer", "byte string", "text string",
          "array", "map", "tag", "simple value")


def _dec(buf, off, depth):
    end = len(buf)
    if off >= end:
        raise _err("truncated input: expected an item", off)
    start = off
    ib = buf[off]
    mt = ib >> 5
    ai = ib & 31
    off += 1
    if ai < 24:
        val = ai
    elif ai < 28:
        if mt == 7:
            if ai == 24:
                raise _err("simple values are not supported", start)
            raise _err("floats are not supported", start)
        if ai == 24:
            if off >= end:
                raise _err("truncated %s head" % _MAJOR[mt], start)
            val = buf[off]
            off += 1
            if val < 24:
                raise _err("non-shortest %s head" % _MAJOR[mt], start)
        else:
            n = 1 << (ai - 24)
            if off + n > end:
                raise _err("truncated %s head" % _MAJOR[mt], start)
            val = _unpack_from(">H" if n == 2 else ">I" if n == 4 else ">Q", buf, off)[0]
            off += n
            if val >> (4 * n) == 0:  # fits in the next smaller head
                raise _err("non-shortest %s head" % _MAJOR[mt], start)
    elif ai == 31:
        if mt == 7:
            raise _err("unexpected break (0xff)", start)
        raise _err("indefinite-length %s is not supported" % _MAJOR[mt], start)
    else:
        raise _err("reserved additional information %d" % ai, start)

    if mt == 0:
        return val, off
    if mt == 1:
        return -1 - val, off
    if mt == 2 or mt == 3:
        if val > end - off:
            raise _err("truncated %s: length %d, %d bytes left" % (_MAJOR[mt], val, end - off), start)
        stop = off + val
        raw = buf[off:stop]
        if type(raw) is not bytes:
            raw = bytes(raw)
        if mt == 2:
            return raw, stop
        try:
            s = str(raw, "utf-8")
        except UnicodeError:
            s = None
        if s is None or (_LAX_UTF8 and val and not _check_utf8(raw)):
            raise _err("invalid UTF-8 in text string", start)
        return s, stop
    if mt == 7:
        if ai == 20:
            return False, off
        if ai == 21:
            return True, off
        if ai == 22:
            return None, off
        if ai == 23:
            raise _err("undefined is not supported", start)
        raise _err("simple values are not supported", start)
    # Containers: arrays, maps, tags.
    if depth >= MAX_DEPTH:
        raise _err("nesting deeper than %d" % MAX_DEPTH, start)
    depth += 1
    if mt == 6:
        v, off = _dec(buf, off, depth)
        return Tag(val, v), off
    if mt == 4:
        if val > end - off:  # every item takes at least one byte
            raise _err("truncated array: %d items, %d bytes left" % (val, end - off), start)
        items = []
        for _ in range(val):
            x, off = _dec(buf, off, depth)
            items.append(x)
        return items, off
    # mt == 5
    if val > (end - off) >> 1:
        raise _err("truncated map: %d pairs, %d bytes left" % (val, end - off), start)
    d = {}
    prev = None
    for _ in range(val):
        ks = off
        if off < end and buf[off] >= 0x80:  # array, map, tag or simple
            raise _err("map key must be int, str or bytes, not %s" % _MAJOR[buf[off] >> 5], off)
        k, off = _dec(buf, off, depth)
        kb = bytes(buf[ks:off])
        if prev is not None and kb <= prev:
            raise _err("duplicate map key" if kb == prev else "map keys not in sorted order", ks)
        prev = kb
        v, off = _dec(buf, off, depth)
        d[k] = v
    return d, off


# ---------------------------------------------------------------- heads in place
# Reading an item's head where it lies in buf[:n] (a window of a file), without decoding
# the item or copying it. Lengths up to 4 bytes (the store's items are shorter).
MORE = const(-1)     # the window ends inside the head
BAD = const(-2)      # not the item asked for


def bstr_span(buf, q, n):
    """(content start, content end) of the byte string whose head is at q; (MORE, 0) if
    buf[:n] ends inside the head, (BAD, 0) if q holds no byte string head. The content
    may reach past n: the caller checks."""
    if q >= n:
        return MORE, 0
    ib = buf[q]
    if ib >> 5 != 2:
        return BAD, 0
    ai = ib & 31
    if ai < 24:
        return q + 1, q + 1 + ai
    if ai > 26:
        return BAD, 0
    w = 1 << (ai - 24)
    if q + 1 + w > n:
        return MORE, 0
    if w == 1:
        ln = buf[q + 1]
    elif w == 2:
        ln = (buf[q + 1] << 8) | buf[q + 2]
    else:
        ln = (buf[q + 1] << 24) | (buf[q + 2] << 16) | (buf[q + 3] << 8) | buf[q + 4]
    return q + 1 + w, q + 1 + w + ln


def uint_at(buf, q, n):
    """The unsigned integer whose head is at q in buf[:n], or -1 (not one, or cut off)."""
    ib = buf[q]
    if ib < 24:
        return ib
    if ib > 27 or q + 1 + (1 << (ib - 24)) > n:
        return -1
    v = 0
    for k in range(1 << (ib - 24)):
        v = (v << 8) | buf[q + 1 + k]
    return v


def decode_one(buf, offset=0):
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise CBORError("expected bytes, bytearray or memoryview, not %s" % type(buf).__name__)
    if type(offset) is not int or offset < 0 or offset > len(buf):
        raise CBORError("offset %r out of range" % (offset,))
    return _dec(buf, offset, 0)


def loads(buf):
    obj, off = decode_one(buf, 0)
    if off != len(buf):
        raise _err("trailing bytes after the item", off)
    return obj
