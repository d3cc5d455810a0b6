"""The committees' meetings and cases as the secretariat, AU and SSU read them: the meeting list, a meeting
with its agenda (and an iCalendar file to put it in Outlook), the case register with its search, and a
case with its history. A meeting's page also has its notice and minutes as PDF, who attended and whether the
minutes were sent and approved. Read-only: cases and meetings are made by processes and connectors
(:mod:`community.connectors.meetings`). Each reader sees their own health community's; admins all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select

from community.connectors.meetings import (
    CASE_STATUSES,
    COMMITTEES,
    FOLLOW_UP_STATUSES,
    agenda,
    attendance,
    list_follow_ups,
    number_key,
)
from community.records import CaseAttachment, Document, Meeting, MeetingCase
from engine import clock
from engine.calendar import local_date
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
        people = attendance(s, meeting_id)
        approved_in = s.get(MeetingCase, found.minutes_approved_in_case_id) \
            if found.minutes_approved_in_case_id else None
    return render_template("meetings/meeting.html", meeting=found, cases=cases, approved_in=approved_in,
                           present=[p for p in people if p.present and not p.guest],
                           absent=[p for p in people if not p.present], guests=[p for p in people if p.guest])


@bp.get("/meetings/<int:meeting_id>/notice.pdf")
def notice_pdf(meeting_id: int):
    """The notice (innkalling) with its case papers, as mailed to the members."""
    return _pdf(meeting_id, "notice")


@bp.get("/meetings/<int:meeting_id>/minutes.pdf")
def minutes_pdf(meeting_id: int):
    """The minutes (referat), as written last."""
    return _pdf(meeting_id, "minutes")


def _pdf(meeting_id: int, which: str):
    """A meeting's PDF for whoever may read the meeting; a page saying it is not there yet (404) before."""
    with runtime().Session() as s:
        found = _meeting(s, meeting_id)
        document_id = found.notice_document_id if which == "notice" else found.minutes_document_id
        doc = s.get(Document, document_id) if document_id else None
        if doc is None:
            return render_template("meetings/no_document.html", meeting=found, which=which), 404
        filename, media_type, content = doc.filename, doc.media_type, doc.content
    return Response(content, mimetype=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store"})


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
        follow_ups = [f for f in list_follow_ups(s, local_date(clock.now()), [found.community], status="all")
                      if f["case_id"] == case_id]
        handler = s.scalar(select(User.display_name).where(User.username == found.case_handler)) \
            if found.case_handler else None
    return render_template("meetings/case.html", case=found, attachments=attachments, earlier=earlier,
                           later=later, meeting=held_in, follow_ups=follow_ups,
                           handler=handler or found.case_handler)


def _follow_up_filters() -> dict:
    """The register's filters from the query string; a value outside the choices is a 400, not an empty list."""
    committee = request.args.get("committee") or None
    status = request.args.get("status") or None
    responsible = (request.args.get("responsible") or "").strip()[:100] or None
    if (committee and committee not in COMMITTEES) or (status and status not in (*FOLLOW_UP_STATUSES, "all")):
        abort(400)
    return {"committee": committee, "status": status, "responsible": responsible}


def _follow_up_rows(filters: dict) -> list[dict]:
    with runtime().Session() as s:
        communities = None if current_user.is_admin else sorted(current_user.scopes)
        rows = list_follow_ups(s, local_date(clock.now()), communities, **filters)
    return rows


@bp.get("/follow-ups")
def follow_ups():
    """The follow-ups of the reader's health communities, per committee: by default those not done (open and
    late), else as the filters say (committee, status, responsible user or role)."""
    filters = _follow_up_filters()
    rows = _follow_up_rows(filters)
    by_committee: dict[str, list[dict]] = {}
    for row in rows:
        by_committee.setdefault(row["committee"], []).append(row)
    return render_template("meetings/follow_ups.html", groups=by_committee, committees=COMMITTEES,
                           statuses=FOLLOW_UP_STATUSES, **filters)


@bp.get("/follow-ups.csv")
def follow_ups_csv():
    """The register as the page filters it, as CSV for Excel (:func:`community.documents.export_rows_csv`)."""
    from flask_babel import gettext

    from community.documents import export_rows_csv  # WeasyPrint takes seconds to import: only when asked

    from .codes import groups

    rows = _follow_up_rows(_follow_up_filters())
    words = groups()["follow_up_status"]
    columns = [("case", gettext("Case")), ("committee", gettext("Committee")), ("community", gettext("Community")),
               ("case_title", gettext("Title")), ("description", gettext("What is to be done")),
               ("responsible", gettext("Responsible")), ("due_date", gettext("Due date")),
               ("status", gettext("Status")), ("comment", gettext("Comment")), ("new_case", gettext("New case"))]
    body = export_rows_csv([r | {"status": words.get(r["status"], r["status"])} for r in rows], columns)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="oppfolging-{local_date(clock.now()):%Y-%m-%d}.csv"'})
