# Property tests for firmware/sealcamfw/cbor.py against cbor2 (CPython only).
import cbor2
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from sealcamfw import cbor
from sealcamfw.cbor import CBORError, Tag

uints = st.one_of(st.integers(0, 30), st.integers(0, 2 ** 16 + 5), st.integers(0, 2 ** 64 - 1),
                  st.sampled_from([23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 64 - 1]))
nints = uints.map(lambda n: -1 - n)
ints = st.one_of(uints, nints)
texts = st.text(max_size=40)
blobs = st.binary(max_size=40)
# Tag numbers cbor2 leaves alone (no semantic decoding), so values compare directly.
tag_numbers = st.one_of(st.integers(6, 20), st.sampled_from([42, 1234, 40000, 2 ** 32 + 1, 2 ** 64 - 1]))
scalars = st.one_of(ints, texts, blobs, st.booleans(), st.none())


def maps_with(keys, children):
    return st.dictionaries(keys, children, max_size=8)


def values(keys, with_tags=False):
    def extend(children):
        parts = [st.lists(children, max_size=6), maps_with(keys, children)]
        if with_tags:
            parts.append(st.builds(Tag, tag_numbers, children))
        return st.one_of(parts)
    return st.recursive(scalars, extend, max_leaves=30)


# One key kind per map: for these, RFC 7049 length-first order (cbor2 canonical)
# and RFC 8949 bytewise order agree.
same_kind_values = st.one_of([values(keys, with_tags=True) for keys in (uints, nints, texts, blobs)])
any_keys = st.one_of(ints, texts, blobs)


def from_cbor2(x):
    """cbor2's decoded value in our types (CBORTag -> Tag, tuple -> list)."""
    if isinstance(x, cbor2.CBORTag):
        return Tag(x.tag, from_cbor2(x.value))
    if isinstance(x, (list, tuple)):
        return [from_cbor2(i) for i in x]
    if hasattr(x, "items"):  # dict, or cbor2's frozendict inside a tag
        return {k: from_cbor2(v) for k, v in x.items()}
    return x


def to_cbor2(x):
    if isinstance(x, Tag):
        return cbor2.CBORTag(x.tag, to_cbor2(x.value))
    if isinstance(x, list):
        return [to_cbor2(i) for i in x]
    if isinstance(x, dict):
        return {k: to_cbor2(v) for k, v in x.items()}
    return x


def only_plain_tags(x):
    """False if x holds a tag that cbor2 decodes semantically (datetime, bignum...)."""
    if isinstance(x, Tag):
        return 6 <= x.tag <= 20 and only_plain_tags(x.value)
    if isinstance(x, list):
        return all(only_plain_tags(i) for i in x)
    if isinstance(x, dict):
        return all(only_plain_tags(i) for i in x.values())
    return True


@given(values(uints))
def test_uint_keys_equal_cbor2_canonical(x):
    assert cbor.dumps(x) == cbor2.dumps(x, canonical=True)


@given(same_kind_values)
def test_same_kind_keys_equal_cbor2_canonical(x):
    b = cbor.dumps(x)
    assert b == cbor2.dumps(to_cbor2(x), canonical=True)
    assert from_cbor2(cbor2.loads(b)) == x
    assert cbor.loads(cbor2.dumps(to_cbor2(x), canonical=True)) == x


@given(values(any_keys, with_tags=True))
def test_roundtrip_mixed_keys(x):
    b = cbor.dumps(x)
    assert cbor.loads(b) == x
    assert from_cbor2(cbor2.loads(b)) == x
    assert cbor.dumps(cbor.loads(b)) == b


@given(maps_with(any_keys, st.integers(0, 3)))
def test_map_keys_in_bytewise_order(d):
    b = cbor.dumps(d)
    encoded_keys = [cbor.dumps(k) for k in d]
    expected = b[:len(cbor.dumps(len(d)))]  # same head as a uint, with major type 5
    expected = bytes([expected[0] | 0xA0]) + expected[1:]
    for kb in sorted(encoded_keys):
        expected += kb + cbor.dumps(d[cbor.loads(kb)])
    assert b == expected


@given(st.lists(values(uints, with_tags=True), max_size=5))
def test_decode_one_concatenated(items):
    buf = b"".join(cbor.dumps(x) for x in items)
    off, got = 0, []
    while off < len(buf):
        x, off = cbor.decode_one(buf, off)
        got.append(x)
    assert got == items and off == len(buf)


