"""The ``sealcam`` command line (modelled on mpremote: few verbs, clear help).

    sealcam verify PATH [--key DEVICE.pub] [--checkpoint FILE] [--json] [--all]
                   [--progress | --no-progress]
                   PATH is a store (SD card) or a station archive (has archive.sqlite)
    sealcam offload --port PORT --archive DIR [--register --fingerprint FP] [--window N]
                    [--json]
    sealcam provision --port PORT --archive DIR --device-id ID --technician NAME
                      [--label FILE.png] [--installed] [--rekey] [--json]
    sealcam flash --port PORT [--board esp32s3_cam|virtual] [--production] [--no-compile]
                  [--no-reset] [--json]        (--check: compare the board with its manifest)
    sealcam checkout --port PORT --archive DIR --officer ID --unit UNIT [--force] [--json]
    sealcam dock --port PORT --archive DIR [--no-offload] [--json]
    sealcam status --port PORT --archive DIR [--json]
    sealcam report --archive DIR [--device ID] [--officer ID] [--from DATE] [--to DATE]
                   [--clips DIR] [--json | --csv]
    sealcam clip --archive DIR --out FILE.mkv (--annotation DEVICE:SEQ | --mark DEVICE:SEQ
                 [--before S] [--after S] | --device ID --from TIME --to TIME
                 | --officer ID --from TIME --to TIME) [--json]
    sealcam verify-clip FILE.mkv [--prov FILE.mkv.prov] [--archive DIR | --key DEVICE.pub]
                        [--station-key STATION.pub] [--json]
    sealcam station init --archive DIR
    sealcam station register --archive DIR --device ID --key PUB
    sealcam station devices --archive DIR [--json]
    sealcam station revoke --archive DIR --device ID --reason TEXT --by NAME
    sealcam station rekey --archive DIR --device ID --key NEWPUB --by NAME
    sealcam station checkpoint --archive DIR [--out FILE]
    sealcam station reindex --archive DIR
    sealcam station adopt --archive DIR
    sealcam sim record DIR --seconds N [--runtime cpython|micropython] [--fs littlefs|fat]
                           [--checkpoint S] [--segment S] [--bitrate BPS] [--seed N]
    sealcam sim serve --store DIR [--trust STATION.pub] [--record S] [--runtime …]
    sealcam sim board --dir DIR [--install]   (the virtual board: mpremote drives it)

Exit codes:
    verify:  0 OK or OK_WITH_MISSING_INFO, 1 NOT_OK, 2 NOT_SIGNED, 3 usage / unreadable,
             130 interrupted
    offload: 0 ok, 1 verification NOT_OK (no receipt sent; records that failed are kept in
             quarantine), 3 usage or port error or not a sealcam recorder, 4 unknown device,
             5 authentication failed (either side, or a key retired by station rekey:
             what its old chain holds past that key's history is kept in quarantine),
             6 link broken (run again to resume), 7 the recorder is revoked (station
             revoke, also while the offload ran: what it sent is in quarantine, no
             receipt), 130 interrupted (Ctrl-C)
    provision: 0 provisioned, 1 the recorder's key or id refused, 3 usage, archive, port or
             mpremote error, or the id is already registered, 5 the recorder does not trust
             the station or did not prove its key, 6 no answer
    flash:   0 flashed and every file read back as sent, 1 a file read back differs (no
             manifest written: flash again), 3 usage or port error, mpy-cross missing or a
             module that does not compile, 6 no REPL on the port (production-locked, busy,
             not MicroPython) or the link broke (flash again), 130 interrupted
    checkout: 0 assigned, 1 the link was tampered with (a signed record read back
             differs from what was sent), 2 NOT_READY (not assigned), 3/4/5/6/130 as for offload
    dock:    0 all fine, 1 NOT_OK, drift flagged or the link tampered with, 2 NOT_READY, 3/4/5/6/130 as for offload
    status:  0 READY, 2 NOT_READY or annotations waiting, 1/3/4/5/6/130 as for checkout
    report:  0 no problems, 1 problems listed (records that do not verify among them),
             3 usage error / not an archive, 130 interrupted
    clip:    0 clip(s) written, 1 the archive does not prove what was asked (run verify),
             3 usage error / not an archive / nothing of the kind asked
    verify-clip: 0 OK or OK_WITH_MISSING_INFO, 1 NOT_OK, 3 usage / unreadable file,
             4 NOT_PROVEN (no key pinned: the clip only agrees with its own provenance)
    station, sim: 0 ok, 3 usage error or an archive that cannot be written
             (station reindex: 1 records the log names were found nowhere; station
             devices: 1 the station log does not verify)
    dock, checkout, status: also 7 the recorder is revoked (nothing is sent to it)
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from host_tools import argtypes

EXIT_OK, EXIT_NOT_OK, EXIT_NOT_SIGNED, EXIT_USAGE = 0, 1, 2, 3

_EPILOG = """\
exit codes (verify): 0 OK or OK_WITH_MISSING_INFO, 1 NOT_OK, 2 NOT_SIGNED,
                     3 usage error or unreadable store/key
