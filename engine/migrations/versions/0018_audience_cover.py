"""The worklist's narrowing lookups answered from the index alone: ``task_audience (rule, value, task_id)``.

"Which open tasks are for my organisation or for me by name" is asked on every worklist read; with the task
id in the index the database reads it without visiting the table (an index-only scan), the largest part of
a worklist read at the size of a region (issue "Fast at the size of a real region"). It replaces the
``(rule, value)`` index, which it covers.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_task_audience_match", "task_audience", ["rule", "value", "task_id"])
    op.drop_index("ix_task_audience_rule_value", table_name="task_audience")


def downgrade() -> None:
    op.create_index("ix_task_audience_rule_value", "task_audience", ["rule", "value"])
    op.drop_index("ix_task_audience_match", table_name="task_audience")
