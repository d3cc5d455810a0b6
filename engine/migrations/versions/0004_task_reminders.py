"""Task reminders: the reminder rule and overdue mark on human tasks, and a record of every notice sent
(so none is sent twice).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reminders", sa.Text(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "task_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("human_task_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["human_task_id"], ["human_tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("human_task_id", "kind"),
    )


def downgrade() -> None:
    op.drop_table("task_notices")
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_column("overdue_at")
        batch_op.drop_column("reminders")
