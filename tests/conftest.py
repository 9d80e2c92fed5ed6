# The firmware package (firmware/sealcamfw, `from sealcamfw import store`) and the
# simulator (`from sim.hal import simdevice`) come from the editable install (make setup:
# pip install -e .); the tests' own helpers (tests/, tests/firmware/) from pytest's
# pythonpath (pyproject.toml). Nothing here edits sys.path.

import os

import pytest

# users' passwords: argon2's cheapest profile in tests (host_tools/catalogue/users.py)
os.environ.setdefault("SEALCAM_ARGON2", "cheapest")
# English messages in tests whatever the developer's locale (test_i18n sets its own)
os.environ["LANGUAGE"] = "en"


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server for the whole run (tests/pgserver.py), or a skip naming why
    it cannot start here."""
    import pgserver
    why = pgserver.available()
    if why:
        pytest.skip(why)
    srv = pgserver.PgServer().start()
    yield srv
    srv.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalogue_url(request, tmp_path):
    """A catalogue database URL: SQLite in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite:///%s" % (tmp_path / "catalogue.sqlite")
    return request.getfixturevalue("pg_server").new_database()
