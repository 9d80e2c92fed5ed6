# Ed25519 signatures (RFC 8032, "pure" Ed25519: no prehash, no context) for the sealcam
# firmware, in plain Python that runs on MicroPython (1.27 WebAssembly VM) and CPython.
#
#   sk = secret(seed32)          expand a 32-byte seed once (scalar, nonce prefix, public key)
#   public(sk) -> 32 bytes       the public key
#   sign(sk, msg) -> 64 bytes    the signature (deterministic, as RFC 8032 requires)
#   verify(pub32, msg, sig64)    True / False; never raises
#
# Verification rules (RFC 8032 section 5.1.7, cofactorless):
# - S must be canonical: S < L, else False.
# - A and R must be canonical encodings (y < p; x = 0 with the sign bit set is refused)
#   of points on the curve, else False. A is decoded; R is not decoded at all: the
#   verifier computes R' = [S]B - [k]A and compares its canonical encoding with the 32
#   bytes of R, so a non-canonical or off-curve R can never match.
# - A and R of small order (8P = identity) are refused: for a canonical encoding that is
#   exactly the 8 encodings in _SMALL_ORDER (checked by the tests with 8P = identity).
# - The equation checked is the cofactorless one, [S]B == R + [k]A as exact point
#   equality (RFC 8032 allows it in place of the cofactored [8][S]B == [8]R + [8][k]A),
#   as OpenSSL (the `cryptography` package) and ref10 do: on honest signatures all agree.
#   Points of mixed order (a good point plus a small-order one) are not refused.
# - Stricter than OpenSSL on crafted input: OpenSSL accepts a small-order A (any R = [S]B
#   then "verifies" for every message under A = identity) and a small-order R; this
#   refuses both (tests/firmware/test_ed25519.py has such forgeries).
#
# Speed (the device signs with this on an interpreter; numbers in tests/bench/crypto_vm.py):
# - secret() does the SHA-512 of the seed and A = a.B once; sign() never recomputes them.
# - SHA-512 dominates a signature on the MicroPython VM: see sha512.py.
# - [r]B in sign: signed radix-16 digits and a table of j * 256^i * B (i < 32, j <= 8) in
#   affine "Niels" form (y+x, y-x, 2dxy), built once at first use (ref10's method):
#   64 mixed additions (7 multiplications each) and 4 doublings, no table of doublings.
# - verify: Straus' joint double-scalar multiplication with width-7 wNAF for S (a table
#   of the odd multiples B..63B, built once) and width-5 wNAF for k (odd multiples of -A,
#   cached for the last public key used), sharing one chain of ~253 doublings.
# - Extended twisted Edwards coordinates (X:Y:Z:T), a = -1 formulas (hwcd), with the
#   "completed" intermediate form so each step only computes the coordinates the next
#   step needs (T only before an addition).
# - Field elements are Python ints; sums and differences are left unreduced (they only
#   feed the next product); the first products of each point operation are only
#   "folded" (hi * 19 + lo) once, the last ones twice, no % p (see the field section).
# - Inversion by the extended Euclidean algorithm (~0.1 ms on the VM); three-argument
#   pow(x, p - 2, p) works on MicroPython but takes ~330 ms there, so it is never used.
#   The square root in point decoding uses ref10's addition chain for x^((p-5)/8).
# - No recursion; memory is bounded: the two base-point tables (256 + 32 points of three
#   255-bit ints) take ~53 KB on the VM (gc.mem_alloc, tests/bench/crypto_vm.py), built
#   lazily (~15 ms, at the first secret()) and kept for the process lifetime; the cached
#   -A table is 8 points.
#
# NOT constant-time: this is interpreted Python on bigints; table indices, branches and
# bigint operation times depend on secret nonces. The operation sequence of [r]B is fixed
# (every digit, zero included, costs one table addition), which is all that can be done
# at this level. Use hardware crypto where side channels matter.
from sealcamfw.sha512 import sha512, sha512_parts

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
_D2 = 16295367250680780974490674513165176452449235426866156013048779062215315747161
_SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
_MASK255 = (1 << 255) - 1

