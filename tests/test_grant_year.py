"""A whole simulated grant year, as in Helsefellesskap Vest-Viken 2025: driven only through the runtime and
the scheduler with a moved clock.

A call with deadlines 1 May and 1 October; 14 applications (one withdrawn, one returned once as incomplete,
one whose co-signer refuses once, one late submission refused); committee reviews with a conflict-of-interest
block; FSU input; AU's recommendation within the frame after the 20 % sustainability cut; SSU granting 7
(the May decision registered by the secretariat, the October one arriving as a message); award letters
as PDFs; the ledger checked at each step; reminders and an escalation for a late status report around
1 December; a deviation report mid-year; final reports; the compiled annual report and the XLSX export.
"""

from __future__ import annotations

import io
import json

import openpyxl
import pypdf
import pytest
from sqlalchemy import func, select

from community.records import CaseAttachment, Document, GrantApplication, GrantReport, MeetingCase
from engine.errors import NotAuthorisedError
from engine.models import HumanTask, OutboxMessage, TaskNotice
from tests.grant_driver import GrantYear, application_form

VV = "Helsefellesskap Vest-Viken"
HF = "Vestre Viken HF"


def _pdf_text(rt, document_id: int) -> str:
    with rt.Session() as s:
        content = s.get(Document, document_id).content
    return " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages).replace("\xa0", " ")


def _open(rt, element: str) -> list:
    return [t for t in rt.tasks() if t.name == element]


def _apply_signed(y: GrantYear, ref: str, applicant: str, org: str, partners: dict[str, str], title: str,
                  amount: int, call_id: int, start: str = "2025-07-01", end: str = "2026-06-30") -> None:
    """Fill, co-sign (each partner by a person of that organisation) and submit; AU finds it complete."""
    budget = [(org, int(start[:4]), amount // 2), *[(p, int(start[:4]), amount // 2 // len(partners))
                                                      for p in partners]]
    y.apply(ref, applicant, call_id, application_form(title, org, list(partners), budget, start, end, applicant))
    for signer in partners.values():
        y.cosign(ref, signer)
    y.submit(ref, applicant)


