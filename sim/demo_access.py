"""Step 9 of `make demo` (sim/demo.py): the archive guards what the clerks filed.

    step_access(d, filed)   d: sim.demo.Demo; filed: step_clerk's summary; returns a
                            summary dict, or None if a step failed (its output is in
                            OUT/access.txt)

Through the real `sealcam` command (issue 12; SPEC §14.8-14.13), as the station's staff
would: the archive head adds the case unit's leader; the clerk asks to view and export
the case's recordings for a stated purpose; the archive head and the unit leader each
approve (R15); the clerk gets a watermarked viewing copy (H.264/AAC MP4, the original is
never handed out) and the duplicate disc images with their label (R13); the disc verifies
offline; the archive head makes the off-site backup (R14); the access register shows every
use, and its PDF waits for the supervisor's signature. Each action is a signed event of
the station log naming its user.
"""
from __future__ import annotations

import os

from sim.demo_clerk import CASE_NO, CHIEF, CLERK, HEAD, PASSWORDS, UNIT, clerk_command

__all__ = ["step_access", "LEADER", "CHIEF"]

LEADER = "zhao.lead"                     # the case unit's leader (一中队)
PASSWORDS = dict(PASSWORDS, **{LEADER: "demo leader pass 1"})
SAVE, WHAT = "access.txt", "access, copies, disc, backup (issue 12)"
PURPOSE = "行政复议举证 / evidence for an administrative review"


def step_access(d, filed):
    """Step 9: request, two approvals, a viewing copy, two disc images and their label, a
    backup, the register. Returns {request, copy, disc, backup, register_pdf, uses}."""
    from sim.demo import banner, say

    def sealcam(args, user=None, new_password=None, json_out=True):
        return clerk_command(d, args, SAVE, WHAT, PASSWORDS, user, new_password, json_out)

    if not filed:
        return None
    banner("9. 调阅审批、查看副本、光盘与异地备份 / Approved access, viewing copies, "
           "discs and the off-site backup")
    # the bureau chief sets up the unit's leader: an approver set up by the other approver
    # (or the requester set up by an approver) does not count (SPEC §14.9)
    if sealcam(["user", "add", LEADER, "--role", "unit_leader", "--unit", UNIT,
                "--display", "赵队长"], user=CHIEF, new_password=PASSWORDS[LEADER]) is None:
        return None
    say("用户", "User", "%s, leader of unit %s (the case's unit), added by the bureau chief "
        "%s: neither approver below set up the other or the clerk" % (LEADER, UNIT, CHIEF))
    req = sealcam(["access", "request", "--case", CASE_NO, "--whole-case", "--purpose",
                   PURPOSE, "--action", "view,export"], user=CLERK)
    if req is None:
        return None
    rid = req["id"]
    say("申请", "Request", "%s by %s: view and export case %s, for \u201c%s\u201d; needs %s"
        % (rid, CLERK, CASE_NO, PURPOSE, ", ".join(req.get("missing") or [])))
    a1 = sealcam(["access", "approve", rid, "--reason", "同意 / agreed"], user=HEAD)
    a2 = a1 and sealcam(["access", "approve", rid, "--reason", "同意 / agreed"], user=LEADER)
    if not a2 or a2.get("state") != "approved":
        return None
    say("审批", "Approved", "%s by the archive head (%s) and the unit leader (%s); valid "
        "until %s" % (rid, HEAD, LEADER, (a2.get("valid_until") or "")[:19]))
    rec = filed["recording"]
    mp4 = os.path.join(d.out, "查看副本-%s.mp4" % rec.replace("/", "-"))
    cp = sealcam(["access", "copy", rid, rec, "--out", mp4], user=CLERK)
    if cp is None:
        return None
    mark = " / ".join(x.strip() for x in ((cp.get("derivation") or {}).get("watermark")
                                          or "").splitlines() if x.strip())
    say("查看副本", "Viewing copy", "%s: H.264/AAC MP4, watermarked \u201c%s\u201d, %s; the "
        "original stays read-only in the archive" % (
            d.rel(mp4), mark[:80],
            "reused" if cp.get("reused") else "made with FFmpeg"))
    disc_dir = os.path.join(d.out, "disc")
    disc = sealcam(["export", "disc", CASE_NO, "--out", disc_dir, "--request", rid],
                   user=CLERK)
    if disc is None:
        return None
    say("光盘", "Disc", "two identical ISO 9660 images %s and the label %s; image SHA-256 "
        "%s..." % (", ".join(d.rel(p) for p in disc["images"]), d.rel(disc["label_pdf"]),
                   disc["image_sha256"][:16]))
    chk = d.sealcam(["verify", disc["images"][0]], SAVE, WHAT)
    verdict = [ln.split(":", 1)[1].strip() for ln in chk.stdout.splitlines()
               if ln.startswith("verdict:")]
    say("光盘校验", "Disc verified", "sealcam verify %s: %s, exit %d (the same check as "
        "verify_disc.py at the disc's root, with Python alone)"
        % (d.rel(disc["images"][0]), (verdict or ["?"])[-1], chk.returncode))
    offsite = os.path.join(d.out, "offsite-backup")
    bk = sealcam(["backup", "--to", offsite], user=HEAD)
    if bk is None:
        return None
    say("异地备份", "Backup", "%s: %s objects (%s new), log checkpoint %s entries; take it "
        "off site" % (d.rel(offsite), bk.get("objects"), bk.get("objects_new"),
                      bk.get("log_size")))
    pdf = os.path.join(d.out, "调阅登记表.pdf")
    reg = sealcam(["access", "register"], user=HEAD)
    if reg is None or sealcam(["access", "register", "--pdf", pdf], user=HEAD,
                              json_out=False) is None:
        return None
    uses = reg.get("accesses") or []
    say("登记表", "Register", "%d uses, each with its request and both approvals; %s for "
        "the supervisor to sign" % (len(uses), d.rel(pdf)))
    if chk.returncode != 0 or len(uses) < 2:
        return None
    return {"request": rid, "copy": mp4, "disc": disc["images"], "label": disc["label_pdf"],
            "backup": offsite, "station_key": bk.get("station_key"), "register_pdf": pdf,
            "uses": len(uses)}
