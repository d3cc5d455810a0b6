"""Connectors ``meetings.*``: cases (saker) for the meetings of a committee (SSU, AU, FSU) of a health community.

A process does not call meeting code: it enqueues a case (type, title, proposed conclusion, attachments)
and waits for a message carrying the conclusion (the grant round's ``ssu_decision``), correlated by the
case number (``YYYY.NN``, as the secretariat numbers cases, e.g. 2025.35). Numbers repeat across
communities and committees, so the number alone does not say whose case it is: a case is found by
(community, committee, number), and its conclusion is delivered to the one instance that enqueued it
(:meth:`engine.connectors.StepContext.send_message` with ``to``), never to another community's process
that waits for the same number.

Numbers are allocated per (committee, community, year) from ``case_counters`` with one
``INSERT ... ON CONFLICT DO UPDATE SET last = last + 1 RETURNING last`` (PostgreSQL; SQLite from 3.35):
the counter row stays locked until the step's transaction ends, so concurrent steps never share a number.

A meeting (``meetings.schedule``) is scheduled with the two standard cases ("Godkjenning av innkalling og
saksliste", "Godkjenning av referat fra forrige møte") as its first cases and first numbers, as the notices
of the secretariat have them; the waiting cases are placed after them in order (``meetings.add_to_agenda``).
``meetings.postpone`` takes a case off an agenda, to a later meeting or back to the waiting list.

The meeting process (``bpmn/meetings/meeting.bpmn``) reads the cases waiting for its committee
(``meetings.waiting_cases``), mails the notice to the committee's members (``meetings.send_notice``),
reads the agenda to conclude (``meetings.agenda_items``) and marks the meeting held (``meetings.mark_held``).
The notice goes out with its case papers as one PDF (``meeting_notice.html``); ``meetings.write_minutes``
renders the minutes (``meeting_minutes.html``: present, absent, guests, each case's conclusion in the meeting).

After the meeting the secretariat records who attended (``meetings.attendance_choices`` offers the committee's
members in the community, ``meetings.record_attendance`` keeps them in ``meeting_attendance``), the minutes are
written from that and mailed to the members (``meetings.send_minutes``). The next meeting of the committee in
the community has them as a numbered attachment of its case "Godkjenning av referat fra forrige møte"
(:func:`attach_previous_minutes`, when its agenda is set up and again when its notice goes out), and concluding
that case marks them approved (``minutes_approved_in_case_id``, ``minutes_approved_at``).

A conclusion may give a case follow-ups (oppfølging): what to do, a responsible user or role and a due date.
``meetings.check_follow_ups`` says what is wrong with them before anything is recorded (the form loops back),
``meetings.conclude`` writes each as a ``case_follow_ups`` row and starts its own ``case_follow_up`` process
with the message ``follow_up_assigned``; that process records itself on the row (``meetings.follow_up_started``),
marks it late and tells the secretariat when the due date passes (``meetings.follow_up_late``), and closes it
with the responsible's answer, a comment or a new case to a later meeting (``meetings.close_follow_up``).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy import case as sql_case
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from community.connectors.documents import store as store_document
from community.records import (
    CaseAttachment,
    CaseCounter,
    CaseFollowUp,
    Document,
    GrantApplication,
    Meeting,
    MeetingAttendance,
    MeetingCase,
)
from engine import clock
from engine.calendar import local_date
from engine.connectors import StepContext
from engine.errors import SamflytError
from engine.mail import enqueue as enqueue_mail
from engine.models import MessageWait, ProcessInstance, User
from engine.texts import _, joined

CASE_TYPES = ("Orientering", "Drøfting", "Beslutning", "Dialog")
COMMITTEES = ("SSU", "AU", "FSU")
CASE_STATUSES = ("registered", "on_agenda", "decided", "postponed")
MEETING_STATUSES = ("planned", "held")

#: the cases every agenda opens with (title, proposed conclusion), as in the secretariat's notices
STANDARD_CASES = (
    ("Godkjenning av innkalling og saksliste", "Innkalling og saksliste godkjennes."),
    ("Godkjenning av referat fra forrige møte", "Referat fra forrige møte godkjennes."),
)


class MeetingError(SamflytError):
    """A case or meeting that cannot be registered, found, placed or concluded."""

    code = "meeting"


# -- numbers

def allocate_number(session: Session, committee: str, community: str, year: int) -> str:
    """The next case number ``YYYY.NN`` of the committee of ``community`` in ``year``, race-free."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = CaseCounter.__table__
    statement = insert(table).values(committee=committee, community=community, year=year, last=1)
    statement = statement.on_conflict_do_update(index_elements=["committee", "community", "year"],
                                                set_={"last": table.c.last + 1}).returning(table.c.last)
    last = session.execute(statement).scalar_one()
    return f"{year}.{last:02d}"


def claim_number(session: Session, committee: str, community: str, number: str) -> str:
    """Take an existing number ``YYYY.NN`` (a case brought over from before Samflyt): refused when the committee
    of ``community`` has it; the counter moves past it, so the next allocated number follows it."""
    match = re.fullmatch(r"(\d{4})\.(\d{2,4})", str(number).strip())
    if match is None:
        raise MeetingError(_("a case number is written YYYY.NN, not %(number)r", number=number))
    number = match.group(0)
    if session.scalar(select(MeetingCase.id).where(MeetingCase.community == community, MeetingCase.committee ==
                                                    committee, MeetingCase.case_number == number)) is not None:
        raise MeetingError(_("%(committee)s case %(number)s exists already", committee=committee, number=number))
    year, seq = int(match.group(1)), int(match.group(2))
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = CaseCounter.__table__
    statement = insert(table).values(committee=committee, community=community, year=year, last=seq)
    session.execute(statement.on_conflict_do_update(
        index_elements=["committee", "community", "year"],
        set_={"last": sql_case((table.c.last < seq, seq), else_=table.c.last)}))
    return number


def number_key(number: str) -> tuple[int, int]:
    """``2025.100`` after ``2025.99``: numbers sort by year and sequence, not as text."""
    year, _dot, seq = number.partition(".")
    return (int(year), int(seq)) if year.isdigit() and seq.isdigit() else (0, 0)


# -- lookups

def _committee(committee: str) -> str:
    committee = (committee or "SSU").strip().upper()
    if committee not in COMMITTEES:
        raise MeetingError(_("committee must be one of %(committees)s, not %(committee)r",
                             committees=joined(COMMITTEES), committee=committee))
    return committee


def _instance_scope(session: Session, instance_id: int | None) -> str:
    if instance_id is None:
        return ""
    return session.scalar(select(ProcessInstance.scope).where(ProcessInstance.id == instance_id)) or ""


