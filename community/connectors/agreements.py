"""Connectors ``agreements.*``: the register of a health community's agreements and their revision cycles.

The revision cycle is ``bpmn/agreements/agreement_revision.bpmn``; these connectors keep what people query
(:mod:`community.records`: agreements, versions with their text, appendices, the revision under way, hearing
answers, signatures, evaluations and every step as an :class:`~community.records.AgreementEvent`) in the
transaction of the step that calls them, so the register and the process never disagree.

The parties of an agreement are the organisations of its health community (the hospital trust and each
municipality), the hospital first. A hearing answer, an anchoring and a signature are each recorded for one
party, by whoever completed that party's task (the task is bound to the organisation); the connectors refuse
an organisation that is not a party, and a second answer or signature from the same party.

Versions move ``draft`` -> ``hearing`` -> ``anchored`` -> ``approved`` -> ``signed`` -> ``in_force`` ->
``superseded``; the previous version is superseded by :func:`bring_into_force`, which the process calls on
the effective date (a timer), never on the approval day.
"""

from __future__ import annotations

import json
import zipfile
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.connectors.documents import store as store_document
from community.records import (
    Agreement,
    AgreementAppendix,
    AgreementEvaluation,
    AgreementEvent,
    AgreementHearingAnswer,
    AgreementRevision,
    AgreementSignature,
    AgreementVersion,
    Document,
)
from engine import attachments
from engine.calendar import local_date
from engine.connectors import StepContext
from engine.errors import SamflytError
from engine.mail import enqueue as enqueue_mail
from engine.models import Attachment, Organisation, User
from engine.texts import _, joined

VERSION_STATUSES = ("draft", "hearing", "anchored", "approved", "signed", "in_force", "superseded")
KINDS = ("overall", "sub")
SOURCES = ("case", "evaluation", "person")
RESPONSES = ("accepted", "partly", "not")
APPENDIX_KINDS = ("agreement", "procedure", "guideline", "appendix")
#: the role of a working group's members, and of the people who answer, anchor and sign for a party
WORKGROUP_ROLE = "workgroup"
PARTY_ROLE = "party"


class AgreementError(SamflytError):
    """An agreement, version or revision step that cannot be recorded as asked."""

    code = "agreement"


# -- helpers

