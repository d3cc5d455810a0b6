"""Worklists and task forms: claim, give back, save a draft, complete.

Every action goes through the runtime, which checks authorisation itself; the views only turn its
answers into pages. What the user typed is never lost: a validation error, a task someone else
completed, or a task a timer closed re-renders the form with their input and a clear message.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from engine import accounts, attachments
from engine.errors import (
    ClaimedByOtherError,
    ConflictError,
    InstanceStateError,
    NotAuthorisedError,
    NotFoundError,
    SamflytError,
    StepFailedError,
    TaskNotOpenError,
    ValidationError,
)
from engine.models import HumanTask, User
from engine.worklist import SORTS, VIEWS, may_see_all, processes_with_open_tasks, worklist

from . import select_locale
from .auth import runtime
from .form_fields import build_fields, error_summary, file_accept, file_fields, parse_form
from .formatting import element_name, joined
from .i18n import translate, translate_all

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


def _account(session) -> User:
    return session.scalar(select(User).where(User.username == current_user.username))


@bp.get("", endpoint="worklist")
@login_required
def worklist_page():
    view = request.args.get("view", "mine")
    if view not in VIEWS:
        abort(404)
    sort = request.args.get("sort", "due")
    if sort not in SORTS:
        sort = "due"
    page_number = request.args.get("page", 1, type=int) or 1
    text = request.args.get("q", "").strip() or None
    process_id = request.args.get("process", "").strip() or None
    with runtime().Session() as s:
        account = _account(s)
        if view == "all" and not may_see_all(account):
            abort(403)
        page = worklist(s, account, view, text, sort, page_number, current_app.config["WORKLIST_PAGE_SIZE"],
                        process_id=process_id)
        show_all = may_see_all(account)
        processes = processes_with_open_tasks(s)
    return render_template("worklist.html", page=page, view=view, sort=sort, q=text or "", show_all=show_all,
                           process=process_id or "", processes=processes)


def _task_row(task_id: str) -> HumanTask:
    with runtime().Session() as s:
        row = s.scalar(select(HumanTask).where(HumanTask.task_id == task_id))
        if row is None:
            abort(404)
        s.expunge(row)
        return row


def _may_view(row: HumanTask) -> bool:
    """The engine decides who may look at a task (see :func:`engine.authz.may_view_task`)."""
    return runtime().may_view_task(row.task_id, current_user.username)


def _may_work(row: HumanTask) -> bool:
    """Whether the user may act on the open task now (unclaimed and allowed, or theirs): only then are
    files stored and drafts kept for them."""
    if row.status != "open":
        return False
    return current_user.is_admin or runtime().why_not(row.task_id, current_user.username) is None


def _render(row: HumanTask, values: dict[str, Any] | None, errors: dict[str, Any] | None = None,
            message: str | None = None, status: int = 200, extra_rows: set[str] | None = None):
    rt = runtime()
    form = rt.form_for(row.task_id)
    language = select_locale()
    texts = rt.form_texts(row.task_id, language) if form and language != "nb" else None
    fields = build_fields(form.json_schema, form.ui_schema, values, errors, extra_rows=extra_rows,
                          texts=texts) if form else []
    instance = rt.instance(row.instance_id)
    blocked = rt.why_not(row.task_id, current_user.username) if row.status == "open" else None
    blocked = translate(blocked) if blocked else None
    with rt.Session() as s:
        draft = accounts.load_draft(s, row.task_id, current_user.username)
    supervisor = row.status == "open" and rt.may_reassign(row.task_id, current_user.username)
    candidates = rt.candidates(row.task_id) if supervisor else []
    return render_template("task.html", task=row, instance=instance, form=form, fields=fields, supervisor=supervisor,
                           candidates=candidates,
                           form_title=(texts or {}).get("title"),
                           summary=error_summary(fields), message=message, blocked=blocked,
                           draft_saved_at=draft[1] if draft else None, readonly=row.status != "open"), status


@bp.get("/<task_id>")
@login_required
def task(task_id: str):
    row = _task_row(task_id)
    if not _may_view(row):
        abort(403)
    if row.status != "open":  # read-only: what was submitted
        submitted = next((e["details"].get("data") for e in reversed(runtime().audit(row.instance_id))
                          if e["action"] == "complete" and e["task_id"] == task_id), None)
        return _render(row, submitted)
    with runtime().Session() as s:
        draft = accounts.load_draft(s, task_id, current_user.username)
    values = draft[0] if draft else runtime().task_data(task_id)
    return _render(row, values)


@bp.post("/<task_id>/claim")
@login_required
def claim(task_id: str):
    try:
        runtime().claim(task_id, current_user.username)
        flash(_("The task is yours."))
    except ClaimedByOtherError as exc:
        flash(_("Claimed by %(name)s just now.", name=exc.claimed_by), "error")
    except TaskNotOpenError:
        flash(_("This task has already been completed."), "error")
    except NotAuthorisedError as exc:
        flash(_("You cannot claim this task: %(reason)s", reason=translate(exc.reason)), "error")
        return redirect(url_for("tasks.worklist", view="available"))
    except NotFoundError:
        abort(404)
    return redirect(url_for("tasks.task", task_id=task_id))


@bp.post("/<task_id>/unclaim")
@login_required
def unclaim(task_id: str):
    try:
        runtime().unclaim(task_id, current_user.username)
        flash(_("You gave the task back."))
    except (ConflictError, NotAuthorisedError):
        flash(_("You cannot give back a task someone else has."), "error")
    except NotFoundError:
        abort(404)
    return redirect(url_for("tasks.worklist"))


def _with_uploads(row: HumanTask, schema: dict[str, Any]):
    """The posted form with each newly uploaded file stored and replaced by its attachment id."""
    posted = request.form.copy()
    errors: dict[str, Any] = {}
    if row.status != "open":
        return posted, errors
    for path in file_fields(schema):
        upload = request.files.get(path)
        if upload is None or not upload.filename:
            continue
        try:
            with runtime().session() as s:
                stored = attachments.store(s, upload.read(), upload.filename, current_user.username, row.task_id,
                                           row.instance_id, accept=file_accept(schema, path))
                posted[path] = stored.id
        except attachments.AttachmentError as exc:
            node = errors
            *parents, last = path.split(".")
            for name in parents:
                node = node.setdefault(name, {})
            node[last] = [translate(exc.text)]
    return posted, errors


@bp.post("/<task_id>")
@login_required
def submit(task_id: str):
    """Re-render (rows added or removed), save a draft, or complete -- for those who may see the task.

    The permission is checked before anything else: someone who may not see the task stores no file,
    keeps no draft and gets no page. Files and drafts are kept only for those who may work it now.
    """
    row = _task_row(task_id)
    if not _may_view(row):
        abort(403)
    rt = runtime()
    form = rt.form_for(task_id)
    schema = form.json_schema if form else {"properties": {}}
    working = _may_work(row)
    posted, upload_errors = _with_uploads(row, schema) if working else (request.form.copy(), {})
    values = parse_form(schema, posted, drop_row=request.form.get("_remove"))
    if upload_errors:
        return _render(row, values, upload_errors, _("The form has errors. Correct them and submit again."), 422)
    action = request.form.get("_action", "complete")
    if "_add" in request.form:
        return _render(row, values, extra_rows={request.form["_add"]})
    if "_remove" in request.form:
        return _render(row, values)
    if action == "save":
        if not working:
            return _render(row, values, None, _("You cannot save a draft of this task: it is not yours to work."),
                           403)
        with rt.session() as s:
            accounts.save_draft(s, task_id, current_user.username, values)
        flash(_("Draft saved. You can come back to it later."))
        return redirect(url_for("tasks.task", task_id=task_id))
    before = _open_task_ids(row.instance_id)
    try:
        view = rt.complete(task_id, current_user.username, values)
    except StepFailedError:
        return _render(row, values, None, _("The case could not go on from this task: its next step failed and was "
                                            "stopped. An administrator must look at the case. What you typed is "
                                            "kept below and in the log."), 409)
    except ValidationError as exc:
        return _render(row, values, translate_all(_with_form_errors(exc.messages, form, values)),
                       _("The form has errors. Correct them and submit again."), 422)
    except ClaimedByOtherError as exc:
        return _render(row, values, None, _("%(name)s has claimed this task. What you typed is kept below.",
                                            name=exc.claimed_by), 409)
    except (TaskNotOpenError, InstanceStateError):
        fresh = _task_row(task_id)
        return _render(fresh, values, None, _("This task was closed in the meantime (completed by someone else "
                                              "or by a deadline). What you typed is kept below and in the log."),
                       409)
    except NotAuthorisedError as exc:
        return _render(row, values, None, _("You cannot complete this task: %(reason)s",
                                            reason=translate(exc.reason)), 403)
    with rt.session() as s:
        accounts.drop_draft(s, task_id, current_user.username)
    if view.status == "error":  # the task is done, but a step after it failed: say so instead of "completed"
        flash(_("Your input is saved, but the case's next step failed and was stopped. An administrator must "
                "look at the case before it can go on."), "error")
        return redirect(url_for("tasks.worklist"))
    returned = _returned(row, before)
    if returned is not None:  # the step after it sent it back (a recommendation over the frame): say so
        flash(_("Your answer was sent back: %(title)s. Read why at the top of the form, correct it and send it "
                "again.", title=element_name(row.title, view.process_id, row.spec_name)), "error")
        return redirect(url_for("tasks.task", task_id=returned))
    flash(_("Task completed: %(title)s", title=row.title))
    for receipt in _receipts(row.instance_id, before):
        flash(receipt)
    return redirect(url_for("tasks.worklist"))


def _with_form_errors(messages: Any, form: Any, values: dict[str, Any]) -> Any:
    """The engine's refusal together with everything else the form finds wrong, so a person corrects all at
    once: what cannot be stored at all (an amount of 10^30) is refused before the form's own rules are read."""
    if form is None:
        return messages
    try:
        form.validate(values)
    except ValidationError as also:
        return _merge(messages, also.messages)
    return messages