"""
_EPILOG_ALL = """\
exit codes:
  verify   0 OK or OK_WITH_MISSING_INFO, 1 NOT_OK, 2 NOT_SIGNED, 3 usage error or
           unreadable store/key (a small-order key too), 130 interrupted (Ctrl-C)
  offload  0 ok, 1 verification NOT_OK (no receipt sent), 3 usage or port error or not a
           sealcam recorder, 4 unknown device, 5 authentication failed, 6 link broken (run
           again to resume), 7 recorder revoked (quarantined, no receipt), 130 interrupted
  provision 0 provisioned, 1 key or id refused, 3 usage/archive/port/mpremote error or the
           id is taken, 5 not trusted or no proof, 6 no answer
  flash    0 flashed and verified, 1 a file read back differs (flash again), 3 usage or port
           error, mpy-cross missing or a compile error, 6 no REPL (production-locked, busy)
           or the link broke, 130 interrupted
  checkout 0 assigned, 1 link tampered with (signed record read back differs), 2
           NOT_READY (not assigned), others as for offload
  dock     0 all fine, 1 NOT_OK, drift flagged or link tampered with, 2 NOT_READY, others as for offload
  status   0 READY, 2 NOT_READY or annotations waiting, others as for checkout
  report   0 no problems, 1 problems listed (records that do not verify among them),
           3 usage error or not an archive, 130 interrupted (Ctrl-C)
  clip     0 clip(s) written, 1 the archive does not prove what was asked (run verify),
           3 usage error, not an archive, or nothing of the kind asked in it
  verify-clip  0 OK or OK_WITH_MISSING_INFO, 1 NOT_OK, 3 usage error or unreadable file,
               4 NOT_PROVEN (neither --archive nor --key/--station-key: no key pinned)
  station, sim  0 ok, 3 usage error or an archive that cannot be written
                (station reindex: 1 records the log names were found nowhere; station
                devices: 1 the station log does not verify)
  dock, checkout, status  also 7: the recorder is revoked (nothing is sent to it)

a shift at the dock:
  sealcam station init --archive /srv/sealcam          # once: station key + empty archive
  sealcam provision --port /dev/ttyACM0 --archive /srv/sealcam --device-id SC-0001 \
      --technician "Wang Li"                           # once per recorder (a technician)
  sealcam checkout --port /dev/ttyACM0 --archive /srv/sealcam --officer PC-0042 --unit U2
  … the shift …
  sealcam dock --port /dev/ttyACM0 --archive /srv/sealcam   # offload, clock, release, check
  sealcam verify /srv/sealcam                          # every device store in the archive
  sealcam report --archive /srv/sealcam                # interruptions, annotations, drift, …
"""
_EPILOG_OFFLOAD = """\
exit codes: 0 ok, 1 verification NOT_OK (no receipt sent; records that failed are
            kept in quarantine), 3 usage or port error, or not a sealcam recorder,
            4 unknown device, 5 authentication failed (the recorder does not trust the
            station, or did not prove its registered key), 6 link broken (run the same
            command again: it resumes from the last verified chunk), 7 the recorder is
            revoked (`sealcam station revoke`): what it sent is kept in quarantine, no
            receipt, 130 interrupted (Ctrl-C; resumable too)
