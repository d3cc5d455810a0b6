"""A revision whose columns moved (see 0006): the scope columns of revision 0014 replace them, and the
package whose branch added the old columns moves their values over.

Revision ID: 0010
Revises: 0009
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
