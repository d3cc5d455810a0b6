"""The health community is the engine's scope: organisations, instances and tasks bound to a community are
bound to the scope of that name.

A database made before the engine knew scopes has the community in columns of the engine's tables (added by
the engine's revisions 0010 and 0012 of that time): their values move to the ``scope`` columns (engine
revision 0014), the old columns go, and the stored narrowing of open tasks names the scope
(``{"communities": [...]}`` becomes ``{"scopes": [...]}``). Then the tasks without a community of their own
take their case's, as engine revision 0015 does (which may have run before the cases had theirs here). A
new database has none of this to move.

Revision ID: community_0003
Revises: community_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "community_0003"
down_revision = "community_0002"
branch_labels = None
depends_on = "0014"

TABLES = ("organisations", "process_instances", "human_tasks")


#: engine revision 0015's: the tasks without a scope of their own take their instance's
FILL = """UPDATE human_tasks SET scope = (SELECT process_instances.scope FROM process_instances
                                         WHERE process_instances.id = human_tasks.instance_id)
          WHERE scope IS NULL AND restrictions NOT LIKE '%"scopes":%'
            AND EXISTS (SELECT 1 FROM process_instances WHERE process_instances.id = human_tasks.instance_id
                        AND process_instances.scope IS NOT NULL)"""


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    moved = False
    for table in TABLES:
        if "community" not in {c["name"] for c in inspector.get_columns(table)}:
            continue
        moved = True
        op.execute(f"UPDATE {table} SET scope = community WHERE scope IS NULL AND community IS NOT NULL")
        indexes = {i["name"] for i in inspector.get_indexes(table)}
        with op.batch_alter_table(table, schema=None) as batch_op:
            if f"ix_{table}_community" in indexes:
                batch_op.drop_index(f"ix_{table}_community")
            batch_op.drop_column("community")
    op.execute("""UPDATE human_tasks SET restrictions = REPLACE(restrictions, '"communities":', '"scopes":')
                  WHERE restrictions LIKE '%"communities":%'""")
    if moved:
        op.execute(FILL)


def downgrade() -> None:
    op.execute("""UPDATE human_tasks SET restrictions = REPLACE(restrictions, '"scopes":', '"communities":')
                  WHERE restrictions LIKE '%"scopes":%'""")
