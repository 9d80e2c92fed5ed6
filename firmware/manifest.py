# What a sealcam board gets: every firmware module, main.py the entry point (a MicroPython
# manifest, https://docs.micropython.org/en/latest/reference/manifest.html).
#
# To freeze it into a board's image, include it from a manifest of your own, after the
# port's:
#   include("$(PORT_DIR)/boards/manifest.py")             # esp32, rp2
#   include("/path/to/sealcam/firmware/manifest.py")    # main=False: the board's main.py
# and build with make BOARD=<board> FROZEN_MANIFEST=/path/to/that/manifest.py. A board
# port adds its own board.py (firmware/boards/<board>/manifest.py), which main.py imports.
# tests/test_mpy_cross.py checks that this lists exactly the modules in firmware/.
metadata(description="sealcam body-worn recorder firmware: evidence store, recorder, "
         "officer workflow and dock link", version="0.1.0")

options.defaults(main=True)

# the record format and its cryptography
module("cbor.py")
module("sha512.py")
module("ed25519.py")
module("cose.py")
module("devkey.py")

# the evidence store (store.py and the modules beside it)
module("storedefs.py")
module("store.py")
module("logread.py")
module("segment.py")
module("custody.py")
module("clockcal.py")
module("headmem.py")
module("refusals.py")
module("flashkv.py")

# capture and the officer's workflow
module("recorder.py")
module("capture.py")
module("mkv.py")
module("prerecord.py")
module("workflow.py")
module("buttons.py")
module("selfcheck.py")

# the dock link (link.py and the modules beside it)
module("frame.py")
module("auth.py")
module("link.py")
module("linkproto.py")
module("linkdock.py")
module("linkrec.py")
module("receipts.py")

# the device: boot and serve loop, hardware abstraction, settings
module("device.py")
module("fwinfo.py")
module("hal.py")
module("config.py")

if options.main:
    module("main.py")
