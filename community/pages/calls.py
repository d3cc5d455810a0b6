"""Calls for applications as the public reads them: the open calls, each with its announcement, and the
list of received applications (title, applicant, amount applied for), which the grant makes public.

Readable without signing in, as an announcement is; applying is a start of ``grant_application`` with the
call chosen (``/start/grant_application?call_id=N``), which asks for sign-in and leaves the decision of
who may apply to the diagram (``samflyt.starterRoles``).
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user

from community.connectors import grants as grant_records
from community.connectors.grants import GrantError
from web.auth import runtime

bp = Blueprint("calls", __name__, url_prefix="/calls", template_folder="templates")
APPLICATION_PROCESS = "grant_application"


def _may_apply() -> bool:
    """Whether the apply button leads somewhere: signed out, sign-in comes first; signed in, the diagram
    decides (an AU member reading a call gets no button they would be refused at)."""
    if not current_user.is_authenticated:
        return True
    return any(p["process_id"] == APPLICATION_PROCESS for p in runtime().startable(current_user.username))


@bp.get("")
def overview():
    with runtime().Session() as s:
        calls = grant_records.open_calls(s)
    return render_template("calls/overview.html", calls=calls, may_apply=_may_apply(),
                           process_id=APPLICATION_PROCESS)


@bp.get("/<int:call_id>")
def call(call_id: int):
    with runtime().Session() as s:
        try:
            announcement = grant_records.public_call(s, call_id)
        except GrantError:
            abort(404)
        received = grant_records.public_list(s, call_id)
    is_open = any(d["open"] for d in announcement["deadlines"])
    return render_template("calls/call.html", call=announcement, received=received, is_open=is_open,
                           may_apply=_may_apply(), process_id=APPLICATION_PROCESS)