def _date(value: Any, field: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise AgreementError(_("%(field)s must be a date (YYYY-MM-DD), not %(value)r", field=field,
                               value=value)) from None


def _agreement(session: Session, agreement_id: int) -> Agreement:
    try:
        agreement = session.get(Agreement, int(agreement_id))
    except (TypeError, ValueError):
        agreement = None
    if agreement is None:
        raise AgreementError(_("no agreement %(agreement)s", agreement=agreement_id))
    return agreement


def _revision(session: Session, revision_id: int) -> AgreementRevision:
    try:
        revision = session.get(AgreementRevision, int(revision_id))
    except (TypeError, ValueError):
        revision = None
    if revision is None:
        raise AgreementError(_("no agreement revision %(revision)s", revision=revision_id))
    return revision


def _version(session: Session, revision: AgreementRevision) -> AgreementVersion:
    version = session.get(AgreementVersion, revision.version_id) if revision.version_id else None
    if version is None:
        raise AgreementError(_("the revision has no draft yet"))
    return version


def name(agreement: Agreement) -> str:
    """How the secretariat writes it: "Delavtale j – Samarbeid om digitalisering og IKT"."""
    if agreement.kind == "overall":
        return agreement.title
    return f"Delavtale {agreement.letter} – {agreement.title}" if agreement.letter else agreement.title


def parties(session: Session, community: str) -> list[str]:
    """The parties of the community's agreements: its organisations, the hospital trust(s) first."""
    names = session.scalars(select(Organisation.name).where(Organisation.scope == community)).all()
    if not names:
        raise AgreementError(_("%(community)s has no organisations to be parties", community=community or "-"))
    return sorted(names, key=lambda n: (not n.endswith(" HF"), n))


def event(ctx: StepContext, agreement_id: int, kind: str, version_id: int | None = None,
          organisation: str | None = None, **detail: Any) -> None:
    """One step in the agreement's history (the agreement page lists them)."""
    ctx.session.add(AgreementEvent(agreement_id=agreement_id, version_id=version_id, instance_id=ctx.instance_id,
                                   kind=kind, organisation=organisation, actor=ctx.actor,
                                   detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
                                   at=ctx.now()))


def _party(session: Session, revision: AgreementRevision, organisation: str) -> str:
    community = _agreement(session, revision.agreement_id).community
    if organisation not in parties(session, community):
        raise AgreementError(_("%(organisation)s is not a party to the agreements of %(community)s",
                               organisation=organisation, community=community))
    return organisation


def _next_number(session: Session, agreement_id: int) -> int:
    return (session.scalar(select(func.max(AgreementVersion.number))
                           .where(AgreementVersion.agreement_id == agreement_id)) or 0) + 1


def _appendices(session: Session, version: AgreementVersion, appendices: list | None) -> None:
    for old in session.scalars(select(AgreementAppendix).where(AgreementAppendix.version_id == version.id)):
        session.delete(old)
    for number, item in enumerate(appendices or [], start=1):
        if not isinstance(item, dict) or not str(item.get("title") or "").strip():
            raise AgreementError(_("an appendix needs a title"))
        kind = item.get("kind") or "appendix"
        if kind not in APPENDIX_KINDS:
            raise AgreementError(_("an appendix is one of %(kinds)s, not %(kind)r", kinds=joined(APPENDIX_KINDS),
                                   kind=kind))
        session.add(AgreementAppendix(version_id=version.id, number=number, kind=kind,
                                      title=str(item["title"]).strip(), text=item.get("text") or None,
                                      attachment_id=item.get("attachment_id") or None))


def _document(ctx: StepContext, template: str, filename: str, context: dict) -> int:
    """Render ``template`` to an archival PDF and keep it in the step's transaction; its document id."""
    from community.documents import render_pdf  # WeasyPrint takes seconds to import: only where PDFs are made

    pdf = render_pdf(template, context)
    return store_document(ctx, template, filename, "application/pdf", pdf).id


def _version_context(session: Session, agreement: Agreement, version: AgreementVersion, today: date) -> dict:
    appendices = session.scalars(select(AgreementAppendix).where(AgreementAppendix.version_id == version.id)
                                 .order_by(AgreementAppendix.number)).all()
    signatures = {s.organisation: s for s in session.scalars(select(AgreementSignature).where(
        AgreementSignature.version_id == version.id, AgreementSignature.signed.is_(True)))}
    signers = [s.signed_by for s in signatures.values() if s.signed_by]
    names = {username: display for username, display in session.execute(
        select(User.username, User.display_name).where(User.username.in_(signers))).all()}
    return {"community": agreement.community, "date": today, "agreement_name": name(agreement),
            "version_number": version.number, "status": version.status, "approved_case": version.approved_case,
            "effective_from": version.effective_from, "text": version.text,
            "appendices": [{"number": a.number, "title": a.title, "kind": a.kind} for a in appendices],
            "signatures": [{"organisation": p,
                            "signed_by": (names.get(signatures[p].signed_by) or signatures[p].signed_by)
                            if p in signatures else None,
                            "date": local_date(signatures[p].at) if p in signatures else None}
                           for p in parties(session, agreement.community)]}


# -- the register

def import_agreement(community: str, title: str, letter: str = "", kind: str = "sub", first_made: int = 0,
                     history: str = "", versions: list | None = None, merges: list | None = None, *,
                     ctx: StepContext) -> dict:
    """Register an agreement as it stands before Samflyt, with its versions (``{"label", "text", "status",
    "approved_case", "approved_on", "effective_from", "superseded_on", "evaluations": [dates],
    "appendices": [...]}``, oldest first). ``merges``: the letters of the community's sub-agreements it
    gathers, which are marked merged into it."""
    session = ctx.session
    if kind not in KINDS:
        raise AgreementError(_("kind must be one of %(kinds)s, not %(kind)r", kinds=joined(KINDS), kind=kind))
    if not community or not str(title).strip():
        raise AgreementError(_("an agreement needs a health community and a title"))
    parties(session, community)
    agreement = Agreement(community=community, kind=kind, letter=(letter or "").strip() or None,
                          title=str(title).strip(), status="active", first_made=int(first_made) or None,
                          history=history or None, created_at=ctx.now())
    session.add(agreement)
    session.flush()
    for item in versions or []:
        status = item.get("status") or "in_force"
        if status not in VERSION_STATUSES:
            raise AgreementError(_("status must be one of %(statuses)s, not %(status)r",
                                   statuses=joined(VERSION_STATUSES), status=status))
        version = AgreementVersion(agreement_id=agreement.id, number=_next_number(session, agreement.id),
                                   label=item.get("label") or None, text=item.get("text") or "", status=status,
                                   approved_case=item.get("approved_case") or None,
                                   approved_on=_date(item.get("approved_on"), "approved_on"),
                                   effective_from=_date(item.get("effective_from"), "effective_from"),
                                   superseded_on=_date(item.get("superseded_on"), "superseded_on"),
                                   created_at=ctx.now())
        session.add(version)
        session.flush()
        _appendices(session, version, item.get("appendices"))
        for day in item.get("evaluations") or []:
            session.add(AgreementEvaluation(agreement_id=agreement.id, version_id=version.id,
                                            planned_for=_date(day, "evaluations"), status="planned"))
    for other_letter in merges or []:
        other = session.scalar(select(Agreement).where(Agreement.community == community,
                                                       Agreement.letter == other_letter, Agreement.id != agreement.id))
        if other is None:
            raise AgreementError(_("no delavtale %(letter)s in %(community)s to merge", letter=other_letter,
                                   community=community))
        other.status, other.merged_into_id = "merged", agreement.id
        event(ctx, other.id, "merged", into=agreement.id)
    event(ctx, agreement.id, "registered")
    session.flush()
    return {"agreement_id": agreement.id, "name": name(agreement)}


def split(agreement_id: int, parts: list | None, reason: str = "", case_id: str = "", effective_from: str = "",
          *, ctx: StepContext) -> dict:
    """The reverse of a merge: one agreement split into two or more new ones, each ``{"title", "letter",
    "text"}`` with its own first version (in force from ``effective_from``, today if not given, approved in
    ``case_id`` if given). The original is marked ``split`` and leaves the register of agreements in force;
    each new one points back to it (``split_from_id``), so the history of the text is not lost. A letter may be
    taken over from the original, never from another active agreement of the community."""
    session = ctx.session
    agreement = _agreement(session, agreement_id)
    if agreement.status != "active":
        raise AgreementError(_("%(agreement)s is not active (merged, split or retired)", agreement=name(agreement)))
    under_way = session.scalar(select(AgreementRevision.instance_id).where(
        AgreementRevision.agreement_id == agreement.id, AgreementRevision.ended_at.is_(None)))
    if under_way is not None:
        raise AgreementError(_("%(agreement)s is already under revision (process %(instance)s)",
                               agreement=name(agreement), instance=under_way))
    if not isinstance(parts, list) or len(parts) < 2:
        raise AgreementError(_("an agreement is split into at least two new agreements"))
    taken = set(session.scalars(select(Agreement.letter).where(
        Agreement.community == agreement.community, Agreement.status == "active", Agreement.id != agreement.id,
        Agreement.letter.is_not(None))))
    effective = _date(effective_from, "effective_from") or local_date(ctx.now())
    made: list[Agreement] = []
    for item in parts:
        if not isinstance(item, dict) or not str(item.get("title") or "").strip():
            raise AgreementError(_("each new agreement needs a title"))
        if not str(item.get("text") or "").strip():
            raise AgreementError(_("%(title)s needs the text of its first version", title=item["title"]))
        letter = str(item.get("letter") or "").strip() or None
        if letter is not None and (letter in taken or letter in {a.letter for a in made}):
            raise AgreementError(_("there is already a delavtale %(letter)s in %(community)s", letter=letter,
                                   community=agreement.community))
        part = Agreement(community=agreement.community, kind="sub", letter=letter, title=str(item["title"]).strip(),
                         status="active", split_from_id=agreement.id, first_made=local_date(ctx.now()).year,
                         created_at=ctx.now())
        session.add(part)
        session.flush()
        session.add(AgreementVersion(agreement_id=part.id, number=1, text=item["text"], status="in_force",
                                     approved_case=case_id or None, effective_from=effective, created_at=ctx.now()))
        made.append(part)
        event(ctx, part.id, "split_from", origin=agreement.id, case=case_id or None)
    agreement.status = "split"
    event(ctx, agreement.id, "split", into=[a.id for a in made], reason=reason or "", case=case_id or None)
    session.flush()
    return {"agreement_ids": [a.id for a in made], "names": [name(a) for a in made]}


def choices(username: str = "", *, ctx: StepContext) -> dict:
    """The agreements a revision can be started for, as form choices: the active agreements of the user's
    health community (every community's for an administrator or someone in none)."""
    session = ctx.session
    user = session.scalar(select(User).where(User.username == username)) if username else None
    own = sorted(user.scope_names) if user is not None else []
    query = select(Agreement).where(Agreement.status == "active").order_by(Agreement.community, Agreement.letter,
                                                                           Agreement.id)
    if own and "admin" not in user.role_names:
        query = query.where(Agreement.community.in_(own))
    rows = session.scalars(query).all()
    if not rows:
        raise AgreementError(_("no agreement is registered for your health community"))
    return {"options": [{"value": str(a.id), "label": f"{name(a)} ({a.community})"} for a in rows]}


# -- the revision cycle

def start_revision(agreement_id: int, reason: str, source: str = "person", mandate: str = "", *,
                   ctx: StepContext) -> dict:
    """A need for revision is registered: a revision record for the calling instance (a new one each time
    the cycle starts again after an evaluation)."""
    session = ctx.session
    agreement = _agreement(session, agreement_id)
    if agreement.status != "active":
        raise AgreementError(_("%(agreement)s is not active (merged, split or retired)", agreement=name(agreement)))
    if source not in SOURCES:
        raise AgreementError(_("source must be one of %(sources)s, not %(source)r", sources=joined(SOURCES),
                               source=source))
    if not str(reason or "").strip():
        raise AgreementError(_("say why the agreement needs revision"))
    under_way = session.scalar(select(AgreementRevision).where(
        AgreementRevision.agreement_id == agreement.id, AgreementRevision.ended_at.is_(None)))
    if under_way is not None and under_way.instance_id != ctx.instance_id:
        raise AgreementError(_("%(agreement)s is already under revision (process %(instance)s)",
                               agreement=name(agreement), instance=under_way.instance_id))
    if under_way is not None:  # this instance starts a new cycle: the previous one is done
        under_way.ended_at, under_way.instance_id, under_way.stage = ctx.now(), None, "done"
        session.flush()
    revision = AgreementRevision(agreement_id=agreement.id, instance_id=ctx.instance_id, reason=reason.strip(),
                                 source=source, mandate=mandate or None, stage="mandate", started_at=ctx.now())
    session.add(revision)
    session.flush()
    event(ctx, agreement.id, "revision_needed", reason=reason, source=source)
    return {"revision_id": revision.id, "agreement_id": agreement.id, "community": agreement.community,
            "agreement_name": name(agreement), "parties": parties(session, agreement.community)}


def record_mandate(revision_id: int, case_id: str, conclusion: str, *, ctx: StepContext) -> dict:
    revision = _revision(ctx.session, revision_id)
    revision.mandate_case, revision.stage = case_id, "working_group"
    event(ctx, revision.agreement_id, "mandate", case=case_id, conclusion=conclusion)
    ctx.session.flush()
    return {"mandate_case": case_id}


def set_up_group(revision_id: int, leader: str, members: list | None, deadline: str, *, ctx: StepContext) -> dict:
    """The working group (or editorial committee): a leader and members from the municipalities and the
    hospital, each a user with the role ``workgroup`` in the agreement's health community; ``workers`` are
    the usernames who may work the group's tasks."""
    session = ctx.session
    revision = _revision(session, revision_id)
    community = _agreement(session, revision.agreement_id).community
    names = [leader] + [m.get("username") if isinstance(m, dict) else m for m in members or []]
    people = []
    for username in dict.fromkeys(n for n in names if n):
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise AgreementError(_("no user %(user)r", user=username))
        if WORKGROUP_ROLE not in user.role_names or community not in user.scope_names:
            raise AgreementError(_("%(user)s is not a working group member (role workgroup) in %(community)s",
                                   user=username, community=community))
        people.append({"username": username, "organisations": sorted(user.organisation_names)})
    if not leader or not people:
        raise AgreementError(_("a working group needs a leader"))
    revision.leader, revision.members = leader, json.dumps(people[1:], ensure_ascii=False)
    revision.group_deadline, revision.stage = _date(deadline, "deadline"), "drafting"
    event(ctx, revision.agreement_id, "working_group", leader=leader, members=[p["username"] for p in people[1:]],
          deadline=deadline)
    session.flush()
    return {"workers": [p["username"] for p in people]}


#: the WordprocessingML namespace of a .docx's word/document.xml
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
#: the uploads whose text a version can be made from: Markdown and plain text as they are, Word converted
TEXT_SUFFIXES = (".md", ".txt", ".docx")


def _docx_text(content: bytes) -> str:
    """The text of a Word document, one line per paragraph, read from ``word/document.xml`` with the standard
    library (no new dependency): enough for the diff between versions, which compares lines of text."""
    try:
        with zipfile.ZipFile(BytesIO(content)) as archive:
            root = ElementTree.fromstring(archive.read("word/document.xml"))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError):
        raise AgreementError(_("the Word document cannot be read: it is not a valid .docx file")) from None
    body = root.find(f"{_W}body")
    lines = []
    for paragraph in (body if body is not None else root).iter(f"{_W}p"):
        parts = []
        for node in paragraph.iter():
            if node.tag == f"{_W}t":
                parts.append(node.text or "")
            elif node.tag == f"{_W}tab":
                parts.append("\t")
            elif node.tag in (f"{_W}br", f"{_W}cr"):
                parts.append("\n")
        lines.append("".join(parts))
    return "\n".join(lines).strip("\n") + "\n"


