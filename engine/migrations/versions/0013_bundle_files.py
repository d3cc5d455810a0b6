"""A bundle's files stored once per content: ``bundle_files`` holds each file's text by its SHA-256, and a
version records ``file_hashes`` ({filename: sha256}) instead of a copy of the whole bundle, so deploying
a bundle again with one file changed stores that one file.

Versions deployed before keep their files in ``files_json`` (``file_hashes`` stays NULL) and are read
from there, so their running instances go on unchanged; new versions write ``files_json`` empty.

Revision ID: 0013
Revises: 0012
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bundle_files",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    with op.batch_alter_table("process_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_hashes", sa.Text(), nullable=True))


def downgrade() -> None:
    # give the versions deployed since their own copy of their files again, as the older engine reads them
    conn = op.get_bind()
    versions = sa.table("process_versions", sa.column("id", sa.Integer), sa.column("files_json", sa.Text),
                        sa.column("file_hashes", sa.Text))
    files = sa.table("bundle_files", sa.column("sha256", sa.String), sa.column("content", sa.Text))
    rows = conn.execute(sa.select(versions.c.id, versions.c.file_hashes)
                        .where(versions.c.file_hashes.is_not(None))).all()
    for version_id, file_hashes in rows:
        hashes = json.loads(file_hashes)
        texts = dict(conn.execute(sa.select(files.c.sha256, files.c.content)
                                  .where(files.c.sha256.in_(set(hashes.values())))).all())
        conn.execute(sa.update(versions).where(versions.c.id == version_id).values(
            files_json=json.dumps({name: texts[sha] for name, sha in hashes.items()}, ensure_ascii=False)))
    # not in batch mode: on SQLite that copies the table and drops the old one, which the instances'
    # foreign keys refuse; SQLite (3.35+) and PostgreSQL both drop a plain column in place
    op.execute("ALTER TABLE process_versions DROP COLUMN file_hashes")
    op.drop_table("bundle_files")
