# The dock cycle's ops on the device side of the link (protocol/SPEC.md §8.3, §8.6-§8.8,
# §10): HELLO and AUTH (mutual authentication: auth.py), TIME_SET, ASSIGN, STATUS, CHECK,
# and the refusal of DELETE, FORMAT and WRITE. Each op takes the Link (link.py) and the
# request's args map, answers with a result map or raises LinkError.
from sealcamfw import auth
from sealcamfw import devkey
from sealcamfw import frame
from sealcamfw import refusals
from sealcamfw import selfcheck
from sealcamfw import store as st
from sealcamfw.linkproto import (ASSIGN, BAD_REQUEST, CHECK, DEVICE_ERROR, FORBIDDEN, FORMAT, LOCKED,
                       NAME_MAX, OP_NAMES, PROTOCOL, RECEIPT, REFUSED, REPLAY, TARGET_MAX,
                       TIME_SET, LinkError, arg, bstr, kind, tstr, uint)


def hello(lnk, args):
    # any HELLO, even one answered 400, ends the session and an exposure with it (SPEC §8.3,
    # §8.8): first, before its arguments are checked
    lnk.station = None
    lnk.nonce = lnk.station_nonce = None
    unexpose(lnk)
    host_max = uint(args, 1, "HELLO", "host max_frame")
    name = tstr(args, 2, "HELLO", "host name")
    snonce = bstr(args, 3, "HELLO", "station nonce", auth.NONCE_SIZE)
    if host_max < frame.PRE_HELLO_MAX:
        raise LinkError(BAD_REQUEST, "HELLO: host max_frame %d is below the %d bytes every "
                        "side must take" % (host_max, frame.PRE_HELLO_MAX))
    nonce = bytes(lnk.hal.random(auth.NONCE_SIZE))
    if len(nonce) != auth.NONCE_SIZE:
        raise LinkError(DEVICE_ERROR, "HELLO: the random source gave %d bytes, not 16"
                        % len(nonce))
    lnk._agree = host_max if host_max < lnk.offer else lnk.offer
    lnk.nonce = nonce
    lnk.station_nonce = snonce
    lnk.host = name
    # nothing but what a host needs to start (SPEC §8.3): no key, head, officer, battery
    return {1: lnk.store.device, 9: nonce, 10: lnk._agree, 12: PROTOCOL}


def authenticate(lnk, args):
    nonce = lnk.nonce
    snonce = lnk.station_nonce
    lnk.nonce = lnk.station_nonce = None  # one attempt per nonce, good or bad
    if nonce is None:
        raise LinkError(REPLAY, "AUTH: no fresh nonce (each HELLO's nonce serves one AUTH "
                        "attempt): send HELLO again")
    pub = bstr(args, 1, "AUTH", "station public key", 32)
    sig = bstr(args, 2, "AUTH", "signature", 64)
    fp = devkey.fingerprint(pub)
    if pub not in auth.load_trusted(lnk.hal.flash):
        raise LinkError(FORBIDDEN, "AUTH: station key %s is not trusted by this device" % fp)
    s = lnk.store
    th = auth.transcript(s.device, nonce, snonce, pub)
    if not auth.verify_station(pub, th, sig):
        raise LinkError(FORBIDDEN, "AUTH: the signature of station %s does not verify over "
                        "this session's transcript" % fp)
    proof = auth.device_proof(s.sk, th)
    lnk.station = fp
    hal = lnk.hal
    c = hal.clock
    sd = hal.sd
    free = sd.free()
    total = getattr(sd, "total", None)
    total = total() if total is not None else 0
    bat = getattr(hal, "battery", None)
    bat = bat() if bat is not None else 100
    if type(bat) is not int:
        bat = int(bat)
    bat = 0 if bat < 0 else 100 if bat > 100 else bat
    alerts = getattr(s, "alerts", None) or []
    return {1: fp, 2: proof, 3: lnk.pub, 4: lnk.fingerprint, 5: s.last,
            6: [c.rtc_ms(), c.mono_ms()],
            7: [free if free > 0 else 0, total if total > 0 else 0],
            8: bat, 11: s.officer, 13: s.fw, 14: alerts,
            15: getattr(s, "fwid", None)}   # firmware id: H(fw.cbor), or null (SPEC §13)


TIME_MIN_MS = 1577836800000      # 2020-01-01T00:00:00Z: TIME_SET's lowest accepted time
TIME_MAX_MS = 4102444800000      # 2100-01-01T00:00:00Z: the first time it refuses


def time_set(lnk, args):
    new = uint(args, 1, "TIME_SET", "new rtc ms")
    if new < TIME_MIN_MS or new >= TIME_MAX_MS:
        # a wall clock outside 2020..2100 is a broken station clock or a rewritten request
        # (SPEC §8.7): 400, nothing set, nothing written
        raise LinkError(BAD_REQUEST, "TIME_SET: the new time is %s 2020-01-01..2100-01-01 "
                        "(%d..%d ms since 1970): check the station's clock; nothing set"
                        % ("before" if new < TIME_MIN_MS else "after", TIME_MIN_MS,
                           TIME_MAX_MS - 1))
    r = lnk.store.set_time(new)
    # (old, new, seq, drift ms/day or None, since ms or None, flagged)
    return {1: r[0], 2: r[1], 3: r[2], 4: r[3], 5: r[4], 6: bool(r[5])}


