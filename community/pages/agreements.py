"""The register of agreements as the public reads it (offentleglova): the agreements of each health community
with their current version, one agreement with its text, appendices, versions and history and the revision
under way (where it is, which party has not answered the hearing or signed), and a version with the changes
from the one before it. Read-only: the register is written by the ``agreements.*`` connectors."""

from __future__ import annotations

import difflib

from flask import Blueprint, abort, render_template
from sqlalchemy import select

from community.connectors.agreements import current_version, event_detail, events, list_agreements, name, parties
from community.records import (
    Agreement,
    AgreementAppendix,
    AgreementEvaluation,
    AgreementHearingAnswer,
    AgreementRevision,
    AgreementSignature,
    AgreementVersion,
)
from web.auth import runtime

bp = Blueprint("agreements", __name__, url_prefix="/agreements", template_folder="templates")


@bp.get("")
def overview():
    with runtime().Session() as s:
        rows = list_agreements(s)
    communities: dict[str, list[dict]] = {}
    for row in rows:
        communities.setdefault(row["community"], []).append(row)
    return render_template("agreements/overview.html", communities=communities)


def _agreement(s, agreement_id: int) -> Agreement:
    agreement = s.get(Agreement, agreement_id)
    if agreement is None:
        abort(404)
    return agreement


def _revision_state(s, agreement: Agreement) -> dict | None:
    """The revision under way: its stage, and who the process waits for."""
    revision = s.scalar(select(AgreementRevision).where(AgreementRevision.agreement_id == agreement.id,
                                                       AgreementRevision.ended_at.is_(None))
                        .order_by(AgreementRevision.id.desc()))
    if revision is None:
        return None
    everyone = parties(s, agreement.community)
    not_answered, not_signed = [], []
    if revision.version_id and revision.stage in ("hearing", "comments"):
        answered = set(s.scalars(select(AgreementHearingAnswer.organisation).where(
            AgreementHearingAnswer.version_id == revision.version_id)))
        not_answered = [p for p in everyone if p not in answered]
    if revision.version_id and revision.stage == "signatures":
        signed = set(s.scalars(select(AgreementSignature.organisation).where(
            AgreementSignature.version_id == revision.version_id, AgreementSignature.signed.is_(True))))
        not_signed = [p for p in everyone if p not in signed]
    draft = s.get(AgreementVersion, revision.version_id) if revision.version_id else None
    return {"revision": revision, "draft": draft, "not_answered": not_answered, "not_signed": not_signed}


@bp.get("/<int:agreement_id>")
def agreement(agreement_id: int):
    with runtime().Session() as s:
        found = _agreement(s, agreement_id)
        versions = s.scalars(select(AgreementVersion).where(AgreementVersion.agreement_id == found.id)
                             .order_by(AgreementVersion.number.desc())).all()
        current = current_version(s, found.id)
        appendices = s.scalars(select(AgreementAppendix).where(AgreementAppendix.version_id == current.id)
                               .order_by(AgreementAppendix.number)).all() if current else []
        evaluations = s.scalars(select(AgreementEvaluation).where(AgreementEvaluation.agreement_id == found.id)
                                .order_by(AgreementEvaluation.planned_for)).all()
        history = [(e, event_detail(e)) for e in events(s, found.id)]
        merged = s.scalars(select(Agreement).where(Agreement.merged_into_id == found.id)
                           .order_by(Agreement.letter)).all()
        into = s.get(Agreement, found.merged_into_id) if found.merged_into_id else None
        split_into = s.scalars(select(Agreement).where(Agreement.split_from_id == found.id)
                               .order_by(Agreement.letter, Agreement.id)).all()
        split_from = s.get(Agreement, found.split_from_id) if found.split_from_id else None
        revision = _revision_state(s, found)
    return render_template("agreements/agreement.html", agreement=found, title=name(found), versions=versions,
                           current=current, appendices=appendices, evaluations=evaluations, history=history,
                           merged=merged, into=into, split_into=split_into, split_from=split_from,
                           revision=revision, name=name)


def diff_lines(old: str, new: str) -> list[tuple[str, str]]:
    """The lines of ``new`` against ``old``: ``("same" | "added" | "removed", line)``, in reading order."""
    kinds = {" ": "same", "+": "added", "-": "removed"}
    return [(kinds[line[0]], line[2:]) for line in difflib.ndiff(old.splitlines(), new.splitlines())
            if line[0] in kinds]


@bp.get("/<int:agreement_id>/versions/<int:number>")
def version(agreement_id: int, number: int):
    with runtime().Session() as s:
        found = _agreement(s, agreement_id)
        shown = s.scalar(select(AgreementVersion).where(AgreementVersion.agreement_id == found.id,
                                                        AgreementVersion.number == number))
        if shown is None:
            abort(404)
        previous = s.scalar(select(AgreementVersion).where(AgreementVersion.agreement_id == found.id,
                                                           AgreementVersion.number < number)
                            .order_by(AgreementVersion.number.desc()).limit(1))
        appendices = s.scalars(select(AgreementAppendix).where(AgreementAppendix.version_id == shown.id)
                               .order_by(AgreementAppendix.number)).all()
    lines = diff_lines(previous.text if previous else "", shown.text)
    return render_template("agreements/version.html", agreement=found, title=name(found), version=shown,
                           previous=previous, lines=lines, appendices=appendices)
