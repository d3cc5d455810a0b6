"""Domain records of the grant process: calls, applications, reviews, reports, the funds ledger, SSU cases.

These are the tables people query (the list of received applications, a round's scores, the ledger per
year); the workflow's serialized state is not a reporting database. They are written only by the grant
connectors (:mod:`community.connectors.grants`, :mod:`community.connectors.ledger`,
:mod:`community.connectors.meetings`, :mod:`community.connectors.documents`) inside the transaction of the step
that calls them, so a record and the process state never disagree.

Amounts are whole kroner (``BigInteger``). The ledger stores entries only; every balance is derived from
them (:func:`community.connectors.ledger.balances`), never stored twice.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from engine.models import Base, TZDateTime, _now


class GrantCall(Base):
    """A call for applications (utlysning): criteria, deadlines and the frame in kroner."""

    __tablename__ = "grant_calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    community: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    year: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    criteria: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of texts
    priority_groups: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of codes
    frame: Mapped[int] = mapped_column(BigInteger)
    sustainability_cut_percent: Mapped[int] = mapped_column(Integer, default=0)
    reviewers_per_application: Mapped[int] = mapped_column(Integer, default=3)
    deadlines: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of ISO dates
    closed_deadlines: Mapped[str] = mapped_column(Text, default="[]")  # deadlines whose intake has closed
    #: deadlines whose recommendation went to SSU: the intake is settled and takes no (re)submission
    recommended_deadlines: Mapped[str] = mapped_column(Text, default="[]")
    status: Mapped[str] = mapped_column(String(20), default="published")  # published | closed
    #: whose members may not review: ``applicant`` (the main applicant's organisation) or ``parties`` (every
    #: organisation in the application); people named in it, or who declared a conflict, never may
    conflict_rule: Mapped[str] = mapped_column(String(20), default="applicant", server_default="parties")
    #: ``False``: one year at a time -- the project period and its budget within the call's year
    multi_year: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    instance_id: Mapped[int | None] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class GrantApplication(Base):
    """An application (søknad) and what happened to it: submission, registration, scores, decision."""

    __tablename__ = "grant_applications"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("grant_calls.id"), index=True)
    instance_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    title: Mapped[str] = mapped_column(String(300))
    applicant_organisation: Mapped[str] = mapped_column(String(200))
    partner_organisations: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    plan: Mapped[str] = mapped_column(Text, default="{}")  # JSON: purpose, goals, roles, priority groups...
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    amount_applied: Mapped[int] = mapped_column(BigInteger, default=0)
    deadline: Mapped[date | None] = mapped_column(Date)  # the intake it was submitted to
    #: submitted | returned (incomplete, back with the applicant) | registered | granted | rejected |
    #: refused_late | withdrawn | completed
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    submitted_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    published_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    recommended_amount: Mapped[int | None] = mapped_column(BigInteger)
    recommended_rank: Mapped[int | None] = mapped_column(Integer)
    granted: Mapped[bool | None] = mapped_column(Boolean)
    amount_granted: Mapped[int | None] = mapped_column(BigInteger)
    decision_case: Mapped[str | None] = mapped_column(String(20))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class BudgetLine(Base):
    """One party's share of an application's budget in one year (økonomisk fordeling)."""

    __tablename__ = "grant_budget_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("grant_applications.id", ondelete="CASCADE"), index=True)
    party: Mapped[str] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str | None] = mapped_column(String(300))


class GrantReview(Base):
    """One committee member's assessment: conflict declaration, a 1-5 score per criterion, comments."""

    __tablename__ = "grant_reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("grant_applications.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    conflict_of_interest: Mapped[bool] = mapped_column(Boolean, default=False)
    scores: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of {criterion, score, comment}
    average_score_x100: Mapped[int | None] = mapped_column(Integer)  # 3.67 -> 367: exact on every database
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class GrantConflict(Base):
    """A committee member who may not review one application, and why: declared by them (``declared``),
    named in the application (``named``), or a member of an organisation the call's rule excludes
    (``organisation``). The record of who stood aside; the review tasks exclude them."""

    __tablename__ = "grant_conflicts"
    __table_args__ = (UniqueConstraint("application_id", "username", name="uq_grant_conflicts_application_user"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("grant_applications.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))  # declared | named | organisation
    declared_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class GrantReport(Base):
    """A status, deviation or final report from a recipient, and AU's handling of it."""

    __tablename__ = "grant_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("grant_applications.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # status | deviation | final
    period: Mapped[int | None] = mapped_column(Integer)  # the year a status report covers
    content: Mapped[str] = mapped_column(Text, default="{}")  # JSON as submitted
    spent_total: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20), default="submitted")  # submitted | approved | returned
    submitted_by: Mapped[str | None] = mapped_column(String(100))
    submitted_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    handled_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    au_comment: Mapped[str | None] = mapped_column(Text)


class LedgerEntry(Base):
    """One movement of grant money. Kinds and their sign in a year's free balance:

    ``allocation`` (+, from the regional health authority), ``carry_over_in`` (+) / ``carry_over_out`` (-),
    ``set_aside`` (-, e.g. the partnership conference) / ``set_aside_release`` (+, the unused part),
    ``set_aside_spent`` (0: a set-aside used), ``reservation`` (-, on award) / ``release`` (+),
    ``payout`` (0: a reservation paid).
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_year_kind", "year", "kind"),
                      Index("ix_ledger_entries_community_year", "community", "year"))
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the health community whose money it is; every balance is per community and year (``None``: a ledger
    #: kept without a community, e.g. entries made before communities were recorded)
    community: Mapped[str | None] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    amount: Mapped[int] = mapped_column(BigInteger)  # always >= 0; the kind gives the direction
    application_id: Mapped[int | None] = mapped_column(ForeignKey("grant_applications.id"), index=True)
    call_id: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str | None] = mapped_column(String(300))
    reference: Mapped[str | None] = mapped_column(String(100))  # SSU case number, allocation letter...
    instance_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class CaseCounter(Base):
    """The last case number a committee of a health community gave in a year (``YYYY.NN``'s ``NN``).

    Allocated with one ``INSERT ... ON CONFLICT DO UPDATE SET last = last + 1 RETURNING last``
    (:func:`community.connectors.meetings.allocate_number`): the row is locked until the step's transaction
    ends, so two concurrent enqueues never take the same number. ``community`` is ``""`` for cases of no
    health community."""

    __tablename__ = "case_counters"
    committee: Mapped[str] = mapped_column(String(20), primary_key=True)
    community: Mapped[str] = mapped_column(String(200), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Meeting(Base):
    """A meeting of a committee (SSU, AU, FSU) of a health community: when, where, its notice and minutes."""

    __tablename__ = "meetings"
    id: Mapped[int] = mapped_column(primary_key=True)
    community: Mapped[str] = mapped_column(String(200), default="")
    committee: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime] = mapped_column(TZDateTime)
    place: Mapped[str | None] = mapped_column(String(300))
    video_link: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default="planned")  # planned | held
    notice_sent_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    minutes_document_id: Mapped[int | None] = mapped_column(Integer)
    instance_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    notice_document_id: Mapped[int | None] = mapped_column(Integer)
    minutes_sent_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    #: the case of a later meeting ("Godkjenning av referat fra forrige møte") whose conclusion approved them
    minutes_approved_in_case_id: Mapped[int | None] = mapped_column(Integer)
    minutes_approved_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    __table_args__ = (Index("ix_meetings_committee", "community", "committee", "starts_at"),)


class MeetingAttendance(Base):
    """One person in a meeting's minutes: a member of the committee (``username``), present or absent
    (forfall), or a guest the secretariat wrote in (``guest``, no username); ``position`` keeps their order."""

    __tablename__ = "meeting_attendance"
    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    username: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    present: Mapped[bool] = mapped_column(Boolean)
    guest: Mapped[bool] = mapped_column(Boolean, default=False)


class MeetingCase(Base):
    """A case (sak) for a committee of a health community, numbered ``YYYY.NN`` per committee, community and
    year: type, title, case handler, background, proposed conclusion, and after the meeting the conclusion.

    Status: ``registered`` (waiting for a meeting) -> ``on_agenda`` (of ``meeting_id``, at ``agenda_position``)
    -> ``decided``; ``postponed`` when taken off an agenda for a later meeting. ``instance_id`` is the process
    instance waiting for the conclusion, if any."""

    __tablename__ = "meeting_cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    community: Mapped[str] = mapped_column(String(200), default="")
    committee: Mapped[str] = mapped_column(String(20), default="SSU")
    case_number: Mapped[str] = mapped_column(String(20))  # YYYY.NN
    case_type: Mapped[str] = mapped_column(String(20))  # Orientering | Drøfting | Beslutning | Dialog
    title: Mapped[str] = mapped_column(String(300))
    case_handler: Mapped[str | None] = mapped_column(String(100))  # a username
    background: Mapped[str | None] = mapped_column(Text)
    proposed_conclusion: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(100))
    follows_up_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_cases.id"))
    status: Mapped[str] = mapped_column(String(20), default="registered")
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"), index=True)
    agenda_position: Mapped[int | None] = mapped_column(Integer)
    conclusion: Mapped[str | None] = mapped_column(Text)
    instance_id: Mapped[int | None] = mapped_column(Integer, index=True)
    reply_message: Mapped[str | None] = mapped_column(String(200))  # the message the instance waits for
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    decided_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    __table_args__ = (UniqueConstraint("community", "committee", "case_number", name="uq_meeting_cases_number"),)


class CaseAttachment(Base):
    """Attachment (vedlegg) ``number`` of a case: a document the system made or an uploaded file."""

    __tablename__ = "case_attachments"
    case_id: Mapped[int] = mapped_column(ForeignKey("meeting_cases.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str | None] = mapped_column(String(300))
    document_id: Mapped[int | None] = mapped_column(Integer)
    attachment_id: Mapped[str | None] = mapped_column(String(36))


class Document(Base):
    """A generated document (award letter, annual report, export), kept for the archive.

    Stored in the database so that it is written in the step's transaction: a step that rolls back leaves
    no letter behind. (Uploaded attachments, which can be large, are a different matter.)
    """

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    instance_id: Mapped[int | None] = mapped_column(Integer, index=True)
    application_id: Mapped[int | None] = mapped_column(Integer, index=True)
    call_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class CaseFollowUp(Base):
    """A follow-up (oppfølging) a meeting's conclusion gave a case: what to do, who is responsible (a user or
    a role) and by when. Each runs as its own ``case_follow_up`` instance (``instance_id``).

    Status: ``open`` -> ``late`` (the due date passed, the secretariat was told) -> ``done``. A follow-up
    answered with a new case to a later meeting is ``done`` with ``new_case_id`` set."""

    __tablename__ = "case_follow_ups"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("meeting_cases.id"), index=True)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"))
    community: Mapped[str] = mapped_column(String(200), default="")
    committee: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    responsible_user: Mapped[str | None] = mapped_column(String(100))  # a username
    responsible_role: Mapped[str | None] = mapped_column(String(100))
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | late | done
    instance_id: Mapped[int | None] = mapped_column(Integer, index=True)
    comment: Mapped[str | None] = mapped_column(Text)
    new_case_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_cases.id"))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    late_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (Index("ix_case_follow_ups_committee", "community", "committee", "status"),)


# -- agreements (samarbeidsavtaler): the register and its revision cycles

class Agreement(Base):
    """An agreement of a health community: the overall agreement (``kind`` ``overall``, no letter) or a
    sub-agreement (``sub``, delavtale, lettered ``a``, ``b``, ... ``j`` or unlettered, e.g. the new delavtale
    for helhetlig pasientforløp). ``status`` ``active``; ``merged`` (into ``merged_into_id``), ``split`` (into
    the agreements whose ``split_from_id`` is this one) or ``retired`` when it lives on elsewhere or not at
    all. ``history`` is the text history from before Samflyt ("first made 2014, revised July 2015 and
    September 2019")."""

    __tablename__ = "agreements"
    id: Mapped[int] = mapped_column(primary_key=True)
    community: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="sub")  # overall | sub
    letter: Mapped[str | None] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | merged | split | retired
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"))
    #: the agreement this one was split out of (the reverse of a merge: one origin, several results)
    split_from_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"))
    first_made: Mapped[int | None] = mapped_column(Integer)  # the year
    history: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class AgreementVersion(Base):
    """One version of an agreement: its text (Markdown, or an uploaded document's text, for the diff) and
    where it is in its life: ``draft`` -> ``hearing`` -> ``anchored`` -> ``approved`` (by SSU in
    ``approved_case``, with ``effective_from``) -> ``signed`` (by every party) -> ``in_force`` (on the
    effective date) -> ``superseded`` (the day the next version comes into force)."""

    __tablename__ = "agreement_versions"
    __table_args__ = (UniqueConstraint("agreement_id", "number", name="uq_agreement_versions_number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per agreement
    label: Mapped[str | None] = mapped_column(String(200))  # e.g. "revidert september 2019"
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    approved_case: Mapped[str | None] = mapped_column(String(20))  # the SSU case, YYYY.NN
    approved_on: Mapped[date | None] = mapped_column(Date)
    effective_from: Mapped[date | None] = mapped_column(Date)
    superseded_on: Mapped[date | None] = mapped_column(Date)
    signed_on: Mapped[date | None] = mapped_column(Date)
    instance_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the revision that made it
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class AgreementAppendix(Base):
    """Appendix ``number`` of a version: e.g. the TUD agreement, a procedure, a guideline (retningslinje)."""

    __tablename__ = "agreement_appendices"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("agreement_versions.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30), default="appendix")  # agreement | procedure | guideline | appendix
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str | None] = mapped_column(Text)
    attachment_id: Mapped[str | None] = mapped_column(String(36))


class AgreementRevision(Base):
    """A revision cycle under way (or done) for an agreement: why, the mandate and its case, the working
    group with its leader and deadline, the hearing deadline, and the version it drafts."""

    __tablename__ = "agreement_revisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    instance_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20), default="person")  # case | evaluation | person
    mandate: Mapped[str | None] = mapped_column(Text)
    mandate_case: Mapped[str | None] = mapped_column(String(20))
    leader: Mapped[str | None] = mapped_column(String(100))
    members: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of {"username", "organisation"}
    group_deadline: Mapped[date | None] = mapped_column(Date)
    hearing_deadline: Mapped[date | None] = mapped_column(Date)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("agreement_versions.id"))
    stage: Mapped[str] = mapped_column(String(30), default="need")
    started_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    ended_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class AgreementHearingAnswer(Base):
    """A party's answer to the hearing of a version (høringsinnspill): comments or "no input", and the
    working group's response to it (``accepted`` | ``partly`` | ``not``)."""

    __tablename__ = "agreement_hearing_answers"
    __table_args__ = (UniqueConstraint("version_id", "organisation", name="uq_agreement_hearing_answers_party"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("agreement_versions.id"), index=True)
    organisation: Mapped[str] = mapped_column(String(200))
    no_input: Mapped[bool] = mapped_column(Boolean, default=False)
    comments: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(100))
    answered_at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
    response: Mapped[str | None] = mapped_column(String(20))
    response_text: Mapped[str | None] = mapped_column(Text)


class AgreementSignature(Base):
    """A party's signature of a version by an authorised person, or its refusal with a reason."""

    __tablename__ = "agreement_signatures"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("agreement_versions.id"), index=True)
    organisation: Mapped[str] = mapped_column(String(200))
    signed: Mapped[bool] = mapped_column(Boolean)
    signed_by: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)


class AgreementEvaluation(Base):
    """A planned evaluation of a version (e.g. May and December 2026) and, once done, its outcome; an
    outcome may call for the next revision (``revision_needed``)."""

    __tablename__ = "agreement_evaluations"
    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("agreement_versions.id"))
    planned_for: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="planned")  # planned | done
    outcome: Mapped[str | None] = mapped_column(Text)
    revision_needed: Mapped[bool | None] = mapped_column(Boolean)
    done_by: Mapped[str | None] = mapped_column(String(100))
    done_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class AgreementEvent(Base):
    """The history of an agreement, one row per step: mandate, working group, hearing sent and answered,
    anchoring, approval, signatures, entry into force, evaluations. What the agreement page shows."""

    __tablename__ = "agreement_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    version_id: Mapped[int | None] = mapped_column(Integer)
    instance_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    organisation: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(TZDateTime, default=_now)
