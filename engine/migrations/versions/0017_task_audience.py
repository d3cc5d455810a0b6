"""Task narrowing as rows the worklist's SQL can filter: ``task_audience``.

A human task's narrowing rules (``human_tasks.restrictions``, JSON: organisations, excluded organisations,
named users, excluded users, scopes, distinct workers) become one row per rule value, so "available to me"
is filtered, counted and paged by the database instead of reading every open row in Python. The open tasks
of a database made before get their rows here; closed tasks need none (a task that opens again gets them
when it does).

Revision ID: 0017
Revises: 0016
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    audience = op.create_table(
        "task_audience",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("value", sa.String(300), nullable=False),
    )
    op.create_index("ix_task_audience_task_id", "task_audience", ["task_id"])
    op.create_index("ix_task_audience_rule_value", "task_audience", ["rule", "value"])
    # plain ADD COLUMN: no table rebuild (task_notices refers to human_tasks)
    op.add_column("human_tasks", sa.Column("narrowed", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("human_tasks", sa.Column("scope_bound", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("human_tasks", sa.Column("distinct_workers", sa.Boolean(), nullable=False,
                                           server_default=sa.false()))
    op.create_index("ix_human_tasks_open_due", "human_tasks", ["status", "due_at", "created_at", "id"])
    op.create_index("ix_human_tasks_offer", "human_tasks", ["status", "narrowed", "candidate_role", "claimed_by"])
    op.create_index("ix_human_tasks_completed_by", "human_tasks", ["completed_by"])
    bind = op.get_bind()
    rows = []
    for task_id, restrictions in bind.execute(sa.text(
            "SELECT task_id, restrictions FROM human_tasks WHERE status = 'open'")).all():
        try:
            rules = json.loads(restrictions or "{}")
        except ValueError:
            rules = {}
        if not isinstance(rules, dict):
            rules = {}
        bind.execute(sa.text("UPDATE human_tasks SET narrowed = :n, scope_bound = :s, distinct_workers = :d "
                             "WHERE task_id = :t"),
                     {"n": sum(1 for rule in ("organisations", "users") if rule in rules),
                      "s": "scopes" in rules, "d": bool(rules.get("distinct_workers")), "t": task_id})
        for rule, values in rules.items():
            values = [v for v in (values if isinstance(values, list) else [values]) if v not in (None, "")]
            for value in values or [""]:  # a rule with no values narrows to no one: "" matches no one
                rows.append({"task_id": task_id, "rule": str(rule)[:40], "value": str(value)[:300]})
    if rows:
        op.bulk_insert(audience, rows)


def downgrade() -> None:
    op.drop_index("ix_human_tasks_completed_by", table_name="human_tasks")
    op.drop_index("ix_human_tasks_offer", table_name="human_tasks")
    op.drop_index("ix_human_tasks_open_due", table_name="human_tasks")
    with op.batch_alter_table("human_tasks") as batch:
        batch.drop_column("distinct_workers")
        batch.drop_column("scope_bound")
        batch.drop_column("narrowed")
    op.drop_index("ix_task_audience_rule_value", table_name="task_audience")
    op.drop_index("ix_task_audience_task_id", table_name="task_audience")
    op.drop_table("task_audience")
