"""The disc's words: README.txt (Chinese and English, on the disc) and the label (PDF)."""
from __future__ import annotations

import datetime as dt
import hashlib

from ..i18n import _

__all__ = ["readme", "label_fields", "write_label", "LABEL_KEYS"]

# the label's fields, in order (JSON keys in English; the PDF says them in both languages)
LABEL_KEYS = ("agency", "made_by", "made_at", "kind", "ref", "title", "numbers", "dates",
              "recordings", "documents", "contents_sha256", "image_sha256", "station_key",
              "copies")
_LABEL_WORDS = {
    "agency": "制作单位 / Made by unit", "made_by": "制作人 / Maker",
    "made_at": "制作时间 / Made at", "kind": "类别 / Kind", "ref": "案件或档号 / Case or number",
    "title": "名称 / Name", "numbers": "档号 / Archive numbers", "dates": "日期 / Dates",
    "recordings": "录像 / Recordings", "documents": "文书 / Documents",
    "contents_sha256": "内容哈希 (MANIFEST SHA-256) / Contents hash",
    "image_sha256": "镜像哈希 (ISO SHA-256) / Image hash",
    "station_key": "工作站公钥指纹 / Station key fingerprint", "copies": "份数 / Copies"}


def _fp(pub):
    h = hashlib.sha256(pub).hexdigest()[:32]
    return ":".join(h[i:i + 4] for i in range(0, 32, 4))


def _day(ms):
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d")


def _dates(col):
    ms = [r[k] for r in col["recordings"] for k in ("start_rtc", "end_rtc")
          if isinstance(r.get(k), int)]
    if not ms:
        return "-"
    a, b = _day(min(ms)), _day(max(ms))
    return (a if a == b else "%s .. %s" % (a, b)) + " (UTC)"


def readme(cat, col):
    agency = cat.config.values.get("agency", {})
    unit = agency.get("name") or agency.get("code") or "-"
    fp = _fp(col["station"])
    recs = "\n".join("  - %s/%d%s" % (r["device"], r["segment"],
                                      "" if r["sha256"] else "  (%s)" % r["why"])
                     for r in col["recordings"]) or "  -"
    docs = "\n".join("  - %s" % d["name"] for d in col["documents"]) or "  -"
    sealed = bool(cat.config.values.get("confidentiality", {}).get("key_file"))
    return README % {"sealed_zh": "是（本盘为解密后的原件）" if sealed else "否",
                     "sealed": "yes (this disc holds the decrypted originals)" if sealed
                     else "no", "ref": col["ref"], "title": col["title"] or "-", "unit": unit, "fp": fp,
                     "origin": col["origin"], "size": col["size"], "recs": recs,
                     "docs": docs, "kind_zh": "案件" if col["kind"] == "case" else "档号",
                     "kind": col["kind"], "dates": _dates(col)}