def find_case(session: Session, number: str, community: str = "", committee: str = "SSU",
              instance_id: int | None = None) -> MeetingCase:
    """The case ``number`` of the committee of ``community``; without a community, the one the instance
    ``instance_id`` enqueued, else the only case with that number (an error when communities share it)."""
    query = select(MeetingCase).where(MeetingCase.case_number == str(number).strip(),
                                      MeetingCase.committee == _committee(committee))
    if community:
        case = session.scalar(query.where(MeetingCase.community == community))
        if case is None:
            raise MeetingError(_("no %(committee)s case %(number)s in %(community)s", committee=committee,
                                 number=number, community=community))
        return case
    if instance_id is not None:
        case = session.scalar(query.where(MeetingCase.instance_id == instance_id))
        if case is not None:
            return case
    cases = session.scalars(query).all()
    if not cases:
        raise MeetingError(_("no %(committee)s case %(number)s", committee=committee, number=number))
    if len(cases) > 1:
        raise MeetingError(_("%(committee)s case %(number)s exists in %(count)s communities: say which one",
                             committee=committee, number=number, count=len(cases)))
    return cases[0]


def _meeting(session: Session, meeting_id: int) -> Meeting:
    meeting = session.get(Meeting, int(meeting_id))
    if meeting is None:
        raise MeetingError(_("no meeting %(meeting)s", meeting=meeting_id))
    return meeting


def _attachments(attachments: list | None) -> list[dict]:
    """Attachments as given by a process: document ids (int), uploaded attachment ids (str) or
    ``{"title", "document_id" | "attachment_id"}``; numbered 1.. in the order given."""
    rows = []
    for item in attachments or []:
        if isinstance(item, dict):
            row = {"title": item.get("title") or None, "document_id": item.get("document_id"),
                   "attachment_id": item.get("attachment_id")}
        elif isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
            row = {"title": None, "document_id": int(item), "attachment_id": None}
        elif isinstance(item, str) and item:
            row = {"title": None, "document_id": None, "attachment_id": item}
        else:
            raise MeetingError(_("an attachment is a document id, an attachment id or an object, not %(item)r",
                                 item=item))
        if row["document_id"] is None and not row["attachment_id"]:
            raise MeetingError(_("an attachment needs a document_id or an attachment_id"))
        rows.append(row)
    return rows


# -- cases

def register_case(session: Session, *, committee: str, community: str, case_type: str, title: str,
                  proposed_conclusion: str, background: str = "", attachments: list | None = None,
                  reference: str = "", case_handler: str = "", follows_up: str = "",
                  instance_id: int | None = None, reply_message: str | None = None,
                  now: datetime | None = None, number: str = "") -> MeetingCase:
    """Register a case with the next number of its committee, community and year (or with ``number``, one
    it had before Samflyt: :func:`claim_number`)."""
    committee = _committee(committee)
    if case_type not in CASE_TYPES:
        raise MeetingError(_("case type must be one of %(types)s, not %(type)r", types=joined(CASE_TYPES),
                             type=case_type))
    if not title or not proposed_conclusion:
        raise MeetingError(_("a case needs a title and a proposed conclusion"))
    if case_handler and session.scalar(select(User.id).where(User.username == case_handler)) is None:
        raise MeetingError(_("no user %(user)r to handle the case", user=case_handler))
    earlier = find_case(session, follows_up, community, committee) if follows_up else None
    rows = _attachments(attachments)
    now = now or clock.now()
    number = (claim_number(session, committee, community, number) if number
              else allocate_number(session, committee, community, local_date(now).year))
    case = MeetingCase(community=community, committee=committee, case_number=number, case_type=case_type,
                       title=title, case_handler=case_handler or None, background=background or None,
                       proposed_conclusion=proposed_conclusion, reference=reference or None,
                       follows_up_id=earlier.id if earlier else None, status="registered",
                       instance_id=instance_id, reply_message=reply_message, created_at=now)
    session.add(case)
    session.flush()
    for i, row in enumerate(rows, start=1):
        session.add(CaseAttachment(case_id=case.id, number=i, **row))
    return case


def enqueue_case(case_type: str, title: str, proposed_conclusion: str, background: str = "",
                 attachments: list | None = None, reference: str = "", committee: str = "SSU",
                 community: str = "", case_handler: str = "", follows_up: str = "", *,
                 ctx: StepContext) -> dict:
    """Put a case on the list for the committee's next meeting; returns its number as ``case_id``.

    ``community`` ``""``: the health community of the calling instance (its scope), if it has one.
    The calling instance waits for the conclusion as the message ``<committee>_decision`` (``ssu_decision``)."""
    community = community or _instance_scope(ctx.session, ctx.instance_id)
    committee = _committee(committee)
    case = register_case(ctx.session, committee=committee, community=community, case_type=case_type,
                         title=title, proposed_conclusion=proposed_conclusion, background=background,
                         attachments=attachments, reference=reference, case_handler=case_handler,
                         follows_up=follows_up, instance_id=ctx.instance_id,
                         reply_message=f"{committee.lower()}_decision" if ctx.instance_id else None,
                         now=ctx.now())
    return {"case_id": case.case_number, "case_type": case_type, "title": title, "community": community,
            "committee": committee}


def _conclude(ctx: StepContext, case: MeetingCase, conclusion: str, decisions: list | None) -> dict:
    """Record the conclusion and deliver it to the instance waiting for it (only that instance)."""
    if not conclusion:
        raise MeetingError(_("a conclusion is needed"))
    case.status, case.conclusion, case.decided_at = "decided", conclusion, ctx.now()
    _approve_minutes(ctx.session, case, ctx.now())
    delivered = False
    waiting = case.instance_id is not None and case.instance_id != ctx.instance_id and case.reply_message
    if waiting and ctx.session.scalar(select(MessageWait.id).where(
            MessageWait.instance_id == case.instance_id, MessageWait.message_name == case.reply_message).limit(1)):
        payload = {"case_id": case.case_number, "community": case.community, "committee": case.committee,
                   "conclusion": conclusion, "decisions": list(decisions or [])}
        ctx.send_message(case.reply_message, payload, correlations={"case_id": case.case_number},
                         to=case.instance_id)
        delivered = True
    return {"case_id": case.case_number, "community": case.community, "committee": case.committee,
            "status": case.status, "instance_id": case.instance_id, "delivered": delivered}


def record_conclusion(case_id: str, conclusion: str, community: str = "", committee: str = "SSU",
                      decisions: list | None = None, *, ctx: StepContext) -> dict:
    """Record the conclusion of the meeting (konklusjon i møtet) on a case. Without ``community`` the case is
    the calling instance's own; when another instance waits for it, that instance gets the conclusion."""
    case = find_case(ctx.session, case_id, community, committee, ctx.instance_id)
    return _conclude(ctx, case, conclusion, decisions)


