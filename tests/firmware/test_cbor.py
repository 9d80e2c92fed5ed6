# Unit tests for firmware/sealcamfw/cbor.py; they run unchanged on MicroPython and CPython.
#   CPython:     .venv/bin/python -m pytest -q tests/firmware/test_cbor.py
#   MicroPython: node sim/mpvm/run.mjs --lib firmware --lib sim/hal --lib tests/firmware \
#                    tests/firmware/vm_unittest.py test_cbor
import unittest
from binascii import unhexlify

from sealcamfw import cbor
from sealcamfw.cbor import CBORError, Tag, dumps, loads, decode_one


def h(s):
    return unhexlify(s.replace(" ", ""))


# RFC 8949 Appendix A, the examples within the supported types: (value, hex).
APPENDIX_A = [
    (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"),
    (100, "1864"), (1000, "1903e8"), (1000000, "1a000f4240"),
    (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"),
    (-18446744073709551616, "3bffffffffffffffff"),
    (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
    (False, "f4"), (True, "f5"), (None, "f6"),
    (Tag(0, "2013-03-21T20:04:00Z"), "c074323031332d30332d32315432303a30343a30305a"),
    (Tag(1, 1363896240), "c11a514b67b0"),
    (Tag(23, b"\x01\x02\x03\x04"), "d74401020304"),
    (Tag(24, b"dIETF"), "d818456449455446"),
    (Tag(32, "http://www.example.com"), "d82076687474703a2f2f7777772e6578616d706c652e636f6d"),
    (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"), ("a", "6161"), ("IETF", "6449455446"), ("\"\\", "62225c"),
    ("\u00fc", "62c3bc"), ("\u6c34", "63e6b0b4"), ("\U00010151", "64f0908591"),
    ([], "80"), ([1, 2, 3], "83010203"), ([1, [2, 3], [4, 5]], "8301820203820405"),
    (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
    ({}, "a0"), ({1: 2, 3: 4}, "a201020304"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
    ({"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"},
     "a56161614161626142616361436164614461656145"),
]

# Appendix A examples outside the supported types, and other inputs the strict
# decoder must reject: (hex, a word the error message must contain).
REJECT = [
    # bignums decode as Tag, but these are the floats, simple values and indefinite forms
    ("f90000", "float"), ("f93c00", "float"), ("f97bff", "float"), ("fa47c35000", "float"),
    ("fb3ff199999999999a", "float"), ("f97c00", "float"), ("fb7ff8000000000000", "float"),
    ("f7", "undefined"), ("f0", "simple"), ("f818", "simple"), ("f8ff", "simple"),
    ("c1fb41d452d9ec200000", "float"),
    ("5f42010243030405ff", "indefinite"), ("7f657374726561646d696e67ff", "indefinite"),
    ("9fff", "indefinite"), ("9f018202039f0405ffff", "indefinite"),
    ("9f01820203820405ff", "indefinite"), ("83018202039f0405ff", "indefinite"),
    ("83019f0203ff820405", "indefinite"), ("bf61610161629f0203ffff", "indefinite"),
    ("826161bf61626163ff", "indefinite"), ("bf6346756ef563416d7421ff", "indefinite"),
    ("ff", "break"), ("8201ff", "break"),
    # reserved additional information 28..30 for every major type
    ("1c", "reserved"), ("3d", "reserved"), ("5e", "reserved"), ("7c", "reserved"),
    ("9d", "reserved"), ("be", "reserved"), ("dc", "reserved"), ("fc", "reserved"),
    # non-shortest heads
    ("1800", "non-shortest"), ("1817", "non-shortest"), ("190000", "non-shortest"),
    ("1900ff", "non-shortest"), ("1a0000ffff", "non-shortest"),
    ("1b00000000ffffffff", "non-shortest"), ("3800", "non-shortest"),
    ("5801ff", "non-shortest"), ("780161", "non-shortest"), ("98020102", "non-shortest"),
    ("b8010102", "non-shortest"), ("d80100", "non-shortest"), ("590000", "non-shortest"),
    # lengths longer than the data left
    ("41", "truncated"), ("5b0000000100000000", "truncated"), ("7bffffffffffffffff", "truncated"),
    ("9bffffffffffffffff", "truncated"), ("bbffffffffffffffff", "truncated"),
    ("9a7fffffff", "truncated"), ("83", "truncated"), ("a1", "truncated"), ("a101", "truncated"),
    ("", "truncated"), ("19", "truncated"), ("1a0001", "truncated"), ("c1", "truncated"),
    # invalid UTF-8: bad start, bad continuation, truncated, overlong, surrogate, > U+10FFFF
    ("61ff", "UTF-8"), ("6180", "UTF-8"), ("62c328", "UTF-8"), ("63f09f98", "UTF-8"),
    ("62c0af", "UTF-8"), ("62c180", "UTF-8"), ("63e08080", "UTF-8"), ("63e09fbf", "UTF-8"),
    ("63eda080", "UTF-8"), ("63edbfbf", "UTF-8"), ("64f08fbfbf", "UTF-8"),
    ("64f4908080", "UTF-8"), ("64f5808080", "UTF-8"), ("64f7bfbfbf", "UTF-8"),
    ("65f888808080", "UTF-8"), ("6461e08080", "UTF-8"), ("656161eda080", "UTF-8"),
    # map keys: wrong types, duplicates, unsorted
    ("a18001", "key"), ("a1a00001", "key"), ("a1c10001", "key"), ("a1f401", "key"),
    ("a1f601", "key"), ("a201020103", "duplicate"), ("a2616101616102", "duplicate"),
    ("a202010102", "sorted"), ("a2616201616101", "sorted"),
    ("a26261610161620102", "sorted"), ("a2614101410102", "sorted"), ("a220000000", "sorted"),
    ("a26161021903e801", "sorted"),  # RFC 7049 length-first order, not RFC 8949 bytewise
]

# Valid pieces of RFC 8949 section 4.2.1 ordering that length-first order would reverse.
BYTEWISE_ORDER = [
    ({1000: 1, "a": 2}, "a21903e8016161 02"),
    ({24: 0, -1: 0}, "a2181800 2000"),
    ({b"\x01": 0, "": 0}, "a2410100 6000"),
]


def nest(n):
    x = 0
    for _ in range(n):
        x = [x]
    return x


class TestAppendixA(unittest.TestCase):
    def test_encode(self):
        for value, hx in APPENDIX_A:
            self.assertEqual(dumps(value), h(hx), hx)

    def test_decode(self):
        for value, hx in APPENDIX_A:
            self.assertEqual(loads(h(hx)), value, hx)

    def test_decode_one_concatenated(self):
        buf = b"".join(h(hx) for _, hx in APPENDIX_A)
        off = 0
        for value, hx in APPENDIX_A:
            got, nxt = decode_one(buf, off)
            self.assertEqual(got, value, hx)
            self.assertEqual(nxt - off, len(h(hx)), hx)
            off = nxt
        self.assertEqual(off, len(buf))
        with self.assertRaises(CBORError):
            decode_one(buf, off)

    def test_bignums_beyond_64_bits_are_not_encoded(self):
        for n in (2 ** 64, -2 ** 64 - 1, 2 ** 100, -2 ** 100):
            with self.assertRaises(CBORError):
                dumps(n)
            with self.assertRaises(CBORError):
                dumps([1, {2: n}])

    def test_bignum_tags_decode_as_tags(self):
        self.assertEqual(loads(h("c249010000000000000000")), Tag(2, b"\x01" + b"\x00" * 8))
        self.assertEqual(loads(h("c349010000000000000000")), Tag(3, b"\x01" + b"\x00" * 8))


class TestIntegers(unittest.TestCase):
    def test_boundaries(self):
        cases = [
            (0, "00"), (23, "17"), (24, "1818"), (255, "18ff"), (256, "190100"),
            (65535, "19ffff"), (65536, "1a00010000"), (2 ** 32 - 1, "1affffffff"),
            (2 ** 32, "1b0000000100000000"), (2 ** 64 - 1, "1bffffffffffffffff"),
            (-1, "20"), (-24, "37"), (-25, "3818"), (-256, "38ff"), (-257, "390100"),
            (-65536, "39ffff"), (-65537, "3a00010000"), (-2 ** 32, "3affffffff"),
            (-2 ** 32 - 1, "3b0000000100000000"), (-2 ** 64, "3bffffffffffffffff"),
        ]
        for value, hx in cases:
            self.assertEqual(dumps(value), h(hx), hx)
            self.assertEqual(loads(h(hx)), value, hx)

    def test_lengths_use_shortest_heads(self):
        for n, head in ((0, "40"), (23, "57"), (24, "5818"), (255, "58ff"), (256, "590100"),
                        (65536, "5a00010000")):
            b = dumps(b"x" * n)
            self.assertEqual(b[:len(h(head))], h(head))
            self.assertEqual(loads(b), b"x" * n)
        self.assertEqual(dumps("x" * 24)[:2], h("7818"))
        self.assertEqual(dumps([0] * 24)[:2], h("9818"))
        self.assertEqual(dumps(dict((i, 0) for i in range(24)))[:2], h("b818"))


class TestEncode(unittest.TestCase):
    def test_byte_like_types(self):
        self.assertEqual(dumps(bytearray(b"ab")), h("426162"))
        self.assertEqual(dumps(memoryview(b"xab")[1:]), h("426162"))
        self.assertEqual(dumps((1, (2,))), h("82018102"))

    def test_map_keys_sorted_bytewise(self):
        self.assertEqual(dumps({3: 0, 1: 0, 2: 0, 0: 0}), h("a4 0000 0100 0200 0300"))
        self.assertEqual(dumps({100: 0, 24: 0, 23: 0, -1: 0, -25: 0, 1000: 0}),
                         h("a6 1700 181800 186400 1903e800 2000 381800"))
        for value, hx in BYTEWISE_ORDER:
            self.assertEqual(dumps(value), h(hx), hx)
            self.assertEqual(loads(h(hx)), value, hx)

    def test_typical_record(self):
        rec = {0: 1, 1: b"\x00" * 32, 2: 1700000000123, 3: "cam-0042", 4: [1, -2, None],
               5: True, 6: {1: -8}, 7: Tag(18, [b"h", {}, b"p", b"s"])}
        b = dumps(rec)
        self.assertEqual(loads(b), rec)
        self.assertEqual(dumps(loads(b)), b)
        self.assertEqual(b[:3], h("a8 0001"))

    def test_unsupported_values(self):
        for bad in (1.5, 0.0, float("inf"), object(), set([1]), {1: 1.0}, [1, [2.5]], Tag(-1, 0),
                    Tag(2 ** 64, 0), Tag("x", 0), Tag(True, 0)):
            with self.assertRaises(CBORError):
                dumps(bad)

    def test_float_message(self):
        with self.assertRaises(CBORError) as cm:
            dumps(1.0)
        self.assertIn("float", str(cm.exception))

    def test_bad_map_keys(self):
        for bad in ({(1, 2): 0}, {None: 0}, {True: 0}, {False: 1}, {1.5: 0}):
            with self.assertRaises(CBORError):
                dumps(bad)

    def test_depth_limit(self):
        self.assertEqual(loads(dumps(nest(cbor.MAX_DEPTH))), nest(cbor.MAX_DEPTH))
        with self.assertRaises(CBORError):
            dumps(nest(cbor.MAX_DEPTH + 1))
        x = 0
        for _ in range(cbor.MAX_DEPTH + 1):
            x = {1: x}
        with self.assertRaises(CBORError):
            dumps(x)
        with self.assertRaises(CBORError):
            dumps(Tag(1, nest(cbor.MAX_DEPTH)))

    def test_deep_recursion_does_not_crash(self):
        x = []
        x.append(x)  # a cycle: stopped by the depth limit
        with self.assertRaises(CBORError):
            dumps(x)

    def test_returns_bytes(self):
        self.assertEqual(type(dumps(1)), bytes)
        self.assertEqual(type(loads(dumps(bytearray(b"a")))), bytes)


class TestDecodeStrict(unittest.TestCase):
    def test_rejects(self):
        for hx, word in REJECT:
            with self.assertRaises(CBORError) as cm:
                loads(h(hx))
            msg = str(cm.exception)
            self.assertIn(word, msg, hx + ": " + msg)
            self.assertIn("offset", msg, hx + ": " + msg)

    def test_error_is_value_error(self):
        self.assertTrue(issubclass(CBORError, ValueError))

    def test_error_offsets(self):
        with self.assertRaises(CBORError) as cm:
            loads(h("83 01 02 f7"))
        self.assertIn("offset 3", str(cm.exception))
        with self.assertRaises(CBORError) as cm:
            loads(h("a2 02 00 01 00"))
        self.assertIn("offset 3", str(cm.exception))

    def test_trailing_bytes(self):
        with self.assertRaises(CBORError) as cm:
            loads(h("0000"))
        self.assertIn("trailing", str(cm.exception))
        self.assertEqual(decode_one(h("0000")), (0, 1))

    def test_truncated_at_every_cut(self):
        for _, hx in APPENDIX_A:
            b = h(hx)
            for cut in range(len(b)):
                with self.assertRaises(CBORError):
                    loads(b[:cut])
                with self.assertRaises(CBORError):
                    decode_one(b[:cut])

    def test_depth_limit(self):
        ok = h("81" * cbor.MAX_DEPTH + "00")
        self.assertEqual(loads(ok), nest(cbor.MAX_DEPTH))
        with self.assertRaises(CBORError) as cm:
            loads(h("81" * (cbor.MAX_DEPTH + 1) + "00"))
        self.assertIn("nesting", str(cm.exception))
        with self.assertRaises(CBORError):
            loads(h("a101" * (cbor.MAX_DEPTH + 1) + "00"))
        with self.assertRaises(CBORError):
            loads(h("c1" * (cbor.MAX_DEPTH + 1) + "00"))
        with self.assertRaises(CBORError):  # far deeper than the VM's stack
            loads(b"\x81" * 100000)

    def test_huge_lengths_do_not_allocate(self):
        for hx in ("5bffffffffffffffff", "9bffffffffffffffff", "bb7fffffffffffffff",
                   "9a000f4240" + "00" * 10, "5a000f4240" + "00" * 10):
            with self.assertRaises(CBORError):
                loads(h(hx))

    def test_valid_utf8(self):
        for s in ("\u007f", "\u0080", "\u07ff", "\u0800", "\u9fff",
                  "\ue000", "\uffff", "\U00010000", "\U0010ffff", "a\u00e9\u6c34\U0001f600z"):
            b = dumps(s)
            self.assertEqual(loads(b), s)
            self.assertEqual(dumps(loads(b)), b)
        self.assertEqual(loads(h("63ed9fbf")), "\ud7ff")
        self.assertEqual(loads(h("63ee8080")), "\ue000")

    def test_runtime_checks_utf8_structure(self):
        # cbor relies on the runtime rejecting structurally broken UTF-8.
        for bad in (b"\xff", b"\x80", b"\xc3(", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"):
            with self.assertRaises(UnicodeError):
                str(bad, "utf-8")

    def test_input_types(self):
        b = dumps({1: [b"ab", "cd"]})
        self.assertEqual(loads(bytearray(b)), {1: [b"ab", "cd"]})
        self.assertEqual(loads(memoryview(b)), {1: [b"ab", "cd"]})
        self.assertEqual(type(loads(memoryview(b))[1][0]), bytes)
        self.assertEqual(decode_one(memoryview(b"\x00" + b), 1), ({1: [b"ab", "cd"]}, len(b) + 1))
        for bad in ("00", None, 0, [0]):
            with self.assertRaises(CBORError):
                loads(bad)
        for off in (-1, 2, None):
            with self.assertRaises(CBORError):
                decode_one(b"\x00", off)

    def test_accepted_input_is_canonical(self):
        for _, hx in APPENDIX_A:
            self.assertEqual(dumps(loads(h(hx))), h(hx))


class TestFuzz(unittest.TestCase):
    # A deterministic mutation fuzz that runs on the device's VM too (the hypothesis
    # tests in tests/test_cbor_props.py run only on CPython).
    def test_mutations_raise_only_cbor_error(self):
        seeds = [h(hx) for _, hx in APPENDIX_A] + [dumps(
            {0: 1, 1: b"\x00" * 32, 2: -1700000000123, 3: "cam-\u00e9\U0001f600", 4: [1, None, True],
             5: {1: -8, "k": b"", b"b": Tag(7, [])}, 1000: [[[0]]]})]
        state = [12345]

        def rnd(n):
            state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
            return (state[0] >> 8) % n

        accepted = 0
        for i in range(3000):
            buf = seeds[i % len(seeds)]
            for _ in range(1 + rnd(3)):
                op, pos = rnd(5), rnd(len(buf) + 1)
                if op == 0 and pos < len(buf):  # flip a bit
                    buf = buf[:pos] + bytes([buf[pos] ^ (1 << rnd(8))]) + buf[pos + 1:]
                elif op == 1 and pos < len(buf):  # set a byte
                    buf = buf[:pos] + bytes([rnd(256)]) + buf[pos + 1:]
                elif op == 2:  # insert a byte
                    buf = buf[:pos] + bytes([rnd(256)]) + buf[pos:]
                elif op == 3:  # delete a byte
                    buf = buf[:pos] + buf[pos + 1:]
                else:  # truncate
                    buf = buf[:pos]
            try:
                x = loads(buf)
            except CBORError:
                continue
            accepted += 1
            self.assertEqual(dumps(x), buf)  # the strict decoder accepts only canonical input
        self.assertTrue(accepted > 100)


class TestTag(unittest.TestCase):
    def test_eq_repr(self):
        self.assertEqual(Tag(1, [2]), Tag(1, [2]))
        self.assertTrue(Tag(1, 2) != Tag(1, 3))
        self.assertTrue(Tag(1, 2) != Tag(2, 2))
        self.assertTrue(Tag(1, 2) != 2)
        self.assertEqual(repr(Tag(18, b"x")), "Tag(18, b'x')")
        t = Tag(5, "v")
        self.assertEqual((t.tag, t.value), (5, "v"))

    def test_nested(self):
        v = Tag(18, [b"p", {1: -7}, None, Tag(24, b"x")])
        self.assertEqual(loads(dumps(v)), v)