README = """\
sealcam 执法记录光盘 / sealcam archive disc
==========================================

%(kind_zh)s / %(kind)s: %(ref)s   %(title)s
制作单位 / Unit: %(unit)s
日期 / Dates: %(dates)s
工作站公钥指纹 / Station key fingerprint: %(fp)s
工作站日志 / Station log: %(origin)s, %(size)d entries
档案对象加密保存 / Objects encrypted at rest in the archive: %(sealed_zh)s / %(sealed)s

【中文】
本光盘是执法记录仪档案的长期保存副本（一式两份，A 盘与 B 盘内容完全相同）。盘内有：
原始录像文件（与档案中保存的字节完全一致）、记录仪签名的记录、记录仪的公钥及其登记记录、
工作站公钥、工作站日志的签名检查点及每条所用日志条目的包含证明、案件文书、
MANIFEST.cbor（列出每个文件及其 SHA-256，由工作站私钥签名，签名在 MANIFEST.sig）以及离线校验程序。

如何校验：在任何装有 Python 3 的电脑上，进入光盘根目录（或复制出来的文件夹），运行
    python3 verify_disc.py
（Windows：py verify_disc.py）。无需联网，无需安装任何软件包。程序对每段录像给出结论：
OK（通过）、OK with missing info（通过，信息不全）或 NOT OK（不通过，并指出哪个文件被改动），
全部通过时退出码为 0，否则为 1。请把程序显示的工作站公钥指纹与光盘标签及工作站公布的指纹核对。

密钥说明：盘上只有公钥（记录仪公钥、工作站公钥）；私钥从不离开记录仪和工作站。
如果档案中的对象是加密保存的，本光盘存放的是解密后的原始文件，因此必须按原始档案同等的
保密要求保管本光盘。

[English]
This disc is a long-term copy of recordings of a body-worn camera archive (two identical
copies, disc A and disc B). It holds: the original media files (byte for byte as the
archive stores them), the records the recorders signed, the recorders' public keys and the
station-log entries that registered them, the station's public key, the station log's
signed checkpoint with an inclusion proof for every log entry used, the case documents,
MANIFEST.cbor (every file with its SHA-256, signed by the station key in MANIFEST.sig) and
an offline verifier.

To verify: on any computer with Python 3, at the root of the disc (or a folder it was
copied to), run
    python3 verify_disc.py
(Windows: py verify_disc.py). No network and no package is needed. It gives a verdict per
recording: OK, OK with missing info, or NOT OK (naming the file that was changed), and
exits 0 when nothing is NOT OK, 1 otherwise. Compare the station key fingerprint it prints
with the label and with the fingerprint the station publishes.

How keys travel: only public keys are on the disc (the recorders' and the station's); the
private keys never leave the recorders and the station. If the archive keeps its objects
encrypted at rest, this disc holds the decrypted originals: keep it as securely as the
original archive.

录像 / Recordings:
%(recs)s
文书 / Documents:
%(docs)s

Files / 文件:
  README.txt              this text / 本说明
  verify_disc.py          the verifier / 校验程序 (verifier/: its checks, and sealcamfw:
                          CBOR, SHA-512, Ed25519 in pure Python / 纯 Python 实现)
  MANIFEST.cbor, .sig     the signed list of files / 签名的文件清单
  station/                station.pub, checkpoint / 工作站公钥与日志检查点
  log/entries.cbor        log entries with inclusion proofs / 日志条目及包含证明
  devices/ID/key.pub      recorder public keys / 记录仪公钥
  recordings/ID/SEG/      records.cbor and the original media / 签名记录与原始录像
  documents/              case documents / 案件文书
"""


def label_fields(cat, user, col, contents, image):
    """The label's fields (a dict of LABEL_KEYS, strings): also the event's `label`."""
    agency = cat.config.values.get("agency", {})
    unit = agency.get("name") or agency.get("code") or "-"
    return {"agency": unit, "made_by": user.name,
            "made_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kind": col["kind"], "ref": col["ref"], "title": col["title"] or "-",
            "numbers": ", ".join(col["numbers"]) or "-", "dates": _dates(col),
            "recordings": str(len(col["recordings"])),
            "documents": str(len(col["documents"])), "contents_sha256": contents,
            "image_sha256": image, "station_key": _fp(col["station"]), "copies": "2"}


def write_label(path, label):
    """The label PDF: one column per copy (A and B of 2), to cut out and keep with each."""
    from ..pdfdoc import write_table_pdf
    rows = [[_LABEL_WORDS[k], label[k], label[k]] for k in LABEL_KEYS if k != "copies"]
    write_table_pdf(path, "光盘标签 / Disc label: %s" % label["ref"],
                    ["sealcam %s" % label["agency"]],
                    ["", "副本 A（共 2 份）/ copy A of 2", "副本 B（共 2 份）/ copy B of 2"],
                    rows, [_("two identical discs: check both with `python3 verify_disc.py`")],
                    signature_lines=("制作人签字 / Maker: ________",
                                     "审核人签字 / Checked by: ________"))