def _merge(first: Any, second: Any) -> Any:
    """Nested messages (field -> row index -> field) of both, each message once."""
    if isinstance(first, dict) and isinstance(second, dict):
        merged = dict(first)
        for key, value in second.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
        return merged
    if isinstance(first, dict) or isinstance(second, dict):
        inner, own = (first, second) if isinstance(first, dict) else (second, first)
        return _merge(inner, {"_schema": own})
    as_list = [first] if isinstance(first, str) else list(first)
    return list(dict.fromkeys([*as_list, *([second] if isinstance(second, str) else second)]))


def _open_task_ids(instance_id: int) -> set[str]:
    with runtime().Session() as s:
        return set(s.scalars(select(HumanTask.task_id).where(HumanTask.instance_id == instance_id,
                                                             HumanTask.status == "open")))


def _returned(row: HumanTask, before: set[str]) -> str | None:
    """The same task open again right after it was completed -- the process checked the answer and sent it
    back -- claimed for the person who sent it, so they land on it with the reason rather than on a
    "completed" and an unclaimed copy in someone's list. ``None`` when the case went on."""
    rt = runtime()
    with rt.Session() as s:
        again = s.scalars(select(HumanTask.task_id).where(
            HumanTask.instance_id == row.instance_id, HumanTask.status == "open",
            HumanTask.spec_name == row.spec_name, HumanTask.task_id.notin_(before))).all()
    for task_id in again:
        if rt.why_not(task_id, current_user.username) is None:
            try:
                rt.claim(task_id, current_user.username)
            except SamflytError:
                continue  # someone took it meanwhile: it is theirs
            return task_id
    return None


