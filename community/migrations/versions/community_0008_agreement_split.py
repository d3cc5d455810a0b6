"""An agreement split into several new ones (the reverse of a merge): ``agreements.split_from_id`` points from
each new agreement to the one it was split out of.

A new nullable column only; existing agreements keep everything and simply have no origin.

Revision ID: community_0008
Revises: community_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "community_0008"
down_revision = "community_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot add a foreign key to an existing table without rebuilding it
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("split_from_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_agreements_split_from_id", "agreements", ["split_from_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.drop_constraint("fk_agreements_split_from_id", type_="foreignkey")
        batch_op.drop_column("split_from_id")
