"""stores/catalogue/: one clerk event of each type (SPEC §14) and an approved disposal
(§9.2), as the station writes them into its log: canonical CBOR, fixed times and names.

    events.cbor    a CBOR array of the entries (each element's bytes are the entry's bytes
                   in a log: canonical CBOR)
    events.jsonl   the same, one JSON object per line (bytes as hex), for reading

The user, case, document and tag events come from the catalogue's own builders
(host_tools.catalogue), so a builder that changes a format changes these bytes and
tests/test_vectors.py says so; `time` and `by` are set as Catalogue.act sets them.
"""
import json
import os

import cbor2

AT = "2026-12-01T08:00:00.000+00:00"
DEV = "SC-00A1B2C3"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def events():
    from host_tools.catalogue import (access, backups, cases, confidentiality, copies,
                                      discs, documents, handover, tags, users)
    from host_tools.catalogue.events import base

    def made(e, by, prev=None):
        e = dict(e, at=AT, by=by)
        if prev is not None:
            e["prev"] = prev
        return e
    out = [
        made(users.add_event("li.na", "archive_head", "李娜", os_account="lina"),
             "os:root"),
        made(users.add_event("wang.wei", "clerk", "王伟", os_account="wangwei"), "li.na"),
        made(users.change_event("wang.wei", role="clerk", active=True), "li.na", prev=1),
        made(base("user_password", None, None, user="wang.wei",
                  pw_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$"
                          "0Ys3qKpZ8R3N0H8d7yKX0dVJ1W8hF6qM0Wb3sQ6e5jE"), "li.na", prev=2),
        made(tags.tag_event(DEV, 12, party="张三", place="五一路12号",
                            event_type="inspection", item_class="001-09",
                            note="违法建设现场检查"), "wang.wei"),
        made(tags.tag_event(DEV, 12, span_from_ms=60_000, span_to_ms=90_000,
                            party="张三（店主）", reason="the party's full name"),
             "wang.wei"),
        made(base("number_assigned", None, None, number="FZMC-20261201-张三-检查-0001",
                  pattern="{agency}-{date}-{party}-{step}-{serial}", agency="FZMC",
                  date="20261201", party="张三", step="检查", serial=1,
                  items=[{"device": DEV, "segment": 12},
                         {"device": "SC-00D4E5F6", "segment": 3}]), "wang.wei"),
        made(cases.opened_event("FZ-2026-001", "违法建设 五一路12号", "一中队"), "wang.wei"),
        made(cases.linked_event("FZ-2026-001", device=DEV, segment=12), "wang.wei"),
        made(cases.linked_event("FZ-2026-001", device="SC-00D4E5F6", segment=3,
                                role="angle"), "wang.wei"),
        made(documents.document_event(SHA, "explanation", "application/pdf", 18_342,
                                      "情况说明.pdf", device=DEV, interruption_seq=40,
                                      case_no="FZ-2026-001"), "wang.wei"),
        made(cases.linked_event("FZ-2026-001", document=SHA), "wang.wei"),
        made(cases.unlinked_event("FZ-2026-001", "filed twice", document=SHA), "wang.wei"),
        made(cases.closed_event("FZ-2026-001", "decision served"), "wang.wei"),
        made(cases.archived_event("FZ-2026-001", 2026), "li.na"),
        made(base("hold_placed", None, None, kind="legal", reason="行政复议", device=DEV,
                  segment=12), "li.na"),
        made(base("hold_released", None, None, hold=15, reason="复议结束"), "li.na"),
        made(base("disposal_requested", None, None, request="DR-20281202-1a2b3c4d",
                  device="SC-00D4E5F6", segment=7, reason="24 months are over",
                  **{"class": "ordinary", "expired_on": "2028-11-30"}), "wang.wei"),
        made(base("disposal_refused", None, None, request="DR-20281202-1a2b3c4d",
                  reason="wait for the review"), "li.na"),
        # issue 12 (§14.8-14.13): confidentiality, access register, copies, discs,
        # backups, handover
        made(confidentiality.classified_event("case", "restricted", "涉及证人身份",
                                              case_no="FZ-2026-001"), "li.na"),
        made(dict(access.request_event(target_kind="case", target="FZ-2026-001",
                                       case_no="FZ-2026-001", purpose="行政诉讼 庭审举证",
                                       actions=["view", "export"]),
                  request="AR-2026-0001", rule="head_and_unit_leader",
                  valid_until="2026-12-08T08:00:00.000+00:00"), "wang.wei"),
        made(access.base("access_approved", None, None, request="AR-2026-0001",
                         role="archive_head"), "li.na"),
        made(access.base("access_approved", None, None, request="AR-2026-0001",
                         role="unit_leader", reason="同意"), "zhao.lei"),
        made(access.base("access_used", None, None, request="AR-2026-0001", action="view",
                         device=DEV, segment=12, output=SHA), "wang.wei"),
        made(copies.copy_event("AR-2026-0001", DEV, 12, SHA, 48_213_114, "view", [
            {"kind": "media", "path": "m/00000012.mkv", "sha256": SHA, "length": 51_200_000,
             "chunks": 12_500, "root": SHA},
            {"kind": "index", "path": "m/00000012.idx", "sha256": SHA},
            {"kind": "record", "seq": 40, "record": "SEGMENT_CLOSE", "hash": SHA}],
            {"tool": "ffmpeg", "version": "5.1.6", "args": "-c:v libx264 -c:a aac",
             "watermark": "wang.wei AR-2026-0001"}), "wang.wei"),
        made(dict(access.request_event(target_kind="recording", target="%s/12" % DEV,
                                       case_no="FZ-2026-001", purpose="了解情况",
                                       actions=["copy"]),
                  request="AR-2026-0002", rule="head_and_unit_leader",
                  valid_until="2026-12-08T08:00:00.000+00:00"), "wang.wei"),
        made(access.base("access_refused", None, None, request="AR-2026-0002",
                         reason="用途不明"), "li.na"),
        made(access.base("access_revoked", None, None, request="AR-2026-0001",
                         reason="复议已结束"), "li.na"),
        made(discs.made_event("FZ-2026-001", SHA, SHA, {
            "archive_number": "FZMC-20261201-张三-检查-0001", "case": "FZ-2026-001",
            "dates": "2026-12-01 UTC", "copy": "A/2", "contents_sha256": SHA}), "li.na"),
        made(backups.made_event(destination="/mnt/offsite/sealcam", snapshot=
                                "20261201T080000Z-30", log_size=30, root=SHA, objects=120,
                                objects_new=8, bytes_new=402_653_184,
                                manifest="ab" * 32), "li.na"),
        made(handover.offer_event("wang.wei", "zhao.lei", "调往其他单位", ["FZ-2026-002"],
                                  []), "wang.wei"),
        made(handover.accept_event(40), "zhao.lei"),
        made(handover.offer_event("wang.wei", "sun.li", "调往其他单位", [], [16]),
             "wang.wei"),
        made(handover.withdraw_event(42, "接替人有误"), "wang.wei"),
        {"type": "segment_disposed", "at": AT, "device": "SC-00D4E5F6", "segment": 7,
         "objects": [{"path": "m/00000007.mkv", "sha256": bytes.fromhex(SHA)},
                     {"path": "m/00000007.idx", "sha256": bytes(range(32))}],
         "request": "DR-20281203-5e6f7a8b", "requested_by": "wang.wei",
         "approved_by": "li.na", "approved_at": AT, "reason": "24 months are over",
         "class": "ordinary", "expired_on": "2028-11-30"},
    ]
    return out


def _jsonable(x):
    if isinstance(x, bytes):
        return x.hex()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    return x


def build_catalogue(out):
    os.makedirs(out)
    evs = events()
    with open(os.path.join(out, "events.cbor"), "wb") as f:
        f.write(cbor2.dumps(evs, canonical=True))
    with open(os.path.join(out, "events.jsonl"), "w", encoding="utf-8") as f:
        for e in evs:
            f.write(json.dumps(_jsonable(e), ensure_ascii=False, sort_keys=True) + "\n")
