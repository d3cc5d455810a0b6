"""The agreement revision cycle (``bpmn/agreements/agreement_revision.bpmn``) over two simulated years.

Delavtale j of Vestfold is revised: AU gives the mandate, a working group drafts (with a status report to SSU
on the way), the draft goes on hearing to the hospital and six municipalities (Horten has no input, Larvik
never answers: reminded, then the deadline passes and the hearing closes), the group answers the comments,
every party anchors the text, SSU approves it in a meeting with effective date 01.12, Larvik refuses to sign
once and then signs, the version comes into force on 01.12 (not on the approval day) and the old one is
superseded that day; the May and December evaluations fire and the December one starts the next revision.
Only members of a party answer, anchor and sign for it; every step is in the audit log.
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from community.connectors.agreements import list_agreements
from community.records import (
    AgreementEvaluation,
    AgreementEvent,
    AgreementHearingAnswer,
    AgreementRevision,
    AgreementSignature,
    AgreementVersion,
    CaseAttachment,
    Document,
    MeetingCase,
)
from engine.calendar import add_working_days
from engine.models import OutboxMessage

BPMN = Path(__file__).resolve().parent.parent / "bpmn"
VF = "Helsefellesskapet i Vestfold"
#: the party member of each organisation in bpmn/agreements/demo.json
PARTIES = {"Sykehuset i Vestfold HF": "ragnhild", "Holmestrand kommune": "harald", "Horten kommune": "helga",
           "Tønsberg kommune": "terje", "Færder kommune": "frode", "Sandefjord kommune": "solveig",
           "Larvik kommune": "linn"}
OLD_TEXT = "# Delavtale j\n\nElektronisk meldingsutveksling mellom journalsystemene."
NEW_TEXT = "# Delavtale j – Samarbeid om digitalisering og IKT\n\n- Nasjonale e-helseløsninger\n- Avvik"


def _bundles(rt) -> None:
    for bundle in ("meetings", "agreements"):
        rt.deploy([str(BPMN / bundle)], actor="admin")
        for user in json.loads((BPMN / bundle / "demo.json").read_text(encoding="utf-8"))["users"]:
            rt.add_user(user["username"], user["roles"], user["organisations"], user["display_name"], user["email"])


@pytest.fixture
def revision(year):
    """Vestfold's delavtale j in the register (one version, in force), the bundles and their people."""
    _bundles(year.rt)
    year.at("2025-08-18T09:00")
    agreement = year.connector("agreements.import_agreement", {
        "community": VF, "letter": "j", "title": "Samarbeid om IKT-løsninger lokalt",
        "history": "Revidert juli 2015, evaluert desember 2016.",
        "versions": [{"label": "revidert juli 2015", "status": "in_force", "text": OLD_TEXT}]}, "admin")
    return year, agreement["agreement_id"]


def _open_party_task(y, element: str, organisation: str) -> str:
    """The open task ``element`` of the revision for ``organisation`` (its party member may work it)."""
    return y.task("rev", element, PARTIES[organisation])


def _check_only_the_party(y, element: str, organisation: str) -> None:
    """Only members of the party may work its task: not another party, not the working group, not AU."""
    task = _open_party_task(y, element, organisation)
    assert y.rt.why_not(task, PARTIES[organisation]) is None
    others = [u for o, u in PARTIES.items() if o != organisation] + ["renate", "per"]
    assert all(y.rt.why_not(task, user) is not None for user in others)


def _version(y, number: int) -> AgreementVersion:
    with y.rt.Session() as s:
        return s.scalar(select(AgreementVersion).where(AgreementVersion.number == number))


