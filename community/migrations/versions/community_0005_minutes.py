"""The minutes of a meeting: who attended, when the minutes were mailed and where they were approved.

``meeting_attendance`` keeps one row per person in the minutes: each member of the committee in the
community, present or absent (forfall), and the guests the secretariat wrote in. ``meetings`` gets
``notice_document_id`` (the notice PDF, for the meeting page's download; for notices already sent, the
newest ``meeting_notice`` document of the meeting's instance), ``minutes_sent_at`` (the minutes mailed to
the members), ``minutes_approved_in_case_id`` (the case "Godkjenning av referat fra forrige møte" of the
next meeting that approved them) and ``minutes_approved_at``. Existing meetings keep what they have.

Revision ID: community_0005
Revises: community_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "community_0005"
down_revision = "community_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("guest", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("meeting_attendance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_attendance_meeting_id"), ["meeting_id"], unique=False)
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_document_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("minutes_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("minutes_approved_in_case_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("minutes_approved_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("""UPDATE meetings SET notice_document_id = (SELECT MAX(documents.id) FROM documents
                      WHERE documents.kind = 'meeting_notice' AND documents.instance_id = meetings.instance_id)
                  WHERE notice_sent_at IS NOT NULL AND instance_id IS NOT NULL""")


def downgrade() -> None:
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_column("minutes_approved_at")
        batch_op.drop_column("minutes_approved_in_case_id")
        batch_op.drop_column("minutes_sent_at")
        batch_op.drop_column("notice_document_id")
    with op.batch_alter_table("meeting_attendance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_attendance_meeting_id"))
    op.drop_table("meeting_attendance")
