"""Alembic migrations of the catalogue's schema, run from code (no alembic.ini needed):
``upgrade(engine)`` brings a database to the newest revision. A change to the tables of
host_tools/catalogue/db.py comes with a new revision in versions/ (draft one with
``alembic revision --autogenerate`` against a database at the previous revision)."""
from __future__ import annotations

import os

__all__ = ["upgrade", "config"]

HERE = os.path.dirname(os.path.abspath(__file__))


def config(connection=None):
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", HERE)
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine, revision="head"):
    from alembic import command
    with engine.begin() as conn:
        command.upgrade(config(conn), revision)