"""


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors raised (exit code 3) instead of exiting with 2."""

    def error(self, message):
        raise _UsageError("%s: error: %s" % (self.prog, message), self.format_usage())


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sealcam",
                description="Host tools for the sealcam body-worn recorder.",
                epilog=_EPILOG_ALL, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version="%(prog)s " + _version())
    p.add_argument("--lang", metavar="LANG", help="en or zh_CN (简体中文), anywhere on the "
                   "line; default: LANGUAGE, LC_ALL, LC_MESSAGES or LANG")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True

    v = sub.add_parser(
        "verify", help="verify a recorder's store (SD card) or a station archive offline",
        description="Verify a sealcam store offline: signatures, the record chain, the signed "
                    "head and every media chunk. Prints a verdict table (or JSON). PATH may "
                    "be a station archive: then every device store in it is verified with "
                    "the device's registered key, one table per device and an overall "
                    "verdict.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("path", metavar="PATH", help="the store's root directory (the SD card), "
                                                "or a station archive")
    v.add_argument("--key", metavar="DEVICE.pub",
                   help="the device's registered public key (raw 32 bytes, 64 hex digits, or "
                        "PEM/DER); without it the origin is not checked (not with an "
                        "archive: it pins each device's registered key)")
    v.add_argument("--station-key", metavar="FILE|HEX|FINGERPRINT", default=None,
                   help="(a disc) the station's public key (a file, 64 hex digits) or its "
                        "fingerprint: a disc signed by another key is NOT_OK; without it the "
                        "verdict says the key was not pinned and prints its fingerprint to "
                        "compare with the label")
    v.add_argument("--checkpoint", metavar="FILE", default=None,
                   help="(an archive) a checkpoint exported earlier by `sealcam station "
                        "checkpoint`: the archive's station log must extend it (a rolled-back "
                        "or replaced archive is NOT_OK)")
    v.add_argument("--at-rest-key", metavar="FILE", default=None,
                   help="(an archive) the station's at-rest key file, when objects are "
                        "encrypted at rest and this is not the station (default: [confidentiality] "
                        "key_file of its station.toml)")
    v.add_argument("--json", action="store_true", help="print the full report as JSON")
    v.add_argument("--all", action="store_true", help="list every record, not only the "
                                                      "ones that are not OK")
    g = v.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show a progress bar on stderr while hashing media")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="never show a progress bar")
    v.set_defaults(func=_cmd_verify)

    o = sub.add_parser(
        "offload", help="pull a docked recorder into the station archive, verify, give a "
                        "custody receipt",
        description="Offload a docked recorder: HELLO, AUTH with the station key, pull the "
                    "records and media the archive lacks (resuming an interrupted offload "
                    "from its last verified chunk), verify the device's store in the archive "
                    "with its registered key and, if it is OK, send the recorder a custody "
                    "receipt. A signed head that went back (records removed from the "
                    "recorder) is flagged and no receipt is sent.",
        epilog=_EPILOG_OFFLOAD, formatter_class=argparse.RawDescriptionHelpFormatter)
    argtypes.add_port_archive(o)
    o.add_argument("--register", action="store_true",
                   help="register an unknown device whose key proves to have the fingerprint "
                        "--fingerprint (from its label); normally a technician runs `sealcam "
                        "provision` instead")
    o.add_argument("--fingerprint", metavar="FP", default=None,
                   help="with --register: the key fingerprint printed on the recorder's label "
                        "(32 hex digits, colons optional); a recorder proving another key is "
                        "refused (exit 5)")
    o.add_argument("--window", type=argtypes.positive_int, default=8, metavar="N",
                   help="READ requests in flight (default: %(default)s)")
    b = o.add_mutually_exclusive_group()
    b.add_argument("--bulk", dest="bulk", action="store_const", const=True, default="auto",
                   help="read media from the recorder's card exposed as a read-only disk "
                        "(SPEC §8.8), each chunk checked against its signed hash; default: "
                        "when the recorder offers it")
    b.add_argument("--no-bulk", dest="bulk", action="store_const", const=False,
                   help="read media over the serial link only")
    o.add_argument("--volume", metavar="DIR", default=None,
                   help="where the recorder's USB disk is mounted (a real board); the "
                        "virtual recorder says where its card folder is")
    argtypes.add_timeout_json(o)
    argtypes.add_progress(o)
    o.set_defaults(func=_cmd_offload)

    from . import dock as _dock
    dk = sub.add_parser(
        "dock", help="check-in: offload with a receipt, set the clock (drift measured), "
                     "release the officer, self-check",
        description="The dock cycle at the end of a shift (SPEC §10.7): `offload` (pull, "
                    "verify, custody receipt), TIME_SET to the station's clock (the "
                    "recorder measures its drift since the last calibration and flags it "
                    "past 3 s/day), ASSIGN null (the officer is released), CHECK (the "
                    "pre-shift self-check: READY or NOT_READY with reasons), then a last "
                    "offload pass that archives and receipts the records those steps "
                    "wrote (the shift ends in the archive in the same dock).",
        epilog="exit codes: 0 all fine, 1 offload NOT_OK or clock drift flagged, 2 NOT_READY "
               "after the cycle, 3 usage or port error, 4 unknown device, 5 authentication "
               "failed or receipt refused, 6 link broken, 130 interrupted (Ctrl-C); 3 also "
               "for a port that is not a sealcam recorder",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _dock.add_arguments_dock(dk)
    dk.set_defaults(func=_dock.run_dock)
    co = sub.add_parser(
        "checkout", help="check-out: set the clock, self-check, assign the recorder to an "
                         "officer and unit",
        description="Hand a docked recorder to an officer (SPEC §10.5-§10.6): TIME_SET, "
                    "CHECK and, if the recorder is READY (or --force), ASSIGN; every record "
                    "it makes from then on carries the officer and unit.",
        epilog="exit codes: 0 assigned, 1 the recorder presents another key than the "
               "registered one, 2 NOT_READY (not assigned; the reasons are listed), 3 usage "
               "or port error (or not a sealcam recorder), or an officer id or unit of "
               "another form than ARCHIVE/station.toml sets (nothing is sent; see "
               "docs/station-config.md), 4 unknown device, 5 "
               "authentication failed, 6 link broken, 130 interrupted (Ctrl-C)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _dock.add_arguments_checkout(co)
    co.set_defaults(func=_dock.run_checkout)

    stt = sub.add_parser(
        "status", help="what a docked recorder says of itself: state, officer, last "
                       "self-check, interruptions waiting for a voice annotation",
        description="HELLO, AUTH (the recorder proves its registered key) and STATUS (SPEC "
                    "§8.2): the recorder's "
                    "state, assigned officer and unit, battery, free storage (in MB of "
                    "10^6 bytes and in minutes at the bitrate of ARCHIVE/station.toml, "
                    "default 8 Mbit/s; both rounded down), its last "
                    "self-check and the interruptions still waiting for the officer's voice "
                    "annotation.",
        epilog="exit codes: 0 READY (or not checked since boot), 2 the last self-check was\n"
               "            NOT_READY or interruptions wait for an annotation, 1 another key\n"
               "            than the registered one, 3 usage or port error or not a sealcam\n"
               "            recorder, 4 unknown device, 5 authentication failed, 6 link\n"
               "            broken, 130 interrupted (Ctrl-C)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _dock.add_arguments_status(stt)
    stt.set_defaults(func=_dock.run_status)

    rp = sub.add_parser(
        "report", help="compliance report from the archive: interruptions and their voice "
                       "annotations, late offloads, clock drift, refusals, marks, shifts",
        description="A compliance report per device, officer and date range (SPEC §10, "
                    "R2/R3/R5/R7/R8/R12), read from the station archive. It reads the "
                    "records as offloaded; `sealcam verify ARCHIVE` is what proves them.",
        epilog="exit codes: 0 no problems, 1 problems listed (unexplained or missing "
               "annotations, late offloads, clock drift), 3 usage error, not an archive, or "
               "--officer names an officer no record names; --clips DIR writes each "
               "statement as a clip (DIR/DEVICE-SEQ.mkv, SPEC §12)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    from .report import add_arguments as _report_args
    _report_args(rp)
    rp.set_defaults(func=_cmd_report)

    from . import clip as _clip
    from . import clip_verify as _clip_verify
    cl = sub.add_parser(
        "clip", help="cut a verifiable clip out of the archive: a statement, a mark, a "
                     "time range of a device or an officer",
        description="Cut a standalone, playable .mkv out of the archive on chunk "
                    "boundaries (SPEC §12), with FILE.mkv.prov beside it: the signed records, "
                    "chunk hashes and station log proofs that prove every byte of it. One "
                    "clip per segment: a selection over several segments writes "
                    "FILE-DEVICE-SEGMENT.mkv for each. The output says what the clip covers, "
                    "how far it reaches beyond the asked range, and how to play it.",
        epilog="exit codes: 0 clip(s) written, 1 the archive does not prove what was asked "
               "(a record, chunk or station log that does not verify: run `sealcam verify "
               "DIR`), 3 usage error, not an archive, or nothing of the kind asked in it",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _clip.add_arguments(cl)
    cl.set_defaults(func=_clip.run)
    vc = sub.add_parser(
        "verify-clip", help="check a clip against its provenance, the device key and the "
                            "station log",
        description="Check every byte of a clip against the recorder's signed chunk hashes, "
                    "the records' signatures against the device key (the archive's registered "
                    "key, or --key), and the records' inclusion in the station log (the "
                    "archive's current checkpoint, or the provenance's own signed checkpoint) "
                    "(SPEC §12.4). Prints what was and was not checked.",
        epilog="exit codes: 0 OK or OK_WITH_MISSING_INFO (a key only the provenance's own), "
               "1 NOT_OK, 3 usage error or a file that cannot be read, 4 NOT_PROVEN (neither "
               "--archive nor --key / --station-key: no key pinned, the clip only agrees "
               "with its own provenance, which anyone can make)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _clip_verify.add_arguments(vc)
    vc.set_defaults(func=_clip_verify.run)

    pv = sub.add_parser(
        "provision", help="a technician makes a recorder this station's (id, trust, key, label)",
        description="Write the recorder's id and this station's trust list to its internal "
                    "flash (mpremote), reset it so that it makes its device key, read the key "
                    "in a dock session in which the recorder proves it holds it, register it "
                    "in the signed station log as provisioned by the technician, and print a "
                    "label (id, key fingerprint, QR code PNG). No trust on first use: the key "
                    "is the one that proved itself to the technician with the recorder in "
                    "hand. An id already registered is refused (after a repair: station rekey).",
        epilog="exit codes: 0 provisioned, 1 the recorder's key or id refused, 3 usage, "
               "archive, port or mpremote error, or the id is taken, 5 the recorder does not "
               "trust the station or did not prove its key, 6 no answer",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    argtypes.add_port_archive(pv)
    pv.add_argument("--device-id", required=True, metavar="ID", help="the recorder's id")
    pv.add_argument("--technician", required=True, metavar="NAME",
                    help="who provisions it (named in the station log)")
    pv.add_argument("--label", metavar="FILE.png", default=None,
                    help="where to write the label's QR code (default: ID.label.png; '-': "
                         "none)")
    pv.add_argument("--installed", action="store_true",
                    help="the id and trust list are on the recorder already (written by "
                         "hand): only read, check and register its key")
    pv.add_argument("--rekey", action="store_true",
                    help="the recorder is registered and was repaired: the new key it proves "
                         "replaces its old one (station rekey, by the technician)")
    argtypes.add_timeout_json(pv)
    pv.set_defaults(func=_cmd_provision)

    fl = sub.add_parser(
        "flash", help="a technician installs the recorder firmware on a board (mpremote)",
        description="Compile the firmware with mpy-cross, copy it to the board over its "
                    "MicroPython REPL (mpremote), read back the SHA-256 of every file, write "
                    "the firmware manifest /flash/fw.cbor and reset the board: its next boot "
                    "writes a FIRMWARE record naming this firmware into its chain. The "
                    "device key, id and trust list on the board are not touched. "
                    "--production locks the board: its serial port then speaks only the dock "
                    "protocol and gives no REPL; unlocking needs the board's bootloader "
                    "(reflash MicroPython; SPEC §13.3).",
        epilog="exit codes: 0 flashed and every file read back as sent, 1 a file read back "
               "differs (no manifest written: flash again), 3 usage or port error, mpy-cross "
               "missing or a module that does not compile, 6 no REPL on the port "
               "(production-locked, busy, not MicroPython) or the link broke (flash again), "
               "130 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    fl.add_argument("--port", required=True, metavar="PORT",
                    help="the board's serial port (the virtual board: the PORT line of "
                         "`sealcam sim board`)")
    fl.add_argument("--board", choices=("esp32s3_cam", "virtual"), default="esp32s3_cam",
                    help="the board the firmware is for (default: esp32s3_cam)")
    fl.add_argument("--production", action="store_true",
                    help="lock the board: no REPL on its serial port from the next boot")
    fl.add_argument("--no-compile", action="store_true",
                    help="copy the .py sources instead of mpy-cross bytecode")
    fl.add_argument("--no-reset", action="store_true",
                    help="do not reset the board at the end")
    fl.add_argument("--check", action="store_true",
                    help="only check: read the board's manifest and the SHA-256 of every file "
                         "it names (exit 0 all match, 1 a difference or no manifest)")
    fl.add_argument("--json", action="store_true", help="the result as JSON on stdout")
    fl.set_defaults(func=_cmd_flash)

    from . import cli_clerk
    cli_clerk.add_parsers(sub, argparse.RawDescriptionHelpFormatter)

    st = sub.add_parser("station", help="the docking station: key and archive",
                        description="Set up the station key and archive, register devices.")
    stsub = st.add_subparsers(dest="station_verb", metavar="STATIONVERB", parser_class=_Parser)
    stsub.required = True
    si = stsub.add_parser(
        "init", help="make the station key pair and an empty archive",
        description="Make the station's Ed25519 key pair (DIR/station.key, the raw 32-byte "
                    "seed, mode 0600; DIR/station.pub, 64 hex digits) and an empty archive "
                    "in DIR. Refuses to overwrite an existing key. Give station.pub to each "
                    "recorder's list of trusted stations.")
    si.add_argument("--archive", required=True, metavar="DIR", help="the archive directory")
    si.set_defaults(func=_cmd_station_init)
    sr = stsub.add_parser(
        "register", help="register a device and its public key",
        description="Register a recorder's id and public key in the archive (what offload "
                    "and verify pin its records to).")
    sr.add_argument("--archive", required=True, metavar="DIR", help="the archive directory")
    sr.add_argument("--device", required=True, metavar="ID", help="the device id, e.g. "
                                                                  "SC-00A1B2C3")
    sr.add_argument("--key", required=True, metavar="PUB",
                    help="the device's public key: a key file (raw, hex, PEM/DER) or 64 hex "
                         "digits")
    sr.set_defaults(func=_cmd_station_register)
    sd = stsub.add_parser(
        "devices", help="list the recorders: key, status, firmware, last offload and head",
        description="Every recorder of the archive, from the signed station log and records: "
                    "id, key fingerprint, status (active / revoked; retired keys after a "
                    "rekey), firmware (last seen, or unknown), last offload, last signed head, "
                    "battery (last self-check, or unknown).",
        epilog="exit codes: 0 listed, 1 the station log does not verify (listed anyway, "
               "with the problems), 3 usage error or not an archive")
    sd.add_argument("--archive", required=True, metavar="DIR", help="the archive directory")
    sd.add_argument("--json", action="store_true", help="JSON on stdout")
    sd.set_defaults(func=_cmd_station_devices)
    sv = stsub.add_parser(
        "revoke", help="revoke a lost or stolen recorder",
        description="Revoke a recorder (a signed device_revoked event): from then on an "
                    "offload authenticates it, keeps what it sends in quarantine, never "
                    "receipts it and exits 7; dock, checkout and status refuse it (exit 7).")
    sv.add_argument("--archive", required=True, metavar="DIR", help="the archive directory")
    sv.add_argument("--device", required=True, metavar="ID", help="the recorder's id")
    sv.add_argument("--reason", required=True, metavar="TEXT", help="why (lost, stolen, ...)")
    sv.add_argument("--by", required=True, metavar="NAME", help="who revokes it")
    sv.set_defaults(func=_cmd_station_revoke)
    sk = stsub.add_parser(
        "rekey", help="a new device key after a repair (the old key is retired)",
        description="Give a recorder a new device key (a signed device_rekeyed event). The "
                    "old key is retired at the last signed head the archive holds; its "
                    "history stays in the archive as ID.keyN and verifies with the old key; "
                    "the recorder goes on with the new key, and the old key no longer "
                    "authenticates. A revoked recorder that is rekeyed is active again.")
    sk.add_argument("--archive", required=True, metavar="DIR", help="the archive directory")
    sk.add_argument("--device", required=True, metavar="ID", help="the recorder's id")
    sk.add_argument("--key", required=True, metavar="NEWPUB",
                    help="its new public key: a key file or 64 hex digits")
    sk.add_argument("--by", required=True, metavar="NAME", help="who re-keys it")
    sk.set_defaults(func=_cmd_station_rekey)
    sc = stsub.add_parser(
        "checkpoint", help="export the station log's latest signed checkpoint",
        description="Print (or write to FILE) the latest checkpoint of the archive's station "
                    "log (SPEC §11): a C2SP signed note, signed with the station key, naming "
                    "the log's size and Merkle root. Hand it to a supervisor, another station "
                    "or a witness; `sealcam verify ARCHIVE --checkpoint FILE` later proves the "
                    "archive still extends it.")
    sc.add_argument("--archive", required=True, metavar="DIR", help="the archive directory")
    sc.add_argument("--out", metavar="FILE", default=None, help="write it to FILE")
    sc.set_defaults(func=_cmd_station_checkpoint)
    sx = stsub.add_parser(
        "reindex", help="rebuild archive.sqlite from the station log and the signed records",
        description="Rebuild the archive's index (archive.sqlite) from the signed station "
                    "log and the signed records it names. The old database is moved aside "
                    "(archive.sqlite.before-reindex-TIME), never deleted.")
    sx.add_argument("--archive", required=True, metavar="DIR", help="the archive directory")
    sx.set_defaults(func=_cmd_station_reindex)
    sa = stsub.add_parser(
        "adopt", help="start the station log of an archive that has none (a person's decision)",
        description="Start the station log (SPEC §11.5) of an archive that has none: an "
                    "archive made before the log, or one whose log was lost. What the index "
                    "holds now is signed from now on, after an `adopt` entry; `sealcam verify` "
                    "then says at best OK_WITH_MISSING_INFO, since the history before it is "
                    "unproven. Review the archive first: a station never does this on its own.")
    sa.add_argument("--archive", required=True, metavar="DIR", help="the archive directory")
    sa.set_defaults(func=_cmd_station_adopt)

    sim = sub.add_parser("sim", help="the virtual recorder",
                         description="Run the virtual recorder (simulator).")
    simsub = sim.add_subparsers(dest="sim_verb", metavar="SIMVERB", parser_class=_Parser)
    simsub.required = True
    r = simsub.add_parser(
        "record", help="record with the virtual recorder into a store directory",
        description="Run the firmware on the virtual recorder and record synthetic video "
                    "into the store DIR.")
    r.add_argument("dir", metavar="DIR", help="the store directory (the virtual SD card)")
    r.add_argument("--seconds", type=argtypes.positive_float, required=True, metavar="N",
                   help="seconds of recording")
    argtypes.add_runtime_fs(r)
    r.add_argument("--checkpoint", type=argtypes.positive_float, default=10.0, metavar="S",
                   help="seconds between checkpoints (default: %(default)s)")
    r.add_argument("--segment", type=argtypes.positive_float, default=300.0, metavar="S",
                   help="segment length in seconds before rollover (default: %(default)s)")
    r.add_argument("--bitrate", type=argtypes.positive_int, default=2_000_000, metavar="BPS",
                   help="synthetic video bit rate in bits per second (default: %(default)s)")
    r.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the synthetic video and the virtual device (default: the "
                        "simulator's)")
    r.add_argument("--officer", metavar="ID", default=None,
                   help="officer assigned to the recorder (default: none)")
    r.add_argument("--flash", metavar="DIR", default=None,
                   help="the recorder's internal flash (device key) (default: DIR.flash)")
    r.set_defaults(func=_cmd_sim_record)
    se = simsub.add_parser(
        "serve", help="serve the dock link from a virtual recorder on a pty", add_help=False,
        description="Run the virtual recorder and serve the dock link on a pty (prints PORT "
                    "<path> first). See `sealcam sim serve --help`.")
    se.add_argument("rest", nargs=argparse.REMAINDER)
    se.set_defaults(func=_cmd_sim_serve)
    bo = simsub.add_parser(
        "board", help="the virtual board: firmware on the MicroPython VM behind a pty with a "
                      "REPL that mpremote drives", add_help=False,
        description="Run the virtual board (prints PORT <path> first). See `sealcam sim "
                    "board --help`.")
    bo.add_argument("rest", nargs=argparse.REMAINDER)
    bo.set_defaults(func=lambda args: _sim_board(args.rest))
    return p




def _version():
    try:
        from importlib.metadata import version
        return version("sealcam")
    except Exception:
        return "0+unknown"


def _cmd_verify(args) -> int:
    try:
        return _verify(args)
    except KeyboardInterrupt:
        print("sealcam verify: interrupted (Ctrl-C): no verdict", file=sys.stderr)
        return 130


def _verify(args) -> int:
    if os.path.isfile(os.path.join(args.path, "archive.sqlite")):
        from .archive_verify import run_verify_archive
        return run_verify_archive(args)
    from .disc.cli import is_disc, station_key_pin, verify_disc_path   # a disc (§14.11)
    from .i18n import _
    from .records import printable
    if is_disc(args.path):
        if args.key:
            print(_("sealcam verify: --key pins a recorder's key, not a disc's: pin the "
                    "station key with --station-key FILE|HEX|FINGERPRINT"), file=sys.stderr)
            return EXIT_USAGE
        try:
            pin = None if args.station_key is None else station_key_pin(args.station_key)
        except ValueError as e:
            print("sealcam verify: %s" % e, file=sys.stderr)
            return EXIT_USAGE
        return verify_disc_path(args.path, args.json, station_key=pin)
    if args.station_key is not None:
        print(_("sealcam verify: --station-key pins the station key of a disc (IMAGE.iso or "
                "a disc's folder); %(path)s is not one") % {"path": printable(args.path,
                                                                        backslash=False)},
              file=sys.stderr)
        return EXIT_USAGE
    from . import keys
    from .verify import verify_store
    pinned = None
    if args.key:
        try:
            pinned = keys.load_public_key(args.key)
        except OSError as e:
            print("sealcam verify: cannot read key %s: %s" % (args.key, e.strerror or e),
                  file=sys.stderr)
            return EXIT_USAGE
        except keys.KeyFileError as e:
            print("sealcam verify: bad key %s: %s" % (args.key, e), file=sys.stderr)
            return EXIT_USAGE
    try:
        report = verify_store(args.path, pinned, progress=args.progress, key_name=args.key)
    except (FileNotFoundError, NotADirectoryError) as e:
        print("sealcam verify: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print("sealcam verify: cannot read the store: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.json:
            # ASCII only: no raw control or bidi character from a card reaches the terminal
            json.dump(report.to_json(), sys.stdout, indent=2, ensure_ascii=True)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(report.to_text(all_records=args.all))
        sys.stdout.flush()
    except BrokenPipeError:  # `sealcam verify … | head`: the verdict still sets the exit code
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    return report.exit_code


def _cmd_sim_record(args) -> int:
    try:
        from sim.record import run_record
    except ImportError as e:
        print("sealcam sim record: the simulator is not available (%s)" % e, file=sys.stderr)
        return EXIT_USAGE
    rc = run_record(args)
    return 0 if rc is None else int(rc)


def _cmd_offload(args) -> int:
    if args.register or args.fingerprint is not None:
        from .label import normalize_fingerprint
        fp = normalize_fingerprint(args.fingerprint) if args.fingerprint else None
        if not args.register or fp is None:
            print("sealcam offload: --register needs --fingerprint FP, the key fingerprint on "
                  "the recorder's label (32 hex digits), and --fingerprint goes with "
                  "--register: a station never trusts the key a recorder first presents. "
                  "A technician provisions a new recorder with `sealcam provision`",
                  file=sys.stderr)
            return EXIT_USAGE
        args.register = fp
    try:
        from .offload import run_offload
        return run_offload(args)
    except KeyboardInterrupt:
        print("sealcam offload: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


def _cmd_report(args) -> int:
    from .report import run
    try:
        return run(args)
    except KeyboardInterrupt:
        print("sealcam report: interrupted (Ctrl-C): no report", file=sys.stderr)
        return 130


def _cmd_station_init(args) -> int:
    from .station import StationError, init
    try:
        r = init(args.archive)
    except (StationError, OSError) as e:
        print("sealcam station init: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    print("archive:      %s (id %s)" % (r["archive"], r["archive_id"]))
    print("station key:  %s (keep it secret; mode 0600)" % r["key"])
    print("station pub:  %s" % r["pub"])
    print("fingerprint:  %s" % r["fingerprint"])
    print("next: provision each recorder: `sealcam provision --port PORT --archive %s "
          "--device-id ID --technician NAME`" % args.archive)
    return 0


def _cmd_station_register(args) -> int:
    from .archive import NotAnArchive
    from .keys import KeyFileError
    from .station import StationError, register
    try:
        row, created = register(args.archive, args.device, args.key)
    except (StationError, NotAnArchive, KeyFileError) as e:
        print("sealcam station register: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print("sealcam station register: cannot read key %s: %s" % (args.key, e),
              file=sys.stderr)
        return EXIT_USAGE
    print("%s %s, key fingerprint %s" % ("registered" if created else "already registered:",
                                         row["id"], row["fingerprint"]))
    return 0


def _cmd_flash(args) -> int:
    from .flash import cli as flash_cli
    return flash_cli(args)


def _cmd_provision(args) -> int:
    from .provision import run_provision
    return run_provision(args)


def _cmd_station_devices(args) -> int:
    from .archive import NotAnArchive
    from .station import devices
    from .station_text import devices_text
    try:
        r = devices(args.archive)
    except (NotAnArchive, OSError) as e:
        print("sealcam station devices: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(r, indent=2, ensure_ascii=True, default=str))
    else:
        sys.stdout.write(devices_text(r))
    return EXIT_NOT_OK if r["problems"] else 0


def _cmd_station_revoke(args) -> int:
    from .archive import NotAnArchive
    from .station import StationError, revoke
    try:
        e = revoke(args.archive, args.device, args.reason, args.by)
    except (StationError, NotAnArchive) as e:
        print("sealcam station revoke: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    print("REVOKED %s at %s by %s (%s): its offloads now go to quarantine, never receipted "
          "(exit 7); dock, checkout and status refuse it" % (args.device, e["at"], e["by"],
                                                             e["reason"]))
    return 0


def _cmd_station_rekey(args) -> int:
    from .archive import NotAnArchive
    from .keys import KeyFileError, fingerprint
    from .station import StationError, rekey
    try:
        e = rekey(args.archive, args.device, args.key, args.by)
    except (StationError, NotAnArchive, KeyFileError) as e:
        print("sealcam station rekey: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print("sealcam station rekey: cannot read key %s: %s" % (args.key, e), file=sys.stderr)
        return EXIT_USAGE
    print("re-keyed %s by %s: new key %s; old key %s retired at %s; its history is kept as "
          "%s and verifies with the old key" % (
              args.device, e["by"], fingerprint(e["new_key"]), fingerprint(e["old_key"]),
              "seq %d" % e["retired_seq"] if e["retired_seq"] is not None
              else "no offloaded record", e["retired_as"]))
    return 0


def _cmd_station_checkpoint(args) -> int:
    from .archive import ArchiveError
    from .station import StationError, checkpoint
    from .tlog.log import LogError
    try:
        data = checkpoint(args.archive)
        if args.out:
            _write_regular(args.out, data)
        else:
            sys.stdout.write(data.decode())
    except (StationError, ArchiveError, LogError) as e:
        print("sealcam station checkpoint: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print("sealcam station checkpoint: %s" % (e.strerror or e), file=sys.stderr)
        return EXIT_USAGE
    return 0


def _write_regular(path, data):
    """Write ``data`` to the regular file ``path`` (created or replaced); a FIFO, device or
    directory raises OSError at once instead of blocking (attack2 X0)."""
    import errno
    import stat
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0),
                     0o644)
    except OSError as e:
        if e.errno == errno.ENXIO:      # a FIFO nobody reads
            raise OSError(e.errno, "%s is a FIFO, not a file: name a file to write"
                          % path) from None
        raise
    with os.fdopen(fd, "wb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "%s is not a regular file: name a file to write"
                          % path)
        f.truncate(0)
        f.write(data)


def _cmd_station_adopt(args) -> int:
    from .archive import ArchiveError
    from .station import StationError, adopt
    try:
        n = adopt(args.archive)
    except (StationError, ArchiveError, OSError) as e:
        print("sealcam station adopt: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    print("started the station log of %s with %d entries (an `adopt` entry first): what the "
          "archive holds is signed from now on; its history before is unproven" % (
              args.archive, n))
    return 0


def _cmd_station_reindex(args) -> int:
    from .archive import ArchiveError
    from .station import StationError, reindex
    from .tlog.log import LogError
    try:
        r = reindex(args.archive)
    except (StationError, ArchiveError, LogError, OSError) as e:
        print("sealcam station reindex: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    print("rebuilt archive.sqlite from %d log entries: %d devices, %d records; the old "
          "database is %s" % (r["entries"], r["devices"], r["records"], r["moved_to"]))
    if r["missing"]:
        print("records the log names but whose signed bytes were found nowhere: %s"
              % ", ".join(r["missing"][:20]), file=sys.stderr)
        return EXIT_NOT_OK
    return 0


def _cmd_sim_serve(args) -> int:
    return _sim_serve(args.rest)


def _sim_serve(argv) -> int:
    """`sealcam sim serve …`: the simulator's own arguments (sim.serve.add_arguments) and
    entry point (sim.serve.run_serve), imported only when asked for."""
    try:
        from sim import serve
        add_arguments, run_serve = serve.add_arguments, serve.run_serve
    except (ImportError, AttributeError) as e:
        print("sealcam sim serve: the virtual recorder's dock link is not available (%s); "
              "it needs sim/serve.py with add_arguments() and run_serve()" % e,
              file=sys.stderr)
        return EXIT_USAGE
    p = _Parser(prog="sealcam sim serve",
                description="Run the virtual recorder and serve the dock link on a pty; "
                            "prints `PORT <pty path>` as its first line.")
    add_arguments(p)
    try:
        args = p.parse_args(argv)
    except _UsageError as e:
        msg, usage = e.args
        sys.stderr.write(usage)
        print(msg, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    rc = run_serve(args)
    return 0 if rc is None else int(rc)


def _sim_board(argv) -> int:
    """`sealcam sim board …`: sim/board.py's arguments and entry point (run_board)."""
    from sim import board
    p = _Parser(prog="sealcam sim board",
                description="Run the virtual board: the firmware's board on the MicroPython "
                            "WebAssembly VM behind a pty with a REPL, raw REPL and the dock "
                            "link; prints `PORT <pty path>` as its first line. DIR/flash and "
                            "DIR/sd persist across resets and runs.",
                epilog="exit codes: 0 stopped, 1 the board could not start or its VM "
                       "stopped, 3 usage")
    board.add_arguments(p)
    try:
        args = p.parse_args(argv)
    except _UsageError as e:
        msg, usage = e.args
        sys.stderr.write(usage)
        print(msg, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    return int(board.run_board(args) or 0)


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    argv = list(argv)
    if argv[:2] == ["sim", "serve"]:     # its arguments belong to the simulator
        return _sim_serve(argv[2:])
    if argv[:2] == ["sim", "board"]:
        return _sim_board(argv[2:])
    from . import i18n
    lang = i18n.lang_in_argv(argv)
    i18n.setup(lang)                    # --lang, else LANGUAGE / LC_ALL / LC_MESSAGES / LANG
    argv = _without_lang(argv)
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        msg, usage = e.args
        sys.stderr.write(usage)
        print(msg, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    try:
        return args.func(args)
    except _archive_errors() as e:      # a read-only or unwritable archive: one line, exit 3
        print("sealcam %s: %s" % (args.verb if hasattr(args, "verb") else argv[0], e),
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:           # any verb without its own Ctrl-C handling
        print("sealcam %s: interrupted (Ctrl-C)" % " ".join(argv[:2]
                                                           if argv[:1] == ["station"]
                                                           else argv[:1]), file=sys.stderr)
        return 130


def _without_lang(argv):
    """``argv`` without its `--lang X` / `--lang=X` (taken anywhere, before or after the
    verb: main has chosen the language from it already)."""
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--":
            out += argv[i:]
            break
        if a == "--lang" and i + 1 < len(argv):
            skip = True
            continue
        if a.startswith("--lang="):
            continue
        out.append(a)
    return out


def _archive_errors():
    from .archive import ArchiveUnwritable, StationLogError
    from .tlog.log import LogError
    return (ArchiveUnwritable, StationLogError, LogError)


if __name__ == "__main__":
    sys.exit(main())
