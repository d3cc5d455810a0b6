"""Registering a case from the UI (``/cases/new``), downloading a case's attachments, and the committees'
meetings as a month calendar (``/meetings/calendar``).

Cases mostly come from processes (``meetings.enqueue_case``); the secretariat and AU also bring their own
matters to a committee. The form checks each field and ties its error to it, stores the files with the
engine's attachment store (its size and type limits, its scanners) and registers the case with
:func:`community.connectors.meetings.register_case`, so a case from a person is numbered, stored and
listed exactly like one from a process. Admins choose the health community; others register in their own.
"""

from __future__ import annotations

import calendar as month_calendar
import json
from datetime import date, datetime, time, timedelta
from urllib.parse import quote

from babel.dates import get_day_names
from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.connectors.meetings import CASE_TYPES, COMMITTEES, MeetingError, register_case
from community.records import CaseAttachment, Document, Meeting, MeetingCase
from engine import attachments, clock
from engine.errors import NotFoundError
from engine.models import AuditEvent, Organisation, User
from web.auth import runtime
from web.i18n import translate

from .meetings import REGISTRARS, _own, _readable, bp

#: at most this many files on one case; each file within the engine's attachment limits
MAX_FILES = 20
TITLE_LENGTH = 300  # the column's length
TEXT_LENGTH = 20_000


def _may_register() -> bool:
    return bool(current_user.roles & REGISTRARS)


def _communities(s: Session) -> list[str]:
    """The communities the user registers cases in: their own, or for admins every community."""
    if current_user.is_admin:
        return sorted(set(s.scalars(select(Organisation.scope).where(Organisation.scope.is_not(None)))))
    return sorted(current_user.scopes)


