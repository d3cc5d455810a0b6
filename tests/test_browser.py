"""Browser tests: Debian's Chromium (/usr/bin/chromium) driven by Playwright against the real app on loopback.

An applicant signs in, fills in and submits an application with budget rows; the hospital co-signs; AU
returns it as incomplete and then accepts it; a committee member with a conflict of interest is told why
they cannot take the review, another claims and scores it; the instance page draws the diagram with the
current step marked. Every page type is checked with axe-core (WCAG 2.1 A/AA) in bokmål, nynorsk and
English, and one form is completed with the keyboard only. Screenshots go to ``artifacts/screenshots``.

Without Chromium these tests skip, unless ``SAMFLYT_BROWSER_TESTS=required`` (as in CI), where they fail.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from community.records import CaseFollowUp, MeetingCase
from engine import accounts, clock, db
from engine.models import HumanTask
from tests.grant_driver import GrantYear, application_form, grant_runtime
from web import create_app

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
USERS = ("ada", "bjorn", "per", "knut", "mia", "eva", "admin", "hanne")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

if not Path(CHROMIUM).exists():
    reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("SAMFLYT_BROWSER_TESTS") == "required":
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)

if os.environ.get("SAMFLYT_BROWSER_TESTS") == "required":
    import playwright.sync_api as playwright_api  # required: a missing Playwright fails, never skips
else:
    playwright_api = pytest.importorskip("playwright.sync_api")

#: axe-core's findings per language and page, written to ``artifacts/axe-results.json`` for review
AXE_RESULTS: dict[str, dict[str, Any]] = {}
AXE_FILE = ROOT / "artifacts" / "axe-results.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory, monkeypatch_module):
    """The app on a free loopback port over a fresh SQLite database with the grant bundle and a call."""
    path = tmp_path_factory.mktemp("browser") / "samflyt.db"
    monkeypatch_module.setenv("SAMFLYT_ATTACHMENTS_DIR", str(path.parent / "attachments"))
    engine = db.make_engine(f"sqlite:///{path}")
    db.migrate(engine)
    rt = grant_runtime(engine)
    with rt.session() as s:
        for user in USERS:
            accounts.set_password(s, user, f"passord-{user}")
    year = GrantYear(rt)
    clock.set_now(None)
    year.open_round("round", "per", ["2099-05-01"], 2_000_000, "Helsefellesskapet i Vestfold")
    year.start("grant_application", "ada", {"call_id": year.data("round")["call_id"]}, ref="app",
               title="Trygg hjemkomst")
    app = create_app({"SECRET_KEY": "browser-test", "DATABASE_URL": f"sqlite:///{path}"})
    app.extensions["samflyt_runtime"] = rt
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}", year
    http.shutdown()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


def sign_in(browser, base: str, user: str):
    context = browser.new_context(locale="nb-NO")
    page = context.new_page()
    page.goto(f"{base}/")
    page.fill("#username", user)
    page.fill("#password", f"passord-{user}")
    page.click("button.primary")
    page.wait_for_url(f"{base}/tasks")
    return page


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_task(page, base: str, title: str) -> None:
    """Open a task from "Mine oppgaver" (a case one started gives one its first task), else from the available."""
    page.goto(f"{base}/tasks")
    if not page.get_by_role("link", name=title).count():
        page.goto(f"{base}/tasks?view=available")
    page.get_by_role("link", name=title).first.click()


def answer(page, field_id: str, yes: bool) -> None:
    page.check(f"#{field_id}-{'yes' if yes else 'no'}")


def submit(page) -> None:
    page.get_by_role("button", name="Send inn").click()
    page.wait_for_load_state()


def axe_violations(page, record: tuple[str, str] | None = None) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page; with ``record`` (language, page name) the result is
    kept for ``artifacts/axe-results.json``."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
    response = results.response
    if record is not None:
        language, name = record
        AXE_RESULTS.setdefault(language, {})[name] = {
            "url": page.url, "passes": len(response["passes"]), "incomplete": len(response["incomplete"]),
            "violations": [{"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": len(v["nodes"])}
                           for v in response["violations"]]}
        AXE_FILE.parent.mkdir(parents=True, exist_ok=True)
        AXE_FILE.write_text(json.dumps({"tags": AXE_TAGS, "results": AXE_RESULTS}, ensure_ascii=False, indent=2),
                            encoding="utf-8")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in response["violations"]]


def test_an_application_through_the_browser(server, browser):
    base, year = server
    ada = sign_in(browser, base, "ada")
    open_task(ada, base, "Fyll ut søknad")
    ada.fill("#f-title", "Trygg hjemkomst")
    ada.fill("#f-purpose", "Tryggere utskrivning fra sykehus til hjem.")
    ada.fill("#f-effect_goals", "Færre reinnleggelser.")
    ada.fill("#f-result_goals", "Felles sjekkliste i bruk.")
    ada.check("#f-priority_groups-4")
    ada.fill("#f-responsibility", "Horten kommune leder prosjektet.")
    ada.fill("#f-roles", "Prosjektleder i kommunen, fagperson i sykehuset.")
    ada.fill("#f-applicant_organisation", "Horten kommune")
    ada.fill("#f-partner_organisations-0", "Sykehuset i Vestfold HF")
    ada.fill("#f-budget-0-party", "Horten kommune")
    ada.fill("#f-budget-0-year", "2099")
    ada.fill("#f-budget-0-amount", "200000")
    ada.click("button[name=_add][value=budget]")  # a second budget row, without JavaScript
    ada.fill("#f-budget-1-party", "Sykehuset i Vestfold HF")
    ada.fill("#f-budget-1-year", "2099")
    ada.fill("#f-budget-1-amount", "-100")  # wrong on purpose
    ada.fill("#f-start_date", "2099-07-01")
    ada.fill("#f-end_date", "2099-12-31")
    ada.fill("#f-contact_name", "Ada Søker")
    ada.fill("#f-contact_email", "ada@horten.example.no")
    ada.set_input_files("#f-attachment", files=[{"name": "prosjektplan.pdf", "mimeType": "application/pdf",
                                                 "buffer": b"%PDF-1.7 Prosjektplan for Trygg hjemkomst"}])
    submit(ada)
    summary = ada.locator("#error-summary")
    assert summary.is_visible() and "Beløp (kr)" in summary.inner_text()
    shot(ada, "01-application-with-error")
    assert axe_violations(ada) == []
    ada.fill("#f-budget-1-amount", "100000")
    assert ada.get_by_role("link", name="Filen som er lastet opp").is_visible()  # kept across the error
    submit(ada)
    assert "Oppgaven er fullført" in ada.inner_text("main")

    bjorn = sign_in(browser, base, "bjorn")
    open_task(bjorn, base, "Signer søknad")
    answer(bjorn, "f-signature-signed", True)
    submit(bjorn)
    open_task(ada, base, "Send inn søknad")
    answer(ada, "f-confirm", True)
    submit(ada)

    per = sign_in(browser, base, "per")
    open_task(per, base, "Kontroller at søknaden er komplett")
    answer(per, "f-complete", False)
    per.fill("#f-completeness_comments", "Effektmålene må tallfestes.")
    shot(per, "02-au-returns-incomplete")
    submit(per)
    open_task(ada, base, "Fyll ut søknad")
    assert ada.input_value("#f-title") == "Trygg hjemkomst"  # the returned application keeps its data
    ada.fill("#f-effect_goals", "30 % færre reinnleggelser innen 2100.")
    submit(ada)
    open_task(bjorn, base, "Signer søknad")
    answer(bjorn, "f-signature-signed", True)
    submit(bjorn)
    open_task(ada, base, "Send inn søknad")
    answer(ada, "f-confirm", True)
    submit(ada)
    open_task(per, base, "Kontroller at søknaden er komplett")  # AU approves the resubmitted application
    answer(per, "f-complete", True)
    shot(per, "03-au-approves")
    submit(per)
    assert "Oppgaven er fullført" in per.inner_text("main")
    approved = [e for e in year.rt.audit(year.instance_id("app"))
                if e["action"] == "complete" and e["details"].get("element") == "check_completeness"]
    assert [(e["actor"], e["details"]["data"]["complete"]) for e in approved] == [("per", False), ("per", True)]
    assert "review_application" in {t.name for t in year.rt.tasks(year.instance_id("app"))}

    hanne = sign_in(browser, base, "hanne")  # a member of Horten kommune, the main applicant: a conflict
    hanne.goto(f"{base}/tasks?view=available")
    blocked = hanne.inner_text("main")
    assert "Oppgaver du ikke kan ta" in blocked and "inhabilitet: du tilhører Horten kommune" in blocked
    shot(hanne, "03-committee-conflict-of-interest")

    mia = sign_in(browser, base, "mia")
    open_task(mia, base, "Vurder søknad")
    mia.get_by_role("button", name="Ta oppgaven").click()
    assert "Oppgaven er din." in mia.inner_text("main")
    answer(mia, "f-review-conflict_of_interest", False)
    for i in range(mia.locator("fieldset.row").count()):  # one row per criterion of the call
        mia.fill(f"#f-review-scores-{i}-score", "5")
    mia.fill("#f-review-comment", "Godt forankret.")
    submit(mia)
    assert "Oppgaven er fullført" in mia.inner_text("main")

    instance_id = year.instance_id("app")
    per.goto(f"{base}/instances/{instance_id}")
    per.wait_for_selector("#diagram[data-rendered]")
    assert per.get_attribute("#diagram", "data-rendered") == "true"
    assert per.locator("#diagram .step-current").count() >= 1
    assert per.locator("#diagram .step-done").count() >= 5
    shot(per, "04-instance-diagram")


@pytest.mark.parametrize("language", ["nb", "nn", "en"])
def test_every_page_type_passes_axe(server, browser, language, tmp_path):
    base, year = server
    from tests.test_web import _start_bundle

    year.rt.deploy([str(_start_bundle(tmp_path / "bundle"))], actor="admin")  # a process with a start form
    page = sign_in(browser, base, "admin")
    page.goto(f"{base}/tasks?lang={language}")
    assert page.get_attribute("html", "lang") == language
    task = year.rt.tasks()[0].id
    with year.rt.Session() as s:  # the round's call was drafted by AU: a completed task, shown read-only
        done = s.scalar(select(HumanTask.task_id).where(HumanTask.instance_id == year.instance_id("round"),
                                                        HumanTask.status == "completed").limit(1))
    fresh = year.start("grant_application", "ada", {"call_id": year.data("round")["call_id"]}, ref=f"axe-{language}")
    fill = next(t.id for t in year.rt.tasks(fresh) if t.name == "fill_application")
    year.rt.unclaim(fill, "ada")  # the starter's first task is hers; given back, the admin may submit it empty
    number = year.rt.call_connector("meetings.enqueue_case", {  # a meeting with a case on its agenda
        "case_type": "Orientering", "title": f"Axe {language}", "proposed_conclusion": "Tas til orientering.",
        "background": "Bakgrunn.", "community": "Helsefellesskapet i Vestfold"})["case_id"]
    meeting = year.rt.call_connector("meetings.schedule", {
        "committee": "SSU", "starts_at": "2099-09-25T12:00:00+02:00", "place": "Tønsberg",
        "community": "Helsefellesskapet i Vestfold"})["meeting_id"]
    year.rt.call_connector("meetings.add_to_agenda", {"meeting_id": meeting, "case_id": number})
    year.rt.deploy([str(ROOT / "bpmn" / "meetings")], actor="admin")  # a follow-up of the case, as a task
    year.rt.call_connector("meetings.conclude", {
        "number": number, "community": "Helsefellesskapet i Vestfold", "conclusion": "Tatt til orientering.",
        "follow_ups": [{"description": "Følg opp saken", "responsible_role": "au", "due_date": "2099-10-01"}]})
    with year.rt.Session() as s:
        case_id = s.scalar(select(MeetingCase.id).where(MeetingCase.case_number == number,
                                                        MeetingCase.community == "Helsefellesskapet i Vestfold"))
        follow_up = s.scalar(select(CaseFollowUp.instance_id).where(CaseFollowUp.case_id == case_id))
    answer = next(t.id for t in year.rt.tasks(follow_up) if t.name == "answer_follow_up")
    pages = {"worklist": "/tasks", "available": "/tasks?view=available", "all": "/tasks?view=all",
             "task": f"/tasks/{task}", "completed-task": f"/tasks/{done}",
             "instance": f"/instances/{year.instance_id('round')}",
             "not-found": "/no-such-page", "admin": "/admin", "grants": "/grants",
             "call": f"/grants/calls/{year.data('round')['call_id']}", "ledger": "/grants/ledger",
             "reports": "/grants/reports", "start": "/start", "start-form": "/start/permit",
             "error-form": f"/tasks/{fill}", "open-calls": "/calls",
             "public-call": f"/calls/{year.data('round')['call_id']}", "meetings": "/meetings",
             "meeting": f"/meetings/{meeting}", "cases": "/cases", "case": f"/cases/{case_id}",
             "follow-ups": "/follow-ups?status=all", "follow-up-task": f"/tasks/{answer}",
             "meeting-calendar": "/meetings/calendar?month=2099-09", "new-case": "/cases/new",
             "new-case-errors": "/cases/new"}
    problems = {}
    for name, path in pages.items():
        page.goto(base + path)
        if name == "instance":
            page.wait_for_selector("#diagram[data-rendered]")
        if name == "completed-task":
            assert page.locator(".task-form.readonly").count() == 1
        if name == "error-form":  # submitted empty: the error summary and the errors at their fields
            page.click("button[name=_action][value=complete]")
            page.wait_for_selector("#error-summary")
        if name == "new-case-errors":  # a case without title and proposal: errors tied to their fields
            page.click("button.primary")
            page.wait_for_selector("#error-summary")
        found = axe_violations(page, (language, name))
        if found:
            problems[name] = found
        shot(page, f"axe-{language}-{name}")
    # the admin page's migration form, answered with a trial run's table (two versions of a small process)
    from tests.test_instance_migration import v1, v2

    for number, text in ((1, v1()), (2, v2())):
        (tmp_path / f"case{number}").mkdir()
        (tmp_path / f"case{number}" / "case.bpmn").write_text(text, encoding="utf-8")
        year.rt.deploy([str(tmp_path / f"case{number}")], actor="admin")
        if number == 1:
            year.rt.start("case", actor="admin")
    page.goto(f"{base}/admin")
    page.select_option("#m-process", "case")
    page.fill("#m-from", "1")
    page.fill("#m-to", "2")
    page.click("form[action='/admin/migrate'] button[type=submit]")
    page.wait_for_selector("table.worklist")
    if found := axe_violations(page, (language, "migration")):
        problems["migration"] = found
    shot(page, f"axe-{language}-migration")
    applicant = sign_in(browser, base, "ada")
    applicant.goto(f"{base}/admin?lang={language}")
    assert applicant.get_attribute("html", "lang") == language
    assert applicant.locator("h1").inner_text() != ""
    if found := axe_violations(applicant, (language, "forbidden")):
        problems["forbidden"] = found
    shot(applicant, f"axe-{language}-forbidden")
    context = browser.new_context(locale="nb-NO")
    anonymous = context.new_page()
    anonymous.goto(f"{base}/sign-in?lang={language}")
    if found := axe_violations(anonymous, (language, "sign-in")):
        problems["sign-in"] = found
    anonymous.goto(f"{base}/calls?lang={language}")  # the open calls, read without signing in
    if found := axe_violations(anonymous, (language, "open-calls-signed-out")):
        problems["open-calls-signed-out"] = found
    shot(anonymous, f"axe-{language}-open-calls-signed-out")
    assert problems == {}
    # every page type was checked (other browser test modules add their own pages to the same results)
    assert {*pages, "migration", "forbidden", "sign-in", "open-calls-signed-out"} <= set(AXE_RESULTS[language])
    assert json.loads(AXE_FILE.read_text(encoding="utf-8"))["results"][language]["start"]["violations"] == []


def test_a_form_can_be_completed_with_the_keyboard_only(server, browser):
    base, year = server
    year.start("grant_application", "ada", {"call_id": year.data("round")["call_id"]}, ref="keyboard")
    page = sign_in(browser, base, "ada")
    page.goto(f"{base}/tasks/{year.task('keyboard', 'fill_application', 'ada')}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")  # skip to the main content
    order = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")
        order.append(focused)
        if focused == "f-title":
            page.keyboard.type("Tastaturprosjekt")
        if focused == "Lagre utkast":
            page.keyboard.press("Enter")
            break
    assert order.index("f-title") < order.index("f-purpose") < order.index("f-budget-0-party")
    page.wait_for_load_state()
    assert "Utkastet er lagret" in page.inner_text("main")
    assert page.input_value("#f-title") == "Tastaturprosjekt"

    # the application goes on to "Send inn søknad", which is answered and submitted with the keyboard alone
    year.complete("fill_application", "keyboard", "ada", application_form(
        "Tastaturprosjekt", "Horten kommune", ["Sykehuset i Vestfold HF"], [("Horten kommune", 2099, 100_000)],
        start="2099-07-01", end="2099-12-31", contact="ada"))
    year.cosign("keyboard", "bjorn")
    page.goto(f"{base}/tasks/{year.task('keyboard', 'submit_application', 'ada')}")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # skip to the main content
    answered = False
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")
        if focused == "f-confirm-yes":
            page.keyboard.press("Space")
            answered = True
        if focused == "Send inn":
            assert answered, "the submit button came before the question"
            page.keyboard.press("Enter")
            break
    else:
        raise AssertionError("the submit button cannot be reached with Tab")
    page.wait_for_load_state()
    assert "Oppgaven er fullført" in page.inner_text("main")
    names = {t.name for t in year.rt.tasks(year.instance_id("keyboard"))}
    assert "submit_application" not in names and "check_completeness" in names


def test_answers_that_must_be_given_in_the_browser(server, browser):
    """Issue 16: an end date before the start and an amount of 10^30 kr are refused at their fields, a
    co-signer's No needs a reason that the applicant then reads on her task, and the confirmation must be Yes;
    every error page is axe-clean, in bokmål and nynorsk."""
    base, year = server
    year.start("grant_application", "ada", {"call_id": year.data("round")["call_id"]}, ref="rules",
               title="Regler")
    ada = sign_in(browser, base, "ada")
    ada.goto(f"{base}/tasks/{year.task('rules', 'fill_application', 'ada')}")
    for field, value in (("title", "Regler for svar"), ("purpose", "Prøve reglene."), ("effect_goals", "Færre feil."),
                         ("result_goals", "Reglene holder."), ("responsibility", "Horten kommune."),
                         ("roles", "Kommunen og sykehuset."), ("applicant_organisation", "Horten kommune"),
                         ("partner_organisations-0", "Sykehuset i Vestfold HF"), ("budget-0-party", "Horten kommune"),
                         ("budget-0-year", "2099"), ("budget-0-amount", "1" + "0" * 30),
                         ("start_date", "2099-07-01"), ("end_date", "2099-06-30"), ("contact_name", "Ada Søker"),
                         ("contact_email", "ada@horten.example.no")):
        ada.fill(f"#f-{field}", value)
    ada.check("#f-priority_groups-1")
    submit(ada)
    # what cannot be stored at all and what breaks the form's rules are shown together
    first = ada.locator("#error-summary").inner_text()
    assert "Beløp (kr)" in first and "Sluttdato" in first
    assert "Tallet er for stort til å lagres." in ada.inner_text("#f-budget-0-amount-error")
    assert ada.get_attribute("#f-budget-0-amount", "aria-invalid") == "true"
    ada.fill("#f-budget-0-amount", "900000000")
    submit(ada)
    summary = ada.locator("#error-summary").inner_text()
    assert "Sluttdato" in summary and "Beløp (kr)" in summary
    assert "Kan ikke være tidligere enn 2099-07-01." in ada.inner_text("#f-end_date-error")
    assert "Verdien må være mellom 0 og 100000000." in ada.inner_text("#f-budget-0-amount-error")
    assert ada.get_attribute("#f-end_date", "aria-invalid") == "true"
    assert axe_violations(ada, ("nb", "form with comparison errors")) == []
    ada.fill("#f-end_date", "2099-12-31")
    ada.fill("#f-budget-0-amount", "100000")
    submit(ada)
    assert "Oppgaven er fullført" in ada.inner_text("main")

    bjorn = sign_in(browser, base, "bjorn")
    bjorn.goto(f"{base}/tasks/{year.task('rules', 'cosign_application', 'bjorn')}")
    answer(bjorn, "f-signature-signed", False)
    submit(bjorn)
    assert "Begrunnelse hvis dere ikke signerer" in bjorn.locator("#error-summary").inner_text()
    assert bjorn.get_attribute("#f-signature-refusal_reason", "aria-invalid") == "true"
    assert axe_violations(bjorn, ("nb", "co-signer's no without a reason")) == []
    bjorn.fill("#f-signature-refusal_reason", "Ikke behandlet i klinikkledelsen.")
    submit(bjorn)
    assert "Oppgaven er fullført" in bjorn.inner_text("main")

    ada.goto(f"{base}/tasks/{year.task('rules', 'fill_application', 'ada')}")
    assert ada.input_value("#f-cosign_comments") == "Sykehuset i Vestfold HF: Ikke behandlet i klinikkledelsen."
    submit(ada)
    year.cosign("rules", "bjorn")
    ada.goto(f"{base}/tasks/{year.task('rules', 'submit_application', 'ada')}")
    ada.click("button[name=lang][value=nn]")  # the confirmation in nynorsk
    ada.wait_for_load_state()
    answer(ada, "f-confirm", False)
    ada.click("button[name=_action][value=complete]")
    ada.wait_for_load_state()
    assert ada.inner_text("#f-confirm-error").strip() == "Du må svare Ja for å gå vidare."
    assert ada.get_attribute("#f-confirm", "aria-invalid") == "true"
    assert axe_violations(ada, ("nn", "confirmation answered no")) == []
    answer(ada, "f-confirm", True)
    ada.click("button[name=_action][value=complete]")
    ada.wait_for_load_state()
    assert "check_completeness" in {t.name for t in year.rt.tasks(year.instance_id("rules"))}
    ada.click("button[name=lang][value=nb]")
