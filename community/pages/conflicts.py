"""A committee member declares a conflict of interest in one application, from its case page.

The case page of an application offers the link to members of the evaluation committee of the call's
community who have not stood aside yet; AU, SSU and the secretariat see there who stood aside and why. The
applicant sees neither: who reviews an application is the committee's business until the decision.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.conflicts import stand_aside
from community.connectors.grants import GrantError, conflicts_of
from community.records import GrantApplication, GrantCall
from engine.calendar import local_date
from engine.formats import format_date
from engine.models import User
from web.auth import runtime
from web.case_panels import CasePanel
from web.i18n import translate

bp = Blueprint("conflicts", __name__, url_prefix="/applications", template_folder="templates")
#: who sees on a case page who stood aside (the committee's own members see only their own)
READERS = {"au", "ssu", "secretariat", "admin"}
#: the application is still before the committee: standing aside means something
UNDER_REVIEW = ("submitted", "registered")


def _member_of_committee(community: str) -> bool:
    return "committee" in current_user.roles and (not current_user.scopes or community in current_user.scopes)


def add_to_panel(panel: CasePanel, session: Session, application: GrantApplication) -> None:
    """The conflict facts and action of an application's case page, for whoever reads it."""
    community = session.get(GrantCall, application.call_id).community
    conflicts = conflicts_of(session, application.id)
    own = next((c for c in conflicts if c["username"] == current_user.username), None)
    if own is not None:
        panel.facts.append((_("Conflict of interest"), _("You stand aside in this case: %(reason)s",
                                                          reason=own["reason"])))
    elif _member_of_committee(community) and application.status in UNDER_REVIEW:
        panel.actions.append((_("Declare a conflict of interest"),
                              url_for("conflicts.declare", application_id=application.id)))
    if conflicts and current_user.roles & READERS:
        names = dict(session.execute(select(User.username, User.display_name).where(
            User.username.in_([c["username"] for c in conflicts]))).all())
        panel.facts.append((_("Stood aside"), "; ".join(
            f"{names.get(c['username']) or c['username']} ({format_date(local_date(c['declared_at']))}: {c['reason']})"
            for c in conflicts)))


@bp.route("/<int:application_id>/conflict", methods=["GET", "POST"])
@login_required
def declare(application_id: int):
    """The declaration form: why the member has a conflict. Posting it records the declaration and takes
    them out of the application's open review tasks, a claimed one included."""
    rt = runtime()
    with rt.Session() as s:
        application = s.get(GrantApplication, application_id)
        if application is None or application.instance_id is None:
            abort(404)
        call = s.get(GrantCall, application.call_id)
        if not _member_of_committee(call.community):
            abort(403)
        title, instance_id = application.title, application.instance_id
    reason, error = "", None
    if request.method == "POST":
        reason = request.form.get("reason", "")
        try:
            stand_aside(rt, application_id, current_user.username, reason)
        except GrantError as exc:
            error = translate(exc.text)
        else:
            flash(_("You stand aside in «%(title)s». Its review tasks are no longer offered to you.", title=title))
            # the case is no longer theirs to read (they are no longer among its workers): back to their work
            return redirect(url_for("tasks.worklist"))
    summary = [("reason", _("Why you have a conflict of interest"), error)] if error else []
    return render_template("conflicts/declare.html", title=title, instance_id=instance_id, reason=reason,
                           error=error, summary=summary), 422 if error else 200