def _receipts(instance_id: int, before: set[str]) -> list[str]:
    """Where the case went when a task was completed: the organisations whose people the new tasks are for
    ("Sent to Tønsberg kommune and Sykehuset i Vestfold HF: Sign the application"), so the person who sent
    it knows who has it now. Tasks for named people or a role say nothing here: the worklists show them."""
    with runtime().Session() as s:
        rows = s.scalars(select(HumanTask).where(
            HumanTask.instance_id == instance_id, HumanTask.status == "open", HumanTask.task_id.notin_(before))
            .order_by(HumanTask.id)).all()
        process_id = runtime().instance(instance_id).process_id if rows else None
    to: dict[str, list[str]] = {}
    for r in rows:
        organisations = [str(o) for o in json.loads(r.restrictions or "{}").get("organisations", [])]
        if organisations:
            to.setdefault(element_name(r.title, process_id, r.spec_name), []).extend(organisations)
    return [_("Sent to %(receivers)s: %(task)s", receivers=joined(list(dict.fromkeys(names))), task=title)
            for title, names in to.items()]


@bp.post("/<task_id>/assign")
@login_required
def assign(task_id: str):
    assignee = request.form.get("assignee", "").strip()
    reason = request.form.get("reason", "").strip()
    if not assignee or not reason:
        flash(_("Give the person and a reason."), "error")
        return redirect(url_for("tasks.task", task_id=task_id))
    try:
        runtime().assign(task_id, assignee, current_user.username, reason)
        flash(_("The task is given to %(name)s.", name=assignee))
    except NotAuthorisedError as exc:
        flash(_("The task cannot be given to %(name)s: %(reason)s", name=assignee,
                reason=translate(exc.reason)), "error")
    except (ConflictError, NotFoundError) as exc:
        flash(translate(exc.text), "error")
    return redirect(url_for("tasks.task", task_id=task_id))
