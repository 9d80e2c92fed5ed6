# SHA-512 (firmware/sealcamfw/sha512.py) unit tests: FIPS 180-4 examples, lengths around the block
# and padding boundaries, streaming over parts. Run unchanged on CPython (pytest) and on
# the MicroPython VM (tests/firmware/vm_unittest.py test_sha512).
import unittest

from sealcamfw import sha512

# bytes(range(256)) * 8, truncated to n: its SHA-512 (from hashlib on CPython)
BOUNDARY = (
    (1, "b8244d028981d693af7b456af8efa4cad63d282e19ff14942c246e50d9351d22704a802a71c3580b6370de4ceb293c324a8423342557d4e5c38438f0e36910ee"),
    (55, "6856647f269c2ee3d8128f0b25427659d880641ef343300dd3cd4679168f58d6527fda70b4ebc854e2065e172b7d58c1536992c0810599259ba84a2b40c65414"),
    (111, "a1a111449b198d9b1f538bad7f3fc1022b3a5b1a5e90a0bc860de8512746cbc31599e6c834de3a3235327af0b51ff57bf7acf1974a73014d9c3953812edc7c8d"),
    (112, "c5fbd731d19d2ae1180f001be72c2c1aaba1d7b094b3748880e24593b8e117a750e11c1bd867cc2f96dace8c8b74abd2d5c4f236be444e77d30d1916174070b9"),
    (113, "61b2e77db697dfe5571fff3ed06bd60c41e1e7b7c08a80de01cb16526d9a9a52d690dfbe792278a60f6e2b4c57a97c729773f26e258d2393890c985d645f6715"),
    (127, "eab89674feaa34e27aebeeff3c0a4d70070bb872d5e9f186cf1dbbdee517b6e35724d629ff025a5b07185e911ada7e3c8acf830aa0e4f71777bd2d44f504f7f0"),
    (128, "1dffd5e3adb71d45d2245939665521ae001a317a03720a45732ba1900ca3b8351fc5c9b4ca513eba6f80bc7b1d1fdad4abd13491cb824d61b08d8c0e1561b3f7"),
    (129, "1d9da57fbbdab09afb3506ab2d223d06109d65c1c8ad197f50138f714bc4c3f2fe5787922639c680acad1c651f955990425954ce2cba0c5cc83f2667d878eb0f"),
    (239, "cb4c7fd522756d5781ad3a4f590a1d862906b960e7720136cb3fb36b563caa1ea5689134291fa79c80ccc2b4092b41df32ebdcb36dbe79db483440228c1622a8"),
    (240, "6c48466c9f6c07e4ab762c696b7eeb35cfe236fca73683e5fab873ac3489b4d2eb3d7afcce7e8165dbbf37aded3b5b0c889c0b7e0f1790a8330d8677429d91a5"),
    (241, "4f663484efca758d670147758a5d4d9e5933fe22c0a1dc01f954738ff8310a6515b3ec42094449075ed678c55ee001a4fb91b1081dfae6ab83860b7b4cc7b4ab"),
    (255, "15025c9d135861ff5a549df0bfd6c398fd126613496d4e97627651e68b7b1f80407f187d7978464f0f78bfeea787600faaebbe991eddb60671cd0ce874f0a744"),
    (256, "1e7b80bc8edc552c8feeb2780e111477e5bc70465fac1a77b29b35980c3f0ce4a036a6c9462036824bd56801e62af7e9feba5c22ed8a5af877bf7de117dcac6d"),
    (257, "b00ad21342988b64ec9a44cd800a8f022a3fbcc018b95b87d35d80134f7e47f6db8e69b2d79301121402b2cdb029e3e592a53128cb54a648e7dd240ac1162cb2"),
    (1000, "6cd2eda9bf9c0597129029b0054b81e433f6b8b7b499a75eb705efd74bac194149835b1d1a14c48be696e4d588456d512a22eae7aa1b57be2b56eae7d35e08cb"),
)

DATA = bytes(range(256)) * 8


def h(s):
    return bytes.fromhex(s)


class TestSHA512(unittest.TestCase):
    def check(self, data, hexdigest):
        want = h(hexdigest)
        self.assertEqual(sha512.sha512_py(data), want)
        self.assertEqual(sha512.sha512(data), want)
        self.assertEqual(sha512.sha512_parts(data), want)
        self.assertEqual(sha512.sha512_parts_py(data), want)

    def test_fips_abc(self):
        self.check(b"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                           "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")

    def test_empty(self):
        self.check(b"", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")

    def test_fips_448_bits(self):
        self.check(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                   "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c335"
                   "96fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445")

    def test_fips_896_bits(self):
        self.check(b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                   b"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                   "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
                   "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909")

    def test_block_and_padding_boundaries(self):
        for n, hexdigest in BOUNDARY:
            self.check(DATA[:n], hexdigest)

    def test_ten_thousand_a(self):
        self.check(b"a" * 10000, "0593036f4f479d2eb8078ca26b1d59321a86bdfcb04cb40043694f1eb0301b8a"
                                 "cd20b936db3c916ebcc1b609400ffcf3fa8d569d7e39293855668645094baf0e")

    def test_buffer_types(self):
        want = h(BOUNDARY[-1][1])
        for data in (bytearray(DATA[:1000]), memoryview(DATA)[:1000]):
            self.assertEqual(sha512.sha512_py(data), want)
            self.assertEqual(sha512.sha512(data), want)

    def test_parts_any_split(self):
        for n, hexdigest in BOUNDARY:
            want = h(hexdigest)
            data = DATA[:n]
            for cuts in ((0,), (1,), (n // 2,), (n - 1,), (5, 130), (127, 128, 129), (3, 3, 250)):
                cuts = [c for c in cuts if c <= n]
                parts = []
                last = 0
                for c in cuts:
                    parts.append(data[last:c])
                    last = c
                parts.append(data[last:])
                self.assertEqual(sha512.sha512_parts_py(*parts), want)
                self.assertEqual(sha512.sha512_parts(*parts), want)

    def test_parts_mixed_types_and_empty(self):
        want = h(BOUNDARY[-1][1])
        mv = memoryview(DATA)
        parts = (b"", DATA[:100], bytearray(DATA[100:300]), b"", mv[300:301], mv[301:1000], b"")
        self.assertEqual(sha512.sha512_parts_py(*parts), want)
        self.assertEqual(sha512.sha512_parts(*parts), want)
        self.assertEqual(sha512.sha512_parts_py(), sha512.sha512_py(b""))

    def test_digest_is_bytes(self):
        d = sha512.sha512_py(b"x")
        self.assertTrue(isinstance(d, bytes))
        self.assertEqual(len(d), 64)


if __name__ == "__main__":
    unittest.main()