def attachment_text(session: Session, attachment_id: str) -> str:
    """The text of an uploaded document for a version: ``.md`` and ``.txt`` as they are (UTF-8), ``.docx``
    converted to lines of text; any other file is refused, since the diff between versions needs text."""
    row, content = attachments.load(session, str(attachment_id))
    suffix = Path(row.filename).suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise AgreementError(_("%(name)s cannot be used as the agreement text: upload a file of type %(accepted)s",
                               name=row.filename, accepted=joined(TEXT_SUFFIXES)))
    if suffix == ".docx":
        text = _docx_text(content)
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise AgreementError(_("%(name)s is not UTF-8 text", name=row.filename)) from None
    if not text.strip():
        raise AgreementError(_("%(name)s has no text", name=row.filename))
    return text


def save_draft(revision_id: int, text: str = "", appendices: list | None = None, attachment_id: str = "", *,
               ctx: StepContext) -> dict:
    """The working group's text (Markdown), or the text of an uploaded document (``attachment_id``: .md, .txt or
    .docx, which then replaces the typed text): the revision's draft version, made on the first save."""
    session = ctx.session
    revision = _revision(session, revision_id)
    source = None
    if attachment_id:
        text = attachment_text(session, attachment_id)
        source = session.get(Attachment, str(attachment_id)).filename
    if not str(text or "").strip():
        raise AgreementError(_("the draft needs a text"))
    version = session.get(AgreementVersion, revision.version_id) if revision.version_id else None
    if version is None:
        version = AgreementVersion(agreement_id=revision.agreement_id,
                                   number=_next_number(session, revision.agreement_id), status="draft",
                                   instance_id=ctx.instance_id, created_at=ctx.now())
        session.add(version)
        session.flush()
        revision.version_id = version.id
    version.text, version.status = text, "draft"
    _appendices(session, version, appendices)
    event(ctx, revision.agreement_id, "draft", version.id, **({"file": source} if source else {}))
    session.flush()
    return {"version_id": version.id, "number": version.number, "text": text}


