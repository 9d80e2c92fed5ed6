"""The station log (SPEC §11): RFC 9162 hashing, proofs and their verification against the
RFC 6962/9162 test vectors (the ones transparency-dev and Go's internal/tlog share) and a
second, naive computation written here from the RFC's recursive definitions; C2SP signed
notes against the golang.org/x/mod/sumdb/note vector; the on-disk log."""
import base64
import hashlib
import os

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from host_tools.tlog import merkle, note
from host_tools.tlog.log import Log, LogError

h = bytes.fromhex
LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
          "606162636465666768696a6b6c6d6e6f"]
ROOTS = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
HS = [merkle.leaf_hash(h(x)) for x in LEAVES]


# --- a second computation: RFC 9162 §2.1 written as the RFC states it --------------------

def _sha(b):
    return hashlib.sha256(b).digest()


def naive_mth(d):                       # d: list of leaf *data*
    n = len(d)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return _sha(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _sha(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m, d):
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return naive_path(m, d[:k]) + [naive_mth(d[k:])]
    return naive_path(m - k, d[k:]) + [naive_mth(d[:k])]


def naive_subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [naive_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return naive_subproof(m, d[:k], b) + [naive_mth(d[k:])]
    return naive_subproof(m - k, d[k:], False) + [naive_mth(d[:k])]


def naive_proof(m, d):
    return naive_subproof(m, d, True)


# --- vectors --------------------------------------------------------------------------

def test_roots_match_the_published_vectors():
    assert merkle.root([]) == h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    for n in range(1, 9):
        assert merkle.root(HS[:n]) == h(ROOTS[n - 1]), n
        cr = merkle.CompactRange()
        for x in HS[:n]:
            cr.append(x)
        assert cr.root() == h(ROOTS[n - 1])


def test_inclusion_proof_vector():
    proof = [h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
             h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
             h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]
    assert merkle.inclusion_proof(HS, 5) == proof
    merkle.verify_inclusion(5, 8, HS[5], proof, h(ROOTS[7]))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(4, 8, HS[5], proof, h(ROOTS[7]))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(5, 8, HS[4], proof, h(ROOTS[7]))


def test_consistency_proof_vectors():
    p68 = [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
           h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
           h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]
    p25 = [h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
           h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]
    assert merkle.consistency_proof(HS, 6) == p68
    assert merkle.consistency_proof(HS, 2, 5) == p25
    merkle.verify_consistency(6, 8, p68, h(ROOTS[5]), h(ROOTS[7]))
    merkle.verify_consistency(2, 5, p25, h(ROOTS[1]), h(ROOTS[4]))
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(6, 8, p68, h(ROOTS[4]), h(ROOTS[7]))
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(6, 8, p68[:-1], h(ROOTS[5]), h(ROOTS[7]))


# --- against the naive computation, every size and index ----------------------------

def test_roots_and_proofs_match_a_naive_computation():
    data = [bytes([i]) * (i % 5) for i in range(37)]
    hs = [merkle.leaf_hash(x) for x in data]
    for n in range(0, 38):
        r = merkle.root(hs[:n])
        assert r == naive_mth(data[:n]), n
        for m in range(n):
            p = merkle.inclusion_proof(hs, m, n)
            assert p == naive_path(m, data[:n]), (m, n)
            merkle.verify_inclusion(m, n, hs[m], p, r)
            if p:
                bad = list(p)
                bad[-1] = bytes(32)
                with pytest.raises(merkle.ProofError):
                    merkle.verify_inclusion(m, n, hs[m], bad, r)
        for m in range(1, n + 1):
            p = merkle.consistency_proof(hs, m, n)
            assert p == (naive_proof(m, data[:n]) if m < n else []), (m, n)
            old = naive_mth(data[:m])
            merkle.verify_consistency(m, n, p, old, r)
            if m < n:
                with pytest.raises(merkle.ProofError):       # another old tree
                    merkle.verify_consistency(m, n, p, naive_mth(data[1:m + 1]), r)
                with pytest.raises(merkle.ProofError):       # a rewritten new tree
                    merkle.verify_consistency(m, n, p, old, naive_mth(data[:n - 1] + [b"x"]))


# --- signed notes ------------------------------------------------------------------------

GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = GO_TEXT + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1"
                     "FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def test_signed_note_matches_the_go_vector():
    sk = Ed25519PrivateKey.from_private_bytes(GO_SEED)
    assert note.verifier_key("PeterNeumann", sk.public_key()) == \
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    assert note.sign_note(GO_TEXT, "PeterNeumann", sk) == GO_NOTE.encode()
    assert note.open_note(GO_NOTE.encode(), "PeterNeumann", sk.public_key()) == GO_TEXT
    with pytest.raises(note.NoteError, match="does not verify"):
        note.open_note(GO_NOTE.replace("problem,", "problem;").encode(), "PeterNeumann",
                       sk.public_key())
    other = Ed25519PrivateKey.generate()
    with pytest.raises(note.NoteError, match="no signature"):
        note.open_note(GO_NOTE.encode(), "PeterNeumann", other.public_key())


def test_checkpoint_text_round_trip():
    t = note.checkpoint_text("sealcam-station/ab", 8, h(ROOTS[7]))
    assert t == "sealcam-station/ab\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    assert note.parse_checkpoint(t) == ("sealcam-station/ab", 8, h(ROOTS[7]), [])
    for bad in ("x\n08\n" + t.split("\n")[2] + "\n", "x\n8\nAAAA\n", "x\n8\n"):
        with pytest.raises(note.NoteError):
            note.parse_checkpoint(bad)


# --- the on-disk log ----------------------------------------------------------------------

def test_log_appends_signs_and_reopens(tmp_path):
    sk = Ed25519PrivateKey.generate()
    lg = Log(tmp_path, "sealcam-station/t", signer=sk)
    assert lg.size == 0 and lg.read_checkpoint(sk.public_key()) is None
    entries = [{"type": "register", "at": "2026-01-01T00:00:00.000+00:00", "device": "D%d" % i,
                "key": bytes([i]) * 32} for i in range(11)]
    lg.append(entries[:3])
    lg.append(entries[3:])
    size, root, data = lg.read_checkpoint(sk.public_key())
    raw = [cbor2.dumps(e, canonical=True) for e in entries]
    assert size == 11 and root == naive_mth(raw)
    assert data.decode().startswith("sealcam-station/t\n11\n")
    again = Log(tmp_path, "sealcam-station/t", readonly=True)
    assert again.size == 11 and again.root() == root
    assert [e for _, _, e in again.entries()] == entries
    with pytest.raises(LogError):
        again.append(entries[:1])
    # a cut append leaves a torn entry: readers ignore it, the next writer drops it
    with open(tmp_path / "log" / "entries", "ab") as f:
        f.write(b"\x00\x00\x01\x00partial")
    assert Log(tmp_path, "sealcam-station/t").size == 11
    lg2 = Log(tmp_path, "sealcam-station/t", signer=sk)
    assert lg2.torn == 11
    lg2.append(entries[:1])
    assert Log(tmp_path, "sealcam-station/t").size == 12
    assert lg2.read_checkpoint(sk.public_key())[1] == naive_mth(raw + raw[:1])
    # a checkpoint by another key, or of another log, is refused
    with pytest.raises(LogError, match="no signature"):
        lg2.read_checkpoint(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(LogError, match="another log"):
        Log(tmp_path, "sealcam-station/u").read_checkpoint(
            sk.public_key(), note.sign_note(note.checkpoint_text("x", 1, bytes(32)),
                                            "sealcam-station/u", sk))


def test_log_refuses_a_huge_length(tmp_path):
    """A length past 16 MiB ends what can be read: named as damage, nothing appended."""
    os.makedirs(tmp_path / "log")
    (tmp_path / "log" / "entries").write_bytes(b"\xff\xff\xff\xff" + b"x" * 10)
    lg = Log(tmp_path, "o")
    assert lg.size == 0 and "claims 4294967295 bytes" in lg.damaged
    with pytest.raises(LogError, match="claims"):
        lg.append([{"type": "adopt", "at": "x", "devices": 0}])


# --- SPEC §11.3's example and schema.cddl's log-entry ------------------------------------

SPEC = open(os.path.join(os.path.dirname(__file__), "..", "protocol", "SPEC.md"),
            encoding="utf-8").read()


def test_spec_example_checkpoint():
    sk = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    e0 = {"type": "register", "at": "2026-11-30T08:00:00.000+00:00", "device": "SC-00A1B2C3",
          "key": bytes(range(32, 64))}
    e1 = {"type": "head", "at": "2026-11-30T08:05:00.000+00:00", "device": "SC-00A1B2C3",
          "seq": 7, "hash": bytes(32)}
    hs = [merkle.leaf_hash(cbor2.dumps(e, canonical=True)) for e in (e0, e1)]
    for x in hs + [merkle.root(hs)]:
        assert x.hex() in SPEC
    origin = "sealcam-station/0123456789abcdef0123456789abcdef"
    cp = note.sign_note(note.checkpoint_text(origin, 2, merkle.root(hs)), origin, sk).decode()
    assert "```\n" + cp + "```" in SPEC
    assert note.verifier_key(origin, sk.public_key()) in SPEC


def test_every_entry_of_a_real_log_matches_the_cddl(tmp_path):
    pycddl = pytest.importorskip("pycddl")
    here = os.path.dirname(os.path.abspath(__file__))
    import refwriter as rw
    from host_tools import station
    from host_tools.archive import Archive
    schema = open(os.path.join(here, "..", "protocol", "schema.cddl")).read()
    v = pycddl.Schema("root = log-entry\n" + schema)
    arch = tmp_path / "a"
    station.init(arch)
    s = rw.session(tmp_path / "sd", seconds=2)
    with Archive(arch) as a:
        a.register(s.device, s.pubkey)
        oid = a.start_offload(s.device, "/dev/x")
        a.add_records(s.device, [(r.seq, r.data, rw.decode_record(r.data)) for r in s.records],
                      oid)
        a.commit_view(s.device, cbor2.loads(open(s.path("head.cbor"), "rb").read())[3])
        last = s.records[-1]
        a.add_receipt(s.device, 1, last.seq, rw.H(last.data), b"\xd2\x84")
        a.update_receipt(s.device, 1, "accepted", last.seq + 1)
        a.finish_offload(oid, status="ok", verdict="OK", records=len(s.records))
        a.quarantine("SC-X", "bad signature", [b"\x01"], {})
        types = set()
        for _, raw, e in a.log().entries():
            v.validate_cbor(raw)
            types.add(e["type"])
    assert types == {"register", "records", "object", "head", "receipt", "receipt_status",
                     "offload", "quarantine"}
    v.validate_cbor(cbor2.dumps({"type": "adopt", "at": "x", "devices": 2}, canonical=True))
    with pytest.raises(Exception):
        v.validate_cbor(cbor2.dumps({"type": "head", "at": "x", "device": "D", "seq": 1},
                                    canonical=True))


def test_larger_trees_against_the_naive_computation():
    import random
    rnd = random.Random(9162)
    data = [rnd.randbytes(rnd.randrange(0, 40)) for _ in range(700)]
    hs = [merkle.leaf_hash(x) for x in data]
    for _ in range(25):
        n = rnd.randrange(1, len(data) + 1)
        m = rnd.randrange(1, n + 1)
        r, old = merkle.root(hs[:n]), merkle.root(hs[:m])
        assert r == naive_mth(data[:n]) and old == naive_mth(data[:m])
        p = merkle.consistency_proof(hs, m, n)
        assert p == (naive_proof(m, data[:n]) if m < n else [])
        merkle.verify_consistency(m, n, p, old, r)
        i = rnd.randrange(n)
        q = merkle.inclusion_proof(hs, i, n)
        assert q == naive_path(i, data[:n])
        merkle.verify_inclusion(i, n, hs[i], q, r)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(i, n, merkle.leaf_hash(data[i] + b"x"), q, r)
