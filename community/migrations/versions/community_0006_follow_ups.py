"""Follow-ups of a meeting's conclusions (oppfølging: ansvar og frist): ``case_follow_ups``.

A new table only; nothing existing changes, so an older database upgrades without losing anything.

Revision ID: community_0006
Revises: community_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "community_0006"
down_revision = "community_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_follow_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("community", sa.String(length=200), nullable=False),
        sa.Column("committee", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("responsible_user", sa.String(length=100), nullable=True),
        sa.Column("responsible_role", sa.String(length=100), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("new_case_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("late_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["meeting_cases.id"]),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"]),
        sa.ForeignKeyConstraint(["new_case_id"], ["meeting_cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_follow_ups_case_id", "case_follow_ups", ["case_id"])
    op.create_index("ix_case_follow_ups_instance_id", "case_follow_ups", ["instance_id"])
    op.create_index("ix_case_follow_ups_committee", "case_follow_ups", ["community", "committee", "status"])


def downgrade() -> None:
    op.drop_index("ix_case_follow_ups_committee", table_name="case_follow_ups")
    op.drop_index("ix_case_follow_ups_instance_id", table_name="case_follow_ups")
    op.drop_index("ix_case_follow_ups_case_id", table_name="case_follow_ups")
    op.drop_table("case_follow_ups")