def status_report(revision_id: int, report: str, *, ctx: StepContext) -> dict:
    """A status report to SSU (a case of type Orientering) while the group drafts. No process waits for its
    conclusion (SSU takes it into account), so the case is registered without a reply to this instance:
    the instance waits for SSU's decision on the agreement only, never for a status report's."""
    from community.connectors.meetings import register_case

    session = ctx.session
    revision = _revision(session, revision_id)
    agreement = _agreement(session, revision.agreement_id)
    if not str(report or "").strip():
        raise AgreementError(_("a status report needs a text"))
    case = register_case(session, committee="SSU", community=agreement.community, case_type="Orientering",
                         title=f"Status for revisjon av {name(agreement)}",
                         proposed_conclusion="Statusrapporten tas til orientering.", background=report,
                         reference=f"agreement:{agreement.id}", now=ctx.now())
    event(ctx, agreement.id, "status_report", case=case.case_number)
    session.flush()
    return {"case_id": case.case_number}


def open_hearing(revision_id: int, deadline: str, *, ctx: StepContext) -> dict:
    """The draft goes on hearing to every party until ``deadline`` (already moved past holidays)."""
    session = ctx.session
    revision = _revision(session, revision_id)
    version = _version(session, revision)
    version.status, revision.stage = "hearing", "hearing"
    revision.hearing_deadline = _date(deadline, "deadline")
    agreement = _agreement(session, revision.agreement_id)
    everyone = parties(session, agreement.community)
    appendices = session.scalars(select(AgreementAppendix.title).where(AgreementAppendix.version_id == version.id)
                                 .order_by(AgreementAppendix.number)).all()
    filename = f"horingsbrev-{agreement.id}-v{version.number}.pdf"
    document_id = _document(ctx, "agreement_hearing_letter", filename, {
        "community": agreement.community, "date": local_date(ctx.now()), "agreement_name": name(agreement),
        "version_number": version.number, "deadline": revision.hearing_deadline, "parties": everyone,
        "text": version.text, "appendices": list(appendices)})
    pdf = session.get(Document, document_id)
    subject = f"Høring: {name(agreement)} (frist {revision.hearing_deadline:%d.%m.%Y})"
    text = (f"{name(agreement)} er sendt på høring til partene i {agreement.community}.\n\n"
            f"Svar i Samflyt innen {revision.hearing_deadline:%d.%m.%Y}, med innspill eller «ingen innspill». "
            "Høringsbrevet med utkastet er vedlagt.\n")
    for user in _party_members(session, everyone):
        enqueue_mail(session, user.email, "notification", {"subject": subject, "text": text},
                     instance_id=ctx.instance_id, task_id=ctx.task_id,
                     attachments=[(pdf.filename, pdf.media_type, pdf.content)])
    event(ctx, revision.agreement_id, "hearing_sent", version.id, deadline=deadline, document_id=document_id)
    session.flush()
    return {"parties": everyone, "hearing_deadline": deadline, "document_id": document_id}


