"""The engine's tables (SQLAlchemy 2.x typed models).

Workflow state is stored as JSON *text*: PostgreSQL ``jsonb`` reorders object keys, and SpiffWorkflow
restores task data as deltas against the parent task in mapping order, so a reordered state silently
loses data. The process spec is stored once per model version, never inside an instance.

Index tables (human tasks, timers, message waits) are derived from the workflow state on every save in
the same transaction, so worklists and the scheduler never need to load workflows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from . import clock


class Base(DeclarativeBase):
    pass


def _now() -> datetime:
    return clock.now()


class TZDateTime(TypeDecorator):
    """Timestamps stored and returned in UTC on every backend.

    SQLite has no time zones: SQLAlchemy writes an aware datetime's wall-clock fields and drops the
    offset, so 10:00+01:00 and 10:00Z would compare equal as text. Converting to UTC on the way in
    keeps comparisons (``due_at <= now``) right; on the way out values come back aware, in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

user_roles = Table(
    "user_roles",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)

memberships = Table(
    "memberships",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("organisation_id", ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True),
)


class Role(Base):
    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: the organisational scope the organisation belongs to (exactly one, e.g. a region its members work
    #: for); ``None`` for organisations outside any (e.g. the system's operator). See engine.authz.
    scope: Mapped[str | None] = mapped_column(String(200), index=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2; None: sign-in by OIDC only
    language: Mapped[str | None] = mapped_column(String(5))  # nb | nn | en; None: the default (nb)
    #: raised to end every session of the user (sign-out, password change): see engine.accounts.end_sessions
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="joined")
    organisations: Mapped[list[Organisation]] = relationship(secondary=memberships, lazy="joined")

    @property
    def role_names(self) -> set[str]:
        return {r.name.lower() for r in self.roles}

    @property
    def organisation_names(self) -> set[str]:
        return {o.name for o in self.organisations}

    @property
    def scope_names(self) -> set[str]:
        """The scopes of the user's organisations (what ``samflyt.scopeField`` checks)."""
        return {o.scope for o in self.organisations if o.scope}


class ProcessModel(Base):
    """A deployable process, known by its BPMN process id."""

    __tablename__ = "process_models"
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    # Never walked (lazy="raise"): a model's latest version is found by a query (engine.runtime), so
    # using the engine does not grow slower with every deploy.
    versions: Mapped[list[ProcessVersion]] = relationship(
        back_populates="model", order_by="ProcessVersion.version", lazy="raise"
    )


class ProcessVersion(Base):
    """An immutable deployed bundle for one model, identified by the bundle's content hash."""

    __tablename__ = "process_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "content_hash"),
        UniqueConstraint("model_id", "version"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("process_models.id"))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    # The blobs are deferred: finding, listing and counting versions reads none of them; a version's are
    # read once, when it is parsed into the spec cache (engine.spec_cache).
    # {"spec": ..., "subprocess_specs": {...}} as produced by SpiffWorkflow's spec converters.
    spec_json: Mapped[str] = mapped_column(Text, deferred=True, deferred_group="blobs")
    # {filename: text} of every .bpmn/.dmn/form file in the bundle, for versions deployed before
    # migration 0013; empty since, their files being in ``bundle_files`` (see ``file_hashes``).
    files_json: Mapped[str] = mapped_column(Text, deferred=True, deferred_group="blobs")
    # {filename: sha256 of its text}: the bundle's files in ``bundle_files``; None for older versions.
    file_hashes: Mapped[str | None] = mapped_column(Text, deferred=True, deferred_group="blobs")
    # Names of messages a start event of this process catches (message start events).
    start_messages: Mapped[str] = mapped_column(Text, default="[]")
    deployed_by: Mapped[str | None] = mapped_column(String(100))
    deployed_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    model: Mapped[ProcessModel] = relationship(back_populates="versions")


class BundleFile(Base):
    """A deployed file's text, stored once per content however many versions and deploys include it."""

    __tablename__ = "bundle_files"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[str] = mapped_column(Text)


def _searched(name: str, column: str) -> Index:
    """An index for the worklist's search box (``ILIKE '%text%'``): a trigram index on PostgreSQL (migration
    0018; a plain one where ``pg_trgm`` cannot be had), a plain one on SQLite."""
    return Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})