def _name(args, k, what, required):
    # ASSIGN's officer id / unit: a non-empty text string of at most NAME_MAX characters,
    # or null (absent counts as null unless required)
    if k not in args and not required:
        return None
    v = arg(args, k, "ASSIGN", what)
    if v is None:
        return None
    if type(v) is not str:
        raise LinkError(BAD_REQUEST, "ASSIGN: argument %d (%s) must be a text string or null, "
                        "not %s" % (k, what, kind(v)))
    if not v or len(v) > NAME_MAX:
        raise LinkError(BAD_REQUEST, "ASSIGN: argument %d (%s) must be 1 to %d characters, "
                        "not %d" % (k, what, NAME_MAX, len(v)))
    if refusals.has_control(v):
        raise LinkError(BAD_REQUEST, "ASSIGN: argument %d (%s) holds a control character; "
                        "send printable text only" % (k, what))
    return v


def assign(lnk, args):
    officer = _name(args, 1, "officer id", True)
    unit = _name(args, 2, "unit", False)
    if officer is None and unit is not None:
        raise LinkError(BAD_REQUEST, "ASSIGN: a unit (%s) without an officer: send the "
                        "officer id too, or null for both to release" % unit)
    return {1: lnk.store.assign(officer, unit, lnk.station)}


def status(lnk, args):
    s = lnk.store
    wf = lnk.workflow
    if wf is not None:
        state = wf.state
        waiting = list(wf.waiting())
    else:
        rec = lnk.recorder
        state = "recording" if rec is not None and rec.recording else "standby"
        waiting = []
    c = lnk.hal.clock
    return {1: state, 2: s.officer, 3: s.unit, 4: s.last_check, 5: waiting,
            6: [c.rtc_ms(), c.mono_ms()]}


def check(lnk, args):
    r = selfcheck.run(lnk.hal, lnk.store, lnk.store.cfg)
    return {1: r[1], 2: r[2], 3: r[3], 4: r[4]}


def _target(v):
    # what a refused request was aimed at, as text for the REFUSAL record (bounded)
    if type(v) is str:
        t = v
    elif type(v) is int:
        t = str(v)
    elif type(v) is bytes:
        t = "0x" + "".join("%02x" % b for b in v[:TARGET_MAX // 2])
    elif v is None:
        t = "(none)"
    else:
        t = "(a %s)" % kind(v)
    if len(t) > TARGET_MAX:
        t = t[:TARGET_MAX - 3] + "..."
    return t


def refuse(lnk, op, args):
    """DELETE, FORMAT, WRITE: always raises LinkError, 405 once the refusal is recorded or
    counted (SPEC §5.3), 500 if it could not be."""
    name = OP_NAMES[op]
    if op == FORMAT:
        target = "store"
    else:
        target = _target(args.get(1) if type(args) is dict else None)
    authed = lnk.station is not None
    try:
        lnk.store.request(name.lower(), target, "usb")
    except st.Refused as e:
        if authed:
            raise LinkError(REFUSED, e.msg)
        # before AUTH the answer names no seq and does not tell recorded from counted:
        # nothing about the store reaches a host that has not authenticated (SPEC §8.3)
        raise LinkError(REFUSED, "%s of %s refused: evidence is append-only (the device "
                        "records refusals)" % (name.lower(), refusals.clean(target)))
    except OSError as e:
        raise LinkError(DEVICE_ERROR, "%s refused, but not recorded yet (%s): counted for "
                        "the next REFUSAL record" % (name, e if authed else "storage error"))
    raise LinkError(DEVICE_ERROR, "%s: refused, but the refusal was not recorded" % name)


# -- EXPOSE: the card as a read-only disk for the bulk offload (SPEC §8.8) ---------------
# The HAL's optional `msc` is the USB mass-storage function: expose() -> (how, where),
# how "msc" (a USB disk comes up on the host: where is its volume label) or "dir" (the
# simulator: where is the card directory's path on the host, standing in for the mounted
# volume); hide() ends it. A board without it answers {1: false} and the station reads
# media over READ. While exposed the store writes nothing (store.expose: every write
# raises CardExposed), and the link answers 423 to the ops that would write.
_WRITES = (RECEIPT, TIME_SET, ASSIGN, CHECK)


def expose(lnk, args):
    on = args.get(1)
    if type(on) is not bool:
        raise LinkError(BAD_REQUEST, "EXPOSE: argument 1 (on) must be true or false, not %s"
                        % kind(on))
    s = lnk.store
    if not on:
        unexpose(lnk)
        return {1: False}
    msc = getattr(lnk.hal, "msc", None)
    if msc is None:
        return {1: False, 4: "this recorder has no USB mass storage: media is read over the "
                "link (READ)"}
    if s.exposed:
        how, where = lnk.exposed
        return {1: True, 2: how, 3: where}
    try:
        s.expose("a disk")
    except ValueError as e:
        return {1: False, 4: "not exposed: %s" % e}
    try:
        how, where = msc.expose()
    except Exception as e:
        s.unexpose()
        return {1: False, 4: "the USB mass storage did not come up (%s): media is read over "
                "the link (READ)" % e}
    lnk.exposed = (how, where)
    return {1: True, 2: how, 3: where}


def unexpose(lnk):
    """End an exposure (EXPOSE off, HELLO, the session's end): the disk goes, writes are
    allowed again."""
    # the store ends it even if the disk's hide() raises (store.end_exposure)
    lnk.store.end_exposure()
    lnk.exposed = None


def locked(lnk, op):
    """423 for an op that writes to the card while it is exposed (nothing is changed)."""
    if op in _WRITES and lnk.store.exposed:
        raise LinkError(LOCKED, "%s: the card is exposed read-only to the station as a disk: "
                        "nothing is written to it; send EXPOSE off first" % OP_NAMES[op])
