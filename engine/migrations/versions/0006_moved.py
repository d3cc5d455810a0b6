"""A revision whose tables moved to a package's own migration branch (see engine.plugins).

In the one chain of migrations before packages had branches of their own, this revision created tables
of a package built on the engine; that package's branch now creates them (and adopts them in a database
made before). The revision stays, empty, so databases stamped with it or past it upgrade as before.

Revision ID: 0006
Revises: 0005
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
