"""The health community of a case, on the instance: an application belongs to its call's community from the
start, before any of its tasks is bound to one, so another community's supervisors do not open its draft.

Existing instances get it at their next step (it is read from the data the process's
``samflyt.communityField`` names).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("process_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("community", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_process_instances_community", ["community"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("process_instances", schema=None) as batch_op:
        batch_op.drop_index("ix_process_instances_community")
        batch_op.drop_column("community")
