"""The item catalogue of R18 (regulations 001, attachment 行政执法音像记录事项清单).

Each enforcement item says what is recorded, where, by whom, when recording starts and
ends, and the record class: scene (场景类), interview (约谈类) or confirmation (确认类).
A recording's ``item_class`` (tags.py) is one of these items by its key ("001-05": file
001, row 5) or, when no single item fits, a record class alone ("scene", "interview",
"confirmation"; the Chinese names are accepted and stored as the English word).

    normalize("约谈类") -> "interview"       normalize("001-05") -> "001-05"
    record_class("001-05") -> "interview"     items_of_class("scene") -> ["001-01", ...]
"""
from __future__ import annotations

from ..i18n import N_

__all__ = ["ITEMS", "CLASSES", "CATEGORIES", "normalize", "record_class", "items_of_class",
           "describe"]

# record class -> its Chinese name (the attachment's last column)
CLASSES = {"scene": "场景类", "interview": "约谈类", "confirmation": "确认类"}
# enforcement category -> its Chinese name (the attachment's 类别 column)
CATEGORIES = {"licensing": "行政许可", "penalty": "行政处罚", "inspection": "行政检查",
              "service_of_documents": "文书送达"}


def _i(n, category, item, item_zh, place_zh, who_zh, start_zh, end_zh, cls):
    return {"key": "001-%02d" % n, "category": category, "category_zh": CATEGORIES[category],
            "item": item, "item_zh": item_zh, "place_zh": place_zh, "who_zh": who_zh,
            "start_zh": start_zh, "end_zh": end_zh, "record_class": cls,
            "record_class_zh": CLASSES[cls]}


# 001's attachment, row by row (序号 1-13); English names are N_ strings for the catalogs
ITEMS = [
    _i(1, "licensing", N_("licensing hearing"), "行政许可听证会", "听证场所", "受理人员",
       "进入听证场所", "离开听证场所", "scene"),
    _i(2, "licensing", N_("licensing expert review meeting"), "行政许可专家论证会",
       "论证场所", "受理人员", "进入论证场所", "离开论证场所", "scene"),
    _i(3, "penalty", N_("on-site inspection (survey)"), "现场检查（勘验）",
       "现场检查（勘验）场所", "现场检查执法人员", "进入现场检查（勘验）场所",
       "离开现场检查（勘验）场所", "scene"),
    _i(4, "penalty", N_("registering evidence for preservation"), "证据先行登记保存",
       "证据先行登记保存场所", "证据先行登记保存执法人员", "进入证据先行登记保存场所",
       "离开证据先行登记保存场所", "scene"),
    _i(5, "penalty", N_("questioning (investigation)"), "询问（调查）", "询问（调查）场所",
       "检查执法人员", "进入询问场所", "离开询问场所", "interview"),
    _i(6, "penalty", N_("taking witness testimony"), "收集证人证言", "证人语言收集场所",
       "检查执法人员", "进入证人语言收集场所", "离开证人语言收集场所", "interview"),
    _i(7, "penalty", N_("statement and defence"), "陈述、申辩", "陈述申辩场所",
       "行政执法人员", "进入陈述申辩场所", "离开陈述申辩场所", "scene"),
    _i(8, "penalty", N_("penalty hearing"), "行政处罚听证", "听证场所", "行政执法人员",
       "进入听证场所", "离开听证场所", "scene"),
    _i(9, "inspection", N_("inspection and taking evidence"), "检查取证", "取证场所",
       "检查执法人员", "进入取证场所", "离开取证场所", "scene"),
    _i(10, "inspection", N_("questioning (investigation)"), "询问（调查）",
       "询问（调查）场所", "检查执法人员", "进入询问场所", "离开询问场所", "interview"),
    _i(11, "inspection", N_("taking witness testimony"), "收集证人证言", "证人语言收集场所",
       "检查执法人员", "进入证人语言收集场所", "离开证人语言收集场所", "interview"),
    _i(12, "inspection", N_("refusal of a lawful inspection"), "拒绝接受本机关依法实施检查",
       "检查场所", "检查执法人员", "进入检查场所", "离开检查场所", "scene"),
    _i(13, "service_of_documents",
       N_("serving documents where the recipient refuses to sign or seal"),
       "文书送达当事人或有关人员拒绝签字或盖章确认的", "文书送达场所", "行政执法人员",
       "到达文书送达场所", "文书送达环节结束", "confirmation"),
]
_BY_KEY = {it["key"]: it for it in ITEMS}
_CLASS_BY_ZH = {zh: en for en, zh in CLASSES.items()}


def normalize(value):
    """The stored form of an item class: an item key ("001-05"; "1-5" and "001-5" are read
    as "001-05") or a record class word; None if ``value`` is neither."""
    if not isinstance(value, str):
        return None
    v = value.strip()
    if v in _BY_KEY or v in CLASSES:
        return v
    if v in _CLASS_BY_ZH:
        return _CLASS_BY_ZH[v]
    f, sep, n = v.partition("-")
    if sep and f.isdigit() and n.isdigit() and len(f) <= 3 and len(n) <= 3 and int(f) == 1:
        k = "001-%02d" % int(n)
        return k if k in _BY_KEY else None
    return None


def record_class(value):
    """scene / interview / confirmation of a stored item class, or None."""
    if value in CLASSES:
        return value
    it = _BY_KEY.get(value)
    return it["record_class"] if it else None


def items_of_class(cls):
    """The item keys whose record class is ``cls``."""
    return [it["key"] for it in ITEMS if it["record_class"] == cls]


def describe(value):
    """The catalogue entry of an item key (a dict), or of a class ({"record_class": ...})."""
    if value in _BY_KEY:
        return dict(_BY_KEY[value])
    if value in CLASSES:
        return {"record_class": value, "record_class_zh": CLASSES[value]}
    return None
