"""Health communities in the access rules: an organisation belongs to a community, and a human task may be
bound to one (``samflyt.communityField``), so one deployment can serve several communities without one
community's working committee seeing or deciding the other's cases.

Existing organisations and tasks get no community: they stay open as before until an administrator places
the organisations (``samflyt users community``) and processes start new tasks.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("community", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_organisations_community", ["community"], unique=False)
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("community", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_human_tasks_community", ["community"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_human_tasks_community")
        batch_op.drop_column("community")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_index("ix_organisations_community")
        batch_op.drop_column("community")
