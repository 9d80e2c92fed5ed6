# A TEXTBOOK Ed25519 (RFC 8032) and SHA-512 (FIPS 180-4): the comparison baseline for
# tests/bench/crypto_vm.py. Runs on MicroPython and CPython. Not used by the firmware.
#
# Textbook means the straightforward way, as in RFC 8032's section 6 reference code:
# - SHA-512 with 64-bit bigint words, a rotr() function masking with 0xFFFF...FF, the
#   message schedule in a list, a..h shifted every round;
# - extended coordinates, one addition formula used for doubling too, bit-by-bit
#   double-and-add scalar multiplication, A = a.B recomputed for every signature;
# - verify decompresses R and A and checks [S]B == R + [k]A with two separate
#   scalar multiplications.
# One deviation from RFC 8032's code, to keep the baseline honest: modular inversion and
# the square root use a Python square-and-multiply loop instead of the builtin
# pow(x, e, p), because three-argument pow on 255-bit ints takes ~330 ms on the
# MicroPython 1.27 WebAssembly VM (it would make this baseline ~100x slower, not 3x).

MASK = 0xFFFFFFFFFFFFFFFF

# FIPS 180-4's round constants and initial hash value (the same numbers the firmware uses)
from sealcamfw.sha512 import _H0 as H0, _K as K  # noqa: E402


def rotr(x, n):
    return ((x >> n) | (x << (64 - n))) & MASK


def sha512_compress(H, block):
    W = [int.from_bytes(block[8 * t:8 * t + 8], "big") for t in range(16)]
    for t in range(16, 80):
        s0 = rotr(W[t - 15], 1) ^ rotr(W[t - 15], 8) ^ (W[t - 15] >> 7)
        s1 = rotr(W[t - 2], 19) ^ rotr(W[t - 2], 61) ^ (W[t - 2] >> 6)
        W.append((W[t - 16] + s0 + W[t - 7] + s1) & MASK)
    a, b, c, d, e, f, g, h = H
    for t in range(80):
        S1 = rotr(e, 14) ^ rotr(e, 18) ^ rotr(e, 41)
        ch = (e & f) ^ ((~e) & g)
        temp1 = (h + S1 + ch + K[t] + W[t]) & MASK
        S0 = rotr(a, 28) ^ rotr(a, 34) ^ rotr(a, 39)
        maj = (a & b) ^ (a & c) ^ (b & c)
        temp2 = (S0 + maj) & MASK
        h = g
        g = f
        f = e
        e = (d + temp1) & MASK
        d = c
        c = b
        b = a
        a = (temp1 + temp2) & MASK
    return [(x + y) & MASK for x, y in zip(H, (a, b, c, d, e, f, g, h))]


def sha512(data):
    data = bytes(data)
    n = len(data)
    data = data + b"\x80" + bytes((111 - n) % 128) + (8 * n).to_bytes(16, "big")
    H = list(H0)
    for i in range(0, len(data), 128):
        H = sha512_compress(H, data[i:i + 128])
    return b"".join(x.to_bytes(8, "big") for x in H)


# ------------------------------------------------------------------------- Ed25519

p = 2**255 - 19
q = 2**252 + 27742317777372353535851937790883648493


def powmod(b, e):
    r = 1
    b %= p
    while e:
        if e & 1:
            r = r * b % p
        b = b * b % p
        e >>= 1
    return r


def modp_inv(x):
    return powmod(x, p - 2)


d = -121665 * modp_inv(121666) % p
modp_sqrt_m1 = powmod(2, (p - 1) // 4)


def point_add(P, Q):
    A = (P[1] - P[0]) * (Q[1] - Q[0]) % p
    B = (P[1] + P[0]) * (Q[1] + Q[0]) % p
    C = 2 * P[3] * Q[3] * d % p
    D = 2 * P[2] * Q[2] % p
    E, F, G, H = B - A, D - C, D + C, B + A
    return (E * F % p, G * H % p, F * G % p, E * H % p)


def point_mul(s, P):
    Q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            Q = point_add(Q, P)
        P = point_add(P, P)
        s >>= 1
    return Q


def point_equal(P, Q):
    if (P[0] * Q[2] - Q[0] * P[2]) % p != 0:
        return False
    if (P[1] * Q[2] - Q[1] * P[2]) % p != 0:
        return False
    return True


def recover_x(y, sign):
    if y >= p:
        return None
    x2 = (y * y - 1) * modp_inv(d * y * y + 1)
    if x2 == 0:
        if sign:
            return None
        return 0
    x = powmod(x2, (p + 3) // 8)
    if (x * x - x2) % p != 0:
        x = x * modp_sqrt_m1 % p
    if (x * x - x2) % p != 0:
        return None
    if (x & 1) != sign:
        x = p - x
    return x


g_y = 4 * modp_inv(5) % p
g_x = recover_x(g_y, 0)
G = (g_x, g_y, 1, g_x * g_y % p)


def point_compress(P):
    zinv = modp_inv(P[2])
    x = P[0] * zinv % p
    y = P[1] * zinv % p
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def point_decompress(s):
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % p)


def secret_expand(secret):
    h = sha512(secret)
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= (1 << 254)
    return (a, h[32:])


def secret_to_public(secret):
    a, dummy = secret_expand(secret)
    return point_compress(point_mul(a, G))


def sha512_modq(s):
    return int.from_bytes(sha512(s), "little") % q


def sign(secret, msg):
    a, prefix = secret_expand(secret)
    A = point_compress(point_mul(a, G))
    r = sha512_modq(prefix + msg)
    R = point_mul(r, G)
    Rs = point_compress(R)
    h = sha512_modq(Rs + A + msg)
    s = (r + h * a) % q
    return Rs + s.to_bytes(32, "little")


def verify(public, msg, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    A = point_decompress(public)
    if not A:
        return False
    Rs = signature[:32]
    R = point_decompress(Rs)
    if not R:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= q:
        return False
    h = sha512_modq(Rs + public + msg)
    sB = point_mul(s, G)
    hA = point_mul(h, A)
    return point_equal(sB, point_add(R, hA))
