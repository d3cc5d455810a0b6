"""The grant per health community: ledger entries carry their community; a call records the intakes whose
recommendation has gone to SSU (no application may enter those any more).

Existing ledger entries get a community where it is known: an entry for an application takes its call's
community, and when the database holds calls of exactly one community, the other entries (allocations,
set-asides, carry-over) take that one. Entries in a database with several communities and no call to
tell are left without one; they form their own ledger, never mixed with a named community's money.

A database made before the domain had a branch of its own already has these columns (engine revision 0009
added them then); this revision then leaves it as it is.

Revision ID: community_0002
Revises: community_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "community_0002"
down_revision = "community_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("ledger_entries")}
    if "community" in columns:  # made by the engine's revision 0009 before the branches split
        return
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("community", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_ledger_entries_community_year", ["community", "year"], unique=False)
    with op.batch_alter_table("grant_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recommended_deadlines", sa.Text(), nullable=False, server_default="[]"))
    op.execute("""
        UPDATE ledger_entries SET community = (
            SELECT grant_calls.community FROM grant_applications
            JOIN grant_calls ON grant_calls.id = grant_applications.call_id
            WHERE grant_applications.id = ledger_entries.application_id)
        WHERE application_id IS NOT NULL
    """)
    op.execute("""
        UPDATE ledger_entries SET community = (SELECT MIN(community) FROM grant_calls)
        WHERE community IS NULL AND (SELECT COUNT(DISTINCT community) FROM grant_calls) = 1
    """)


def downgrade() -> None:
    with op.batch_alter_table("grant_calls", schema=None) as batch_op:
        batch_op.drop_column("recommended_deadlines")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_community_year")
        batch_op.drop_column("community")
