"""A case's documents (letters, the recommendation, notices and minutes, exports) as its case page offers
them, downloadable by whoever may see the case -- an applicant their own award or rejection letter, never
another's. The documents are the :class:`community.records.Document` rows the steps kept."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from community.records import Document, GrantApplication
from engine.formats import format_kroner
from web.auth import runtime
from web.case_panels import CasePanel

from . import conflicts

bp = Blueprint("documents", __name__, url_prefix="/documents")


def kind_words() -> dict[str, str]:
    """What each kind of kept document is called (built per call: in the request's language)."""
    return {"award_letter": _("Award letter"), "rejection_letter": _("Rejection letter"),
            "recommendation": _("AU's recommendation"), "annual_report": _("Annual report"),
            "export_xlsx": _("Export (Excel)"), "export_csv": _("Export (CSV)"),
            "meeting_notice": _("Meeting notice"), "meeting_minutes": _("Minutes")}


def case_panel(instance_id: int) -> CasePanel:
    """The case's documents, and for an application its decision: the amount granted, or that it was not."""
    panel = CasePanel()
    words = kind_words()
    with runtime().Session() as s:
        for doc in s.scalars(select(Document).where(Document.instance_id == instance_id).order_by(Document.id)):
            label = f"{words.get(doc.kind, doc.filename)} ({doc.filename})"
            panel.documents.append((label, url_for("documents.download", document_id=doc.id)))
        application = s.scalar(select(GrantApplication).where(GrantApplication.instance_id == instance_id))
        if application is not None and application.granted is not None:
            if application.granted:
                panel.facts.append((_("Amount granted"), format_kroner(application.amount_granted or 0)))
            else:
                panel.facts.append((_("Decision"), _("Rejected")))
        if application is not None:
            conflicts.add_to_panel(panel, s, application)
    return panel


@bp.get("/<int:document_id>")
@login_required
def download(document_id: int):
    """A kept document, for those who may see its case (403 for anyone else; 404 when there is none)."""
    rt = runtime()
    with rt.Session() as s:
        doc = s.get(Document, document_id)
        if doc is None:
            abort(404)
        filename, media_type, content, instance_id = doc.filename, doc.media_type, doc.content, doc.instance_id
    if instance_id is None and not current_user.is_admin:
        abort(403)
    if instance_id is not None and not rt.may_view_instance(instance_id, current_user.username):
        abort(403)
    return Response(content, mimetype=media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})
