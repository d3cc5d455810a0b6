"""When a human task's next reminder or overdue notice falls due, so the scheduler reads only those.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_notice_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_human_tasks_next_notice_at", ["next_notice_at"], unique=False)
    # open tasks with a due date are looked at once more, which works out their next notice
    op.execute("UPDATE human_tasks SET next_notice_at = CURRENT_TIMESTAMP WHERE status = 'open' AND due_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_human_tasks_next_notice_at")
        batch_op.drop_column("next_notice_at")