def conclude(number: str, community: str, conclusion: str, committee: str = "SSU", decisions: list | None = None,
             follow_ups: list | None = None, meeting_id: int | None = None, *, ctx: StepContext) -> dict:
    """The secretariat records a case's conclusion: the case (community, committee, number) is decided and
    the process that waits for it gets the conclusion and any structured ``decisions``. Each of
    ``follow_ups`` (``{"description", "responsible_user" | "responsible_role", "due_date"}``) is recorded and
    started as its own ``case_follow_up`` process (the message ``follow_up_assigned``)."""
    if not community:
        raise MeetingError(_("say which health community's case this is"))
    case = find_case(ctx.session, number, community, committee)
    problems = follow_up_problems(ctx.session, case.case_number, follow_ups, community, local_date(ctx.now()))
    if problems:
        raise MeetingError(_("the follow-ups cannot be recorded: %(problems)s", problems="; ".join(problems)))
    result = _conclude(ctx, case, conclusion, decisions)
    result["follow_ups"] = [_assign_follow_up(ctx, case, item, meeting_id) for item in follow_ups or []]
    return result


# -- follow-ups

#: the roles a follow-up can be given to, besides a named user
FOLLOW_UP_ROLES = ("secretariat", "au", "ssu", "fsu", "chair")
FOLLOW_UP_STATUSES = ("open", "late", "done")


def follow_up_problems(session: Session, number: str, follow_ups: list | None, community: str,
                       today: date) -> list[str]:
    """What is wrong with a case's follow-ups, in the secretariat's words (shown in the conclusions form):
    each needs what to do, exactly one of a responsible user (of the health community) or role, and a due
    date that is not in the past."""
    problems = []
    for i, item in enumerate(follow_ups or [], start=1):
        where = f"Sak {number}, oppfølging {i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: er ikke fylt ut")
            continue
        user, role = (item.get("responsible_user") or "").strip(), (item.get("responsible_role") or "").strip()
        if not (item.get("description") or "").strip():
            problems.append(f"{where}: skriv hva som skal gjøres")
        if bool(user) == bool(role):
            problems.append(f"{where}: velg enten en ansvarlig person eller en ansvarlig rolle")
        elif user:
            found = session.scalars(select(User).where(User.username == user)).unique().one_or_none()
            if found is None or not found.active:
                problems.append(f"{where}: finner ingen aktiv bruker «{user}»")
            elif community and community not in found.scope_names:
                problems.append(f"{where}: «{user}» hører ikke til {community}")
        elif role.lower() not in FOLLOW_UP_ROLES:
            problems.append(f"{where}: rollen må være en av {', '.join(FOLLOW_UP_ROLES)}")
        try:
            due = date.fromisoformat(str(item.get("due_date") or ""))
        except ValueError:
            problems.append(f"{where}: fristen må være en dato")
        else:
            if due < today:
                problems.append(f"{where}: fristen {due:%d.%m.%Y} er passert")
    return problems


def check_follow_ups(conclusions: list, community: str, *, ctx: StepContext) -> dict:
    """Check the follow-ups of every case in the conclusions form before any conclusion is recorded; the
    meeting process sends the form back with ``problems`` when there are any."""
    today = local_date(ctx.now())
    problems = []
    for item in conclusions or []:
        if isinstance(item, dict):
            problems += follow_up_problems(ctx.session, str(item.get("case_id", "")), item.get("follow_ups"),
                                           community, today)
    return {"problems": problems, "text": "\n".join(problems)}


def _assign_follow_up(ctx: StepContext, case: MeetingCase, item: dict, meeting_id: int | None) -> int:
    row = CaseFollowUp(case_id=case.id, meeting_id=int(meeting_id) if meeting_id else case.meeting_id,
                       community=case.community, committee=case.committee,
                       description=item["description"].strip(),
                       responsible_user=(item.get("responsible_user") or "").strip() or None,
                       responsible_role=(item.get("responsible_role") or "").strip().lower() or None,
                       due_date=date.fromisoformat(str(item["due_date"])), status="open", created_at=ctx.now())
    ctx.session.add(row)
    ctx.session.flush()
    ctx.send_message("follow_up_assigned", {
        "follow_up_id": row.id, "case_id": case.case_number, "case_title": case.title,
        "community": row.community, "committee": row.committee, "description": row.description,
        "conclusion": case.conclusion or "", "responsible_user": row.responsible_user or "",
        "responsible_role": row.responsible_role or "", "due_date": row.due_date.isoformat()})
    return row.id


def _follow_up(session: Session, follow_up_id: int) -> CaseFollowUp:
    row = session.get(CaseFollowUp, int(follow_up_id))
    if row is None:
        raise MeetingError(_("no follow-up %(id)s", id=follow_up_id))
    return row


def follow_up_started(follow_up_id: int, *, ctx: StepContext) -> dict:
    """The follow-up's own process has started: the row points to it."""
    row = _follow_up(ctx.session, follow_up_id)
    row.instance_id = ctx.instance_id
    ctx.session.flush()
    return {"follow_up_id": row.id, "instance_id": row.instance_id}


def follow_up_late(follow_up_id: int, *, ctx: StepContext) -> dict:
    """The due date passed without an answer: the follow-up is late, and the secretariat of its health
    community is told by mail (the responsible gets the engine's overdue notice)."""
    session = ctx.session
    row = _follow_up(session, follow_up_id)
    if row.status != "open":  # answered, or the secretariat was told already (the task came back once)
        return {"follow_up_id": row.id, "status": row.status, "sent_to": []}
    row.status, row.late_at = "late", ctx.now()
    case = session.get(MeetingCase, row.case_id)
    responsible = row.responsible_user or row.responsible_role or ""
    subject = f"Forsinket oppfølging av sak {case.case_number} i {row.committee}"
    text = (f"Oppfølgingen av sak {case.case_number} «{case.title}» hadde frist {row.due_date:%d.%m.%Y} og er "
            f"ikke besvart.\n\nHva skal gjøres: {row.description}\nAnsvarlig: {responsible}\n")
    users = session.scalars(select(User).order_by(User.username)).unique().all()
    sent_to = []
    for user in users:
        if user.active and user.email and "secretariat" in user.role_names and row.community in user.scope_names:
            enqueue_mail(session, user.email, "notification", {"subject": subject, "text": text},
                         instance_id=ctx.instance_id, task_id=ctx.task_id)
            sent_to.append(user.username)
    session.flush()
    return {"follow_up_id": row.id, "status": row.status, "sent_to": sent_to}