def _party_members(session: Session, organisations: list[str]) -> list[User]:
    """The people who answer for the parties: users with the role ``party`` in one of them, with a mail address."""
    users = session.scalars(select(User).order_by(User.username)).unique().all()
    return [u for u in users if u.active and u.email and PARTY_ROLE in u.role_names
            and u.organisation_names & set(organisations)]


def record_answer(revision_id: int, organisation: str, no_input: bool = False, comments: str = "", *,
                  ctx: StepContext) -> dict:
    """A party's hearing answer: comments, or "no input" (a valid answer)."""
    session = ctx.session
    revision = _revision(session, revision_id)
    version = _version(session, revision)
    _party(session, revision, organisation)
    if not no_input and not str(comments or "").strip():
        raise AgreementError(_("give your comments, or answer that you have no input"))
    if session.scalar(select(AgreementHearingAnswer.id).where(AgreementHearingAnswer.version_id == version.id,
                                                              AgreementHearingAnswer.organisation == organisation)):
        raise AgreementError(_("%(organisation)s has answered the hearing already", organisation=organisation))
    session.add(AgreementHearingAnswer(version_id=version.id, organisation=organisation, no_input=bool(no_input),
                                       comments=None if no_input else comments.strip(), answered_by=ctx.actor,
                                       answered_at=ctx.now()))
    event(ctx, revision.agreement_id, "hearing_answer", version.id, organisation, no_input=bool(no_input))
    session.flush()
    return {"organisation": organisation, "no_input": bool(no_input)}


