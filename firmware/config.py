# Firmware defaults. A board may override any of them with a dict passed to device.boot().
FW_VERSION = "0.1.0"

DEFAULTS = {
    "chunk": 65536,          # media chunk size in bytes (SPEC §4.1)
    "checkpoint_s": 10,      # signed checkpoint interval while recording (SPEC §3.2)
    "segment_s": 300,        # a segment rolls over after this many seconds
    "tick_ms": 100,          # capture loop period
    "log_max": 262144,       # a record log file rolls over past this size (SPEC §5.1)
    "max_frame": 66560,      # largest dock-link payload offered in HELLO: one 64 KiB chunk + 1 KiB (SPEC §7)
}


def make(overrides=None):
    cfg = dict(DEFAULTS)
    if overrides:
        for k in overrides:
            if k not in cfg:
                raise ValueError("unknown setting: %s" % k)
            cfg[k] = overrides[k]
    return cfg
