# What a sealcam board gets (a MicroPython manifest, the way micropython-lib ships a
# package: https://docs.micropython.org/en/latest/reference/manifest.html): the firmware
# package sealcamfw/ (firmware/sealcamfw/, imported as `from sealcamfw import store`) and
# main.py, the entry point, which stays at the root of the board's file system.
#
# To freeze it into a board's image, include it from a manifest of your own, after the
# port's:
#   include("$(PORT_DIR)/boards/manifest.py")             # esp32, rp2
#   include("/path/to/sealcam/firmware/manifest.py")    # main=False: the board's main.py
# and build with make BOARD=<board> FROZEN_MANIFEST=/path/to/that/manifest.py. A board
# port adds its own board.py (firmware/boards/<board>/manifest.py), which main.py imports.
# Copied instead of frozen (`sealcam flash`, SPEC §13.1), the package goes to
# /lib/sealcamfw/ (MicroPython's sys.path has /lib) and main.py to the root.
# tests/test_mpy_cross.py checks that this lists exactly the modules in firmware/sealcamfw/.
metadata(description="sealcam body-worn recorder firmware: evidence store, recorder, "
         "officer workflow and dock link", version="0.1.0")

options.defaults(main=True)

package("sealcamfw", files=(
    "__init__.py",
    # the record format and its cryptography
    "cbor.py",
    "sha512.py",
    "ed25519.py",
    "cose.py",
    "devkey.py",
    # the evidence store (store.py and the modules beside it)
    "storedefs.py",
    "store.py",
    "storeboot.py",
    "logread.py",
    "segment.py",
    "custody.py",
    "clockcal.py",
    "headmem.py",
    "refusals.py",
    "flashkv.py",
    # capture and the officer's workflow
    "recorder.py",
    "capture.py",
    "mkv.py",
    "prerecord.py",
    "workflow.py",
    "buttons.py",
    "selfcheck.py",
    # the dock link (link.py and the modules beside it)
    "frame.py",
    "auth.py",
    "link.py",
    "linkproto.py",
    "linkdock.py",
    "linkrec.py",
    "receipts.py",
    # the device: boot and serve loop, hardware abstraction, settings
    "device.py",
    "fwinfo.py",
    "hal.py",
    "config.py",
))

if options.main:
    module("main.py")