def close_hearing(revision_id: int, *, ctx: StepContext) -> dict:
    """The hearing ends (all answered, or the deadline passed): who answered, who did not, and the comments
    for the working group to answer. A hearing without input is a valid outcome."""
    session = ctx.session
    revision = _revision(session, revision_id)
    version = _version(session, revision)
    answers = session.scalars(select(AgreementHearingAnswer).where(AgreementHearingAnswer.version_id == version.id)
                              .order_by(AgreementHearingAnswer.id)).all()
    everyone = parties(session, _agreement(session, revision.agreement_id).community)
    answered = {a.organisation for a in answers}
    missing = [p for p in everyone if p not in answered]
    revision.stage = "comments"
    event(ctx, revision.agreement_id, "hearing_closed", version.id, answered=sorted(answered), missing=missing)
    session.flush()
    return {"missing": missing, "without_input": all(a.no_input for a in answers),
            "comments": [{"answer_id": a.id, "organisation": a.organisation, "comments": a.comments or "",
                          "response": "accepted", "response_text": ""} for a in answers if not a.no_input]}


def answer_comments(revision_id: int, comments: list | None, text: str, *, ctx: StepContext) -> dict:
    """The working group's response to each comment (accepted, partly, not) and the revised text."""
    session = ctx.session
    revision = _revision(session, revision_id)
    version = _version(session, revision)
    for item in comments or []:
        answer = session.get(AgreementHearingAnswer, int(item.get("answer_id") or 0))
        if answer is None or answer.version_id != version.id:
            raise AgreementError(_("no hearing answer %(answer)s to this draft", answer=item.get("answer_id")))
        if item.get("response") not in RESPONSES:
            raise AgreementError(_("a response is one of %(responses)s, not %(response)r",
                                   responses=joined(RESPONSES), response=item.get("response")))
        answer.response, answer.response_text = item["response"], item.get("response_text") or None
    if str(text or "").strip():
        version.text = text
    revision.stage = "anchoring"
    agreement = _agreement(session, revision.agreement_id)
    answers = {a.organisation: a for a in session.scalars(select(AgreementHearingAnswer).where(
        AgreementHearingAnswer.version_id == version.id))}
    words = {"accepted": "Tatt til følge", "partly": "Delvis tatt til følge", "not": "Ikke tatt til følge"}
    rows = []
    for party in parties(session, agreement.community):
        answer = answers.get(party)
        rows.append({"organisation": party,
                     "answer": "Ikke svart" if answer is None else "Ingen innspill" if answer.no_input
                     else answer.comments or "",
                     "response": words.get(answer.response or "", "") if answer else "",
                     "response_text": (answer.response_text or "") if answer else ""})
    session.flush()
    document_id = _document(ctx, "agreement_comments", f"horingsinnspill-{agreement.id}-v{version.number}.pdf", {
        "community": agreement.community, "date": local_date(ctx.now()), "agreement_name": name(agreement),
        "version_number": version.number, "deadline": revision.hearing_deadline, "rows": rows})
    event(ctx, revision.agreement_id, "comments_answered", version.id, count=len(comments or []),
          document_id=document_id)
    session.flush()
    return {"version_id": version.id, "document_id": document_id}