# The canonical encodings of the 8 points of small order (8P = identity).
_SMALL_ORDER = (
    bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("0000000000000000000000000000000000000000000000000000000000000000"),
    bytes.fromhex("0000000000000000000000000000000000000000000000000000000000000080"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
)

_BUFFERS = (bytes, bytearray, memoryview)

_BASE_W = 7  # wNAF width of S in verify: table of 2^(w-2) = 32 odd multiples of B
_A_W = 5     # wNAF width of k in verify: 8 odd multiples of -A


# ---------------------------------------------------------------------------- field
# A field element is a Python int, not always reduced. x * y % P reduces fully. The
# cheaper "fold" c = (c & M) + (c >> 255) * 19 (2^255 = 19 mod p; ~0.4 us against
# ~1.0 us for % p on the VM) keeps c mod p and shrinks |c| < 2^522 to below ~2^272,
# and a second fold to |c| < 2^255 + 2^21 ("nearly reduced": as good as reduced for
# the bounds below; maybe negative by a little). Inside the scalar multiplications
# (_base_mul, _double_scalarmult) the coordinates X, Y, Z, T are nearly reduced, the
# first products of a step are folded once (|.| < 2^262; sums of a few < 2^264), the
# last products (|.| < 2^528) folded twice, so no value grows from step to step.
# Everything leaving them goes through % p (_encode).

def _inv(a, P=_P):
    """a^-1 mod p (a != 0 mod p), extended Euclid."""
    x0 = 0
    x1 = 1
    r0 = P
    r1 = a % P
    while r1:
        q = r0 // r1
        r0, r1 = r1, r0 - q * r1
        x0, x1 = x1, x0 - q * x1
    return x0 % P


def _sqn(x, n, P=_P, M=_MASK255):
    """x^(2^n) mod p (a reduced result); every other square only folded."""
    for _ in range(n >> 1):
        x = x * x
        x = (x & M) + (x >> 255) * 19
        x = x * x % P
    if n & 1:
        x = x * x % P
    return x


def _pow22523(z, P=_P):
    """z^((p-5)/8) = z^(2^252 - 3) mod p (ref10's addition chain: 251 S + 11 M)."""
    t0 = z * z % P
    t1 = t0 * t0 % P
    t1 = t1 * t1 % P
    t1 = z * t1 % P            # z^9
    t0 = t0 * t1 % P           # z^11
    t0 = t0 * t0 % P           # z^22
    t0 = t1 * t0 % P           # z^(2^5 - 1)
    t1 = _sqn(t0, 5)
    t0 = t1 * t0 % P           # 2^10 - 1
    t1 = _sqn(t0, 10)
    t1 = t1 * t0 % P           # 2^20 - 1
    t2 = _sqn(t1, 20)
    t1 = t2 * t1 % P           # 2^40 - 1
    t1 = _sqn(t1, 10)
    t0 = t1 * t0 % P           # 2^50 - 1
    t1 = _sqn(t0, 50)
    t1 = t1 * t0 % P           # 2^100 - 1
    t2 = _sqn(t1, 100)
    t1 = t2 * t1 % P           # 2^200 - 1
    t1 = _sqn(t1, 50)
    t0 = t1 * t0 % P           # 2^250 - 1
    t0 = _sqn(t0, 2)
    return t0 * z % P          # 2^252 - 3


# --------------------------------------------------------------------------- points
# Extended coordinates: (X, Y, Z, T), x = X/Z, y = Y/Z, x*y = T/Z.
# Niels form of an affine point (precomputed tables): (y + x, y - x, 2*d*x*y), all mod p.

def _add(p, q, P=_P):
    """Extended + extended (add-2008-hwcd-3, a = -1, k = 2d). Used to build tables."""
    X1, Y1, Z1, T1 = p
    X2, Y2, Z2, T2 = q
    a = (Y1 - X1) * (Y2 - X2) % P
    b = (Y1 + X1) * (Y2 + X2) % P
    c = T1 * T2 % P * _D2 % P
    d = Z1 * Z2 * 2 % P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _dbl(p, P=_P):
    """2 * extended point (dbl-2008-hwcd, a = -1), extended result."""
    X, Y, Z = p[0], p[1], p[2]
    xx = X * X % P
    yy = Y * Y % P
    s = X + Y
    aa = s * s % P
    y3 = yy + xx
    z3 = yy - xx
    x3 = aa - y3
    t3 = Z * Z * 2 % P - z3
    return (x3 * t3 % P, y3 * z3 % P, z3 * t3 % P, x3 * y3 % P)


def _to_niels(pts, P=_P):
    """Extended points -> Niels form, with one inversion for all (Montgomery's trick)."""
    n = len(pts)
    acc = [1] * n
    run = 1
    for i in range(n):
        acc[i] = run
        run = run * pts[i][2] % P
    zinv = _inv(run)
    out = [None] * n
    for i in range(n - 1, -1, -1):
        X, Y, Z, _ = pts[i]
        zi = zinv * acc[i] % P
        zinv = zinv * Z % P
        x = X * zi % P
        y = Y * zi % P
        # "| 0" copies each int into an exact-size one: a % result keeps the dividend's
        # allocation (96 bytes on the VM against 48), and these are kept for good
        out[i] = ((y + x) % P | 0, (y - x) % P | 0, x * y % P * _D2 % P | 0)
    return out


def _encode(X, Y, Z, P=_P):
    zi = _inv(Z)
    x = X * zi % P
    y = Y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode(s, P=_P):
    """32 bytes -> affine (x, y), or None if not the canonical encoding of a curve point."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= _MASK255
    if y >= P:
        return None
    yy = y * y % P
    u = yy - 1
    v = (_D * yy + 1) % P
    v3 = v * v % P * v % P
    uv3 = u * v3 % P
    x = uv3 * _pow22523(uv3 * v3 % P * v % P) % P      # u v^3 (u v^7)^((p-5)/8)
    vxx = v * x % P * x % P
    if vxx != u % P:
        if vxx != -u % P:
            return None                                 # x^2 = u/v has no root
        x = x * _SQRT_M1 % P
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = P - x
    return x, y


_IDENT_NIELS = (1, 1, 0)
_comb = None      # [row i] = [identity, 1, 2, .., 8] * 256^i * B in Niels form (32 x 9)
_btab = None      # odd multiples B, 3B, .., (2^(_BASE_W - 1) - 1) B in Niels form


def _base_point():
    return (_BX, _BY, 1, _BX * _BY % _P)


def _comb_table():
    global _comb
    if _comb is None:
        pts = []
        base = _base_point()
        for i in range(32):
            p = base
            pts.append(p)
            for j in range(7):
                p = _add(p, base)
                pts.append(p)
            if i < 31:
                for j in range(5):          # 8 * 256^i B -> 256^(i+1) B
                    p = _dbl(p)
                base = p
        niels = _to_niels(pts)
        _comb = [[_IDENT_NIELS] + niels[8 * i:8 * i + 8] for i in range(32)]
    return _comb


def _base_odd_table():
    global _btab
    if _btab is None:
        b = _base_point()
        b2 = _dbl(b)
        pts = [b]
        for _ in range((1 << (_BASE_W - 2)) - 1):
            pts.append(_add(pts[-1], b2))
        _btab = _to_niels(pts)
    return _btab


def _base_mul(n, M=_MASK255):
    """[n]B for 0 <= n < 2^253, as projective (X, Y, Z)."""
    tab = _comb_table()
    # signed radix-16 digits e[0..63] in [-8, 8], n = sum e[i] 16^i
    e = []
    for byte in n.to_bytes(32, "little"):
        e.append(byte & 15)
        e.append(byte >> 4)
    carry = 0
    for i in range(63):
        v = e[i] + carry
        carry = (v + 8) >> 4
        e[i] = v - (carry << 4)
    e[63] += carry
    X = 0
    Y = 1
    Z = 1
    T = 0
    # sum over odd digits of e[i] 16^(i-1) B, times 16, plus the even digits
    for start in (1, 0):
        if start == 0:
            for j in range(4):              # multiply by 16 (T only after the last)
                # doubling (dbl-2008-hwcd) into the completed form (x3 : z3, y3 : t3)
                xx = X * X
                xx = (xx & M) + (xx >> 255) * 19
                yy = Y * Y
                yy = (yy & M) + (yy >> 255) * 19
                aa = X + Y
                aa = aa * aa
                aa = (aa & M) + (aa >> 255) * 19
                zz = Z * Z
                zz = (zz & M) + (zz >> 255) * 19
                y3 = yy + xx
                z3 = yy - xx
                x3 = aa - y3
                t3 = zz + zz - z3
                # completed -> projective: the last products, folded twice
                c = x3 * t3; c = (c & M) + (c >> 255) * 19; X = (c & M) + (c >> 255) * 19
                c = y3 * z3; c = (c & M) + (c >> 255) * 19; Y = (c & M) + (c >> 255) * 19
                c = z3 * t3; c = (c & M) + (c >> 255) * 19; Z = (c & M) + (c >> 255) * 19
            c = x3 * y3; c = (c & M) + (c >> 255) * 19; T = (c & M) + (c >> 255) * 19
        for i in range(start, 64, 2):
            # mixed addition of the Niels point e[i] 16^i B (ref10 ge_madd / ge_msub)
            d = e[i]
            if d >= 0:
                yp, ym, t2d = tab[i >> 1][d]
            else:
                ym, yp, t2d = tab[i >> 1][-d]
                t2d = -t2d
            a = (Y + X) * yp
            a = (a & M) + (a >> 255) * 19
            b = (Y - X) * ym
            b = (b & M) + (b >> 255) * 19
            c = T * t2d
            c = (c & M) + (c >> 255) * 19
            zz = Z + Z
            x3 = a - b
            y3 = a + b
            z3 = zz + c
            t3 = zz - c
            c = x3 * t3; c = (c & M) + (c >> 255) * 19; X = (c & M) + (c >> 255) * 19
            c = y3 * z3; c = (c & M) + (c >> 255) * 19; Y = (c & M) + (c >> 255) * 19
            c = z3 * t3; c = (c & M) + (c >> 255) * 19; Z = (c & M) + (c >> 255) * 19
            c = x3 * y3; c = (c & M) + (c >> 255) * 19; T = (c & M) + (c >> 255) * 19
    return X, Y, Z


def _wnaf(n, w):
    """Width-w NAF digits of 0 <= n < 2^253, least significant first, 256 entries."""
    out = [0] * 256
    full = 1 << w
    half = full >> 1
    mask = full - 1
    i = 0
    while n:
        if n & 1:
            d = n & mask
            if d >= half:
                d -= full
            out[i] = d
            n = (n - d) >> w
            i += w
        else:
            n >>= 1
            i += 1
    return out


def _double_scalarmult(s, k, atab, M=_MASK255):
    """[s]B + [k]Q as projective (X, Y, Z), atab = odd multiples of Q in Niels form."""
    btab = _base_odd_table()
    ns = _wnaf(s, _BASE_W)
    nk = _wnaf(k, _A_W)
    i = 255
    while i >= 0 and not ns[i] and not nk[i]:
        i -= 1
    X = 0
    Y = 1
    Z = 1
    while i >= 0:
        # doubling (dbl-2008-hwcd) into the completed form (x3 : z3, y3 : t3); the
        # completed -> extended conversion (T too) is only done before an addition
        xx = X * X
        xx = (xx & M) + (xx >> 255) * 19
        yy = Y * Y
        yy = (yy & M) + (yy >> 255) * 19
        aa = X + Y
        aa = aa * aa
        aa = (aa & M) + (aa >> 255) * 19
        zz = Z * Z
        zz = (zz & M) + (zz >> 255) * 19
        y3 = yy + xx
        z3 = yy - xx
        x3 = aa - y3
        t3 = zz + zz - z3
        db = ns[i]
        da = nk[i]
        if db:
            c = x3 * t3; c = (c & M) + (c >> 255) * 19; X = (c & M) + (c >> 255) * 19
            c = y3 * z3; c = (c & M) + (c >> 255) * 19; Y = (c & M) + (c >> 255) * 19
            c = z3 * t3; c = (c & M) + (c >> 255) * 19; Z = (c & M) + (c >> 255) * 19
            c = x3 * y3; c = (c & M) + (c >> 255) * 19; T = (c & M) + (c >> 255) * 19
            if db > 0:
                yp, ym, t2d = btab[db >> 1]
            else:
                ym, yp, t2d = btab[-db >> 1]
                t2d = -t2d
            a = (Y + X) * yp
            a = (a & M) + (a >> 255) * 19
            b = (Y - X) * ym
            b = (b & M) + (b >> 255) * 19
            c = T * t2d
            c = (c & M) + (c >> 255) * 19
            zz = Z + Z
            x3 = a - b
            y3 = a + b
            z3 = zz + c
            t3 = zz - c
        if da:
            c = x3 * t3; c = (c & M) + (c >> 255) * 19; X = (c & M) + (c >> 255) * 19
            c = y3 * z3; c = (c & M) + (c >> 255) * 19; Y = (c & M) + (c >> 255) * 19
            c = z3 * t3; c = (c & M) + (c >> 255) * 19; Z = (c & M) + (c >> 255) * 19
            c = x3 * y3; c = (c & M) + (c >> 255) * 19; T = (c & M) + (c >> 255) * 19
            if da > 0:
                yp, ym, t2d = atab[da >> 1]
            else:
                ym, yp, t2d = atab[-da >> 1]
                t2d = -t2d
            a = (Y + X) * yp
            a = (a & M) + (a >> 255) * 19
            b = (Y - X) * ym
            b = (b & M) + (b >> 255) * 19
            c = T * t2d
            c = (c & M) + (c >> 255) * 19
            zz = Z + Z
            x3 = a - b
            y3 = a + b
            z3 = zz + c
            t3 = zz - c
        c = x3 * t3; c = (c & M) + (c >> 255) * 19; X = (c & M) + (c >> 255) * 19
        c = y3 * z3; c = (c & M) + (c >> 255) * 19; Y = (c & M) + (c >> 255) * 19
        c = z3 * t3; c = (c & M) + (c >> 255) * 19; Z = (c & M) + (c >> 255) * 19
        i -= 1
    return X, Y, Z


_acache = [None, None]   # last public key -> odd multiples of -A in Niels form


def _neg_a_table(pub, P=_P):
    if _acache[0] == pub:
        return _acache[1]
    pt = _decode(pub)
    if pt is None:
        return None
    x = (P - pt[0]) % P
    y = pt[1]
    p = (x, y, 1, x * y % P)
    p2 = _dbl(p)
    pts = [p]
    for _ in range((1 << (_A_W - 2)) - 1):
        pts.append(_add(pts[-1], p2))
    tab = _to_niels(pts)
    _acache[0] = pub
    _acache[1] = tab
    return tab


# -------------------------------------------------------------------------------- API

class _SecretKey:
    """An expanded Ed25519 secret: the scalar a (mod L), the nonce prefix, the public key.
    Opaque: use public(sk); its repr shows the public key only."""

    def __init__(self, a, prefix, pub):
        self.a = a
        self.prefix = prefix
        self.pub = pub

    def __repr__(self):
        return "<ed25519 secret key, public %s>" % self.pub.hex()


def secret(seed32):
    """Expand a 32-byte seed (RFC 8032 private key) once: hashes it and computes A."""
    if not isinstance(seed32, _BUFFERS):
        raise TypeError("Ed25519 seed must be 32 bytes")
    seed = bytes(seed32)
    if len(seed) != 32:
        raise ValueError("Ed25519 seed must be 32 bytes")
    h = sha512(seed)
    a = int.from_bytes(h[:32], "little")
    a = (a & ((1 << 254) - 8)) | (1 << 254)
    a %= _L                                   # [a]B = [a mod L]B; S uses a mod L
    X, Y, Z = _base_mul(a)
    return _SecretKey(a, h[32:], _encode(X, Y, Z))


def public(sk):
    """The 32-byte public key of a secret() object."""
    return sk.pub


def sign(sk, msg):
    """64-byte Ed25519 signature of msg (bytes-like) with a secret() object (a 32-byte
    seed is accepted too, at the cost of expanding it on every call)."""
    if not isinstance(sk, _SecretKey):
        sk = secret(sk)
    r = int.from_bytes(sha512_parts(sk.prefix, msg), "little") % _L
    X, Y, Z = _base_mul(r)
    rb = _encode(X, Y, Z)
    k = int.from_bytes(sha512_parts(rb, sk.pub, msg), "little") % _L
    return rb + ((r + k * sk.a) % _L).to_bytes(32, "little")


def verify(pub32, msg, sig64):
    """True if sig64 is a valid Ed25519 signature of msg under pub32, else False (for any
    malformed input too; never raises)."""
    try:
        if not (isinstance(pub32, _BUFFERS) and isinstance(sig64, _BUFFERS)
                and isinstance(msg, _BUFFERS)):
            return False
        pub = bytes(pub32)
        sig = bytes(sig64)
        if len(pub) != 32 or len(sig) != 64:
            return False
        s = int.from_bytes(sig[32:], "little")
        if s >= _L:
            return False
        rb = sig[:32]
        if rb in _SMALL_ORDER or pub in _SMALL_ORDER:
            return False
        atab = _neg_a_table(pub)
        if atab is None:
            return False
        k = int.from_bytes(sha512_parts(rb, pub, msg), "little") % _L
        X, Y, Z = _double_scalarmult(s, k, atab)
        return _encode(X, Y, Z) == rb
    except Exception:
        return False