def close_follow_up(follow_up_id: int, comment: str, closed_by: str = "", new_case: dict | None = None, *,
                    ctx: StepContext) -> dict:
    """The responsible's answer closes the follow-up: done with a comment, or with ``new_case``
    (``{"title", "case_type", "proposed_conclusion", "background"}``) registered for a later meeting of the
    same committee, following up the original case."""
    session = ctx.session
    row = _follow_up(session, follow_up_id)
    if row.status == "done":
        raise MeetingError(_("follow-up %(id)s is closed already", id=row.id))
    if not (comment or "").strip():
        raise MeetingError(_("a comment is needed"))
    if new_case:
        original = session.get(MeetingCase, row.case_id)
        case = register_case(session, committee=row.committee, community=row.community,
                             case_type=new_case.get("case_type") or "Beslutning", title=new_case.get("title") or "",
                             proposed_conclusion=new_case.get("proposed_conclusion") or "",
                             background=new_case.get("background") or "", case_handler=closed_by,
                             follows_up=original.case_number, now=ctx.now())
        row.new_case_id = case.id
    row.status, row.comment = "done", comment.strip()
    row.closed_at, row.closed_by = ctx.now(), closed_by or ctx.actor
    session.flush()
    new_number = session.get(MeetingCase, row.new_case_id).case_number if row.new_case_id else ""
    return {"follow_up_id": row.id, "status": row.status, "new_case": new_number}


def follow_up_state(row: CaseFollowUp, today: date) -> str:
    """``late`` also for an open follow-up whose due date has passed before the escalation ran."""
    return "late" if row.status == "open" and row.due_date < today else row.status


def list_follow_ups(session: Session, today: date, communities: list[str] | None = None,
                    committee: str | None = None, status: str | None = None,
                    responsible: str | None = None) -> list[dict]:
    """The follow-ups of ``communities`` (``None``: all), by committee, due date and case number: each with its
    case, what to do, the responsible (a username or a role), the due date and its state (:func:`follow_up_state`).
    ``status`` ``None``: those not done (open and late); ``"all"``: every one."""
    query = select(CaseFollowUp, MeetingCase).join(MeetingCase, MeetingCase.id == CaseFollowUp.case_id)
    if communities is not None:
        query = query.where(CaseFollowUp.community.in_(communities))
    if committee:
        query = query.where(CaseFollowUp.committee == _committee(committee))
    if responsible:
        query = query.where((CaseFollowUp.responsible_user == responsible)
                            | (CaseFollowUp.responsible_role == responsible.lower()))
    new_numbers = dict(session.execute(select(MeetingCase.id, MeetingCase.case_number).where(
        MeetingCase.id.in_(select(CaseFollowUp.new_case_id).where(CaseFollowUp.new_case_id.is_not(None))))).all())
    rows = []
    for row, case in session.execute(query):
        state = follow_up_state(row, today)
        if (status is None and state == "done") or (status not in (None, "all") and state != status):
            continue
        rows.append({"id": row.id, "case_id": case.id, "case": case.case_number, "case_title": case.title,
                     "committee": row.committee, "community": row.community, "description": row.description,
                     "responsible": row.responsible_user or row.responsible_role or "",
                     "responsible_is_role": row.responsible_user is None, "due_date": row.due_date,
                     "status": state, "comment": row.comment or "", "closed_at": row.closed_at,
                     "new_case": new_numbers.get(row.new_case_id, ""), "new_case_id": row.new_case_id,
                     "instance_id": row.instance_id})
    rows.sort(key=lambda r: (r["community"], r["committee"], r["due_date"], number_key(r["case"]), r["id"]))
    return rows


# -- meetings

def schedule(committee: str, starts_at: str, place: str = "", video_link: str = "", community: str = "", *,
             ctx: StepContext) -> dict:
    """Schedule a meeting of the committee of ``community`` (``""``: the calling instance's)."""
    committee = _committee(committee)
    community = community or _instance_scope(ctx.session, ctx.instance_id)
    try:
        when = datetime.fromisoformat(str(starts_at))
    except ValueError:
        raise MeetingError(_("starts_at must be a date and time (ISO 8601), not %(value)r",
                             value=starts_at)) from None
    if when.tzinfo is None:
        when = clock.to_utc(when)  # naive: Norwegian time, as everywhere in Samflyt
    if not place and not video_link:
        raise MeetingError(_("a meeting needs a place or a video link"))
    meeting = Meeting(community=community, committee=committee, starts_at=when, place=place or None,
                      video_link=video_link or None, status="planned", instance_id=ctx.instance_id,
                      created_at=ctx.now())
    ctx.session.add(meeting)
    ctx.session.flush()
    # the standard cases take the meeting's first numbers, before the waiting cases are placed (as in the seed)
    _renumber(_standard_cases(ctx, meeting))
    ctx.session.flush()
    attach_previous_minutes(ctx.session, meeting)  # the previous meeting's minutes, when written by now
    return {"meeting_id": meeting.id, "committee": committee, "community": community,
            "starts_at": when.isoformat()}


def agenda(session: Session, meeting_id: int) -> list[MeetingCase]:
    return list(session.scalars(select(MeetingCase).where(MeetingCase.meeting_id == meeting_id)
                                .order_by(MeetingCase.agenda_position, MeetingCase.id)))


def _renumber(cases: list[MeetingCase]) -> None:
    for position, case in enumerate(cases, start=1):
        case.agenda_position = position


def previous_meeting(session: Session, meeting: Meeting) -> Meeting | None:
    """The meeting of the same committee and community before ``meeting``: the one whose minutes it approves."""
    return session.scalar(select(Meeting).where(
        Meeting.community == meeting.community, Meeting.committee == meeting.committee,
        Meeting.starts_at < meeting.starts_at, Meeting.id != meeting.id).order_by(Meeting.starts_at.desc()).limit(1))


def _standard_cases(ctx: StepContext, meeting: Meeting) -> list[MeetingCase]:
    previous = previous_meeting(ctx.session, meeting)
    cases = []
    for title, proposal in STANDARD_CASES:
        if previous is not None and title.endswith("forrige møte"):
            proposal = f"Referat fra møtet {local_date(previous.starts_at):%d.%m.%y} godkjennes."
        case = register_case(ctx.session, committee=meeting.committee, community=meeting.community,
                             case_type="Beslutning", title=title, proposed_conclusion=proposal,
                             now=ctx.now())
        case.status, case.meeting_id = "on_agenda", meeting.id
        cases.append(case)
    return cases


