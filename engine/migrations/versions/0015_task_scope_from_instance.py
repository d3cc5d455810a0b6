"""An instance's scope binds all its tasks: a human task without a scope property of its own (an
applicant's draft) takes its case's scope (``process_instances.scope``), so other scopes' supervisors
neither list, open nor reassign it (engine.authz.case_scopes). Rows written from now on get it as they are
written; this gives it to the rows written before.

Only rows without a scope are changed, and only those whose stored narrowing names no scope: a task bound
by its own scope property keeps the scope it has (none when it names several). Data only; the downgrade
clears the scope of the rows without a scope property again, as the code before wrote them (it listed a
task with a scope only to that scope's members, which would hide an applicant's draft from them).

A package branch that moves scopes in from columns of its own after this revision has run fills its
rows with the same statement once it has moved them.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

#: the rows without a scope of their own take their instance's (restrictions is JSON text: '{"scopes": [..]}')
FILL = """UPDATE human_tasks SET scope = (SELECT process_instances.scope FROM process_instances
                                         WHERE process_instances.id = human_tasks.instance_id)
          WHERE scope IS NULL AND restrictions NOT LIKE '%"scopes":%'
            AND EXISTS (SELECT 1 FROM process_instances WHERE process_instances.id = human_tasks.instance_id
                        AND process_instances.scope IS NOT NULL)"""


def upgrade() -> None:
    op.execute(FILL)


def downgrade() -> None:
    op.execute("""UPDATE human_tasks SET scope = NULL WHERE restrictions NOT LIKE '%"scopes":%'""")
