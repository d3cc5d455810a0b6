"""A revision whose tables moved to a package's own migration branch (see engine.plugins).

In the one chain of migrations before packages had branches of their own, this revision created tables
of a package built on the engine; that package's branch now creates them (and adopts them in a database
made before). The revision stays, empty, so databases stamped with it or past it upgrade as before.

Revision ID: 0009
Revises: 0008
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
