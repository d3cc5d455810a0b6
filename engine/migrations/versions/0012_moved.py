"""A revision whose columns moved (see 0006): the scope columns of revision 0014 replace them, and the
package whose branch added the old columns moves their values over.

Revision ID: 0012
Revises: 0011
"""

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
