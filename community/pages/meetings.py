"""The committees' meetings and cases as the secretariat, AU and SSU read them: the meeting list, a meeting
with its agenda (and an iCalendar file to put it in Outlook), the case register with its search, and a
case with its history. Read-only: cases and meetings are made by processes and connectors
(:mod:`community.connectors.meetings`). Each reader sees their own health community's; admins all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select

from community.connectors.meetings import CASE_STATUSES, COMMITTEES, agenda, number_key
from community.records import CaseAttachment, Meeting, MeetingCase
from engine.models import User
from web.auth import runtime

from .grants import READERS

bp = Blueprint("meetings", __name__, template_folder="templates")
#: who may register a case (``/cases/new``): the secretariat, AU (who prepare the committees' matters), admins
REGISTRARS = {"secretariat", "au", "admin"}
#: how long a meeting lasts in the calendar file when nothing says otherwise
MEETING_LENGTH = timedelta(hours=3)


@bp.before_request
@login_required
def readers_only():
    if not current_user.roles & READERS:
        abort(403)


def _own(query, column):
    """``query`` narrowed to the reader's own health communities (admins: all)."""
    return query if current_user.is_admin else query.where(column.in_(sorted(current_user.scopes)))


def _readable(community: str) -> None:
    if not current_user.is_admin and community not in current_user.scopes:
        abort(403)


@bp.get("/meetings")
def meetings():
    committee = request.args.get("committee") or None
    if committee is not None and committee not in COMMITTEES:
        abort(404)
    with runtime().Session() as s:
        query = _own(select(Meeting), Meeting.community).order_by(Meeting.starts_at.desc(), Meeting.id)
        if committee:
            query = query.where(Meeting.committee == committee)
        rows = s.scalars(query).all()
        counts = dict(s.execute(select(MeetingCase.meeting_id, func.count()).where(
            MeetingCase.meeting_id.in_([m.id for m in rows])).group_by(MeetingCase.meeting_id)).all()) if rows else {}
    return render_template("meetings/meetings.html", meetings=rows, counts=counts, committee=committee,
                           committees=COMMITTEES)


def _meeting(s, meeting_id: int) -> Meeting:
    meeting = s.get(Meeting, meeting_id)
    if meeting is None:
        abort(404)
    _readable(meeting.community)
    return meeting


@bp.get("/meetings/<int:meeting_id>")
def meeting(meeting_id: int):
    with runtime().Session() as s:
        found = _meeting(s, meeting_id)
        cases = agenda(s, meeting_id)
    return render_template("meetings/meeting.html", meeting=found, cases=cases)


@bp.get("/meetings/<int:meeting_id>/calendar.ics")
def calendar(meeting_id: int):
    """The meeting as an iCalendar event (RFC 5545), for members to add to their calendars."""
    with runtime().Session() as s:
        found = _meeting(s, meeting_id)
        cases = agenda(s, meeting_id)
    body = ical(found, [f"{c.case_number} {c.title}" for c in cases], request.host)
    return Response(body, mimetype="text/calendar", headers={
        "Content-Disposition": f'attachment; filename="{found.committee.lower()}-{found.starts_at:%Y-%m-%d}.ics"'})


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Lines of at most 75 octets, continued with a space (RFC 5545 3.1)."""
    out, current = [], ""
    for char in line:
        if len((current + char).encode("utf-8")) > 75:
            out.append(current)
            current = " " + char
        else:
            current += char
    out.append(current)
    return "\r\n".join(out)


def ical(meeting: Meeting, agenda_lines: list[str], host: str) -> str:
    """One VEVENT: start, an end ``MEETING_LENGTH`` later, the place or video link, the agenda as text."""
    start = meeting.starts_at.astimezone(UTC)
    where = meeting.place or meeting.video_link or ""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Samflyt//meetings//NB", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", "BEGIN:VEVENT", f"UID:meeting-{meeting.id}@{host}",
             f"DTSTAMP:{datetime.now(UTC):%Y%m%dT%H%M%SZ}", f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
             f"DTEND:{start + MEETING_LENGTH:%Y%m%dT%H%M%SZ}",
             "SUMMARY:" + _escape(f"{meeting.committee} {meeting.community}".strip()),
             "LOCATION:" + _escape(where), "DESCRIPTION:" + _escape("\n".join(agenda_lines))]
    if meeting.video_link:
        lines.append("URL:" + meeting.video_link)
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"


@bp.get("/cases")
def cases():
    """The case register: search by number or title, narrow by committee, type and status; ``waiting``:
    the cases that wait for a meeting (registered or postponed, not on an agenda)."""
    q = (request.args.get("q") or "").strip()[:200]
    committee = request.args.get("committee") or None
    status = request.args.get("status") or None
    waiting = request.args.get("waiting") == "1"
    if (committee and committee not in COMMITTEES) or (status and status not in CASE_STATUSES):
        abort(404)
    with runtime().Session() as s:
        query = _own(select(MeetingCase), MeetingCase.community)
        if committee:
            query = query.where(MeetingCase.committee == committee)
        if status:
            query = query.where(MeetingCase.status == status)
        if waiting:
            query = query.where(MeetingCase.status.in_(("registered", "postponed")))
        if q:
            like = f"%{q}%"
            query = query.where(or_(MeetingCase.case_number.ilike(like), MeetingCase.title.ilike(like),
                                    MeetingCase.case_type.ilike(like)))
        rows = sorted(s.scalars(query), key=lambda c: (number_key(c.case_number), c.committee), reverse=True)
    return render_template("meetings/cases.html", cases=rows, q=q, committee=committee, status=status,
                           waiting=waiting, committees=COMMITTEES, statuses=CASE_STATUSES,
                           may_register=bool(current_user.roles & REGISTRARS))


@bp.get("/cases/<int:case_id>")
def case(case_id: int):
    with runtime().Session() as s:
        found = s.get(MeetingCase, case_id)
        if found is None:
            abort(404)
        _readable(found.community)
        attachments = s.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case_id)
                                .order_by(CaseAttachment.number)).all()
        earlier = s.get(MeetingCase, found.follows_up_id) if found.follows_up_id else None
        later = s.scalars(select(MeetingCase).where(MeetingCase.follows_up_id == case_id)
                          .order_by(MeetingCase.id)).all()
        held_in = s.get(Meeting, found.meeting_id) if found.meeting_id else None
        handler = s.scalar(select(User.display_name).where(User.username == found.case_handler)) \
            if found.case_handler else None
    return render_template("meetings/case.html", case=found, attachments=attachments, earlier=earlier,
                           later=later, meeting=held_in, handler=handler or found.case_handler)
