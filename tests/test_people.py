"""People find their own work: the starter has the case's first task, an applicant has "Mine søknader"
with each application's status and decision, a case page offers its documents (the award letter) and the
grant pages their spreadsheets, a sent application says where it went, and signing in speaks Norwegian.

Flask's test client on the grant bundle with its seed users (tests/test_web.py's ``site``); every page is
asked as the person who would ask it, and as one who must be refused.
"""

from __future__ import annotations

import io
import json

import openpyxl
import pypdf
from sqlalchemy import select

from engine import accounts
from engine.models import AuditEvent, HumanTask
from tests.test_web import _form, client_for, site  # noqa: F401 - the web app on the grant bundle (fixture)

VF = "Helsefellesskapet i Vestfold"
SIV = "Sykehuset i Vestfold HF"


def _text(response) -> str:
    return response.get_data(as_text=True)


def _outsider(app, y, user: str = "emma"):
    """A signed-in applicant of another municipality, who has nothing to do with Ada's application."""
    with y.rt.session() as s:
        accounts.set_password(s, user, f"passord-{user}")
    client = app.test_client()
    assert client.post("/sign-in", data={"username": user, "password": f"passord-{user}"}).status_code == 302
    return client


def _decide(app, y, granted: bool = True, amount: int = 250_000) -> None:
    """Ada's application from the web form through co-signing, AU, two reviews and AU's recommendation to
    SSU's decision (``amount`` granted, or rejected), the money allocated to Vestfold first."""
    y.connector("ledger.allocate", {"year": 2025, "amount": 1_000_000, "reference": "HSØ VF", "community": VF},
                "admin")
    client_for(app, "ada").post(f"/tasks/{y.task('app', 'fill_application')}", data={**_form(), "_action": "complete"})
    y.cosign("app", "bjorn")
    y.submit("app", "ada")
    y.check("app", "per")
    for member in ("mia", "tor"):
        y.review("app", member, 4)
    y.at("2025-05-05T08:00")  # the deadline 1 May is a holiday: it holds until 2 May
    y.complete("committee_assessment", "round", "knut", {"assessment_summary": "Vurdert.", "assessment_done": True})
    y.complete("fsu_input", "round", "frida", {"fsu_input": "Støttes."})
    app_id = y.data("app")["application_id"]
    y.complete("au_recommendation", "round", "per", {
        "recommendation": [{"application_id": app_id, "proposed_amount": amount, "rank": 1}],
        "proposed_conclusion": "Innvilges."})
    y.complete("register_ssu_decision", "round", "siri", {
        "conclusion": "Innvilget." if granted else "Avslått.",
        "decisions": [{"application_id": app_id, "granted": granted, "amount": amount if granted else 0}]})


def test_whoever_starts_a_case_has_its_first_task(site):  # noqa: F811 - the fixture imported above
    app, y = site
    # the fixture's start went through the runtime as `samflyt start --as ada` does
    with y.rt.Session() as s:
        row = s.scalar(select(HumanTask).where(HumanTask.instance_id == y.instance_id("app")))
        assert (row.spec_name, row.claimed_by) == ("fill_application", "ada")
        claims = s.scalars(select(AuditEvent).where(AuditEvent.action == "claim",
                                                    AuditEvent.instance_id == y.instance_id("app"))).all()
        assert [(c.actor, json.loads(c.details)) for c in claims] == [("ada", {"at_start": True})]
    # from the start page: the new case's first task is under "Mine oppgaver", not among the available
    emma = _outsider(app, y)
    started = emma.post("/start/grant_application", data={"call_id": str(y.data("round")["call_id"])})
    assert started.status_code == 302 and "/tasks/" in started.location
    mine = _text(emma.get("/tasks"))
    assert "Fyll ut søknad" in mine
    assert "Fyll ut søknad" not in _text(emma.get("/tasks?view=available"))
    # an admin may start anything, but a task they could do only as admin is left to the applicants
    admin_case = y.start("grant_application", "admin", {"call_id": y.data("round")["call_id"]})
    with y.rt.Session() as s:
        row = s.scalar(select(HumanTask).where(HumanTask.instance_id == admin_case))
        assert row.claimed_by is None


def test_a_sent_application_says_where_it_went_and_my_applications_follow_it(site):  # noqa: F811 - the fixture imported above
    app, y = site
    ada = client_for(app, "ada")
    sent = ada.post(f"/tasks/{y.task('app', 'fill_application')}", data={**_form(), "_action": "complete"},
                    follow_redirects=True)
    assert f"Sendt til {SIV}: Signer søknad" in _text(sent)
    assert "Mine søknader" in _text(ada.get("/tasks"))  # the menu entry
    page = _text(ada.get("/applications"))
    assert "Trygg hjemkomst" in page and f"Venter på signatur fra {SIV}" in page
    assert f'href="/instances/{y.instance_id("app")}"' in page
    assert f"Waiting for signature from {SIV}" in _text(ada.get("/applications?lang=en"))
    assert f"Ventar på signatur frå {SIV}" in _text(ada.get("/applications?lang=nn"))
    ada.get("/applications?lang=nb")
    y.cosign("app", "bjorn")
    assert "Signert: klar til å sende" in _text(ada.get("/applications"))
    y.submit("app", "ada")
    assert "Til vurdering" in _text(ada.get("/applications"))
    # another applicant has none of Ada's, and readers who do not apply have no such menu entry
    assert "Trygg hjemkomst" not in _text(client_for(app, "bjorn").get("/applications"))
    assert "Du har ingen søknader ennå." in _text(client_for(app, "bjorn").get("/applications"))
    assert "Mine søknader" not in _text(client_for(app, "per").get("/grants"))


