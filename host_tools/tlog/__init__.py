"""The station's transparency log (SPEC §11): an append-only, station-signed log of the
archive's events, hashed as an RFC 9162 Merkle tree, with checkpoints in the C2SP
tlog-checkpoint format wrapped in a C2SP signed note.

    merkle  leaf and node hashes, roots, inclusion and consistency proofs (RFC 9162 §2.1)
    note    signed notes and checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint)
    log     the on-disk log: DIR/log/entries, DIR/log/checkpoint
    replay  the state the log's events say the archive holds
    audit   archive.sqlite and the device views against that state
    objects the archive's objects hashed against their names (parallel, large reads)
"""
