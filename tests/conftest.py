# The firmware package (firmware/sealcamfw, `from sealcamfw import store`) and the
# simulator (`from sim.hal import simdevice`) come from the editable install (make setup:
# pip install -e .); the tests' own helpers (tests/, tests/firmware/) from pytest's
# pythonpath (pyproject.toml). Nothing here edits sys.path.
