"""RFC 9162 §2.1 Merkle tree hashing with SHA-256: leaf and interior node hashes, tree
roots, inclusion and consistency proofs and their verification.

    leaf_hash(d)   = SHA-256(0x00 || d)
    node_hash(l, r) = SHA-256(0x01 || l || r)
    MTH({})        = SHA-256()

Trees are given by their leaf hashes (a list of 32-byte values). Everything here is
iterative or recursive only to the depth of the tree (at most 64).
"""
from __future__ import annotations

import hashlib

__all__ = ["leaf_hash", "node_hash", "root", "inclusion_proof", "consistency_proof",
           "verify_inclusion", "verify_consistency", "ProofError", "EMPTY_ROOT"]

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    pass


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(hashes, lo: int = 0, hi: int | None = None) -> bytes:
    """MTH of the leaves hashes[lo:hi]: their compact range (below), folded."""
    edge = CompactRange()
    for i in range(lo, len(hashes) if hi is None else hi):
        edge.append(hashes[i])
    return edge.root()


def inclusion_proof(hashes, index: int, size: int | None = None) -> list:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
    n = len(hashes) if size is None else size
    if not 0 <= index < n <= len(hashes):
        raise ProofError("leaf %d is not in a tree of size %d" % (index, n))
    out = []
    lo, hi, m = 0, n, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            out.append(root(hashes, lo + k, hi))
            hi = lo + k
        else:
            out.append(root(hashes, lo, lo + k))
            lo, m = lo + k, m - k
    out.reverse()
    return out


def consistency_proof(hashes, old: int, new: int | None = None) -> list:
    """PROOF(old, D[0:new]) of RFC 9162 §2.1.4.1 (empty when old is 0 or old == new)."""
    n = len(hashes) if new is None else new
    if not 0 <= old <= n <= len(hashes):
        raise ProofError("no consistency proof from size %d to size %d" % (old, n))
    if old == 0 or old == n:
        return []
    out = []
    lo, hi, m, complete = 0, n, old, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append(root(hashes, lo + k, hi))
            hi = lo + k
        else:
            out.append(root(hashes, lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        out.append(root(hashes, lo, hi))
    out.reverse()
    return out


def verify_inclusion(index: int, size: int, leaf: bytes, proof, root_hash: bytes) -> None:
    """RFC 9162 §2.1.3.2; raises ProofError unless ``proof`` proves ``leaf`` (a leaf hash)
    at ``index`` in the tree of ``size`` leaves with ``root_hash``."""
    if not 0 <= index < size:
        raise ProofError("leaf index %d is not below the tree size %d" % (index, size))
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof too short")
    if r != root_hash:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(old: int, new: int, proof, old_root: bytes, new_root: bytes) -> None:
    """RFC 9162 §2.1.4.2; raises ProofError unless ``proof`` proves that the tree of ``new``
    leaves with ``new_root`` extends the tree of ``old`` leaves with ``old_root``."""
    proof = list(proof)
    if not 0 <= old <= new:
        raise ProofError("tree size %d is smaller than %d" % (new, old))
    if old == new:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("same size, different roots")
        return
    if old == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    if old & (old - 1) == 0:
        proof.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise ProofError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


class CompactRange:
    """The right edge of a growing tree: the roots of its perfect subtrees, left to right;
    appending a leaf and taking the root cost O(log n)."""

    def __init__(self):
        self.stack = []             # [(size, hash)], sizes strictly decreasing
        self.size = 0

    def append(self, leaf: bytes):
        size, h = 1, leaf
        while self.stack and self.stack[-1][0] == size:
            s, left = self.stack.pop()
            h = node_hash(left, h)
            size += s
        self.stack.append((size, h))
        self.size += 1

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        h = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            h = node_hash(left, h)
        return h
