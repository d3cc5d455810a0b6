"""Agreements (samarbeidsavtaler): the register of a health community's overall agreement and sub-agreements,
their versions with text and appendices, the revision cycles, hearing answers, signatures, evaluations and the
history of events. New tables only: nothing existing changes.

Revision ID: community_0007
Revises: community_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "community_0007"
down_revision = "community_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agreements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('letter', sa.String(length=10), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('merged_into_id', sa.Integer(), nullable=True),
    sa.Column('first_made', sa.Integer(), nullable=True),
    sa.Column('history', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merged_into_id'], ['agreements.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_agreements_community'), 'agreements', ['community'], unique=False)
    op.create_table('agreement_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_agreement_events_agreement_id'), 'agreement_events', ['agreement_id'], unique=False)
    op.create_table('agreement_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('approved_case', sa.String(length=20), nullable=True),
    sa.Column('approved_on', sa.Date(), nullable=True),
    sa.Column('effective_from', sa.Date(), nullable=True),
    sa.Column('superseded_on', sa.Date(), nullable=True),
    sa.Column('signed_on', sa.Date(), nullable=True),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agreement_id', 'number', name='uq_agreement_versions_number')
    )
    op.create_index(op.f('ix_agreement_versions_agreement_id'), 'agreement_versions', ['agreement_id'], unique=False)
    op.create_index(op.f('ix_agreement_versions_instance_id'), 'agreement_versions', ['instance_id'], unique=False)
    op.create_table('agreement_appendices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('attachment_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['version_id'], ['agreement_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_agreement_appendices_version_id'), 'agreement_appendices', ['version_id'], unique=False)
    op.create_table('agreement_evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('planned_for', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('revision_needed', sa.Boolean(), nullable=True),
    sa.Column('done_by', sa.String(length=100), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['agreement_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_agreement_evaluations_agreement_id'), 'agreement_evaluations', ['agreement_id'],
                    unique=False)
    op.create_table('agreement_hearing_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('no_input', sa.Boolean(), nullable=False),
    sa.Column('comments', sa.Text(), nullable=True),
    sa.Column('answered_by', sa.String(length=100), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('response', sa.String(length=20), nullable=True),
    sa.Column('response_text', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['version_id'], ['agreement_versions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('version_id', 'organisation', name='uq_agreement_hearing_answers_party')
    )
    op.create_index(op.f('ix_agreement_hearing_answers_version_id'), 'agreement_hearing_answers', ['version_id'],
                    unique=False)
    op.create_table('agreement_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('mandate', sa.Text(), nullable=True),
    sa.Column('mandate_case', sa.String(length=20), nullable=True),
    sa.Column('leader', sa.String(length=100), nullable=True),
    sa.Column('members', sa.Text(), nullable=False),
    sa.Column('group_deadline', sa.Date(), nullable=True),
    sa.Column('hearing_deadline', sa.Date(), nullable=True),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('stage', sa.String(length=30), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['agreement_versions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('instance_id')
    )
    op.create_index(op.f('ix_agreement_revisions_agreement_id'), 'agreement_revisions', ['agreement_id'], unique=False)
    op.create_table('agreement_signatures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('signed', sa.Boolean(), nullable=False),
    sa.Column('signed_by', sa.String(length=100), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['agreement_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_agreement_signatures_version_id'), 'agreement_signatures', ['version_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_agreement_signatures_version_id'), table_name='agreement_signatures')
    op.drop_table('agreement_signatures')
    op.drop_index(op.f('ix_agreement_revisions_agreement_id'), table_name='agreement_revisions')
    op.drop_table('agreement_revisions')
    op.drop_index(op.f('ix_agreement_hearing_answers_version_id'), table_name='agreement_hearing_answers')
    op.drop_table('agreement_hearing_answers')
    op.drop_index(op.f('ix_agreement_evaluations_agreement_id'), table_name='agreement_evaluations')
    op.drop_table('agreement_evaluations')
    op.drop_index(op.f('ix_agreement_appendices_version_id'), table_name='agreement_appendices')
    op.drop_table('agreement_appendices')
    op.drop_index(op.f('ix_agreement_versions_instance_id'), table_name='agreement_versions')
    op.drop_index(op.f('ix_agreement_versions_agreement_id'), table_name='agreement_versions')
    op.drop_table('agreement_versions')
    op.drop_index(op.f('ix_agreement_events_agreement_id'), table_name='agreement_events')
    op.drop_table('agreement_events')
    op.drop_index(op.f('ix_agreements_community'), table_name='agreements')
    op.drop_table('agreements')
