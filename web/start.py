"""The start page: the processes a person may start, and a start form for each.

Which processes are listed, and who may start them, is the diagram's decision (the start event's
``samflyt.starterRoles``, see :func:`engine.authz.may_start`); what a start needs to know (which call an
application answers) is the start event's form, validated by the engine. The view only renders and
posts, and every start goes through :meth:`engine.runtime.Runtime.start_as`, which checks and audits it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.errors import NotAuthorisedError, NotFoundError, ValidationError

from . import select_locale
from .auth import runtime
from .form_fields import build_fields, error_summary, parse_form
from .i18n import translate_all

bp = Blueprint("start", __name__, url_prefix="/start")


def _startable() -> list[dict[str, Any]]:
    return runtime().startable(current_user.username)


@bp.get("", endpoint="overview")
@login_required
def overview():
    return render_template("start.html", processes=_startable())


def _entry(process_id: str) -> dict[str, Any]:
    """The process as the start page offers it; 403 when it is not the user's to start, 404 when unknown."""
    entry = next((p for p in _startable() if p["process_id"] == process_id), None)
    if entry is None:
        if process_id not in {m["process_id"] for m in runtime().models()}:
            abort(404)
        abort(403)
    return entry


def _render(entry: dict[str, Any], values: dict[str, Any], errors: dict[str, Any] | None = None,
            status: int = 200):
    form = entry["form"]
    language = select_locale()
    texts = entry["form_texts"](form.key, language) if form and language != "nb" else None
    fields = build_fields(form.json_schema, form.ui_schema, values, errors, texts=texts) if form else []
    return render_template("start_form.html", process=entry, fields=fields, summary=error_summary(fields),
                           form_title=(texts or {}).get("title") or (form.json_schema.get("title") if form else None),
                           description=form.json_schema.get("description") if form else None), status


@bp.get("/<process_id>")
@login_required
def form(process_id: str):
    """The start form, prefilled from the query string (``/start/grant_application?call_id=7``), so a page
    or an announcement can link to a start with the choice already made; the engine validates it on post."""
    entry = _entry(process_id)
    form = entry["form"]
    return _render(entry, parse_form(form.json_schema, request.args) if form else {})


@bp.post("/<process_id>")
@login_required
def start(process_id: str):
    """Start the latest version; the starter goes straight to their first task when there is one."""
    entry = _entry(process_id)
    form = entry["form"]
    values = parse_form(form.json_schema, request.form) if form else {}
    rt = runtime()
    try:
        instance_id = rt.start_as(process_id, current_user.username, values)
    except ValidationError as exc:
        return _render(entry, values, translate_all(exc.messages), 422)
    except NotAuthorisedError:
        abort(403)
    except NotFoundError:
        abort(404)
    flash(_("Started: %(name)s", name=entry["name"]))
    mine = next((t for t in rt.tasks(instance_id, user=current_user.username)), None)
    if mine is not None:
        return redirect(url_for("tasks.task", task_id=mine.id))
    return redirect(url_for("instances.instance", instance_id=instance_id))