def add_to_agenda(meeting_id: int, case_id: str, position: int = 0, *, ctx: StepContext) -> dict:
    """Put the case ``case_id`` (a number of the meeting's committee and community) on the meeting's agenda,
    at ``position`` (1..; 0: last). The standard cases open it (see :func:`schedule`)."""
    session = ctx.session
    meeting = _meeting(session, meeting_id)
    if meeting.status != "planned":
        raise MeetingError(_("meeting %(meeting)s has been held: its agenda is closed", meeting=meeting.id))
    case = find_case(session, case_id, meeting.community, meeting.committee)
    if case.community != meeting.community:
        raise MeetingError(_("case %(number)s belongs to %(case_community)s, not to %(meeting_community)s",
                             number=case.case_number, case_community=case.community or "-",
                             meeting_community=meeting.community or "-"))
    if case.status == "decided":
        raise MeetingError(_("case %(number)s is decided", number=case.case_number))
    if case.status == "on_agenda" and case.meeting_id != meeting.id:
        raise MeetingError(_("case %(number)s is on the agenda of meeting %(meeting)s: postpone it first",
                             number=case.case_number, meeting=case.meeting_id))
    cases = [c for c in agenda(session, meeting.id) if c.id != case.id]
    if not cases:  # a meeting scheduled before its standard cases came with the scheduling
        cases = _standard_cases(ctx, meeting)
    attach_previous_minutes(session, meeting)  # minutes written since the meeting was planned
    position = int(position or 0)
    index = len(cases) if position <= 0 or position > len(cases) else position - 1
    cases.insert(index, case)
    case.status, case.meeting_id = "on_agenda", meeting.id
    _renumber(cases)
    session.flush()
    return {"meeting_id": meeting.id, "case_id": case.case_number, "position": case.agenda_position,
            "agenda": [c.case_number for c in cases]}


def postpone(case_id: str, meeting_id: int, to_meeting_id: int = 0, *, ctx: StepContext) -> dict:
    """Take a case off the meeting's agenda: to the later meeting ``to_meeting_id``, or (0) back to the cases
    waiting for a meeting, as ``postponed``."""
    session = ctx.session
    meeting = _meeting(session, meeting_id)
    case = find_case(session, case_id, meeting.community, meeting.committee)
    if case.meeting_id != meeting.id:
        raise MeetingError(_("case %(number)s is not on the agenda of meeting %(meeting)s",
                             number=case.case_number, meeting=meeting.id))
    case.status, case.meeting_id, case.agenda_position = "postponed", None, None
    _renumber([c for c in agenda(session, meeting.id) if c.id != case.id])
    session.flush()
    result = {"case_id": case.case_number, "status": case.status, "meeting_id": None}
    if to_meeting_id:
        later = _meeting(session, to_meeting_id)
        if later.starts_at <= meeting.starts_at:
            raise MeetingError(_("meeting %(later)s is not later than meeting %(meeting)s", later=later.id,
                                 meeting=meeting.id))
        placed = add_to_agenda(later.id, case.case_number, ctx=ctx)
        result |= {"status": "on_agenda", "meeting_id": later.id, "position": placed["position"]}
    return result


# -- reads (the CLI, later the pages)

def list_cases(session: Session, committee: str | None = None, status: str | None = None,
               community: str | None = None) -> list[dict]:
    query = select(MeetingCase)
    if committee:
        query = query.where(MeetingCase.committee == _committee(committee))
    if status:
        if status not in CASE_STATUSES:
            raise MeetingError(_("status must be one of %(statuses)s, not %(status)r",
                                 statuses=joined(CASE_STATUSES), status=status))
        query = query.where(MeetingCase.status == status)
    if community is not None:
        query = query.where(MeetingCase.community == community)
    cases = sorted(session.scalars(query), key=lambda c: (c.community, c.committee, number_key(c.case_number)))
    return [{"number": c.case_number, "committee": c.committee, "community": c.community, "type": c.case_type,
             "title": c.title, "status": c.status, "meeting_id": c.meeting_id, "conclusion": c.conclusion}
            for c in cases]


def list_meetings(session: Session, committee: str | None = None) -> list[dict]:
    query = select(Meeting).order_by(Meeting.starts_at, Meeting.id)
    if committee:
        query = query.where(Meeting.committee == _committee(committee))
    meetings = session.scalars(query).all()
    numbers: dict[int, list[str]] = {m.id: [] for m in meetings}
    if meetings:
        for meeting_id, number in session.execute(
                select(MeetingCase.meeting_id, MeetingCase.case_number)
                .where(MeetingCase.meeting_id.in_(numbers)).order_by(MeetingCase.agenda_position, MeetingCase.id)):
            numbers[meeting_id].append(number)
    return [{"id": m.id, "committee": m.committee, "community": m.community, "starts_at": m.starts_at.isoformat(),
             "place": m.place or m.video_link, "status": m.status, "cases": numbers[m.id]} for m in meetings]


# -- the meeting process

def _label(case: MeetingCase) -> str:
    return f"{case.case_number} {case.title} ({case.case_type})"


def waiting_cases(meeting_id: int, *, ctx: StepContext) -> dict:
    """The cases the secretariat can put on the meeting's agenda, as form choices: those waiting for the
    meeting's committee and community (registered or postponed, on no agenda) and those already on this
    agenda; ``agenda`` is the agenda as it stands (without the two standard cases), in order."""
    session = ctx.session
    meeting = _meeting(session, meeting_id)
    standard = {title for title, _proposal in STANDARD_CASES}
    current = [c for c in agenda(session, meeting.id) if not (c.title in standard and c.instance_id is None
                                                            and c.agenda_position in (1, 2))]
    waiting = sorted(session.scalars(select(MeetingCase).where(
        MeetingCase.community == meeting.community, MeetingCase.committee == meeting.committee,
        MeetingCase.status.in_(("registered", "postponed")), MeetingCase.meeting_id.is_(None))),
        key=lambda c: number_key(c.case_number))
    cases = current + [c for c in waiting if c not in current]
    return {"options": [{"value": c.case_number, "label": _label(c)} for c in cases],
            "agenda": [c.case_number for c in current]}


def _proposed_decisions(session: Session, case: MeetingCase) -> list[dict]:
    """For a grant round's case (reference ``call:<id>:<deadline>``): AU's recommendation per application,
    as the decisions the round expects (the meeting may change them)."""
    kind, _sep, rest = (case.reference or "").partition(":")
    call_id, _sep, deadline = rest.partition(":")
    if kind != "call" or not call_id.isdigit():
        return []
    try:
        day = datetime.fromisoformat(deadline).date()
    except ValueError:
        return []
    rows = session.scalars(select(GrantApplication).where(
        GrantApplication.call_id == int(call_id), GrantApplication.deadline == day,
        GrantApplication.recommended_rank.is_not(None), GrantApplication.status == "registered")
        .order_by(GrantApplication.recommended_rank, GrantApplication.id))
    return [{"application_id": a.id, "granted": bool(a.recommended_amount), "amount": a.recommended_amount or 0,
             "reason": ""} for a in rows]


