"""The catalogue's first schema (issue 11): the tables of host_tools/catalogue/db.py as
they stand at revision 0001. Later changes to db.py come with their own revision (op.*
statements), never by editing this one.

Revision ID: 0001
Revises:
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    from host_tools.catalogue.db import metadata
    metadata.create_all(op.get_bind())


def downgrade():
    from host_tools.catalogue.db import metadata
    metadata.drop_all(op.get_bind())
