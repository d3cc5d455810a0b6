"""The worklist's narrowing lookups answered from the index alone, its search box from trigram indexes, and
its process filter from the task rows.

``task_audience (rule, value, task_id)``:

"Which open tasks are for my organisation or for me by name" is asked on every worklist read; with the task
id in the index the database reads it without visiting the table (an index-only scan), the largest part of
a worklist read at the size of a region (issue "Fast at the size of a real region"). It replaces the
``(rule, value)`` index, which it covers.

The search box ("contains", case-insensitive: ``ILIKE '%text%'``) on a case's title and key and a task's title:
on PostgreSQL trigram indexes (``pg_trgm``, in PostgreSQL's contrib, trusted since PostgreSQL 13) answer it
without reading every open task. Where the extension cannot be created (a role without the right), plain
indexes of the same names are made and the search reads the rows, as before: slower, never wrong.

``human_tasks.process_id`` (its instance's, filled in for every task row there is): "which processes have
open tasks" (the filter's choices on every worklist page) is one index probe per process, not a join of every
open task with its instance.

Revision ID: 0018
Revises: 0017
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


#: the searched columns: (index, table, column)
SEARCHED = (("ix_process_instances_title_search", "process_instances", "title"),
            ("ix_process_instances_key_search", "process_instances", "business_key"),
            ("ix_human_tasks_title_search", "human_tasks", "title"))


def upgrade() -> None:
    op.create_index("ix_task_audience_match", "task_audience", ["rule", "value", "task_id"])
    op.drop_index("ix_task_audience_rule_value", table_name="task_audience")
    # the process of each task's instance, on the task row: the worklist's process filter without a join
    op.add_column("human_tasks", sa.Column("process_id", sa.String(200), nullable=True))  # plain: no rebuild
    op.execute("UPDATE human_tasks SET process_id = (SELECT process_instances.process_id FROM process_instances "
               "WHERE process_instances.id = human_tasks.instance_id)")
    op.create_index("ix_human_tasks_open_process", "human_tasks", ["status", "process_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        try:
            with bind.begin_nested():
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
                for name, table, column in SEARCHED:
                    op.create_index(name, table, [column], postgresql_using="gin",
                                    postgresql_ops={column: "gin_trgm_ops"})
            return
        except sa.exc.DBAPIError as exc:
            logging.getLogger("alembic").warning(
                "pg_trgm is not available (%s): the search box reads the rows instead of a trigram index",
                str(getattr(exc, "orig", exc)).strip())
    for name, table, column in SEARCHED:
        op.create_index(name, table, [column])


def downgrade() -> None:
    op.drop_index("ix_human_tasks_open_process", table_name="human_tasks")
    op.drop_column("human_tasks", "process_id")
    for name, table, _column in SEARCHED:
        op.drop_index(name, table_name=table)
    op.create_index("ix_task_audience_rule_value", "task_audience", ["rule", "value"])
    op.drop_index("ix_task_audience_match", table_name="task_audience")
