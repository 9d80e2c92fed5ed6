"""Alembic's environment: runs on the connection the catalogue hands over (online only)."""
from alembic import context

from host_tools.catalogue.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("the catalogue's migrations run from host_tools.catalogue.migrations."
                     "upgrade(engine), on a connection")
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