def record_anchoring(revision_id: int, organisation: str, anchored: bool, comment: str = "", *,
                     ctx: StepContext) -> dict:
    """A party confirms (or not) that the text is anchored in its organisation."""
    session = ctx.session
    revision = _revision(session, revision_id)
    version = _version(session, revision)
    _party(session, revision, organisation)
    event(ctx, revision.agreement_id, "anchored" if anchored else "not_anchored", version.id, organisation,
          comment=comment or "")
    session.flush()
    return {"organisation": organisation, "anchored": bool(anchored), "comment": comment or ""}


def anchoring_done(revision_id: int, *, ctx: StepContext) -> dict:
    revision = _revision(ctx.session, revision_id)
    version = _version(ctx.session, revision)
    version.status, revision.stage = "anchored", "approval"
    ctx.session.flush()
    agreement = _agreement(ctx.session, revision.agreement_id)
    document_id = _document(ctx, "agreement_version", f"avtale-{agreement.id}-v{version.number}.pdf",
                            _version_context(ctx.session, agreement, version, local_date(ctx.now())))
    return {"status": version.status, "document_id": document_id}


def record_approval(revision_id: int, case_id: str, conclusion: str, effective_from: str,
                    evaluations: list | None = None, *, ctx: StepContext) -> dict:
    """SSU approved the version in case ``case_id`` with its effective date; the evaluations are planned."""
    session = ctx.session
    revision = _revision(session, revision_id)
    version = _version(session, revision)
    version.status, version.approved_case = "approved", case_id
    version.approved_on, version.effective_from = local_date(ctx.now()), _date(effective_from, "effective_from")
    for day in evaluations or []:
        session.add(AgreementEvaluation(agreement_id=revision.agreement_id, version_id=version.id,
                                        planned_for=_date(day, "evaluations"), status="planned"))
    revision.stage = "signatures"
    event(ctx, revision.agreement_id, "approved", version.id, case=case_id, conclusion=conclusion,
          effective_from=effective_from)
    session.flush()
    return {"status": version.status, "effective_from": version.effective_from.isoformat()}


def record_signature(revision_id: int, organisation: str, signed: bool, reason: str = "", *,
                     ctx: StepContext) -> dict:
    """An authorised person signs for a party, or refuses with a reason (back to the working group)."""
    session = ctx.session
    revision = _revision(session, revision_id)
    version = _version(session, revision)
    _party(session, revision, organisation)
    if not signed and not str(reason or "").strip():
        raise AgreementError(_("say why you do not sign"))
    if session.scalar(select(AgreementSignature.id).where(AgreementSignature.version_id == version.id,
                                                          AgreementSignature.organisation == organisation,
                                                          AgreementSignature.signed.is_(True))):
        raise AgreementError(_("%(organisation)s has signed already", organisation=organisation))
    session.add(AgreementSignature(version_id=version.id, organisation=organisation, signed=bool(signed),
                                   signed_by=ctx.actor, reason=reason or None, at=ctx.now()))
    event(ctx, revision.agreement_id, "signed" if signed else "signature_refused", version.id, organisation,
          reason=reason or "")
    session.flush()
    return {"organisation": organisation, "signed": bool(signed), "reason": reason or ""}


def unsigned_parties(revision_id: int, *, ctx: StepContext) -> dict:
    """The parties that have not signed the version yet, and the refusals since the last round."""
    session = ctx.session
    revision = _revision(session, revision_id)
    version = _version(session, revision)
    signed = set(session.scalars(select(AgreementSignature.organisation).where(
        AgreementSignature.version_id == version.id, AgreementSignature.signed.is_(True))))
    everyone = parties(session, _agreement(session, revision.agreement_id).community)
    unsigned = [p for p in everyone if p not in signed]
    if not unsigned and version.status == "approved":
        version.status, version.signed_on = "signed", local_date(ctx.now())
        session.flush()
        agreement = _agreement(session, revision.agreement_id)
        document_id = _document(ctx, "agreement_version", f"avtale-{agreement.id}-v{version.number}-signert.pdf",
                                _version_context(session, agreement, version, local_date(ctx.now())))
        event(ctx, revision.agreement_id, "signed_by_all", version.id, document_id=document_id)
        session.flush()
    return {"unsigned": unsigned, "all_signed": not unsigned}