def _handlers(s: Session, communities: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Per community, its users as (username, name): who can handle a case there."""
    users = s.scalars(select(User).where(User.active.is_(True)).order_by(User.display_name, User.username)).unique()
    found: dict[str, list[tuple[str, str]]] = {c: [] for c in communities}
    for user in users:
        for community in user.scope_names & set(communities):
            found[community].append((user.username, user.display_name or user.username))
    return found


@bp.route("/cases/new", methods=["GET", "POST"])
def new_case():
    """The form to register a case, and its submission."""
    if not _may_register():
        abort(403)
    rt = runtime()
    with rt.Session() as s:
        communities = _communities(s)
        handlers = _handlers(s, communities)
    values = {"committee": "SSU", "case_type": "", "community": communities[0] if len(communities) == 1 else ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {name: (request.form.get(name) or "").strip() for name in (
            "committee", "community", "case_type", "title", "case_handler", "background", "proposed_conclusion",
            "follows_up")}
        if len(communities) == 1:
            values["community"] = communities[0]
        uploads = [f for f in request.files.getlist("attachments") if f and f.filename]
        errors = _check(values, communities, handlers, uploads)
        if not errors:
            case_id, errors = _register(values, uploads)
            if case_id is not None:
                flash(_("Case registered."))
                return redirect(url_for("meetings.case", case_id=case_id))
    labels = _labels()
    summary = [(name, labels[name], text) for name, text in errors.items()]
    status = 422 if errors else 200
    return render_template("meetings/new_case.html", values=values, errors=errors, summary=summary,
                           labels=labels, communities=communities, handlers=handlers, committees=COMMITTEES,
                           case_types=CASE_TYPES, max_files=MAX_FILES), status


def _labels() -> dict[str, str]:
    return {"committee": _("Committee"), "community": _("Community"), "case_type": _("Type"),
            "title": _("Title"), "case_handler": _("Case handler"), "background": _("Background"),
            "proposed_conclusion": _("Proposed conclusion"), "follows_up": _("Follow-up of case"),
            "attachments": _("Attachments")}


def _check(values: dict[str, str], communities: list[str], handlers: dict, uploads: list) -> dict[str, str]:
    """Each field's error, in the order of the form (an empty dict: the case can be registered)."""
    errors: dict[str, str] = {}
    if values["committee"] not in COMMITTEES:
        errors["committee"] = _("Choose a committee.")
    if not communities:
        errors["community"] = _("You belong to no health community: an administrator must place you in one.")
    elif values["community"] not in communities:
        errors["community"] = _("Choose a health community.")
    if values["case_type"] not in CASE_TYPES:
        errors["case_type"] = _("Choose a type of case.")
    if not values["title"]:
        errors["title"] = _("Write a title.")
    elif len(values["title"]) > TITLE_LENGTH:
        errors["title"] = _("The title can be at most %(n)s characters.", n=TITLE_LENGTH)
    if values["case_handler"] and values["case_handler"] not in {
            u for u, _name in handlers.get(values["community"], [])}:
        errors["case_handler"] = _("Choose a case handler from the health community.")
    if len(values["background"]) > TEXT_LENGTH:
        errors["background"] = _("The text can be at most %(n)s characters.", n=TEXT_LENGTH)
    if not values["proposed_conclusion"]:
        errors["proposed_conclusion"] = _("Write the proposed conclusion.")
    elif len(values["proposed_conclusion"]) > TEXT_LENGTH:
        errors["proposed_conclusion"] = _("The text can be at most %(n)s characters.", n=TEXT_LENGTH)
    if values["follows_up"] and "community" not in errors and "committee" not in errors:
        with runtime().Session() as s:
            earlier = s.scalar(select(MeetingCase.id).where(
                MeetingCase.community == values["community"], MeetingCase.committee == values["committee"],
                MeetingCase.case_number == values["follows_up"]))
        if earlier is None:
            errors["follows_up"] = _("%(committee)s in %(community)s has no case %(number)s (written YYYY.NN).",
                                     committee=values["committee"], community=values["community"],
                                     number=values["follows_up"])
    if len(uploads) > MAX_FILES:
        errors["attachments"] = _("At most %(n)s files.", n=MAX_FILES)
    if errors and uploads and "attachments" not in errors:
        errors["attachments"] = _("Choose the files again: they are not kept while the form has errors.")
    return errors


def _register(values: dict[str, str], uploads: list) -> tuple[int | None, dict[str, str]]:
    """Store the files and register the case in one transaction; a refused file or case is a field error."""
    rt = runtime()
    try:
        with rt.session() as s:
            rows = []
            for upload in uploads:
                stored = attachments.store(s, upload.read(), upload.filename, current_user.username)
                rows.append({"title": stored.filename, "attachment_id": stored.id})
            case = register_case(s, committee=values["committee"], community=values["community"],
                                 case_type=values["case_type"], title=values["title"],
                                 proposed_conclusion=values["proposed_conclusion"], background=values["background"],
                                 attachments=rows, case_handler=values["case_handler"],
                                 follows_up=values["follows_up"])
            s.add(AuditEvent(at=clock.now(), actor=current_user.username, action="case_registered",
                             details=json.dumps({"case_id": case.id, "number": case.case_number,
                                                 "committee": case.committee, "community": case.community,
                                                 "attachments": len(rows)}, ensure_ascii=False)))
            s.flush()
            return case.id, {}
    except attachments.AttachmentError as exc:
        return None, {"attachments": translate(exc.text)}
    except MeetingError as exc:  # checked above; a case changed meanwhile (a follow-up of a removed case)
        return None, {"follows_up" if values["follows_up"] else "title": translate(exc.text)}


@bp.get("/cases/<int:case_id>/attachments/<int:number>")
def case_attachment(case_id: int, number: int):
    """Attachment ``number`` of a case, for whoever may read the case."""
    with runtime().Session() as s:
        found = s.get(MeetingCase, case_id)
        if found is None:
            abort(404)
        _readable(found.community)
        row = s.get(CaseAttachment, (case_id, number))
        if row is None:
            abort(404)
        if row.attachment_id:
            try:
                stored, content = attachments.load(s, row.attachment_id)
            except NotFoundError:
                abort(404)
            filename, media_type = stored.filename, stored.media_type
        else:
            doc = s.get(Document, row.document_id) if row.document_id is not None else None
            if doc is None:
                abort(404)
            filename, media_type, content = doc.filename, doc.media_type, doc.content
    return Response(content, mimetype=media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


# -- the month calendar

def _month(value: str | None) -> date:
    """``YYYY-MM`` as the month's first day; without one, the current month."""
    if value:
        try:
            parsed = datetime.strptime(value, "%Y-%m").date()
        except ValueError:
            abort(404)
        if not 1900 <= parsed.year <= 2200:
            abort(404)
        return parsed
    return clock.now().astimezone(clock.LOCAL_TZ).date().replace(day=1)


@bp.get("/meetings/calendar")
def month():
    """The committees' meetings in a month grid (weeks from Monday), with the previous and next month."""
    committee = request.args.get("committee") or None
    if committee is not None and committee not in COMMITTEES:
        abort(404)
    first = _month(request.args.get("month"))
    last_day = month_calendar.monthrange(first.year, first.month)[1]
    start = clock.to_utc(datetime.combine(first, time.min))
    end = clock.to_utc(datetime.combine(first.replace(day=last_day), time.max))
    with runtime().Session() as s:
        query = _own(select(Meeting), Meeting.community).where(Meeting.starts_at >= start, Meeting.starts_at <= end)
        if committee:
            query = query.where(Meeting.committee == committee)
        rows = s.scalars(query.order_by(Meeting.starts_at, Meeting.id)).all()
    by_day: dict[int, list[Meeting]] = {}
    for meeting in rows:
        by_day.setdefault(meeting.starts_at.astimezone(clock.LOCAL_TZ).day, []).append(meeting)
    weeks = month_calendar.Calendar(firstweekday=0).monthdayscalendar(first.year, first.month)
    previous = (first - timedelta(days=1)).replace(day=1)
    following = first.replace(day=last_day) + timedelta(days=1)
    locale = get_locale()
    days = get_day_names("wide", locale=locale)
    short = get_day_names("abbreviated", locale=locale)
    return render_template("meetings/calendar.html", first=first, weeks=weeks, by_day=by_day, committee=committee,
                           committees=COMMITTEES, previous=previous, following=following,
                           weekdays=[(days[i], short[i]) for i in range(7)],
                           month_name=format_date(first, "LLLL y"), previous_name=format_date(previous, "LLLL y"),
                           following_name=format_date(following, "LLLL y"),
                           today=clock.now().astimezone(clock.LOCAL_TZ).date())