def agenda_items(meeting_id: int, *, ctx: StepContext) -> list[dict]:
    """The meeting's agenda for the conclusions form: each case with its proposed conclusion as the
    conclusion to confirm or change, and for a grant case the recommended decision per application."""
    session = ctx.session
    return [{"case_id": c.case_number, "title": c.title, "case_type": c.case_type,
             "proposed_conclusion": c.proposed_conclusion, "conclusion": c.conclusion or c.proposed_conclusion,
             "decisions": _proposed_decisions(session, c)}
            for c in agenda(session, _meeting(session, meeting_id).id)]


def _when(value: datetime) -> datetime:
    return value.astimezone(clock.LOCAL_TZ)


#: the committees' names, as the notices and minutes have them
COMMITTEE_NAMES = {"SSU": "Strategisk samarbeidsutvalg (SSU)", "AU": "Arbeidsutvalget (AU)",
                   "FSU": "Faglig samarbeidsutvalg (FSU)"}


def _numbered_attachments(session: Session, cases: list[MeetingCase]) -> list[tuple[MeetingCase, CaseAttachment]]:
    """The agenda's attachments in order, numbered 1.. across the meeting (the list's index + 1)."""
    rows = []
    for case in cases:
        for row in session.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case.id)
                                   .order_by(CaseAttachment.number)):
            rows.append((case, row))
    return rows


def _attachment_title(case: MeetingCase, row: CaseAttachment) -> str:
    return row.title or f"Saksfremlegg: {case.title}"


def _display_names(session: Session, usernames: list[str]) -> dict[str, str]:
    found = session.execute(select(User.username, User.display_name).where(User.username.in_(usernames))) \
        if usernames else []
    return {username: display or username for username, display in found}


def _meeting_context(meeting: Meeting) -> dict:
    when = _when(meeting.starts_at)
    return {"community": meeting.community or "", "committee": meeting.committee,
            "committee_name": COMMITTEE_NAMES.get(meeting.committee, meeting.committee), "date": when.date(),
            "time": f"{when:%H.%M}", "place": meeting.place or "", "video_link": meeting.video_link or ""}


def notice_context(session: Session, meeting: Meeting) -> dict:
    """The context of ``meeting_notice.html``: the meeting, its numbered attachments and its case papers."""
    cases = agenda(session, meeting.id)
    attachments = _numbered_attachments(session, cases)
    handlers = _display_names(session, [c.case_handler for c in cases if c.case_handler])
    earlier = {c.id: c.case_number for c in session.scalars(select(MeetingCase).where(
        MeetingCase.id.in_([c.follows_up_id for c in cases if c.follows_up_id])))} \
        if any(c.follows_up_id for c in cases) else {}
    papers = []
    for case in cases:
        papers.append({
            "number": case.case_number, "title": case.title, "case_type": case.case_type,
            "case_handler": handlers.get(case.case_handler, case.case_handler or ""),
            "attachments": [i for i, (c, _row) in enumerate(attachments, start=1) if c is case],
            "follows_up": earlier.get(case.follows_up_id, ""), "background": case.background or "",
            "proposed_conclusion": case.proposed_conclusion})
    return _meeting_context(meeting) | {
        "attachments": [{"number": i, "title": _attachment_title(case, row), "case_number": case.case_number}
                        for i, (case, row) in enumerate(attachments, start=1)],
        "cases": papers}


def notice_text(session: Session, meeting: Meeting) -> tuple[str, str]:
    """(subject, text) of the notice (innkalling og saksliste), laid out as the secretariat's notices."""
    when = _when(meeting.starts_at)
    subject = f"Innkalling til {meeting.committee} {when:%d.%m.%y}"
    lines = ["Innkalling og saksliste", "", f"Til medlemmene i {meeting.committee} i {meeting.community}", "",
             "Dato og sted", f"• Dato: {when:%d.%m.%y}", f"• Tid: kl. {when:%H.%M}"]
    if meeting.place:
        lines.append(f"• Sted: {meeting.place}")
    if meeting.video_link:
        lines.append(f"• Videolenke: {meeting.video_link}")
    cases = agenda(session, meeting.id)
    attachments = _numbered_attachments(session, cases)
    if attachments:
        lines += ["", "Vedlegg"]
        lines += [f"{i}. {_attachment_title(case, row)} (sak {case.case_number})"
                  for i, (case, row) in enumerate(attachments, start=1)]
    numbers = {id(row): i for i, (_case, row) in enumerate(attachments, start=1)}
    lines += ["", "Saksliste"]
    for case in cases:
        lines += ["", f"Sak {case.case_number} – {case.title}", f"Sakstype: {case.case_type}"]
        if case.case_handler:
            lines.append(f"Saksansvarlig: {case.case_handler}")
        own = [str(numbers[id(row)]) for c, row in attachments if c is case]
        if own:
            lines.append(f"Vedlegg nr: {', '.join(own)}")
        if case.background:
            lines += ["", case.background]
        lines += ["", "Forslag til konklusjon/beslutning:", case.proposed_conclusion]
    return subject, "\n".join(lines) + "\n"


def members(session: Session, committee: str, community: str) -> list[User]:
    """The committee's members in ``community``: the users with the committee's role (``ssu``, ``au``,
    ``fsu``) in one of the community's organisations."""
    role = _committee(committee).lower()
    users = session.scalars(select(User).order_by(User.username)).unique().all()
    return [u for u in users if role in u.role_names and community in u.scope_names]


def send_notice(meeting_id: int, *, ctx: StepContext) -> dict:
    """Mail the notice to the committee's members (the outbox, in the step's transaction) and record when.

    The notice with its case papers is rendered as one PDF (``meeting_notice``), kept as a document of kind
    ``meeting_notice`` (the meeting's ``notice_document_id``) and attached to every member's mail; its id is
    ``document_id``. The documents among the agenda's numbered attachments (the previous meeting's minutes, a
    grant round's recommendation) go with it, after the notice, in their numbered order."""
    from community.documents import render_pdf  # WeasyPrint takes seconds to import: only where PDFs are made

    session = ctx.session
    meeting = _meeting(session, meeting_id)
    recipients = [u for u in members(session, meeting.committee, meeting.community) if u.email]
    if not recipients:
        raise MeetingError(_("%(committee)s in %(community)s has no members with a mail address to send the "
                             "notice to", committee=meeting.committee, community=meeting.community or "-"))
    attach_previous_minutes(session, meeting)  # written after the agenda was set up: still in the notice
    subject, text = notice_text(session, meeting)
    when = _when(meeting.starts_at)
    pdf = render_pdf("meeting_notice", notice_context(session, meeting))
    doc = store_document(ctx, "meeting_notice", f"innkalling-{meeting.committee.lower()}-{when:%Y-%m-%d}.pdf",
                         "application/pdf", pdf)
    files = [(doc.filename, doc.media_type, pdf)] + _attached_documents(session, agenda(session, meeting.id))
    sent_to = []
    for user in recipients:
        enqueue_mail(session, user.email, "notification", {"subject": subject, "text": text},
                     instance_id=ctx.instance_id, task_id=ctx.task_id, attachments=files)
        sent_to.append(user.username)
    meeting.notice_sent_at, meeting.notice_document_id = ctx.now(), doc.id
    session.flush()
    return {"meeting_id": meeting.id, "sent_to": sent_to, "notice_sent_at": meeting.notice_sent_at.isoformat(),
            "subject": subject, "document_id": doc.id}


