"""Duplicate discs (R13; SPEC §14.11): the `disc_made` clerk event and its rows.

    cat.act(clerk, made_event("FZ-2023-017", image_sha256, contents_sha256, label))
    made(cat, ref=None)        # the discs made, newest first

    disc_made {ref, image_sha256, contents_sha256, label}
        ref: a case number or an archive number of the catalogue at that point of the log;
        image_sha256: SHA-256 (hex) of each of the two identical ISO images;
        contents_sha256: SHA-256 (hex) of the disc's signed MANIFEST.cbor;
        label: what the printed label says (text fields, host_tools/disc/discs_text.py).
The disc itself is built by host_tools/disc/build.py (`sealcam export disc`).
"""
from __future__ import annotations

import json
import re

import sqlalchemy as sa

from . import db, store
from ..i18n import _
from .events import bad_char, field

__all__ = ["made_event", "made", "LABEL_MAX_FIELDS"]

LABEL_MAX_FIELDS = 32
LABEL_VALUE_MAX = 2000
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def made_event(ref, image_sha256, contents_sha256, label):
    return {"type": "disc_made", "ref": ref, "image_sha256": image_sha256,
            "contents_sha256": contents_sha256, "label": dict(label)}


def _ref_known(conn, ref):
    if conn.execute(sa.select(db.cases.c.case_no).where(db.cases.c.case_no == ref)).first():
        return True
    return conn.execute(sa.select(db.archive_numbers.c.number).where(
        db.archive_numbers.c.number == ref)).first() is not None


@store.handles("disc_made", permission="disc")
class _Made:
    @staticmethod
    def check(cat, conn, e):
        ref = field(e, "ref", str, max_len=128)
        for k in ("image_sha256", "contents_sha256"):
            if not _HEX64.match(field(e, k, str, max_len=64)):
                raise store.CatalogueError(_("disc_made: %(key)s is not a SHA-256 in hex")
                                           % {"key": k})
        label = field(e, "label", dict, max_len=LABEL_MAX_FIELDS)
        if len(label) > LABEL_MAX_FIELDS or any(
                not isinstance(k, str) or not isinstance(v, str) or len(k) > 64 or
                len(v) > LABEL_VALUE_MAX or bad_char(k) is not None or
                bad_char(v) is not None for k, v in label.items()):
            raise store.CatalogueError(_("disc_made: the label holds at most %(n)d text "
                                         "fields without control characters")
                                       % {"n": LABEL_MAX_FIELDS})
        if not _ref_known(conn, ref):
            raise store.CatalogueError(_("no case or archive number %(ref)s: a disc is made "
                                         "of one") % {"ref": ref})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.discs.insert().values(
            id=i, ref=e["ref"], image_sha256=e["image_sha256"],
            contents_sha256=e["contents_sha256"],
            label=json.dumps(e["label"], ensure_ascii=False, sort_keys=True),
            by_user=e["by"], at=e["at"]))


def made(cat, ref=None):
    """The discs made (of ``ref``, or all), newest first: id, ref, image_sha256,
    contents_sha256, label (dict), by_user, at."""
    cat.sync()
    d = db.discs.c
    q = sa.select(db.discs).order_by(d.id.desc())
    if ref is not None:
        q = q.where(d.ref == ref)
    with cat.engine.connect() as conn:
        rows = [dict(x) for x in conn.execute(q).mappings()]
    for r in rows:
        r["label"] = json.loads(r["label"])
    return rows