def bring_into_force(revision_id: int, *, ctx: StepContext) -> dict:
    """The effective date has come: the version is in force and the one before it superseded, today."""
    session = ctx.session
    revision = _revision(session, revision_id)
    version = _version(session, revision)
    today = local_date(ctx.now())
    for old in session.scalars(select(AgreementVersion).where(
            AgreementVersion.agreement_id == revision.agreement_id, AgreementVersion.status == "in_force",
            AgreementVersion.id != version.id)):
        old.status, old.superseded_on = "superseded", today
        event(ctx, revision.agreement_id, "superseded", old.id)
    version.status, revision.stage = "in_force", "evaluation"
    event(ctx, revision.agreement_id, "in_force", version.id, effective_from=today)
    session.flush()
    return {"status": version.status, "in_force_from": today.isoformat()}


def record_evaluation(revision_id: int, planned_for: str, outcome: str, revision_needed: bool = False, *,
                      ctx: StepContext) -> dict:
    """AU's evaluation on a planned date; ``revision_needed`` starts the next revision cycle."""
    session = ctx.session
    revision = _revision(session, revision_id)
    day = _date(planned_for, "planned_for")
    evaluation = session.scalar(select(AgreementEvaluation).where(
        AgreementEvaluation.version_id == revision.version_id, AgreementEvaluation.planned_for == day))
    if evaluation is None:
        evaluation = AgreementEvaluation(agreement_id=revision.agreement_id, version_id=revision.version_id,
                                         planned_for=day)
        session.add(evaluation)
    evaluation.status, evaluation.outcome = "done", outcome
    evaluation.revision_needed, evaluation.done_by, evaluation.done_at = bool(revision_needed), ctx.actor, ctx.now()
    event(ctx, revision.agreement_id, "evaluated", revision.version_id, planned_for=day,
          revision_needed=bool(revision_needed))
    session.flush()
    return {"planned_for": day.isoformat(), "revision_needed": bool(revision_needed), "outcome": outcome}


def end_revision(revision_id: int, *, ctx: StepContext) -> dict:
    revision = _revision(ctx.session, revision_id)
    revision.stage, revision.ended_at = "done", ctx.now()
    ctx.session.flush()
    return {"stage": revision.stage}


# -- reads (the CLI and the pages)

def current_version(session: Session, agreement_id: int) -> AgreementVersion | None:
    """The version in force, else the newest."""
    versions = session.scalars(select(AgreementVersion).where(AgreementVersion.agreement_id == agreement_id)
                               .order_by(AgreementVersion.number.desc())).all()
    return next((v for v in versions if v.status == "in_force"), versions[0] if versions else None)


def list_agreements(session: Session, community: str | None = None, today: date | None = None) -> list[dict]:
    """The register: ``[{"id", "community", "letter", "title", "version", "status", "effective_from",
    "next_evaluation"}]``, per community, the overall agreement first, then by letter."""
    query = select(Agreement).where(Agreement.status == "active")
    if community:
        query = query.where(Agreement.community == community)
    rows = []
    for agreement in sorted(session.scalars(query), key=lambda a: (a.community, a.kind != "overall",
                                                                   a.letter is None, a.letter or "", a.title)):
        version = current_version(session, agreement.id)
        next_evaluation = session.scalar(select(func.min(AgreementEvaluation.planned_for)).where(
            AgreementEvaluation.agreement_id == agreement.id, AgreementEvaluation.status == "planned",
            *([AgreementEvaluation.planned_for >= today] if today else [])))
        rows.append({"id": agreement.id, "community": agreement.community, "letter": agreement.letter,
                     "title": agreement.title, "version": version.number if version else None,
                     "status": version.status if version else None,
                     "effective_from": version.effective_from.isoformat() if version and version.effective_from
                     else None, "next_evaluation": next_evaluation.isoformat() if next_evaluation else None})
    return rows


def events(session: Session, agreement_id: int) -> list[AgreementEvent]:
    return list(session.scalars(select(AgreementEvent).where(AgreementEvent.agreement_id == agreement_id)
                                .order_by(AgreementEvent.at, AgreementEvent.id)))


def event_detail(row: AgreementEvent) -> dict:
    try:
        return json.loads(row.detail) if row.detail else {}
    except ValueError:
        return {}


def register(registry) -> None:
    for function in (import_agreement, split, choices, start_revision, record_mandate, set_up_group, save_draft,
                     status_report, open_hearing, record_answer, close_hearing, answer_comments, record_anchoring,
                     anchoring_done,
                     record_approval, record_signature, unsigned_parties, bring_into_force, record_evaluation,
                     end_revision):
        registry.register(f"agreements.{function.__name__}", function)