def test_a_whole_grant_year(year):
    y, rt = year, year.rt

    # -- January: money for the year, the conference set-aside, and the call --------------------------
    y.connector("ledger.allocate", {"year": 2025, "amount": 9_000_000, "reference": "Tildelingsbrev HSØ 2025",
                                    "community": VV}, "admin")
    # the reporting year starts: the yearly process sets the conference money aside, not a person
    y.start("grant_reporting", "vera", {"year": 2025, "community": VV}, ref="report2025")
    assert y.ledger(2025)["set_aside"] == 100_000 and y.ledger(2025)["free"] == 8_900_000
    call_id = y.open_round("round", "vera", ["2025-05-01", "2025-10-01"], 8_000_000, VV, cut=20, reviewers=2)

    # -- Spring intake (deadline 1 May, a public holiday, so Friday 2 May) ------------------------------
    y.at("2025-02-10T10:00")
    # A1 is returned once as incomplete
    _apply_signed(y, "a1", "ingrid", "Drammen kommune", {HF: "jon"}, "Felles rehabiliteringsforløp", 600_000,
                  call_id)
    y.check("a1", "vera", complete=False, comments="Effektmålene må tallfestes.")
    assert [t.name for t in rt.tasks(y.instance_id("a1"))] == ["fill_application"]
    assert y.data("a1")["completeness_comments"] == "Effektmålene må tallfestes."
    refill = y.task("a1", "fill_application", "ingrid")  # the applicant's form shows what is missing
    assert rt.task_data(refill)["completeness_comments"] == "Effektmålene må tallfestes."
    assert "completeness_comments" in rt.form_for(refill).json_schema["properties"]
    assert y.application_row("a1").status == "returned"
    y.complete("fill_application", "a1", "ingrid", {**application_form(
        "Felles rehabiliteringsforløp", "Drammen kommune", [HF],
        [("Drammen kommune", 2025, 300_000), (HF, 2025, 300_000)], contact="ingrid"),
        "effect_goals": "30 % færre reinnleggelser innen 2026."})
    y.cosign("a1", "jon")
    y.submit("a1", "ingrid")
    y.check("a1", "vera")
    # A2: Lier kommune refuses to co-sign once; the application goes back with the reason
    y.apply("a2", "hege", call_id, application_form(
        "Kombinerte stillinger i psykisk helse", "Bærum kommune", [HF, "Lier kommune"],
        [("Bærum kommune", 2025, 400_000), ("Lier kommune", 2025, 200_000), (HF, 2025, 200_000)], contact="hege"))
    y.cosign("a2", "jon")
    y.cosign("a2", "marit", signed=False, reason="Budsjettet er ikke forankret i Lier kommune.")
    assert [t.name for t in rt.tasks(y.instance_id("a2"))] == ["fill_application"]
    assert y.data("a2")["cosign_refusals"] == [{"organisation": "Lier kommune", "by": "marit",
                                                 "reason": "Budsjettet er ikke forankret i Lier kommune."}]
    refill = y.task("a2", "fill_application", "hege")  # the applicant's form shows the partner's reason
    assert rt.task_data(refill)["cosign_comments"] == "Lier kommune: Budsjettet er ikke forankret i Lier kommune."
    assert "cosign_comments" in rt.form_for(refill).json_schema["properties"]
    y.complete("fill_application", "a2", "hege", application_form(
        "Kombinerte stillinger i psykisk helse", "Bærum kommune", [HF, "Lier kommune"],
        [("Bærum kommune", 2025, 400_000), ("Lier kommune", 2025, 100_000), (HF, 2025, 200_000)], contact="hege"))
    y.cosign("a2", "jon")
    y.cosign("a2", "marit")
    y.submit("a2", "hege")
    y.check("a2", "vera")
    spring = {"a3": ("kari", "Ringerike kommune", "Digital hjemmeoppfølging", 500_000),
              "a4": ("leif", "Kongsberg kommune", "Eldrehelsekoordinator i Kongsberg", 800_000),
              "a5": ("marit", "Lier kommune", "Barn og unge: felles forløp", 500_000),
              "a6": ("oda", "Øvre Eiker kommune", "Hospitering for sykepleiere", 400_000)}
    for ref, (applicant, org, title, amount) in spring.items():
        _apply_signed(y, ref, applicant, org, {HF: "jon"}, title, amount, call_id)
        y.check(ref, "vera")
    with rt.Session() as s:  # received applications are public: title, applicant, amount applied for
        from community.connectors.grants import public_list
        public = public_list(s, call_id)
    assert [p["title"] for p in public][:2] == ["Felles rehabiliteringsforløp", "Kombinerte stillinger i psykisk helse"]
    assert public[0] == {"application_id": public[0]["application_id"], "title": "Felles rehabiliteringsforløp",
                         "applicant": "Drammen kommune", "amount_applied": 600_000, "status": "registered"}

    # reviews: Drammen's member cannot claim Drammen's application (conflict of interest: the main
    # applicant's organisation); the hospital's member may, since co-signing is no personal conflict
    a1_review = _open(rt, "review_application")[0]
    with pytest.raises(NotAuthorisedError, match="conflict of interest: you are a member of Drammen kommune"):
        rt.claim(a1_review.id, "lars")
    assert rt.why_not(a1_review.id, "eva") is None
    assert rt.why_not(a1_review.id, "lars") == "conflict of interest: you are a member of Drammen kommune"
    reviewers = {"a1": ("ola", "tone"), "a2": ("ola", "tone"), "a3": ("ola", "tone"), "a4": ("lars", "tone"),
                 "a5": ("ola", "lars"), "a6": ("ola", "lars")}
    scores = {"a1": 5, "a2": 3, "a3": 4, "a4": 5, "a5": 4, "a6": 2}
    y.review("a1", "ola", scores["a1"])
    [second] = [t for t in rt.tasks(y.instance_id("a1")) if t.name == "review_application"]
    with pytest.raises(NotAuthorisedError, match="already have another 'Vurder søknad' task"):
        rt.claim(second.id, "ola")  # one review per member and application
    for ref, members in reviewers.items():
        for member in members[1:] if ref == "a1" else members:
            y.review(ref, member, scores[ref])

    # A3 is withdrawn before the decision
    y.at("2025-04-22T12:00")
    y.message("withdraw_application", {"application_id": y.data("a3")["application_id"]},
              {"reason": "Prosjektet utsettes."})
    assert rt.instance(y.instance_id("a3")).status == "completed", rt.instance(y.instance_id("a3")).error
    assert y.application_row("a3").status == "withdrawn"

    y.at("2025-05-02T20:00")
    assert rt.instance(y.instance_id("round")).timers[0]["task"] == "intake_closes"  # open until 2 May ends
    y.at("2025-05-05T08:00")
    y.complete("committee_assessment", "round", "eva",
               {"assessment_summary": "Fem søknader vurdert mot kriteriene.", "assessment_done": True})
    y.complete("fsu_input", "round", "fredrik", {"fsu_input": "FSU støtter særlig tiltak for skrøpelige eldre."})
    ids = {ref: y.data(ref)["application_id"] for ref in ("a1", "a2", "a4", "a5", "a6")}
    summary = y.data("round")["summary"]
    assert [a["application_id"] for a in summary["applications"]][:2] == sorted([ids["a1"], ids["a4"]])
    assert summary["available"] == 6_400_000  # 8 000 000 less the 20 % sustainability cut
    proposal = {"a1": 400_000, "a4": 600_000, "a5": 300_000, "a2": 0, "a6": 0}
    # a recommendation that leaves out an application is sent back with the reason
    y.complete("au_recommendation", "round", "vera", {
        "recommendation": [{"application_id": ids["a1"], "proposed_amount": 400_000, "rank": 1}],
        "proposed_conclusion": "SSU innvilger."})
    assert "mangler søknad" in y.data("round")["recommendation_error"]
    y.complete("au_recommendation", "round", "vera", {
        "recommendation": [{"application_id": ids[r], "proposed_amount": a, "rank": i + 1}
                           for i, (r, a) in enumerate(proposal.items())],
        "proposed_conclusion": "SSU innvilger tre søknader med til sammen 1 300 000 kr."})
    case_id = y.data("round")["case_id"]
    with rt.Session() as s:
        case = s.scalar(select(MeetingCase).where(MeetingCase.case_number == case_id))
        assert (case.case_type, case.status, case.community, case.committee) == ("Beslutning", "registered", VV, "SSU")
        background = case.background.replace("\xa0", " ")
        attachments = list(s.scalars(select(CaseAttachment.document_id).where(CaseAttachment.case_id == case.id)
                                     .order_by(CaseAttachment.number)))
    # SSU gets the ranked recommendation with amounts, the committee's assessment and FSU's input, in the
    # background and as the attached recommendation (PDF)
    assert ("Prioritert liste: 1. «Felles rehabiliteringsforløp» (Drammen kommune): omsøkt 600 000 kr, "
            "foreslått 400 000 kr. 2. «Eldrehelsekoordinator i Kongsberg» (Kongsberg kommune): omsøkt 800 000 kr, "
            "foreslått 600 000 kr.") in background
    assert "Foreslått til sammen 1 300 000 kr av 6 400 000 kr tilgjengelig etter bærekraftskuttet (20 %)" in background
    assert "FSU: FSU støtter særlig tiltak for skrøpelige eldre." in background
    assert "Vurderingskomiteen: Fem søknader vurdert mot kriteriene." in background
    [recommendation_pdf] = attachments
    text = " ".join(_pdf_text(rt, recommendation_pdf).split())
    for expected in ("Innstilling til SSU", "Felles rehabiliteringsforløp", "Drammen kommune", "600 000 kr",
                     "400 000 kr", "Hospitering for sykepleiere", "FSU støtter særlig tiltak for skrøpelige eldre.",
                     "SSU innvilger tre søknader med til sammen 1 300 000 kr."):
        assert expected in text, expected
    y.at("2025-06-12T14:00")
    y.complete("register_ssu_decision", "round", "sverre", {
        "conclusion": "SSU innvilger i tråd med innstillingen.",
        "decisions": [{"application_id": ids[r], "granted": a > 0, "amount": a,
                       "reason": "" if a else "Søknaden nådde ikke opp innenfor rammen."}
                      for r, a in proposal.items()]})
    assert {r: y.application_row(r).status for r in proposal} == {
        "a1": "granted", "a4": "granted", "a5": "granted", "a2": "rejected", "a6": "rejected"}
    assert y.ledger(2025)["reserved"] == 1_300_000
    assert y.ledger(2025)["free"] == 8_900_000 - 1_300_000
    award = y.data("a1")["award_letter"]
    text = _pdf_text(rt, award["document_id"])
    assert "Felles rehabiliteringsforløp" in text and "400 000 kr" in text and case_id in text
    assert "Søknaden nådde ikke opp" in _pdf_text(rt, y.data("a2")["rejection_letter"]["document_id"])
    # the letters go out attached to their mails (the outbox holds copies; delivery is the scheduler's)
    from engine.mail import outbox
    mails = {m["subject"]: m for m in outbox(rt.Session)}
    award_mail = mails["Tilskudd innvilget: Felles rehabiliteringsforløp"]
    assert award_mail["attachments"] == [y.data("a1")["award_letter"]["filename"]]
    assert award_mail["attachments"][0].endswith(".pdf") and y.data("a1")["award_mail"]["attachments"]
    assert mails["Søknad om tilskudd: Kombinerte stillinger i psykisk helse"]["attachments"] == [
        y.data("a2")["rejection_letter"]["filename"]]
    y.connector("ledger.spend_set_aside", {"year": 2025, "amount": 50_000, "purpose": "Partnerskapsmøtet 5. juni",
                                           "community": VV}, "admin")

    # -- A deviation report in the middle of the year goes to AU at once --------------------------------
    y.at("2025-09-15T09:00")
    y.message("deviation_report", {"application_id": ids["a5"]},
              {"description": "Prosjektleder har sluttet.", "consequences": "Oppstart av gruppe 2 utsettes.",
               "reported_by": "marit"})
    [deviation] = [t for t in rt.tasks(y.instance_id("a5")) if t.name == "review_deviation"]
    rt.complete(deviation.id, "vera", {"deviation_response": "Tas til etterretning; ny plan innen 1. oktober.",
                                       "deviation_accepted": True})

    # -- Autumn intake (deadline 1 October) ------------------------------------------------------------
    autumn = {"a7": ("nils", "Ål kommune", "Ambulant team i Hallingdal", 700_000),
              "a8": ("oda", "Øvre Eiker kommune", "Felles legevaktsamarbeid", 600_000),
              "a9": ("pia", "Flesberg kommune", "Frisklivssentral i Numedal", 500_000),
              "a10": ("hege", "Bærum kommune", "Samhandlingsforløp for skrøpelige eldre", 900_000),
              "a11": ("ingrid", "Drammen kommune", "Gravide med rusproblemer", 400_000),
              "a12": ("kari", "Ringerike kommune", "Barn som pårørende", 300_000),
              "a13": ("leif", "Kongsberg kommune", "Digital trygghet", 350_000)}
    y.at("2025-09-01T10:00")
    for ref, (applicant, org, title, amount) in autumn.items():
        _apply_signed(y, ref, applicant, org, {HF: "jon"}, title, amount, call_id, "2026-01-01", "2026-12-31")
        y.check(ref, "vera")
        y.review(ref, "tone", 4)
        y.review(ref, "lars" if org != "Drammen kommune" else "ola", 3)
    y.at("2025-10-03T09:00")  # intake closed on 1 October: A14 comes too late
    y.apply("a14", "marit", call_id, application_form("For sent innsendt", "Lier kommune", [HF],
                                                      [("Lier kommune", 2026, 100_000)], contact="marit"))
    y.cosign("a14", "jon")
    view = y.submit("a14", "marit")
    assert view.status == "completed", view.error
    assert "Søknadsfristen" in view.data["submission_refused"] and "01.10.2025" in view.data["submission_refused"]
    # the applicant sees it: the application ends as "came too late", is on record as refused, and a mail
    # with the reason goes to the contact person
    assert {"id": "end_refused", "name": "Søknaden kom for sent"} in rt.steps(y.instance_id("a14"))["done"]
    late_row = y.application_row("a14")
    assert (late_row.status, late_row.deadline) == ("refused_late", None)
    assert "01.10.2025" in late_row.decision_reason
    with rt.Session() as s:
        [late_mail] = s.scalars(select(OutboxMessage).where(OutboxMessage.instance_id == y.instance_id("a14"))).all()
        assert late_mail.to_address == "marit@example.no"
        assert late_mail.subject == "Søknaden kom for sent: For sent innsendt"
        assert "01.10.2025" in late_mail.body
    y.complete("committee_assessment", "round", "eva",
               {"assessment_summary": "Sju søknader vurdert.", "assessment_done": True})
    y.complete("fsu_input", "round", "fredrik", {"fsu_input": "Ingen merknader."})
    autumn_ids = {ref: y.data(ref)["application_id"] for ref in autumn}
    granted_autumn = {"a7": 500_000, "a8": 500_000, "a9": 500_000, "a10": 500_000}
    y.complete("au_recommendation", "round", "vera", {
        "recommendation": [{"application_id": autumn_ids[r], "proposed_amount": granted_autumn.get(r, 0),
                            "rank": i + 1} for i, r in enumerate(autumn)],
        "proposed_conclusion": "SSU innvilger fire søknader med til sammen 2 000 000 kr."})
    autumn_case = y.data("round")["case_id"]
    # the October decision comes from the meeting as a message (as `samflyt message ssu_decision` sends it);
    # the first one leaves out an application, so it goes to the secretariat with the reason
    y.at("2025-11-20T15:00")
    result = y.message("ssu_decision", {"case_id": autumn_case}, {
        "conclusion": "SSU innvilger i tråd med innstillingen.",
        "decisions": [{"application_id": autumn_ids[r], "granted": r in granted_autumn,
                       "amount": granted_autumn.get(r, 0)} for r in autumn if r != "a13"]})
    assert result.status == "delivered"
    assert [t.name for t in rt.tasks(y.instance_id("round"))] == ["register_ssu_decision"]
    assert y.task("round", "register_ssu_decision", "sverre")
    assert y.data("round")["decision_error"] == f"Vedtaket mangler søknad {autumn_ids['a13']}."
    assert y.application_row("a7").status == "registered"  # nothing went out
    result = y.message("ssu_decision", {"case_id": autumn_case}, {
        "conclusion": "SSU innvilger i tråd med innstillingen.",
        "decisions": [{"application_id": autumn_ids[r], "granted": r in granted_autumn,
                       "amount": granted_autumn.get(r, 0)} for r in autumn]})
    assert result.status == "delivered"
    assert rt.instance(y.instance_id("round")).status == "completed", rt.instance(y.instance_id("round")).error
    with rt.Session() as s:
        statuses = dict(s.execute(select(GrantApplication.status, func.count())
                                  .group_by(GrantApplication.status)).all())
        assert statuses == {"granted": 7, "rejected": 5, "withdrawn": 1, "refused_late": 1}
        awards = s.scalar(select(func.count()).select_from(Document).where(Document.kind == "award_letter"))
        assert awards == 7
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.subject.like("Tilskudd innvilget:%"))) == 7
    assert y.ledger(2025)["reserved"] == 3_300_000

    # -- Status reports due Monday 1 December: reminders, one late report, the escalation --------------
    y.at("2025-11-17T07:00")  # 10 working days before: the first reminder
    y.at("2025-11-25T10:00")
    spent = {"a1": 350_000, "a5": 250_000}
    # AU returns Drammen's first status report: it goes back to the applicant with AU's comment
    y.complete("status_report", "a1", "ingrid", {
        "implementation": "Gjennomført.", "goal_attainment": "Se vedlegg.", "benefit_realisation": "Ikke målt.",
        "spent": [{"party": "Kommunen", "amount": 350_000}]})
    y.complete("approve_status_report", "a1", "vera", {"report_approved": False,
                                                        "report_comment": "Måloppnåelsen må beskrives."})
    back = y.task("a1", "status_report", "ingrid")
    assert rt.task_data(back)["report_comment"] == "Måloppnåelsen må beskrives."  # shown in the applicant's form
    assert "report_comment" in rt.form_for(back).json_schema["properties"]
    assert [t.name for t in rt.tasks(y.instance_id("a1"))] == ["status_report"]
    with rt.Session() as s:
        returned = s.scalar(select(GrantReport).where(GrantReport.application_id == ids["a1"],
                                                      GrantReport.kind == "status"))
        assert (returned.state, returned.au_comment) == ("returned", "Måloppnåelsen må beskrives.")
    assert y.ledger(2025, VV)["paid"] == 0  # nothing is paid on a returned report
    for ref in spent:
        applicant = {"a1": "ingrid", "a5": "marit"}[ref]
        y.complete("status_report", ref, applicant, {
            "implementation": "Gjennomført som planlagt.", "goal_attainment": "Delmål nådd.",
            "benefit_realisation": "Færre liggedøgn.", "spent": [{"party": "Kommunen", "amount": spent[ref]}]})
        y.complete("approve_status_report", ref, "vera", {"report_approved": True})
    y.at("2025-11-27T07:00")  # 2 working days before: the second reminder, for Kongsberg only
    y.at("2025-12-02T08:00")  # the day after: overdue notice and AU's escalation task
    late = y.instance_id("a4")
    assert [t.name for t in rt.tasks(late)] == ["status_report", "escalate_missing_report"]
    with rt.Session() as s:
        row = s.scalar(select(HumanTask).where(HumanTask.instance_id == late, HumanTask.spec_name == "status_report"))
        assert row.overdue_at is not None
        kinds = sorted(s.scalars(select(TaskNotice.kind).where(TaskNotice.human_task_id == row.id)))
        assert kinds == ["overdue", "reminder-10", "reminder-2"]
        to_leif = s.scalars(select(OutboxMessage.subject).where(
            OutboxMessage.to_address == "leif@kongsberg.example.no"))
        assert sum("Påminnelse" in subject for subject in to_leif) == 2
    y.complete("escalate_missing_report", late, "vera", {"follow_up_action": "Ringt prosjektleder; leveres 4.12."})
    y.at("2025-12-04T09:00")
    y.complete("status_report", "a4", "leif", {
        "implementation": "Forsinket oppstart.", "goal_attainment": "Delvis.", "benefit_realisation": "For tidlig.",
        "spent": [{"party": "Kongsberg kommune", "amount": 500_000}]})
    y.complete("approve_status_report", "a4", "vera", {"report_approved": True})
    assert y.ledger(2025)["paid"] == 350_000 + 250_000 + 500_000

    # -- The annual report to SSU and the export for Helse Sør-Øst ---------------------------------------
    y.at("2025-12-05T09:00")
    # the export was made when 1 December had passed, before Kongsberg reported: AU asks for a fresh one
    assert y.data("report2025")["export"]["projects"] == 2
    y.complete("compile_annual_report", "report2025", "vera",
               {"annual_summary": "Venter på rapporten fra Kongsberg.", "annual_report_approved": False})
    y.complete("compile_annual_report", "report2025", "vera",
               {"annual_summary": "Sju prosjekter fikk tilskudd i 2025.", "annual_report_approved": True})
    export = y.data("report2025")["export"]
    with rt.Session() as s:
        xlsx = s.get(Document, export["xlsx_document_id"]).content
        csv_bytes = s.get(Document, export["csv_document_id"]).content
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("Søknad", "Prosjekt", "Hovedsøker", "Tildelt", "Brukt")
    assert sorted((r[1], r[3], r[4]) for r in rows[1:]) == [
        ("Barn og unge: felles forløp", 300_000, 250_000), ("Eldrehelsekoordinator i Kongsberg", 600_000, 500_000),
        ("Felles rehabiliteringsforløp", 400_000, 350_000)]
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    assert "Eldrehelsekoordinator i Kongsberg" in csv_bytes.decode("utf-8-sig")
    report_text = _pdf_text(rt, y.data("report2025")["annual_report"]["document_id"])
    assert "Sju prosjekter fikk tilskudd i 2025." in report_text and "1 300 000 kr" in report_text

    # -- The year closes: unused set-aside released, free money carried over ------------------------------
    before = y.ledger(2025)
    y.at("2026-01-02T08:00")
    closed = y.ledger(2025)
    assert closed["set_aside"] == 50_000  # 100 000 set aside, 50 000 used, the rest released at the close
    assert closed["carried_out"] == before["free"] + 50_000
    assert closed["free"] == 0
    assert y.ledger(2026)["carried_in"] == closed["carried_out"]
    assert y.ledger(2026)["set_aside"] == 100_000  # next year's conference, set aside by the closing process

    # -- Final reports for the spring projects (ended 30 June 2026; due 60 days later, moved to Monday) -----
    assert y.data("a1")["final_report_deadline"] == "2026-08-31"
    y.at("2026-08-14T10:00")
    for ref, applicant, spent_more in (("a1", "ingrid", 40_000), ("a4", "leif", 100_000), ("a5", "marit", 50_000)):
        y.complete("final_report", ref, applicant, {
            "results": "Varig rutine etablert.", "goal_attainment": "Målene nådd.",
            "benefit_realisation": "Gevinster dokumentert.", "spent": [{"party": "Kommunen", "amount": spent_more}]})
        y.complete("approve_final_report", ref, "vera", {"report_approved": True})
        assert rt.instance(y.instance_id(ref)).status == "completed"
        assert y.application_row(ref).status == "completed"
    closed = y.ledger(2025)
    assert closed["paid"] == 350_000 + 40_000 + 500_000 + 100_000 + 250_000 + 50_000
    assert closed["released"] == (400_000 - 390_000) + (600_000 - 600_000) + (300_000 - 300_000)
    with rt.Session() as s:
        kinds = dict(s.execute(select(GrantReport.kind, func.count()).group_by(GrantReport.kind)).all())
        assert kinds == {"status": 4, "deviation": 1, "final": 3}  # one status report was returned once
        assert s.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.status == "open", HumanTask.spec_name == "status_report")) == 4  # the autumn projects, 2026
    audit_actions = {e["action"] for e in rt.audit()}
    assert {"start", "complete", "timer_fired", "message_delivered", "connector", "task_reminder",
            "task_overdue"} <= audit_actions
    assert json.loads(json.dumps(rt.instance(y.instance_id("round")).data, default=str))["call_id"] == call_id


