"""Personal conflict of interest and two call settings.

* ``grant_conflicts``: a committee member's declared conflict of interest in one application (or one found
  by the rules: named in it, or a member of the main applicant's organisation), kept as the record of who
  stood aside and why.
* ``grant_calls.conflict_rule``: which organisations' members may not review -- ``applicant`` (the main
  applicant's, the default for new calls) or ``parties`` (the applicant's and every partner's, the rule
  before this revision). Existing calls keep ``parties`` so a running round does not change its rule.
* ``grant_calls.multi_year``: whether a project may run and be budgeted over several years (``true``, what
  existing calls allowed) or one year at a time, the call's year (Vest-Viken's rule).

Revision ID: community_0009
Revises: community_0008
"""

import sqlalchemy as sa
from alembic import op

revision = "community_0009"
down_revision = "community_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no table rebuild): grant_applications refers to grant_calls
    op.add_column("grant_calls", sa.Column("conflict_rule", sa.String(20), nullable=False, server_default="parties"))
    op.add_column("grant_calls", sa.Column("multi_year", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "grant_conflicts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("application_id", sa.Integer(), sa.ForeignKey("grant_applications.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("application_id", "username", name="uq_grant_conflicts_application_user"),
    )


def downgrade() -> None:
    op.drop_table("grant_conflicts")
    op.drop_column("grant_calls", "multi_year")
    op.drop_column("grant_calls", "conflict_rule")
