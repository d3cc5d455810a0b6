"""Instance pages: status, business key, data summary, the steps done and open (diagram and text list),
the audit timeline, open tasks and waiting timers."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort, render_template
from flask_login import current_user, login_required
from sqlalchemy import or_, select

from engine import attachments
from engine.authz import SUPERVISOR_ROLES
from engine.errors import NotFoundError
from engine.models import HumanTask

from .auth import runtime

bp = Blueprint("instances", __name__, url_prefix="/instances")


def may_view(instance_id: int, started_by: str | None) -> bool:
    """Who started it, anyone who has or had one of its tasks, AU and admins."""
    if current_user.is_admin or current_user.roles & SUPERVISOR_ROLES or current_user.username == started_by:
        return True
    with runtime().Session() as s:
        return s.scalar(select(HumanTask.id).where(HumanTask.instance_id == instance_id, or_(
            HumanTask.claimed_by == current_user.username,
            HumanTask.completed_by == current_user.username)).limit(1)) is not None


@bp.get("/<int:instance_id>")
@login_required
def instance(instance_id: int):
    rt = runtime()
    try:
        view = rt.instance(instance_id)
    except NotFoundError:
        abort(404)
    if not may_view(instance_id, view.started_by):
        abort(403)
    done = rt.completed_task_element_ids(instance_id)
    current = sorted({t.name for t in view.tasks} | {t["task"] for t in view.timers})
    audit = list(reversed(rt.audit(instance_id)))
    summary = {k: v for k, v in view.data.items() if isinstance(v, str | int | float | bool) and not k.startswith("_")}
    return render_template("instance.html", instance=view, done=done, current=current, audit=audit,
                           summary=summary)


@bp.get("/<int:instance_id>/diagram.bpmn")
@login_required
def diagram(instance_id: int):
    rt = runtime()
    try:
        view = rt.instance(instance_id)
        xml = rt.diagram(instance_id)
    except NotFoundError:
        abort(404)
    if not may_view(instance_id, view.started_by):
        abort(403)
    return Response(xml, mimetype="application/xml")


@bp.get("/attachments/<attachment_id>")
@login_required
def attachment(attachment_id: str):
    """An uploaded file, for whoever may see the instance it belongs to."""
    rt = runtime()
    with rt.Session() as s:
        try:
            row, content = attachments.load(s, attachment_id)
        except NotFoundError:
            abort(404)
    started_by = rt.instance(row.instance_id).started_by if row.instance_id else None
    visible = row.instance_id is not None and may_view(row.instance_id, started_by)
    if not visible and row.uploaded_by != current_user.username:
        abort(403)
    return Response(content, mimetype=row.media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.filename)}"})
