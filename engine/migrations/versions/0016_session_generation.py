"""Revocable sessions and a per-address sign-in throttle.

``users.session_generation`` is written into every session cookie at sign-in; signing out, a password
change or an administrator's "end sessions" raise it, so every cookie issued before stops working at
once on every web process (a signed cookie alone cannot be taken back). The index on
``sign_in_attempts (client, at)`` serves the per-address count that makes locking out a named account
cost the attacker their own address first.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_sign_in_attempts_client_at", "sign_in_attempts", ["client", "at"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_attempts_client_at", table_name="sign_in_attempts")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