@given(values(any_keys, with_tags=True))
def test_every_truncation_rejected(x):
    b = cbor.dumps(x)
    for cut in range(len(b)):
        with pytest.raises(CBORError):
            cbor.loads(b[:cut])


def check_decoder(buf):
    """Only CBORError may escape; anything accepted is canonical and agrees with cbor2."""
    try:
        x = cbor.loads(buf)
    except CBORError as e:
        assert "offset" in str(e)
        return
    assert cbor.dumps(x) == buf
    if only_plain_tags(x):
        assert from_cbor2(cbor2.loads(buf)) == x


@settings(max_examples=2000)
@given(st.binary(max_size=64))
def test_random_bytes(buf):
    check_decoder(buf)


@settings(max_examples=1000)
@given(st.binary(min_size=1, max_size=1).flatmap(
    lambda first: st.binary(max_size=40).map(lambda rest: first + rest)))
def test_random_bytes_any_first_byte(buf):
    check_decoder(buf)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(values(any_keys, with_tags=True), st.data())
def test_mutations(x, data):
    b = bytearray(cbor.dumps(x))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if not b and op != "insert":
            op = "insert"
        pos = data.draw(st.integers(0, max(len(b) - 1, 0)))
        if op == "flip":
            b[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            b[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            b[pos:pos] = data.draw(st.binary(min_size=1, max_size=3))
        elif op == "delete":
            del b[pos]
        else:
            del b[pos:]
    check_decoder(bytes(b))
    check_decoder(memoryview(bytes(b)))


@st.composite
def nested(draw):
    """A value nested 1..MAX_DEPTH+3 containers deep, each an array, a map or a tag."""
    n = draw(st.integers(1, cbor.MAX_DEPTH + 3))
    x = draw(scalars)
    for kind in draw(st.lists(st.sampled_from(["list", "map", "tag"]), min_size=n, max_size=n)):
        x = [x] if kind == "list" else {draw(any_keys): x} if kind == "map" else Tag(7, x)
    return n, x


@given(nested())
def test_depth_limit(nx):
    n, x = nx
    if n <= cbor.MAX_DEPTH:
        assert cbor.loads(cbor.dumps(x)) == x
    else:
        with pytest.raises(CBORError):
            cbor.dumps(x)
        with pytest.raises(CBORError, match="nesting"):
            cbor.loads(cbor2.dumps(to_cbor2(x)))


@given(st.one_of(st.integers(2 ** 64, 2 ** 80), st.integers(-2 ** 80, -2 ** 64 - 1), st.floats()))
def test_unencodable(x):
    with pytest.raises(CBORError):
        cbor.dumps(x)
    with pytest.raises(CBORError):
        cbor.dumps([{0: x}])


@given(st.binary(max_size=20))
def test_utf8_validation_matches_cpython(raw):
    try:
        raw.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    assume(len(raw) < 24)
    buf = bytes([0x60 + len(raw)]) + raw
    if valid:
        assert cbor.loads(buf) == raw.decode("utf-8")
    else:
        with pytest.raises(CBORError):
            cbor.loads(buf)


def mp_utf8_check(raw):
    """MicroPython's utf8_check (py/unicode.c): the structure of UTF-8 only."""
    need = 0
    for c in raw:
        if need:
            if c & 0xC0 != 0x80:
                return False
            need -= 1
        elif c >= 0xF8:
            return False
        elif c >= 0xC0:
            need = 3 if c >= 0xF0 else 2 if c >= 0xE0 else 1
        elif c >= 0x80:
            return False
    return need == 0


# UTF-8-shaped bytes: ASCII, or any lead byte C0..F7 with its continuation bytes.
utf8ish_chunk = st.one_of(
    st.binary(min_size=1, max_size=3).map(lambda b: bytes(c & 0x7F for c in b)),
    st.tuples(st.integers(0xC0, 0xF7), st.lists(st.integers(0x80, 0xBF), min_size=3, max_size=3)).map(
        lambda t: bytes([t[0]] + t[1][:1 if t[0] < 0xE0 else 2 if t[0] < 0xF0 else 3])),
)


@settings(max_examples=3000)
@given(st.lists(utf8ish_chunk, max_size=5).map(b"".join))
def test_lax_runtime_utf8_checks(raw):
    """_check_utf8 (used where the runtime checks only structure, as MicroPython
    does) plus that structure check equals CPython's strict UTF-8 decoding."""
    try:
        raw.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    assert mp_utf8_check(raw)
    assert (not raw or cbor._check_utf8(raw)) == valid
