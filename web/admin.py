"""Administration: deploy a bundle, models and versions, move running instances to another version,
instances in error (retry), cancel an instance, waiting timers, users with their roles and organisations.
Admins only; every action is audited by the runtime it calls."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.utils import secure_filename

from engine.errors import DeployError, InstanceStateError, NotFoundError, SamflytError
from engine.models import Organisation, User

from .auth import runtime
from .i18n import translate

bp = Blueprint("admin", __name__, url_prefix="/admin")
BUNDLE_SUFFIXES = (".bpmn", ".dmn", ".json")


@bp.before_request
@login_required
def admins_only():
    if not current_user.is_admin:
        abort(403)


@bp.get("")
def overview():
    rt = runtime()
    in_error = [rt.instance(i["id"]) for i in rt.instances_summary("error")]
    with rt.Session() as s:
        users = s.scalars(select(User).order_by(User.username)).unique().all()
        people = [{"username": u.username, "name": u.display_name or "", "roles": sorted(u.role_names),
                   "organisations": sorted(u.organisation_names), "active": u.active} for u in users]
        communities: dict[str, list[str]] = {}
        for org in s.scalars(select(Organisation).order_by(Organisation.name)):
            communities.setdefault(org.scope or "", []).append(org.name)
    return render_template("admin.html", models=rt.models(), in_error=in_error, timers=rt.timers(),
                           running=rt.instances_summary("running")[:50], people=people,
                           communities=sorted(communities.items(), key=lambda c: (not c[0], c[0])))


@bp.post("/deploy")
def deploy():
    files = [f for f in request.files.getlist("bundle") if f.filename]
    if not files:
        flash(_("Choose the bundle's .bpmn, .dmn and form .json files."), "error")
        return redirect(url_for("admin.overview"))
    with tempfile.TemporaryDirectory() as folder:
        for upload in files:
            name = secure_filename(upload.filename)
            if not name.endswith(BUNDLE_SUFFIXES):
                flash(_("%(name)s is not a .bpmn, .dmn or .json file.", name=name), "error")
                return redirect(url_for("admin.overview"))
            upload.save(Path(folder) / name)
        try:
            results = runtime().deploy([folder], actor=current_user.username)
        except DeployError as exc:
            flash(_("Nothing was deployed: %(reason)s", reason=translate(exc.text)), "error")
            return redirect(url_for("admin.overview"))
    for r in results:
        flash(_("%(process)s version %(version)s: %(what)s", process=r.process_id, version=r.version,
                what=_("deployed") if r.created else _("unchanged")))
    return redirect(url_for("admin.overview"))


@bp.post("/migrate")
def migrate():
    """Move a process's running instances from one version to another (or say what would move, with the
    dry-run box ticked): a table of each instance's outcome and the reasons for each refusal."""
    process_id = request.form.get("process_id", "").strip()
    numbers = {}
    for name in ("from_version", "to_version"):
        text = request.form.get(name, "").strip()
        numbers[name] = int(text) if text.isdigit() and 0 < len(text) <= 9 else None
    ids_text = request.form.get("instance_ids", "").replace(",", " ").split()
    if not process_id or None in numbers.values() or any(not (p.isdigit() and len(p) <= 18) for p in ids_text):
        flash(_("Give the process, the version to move from and the version to move to (whole numbers), and "
                "instance numbers separated by spaces if only some should move."), "error")
        return redirect(url_for("admin.overview"))
    dry_run = request.form.get("dry_run") == "true"
    try:
        outcomes = runtime().migrate(process_id, numbers["from_version"], numbers["to_version"],
                                     current_user.username, dry_run=dry_run,
                                     instance_ids=[int(p) for p in ids_text] or None)
    except SamflytError as exc:
        flash(translate(exc.text), "error")
        return redirect(url_for("admin.overview"))
    return render_template("admin_migration.html", outcomes=outcomes, process_id=process_id, dry_run=dry_run,
                           **numbers)


@bp.post("/instances/<int:instance_id>/retry")
def retry(instance_id: int):
    try:
        status = runtime().retry(instance_id, current_user.username)
        flash(_("Instance %(id)s was run again: %(status)s", id=instance_id, status=status))
    except (InstanceStateError, NotFoundError) as exc:
        flash(translate(exc.text), "error")
    return redirect(url_for("admin.overview"))


@bp.post("/instances/<int:instance_id>/cancel")
def cancel(instance_id: int):
    reason = request.form.get("reason", "").strip()
    if not reason:
        flash(_("Give a reason for cancelling."), "error")
        return redirect(url_for("instances.instance", instance_id=instance_id))
    try:
        runtime().cancel(instance_id, current_user.username, reason)
        flash(_("Instance %(id)s is cancelled.", id=instance_id))
    except SamflytError as exc:
        flash(translate(exc.text), "error")
    return redirect(url_for("instances.instance", instance_id=instance_id))


@bp.post("/communities")
def save_community():
    """Place organisations (comma-separated) in a health community: who may work its communities' tasks."""
    community = request.form.get("community", "").strip()
    organisations = [part.strip() for part in request.form.get("organisations", "").split(",") if part.strip()]
    if not community or not organisations:
        flash(_("Give the community's name and at least one organisation."), "error")
        return redirect(url_for("admin.overview"))
    try:
        runtime().set_scope(community, organisations, actor=current_user.username)
    except SamflytError as exc:
        flash(translate(exc.text), "error")
        return redirect(url_for("admin.overview"))
    flash(_("%(community)s is saved.", community=community))
    return redirect(url_for("admin.overview"))


@bp.post("/users")
def save_user():
    """Create or change a user: roles and organisations as comma-separated lists (replacing the old ones)."""
    username = request.form.get("username", "").strip()
    if not username:
        flash(_("Give a username."), "error")
        return redirect(url_for("admin.overview"))
    split = lambda name: [part.strip() for part in request.form.get(name, "").split(",") if part.strip()]  # noqa: E731
    try:
        runtime().set_user(username, split("roles"), split("organisations"), request.form.get("display_name"),
                           request.form.get("email"), request.form.get("active") == "true", current_user.username)
        flash(_("User %(name)s is saved.", name=username))
    except SamflytError as exc:
        flash(translate(exc.text), "error")
    return redirect(url_for("admin.overview"))