def test_a_granted_application_shows_its_amount_and_letter_to_its_applicant_only(site):  # noqa: F811 - the fixture imported above
    app, y = site
    _decide(app, y)
    ada = client_for(app, "ada")
    page = _text(ada.get("/applications"))
    assert "Innvilget 250\u00a0000\u00a0kr" in page and "Tildelingsbrev (PDF)" in page
    case = _text(ada.get(f"/instances/{y.instance_id('app')}"))
    assert "<dt>Innvilget beløp</dt><dd>250\u00a0000\u00a0kr</dd>" in case and "Tildelingsbrev" in case
    link = case.split('href="/documents/')[1].split('"')[0]
    letter = ada.get(f"/documents/{link}")
    assert letter.status_code == 200 and letter.mimetype == "application/pdf"
    assert "250" in pypdf.PdfReader(io.BytesIO(letter.data)).pages[0].extract_text()
    # another applicant gets neither the letter nor the case; an unknown document is not found
    emma = _outsider(app, y)
    assert emma.get(f"/documents/{link}").status_code == 403
    assert emma.get(f"/instances/{y.instance_id('app')}").status_code == 403
    assert "Trygg hjemkomst" not in _text(emma.get("/applications"))
    assert ada.get("/documents/999999").status_code == 404
    assert app.test_client().get(f"/documents/{link}").status_code == 302  # sign in first
    # AU's recommendation is on the round's case page for AU, not for the applicant
    round_page = _text(client_for(app, "per").get(f"/instances/{y.instance_id('round')}"))
    assert "AUs innstilling" in round_page
    recommendation = round_page.split("AUs innstilling")[0].rsplit('href="/documents/', 1)[1].split('"')[0]
    assert client_for(app, "per").get(f"/documents/{recommendation}").mimetype == "application/pdf"
    assert ada.get(f"/documents/{recommendation}").status_code == 403


def test_a_rejected_application_says_so_with_its_letter(site):  # noqa: F811 - the fixture imported above
    app, y = site
    _decide(app, y, granted=False)
    page = _text(client_for(app, "ada").get("/applications"))
    assert "Avslått" in page and "Avslagsbrev (PDF)" in page
    assert "Rejected" in _text(client_for(app, "ada").get("/applications?lang=en"))


def test_the_ledger_and_reports_pages_download_their_spreadsheets(site):  # noqa: F811 - the fixture imported above
    app, y = site
    _decide(app, y)
    per = client_for(app, "per")
    ledger = _text(per.get("/grants/ledger", query_string={"year": 2025, "community": VF}))
    assert "/grants/ledger.xlsx?year=2025" in ledger and "/grants/ledger.csv?year=2025" in ledger
    xlsx = per.get("/grants/ledger.xlsx", query_string={"year": 2025, "community": VF})
    assert xlsx.status_code == 200 and 'filename="ledger-2025.xlsx"' in xlsx.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0] == ["Dato", "Type", "Beløp", "Søknad", "Formål eller referanse"]
    assert rows[1][1:3] == ["Tildeling", 1_000_000] and any(r[1] == "Reservert" and r[2] == 250_000 for r in rows)
    csv = per.get("/grants/ledger.csv", query_string={"year": 2025, "community": VF})
    assert csv.mimetype == "text/csv" and "HSØ VF" in csv.data.decode("utf-8-sig")
    reports = _text(per.get("/grants/reports"))
    assert 'action="/grants/reports/export.xlsx"' in reports and 'formaction="/grants/reports/export.csv"' in reports
    export = per.get("/grants/reports/export.xlsx", query_string={"year": 2025})
    header = [c.value for c in next(openpyxl.load_workbook(io.BytesIO(export.data)).active.iter_rows())]
    assert header[:3] == ["Søknad", "Prosjekt", "Hovedsøker"]
    assert per.get("/grants/reports/export.csv?year=2025").status_code == 200
    ada = client_for(app, "ada")
    assert ada.get("/grants/ledger.xlsx?year=2025").status_code == 403
    assert ada.get("/grants/reports/export.csv?year=2025").status_code == 403


def test_the_public_calls_page_offers_sign_in_and_the_sign_in_request_is_norwegian(site):  # noqa: F811 - the fixture imported above
    app, _ = site
    anonymous = app.test_client()
    calls = _text(anonymous.get("/calls"))
    assert 'href="/sign-in?next=/calls"' in calls and ">Logg inn</a>" in calls
    asked = anonymous.get("/tasks", follow_redirects=True)
    assert "Logg inn for å se denne siden." in _text(asked)
    assert "Please log in" not in _text(asked)
    english = app.test_client()
    english.get("/calls?lang=en")
    assert "Sign in to see this page." in _text(english.get("/applications", follow_redirects=True))
