"""The ``sealcam`` command line (modelled on mpremote: few verbs, clear help).

    sealcam verify PATH [--key DEVICE.pub] [--json] [--all] [--progress | --no-progress]
    sealcam sim record DIR --seconds N [--runtime cpython|micropython] [--fs littlefs|fat]
                           [--checkpoint S] [--segment S] [--bitrate BPS] [--seed N]

Exit codes (``sealcam verify``; other verbs use 0 for success):
    0  OK or OK_WITH_MISSING_INFO
    1  NOT_OK
    2  NOT_SIGNED
    3  usage error, or the store / key cannot be read
"""
from __future__ import annotations

import argparse
import json
import os
import sys

EXIT_OK, EXIT_NOT_OK, EXIT_NOT_SIGNED, EXIT_USAGE = 0, 1, 2, 3

_EPILOG = """\
exit codes (verify): 0 OK or OK_WITH_MISSING_INFO, 1 NOT_OK, 2 NOT_SIGNED,
                     3 usage error or unreadable store/key
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
                epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version="%(prog)s " + _version())
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True

    v = sub.add_parser(
        "verify", help="verify a recorder's store (SD card) offline",
        description="Verify a sealcam store offline: signatures, the record chain, the signed "
                    "head and every media chunk. Prints a verdict table (or JSON).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("path", metavar="PATH", help="the store's root directory (the SD card)")
    v.add_argument("--key", metavar="DEVICE.pub",
                   help="the device's registered public key (raw 32 bytes, 64 hex digits, or "
                        "PEM/DER); without it the origin is not checked")
    v.add_argument("--json", action="store_true", help="print the full report as JSON")
    v.add_argument("--all", action="store_true", help="list every record, not only the "
                                                      "ones that are not OK")
    g = v.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show a progress bar on stderr while hashing media")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="never show a progress bar")
    v.set_defaults(func=_cmd_verify)

    sim = sub.add_parser("sim", help="the virtual recorder",
                         description="Run the virtual recorder (simulator).")
    simsub = sim.add_subparsers(dest="sim_verb", metavar="SIMVERB", parser_class=_Parser)
    simsub.required = True
    r = simsub.add_parser(
        "record", help="record with the virtual recorder into a store directory",
        description="Run the firmware on the virtual recorder and record synthetic video "
                    "into the store DIR.")
    r.add_argument("dir", metavar="DIR", help="the store directory (the virtual SD card)")
    r.add_argument("--seconds", type=_positive_float, required=True, metavar="N",
                   help="seconds of recording")
    r.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython",
                   help="run the firmware on CPython or on the MicroPython VM (default: "
                        "%(default)s)")
    r.add_argument("--fs", choices=("littlefs", "fat"), default="littlefs",
                   help="filesystem semantics of the virtual SD card (default: %(default)s)")
    r.add_argument("--checkpoint", type=_positive_float, default=10.0, metavar="S",
                   help="seconds between checkpoints (default: %(default)s)")
    r.add_argument("--segment", type=_positive_float, default=300.0, metavar="S",
                   help="segment length in seconds before rollover (default: %(default)s)")
    r.add_argument("--bitrate", type=_positive_int, default=2_000_000, metavar="BPS",
                   help="synthetic video bit rate in bits per second (default: %(default)s)")
    r.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the synthetic video and the virtual device (default: the "
                        "simulator's)")
    r.add_argument("--officer", metavar="ID", default=None,
                   help="officer assigned to the recorder (default: none)")
    r.add_argument("--flash", metavar="DIR", default=None,
                   help="the recorder's internal flash (device key) (default: DIR.flash)")
    r.set_defaults(func=_cmd_sim_record)
    # later verbs: offload, station, report
    return p


def _positive_float(s):
    try:
        x = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % s) from None
    if not x > 0:
        raise argparse.ArgumentTypeError("must be > 0: %r" % s)
    return x


def _positive_int(s):
    try:
        x = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % s) from None
    if x <= 0:
        raise argparse.ArgumentTypeError("must be > 0: %r" % s)
    return x


def _version():
    try:
        from importlib.metadata import version
        return version("sealcam")
    except Exception:
        return "0+unknown"


def _cmd_verify(args) -> int:
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
        report = verify_store(args.path, pinned, progress=args.progress)
    except (FileNotFoundError, NotADirectoryError) as e:
        print("sealcam verify: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print("sealcam verify: cannot read the store: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.json:
            json.dump(report.to_json(), sys.stdout, indent=2, ensure_ascii=False)
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


def main(argv=None) -> int:
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
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
