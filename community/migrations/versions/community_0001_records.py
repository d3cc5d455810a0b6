"""The health community's records: grant calls, applications, budget lines, reviews, reports, the funds
ledger, meeting cases, documents.

Before the domain had a migration branch of its own, engine revision 0006 created these tables; a database
made then already has them, and this revision adopts them as they are (the tables it finds are left alone).

Revision ID: community_0001
Depends on: engine revision 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "community_0001"
down_revision = None
branch_labels = ("community",)
depends_on = "0005"


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "grant_calls" in existing:  # made by the engine's revision 0006 before the branches split
        return
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_documents_application_id"), ["application_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_documents_instance_id"), ["instance_id"], unique=False)

    op.create_table(
        "grant_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("priority_groups", sa.Text(), nullable=False),
        sa.Column("frame", sa.BigInteger(), nullable=False),
        sa.Column("sustainability_cut_percent", sa.Integer(), nullable=False),
        sa.Column("reviewers_per_application", sa.Integer(), nullable=False),
        sa.Column("deadlines", sa.Text(), nullable=False),
        sa.Column("closed_deadlines", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "meeting_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("committee", sa.String(length=20), nullable=False),
        sa.Column("case_type", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("background", sa.Text(), nullable=True),
        sa.Column("proposed_conclusion", sa.Text(), nullable=False),
        sa.Column("attachments", sa.Text(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_number"),
    )
    op.create_table(
        "grant_applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("applicant_organisation", sa.String(length=200), nullable=False),
        sa.Column("partner_organisations", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("contact_name", sa.String(length=200), nullable=True),
        sa.Column("contact_email", sa.String(length=320), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("amount_applied", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recommended_amount", sa.BigInteger(), nullable=True),
        sa.Column("recommended_rank", sa.Integer(), nullable=True),
        sa.Column("granted", sa.Boolean(), nullable=True),
        sa.Column("amount_granted", sa.BigInteger(), nullable=True),
        sa.Column("decision_case", sa.String(length=20), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["grant_calls.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance_id"),
    )
    with op.batch_alter_table("grant_applications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_applications_call_id"), ["call_id"], unique=False)

    op.create_table(
        "grant_budget_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("party", sa.String(length=200), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["grant_applications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("grant_budget_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_budget_lines_application_id"), ["application_id"], unique=False)

    op.create_table(
        "grant_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("period", sa.Integer(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("spent_total", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("au_comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["grant_applications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("grant_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_reports_application_id"), ["application_id"], unique=False)

    op.create_table(
        "grant_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("conflict_of_interest", sa.Boolean(), nullable=False),
        sa.Column("scores", sa.Text(), nullable=False),
        sa.Column("average_score_x100", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["grant_applications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("grant_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_reviews_application_id"), ["application_id"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=300), nullable=True),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["grant_applications.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_entries_application_id"), ["application_id"], unique=False)
        batch_op.create_index("ix_ledger_entries_year_kind", ["year", "kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_year_kind")
        batch_op.drop_index(batch_op.f("ix_ledger_entries_application_id"))

    op.drop_table("ledger_entries")
    with op.batch_alter_table("grant_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grant_reviews_application_id"))

    op.drop_table("grant_reviews")
    with op.batch_alter_table("grant_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grant_reports_application_id"))

    op.drop_table("grant_reports")
    with op.batch_alter_table("grant_budget_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grant_budget_lines_application_id"))

    op.drop_table("grant_budget_lines")
    with op.batch_alter_table("grant_applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grant_applications_call_id"))

    op.drop_table("grant_applications")
    op.drop_table("meeting_cases")
    op.drop_table("grant_calls")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_instance_id"))
        batch_op.drop_index(batch_op.f("ix_documents_application_id"))

    op.drop_table("documents")
