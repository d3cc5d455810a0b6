"""Instance pages: status, business key, data summary, the steps done and open (diagram and text list),
the audit timeline, open tasks and waiting timers."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from lxml import etree

from engine import attachments
from engine.errors import NotFoundError, ValidationError

from . import select_locale
from .auth import runtime
from .case_panels import case_panel
from .codes import code
from .form_fields import build_fields, error_summary, parse_form
from .formatting import element_name
from .i18n import translate_all

bp = Blueprint("instances", __name__, url_prefix="/instances")


def may_view(instance_id: int) -> bool:
    """The engine decides who may look at an instance (see :func:`engine.authz.may_view_instance`)."""
    return runtime().may_view_instance(instance_id, current_user.username)


@bp.get("/<int:instance_id>")
@login_required
def instance(instance_id: int):
    rt = runtime()
    try:
        view = rt.instance(instance_id)
    except NotFoundError:
        abort(404)
    if not may_view(instance_id):
        abort(403)
    steps = rt.steps(instance_id)
    audit = list(reversed(rt.audit(instance_id)))
    hidden = rt.workers_hidden_from(instance_id, current_user.username)
    if hidden:  # who worked these tasks is not the reader's to know (a committee's reviewers, for the applicant)
        audit = [e | {"actor": None, "hidden": True} if e["task_id"] in hidden or e["details"].get("element") in hidden
                 else e for e in audit if e["action"] != "exclude"]
        view.tasks = [replace(t, claimed_by=None) if t.name in hidden else t for t in view.tasks]
    language = select_locale()
    # the case's data by the labels its forms give it; what no form asks for is the process's bookkeeping
    fields = rt.data_fields(instance_id, language)
    summary = [(fields[k], v) for k, v in view.data.items()
               if k in fields and isinstance(v, str | int | float | bool) and v not in (None, "")]
    may_send = rt.may_send_messages(instance_id, current_user.username)
    process_name = rt.process_name(view.process_id)
    messages = []
    for m in rt.message_forms(instance_id) if may_send else []:
        texts = m["texts"](m["form_key"], language) if language != "nb" else None
        messages.append({"name": m["message"], "title": (texts or {}).get("title") or m["form"].json_schema.get(
            "title", m["message"])})
    step_names = {step["id"]: step["name"] for part in steps.values() for step in part}  # for the history
    return render_template("instance.html", instance=view, steps=steps, audit=audit, step_names=step_names,
                           summary=summary, messages=messages, process_name=process_name or view.process_id,
                           panel=case_panel(current_app, instance_id))


@bp.get("/<int:instance_id>/diagram.bpmn")
@login_required
def diagram(instance_id: int):
    rt = runtime()
    try:
        xml = rt.diagram(instance_id)
    except NotFoundError:
        abort(404)
    if not may_view(instance_id):
        abort(403)
    return Response(_in_language(xml), mimetype="application/xml")


BPMN_MODEL = "http://www.omg.org/spec/BPMN/20100524/MODEL"


def _in_language(xml: str) -> str:
    """The diagram as the reader reads it: lanes by the words for their role (a lane's name is the role id,
    ``Applicant``, which the rules match), and in nynorsk or English every step by its translated name
    (``names.<language>.json``). A diagram that cannot be read is served as it is."""
    try:
        root = etree.fromstring(xml.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return xml
    for process in root.iter(f"{{{BPMN_MODEL}}}process"):
        process_id = process.get("id")
        for element in process.iter(f"{{{BPMN_MODEL}}}*"):
            name = element.get("name")
            if not name:
                continue
            if etree.QName(element).localname == "lane":
                words = code(name.lower(), "role")
                element.set("name", words if words != name.lower() else name)
            elif element is not process and element.get("id"):
                element.set("name", element_name(name, process_id, element.get("id")))
    return etree.tostring(root, encoding="unicode")


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
    visible = row.instance_id is not None and may_view(row.instance_id)
    if not visible and row.uploaded_by != current_user.username:
        abort(403)
    return Response(content, mimetype=row.media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.filename)}"})


def _message_form(instance_id: int, name: str):
    """The form for sending message ``name`` to this instance; only its starter, supervisors and admins."""
    rt = runtime()
    try:
        view = rt.instance(instance_id)
    except NotFoundError:
        abort(404)
    if not rt.may_send_messages(instance_id, current_user.username):
        abort(403)
    entry = next((m for m in rt.message_forms(instance_id) if m["message"] == name), None)
    if entry is None:
        abort(404)
    return view, entry


@bp.route("/<int:instance_id>/messages/<name>", methods=["GET", "POST"])
@login_required
def send_message(instance_id: int, name: str):
    """Send a message the instance waits for (a deviation report, a withdrawal) from its form."""
    view, entry = _message_form(instance_id, name)
    form = entry["form"]
    values, errors, status = {}, None, 200
    if request.method == "POST":
        values = parse_form(form.json_schema, request.form)
        try:
            payload = form.validate(values)
        except ValidationError as exc:
            errors, status = translate_all(exc.messages), 422
        else:
            result = runtime().send_message(name, {**payload, "sent_by": current_user.username},
                                            entry["correlations"], current_user.username)
            if result.status == "delivered":
                flash(_("Sent: %(title)s", title=form.json_schema.get("title", name)))
            elif result.status == "held":
                flash(_("Sent: %(title)s. The case is stopped by an error; it receives this when an "
                        "administrator has restarted it.", title=form.json_schema.get("title", name)))
            else:
                flash(_("The case no longer waits for this; nothing was sent."), "error")
            return redirect(url_for("instances.instance", instance_id=instance_id))
    language = select_locale()
    texts = entry["texts"](entry["form_key"], language) if language != "nb" else None
    fields = build_fields(form.json_schema, form.ui_schema, values, errors, texts=texts)
    return render_template("message.html", instance=view, name=name, fields=fields, summary=error_summary(fields),
                           title=(texts or {}).get("title") or form.json_schema.get("title", name)), status