class ProcessInstance(Base):
    __tablename__ = "process_instances"
    __table_args__ = (_searched("ix_process_instances_title_search", "title"),
                      _searched("ix_process_instances_key_search", "business_key"))
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    business_key: Mapped[str | None] = mapped_column(String(200), index=True)
    title: Mapped[str | None] = mapped_column(String(500))
    #: the scope whose case it is (the data field a scope property of the process names, read after each
    #: step): supervisors of other scopes do not open it (engine.authz)
    scope: Mapped[str | None] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text, default="{}")
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)
    started_by: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    ended_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_task: Mapped[str | None] = mapped_column(String(200))

    __mapper_args__ = {"version_id_col": lock_version}


class HumanTask(Base):
    """One row per READY manual task: the worklist, never a scan of serialized workflows."""

    __tablename__ = "human_tasks"
    __table_args__ = (Index("ix_human_tasks_open_due", "status", "due_at", "created_at", "id"),
                      Index("ix_human_tasks_offer", "status", "narrowed", "candidate_role", "claimed_by"),
                      Index("ix_human_tasks_completed_by", "completed_by"),
                      Index("ix_human_tasks_open_process", "status", "process_id"),
                      _searched("ix_human_tasks_title_search", "title"))
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36), unique=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instances.id"), index=True)
    #: its instance's process (never changes: a migration moves an instance between versions of one process),
    #: kept here so "which processes have open tasks" and the per-process worklist need no join
    process_id: Mapped[str | None] = mapped_column(String(200))
    spec_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(500))
    lane: Mapped[str | None] = mapped_column(String(100))
    candidate_role: Mapped[str | None] = mapped_column(String(100), index=True)
    form_key: Mapped[str | None] = mapped_column(String(300))
    ui_form_key: Mapped[str | None] = mapped_column(String(300))
    # Narrowing evaluated when the task became ready: {"organisations": [...], "exclude_organisations":
    # [...], "users": [...]} -- see engine.authz.
    restrictions: Mapped[str] = mapped_column(Text, default="{}")
    #: the scope the task belongs to (``samflyt.scopeField``), a column so the supervisors' "all open"
    #: worklist can be narrowed and paged by the database; ``None``: not bound to one
    scope: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100), index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    due_at: Mapped[datetime | None] = mapped_column(TZDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    completed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(100))
    # Working days before ``due_at`` to remind on (from ``samflyt.reminders``), and when it became overdue.
    reminders: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    overdue_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    # When the next reminder or overdue notice falls due (None: nothing more to send).
    next_notice_at: Mapped[datetime | None] = mapped_column(TZDateTime, index=True)
    #: How many kinds of "for whom" rule (organisations, named users) the task has: 0 is open to its role;
    #: else the person must match that many kinds in ``task_audience`` (see :mod:`engine.worklist`).
    narrowed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: bound to a scope by its own scope property: only that scope's people (the ``scope`` column) may work it
    scope_bound: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: ``samflyt.distinctWorkers``: one person works one of the multi-instance siblings
    distinct_workers: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class TaskAudience(Base):
    """One narrowing rule of an open human task as a row (``rule`` a restriction key of
    :mod:`engine.authz`, ``value`` one of its values): who a task is for, or who it excludes, in a form the
    worklist's SQL filters and pages by, instead of reading every row's JSON ``restrictions`` in Python.
    Written with the task row (:meth:`engine.unit_of_work.Unit._sync_human_tasks`), removed when it closes.
    """

    __tablename__ = "task_audience"
    __table_args__ = (Index("ix_task_audience_match", "rule", "value", "task_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36), index=True)
    rule: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(300))


class TaskNotice(Base):
    """A reminder or overdue notice sent for a human task; unique per task and kind, so never sent twice."""

    __tablename__ = "task_notices"
    __table_args__ = (UniqueConstraint("human_task_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    human_task_id: Mapped[int] = mapped_column(ForeignKey("human_tasks.id"))
    kind: Mapped[str] = mapped_column(String(30))  # reminder-10, reminder-2, overdue
    sent_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class Timer(Base):
    """A waiting timer event with its due time; the scheduler polls this table."""

    __tablename__ = "timers"
    __table_args__ = (UniqueConstraint("instance_id", "task_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instances.id"))
    task_id: Mapped[str] = mapped_column(String(36))
    spec_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(TZDateTime, index=True)
    # A scheduler's claim on a due timer: a lease in wall-clock time, released when the instance has
    # been advanced; one left by a killed scheduler expires and the timer is claimed again.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(TZDateTime)


class MessageWait(Base):
    """A catching message event an instance waits on, with its expected correlation values."""

    __tablename__ = "message_waits"
    __table_args__ = (UniqueConstraint("instance_id", "task_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instances.id"))
    task_id: Mapped[str] = mapped_column(String(36))
    message_name: Mapped[str] = mapped_column(String(200), index=True)
    # {correlation property id: expected value}; values that cannot be computed yet are absent.
    correlations: Mapped[str] = mapped_column(Text, default="{}")
    # {correlation property id: retrieval expression}, to compute a message's values from its payload.
    properties_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class Message(Base):
    """Every message sent, by a user or thrown by an instance; undeliverable ones stay visible."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    payload: Mapped[str] = mapped_column(Text, default="{}")
    correlations: Mapped[str] = mapped_column(Text, default="{}")
    sender_instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instances.id"))
    sent_by: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), index=True)  # delivered | undeliverable | held
    target_instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instances.id"))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class AuditEvent(Base):
    """Append-only log: who did what, when, to which instance and task, with the data submitted.

    Database triggers (see the initial migration) refuse UPDATE and DELETE on this table.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_instance", "instance_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    actor: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50), index=True)
    instance_id: Mapped[int | None] = mapped_column(Integer)
    task_id: Mapped[str | None] = mapped_column(String(36))
    details: Mapped[str] = mapped_column(Text, default="{}")


class OutboxMessage(Base):
    """A notification to send: written in the same transaction as the step that caused it.

    ``message_id`` is fixed when the row is written, so a message resent after a crash between sending
    and marking it sent carries the same Message-ID and receivers can drop the duplicate.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(5), default="nb")
    template: Mapped[str | None] = mapped_column(String(100))
    instance_id: Mapped[int | None] = mapped_column(Integer)
    task_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    sent_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class OutboxAttachment(Base):
    """A file sent with an outbox message (an award letter as PDF): a copy taken when the message is
    written, so the mail carries what the step produced even if the document is changed or removed later."""

    __tablename__ = "outbox_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class SignInAttempt(Base):
    """A sign-in attempt, kept to slow down password guessing (see :mod:`engine.accounts`)."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (Index("ix_sign_in_attempts_username_at", "username", "at"),
                      Index("ix_sign_in_attempts_client_at", "client", "at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    client: Mapped[str | None] = mapped_column(String(100))
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class TaskDraft(Base):
    """What a user typed into a task form and saved without submitting, to come back to."""

    __tablename__ = "task_drafts"
    __table_args__ = (UniqueConstraint("task_id", "username", name="uq_task_drafts_task_user"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36))
    username: Mapped[str] = mapped_column(String(100))
    data: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class Attachment(Base):
    """An uploaded file: the bytes live in the attachment store (a folder), this row says what they are.

    Task data holds only the attachment's id (a form field ``{"type": "string", "format": "attachment"}``),
    so workflow state stays small and files can be scanned, moved or removed without touching it.
    """

    __tablename__ = "attachments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    task_id: Mapped[str | None] = mapped_column(String(36), index=True)
    instance_id: Mapped[int | None] = mapped_column(Integer, index=True)