def mark_held(meeting_id: int, *, ctx: StepContext) -> dict:
    """The meeting has been held: its agenda is closed."""
    meeting = _meeting(ctx.session, meeting_id)
    meeting.status = "held"
    ctx.session.flush()
    return {"meeting_id": meeting.id, "status": meeting.status}


def import_case(number: str, community: str, case_type: str, title: str, proposed_conclusion: str,
                background: str = "", committee: str = "SSU", case_handler: str = "", follows_up: str = "", *,
                ctx: StepContext) -> dict:
    """Register a case under the number it already has (a case from before Samflyt, from the meeting papers),
    waiting for a meeting like any other; later numbers of the committee follow it."""
    if not community:
        raise MeetingError(_("say which health community's case this is"))
    case = register_case(ctx.session, committee=committee, community=community, case_type=case_type, title=title,
                         proposed_conclusion=proposed_conclusion, background=background,
                         case_handler=case_handler, follows_up=follows_up, now=ctx.now(), number=number)
    return {"case_id": case.case_number, "community": case.community, "committee": case.committee}


def _names(session: Session, people: list | None) -> list[str]:
    """Names for the minutes: a username is shown as the user's display name, any other text as given."""
    people = [str(p).strip() for p in people or [] if str(p).strip()]
    names = _display_names(session, people)
    return [names.get(p, p) for p in people]


def minutes_context(session: Session, meeting: Meeting, present: list | None, absent: list | None,
                    guests: list | None = None) -> dict:
    """The context of ``meeting_minutes.html``: the meeting, who was there and each case's conclusion."""
    return _meeting_context(meeting) | {
        "present": _names(session, present), "absent": _names(session, absent),
        "guests": [str(g).strip() for g in guests or [] if str(g).strip()],
        "cases": [{"number": c.case_number, "title": c.title, "case_type": c.case_type,
                   "conclusion": c.conclusion or ""} for c in agenda(session, meeting.id)]}


def write_minutes(meeting_id: int, present: list | None = None, absent: list | None = None,
                  guests: list | None = None, *, ctx: StepContext) -> dict:
    """The minutes (referat) of the meeting as PDF: present, absent (forfall), guests and each case on the
    agenda with its conclusion in the meeting; kept as a document of kind ``meeting_minutes`` and set as the
    meeting's ``minutes_document_id`` (a new version replaces the reference to the earlier one).

    Without ``present``, ``absent`` and ``guests`` the attendance recorded for the meeting is used
    (:func:`record_attendance`), so the minutes say what the meeting page says."""
    from community.documents import render_pdf

    session = ctx.session
    meeting = _meeting(session, meeting_id)
    if any(not isinstance(v, (list, tuple, type(None))) for v in (present, absent, guests)):
        raise MeetingError(_("present and absent are lists of names"))
    if present is None and absent is None and guests is None:
        present, absent, guests = attendance_names(session, meeting.id)
    pdf = render_pdf("meeting_minutes", minutes_context(session, meeting, present, absent, guests))
    when = _when(meeting.starts_at)
    doc = store_document(ctx, "meeting_minutes", f"referat-{meeting.committee.lower()}-{when:%Y-%m-%d}.pdf",
                         "application/pdf", pdf)
    meeting.minutes_document_id = doc.id
    session.flush()
    return {"meeting_id": meeting.id, "document_id": doc.id, "filename": doc.filename}


# -- attendance, minutes and their approval at the next meeting

#: the standard case of the next meeting that approves the minutes
MINUTES_CASE = STANDARD_CASES[1][0]


def attendance(session: Session, meeting_id: int) -> list[MeetingAttendance]:
    return list(session.scalars(select(MeetingAttendance).where(MeetingAttendance.meeting_id == meeting_id)
                                .order_by(MeetingAttendance.position, MeetingAttendance.id)))


def attendance_names(session: Session, meeting_id: int) -> tuple[list[str], list[str], list[str]]:
    """(present members, absent members, guests) of a meeting as recorded, by name."""
    rows = attendance(session, meeting_id)
    return ([r.name for r in rows if r.present and not r.guest], [r.name for r in rows if not r.present],
            [r.name for r in rows if r.guest])


def attendance_choices(meeting_id: int, *, ctx: StepContext) -> dict:
    """What the attendance form offers: the committee's members in the community as ``options``; ``present``
    and ``guests`` as recorded before, or (the first time) every member present and no guests, since most
    come and the secretariat unticks those who sent apologies."""
    session = ctx.session
    meeting = _meeting(session, meeting_id)
    people = members(session, meeting.committee, meeting.community)
    options = [{"value": u.username, "label": u.display_name or u.username} for u in people]
    rows = attendance(session, meeting.id)
    if not rows:
        return {"options": options, "present": [u.username for u in people], "guests": []}
    known = {u.username for u in people}
    return {"options": options, "present": [r.username for r in rows if r.present and r.username in known],
            "guests": [r.name for r in rows if r.guest]}


def record_attendance(meeting_id: int, present: list | None = None, guests: list | None = None, *,
                      ctx: StepContext) -> dict:
    """Record who attended: each member of the committee in the community is present (a username in
    ``present``) or absent; ``guests`` are the other people present, by name. Replaces what was recorded."""
    session = ctx.session
    meeting = _meeting(session, meeting_id)
    if not isinstance(present, (list, tuple, type(None))) or not isinstance(guests, (list, tuple, type(None))):
        raise MeetingError(_("present and guests are lists of names"))
    people = members(session, meeting.committee, meeting.community)
    chosen = {str(p).strip() for p in present or []}
    unknown = sorted(chosen - {u.username for u in people})
    if unknown:
        raise MeetingError(_("%(names)s is not a member of %(committee)s in %(community)s", names=joined(unknown),
                             committee=meeting.committee, community=meeting.community or "-"))
    names = list(dict.fromkeys(str(g).strip() for g in guests or [] if str(g).strip()))
    if any(len(name) > 200 for name in names):
        raise MeetingError(_("a guest's name is at most 200 characters"))
    for row in attendance(session, meeting.id):
        session.delete(row)
    session.flush()
    rows = [MeetingAttendance(meeting_id=meeting.id, username=u.username, name=u.display_name or u.username,
                              present=u.username in chosen, guest=False) for u in people]
    rows += [MeetingAttendance(meeting_id=meeting.id, username=None, name=name, present=True, guest=True)
             for name in names]
    for position, row in enumerate(rows, start=1):
        row.position = position
    session.add_all(rows)
    session.flush()
    present_names, absent_names, guest_names = attendance_names(session, meeting.id)
    return {"meeting_id": meeting.id, "present": present_names, "absent": absent_names, "guests": guest_names}


