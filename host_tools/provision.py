"""`sealcam provision`: a technician makes a recorder this station's, with no trust on first
use (SPEC §9.1).

    sealcam provision --port PORT --archive A --device-id ID --technician NAME [--label FILE]
                      [--installed] [--rekey]

1. install: the recorder's id (``/flash/device_id``) and the station's trust list
   (``/flash/trust.cbor``: a CBOR array holding this station's 32-byte public key) are
   written to its internal flash over the board's REPL with stock mpremote, then the board
   is reset so that it boots its firmware, which makes its device key at first boot
   (firmware/sealcamfw/devkey.py). ``--installed`` skips this step, for a board whose flash was
   written another way (the tests prepare the virtual recorder's flash folder directly).
2. prove: a dock session (HELLO, AUTH, SPEC §8.3) in which the recorder signs the session's
   transcript with its key; the station takes the key from that proof and checks it (a
   32-byte canonical key of large order, a signature over this session's fresh nonces and
   this station's key) before it believes anything. The recorder must report the id just
   installed, and must trust this station (the AUTH succeeds only then).
3. register: a device_provisioned event in the signed station log names the id, the key,
   its fingerprint and the technician who vouched for the recorder in hand: who trusted the
   key is on record, and the key is the one that proved itself in the technician's session.
4. label: id, key fingerprint and a QR code of both, as a PNG (host_tools/label.py).

An id already registered is refused. A repaired recorder with a new key: ``--rekey`` runs
the same steps for a registered id and, instead of registering, re-keys it (`station rekey`
by the technician, with the key proven in the session: device_rekeyed). Exit codes: 0 provisioned; 1 the recorder's key or id is refused (weak key,
another id than the one installed); 3 usage, archive, port or mpremote error, or the id is
taken; 5 the recorder did not trust the station or did not prove its key; 6 no answer.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import cbor2

from .archive import Archive, ArchiveError, NotAnArchive, valid_device_id
from .link import Client, PortError
from .session import EXIT_NOT_OK, EXIT_USAGE, SessionError, _safe, auth_step, hello_step
from .station import StationError

__all__ = ["provision", "install_on_board", "trust_list", "ProvisionError", "run_provision"]

FLASH_ID, FLASH_TRUST = "/flash/device_id", "/flash/trust.cbor"
MPREMOTE_TIMEOUT = 60


class ProvisionError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def trust_list(station_pub: bytes) -> bytes:
    """trust.cbor for a recorder that trusts this station (SPEC §8.3)."""
    return cbor2.dumps([bytes(station_pub)], canonical=True)


def _mpremote():
    exe = shutil.which("mpremote")
    if exe:
        return [exe]
    try:
        import mpremote  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "mpremote"]


# Run on the board before the id is written: what it holds, nothing changed. The id file,
# the board's default id (what its firmware calls itself before provisioning: SC- and the
# chip's id), whether it holds a device key and a remembered head, and the store on its
# card with the record its head.cbor names (hex, at most 16 KiB).
_SURVEY = """
import os, binascii
def ex(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
if ex('/flash/device_id'):
    print('SEALCAM-ID', open('/flash/device_id').read().strip())
try:
    import machine
    print('SEALCAM-DEFAULT', 'SC-' + binascii.hexlify(machine.unique_id()).decode().upper())
except Exception:
    pass
for f in ('/flash/key.bin', '/flash/lasthead.cbor'):
    if ex(f):
        print('SEALCAM-HAS', f)
try:
    import board
    st = getattr(board, 'SD_MOUNT', '/sd') + getattr(board, 'STORE_DIR', '/sealcam')
except Exception:
    st = '/sd/sealcam'
if ex(st):
    print('SEALCAM-STORE', st)
    try:
        f = open(st + '/head.cbor', 'rb')
        print('SEALCAM-HEAD', binascii.hexlify(f.read(16384)).decode())
        f.close()
    except OSError:
        pass
"""

# Run only for a board never provisioned whose card holds the store its firmware made
# under its own default id (checked on the host from _SURVEY): the store is moved aside
# on the card (renamed, never deleted) and the head it remembers in flash is dropped, so
# that the provisioned recorder starts its chain on an empty store (SPEC §5.2).
_MOVE = """
import os
def ex(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
st = %r
for f in ('/flash/lasthead.cbor', '/flash/lasthead.new'):
    if ex(f):
        os.remove(f)
if ex(st):
    n = 0
    while ex(st + '.unprovisioned-%%d' %% n):
        n += 1
    os.rename(st, st + '.unprovisioned-%%d' %% n)
    print('SEALCAM-MOVED', st + '.unprovisioned-%%d' %% n)
"""


def _store_owner(head_hex):
    """The device id the record in a store's head.cbor names, or None."""
    from . import records as R
    try:
        head = cbor2.loads(bytes.fromhex(head_hex))
        last = head.get(3) if isinstance(head, dict) else None
        if not isinstance(last, bytes):
            return None
        d = R.decode(last).body.get(R.K.DEVICE)
        return d if isinstance(d, str) else None
    except Exception:
        return None


def _survey_decision(info, port, device_id, rekey=False):
    """None (nothing on the board stops provisioning as device_id), "move" (the store on the
    card is the board's own from before its id, or with ``rekey`` the repaired recorder's
    own old chain: move it aside), or ProvisionError."""
    old = info.get("id")
    if old is not None:
        if old != device_id:
            raise ProvisionError(EXIT_USAGE, "the board on %s is provisioned already, as %s: a "
                                 "recorder keeps its id (its card holds its evidence); "
                                 "nothing written" % (port, _safe(old)))
        return None
    default = info.get("default")
    if info.get("store") is not None:
        owner = _store_owner(info.get("head") or "")
        if owner is None:
            raise ProvisionError(
                EXIT_USAGE, "the card in the board on %s holds a store (%s) whose owner cannot "
                "be read: it may be a recorder's evidence, so nothing was written or moved. "
                "Offload or keep that card, put in an empty card, then provision again"
                % (port, _safe(info["store"])))
        if owner != default and not (rekey and owner == device_id):
            raise ProvisionError(
                EXIT_USAGE, "the board on %s is provisioned already, or holds another "
                "recorder's card: the store on its card is the evidence of %s (not this "
                "board's own from before it had an id). Nothing was written or moved. If "
                "this board is %s and lost its id file, it keeps that id (after a repair: "
                "`sealcam provision --rekey --device-id %s`, or `sealcam station rekey`); "
                "else take that card out, offload it with its recorder, and provision this "
                "board with an empty card" % (port, _safe(owner), _safe(owner), _safe(owner)))
        return "move"
    if "/flash/lasthead.cbor" in info.get("has", ()) and not rekey:
        raise ProvisionError(
            EXIT_USAGE, "the board on %s has no id file but remembers a chain whose card is "
            "not in it (/flash/lasthead.cbor): it was provisioned before and its id file was "
            "lost. Nothing was written. Put its own card back (a recorder keeps its id), or "
            "after a repair use `sealcam provision --rekey` / `sealcam station rekey`" % port)
    return None


def _run(runner, base, port, step, what):
    cmd = base + ["connect", port] + step
    try:
        p = runner(cmd, capture_output=True, text=True, timeout=MPREMOTE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ProvisionError(EXIT_USAGE, "mpremote %s on %s gave no answer within %d s: is the "
                             "board connected, and not production-locked?"
                             % (what, port, MPREMOTE_TIMEOUT)) from None
    if p.returncode != 0:
        why = (p.stderr or p.stdout or "").strip().splitlines()[-1:] or ["?"]
        raise ProvisionError(EXIT_USAGE, "mpremote %s on %s failed (%s): is it a board with "
                             "its REPL reachable (not production-locked)?"
                             % (what, port, _safe(why[0], 200)))
    return p.stdout or ""


def install_on_board(port, device_id, station_pub, *, runner=subprocess.run, say=None,
                     rekey=False):
    """Write /flash/device_id and /flash/trust.cbor on the board at ``port`` with stock
    mpremote (`exec`, `fs cp`), then reset it so that it boots its firmware. A board never
    provisioned has its pre-provisioning store (one naming the board's own default id)
    moved aside first (_SURVEY, _MOVE); a board provisioned under another id, a card
    holding another recorder's store (or one whose owner cannot be read), and a board
    remembering a chain whose card is missing are refused, nothing written. ProvisionError (exit 3) if mpremote is
    missing or fails."""
    say = say or (lambda m: print(m, file=sys.stderr))
    base = _mpremote()
    if base is None:
        raise ProvisionError(EXIT_USAGE, "mpremote is not installed (pip install mpremote): it "
                             "writes the id and trust list to the recorder's flash")
    out = _run(runner, base, port, ["exec", _SURVEY], "exec")
    info = {"has": []}
    for line in out.splitlines()[:64]:
        tag, _, rest = line.strip().partition(" ")
        if tag == "SEALCAM-ID":
            info["id"] = rest.strip()
        elif tag == "SEALCAM-DEFAULT":
            info["default"] = rest.strip()
        elif tag == "SEALCAM-HAS":
            info["has"].append(rest.strip())
        elif tag == "SEALCAM-STORE":
            info["store"] = rest.strip()
        elif tag == "SEALCAM-HEAD":
            info["head"] = rest.strip()
    if _survey_decision(info, port, device_id, rekey) == "move":
        if rekey and _store_owner(info.get("head") or "") == device_id:
            say("the card holds the old chain of %s (its retired key): it is moved aside on "
                "the card, never deleted; what the archive does not hold of it stays only "
                "there: keep the card (`sealcam verify FOLDER --key OLDKEY` reads it)"
                % device_id)
        moved = _run(runner, base, port, ["exec", _MOVE % info["store"]], "exec")
        for line in moved.splitlines():
            if line.startswith("SEALCAM-MOVED "):
                say("the card held a store the firmware made before the board had an id: "
                    "moved aside on the card to %s (nothing deleted)"
                    % _safe(line.split(None, 1)[1]))
    with tempfile.TemporaryDirectory() as tmp:
        pid, ptrust = os.path.join(tmp, "device_id"), os.path.join(tmp, "trust.cbor")
        with open(pid, "w") as f:
            f.write(device_id + "\n")
        with open(ptrust, "wb") as f:
            f.write(trust_list(station_pub))
        for st in (["fs", "cp", pid, ":" + FLASH_ID], ["fs", "cp", ptrust, ":" + FLASH_TRUST],
                   ["reset"]):
            _run(runner, base, port, st, " ".join(st[:2]))


def _session(port, a, device_id, host_name, timeout, wait, rekey=False):
    """HELLO and AUTH with the freshly provisioned recorder: the key it proves (for
    ``rekey``, a registered recorder's new key, learnt from its proof like a new one's)."""
    deadline = time.monotonic() + wait
    c = None
    while True:                     # the board is booting after its reset
        try:
            c = Client(port, timeout=timeout)
            break
        except PortError as e:
            if time.monotonic() >= deadline:
                raise ProvisionError(EXIT_USAGE, str(e)) from None
            time.sleep(0.5)
    try:
        while True:
            # the port opens as soon as the board's USB is back, but its firmware answers
            # only once main.py has booted (imports, store, self-check), which on a slow or
            # loaded machine takes longer than one HELLO's budget (its re-sends): keep
            # asking until the recorder answers or the boot wait is over
            try:
                dev_id, row = hello_step(c, a, host_name, register=True)
                break
            except SessionError as e:
                if e.status != "link_broken" or not e.message.startswith("no answer") \
                        or time.monotonic() >= deadline:
                    raise
        if dev_id != device_id:
            raise ProvisionError(EXIT_NOT_OK, "the recorder on %s reports the id %s, not %s that "
                                 "was installed: nothing registered; check the port and install "
                                 "again" % (port, _safe(dev_id), device_id))
        if row is not None and not rekey:
            raise ProvisionError(EXIT_USAGE, _taken(a, device_id))
        pub, res = auth_step(c, a, dev_id, None, host_name)
        return pub, res
    except SessionError as e:
        raise ProvisionError(e.code, e.message) from None
    finally:
        c.close()


def _taken(a, device_id):
    return ("device %s is already registered in %s: a recorder is provisioned once; after a "
            "repair that gave it a new key run `sealcam provision --rekey` (its new key proven "
            "in the session) or `sealcam station rekey --archive %s --device %s --key NEWKEY "
            "--by NAME`" % (device_id, a.root, a.root, device_id))


def provision(port, archive, device_id, technician, *, label=None, installed=False,
              installer=install_on_board, timeout=2.0, boot_wait=30.0, host_name=None,
              rekey=False):
    """Provision the recorder at ``port`` (see the module text). Returns {device,
    fingerprint, key, technician, label, at, rekeyed}. ``rekey``: a registered recorder
    after a repair: the new key it proves replaces its old one (`station rekey` by the
    technician). ProvisionError with an exit code."""
    technician = str(technician or "").strip()
    from .station import printable_name
    if not technician or len(technician) > 200 or not printable_name(technician):
        raise ProvisionError(EXIT_USAGE, "--technician must name the technician (1 to 200 "
                             "printable characters, no control or text-direction "
                             "characters)")
    from .archive.devices import _RETIRED_RE
    if not valid_device_id(device_id) or _RETIRED_RE.fullmatch(device_id):
        raise ProvisionError(EXIT_USAGE, "not a usable device id: %r (letters, digits, '.', "
                             "'_', '-'; at most 64)" % (device_id,))
    if label is not None and os.path.lexists(label):
        raise ProvisionError(EXIT_USAGE, "the label file %s exists: give another --label"
                             % label)
    host_name = host_name or socket.gethostname()
    try:
        a = Archive(archive)
    except (NotAnArchive, ArchiveError) as e:
        raise ProvisionError(EXIT_USAGE, str(e)) from None
    try:
        row = a.device(device_id)
        if row is not None and not rekey:
            raise ProvisionError(EXIT_USAGE, _taken(a, device_id))
        if rekey and (row is None or a.device_status(device_id) == "retired"):
            raise ProvisionError(EXIT_USAGE, "--rekey: %s is not a registered recorder in %s; "
                                 "provision it without --rekey" % (device_id, a.root))
        try:
            spub = a.station_key().public_key().public_bytes_raw()
        except StationError as e:
            raise ProvisionError(EXIT_USAGE, str(e)) from None
        if not installed:
            if rekey:
                installer(port, device_id, spub, rekey=True)
            else:
                installer(port, device_id, spub)
        pub, res = _session(port, a, device_id, host_name, timeout, boot_wait, rekey)
        rekeyed = None
        try:
            if rekey:
                rekeyed = a.rekey(device_id, pub, technician)
                row = a.device(device_id)
            else:
                row, created = a.register(device_id, pub, technician=technician)
                if not created:     # pragma: no cover - refused above, unless raced
                    raise ProvisionError(EXIT_USAGE, _taken(a, device_id))
        except (ArchiveError, ValueError) as e:
            raise ProvisionError(EXIT_USAGE, "%s; nothing changed" % e) from None
        # no firmware_seen here: the id in AUTH (key 15) is not signed; the first offload
        # logs the one of the chain's FIRMWARE record (session.note_firmware)
        out = {"device": device_id, "fingerprint": row["fingerprint"], "key": pub.hex(),
               "technician": technician, "at": row["registered_at"], "label": None,
               "rekeyed": None if rekeyed is None else {
                   "retired_as": rekeyed["retired_as"], "retired_seq": rekeyed["retired_seq"],
                   "old_fingerprint": _fp(rekeyed["old_key"])}}
    finally:
        a.close()
    if label is not None:
        from .label import write_label_png
        try:
            out["label"] = write_label_png(label, device_id, out["fingerprint"])
        except OSError as e:
            raise ProvisionError(EXIT_USAGE, "the recorder is provisioned, but its label %s "
                                 "could not be written (%s): the id and fingerprint are "
                                 "printed above; `sealcam station devices` lists them"
                                 % (label, e.strerror or e)) from None
    return out


def _fp(k):
    from .keys import fingerprint
    return fingerprint(k)


def run_provision(args) -> int:
    import json
    from .label import label_text
    lab = args.label if args.label is not None else "%s.label.png" % args.device_id
    try:
        out = provision(args.port, args.archive, args.device_id, args.technician,
                        label=lab if lab != "-" else None, installed=args.installed,
                        timeout=args.timeout, rekey=getattr(args, "rekey", False))
    except ProvisionError as e:
        print("sealcam provision: %s" % e.message, file=sys.stderr)
        return e.code
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        sys.stdout.write(label_text(out["device"], out["fingerprint"]))
        rk = out["rekeyed"]
        if rk:
            print("re-keyed by %s at %s (station log: device_rekeyed): the old key %s is "
                  "retired at %s, its history kept as %s" % (
                      out["technician"], out["at"], rk["old_fingerprint"],
                      "no offloaded record" if rk["retired_seq"] is None
                      else "seq %d" % rk["retired_seq"], rk["retired_as"]))
        else:
            print("provisioned by %s at %s (station log: device_provisioned)"
                  % (out["technician"], out["at"]))
        if out["label"]:
            print("label (QR code): %s" % out["label"])
    return 0

