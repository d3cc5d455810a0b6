"""My applications (Mine søknader): each of an applicant's applications, its status in plain words, its decision.

An applicant meets the grant as the cases they started (``grant_application``): where each one stands --
still a draft, waiting for a partner's signature, under assessment, granted with its amount, rejected -- is
read from the case's open tasks before it is sent, and from the application record after
(:class:`community.records.GrantApplication`). Only the reader's own cases are listed: what another
applicant applied for is theirs until the list of received applications is made public.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, render_template
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.records import Document, GrantApplication, GrantCall
from engine.formats import format_kroner
from engine.models import HumanTask, ProcessInstance
from web.auth import runtime
from web.formatting import joined

from .documents import kind_words

bp = Blueprint("applications", __name__, url_prefix="/applications", template_folder="templates")
APPLICATION_PROCESS = "grant_application"
#: the documents an applicant is sent about their application, as the case page and this page offer them
LETTERS = ("award_letter", "rejection_letter")


def shown_to(user: Any) -> bool:
    """The menu entry is for applicants, who apply; anyone else has no applications of their own."""
    return "applicant" in user.roles


def status_words(instance: ProcessInstance, record: GrantApplication | None, open_tasks: list[HumanTask]) -> str:
    """Where an application stands, as its applicant would say it."""
    if instance.status == "cancelled":
        return _("Cancelled")
    if record is None:  # not sent yet: the case's open tasks tell how far it has come
        waiting_for = [str(o) for t in open_tasks if t.spec_name == "cosign_application"
                       for o in json.loads(t.restrictions or "{}").get("organisations", [])]
        if waiting_for:
            return _("Waiting for signature from %(organisations)s", organisations=joined(waiting_for))
        if any(t.spec_name == "submit_application" for t in open_tasks):
            return _("Signed: ready to send")
        if instance.status == "completed":
            return _("Not sent")
        return _("Draft: not sent yet")
    if record.status in ("submitted", "registered"):
        return _("Under assessment")
    if record.status == "returned":
        return _("Returned to you to be completed")
    if record.granted and record.amount_granted is not None:
        if record.status == "completed":
            return _("Granted %(amount)s; the project is completed", amount=format_kroner(record.amount_granted))
        return _("Granted %(amount)s", amount=format_kroner(record.amount_granted))
    words = {"rejected": _("Rejected"), "refused_late": _("Refused: sent after the deadline"),
             "withdrawn": _("Withdrawn"), "completed": _("Completed")}
    return words.get(record.status, record.status)


def applications_of(session: Session, username: str) -> list[dict[str, Any]]:
    """The applications ``username`` started, newest first, with status, decision and letters."""
    instances = session.scalars(select(ProcessInstance).where(
        ProcessInstance.process_id == APPLICATION_PROCESS, ProcessInstance.started_by == username)
        .order_by(ProcessInstance.started_at.desc(), ProcessInstance.id.desc())).all()
    ids = [i.id for i in instances]
    records = {r.instance_id: r for r in session.scalars(
        select(GrantApplication).where(GrantApplication.instance_id.in_(ids)))} if ids else {}
    tasks: dict[int, list[HumanTask]] = {}
    for task in session.scalars(select(HumanTask).where(HumanTask.instance_id.in_(ids),
                                                        HumanTask.status == "open")) if ids else []:
        tasks.setdefault(task.instance_id, []).append(task)
    letters: dict[int, list[Document]] = {}
    for doc in session.scalars(select(Document).where(Document.instance_id.in_(ids), Document.kind.in_(LETTERS))
                               .order_by(Document.id)) if ids else []:
        letters.setdefault(doc.instance_id, []).append(doc)
    out = []
    for instance in instances:
        record = records.get(instance.id)
        data = json.loads(instance.data or "{}")
        call = session.get(GrantCall, data["call_id"]) if isinstance(data.get("call_id"), int) else None
        out.append({"instance_id": instance.id, "title": instance.title or data.get("title") or "",
                    "call": call.title if call else "", "status": status_words(instance, record,
                                                                          tasks.get(instance.id, [])),
                    "record": record, "letters": letters.get(instance.id, [])})
    return out


@bp.get("", endpoint="mine")
@login_required
def mine():
    with runtime().Session() as s:
        return render_template("applications/mine.html", applications=applications_of(s, current_user.username),
                               letter_words=kind_words())
