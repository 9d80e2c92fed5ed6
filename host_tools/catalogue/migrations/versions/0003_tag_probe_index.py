"""The tags index of search's per-recording probe: (recording_id, field, value). With the
two indexes of 0001 alone, SQLite (no statistics) ties (recording_id, field) with
(field, value) for `EXISTS (... tags.recording_id = r.id AND field = ? AND value = ?)` and
breaks the tie by their creation order, which SQLAlchemy took from a set: the wrong one
scans every tag of the value for each recording (a search of 3000 recordings took 11 s or
75 s by PYTHONHASHSEED alone). Three equalities win the tie. Only an addition.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = "ix_tags_recording_value"


def upgrade():
    have = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("tags")}
    if NAME not in have:
        op.create_index(NAME, "tags", ["recording_id", "field", "value"])


def downgrade():
    op.drop_index(NAME, table_name="tags")