def test_a_recommendation_over_the_frame_after_the_cut_is_refused(year):
    """1 000 000 kr less the 20 % cut leaves 800 000 kr: two full proposals of 500 000 kr go back to AU with
    the reason, and nothing reaches SSU until AU's proposal fits."""
    y, rt = year, year.rt
    y.connector("ledger.allocate", {"year": 2025, "amount": 2_000_000, "reference": "HSØ 2025", "community": VV},
                "admin")
    call_id = y.open_round("round", "vera", ["2025-02-14"], 1_000_000, VV, cut=20)
    for ref, applicant, org in (("b1", "ingrid", "Drammen kommune"), ("b2", "kari", "Ringerike kommune")):
        _apply_signed(y, ref, applicant, org, {HF: "jon"}, f"Prosjekt {ref}", 500_000, call_id, "2025-03-01",
                      "2025-12-31")
        y.check(ref, "vera")
        y.review(ref, "ola", 4)
        y.review(ref, "tone", 4)
    y.at("2025-02-17T08:00")
    y.complete("committee_assessment", "round", "eva", {"assessment_summary": "To søknader.", "assessment_done": True})
    y.complete("fsu_input", "round", "fredrik", {"fsu_input": "Begge støttes."})
    ids = {ref: y.data(ref)["application_id"] for ref in ("b1", "b2")}
    view = y.complete("au_recommendation", "round", "vera", {
        "recommendation": [{"application_id": ids["b1"], "proposed_amount": 500_000, "rank": 1},
                           {"application_id": ids["b2"], "proposed_amount": 500_000, "rank": 2}],
        "proposed_conclusion": "Begge innvilges."})
    assert view.data["recommendation_error"] == ("Foreslått sum 1000000 kr er mer enn rammen etter bærekraftskuttet "
                                                 "(20 %): 800000 kr er tilgjengelig.")
    assert [t.name for t in rt.tasks(y.instance_id("round"))] == ["au_recommendation"]
    with rt.Session() as s:
        assert s.scalar(select(func.count()).select_from(MeetingCase)) == 0
    view = y.complete("au_recommendation", "round", "vera", {
        "recommendation": [{"application_id": ids["b1"], "proposed_amount": 500_000, "rank": 1},
                           {"application_id": ids["b2"], "proposed_amount": 300_000, "rank": 2}],
        "proposed_conclusion": "Begge innvilges, den andre med redusert beløp."})
    assert view.data["recommendation_error"] == "" and view.data["case_id"]
    assert [t.name for t in rt.tasks(y.instance_id("round"))] == ["register_ssu_decision"]
