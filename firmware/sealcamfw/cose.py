# COSE_Sign1 (RFC 9052 §4.2) with Ed25519, as profiled in protocol/SPEC.md §2.2:
# protected {1: -8 (EdDSA), 4: kid}, empty unprotected header, attached payload, tag 18.
from sealcamfw import cbor
from sealcamfw import ed25519

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_ALG_EDDSA = const(-8)
_TAG_SIGN1 = const(18)
_EMPTY = {}


def protected(kid):
    return cbor.dumps({1: _ALG_EDDSA, 4: kid})


def sig_structure(prot, payload):
    return cbor.dumps(["Signature1", prot, b"", payload])


def sign1(sk, prot, payload):
    """Tagged COSE_Sign1 bytes of payload, signed with the ed25519 secret sk."""
    sig = ed25519.sign(sk, sig_structure(prot, payload))
    return cbor.dumps(cbor.Tag(_TAG_SIGN1, [prot, _EMPTY, payload, sig]))


def parse1(data):
    """(protected bytes, kid, payload bytes, signature) of a tagged COSE_Sign1; ValueError if malformed."""
    obj = cbor.loads(data) if not isinstance(data, cbor.Tag) else data
    if not isinstance(obj, cbor.Tag) or obj.tag != _TAG_SIGN1:
        raise ValueError("not a tagged COSE_Sign1")
    v = obj.value
    if not isinstance(v, list) or len(v) != 4:
        raise ValueError("COSE_Sign1 must be a 4-element array")
    prot, unprot, payload, sig = v
    if not isinstance(prot, bytes) or not isinstance(payload, bytes) or not isinstance(sig, bytes):
        raise ValueError("COSE_Sign1 fields have wrong types")
    hdr = cbor.loads(prot)
    if not isinstance(hdr, dict) or hdr.get(1) != _ALG_EDDSA:
        raise ValueError("COSE_Sign1 algorithm is not EdDSA")
    if unprot != _EMPTY:
        raise ValueError("COSE_Sign1 unprotected header must be empty")
    return prot, hdr.get(4), payload, sig


def verify1(pub, data):
    """Payload bytes if data is a COSE_Sign1 that verifies with pub; ValueError otherwise."""
    prot, kid, payload, sig = parse1(data)
    if not ed25519.verify(pub, sig_structure(prot, payload), sig):
        raise ValueError("COSE_Sign1 signature does not verify")
    return payload
