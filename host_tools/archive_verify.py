"""`sealcam verify ARCHIVE`: verify every device store of a station archive (SPEC §9).

Each devices/ID/ is verified like a card with the offline verifier, pinning the device's
registered key; on top of that, the archived chain must reach the last signed head the
station saw (records removed from the archive after an offload are NOT_OK). The overall
verdict is the worst device verdict; exit codes are those of a store.
"""
from __future__ import annotations

import json
import os
import sys

from .archive import Archive, NotAnArchive
from .verify import EXIT_CODES, NOT_OK, NOT_SIGNED, OK, VERDICTS, verify_store

__all__ = ["verify_archive", "run_verify_archive"]

_RANK = {v: i for i, v in enumerate(VERDICTS)}      # best .. worst


def verify_archive(root, *, progress=None):
    """Returns {"archive", "verdict", "devices": [ {device, fingerprint, verdict, report,
    last_head_seq, records, segments, receipts, last_offload, reasons} ], "reasons"}."""
    with Archive(root) as a:
        devices = a.devices()
        out = {"archive": a.root, "archive_id": a.archive_id, "devices": [], "reasons": []}
        worst = None
        for d in devices:
            did = d["id"]
            view = a.view_dir(did)
            entry = {"device": did, "fingerprint": d["fingerprint"],
                     "last_head_seq": d["last_head_seq"], "records": a.record_count(did),
                     "segments": len(a.segments(did)),
                     "segments_complete": len(a.segments(did, "complete")),
                     "receipts": [{k: r[k] for k in ("number", "covered", "status",
                                                      "record_seq", "sent_at")}
                                  for r in a.receipts(did)],
                     "last_offload": None, "verdict": None, "reasons": [], "notes": [],
                     "report": None}
            offs = a.offloads(did)
            if offs:
                o = offs[-1]
                entry["last_offload"] = {k: o[k] for k in ("id", "started", "finished",
                                                           "status", "verdict",
                                                           "head_went_back")}
            if not os.path.isdir(os.path.join(view, "rec")) or not os.listdir(
                    os.path.join(view, "rec")):
                entry["verdict"] = None
                entry["reasons"].append("no records offloaded yet")
                out["devices"].append(entry)
                continue
            rep = verify_store(view, d["pubkey"], progress=progress)
            verdict = rep.verdict
            reasons = list(rep.reasons)
            last = d["last_head_seq"]
            if last is not None and (rep.chain_end is None or rep.chain_end < last):
                verdict = NOT_OK
                reasons.insert(0, "the archived chain ends at seq %s, before the last signed "
                                  "head the station saw (seq %d): records were removed from "
                                  "the archive" % (rep.chain_end, last))
            went_back = [o["id"] for o in offs if o["head_went_back"]]
            if went_back:
                entry["notes"].append("offload%s %s found the recorder's signed head gone back "
                                      "(records removed from the recorder after they were "
                                      "archived)" % ("" if len(went_back) == 1 else "s",
                                                     ", ".join(map(str, went_back))))
            entry["verdict"], entry["reasons"], entry["report"] = verdict, reasons, rep
            out["devices"].append(entry)
            if worst is None or _RANK[verdict] > _RANK[worst]:
                worst = verdict
        bad = a.check_objects()   # every stored file: hashes to its name, read-only
        out["objects_bad"] = [{"path": p, "reason": r} for p, r in bad]
        if bad:
            worst = NOT_OK
            out["reasons"].extend("object %s: %s" % (os.path.relpath(p, a.root), r)
                                  for p, r in bad[:20])
            if len(bad) > 20:
                out["reasons"].append("… and %d more objects" % (len(bad) - 20))
        if worst is None:
            worst = NOT_SIGNED
            out["reasons"].append("no device store in the archive holds records")
        out["verdict"] = worst
        return out


def _text(res, all_records=False):
    lines = ["archive %s (id %s)" % (res["archive"], res["archive_id"]), ""]
    for e in res["devices"]:
        lines.append("=" * 78)
        lines.append("device %s (registered key %s)" % (e["device"], e["fingerprint"]))
        if e["report"] is None:
            lines.append("  %s" % "; ".join(e["reasons"]))
            continue
        lines.append(e["report"].to_text(all_records=all_records).rstrip("\n"))
        if e["verdict"] != e["report"].verdict:
            lines.append("ARCHIVE VERDICT: %s" % e["verdict"])
            for r in e["reasons"][:1]:
                lines.append("  - " + r)
        for n in e["notes"]:
            lines.append("NOTE: " + n)
        for r in e["receipts"][-1:]:
            lines.append("last receipt: %d covers seq 0..%d (%s)" % (r["number"], r["covered"],
                                                                   r["status"]))
    lines.append("=" * 78)
    lines.append("%-20s %-41s %8s %9s  %s" % ("device", "key", "records", "segments",
                                               "verdict"))
    for e in res["devices"]:
        lines.append("%-20s %-41s %8d %4d/%-4d  %s" % (
            e["device"], e["fingerprint"], e["records"], e["segments_complete"],
            e["segments"], e["verdict"] or "(no records)"))
    lines.append("")
    lines.append("OVERALL: %s" % res["verdict"])
    for r in res["reasons"]:
        lines.append("  - " + r)
    return "\n".join(lines) + "\n"


def run_verify_archive(args) -> int:
    if getattr(args, "key", None):
        print("sealcam verify: --key is not used with an archive: each device store is "
              "verified with the device's registered key", file=sys.stderr)
        return 3
    try:
        res = verify_archive(args.path, progress=args.progress)
    except NotAnArchive as e:
        print("sealcam verify: %s" % e, file=sys.stderr)
        return 3
    except OSError as e:
        print("sealcam verify: cannot read the archive: %s" % e, file=sys.stderr)
        return 3
    try:
        if args.json:
            j = dict(res)
            j["devices"] = []
            for e in res["devices"]:
                e = dict(e)
                e["report"] = e["report"].to_json() if e["report"] is not None else None
                j["devices"].append(e)
            j["exit_code"] = EXIT_CODES[res["verdict"]]
            json.dump(j, sys.stdout, indent=2, ensure_ascii=False, default=str)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(_text(res, getattr(args, "all", False)))
        sys.stdout.flush()
    except BrokenPipeError:
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    return EXIT_CODES[res["verdict"]]


assert OK in _RANK
