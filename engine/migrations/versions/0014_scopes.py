"""Scopes: an organisation belongs to one scope, and an instance and its human tasks may be bound to one
(``samflyt.scopeField``, engine.authz), so one deployment serves several organisational scopes without one
scope's supervisors seeing or deciding another's cases.

Existing organisations, instances and tasks get no scope here: a package that bound them by columns of
its own before moves its values over in its own branch.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TABLES = ("organisations", "process_instances", "human_tasks")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("scope", sa.String(length=200), nullable=True))
            batch_op.create_index(f"ix_{table}_scope", ["scope"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_scope")
            batch_op.drop_column("scope")
