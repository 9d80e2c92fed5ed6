"""Records the firmware writes, checked by independent parts: pycose verifies every
COSE_Sign1, pycddl validates every record body, the head and the COSE structure against
protocol/schema.cddl, and cbor2's canonical encoding gives the same bytes."""
import os

import cbor2
import pycddl
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message

from powercut_util import chain, record

SCHEMA = open(os.path.join(os.path.dirname(__file__), "..", "protocol", "schema.cddl")).read()


def pycose_decode(raw):
    # pycose 1.1 expects a list with a dict inside; cbor2 6 decodes the contents of a tag
    # as immutable (tuple, frozendict), so hand pycose the same values as mutable types
    obj = cbor2.loads(raw)
    assert obj.tag == 18
    prot, unprot, payload, sig = obj.value
    return Sign1Message.from_cose_obj([prot, dict(unprot), payload, sig], True)


def rule(name):
    return pycddl.Schema("root = %s\n%s" % (name, SCHEMA))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    summary, _ = record(str(root))
    records = chain(str(root / "sd"))
    types = {b[0] for _, b in records}
    # boot, start, checkpoint, segment, stop, refusal; the firmware may add workflow records
    # (SPEC §10: types 10-16), which are then checked like the others
    assert {1, 2, 3, 4, 5, 6} <= types, types
    assert types <= set(range(1, 19)), types    # 17 STORE_ALERT, 18 FIRMWARE (SPEC §13.2)
    return root, summary, records


def test_pycose_verifies_every_record(store):
    root, summary, records = store
    key = OKPKey(crv=Ed25519, x=bytes.fromhex(summary["pubkey"]))
    for raw, body in records:
        msg = pycose_decode(raw)
        msg.key = key
        assert msg.verify_signature(), body[1]
        assert msg.phdr  # alg and kid are protected
        assert cbor2.loads(msg.payload) == body


def test_pycose_rejects_a_changed_payload(store):
    root, summary, records = store
    raw, body = records[3]
    obj = cbor2.loads(raw)
    body = dict(body)
    body[4] += 1
    obj = cbor2.CBORTag(18, [obj.value[0], obj.value[1], cbor2.dumps(body, canonical=True), obj.value[3]])
    msg = pycose_decode(cbor2.dumps(obj))
    msg.key = OKPKey(crv=Ed25519, x=bytes.fromhex(summary["pubkey"]))
    assert not msg.verify_signature()


def test_every_record_matches_the_cddl(store):
    root, summary, records = store
    rec_rule, body_rule, head_rule = rule("record"), rule("record-body"), rule("head")
    prot_rule, payload_rule = rule("protected-bytes"), rule("payload-bytes")
    for raw, body in records:
        rec_rule.validate_cbor(raw)
        prot, _, payload, _ = cbor2.loads(raw).value
        prot_rule.validate_cbor(cbor2.dumps(prot))
        payload_rule.validate_cbor(cbor2.dumps(payload))
        body_rule.validate_cbor(payload)
    head_rule.validate_cbor(open(root / "sd" / "head.cbor", "rb").read())


def test_cddl_rejects_a_body_missing_a_field(store):
    root, summary, records = store
    body = dict(records[0][1])
    del body[2]
    with pytest.raises(Exception):
        rule("record-body").validate_cbor(cbor2.dumps(body, canonical=True))


def test_payloads_are_canonical_cbor(store):
    root, summary, records = store
    for raw, body in records:
        obj = cbor2.loads(raw)
        assert cbor2.dumps(body, canonical=True) == obj.value[2]
        assert cbor2.dumps(obj, canonical=True) == raw


def test_signature_checks_with_cryptography(store):
    root, summary, records = store
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(summary["pubkey"]))
    for raw, body in records:
        prot, _, payload, sig = cbor2.loads(raw).value
        pub.verify(sig, cbor2.dumps(["Signature1", prot, b"", payload]))


# --- host_tools.records, the host's one record model, on what the firmware writes ---------

def test_host_record_model_parses_every_firmware_record(store):
    from host_tools import records as R
    root, summary, records = store
    pub = bytes.fromhex(summary["pubkey"])
    prev_seq = prev_hash = None
    for raw, body in records:
        rec = R.parse(raw)
        assert (rec.seq, rec.type, rec.prev) == (body[1], body[0], body[2])
        assert rec.tname == R.TYPE_NAMES[body[0]] and rec.body[R.K.DEVICE] == body[3]
        assert R.check_signature(pub, rec)
        assert R.check_next(prev_seq, prev_hash, rec) is None
        prev_seq, prev_hash = rec.seq, rec.hash
        if rec.type == R.REC_START:
            assert R.media_name_error(rec.seq, body[R.K.MEDIA]) is None
    # a flipped byte: parse, signature or chain link says so
    raw = bytearray(records[3][0])
    raw[-70] ^= 1
    try:
        rec = R.parse(bytes(raw))
    except R.RecordError:
        return
    assert not R.check_signature(pub, rec)


def test_firmware_store_alert_is_a_gap_that_names_itself(tmp_path):
    """The real firmware (CPython runtime) records, an older copy of its card is put back,
    it boots: its STORE_ALERT continues the remembered chain, and the host verifier names
    the gap as records removed, with the seqs the card lost."""
    import shutil
    from host_tools.verify import NOT_OK, verify_store
    from powercut_util import SHIFT, record
    root = tmp_path / "dev"
    summary, _ = record(str(root), SHIFT)
    sd = root / "sd"
    old = tmp_path / "old-card"
    shutil.copytree(sd, old)
    n_old = len(chain(str(sd)))
    record(str(root), [["start"], ["run", 3], ["stop"]])
    n_full = len(chain(str(sd)))
    shutil.rmtree(sd)
    shutil.copytree(old, sd)
    record(str(root), [])                            # boots with the older card
    recs = chain(str(sd))
    alert = [b for _, b in recs if b[0] == 17]
    mem = alert[0][28][0]            # the head the recorder remembers (flash)
    assert n_old - 1 < mem < n_full and alert[0][29][0] == n_old - 1
    rep = verify_store(str(sd), bytes.fromhex(summary["pubkey"]))
    assert rep.verdict == NOT_OK
    reason = rep.first_failure["reason"]
    assert "records removed: the recorder remembered head seq %d" % mem in reason
    assert "lost seqs %d..%d" % (n_old, mem) in reason