def test_a_revision_over_two_years(revision, smtp):
    y, agreement_id = revision
    rt = y.rt

    # need -> mandate (a case to AU, whose conclusion comes back as a message)
    y.start("agreement_revision", "per", {"agreement_id": agreement_id}, ref="rev")
    y.complete("describe_need", "rev", "per", {
        "agreement_id": str(agreement_id), "source": "case", "reason": "Delavtale j ivaretar ikke veilederen (2023).",
        "mandate": "AU nedsetter en arbeidsgruppe som reviderer delavtale j.", "mandate_committee": "AU"})
    case_id = y.data("rev")["case_id"]
    with rt.Session() as s:
        case = s.scalar(select(MeetingCase).where(MeetingCase.case_number == case_id, MeetingCase.committee == "AU"))
        assert (case.community, case.case_type, case.reply_message) == (VF, "Beslutning", "au_decision")
    assert [t.name for t in rt.tasks(y.instance_id("rev"))] == []
    y.connector("meetings.conclude", {"number": case_id, "community": VF, "committee": "AU",
                                      "conclusion": "Arbeidsgruppe nedsettes."}, "admin")

    # working group: a leader and members with the role workgroup in the community
    y.complete("set_up_group", "rev", "per", {"leader": "renate", "members": ["kjetil"],
                                              "group_deadline": "2025-10-01"})
    assert y.data("rev")["workgroup"] == ["renate", "kjetil"]
    assert rt.why_not(y.task("rev", "draft_text"), "per") is not None  # AU does not write the group's text

    # drafting, with a status report to SSU on the way (a case of type Orientering)
    y.at("2025-08-25T09:00")
    y.complete("draft_text", "rev", "kjetil", {"text": "# Utkast", "next_step": "status_report",
                                               "status_report": "Arbeidsgruppen har hatt to møter."})
    with rt.Session() as s:
        status = s.scalar(select(MeetingCase).where(MeetingCase.case_type == "Orientering"))
        assert (status.committee, status.community, status.background) == (
            "SSU", VF, "Arbeidsgruppen har hatt to møter.")
    y.at("2025-09-01T09:00")
    y.complete("draft_text", "rev", "renate", {"text": NEW_TEXT, "next_step": "hearing", "hearing_working_days": 10})
    with rt.Session() as s:  # the hearing letter (PDF) goes by mail to the people of every party
        letters = s.scalars(select(OutboxMessage).where(OutboxMessage.subject.like("Høring:%"))).all()
        letter = s.scalar(select(Document).where(Document.kind == "agreement_hearing_letter"))
        assert sorted(m.to_address.split("@")[0] for m in letters) == sorted(PARTIES.values())
        assert "Svar innen 15.09.2025" in _pdf_text(letter.content)
    deadline = add_working_days(date(2025, 9, 1), 10)
    assert y.data("rev")["hearing_deadline"] == deadline.isoformat() == "2025-09-15"
    assert _version(y, 2).status == "hearing" and _version(y, 1).status == "in_force"

    # the hearing: a task per party; Horten has no input, Tønsberg comments, Larvik never answers
    hearing_tasks = [t for t in rt.tasks(y.instance_id("rev")) if t.name == "answer_hearing"]
    assert sorted(rt.task_data(t.id)["hearing_party"] for t in hearing_tasks) == sorted(PARTIES)
    _check_only_the_party(y, "answer_hearing", "Larvik kommune")
    y.complete("answer_hearing", "rev", "helga", {"answer_kind": "no_input"})
    first = y.task("rev", "answer_hearing", "terje")  # "we have comments" without any: the task comes back
    y.complete("answer_hearing", "rev", "terje", {"answer_kind": "comments", "comments": "  "})
    assert y.task("rev", "answer_hearing", "terje") != first
    y.complete("answer_hearing", "rev", "terje", {"answer_kind": "comments", "comments": "Ta med velferdsteknologi."})
    for organisation in ("Sykehuset i Vestfold HF", "Holmestrand kommune", "Færder kommune", "Sandefjord kommune"):
        y.complete("answer_hearing", "rev", PARTIES[organisation], {"answer_kind": "no_input"})
    y.at("2025-09-08T09:00")  # 5 working days before the deadline: Larvik is reminded
    with rt.Session() as s:
        mails = s.scalars(select(OutboxMessage).where(OutboxMessage.to_address == "linn@larvik.example.no")
                          .order_by(OutboxMessage.id)).all()
    assert len(mails) == 2  # the hearing letter, then a reminder
    assert mails[0].subject == "Høring: Delavtale j – Samarbeid om IKT-løsninger lokalt (frist 15.09.2025)"
    assert "Høring" not in mails[1].subject
    y.at("2025-09-15T23:59")
    assert [t.name for t in rt.tasks(y.instance_id("rev"))] == ["answer_hearing"]
    y.at("2025-09-16T00:00")  # the deadline has passed: the hearing closes without Larvik
    assert y.data("rev")["hearing_missing"] == ["Larvik kommune"]
    comments = y.data("rev")["hearing_comments"]
    assert [(c["organisation"], c["comments"]) for c in comments] == [("Tønsberg kommune", "Ta med velferdsteknologi.")]
    comments[0] |= {"response": "partly", "response_text": "Tatt inn som eget punkt."}
    y.complete("answer_comments", "rev", "renate", {"hearing_comments": comments,
                                                    "text": NEW_TEXT + "\n- Velferdsteknologi"})
    with rt.Session() as s:
        answers = {a.organisation: a for a in s.scalars(select(AgreementHearingAnswer))}
    assert set(answers) == set(PARTIES) - {"Larvik kommune"}
    assert answers["Horten kommune"].no_input and answers["Horten kommune"].answered_by == "helga"
    assert answers["Tønsberg kommune"].response == "partly"

    # anchoring in the hospital and the six municipalities, each by its own people
    _check_only_the_party(y, "anchor_version", "Sykehuset i Vestfold HF")
    for user in PARTIES.values():
        y.complete("anchor_version", "rev", user, {"anchored": True})
    assert _version(y, 2).status == "anchored"

    # SSU approval in a meeting, with effective date 01.12
    y.complete("prepare_approval", "rev", "per", {
        "effective_from": "2025-12-01", "evaluation_dates": ["2026-05-15", "2026-12-10"],
        "proposed_conclusion": "Revidert delavtale j godkjennes og iverksettes 01.12.25."})
    approval_case = y.data("rev")["case_id"]
    with rt.Session() as s:  # the SSU case carries the text and the comment table as numbered attachments
        case = s.scalar(select(MeetingCase).where(MeetingCase.case_number == approval_case,
                                                  MeetingCase.committee == "SSU"))
        attachments = s.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case.id)
                                .order_by(CaseAttachment.number)).all()
        assert [(a.number, a.title) for a in attachments] == [
            (1, "Delavtale j – Samarbeid om IKT-løsninger lokalt: avtaletekst"), (2, "Høringsinnspill og svar")]
        table = _pdf_text(s.get(Document, attachments[1].document_id).content)
        assert "Ikke svart" in table and "Ingen innspill" in table and "Delvis tatt til følge" in table
    y.start("committee_meeting", "siri", ref="meeting")
    y.complete("plan_meeting", "meeting", "siri", {"committee": "SSU", "community": VF, "meeting_date": "2025-10-23",
                                                   "meeting_time": "09:00", "place": "Tønsberg rådhus"})
    y.complete("build_agenda", "meeting", "siri", {"agenda_cases": [approval_case]})
    y.complete("approve_agenda", "meeting", "hilde", {"agenda_approved": True})
    y.at("2025-10-23T09:00")
    conclusions = rt.task_data(y.task("meeting", "register_conclusions", "siri"))["conclusions"]
    y.complete("register_conclusions", "meeting", "siri", {"conclusions": conclusions})
    approved = _version(y, 2)
    assert (approved.status, approved.approved_case, approved.effective_from) == (
        "approved", approval_case, date(2025, 12, 1))
    assert _version(y, 1).status == "in_force"

    # signatures: Larvik refuses once, back to the working group, then everyone has signed
    _check_only_the_party(y, "sign_agreement", "Tønsberg kommune")
    y.complete("sign_agreement", "rev", "linn", {"signed": False})  # a refusal needs a reason: asked again
    y.complete("sign_agreement", "rev", "linn", {"signed": False, "refusal_reason": "Kommunestyret må behandle den."})
    for organisation, user in PARTIES.items():
        if organisation != "Larvik kommune":
            y.complete("sign_agreement", "rev", user, {"signed": True})
    assert "Larvik kommune: Kommunestyret må behandle den." in y.data("rev")["refusal_summary"]
    y.complete("handle_refusal", "rev", "renate", {"refusal_answer": "Behandlet i kommunestyret 12.11."})
    assert [rt.task_data(t.id)["signatory"] for t in rt.tasks(y.instance_id("rev"))] == ["Larvik kommune"]
    y.complete("sign_agreement", "rev", "linn", {"signed": True})
    with rt.Session() as s:
        signatures = s.scalars(select(AgreementSignature).order_by(AgreementSignature.id)).all()
    assert [(x.organisation, x.signed) for x in signatures if x.organisation == "Larvik kommune"] == [
        ("Larvik kommune", False), ("Larvik kommune", True)]
    assert {x.organisation for x in signatures if x.signed} == set(PARTIES)
    assert _version(y, 2).status == "signed"
    with rt.Session() as s:  # the version with its signature page: every party, who signed for it (by name)
        signed = s.scalar(select(Document).where(Document.filename.like("%-signert.pdf")))
        page = _pdf_text(signed.content)
    assert all(organisation in page and user.capitalize() in page for organisation, user in PARTIES.items())

    # in force on the effective date, not before; the old version superseded that day
    y.at("2025-11-30T23:59")
    assert (_version(y, 2).status, _version(y, 1).status) == ("signed", "in_force")
    y.at("2025-12-01T00:00")
    assert (_version(y, 2).status, _version(y, 1).status) == ("in_force", "superseded")
    assert _version(y, 1).superseded_on == date(2025, 12, 1)
    with rt.Session() as s:
        [row] = [r for r in list_agreements(s, VF) if r["letter"] == "j"]
    assert row | {"id": 0} == {"id": 0, "community": VF, "letter": "j", "title": "Samarbeid om IKT-løsninger lokalt",
                               "version": 2, "status": "in_force", "effective_from": "2025-12-01",
                               "next_evaluation": "2026-05-15"}

    # the evaluations: May (no revision), December (starts the next revision)
    y.at("2026-05-15T07:59")
    assert [t.name for t in rt.tasks(y.instance_id("rev"))] == []
    y.at("2026-05-15T08:00")
    _evaluate(y, "Avtalen fungerer.", False)
    y.at("2026-12-10T08:00")
    _evaluate(y, "Ny nasjonal e-helseplan krever revisjon.", True)
    assert [t.name for t in rt.tasks(y.instance_id("rev"))] == ["describe_need"]
    assert (y.data("rev")["source"], y.data("rev")["reason"]) == (
        "evaluation", "Ny nasjonal e-helseplan krever revisjon.")
    with rt.Session() as s:
        evaluations = s.scalars(select(AgreementEvaluation).order_by(AgreementEvaluation.planned_for)).all()
        revisions = s.scalars(select(AgreementRevision)).all()
        kinds = [e.kind for e in s.scalars(select(AgreementEvent).order_by(AgreementEvent.id))]
    assert [(e.planned_for, e.status, e.revision_needed) for e in evaluations] == [
        (date(2026, 5, 15), "done", False), (date(2026, 12, 10), "done", True)]
    assert [r.stage for r in revisions] == ["evaluation"]  # the next one starts when AU describes the need
    for kind in ("revision_needed", "mandate", "working_group", "draft", "hearing_sent", "hearing_answer",
                 "hearing_closed", "comments_answered", "anchored", "approved", "signature_refused", "signed",
                 "signed_by_all", "in_force", "superseded", "evaluated"):
        assert kind in kinds, kind

    # the next cycle runs in the same instance: a new revision, a new draft (version 3) on hearing
    y.complete("describe_need", "rev", "per", {
        "agreement_id": str(agreement_id), "source": "evaluation", "reason": "Ny nasjonal e-helseplan.",
        "mandate": "Arbeidsgruppen oppdaterer delavtale j.", "mandate_committee": "AU"})
    y.connector("meetings.conclude", {"number": y.data("rev")["case_id"], "community": VF, "committee": "AU",
                                      "conclusion": "Vedtatt."}, "admin")
    y.complete("set_up_group", "rev", "per", {"leader": "kjetil", "group_deadline": "2027-02-01"})
    y.complete("draft_text", "rev", "kjetil", {"text": NEW_TEXT + "\n- E-helseplan", "next_step": "hearing",
                                               "hearing_working_days": 10})
    assert len([t for t in rt.tasks(y.instance_id("rev")) if t.name == "answer_hearing"]) == len(PARTIES)
    assert (_version(y, 3).status, _version(y, 2).status) == ("hearing", "in_force")
    with rt.Session() as s:
        assert [(r.stage, r.ended_at is None) for r in s.scalars(select(AgreementRevision)
                                                                 .order_by(AgreementRevision.id))] == [
            ("done", False), ("hearing", True)]

    # every step in the audit log, with who did it
    audit = rt.audit(y.instance_id("rev"))
    done = {(e["actor"], e["details"].get("element")) for e in audit if e["action"] == "complete"}
    for actor, element in (("per", "describe_need"), ("renate", "draft_text"), ("helga", "answer_hearing"),
                           ("frode", "anchor_version"), ("linn", "sign_agreement"), ("per", "evaluate_agreement")):
        assert (actor, element) in done, (actor, element)


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def _evaluate(y, outcome: str, revision_needed: bool) -> None:
    y.complete("evaluate_agreement", "rev", "per", {"evaluation_outcome": outcome, "revision_needed": revision_needed})
