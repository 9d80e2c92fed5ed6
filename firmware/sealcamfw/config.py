# Firmware defaults. A board may override any of them with a dict passed to device.boot().
FW_VERSION = "0.1.0"

DEFAULTS = {
    "chunk": 65536,          # media chunk size in bytes (SPEC §4.1)
    "checkpoint_s": 10,      # signed checkpoint interval while recording (SPEC §3.2)
    "segment_s": 300,        # a segment rolls over after this many seconds
    "tick_ms": 100,          # capture loop period
    "log_max": 262144,       # a record log file rolls over past this size (SPEC §5.1)
    "max_frame": 66560,      # largest dock-link payload offered in HELLO: one 64 KiB chunk + 1 KiB (SPEC §7)
    # officer workflow (SPEC §10)
    "prerecord_s": 30,       # pre-record ring, 0..120 s (§10.2)
    "prerecord_ram": 4194304,  # RAM the pre-record ring may take (a board with PSRAM)
    "long_press_ms": 1500,   # a press held longer is a hold (§10.1)
    "voice_min_ms": 1000,    # a voice note shorter than this is ignored
    "choose_s": 10,          # time to pick an interruption reason before it is cancelled
    "annotation_s": 120,     # time after a resume to state the interruption's reason (§10.3)
    "battery_stop": 5,       # % below which recording stops (battery_low interruption)
    "temp_stop": 70,         # deg C above which recording stops (overheat interruption)
    "notice_phrase": True,   # NOTICE plays the standard phrase (R5)
    "battery_min": 50,       # self-check: % needed to be READY (§10.6)
    "bitrate": 8000000,      # self-check: bits/s the storage estimate assumes
    "storage_min_min": 240,  # self-check: minutes of storage needed to be READY
    "clock_max_ms": 1000,    # self-check: largest estimated clock error that is READY
    "offload_max_h": 24,     # self-check: oldest record not offloaded (R8)
    "drift_limit_ms": 3000,  # TIME_SET: drift per day beyond this is flagged (§8.7)
    "drift_min_s": 3600,     # TIME_SET: a drift rate is measured over at least this long
    "low_water": 0,          # free bytes below which covered media is released; 0: 60 s at bitrate (§10.8)
    "evidence_reserve": 0,   # free bytes no REFUSAL record may take; 0: 60 s at bitrate, <= card/16 (§5.3)
    "refusal_interval_ms": 10000,  # at most one REFUSAL record per this many ms; the rest counted (§5.3)
    "session_idle_ms": 15000,  # the dock link's session ends after this long without a byte
                               # from the host (§8.3): a port that cannot tell when the host
                               # goes leaves a session open this long at most
    "head_remember_s": 300,  # the last head is kept in internal flash at most this often, besides
                             # BOOT, SEGMENT, RECOVERY, RECEIPT and STORE_ALERT (§5.2)
}


def make(overrides=None):
    cfg = dict(DEFAULTS)
    if overrides:
        for k in overrides:
            if k not in cfg:
                raise ValueError("unknown setting: %s" % k)
            cfg[k] = overrides[k]
    p = cfg["prerecord_s"]
    if type(p) is not int or p < 0 or p > 120:
        raise ValueError("prerecord_s must be 0..120, not %r" % (p,))
    if not cfg["low_water"]:
        cfg["low_water"] = 60 * cfg["bitrate"] // 8
    if not cfg["evidence_reserve"]:
        cfg["evidence_reserve"] = 60 * cfg["bitrate"] // 8
    return cfg
