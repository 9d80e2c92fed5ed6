# Boot sequence: device key, evidence store (with power-loss recovery), capture loop.
import config
import devkey
import recorder
import store


def boot(hal, settings=None, officer=None):
    """(store, recorder) of a booted device; the store has written its BOOT record."""
    cfg = config.make(settings)
    sk = devkey.load_or_create(hal)
    s = store.Store(hal, sk, config.FW_VERSION, cfg, officer)
    s.open(hal.reset_cause)
    return s, recorder.Recorder(hal, s, cfg)


def shutdown(s, rec, reason="shutdown"):
    if rec.recording:
        rec.stop(reason)
    s.close()
