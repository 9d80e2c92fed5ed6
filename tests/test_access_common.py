"""Shared helpers of the access tests (and of the copies, disc and desk tests that need an
approved request); no tests here.

    cat, u = access_world(tmp_path, url)          # users of each role, a case FZ-1 of
                                                  # unit U-1 holding A/2 and A/3
    rid = approved_request(cat, u, actions=("view", "copy"))   # by u["clerk"], approved
                                                  # by u["head2"] and u["leader"] (U-1)

Users (test_clerk_common.add_users, plus): "leader" (zhao.lead) leads unit U-1;
"leader2" (qian.lead) a unit_leader of U-2; "chief" (zhou.chief) a bureau_chief; "head2"
(wu.head) a second archive_head. Every one of them is added by wang.head ("head"), so a
request by wang.head can be approved by nobody it added: make requests as "clerk" or
"head2". wang.head set up the leader just now, so wang.head and zhao.lead together
approve nothing (SPEC §14.9 one person, one approval): approved_request has wu.head
approve.
"""
from test_clerk_common import A, B, add_recording, catalogue
from host_tools.catalogue import access, cases, users

CASE = "FZ-1"
UNIT = "U-1"


def access_world(tmp_path, url, *, recordings=((A, 2), (A, 3), (B, 4)), filed=((A, 2),
                                                                               (A, 3)),
                 head_clearance=None, top=None):
    """(cat, users): an archive with users of each role (units set), the recordings
    ``recordings`` (rows) and case FZ-1 of unit U-1 holding ``filed``; wang.head, the
    first user (after gao.top, cleared ``top``, if given), cleared ``head_clearance``."""
    cat, u = catalogue(tmp_path, url, head_clearance=head_clearance, top=top)
    head = u["head"]
    cat.act(head, users.change_event("zhao.lead", unit=UNIT))
    u["leader"] = users.User("zhao.lead", "unit_leader", how="os", unit=UNIT)
    for key, name, role, unit in (("leader2", "qian.lead", "unit_leader", "U-2"),
                                  ("chief", "zhou.chief", "bureau_chief", None),
                                  ("head2", "wu.head", "archive_head", None)):
        cat.act(head, users.add_event(name, role, os_account="nosuch-" + key, unit=unit))
        u[key] = users.User(name, role, how="os", unit=unit)
    for dev, seg in recordings:
        add_recording(cat, dev, seg)
    cat.act(u["clerk"], cases.opened_event(CASE, "违法建设 五一路 12号", unit=UNIT))
    for dev, seg in filed:
        cat.act(u["clerk"], cases.linked_event(CASE, device=dev, segment=seg))
    return cat, u


def approved_request(cat, u, *, requester="clerk", actions=("view",), target_kind="case",
                     target=CASE, case_no=CASE, purpose="court hearing 庭审"):
    """A request by u[requester], approved under the default rule (archive head and the
    case unit's leader); returns its number."""
    rid = access.request(cat, u[requester], target_kind=target_kind, target=target,
                         case_no=case_no, purpose=purpose, actions=actions)
    access.approve(cat, second_head(cat, u), rid)
    access.approve(cat, u["leader"], rid, reason="ok")
    return rid


def second_head(cat, u):
    """u["head2"] (wu.head, added by wang.head when missing): wang.head set the leader's
    unit just now, so its approval and the leader's would be one person's (access_rules
    _crony_why); wu.head's approval with the leader's counts."""
    if "head2" not in u:
        cat.act(u["head"], users.add_event("wu.head", "archive_head",
                                           os_account="nosuch-head2"))
        u["head2"] = users.User("wu.head", "archive_head", how="os")
    return u["head2"]


def ask(cat, u, who="clerk", **kw):
    """A request by u[who] to view case FZ-1 for a court hearing (``kw`` overrides any of
    request_event's arguments); returns its number."""
    args = dict(target_kind="case", target=CASE, case_no=CASE, purpose="court hearing",
                actions=("view",))
    args.update(kw)
    return access.request(cat, u[who], **args)
