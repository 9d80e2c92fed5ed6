"""Issue 12's schema: the tables of confidentiality, access, copies, discs, backups and
handovers, and the columns users.unit, users.clearance, cases.keeper, holds.keeper.
Only additions: a database at 0001 gets what it lacks, nothing it holds changes.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("classifications", "access_requests", "access_decisions", "accesses", "copies",
          "discs", "backups", "handovers")
COLUMNS = {"users": ("unit", "clearance"), "cases": ("keeper",), "holds": ("keeper",)}


def upgrade():
    from host_tools.catalogue.db import metadata
    bind = op.get_bind()
    have = sa.inspect(bind)
    tables = set(have.get_table_names())
    for name, cols in COLUMNS.items():
        held = {c["name"] for c in have.get_columns(name)}
        for c in cols:
            if c not in held:
                op.add_column(name, sa.Column(c, metadata.tables[name].c[c].type, nullable=True))
    metadata.create_all(bind, tables=[metadata.tables[t] for t in TABLES if t not in tables])


def downgrade():
    from host_tools.catalogue.db import metadata
    bind = op.get_bind()
    metadata.drop_all(bind, tables=[metadata.tables[t] for t in reversed(TABLES)])
    for name, cols in COLUMNS.items():
        for c in cols:
            op.drop_column(name, c)