def minutes_text(meeting: Meeting) -> tuple[str, str]:
    """(subject, text) of the mail the minutes go out with."""
    when = _when(meeting.starts_at)
    subject = f"Referat fra {meeting.committee} {when:%d.%m.%y}"
    text = (f"Referat fra møte i {COMMITTEE_NAMES.get(meeting.committee, meeting.committee)}\n\n"
            f"Til medlemmene i {meeting.committee} i {meeting.community}\n\n"
            f"Vedlagt er referatet fra møtet {when:%d.%m.%y}. Referatet legges frem til godkjenning i neste møte "
            f"(«{MINUTES_CASE}»).\n")
    return subject, text


def send_minutes(meeting_id: int, *, ctx: StepContext) -> dict:
    """Mail the minutes (the PDF :func:`write_minutes` made) to the committee's members and record when."""
    session = ctx.session
    meeting = _meeting(session, meeting_id)
    doc = session.get(Document, meeting.minutes_document_id) if meeting.minutes_document_id else None
    if doc is None:
        raise MeetingError(_("meeting %(meeting)s has no minutes yet", meeting=meeting.id))
    recipients = [u for u in members(session, meeting.committee, meeting.community) if u.email]
    if not recipients:
        raise MeetingError(_("%(committee)s in %(community)s has no members with a mail address to send the "
                             "minutes to", committee=meeting.committee, community=meeting.community or "-"))
    subject, text = minutes_text(meeting)
    for user in recipients:
        enqueue_mail(session, user.email, "notification", {"subject": subject, "text": text},
                     instance_id=ctx.instance_id, task_id=ctx.task_id,
                     attachments=[(doc.filename, doc.media_type, doc.content)])
    meeting.minutes_sent_at = ctx.now()
    session.flush()
    return {"meeting_id": meeting.id, "sent_to": [u.username for u in recipients], "subject": subject,
            "minutes_sent_at": meeting.minutes_sent_at.isoformat(), "document_id": doc.id}


def minutes_case(session: Session, meeting: Meeting) -> MeetingCase | None:
    """The meeting's own case «Godkjenning av referat fra forrige møte» (one of its two standard cases)."""
    return session.scalar(select(MeetingCase).where(
        MeetingCase.meeting_id == meeting.id, MeetingCase.title == MINUTES_CASE, MeetingCase.instance_id.is_(None))
        .order_by(MeetingCase.agenda_position, MeetingCase.id).limit(1))


def attach_previous_minutes(session: Session, meeting: Meeting) -> CaseAttachment | None:
    """Attach the minutes of the previous meeting (same committee and community) to this meeting's case that
    approves them, so they are a numbered attachment of the notice; a newer version of the minutes replaces
    the one attached before. Nothing when there is no such case, no previous meeting or no minutes yet."""
    previous = previous_meeting(session, meeting)
    case = minutes_case(session, meeting)
    if previous is None or previous.minutes_document_id is None or case is None or case.status == "decided":
        return None
    title = f"Referat fra {previous.committee} {local_date(previous.starts_at):%d.%m.%y}"
    rows = session.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case.id)
                           .order_by(CaseAttachment.number)).all()
    documents = [r.document_id for r in rows if r.document_id is not None]
    older = set(session.scalars(select(Document.id).where(Document.id.in_(documents),
                                                          Document.kind == "meeting_minutes"))) if documents else set()
    for row in rows:
        if row.document_id in older:
            row.document_id, row.title = previous.minutes_document_id, title
            return row
    row = CaseAttachment(case_id=case.id, number=max((r.number for r in rows), default=0) + 1, title=title,
                         document_id=previous.minutes_document_id)
    session.add(row)
    session.flush()
    return row


def _approve_minutes(session: Session, case: MeetingCase, now: datetime) -> None:
    """A concluded «Godkjenning av referat fra forrige møte» approves the minutes attached to it: those of the
    committee's earlier meeting in the same community."""
    if case.title != MINUTES_CASE or case.instance_id is not None:
        return
    documents = select(CaseAttachment.document_id).where(CaseAttachment.case_id == case.id,
                                                          CaseAttachment.document_id.is_not(None))
    for meeting in session.scalars(select(Meeting).where(
            Meeting.minutes_document_id.in_(documents), Meeting.community == case.community,
            Meeting.committee == case.committee, Meeting.minutes_approved_at.is_(None))):
        meeting.minutes_approved_in_case_id, meeting.minutes_approved_at = case.id, now


def _attached_documents(session: Session, cases: list[MeetingCase]) -> list[tuple[str, str, bytes]]:
    """The documents among the agenda's attachments (such as the previous minutes), as mail attachments."""
    ids = [row.document_id for _case, row in _numbered_attachments(session, cases) if row.document_id is not None]
    found = {d.id: d for d in session.scalars(select(Document).where(Document.id.in_(ids)))} if ids else {}
    return [(found[i].filename, found[i].media_type, found[i].content) for i in ids if i in found]


def register(registry) -> None:
    registry.register("meetings.enqueue_case", enqueue_case)
    registry.register("meetings.import_case", import_case)
    registry.register("meetings.record_conclusion", record_conclusion)
    registry.register("meetings.conclude", conclude)
    registry.register("meetings.schedule", schedule)
    registry.register("meetings.add_to_agenda", add_to_agenda)
    registry.register("meetings.postpone", postpone)
    registry.register("meetings.waiting_cases", waiting_cases)
    registry.register("meetings.agenda_items", agenda_items)
    registry.register("meetings.send_notice", send_notice)
    registry.register("meetings.mark_held", mark_held)
    registry.register("meetings.write_minutes", write_minutes)
    registry.register("meetings.attendance_choices", attendance_choices)
    registry.register("meetings.record_attendance", record_attendance)
    registry.register("meetings.send_minutes", send_minutes)
    registry.register("meetings.check_follow_ups", check_follow_ups)
    registry.register("meetings.follow_up_started", follow_up_started)
    registry.register("meetings.follow_up_late", follow_up_late)
    registry.register("meetings.close_follow_up", close_follow_up)
