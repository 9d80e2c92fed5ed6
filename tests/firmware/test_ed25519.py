# Ed25519 (firmware/sealcamfw/ed25519.py) unit tests: the RFC 8032 section 7.1 vectors, and the
# verification rules (RFC 8032 section 5.1.7): non-canonical S, non-canonical or off-curve
# points, small-order A and R, tampering. Run unchanged on CPython (pytest) and on the
# MicroPython VM (tests/firmware/vm_unittest.py test_ed25519).
import unittest

from sealcamfw import ed25519
from sealcamfw import sha512

L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19


def h(s):
    return bytes.fromhex(s)


MSG_1024 = (
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
    "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
    "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
    "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
    "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
    "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
    "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
    "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
    "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
    "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
    "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
    "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
    "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
    "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
    "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
    "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
    "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
    "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
    "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
    "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
    "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
    "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0"
)

# (name, seed, public key, message, signature), RFC 8032 section 7.1
RFC8032 = (
    ("TEST 1",
     "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("TEST 2",
     "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("TEST 3",
     "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ("TEST 1024",
     "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
     "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
     MSG_1024,
     "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
     "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"),
    ("TEST SHA(abc)",
     "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
     "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
)

# BoringSSL's vectors with S just under and just above the bound L (also in Wycheproof)
S_BOUND_PUB = "100fdf47fb94f1536a4f7c3fda27383fa03375a8f527c537e6f1703c47f94f86"
S_UNDER = ("124e583f8b8eca58bb29c271b41d36986bbc45541f8e51f9cb0133eca447601e",
           "dac119d6ca87fc59ae611c157048f4d4fc932a149dbe20ec6effd1436abf83ea"
           "05c7df0fef06147241259113909bc71bd3c53ba4464ffcad3c0968f2ffffff0f")
S_ABOVE = ("6a0bc2b0057cedfc0fa2e3f7f7d39279b30f454a69dfd1117c758d86b19d85e0",
           "0971f86d2c9c78582524a103cb9cf949522ae528f8054dc20107d999be673ff4"
           "e25ebf2f2928766b1248bec6e91697775f8446639ede46ad4df4053000000010")

IDENTITY = h("0100000000000000000000000000000000000000000000000000000000000000")


def enc(n):
    return n.to_bytes(32, "little")


def clamped_scalar(seed):
    """The secret scalar a of a seed (RFC 8032 5.1.5), from the public SHA-512."""
    a = int.from_bytes(sha512.sha512(seed)[:32], "little")
    return ((a & ((1 << 254) - 8)) | (1 << 254)) % L


def flip(b, i):
    b = bytearray(b)
    b[i >> 3] ^= 1 << (i & 7)
    return bytes(b)


class TestRFC8032Vectors(unittest.TestCase):
    def check(self, vector):
        name, seed, pub, msg, sig = vector
        seed, pub, msg, sig = h(seed), h(pub), h(msg), h(sig)
        sk = ed25519.secret(seed)
        self.assertEqual(ed25519.public(sk), pub, name)
        self.assertEqual(ed25519.sign(sk, msg), sig, name)
        self.assertTrue(ed25519.verify(pub, msg, sig), name)
        self.assertFalse(ed25519.verify(pub, msg + b"\x00", sig), name)
        self.assertFalse(ed25519.verify(pub, msg, flip(sig, 0)), name)

    def test_1(self):
        self.check(RFC8032[0])

    def test_2(self):
        self.check(RFC8032[1])

    def test_3(self):
        self.check(RFC8032[2])

    def test_1024(self):
        self.assertEqual(len(h(MSG_1024)), 1023)
        self.check(RFC8032[3])

    def test_sha_abc(self):
        self.assertEqual(h(RFC8032[4][3]), sha512.sha512(b"abc"))
        self.check(RFC8032[4])

    def test_s_just_under_bound_verifies(self):
        self.assertTrue(ed25519.verify(h(S_BOUND_PUB), h(S_UNDER[0]), h(S_UNDER[1])))


class TestVerifyRejects(unittest.TestCase):
    def setUp(self):
        self.seed = h(RFC8032[2][1])
        self.sk = ed25519.secret(self.seed)
        self.pub = ed25519.public(self.sk)
        self.msg = b"checkpoint 42"
        self.sig = ed25519.sign(self.sk, self.msg)
        self.assertTrue(ed25519.verify(self.pub, self.msg, self.sig))

    def test_s_plus_l(self):
        s = int.from_bytes(self.sig[32:], "little")
        self.assertFalse(ed25519.verify(self.pub, self.msg, self.sig[:32] + enc(s + L)))
        self.assertFalse(ed25519.verify(self.pub, self.msg, self.sig[:32] + enc(L)))
        self.assertFalse(ed25519.verify(self.pub, self.msg, self.sig[:32] + b"\xff" * 32))

    def test_s_just_above_bound(self):
        self.assertFalse(ed25519.verify(h(S_BOUND_PUB), h(S_ABOVE[0]), h(S_ABOVE[1])))

    def test_noncanonical_y_p(self):
        # y = p (and p + 3, a non-canonical encoding of the curve point with y = 3)
        for y in (P, P + 3, 2**255 - 1):
            self.assertFalse(ed25519.verify(enc(y), self.msg, self.sig))
            self.assertFalse(ed25519.verify(self.pub, self.msg, enc(y) + self.sig[32:]))
            self.assertTrue(ed25519._decode(enc(y)) is None)
        self.assertTrue(ed25519._decode(enc(3)) is not None)

    def test_not_on_curve(self):
        # y = 2: (y^2 - 1) / (d y^2 + 1) is not a square mod p
        self.assertTrue(ed25519._decode(enc(2)) is None)
        self.assertFalse(ed25519.verify(enc(2), self.msg, self.sig))
        self.assertFalse(ed25519.verify(self.pub, self.msg, enc(2) + self.sig[32:]))

    def test_x_zero_with_sign_bit(self):
        self.assertTrue(ed25519._decode(enc(1 | (1 << 255))) is None)
        self.assertFalse(ed25519.verify(enc(1 | (1 << 255)), self.msg, self.sig))

    def test_identity_public_key(self):
        # With A = identity, [S]B = R + [k]A holds for R = [S]B and any message: a verifier
        # without the small-order check accepts this forgery.
        other = h(RFC8032[0][1])
        r_pub = ed25519.public(ed25519.secret(other))
        forged = r_pub + enc(clamped_scalar(other))
        self.assertFalse(ed25519.verify(IDENTITY, b"anything", forged))
        self.assertFalse(ed25519.verify(IDENTITY, b"", forged))
        # the same with a non-canonical encoding of the identity (y = p + 1)
        self.assertFalse(ed25519.verify(enc(P + 1), b"anything", forged))

    def test_identity_r(self):
        # R = identity and S = k a: [S]B = R + [k]A holds; refused because R has small order.
        a = clamped_scalar(self.seed)
        for r in (IDENTITY, enc(P + 1)):
            k = int.from_bytes(sha512.sha512(r + self.pub + self.msg), "little") % L
            self.assertFalse(ed25519.verify(self.pub, self.msg, r + enc(k * a % L)))

    def test_small_order_points(self):
        for enc_pt in ed25519._SMALL_ORDER:
            pt = ed25519._decode(enc_pt)
            self.assertTrue(pt is not None)
            x, y = pt
            q = (x, y, 1, x * y % P)
            for _ in range(3):
                q = ed25519._dbl(q)
            self.assertEqual(ed25519._encode(q[0], q[1], q[2]), IDENTITY)   # 8P = identity
            self.assertFalse(ed25519.verify(enc_pt, self.msg, self.sig))
            self.assertFalse(ed25519.verify(self.pub, self.msg, enc_pt + self.sig[32:]))
        self.assertEqual(len(set(ed25519._SMALL_ORDER)), 8)

    def test_flipped_bits(self):
        for i in range(0, 512, 7):
            self.assertFalse(ed25519.verify(self.pub, self.msg, flip(self.sig, i)))
        for i in range(0, 256, 11):
            self.assertFalse(ed25519.verify(flip(self.pub, i), self.msg, self.sig))
        for i in range(0, 8 * len(self.msg), 5):
            self.assertFalse(ed25519.verify(self.pub, flip(self.msg, i), self.sig))

    def test_other_key(self):
        other = ed25519.public(ed25519.secret(h(RFC8032[0][1])))
        self.assertFalse(ed25519.verify(other, self.msg, self.sig))

    def test_bad_input_never_raises(self):
        for pub, msg, sig in ((self.pub[:31], self.msg, self.sig), (self.pub, self.msg, self.sig[:63]),
                              (self.pub + b"\x00", self.msg, self.sig), (None, self.msg, self.sig),
                              (self.pub, self.msg, None), (self.pub, None, self.sig),
                              (b"", b"", b""), (32, self.msg, self.sig), (self.pub, self.msg, 64),
                              (self.pub, "checkpoint 42", self.sig)):
            self.assertFalse(ed25519.verify(pub, msg, sig))


class TestAPI(unittest.TestCase):
    def test_buffer_types(self):
        sk = ed25519.secret(bytearray(h(RFC8032[1][1])))
        pub, msg, sig = h(RFC8032[1][2]), h(RFC8032[1][3]), h(RFC8032[1][4])
        self.assertEqual(ed25519.public(sk), pub)
        self.assertEqual(ed25519.sign(sk, bytearray(msg)), sig)
        self.assertEqual(ed25519.sign(sk, memoryview(msg)), sig)
        self.assertTrue(ed25519.verify(bytearray(pub), memoryview(msg), bytearray(sig)))
        self.assertEqual(ed25519.sign(h(RFC8032[1][1]), msg), sig)   # a raw seed works too

    def test_seed_length(self):
        for bad in (b"", bytes(31), bytes(33)):
            with self.assertRaises(ValueError):
                ed25519.secret(bad)
        for bad in (32, None, "0" * 32):
            with self.assertRaises(TypeError):
                ed25519.secret(bad)

    def test_repr_hides_secret(self):
        sk = ed25519.secret(h(RFC8032[0][1]))
        self.assertTrue(RFC8032[0][2] in repr(sk))
        self.assertFalse(RFC8032[0][1] in repr(sk))

    def test_roundtrip_lengths(self):
        # messages around the SHA-512 block boundaries of both hashes of a signature
        sk = ed25519.secret(sha512.sha512(b"roundtrip")[:32])
        pub = ed25519.public(sk)
        base = sha512.sha512(b"m") * 5
        for n in (0, 1, 63, 64, 65, 95, 96, 111, 112, 175, 176, 190, 239, 240, 300):
            msg = base[:n]
            sig = ed25519.sign(sk, msg)
            self.assertEqual(len(sig), 64)
            self.assertEqual(sig, ed25519.sign(sk, msg))          # deterministic
            self.assertTrue(ed25519.verify(pub, msg, sig))
            self.assertFalse(ed25519.verify(pub, msg + b"!", sig))

    def test_field_and_group_internals(self):
        for x in (1, 2, 19, P - 1, 2**254 + 12345):
            self.assertEqual(ed25519._inv(x) * x % P, 1)
        # [L]B = identity; [1]B = B; [s]B + [k](-A) against [s - k a]B
        self.assertEqual(ed25519._encode(*ed25519._base_mul(L)), IDENTITY)
        b = ed25519._base_point()
        self.assertEqual(ed25519._encode(*ed25519._base_mul(1)), ed25519._encode(b[0], b[1], b[2]))
        seed = h(RFC8032[2][1])
        a = clamped_scalar(seed)
        pub = ed25519.public(ed25519.secret(seed))
        atab = ed25519._neg_a_table(pub)
        for s, k in ((0, 1), (1, 0), (L - 1, L - 1), (2**252, 3), (123456789, 987654321)):
            got = ed25519._encode(*ed25519._double_scalarmult(s, k, atab))
            want = ed25519._encode(*ed25519._base_mul((s - k * a) % L))
            self.assertEqual(got, want)


if __name__ == "__main__":
    unittest.main()
