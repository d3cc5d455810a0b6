"""Cases per committee and health community, numbered from counters; meetings and their agendas.

``meeting_cases`` gets the health community (the scope of the instance that enqueued the case; ``""`` for
a case of none), the case handler, the case it follows up, the meeting it is on (and where on the agenda)
and the message its instance waits for; its number is unique per (community, committee) instead of
everywhere. The JSON list of attachments becomes the numbered rows of ``case_attachments``; ``pending``
becomes ``registered``. ``case_counters`` is seeded with the highest number each committee of each
community has used in each year, so existing cases keep their numbers and the next ones follow them.

Revision ID: community_0004
Revises: community_0003
"""

import json
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "community_0004"
down_revision = "community_0003"
branch_labels = None
depends_on = None

#: what SQLite's unnamed ``UNIQUE (case_number)`` of revision community_0001 is called in batch mode
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    op.create_table(
        "case_counters",
        sa.Column("committee", sa.String(length=20), nullable=False),
        sa.Column("community", sa.String(length=200), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("committee", "community", "year"),
    )
    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community", sa.String(length=200), nullable=False),
        sa.Column("committee", sa.String(length=20), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(length=300), nullable=True),
        sa.Column("video_link", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("notice_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("minutes_document_id", sa.Integer(), nullable=True),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.create_index("ix_meetings_committee", ["community", "committee", "starts_at"], unique=False)

    with op.batch_alter_table("meeting_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("community", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("case_handler", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("follows_up_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("meeting_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("agenda_position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reply_message", sa.String(length=200), nullable=True))

    # the community is the scope of the instance that enqueued the case; a process waits for its
    # committee's decision (the grant round for ``ssu_decision``, the only one there was)
    op.execute("""UPDATE meeting_cases SET community = COALESCE((SELECT process_instances.scope
                      FROM process_instances WHERE process_instances.id = meeting_cases.instance_id), '')""")
    op.execute("""UPDATE meeting_cases SET reply_message = LOWER(committee) || '_decision'
                  WHERE instance_id IS NOT NULL""")
    op.execute("UPDATE meeting_cases SET status = 'registered' WHERE status = 'pending'")

    bind = op.get_bind()
    cases = bind.execute(sa.text("SELECT id, community, committee, case_number, attachments FROM meeting_cases"))
    attachments, last = [], defaultdict(int)
    for case_id, community, committee, number, listed in cases:
        for i, item in enumerate(json.loads(listed or "[]"), start=1):
            document = isinstance(item, int) or (isinstance(item, str) and item.isdigit())
            attachments.append({"case_id": case_id, "number": i, "document_id": int(item) if document else None,
                                "attachment_id": None if document else str(item)})
        year, _, seq = (number or "").partition(".")
        if year.isdigit() and seq.isdigit():
            key = (committee, community or "", int(year))
            last[key] = max(last[key], int(seq))
    if last:
        bind.execute(sa.text("""INSERT INTO case_counters (committee, community, year, last)
                                VALUES (:committee, :community, :year, :last)"""),
                     [{"committee": c, "community": m, "year": y, "last": n} for (c, m, y), n in last.items()])

    unique = next((u["name"] for u in sa.inspect(bind).get_unique_constraints("meeting_cases")
                   if u["column_names"] == ["case_number"]), None) or "uq_meeting_cases_case_number"
    with op.batch_alter_table("meeting_cases", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.alter_column("community", existing_type=sa.String(length=200), nullable=False)
        batch_op.drop_constraint(unique, type_="unique")
        batch_op.create_unique_constraint("uq_meeting_cases_number", ["community", "committee", "case_number"])
        batch_op.create_foreign_key("fk_meeting_cases_follows_up_id", "meeting_cases", ["follows_up_id"], ["id"])
        batch_op.create_foreign_key("fk_meeting_cases_meeting_id", "meetings", ["meeting_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_meeting_cases_meeting_id"), ["meeting_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_meeting_cases_instance_id"), ["instance_id"], unique=False)
        batch_op.drop_column("attachments")

    # made after the table it refers to is rebuilt (SQLite's batch mode drops and copies it)
    op.create_table(
        "case_attachments",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("attachment_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["meeting_cases.id"]),
        sa.PrimaryKeyConstraint("case_id", "number"),
    )
    if attachments:
        bind.execute(sa.text("""INSERT INTO case_attachments (case_id, number, document_id, attachment_id)
                                VALUES (:case_id, :number, :document_id, :attachment_id)"""), attachments)


def downgrade() -> None:
    """Back to one sequence of numbers everywhere: only possible while no number repeats across communities."""
    with op.batch_alter_table("meeting_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attachments", sa.Text(), nullable=False, server_default="[]"))
    bind = op.get_bind()
    listed = defaultdict(list)
    for case_id, document_id, attachment_id in bind.execute(sa.text(
            "SELECT case_id, document_id, attachment_id FROM case_attachments ORDER BY case_id, number")):
        listed[case_id].append(document_id if document_id is not None else attachment_id)
    for case_id, items in listed.items():
        bind.execute(sa.text("UPDATE meeting_cases SET attachments = :a WHERE id = :id"),
                     {"a": json.dumps(items), "id": case_id})
    op.execute("UPDATE meeting_cases SET status = 'pending' WHERE status IN ('registered', 'on_agenda', 'postponed')")
    op.drop_table("case_attachments")
    with op.batch_alter_table("meeting_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_cases_instance_id"))
        batch_op.drop_index(batch_op.f("ix_meeting_cases_meeting_id"))
        batch_op.drop_constraint("fk_meeting_cases_meeting_id", type_="foreignkey")
        batch_op.drop_constraint("fk_meeting_cases_follows_up_id", type_="foreignkey")
        batch_op.drop_constraint("uq_meeting_cases_number", type_="unique")
        batch_op.create_unique_constraint("uq_meeting_cases_case_number", ["case_number"])
        batch_op.alter_column("attachments", server_default=None)
        for column in ("reply_message", "agenda_position", "meeting_id", "follows_up_id", "case_handler",
                       "community"):
            batch_op.drop_column(column)
    op.drop_table("meetings")
    op.drop_table("case_counters")
