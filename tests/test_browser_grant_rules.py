"""Issue 16 as the people meet it, in Debian's Chromium, in bokmål and nynorsk, every page axe-clean:

* an applicant chooses the call by its title, and a call that does not exist is refused at the field;
* an end date before the start and an amount of 10^30 kr are refused at their fields;
* a committee member declares a conflict of interest from the case page (a reason is required);
* the hospital's committee member, who has no personal conflict in a municipality's application the hospital
  co-signs, claims its review; the call's criteria are the rows to score, and "Jeg er inhabil" must be
  answered;
* AU's recommendation form shows each application's title, applicant, score and amount applied for, and
  the money left in the frame after the cut, kept current as AU types;
* the ledger's Excel export downloads and opens (openpyxl);
* the worklist, the calls and "Mine søknader" fit a 375 px wide phone without sideways scrolling.

Screenshots go to ``$SAMFLYT_SHOTS`` (default ``artifacts/screenshots/grant-rules``).
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import openpyxl
import pytest
from werkzeug.serving import make_server

from engine import accounts, clock, db
from engine.formats import format_kroner
from tests.grant_driver import GrantYear, application_form, grant_runtime
from tests.test_browser import CHROMIUM, axe_violations, browser, monkeypatch_module  # noqa: F401 - fixtures
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("SAMFLYT_SHOTS", ROOT / "artifacts" / "screenshots" / "grant-rules"))
VF = "Helsefellesskapet i Vestfold"
SIV = "Sykehuset i Vestfold HF"
USERS = ("ada", "emma", "knut", "mia", "per", "siri")
OPEN_CALL = "Rekrutterings- og samhandlingstilskudd 2026 (Helsefellesskapet i Vestfold)"


@pytest.fixture(scope="module")
def round_at_recommendation(tmp_path_factory, monkeypatch_module):  # noqa: F811 - the fixture imported above
    """A Vestfold call after its deadline: Ada's "Trygg hjemkomst" (Horten, co-signed by the hospital) with one
    of its two reviews left for the hospital's member Knut, "Felles legevakt" reviewed, and AU's
    recommendation open; the app on loopback over the same SQLite database."""
    path = tmp_path_factory.mktemp("grant-rules") / "samflyt.db"
    monkeypatch_module.setenv("SAMFLYT_ATTACHMENTS_DIR", str(path.parent / "attachments"))
    engine = db.make_engine(f"sqlite:///{path}")
    db.migrate(engine)
    rt = grant_runtime(engine)
    with rt.session() as s:
        for user in USERS:
            accounts.set_password(s, user, f"passord-{user}")
    y = GrantYear(rt)
    y.at("2025-01-06T09:00")
    y.connector("ledger.allocate", {"year": 2025, "amount": 1_000_000, "reference": "HSØ VF", "community": VF},
                "admin")
    call_id = y.open_round("round", "per", ["2025-05-01"], 1_000_000, VF)
    for ref, title, amount in (("safe", "Trygg hjemkomst", 300_000), ("clinic", "Felles legevakt", 200_000)):
        y.apply(ref, "ada", call_id, application_form(title, "Horten kommune", [SIV],
                                                      [("Horten kommune", 2025, amount)]))
        y.cosign(ref, "bjorn")
        y.submit(ref, "ada")
        y.check(ref, "per")
    y.review("safe", "tor", 4)
    y.review("clinic", "mia", 5)
    y.review("clinic", "tor", 4)
    y.at("2025-05-05T08:00")  # after the deadline (1 May is a holiday: it held until 2 May)
    y.complete("committee_assessment", "round", "mia", {"assessment_summary": "Vurdert.", "assessment_done": True})
    y.complete("fsu_input", "round", "frida", {"fsu_input": "Støttes."})
    y.open_round("next", "per", ["2025-10-01"], 500_000, VF, year=2026)  # open while the first is assessed
    app = create_app({"SECRET_KEY": "browser-test", "DATABASE_URL": f"sqlite:///{path}"})
    app.extensions["samflyt_runtime"] = rt
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_port}", y
    http.shutdown()
    clock.set_now(None)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def signed_in(browser, base: str, user: str, language: str, **context):  # noqa: F811
    page = browser.new_context(locale="nb-NO", **context).new_page()
    page.goto(f"{base}/tasks?lang={language}")
    page.fill("#username", user)
    page.fill("#password", f"passord-{user}")
    page.click("button.primary")
    page.wait_for_load_state()
    return page


@pytest.mark.parametrize("language", ["nb", "nn"])
def test_the_call_is_chosen_by_title_and_an_unknown_one_is_refused(round_at_recommendation, browser, language):  # noqa: F811
    base, _ = round_at_recommendation
    page = signed_in(browser, base, "emma", language)
    page.goto(f"{base}/start/grant_application?call_id=999")  # a link naming a call that does not exist
    options = page.locator("#f-call_id option").all_inner_texts()
    assert options[1:] == [OPEN_CALL]  # only the call taking applications now, by its title
    page.get_by_role("button", name="Start").click()
    page.wait_for_load_state()
    summary = page.locator("#error-summary")
    assert {"nb": "Utlysning", "nn": "Utlysing"}[language] in summary.inner_text()
    assert page.get_attribute("#f-call_id", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "error-summary"  # focus moved to what went wrong
    shot(page, f"01-unknown-call-refused-{language}")
    assert axe_violations(page, (language, "start form with an unknown call")) == []
    page.select_option("#f-call_id", label=OPEN_CALL)
    page.get_by_role("button", name="Start").click()
    page.wait_for_load_state()
    assert "/tasks/" in page.url  # started, and her first task is hers


def test_the_hospitals_member_reviews_a_municipal_application(round_at_recommendation, browser):  # noqa: F811
    base, y = round_at_recommendation
    # first Mia, who knows the applicant, stands aside from the case page
    mia = signed_in(browser, base, "mia", "nb")
    mia.goto(f"{base}/instances/{y.instance_id('safe')}")
    mia.get_by_role("link", name="Meld inhabilitet").click()
    mia.wait_for_load_state()
    mia.get_by_role("button", name="Meld meg inhabil").click()  # no reason given
    mia.wait_for_load_state()
    assert mia.get_attribute("#reason", "aria-invalid") == "true"
    assert mia.evaluate("document.activeElement.id") == "error-summary"
    assert axe_violations(mia, ("nb", "declare a conflict of interest")) == []
    mia.fill("#reason", "Prosjektlederen er min svoger.")
    mia.get_by_role("button", name="Meld meg inhabil").click()
    mia.wait_for_load_state()
    assert "Du står utenfor «Trygg hjemkomst»" in mia.inner_text("main")
    shot(mia, "02a-mia-stood-aside")
    page = signed_in(browser, base, "knut", "nb")
    page.goto(f"{base}/tasks?view=available")
    shot(page, "02-knut-available")
    page.get_by_role("link", name="Vurder søknad").first.click()
    page.wait_for_load_state()
    page.get_by_role("button", name="Ta oppgaven").click()
    page.wait_for_load_state()
    criteria = y.data("safe")["criteria"]
    legends = page.locator("fieldset.row > legend").all_inner_texts()
    assert legends == [f"{n}. {c}" for n, c in enumerate(criteria, 1)]  # the call's criteria are the rows
    for i in range(len(criteria)):
        page.fill(f"#f-review-scores-{i}-score", "5")
    page.get_by_role("button", name="Send inn").click()  # "Jeg er inhabil" left unanswered
    page.wait_for_load_state()
    assert page.get_attribute("#f-review-conflict_of_interest", "aria-invalid") == "true"
    assert axe_violations(page, ("nb", "review with an unanswered yes/no")) == []
    page.click("button[name=lang][value=nn]")  # the same refusal in nynorsk
    page.wait_for_load_state()
    shot(page, "02b-knut-nn")
    page.click("button[name=_action][value=complete]")
    page.wait_for_load_state()
    assert page.get_attribute("#f-review-conflict_of_interest", "aria-invalid") == "true"
    assert "Eg er inhabil i denne saka" in page.locator("#error-summary").inner_text()
    assert axe_violations(page, ("nn", "review with an unanswered yes/no")) == []
    page.click("button[name=lang][value=nb]")
    page.wait_for_load_state()
    for i in range(len(criteria)):
        page.fill(f"#f-review-scores-{i}-score", "5")
    page.check("#f-review-conflict_of_interest-no")
    page.get_by_role("button", name="Send inn").click()
    page.wait_for_load_state()
    assert "Oppgaven er fullført" in page.inner_text("main")
    shot(page, "03-knut-reviewed")


@pytest.mark.parametrize("language", ["nb", "nn"])
def test_the_applicants_dates_and_amounts_are_held_to_their_rules(round_at_recommendation, browser, language):  # noqa: F811
    """The application Emma started above: an end before the start and 10^30 kr are refused at their fields."""
    base, y = round_at_recommendation
    page = signed_in(browser, base, "emma", language)
    page.goto(f"{base}/tasks")
    page.get_by_role("link", name="Fyll ut søknad").first.click()
    page.wait_for_load_state()
    page.fill("#f-start_date", "2026-07-01")
    page.fill("#f-end_date", "2026-06-30")
    page.fill("#f-budget-0-party", "Horten kommune")
    page.fill("#f-budget-0-year", "2026")
    page.fill("#f-budget-0-amount", "1" + "0" * 30)
    page.click("button[name=_action][value=complete]")
    page.wait_for_load_state()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    too_big = {"nb": "Tallet er for stort til å lagres.", "nn": "Talet er for stort til å lagrast."}[language]
    assert too_big in page.inner_text("#f-budget-0-amount-error")
    page.fill("#f-budget-0-amount", "100000")
    page.click("button[name=_action][value=complete]")
    page.wait_for_load_state()
    before = {"nb": "Kan ikke være tidligere enn 2026-07-01.", "nn": "Kan ikkje vere tidlegare enn 2026-07-01."}
    assert before[language] in page.inner_text("#f-end_date-error")
    assert page.get_attribute("#f-end_date", "aria-invalid") == "true"
    shot(page, f"03-end-before-start-{language}")
    assert axe_violations(page, (language, "application with an end before its start")) == []


@pytest.mark.parametrize("language", ["nb", "nn"])
def test_au_sees_titles_scores_and_the_money_left(round_at_recommendation, browser, language):  # noqa: F811
    base, y = round_at_recommendation
    page = signed_in(browser, base, "per", language)
    page.goto(f"{base}/tasks/{y.task('round', 'au_recommendation')}")
    legends = page.locator("fieldset.row > legend").all_inner_texts()
    assert sorted(legend.split(". ", 1)[1] for legend in legends) == ["Felles legevakt", "Trygg hjemkomst"]
    main = page.inner_text("main")
    assert "Horten kommune" in main and "4,5" in main and "300\u00a0000" in main and "200\u00a0000" in main
    available = y.data("round")["summary"]["available"]
    left = page.locator(".left-value")
    assert left.inner_text() == format_kroner(available)
    page.fill("#f-recommendation-0-proposed_amount", "150000")
    page.fill("#f-recommendation-1-proposed_amount", "100000")
    assert left.inner_text() == format_kroner(available - 250_000)  # kept current as AU types
    shot(page, f"04-recommendation-{language}")
    assert axe_violations(page, (language, "recommendation form")) == []


@pytest.mark.parametrize("language", ["nb", "nn"])
def test_the_ledger_exports_to_excel(round_at_recommendation, browser, language):  # noqa: F811
    base, _ = round_at_recommendation
    page = signed_in(browser, base, "siri", language, accept_downloads=True)
    page.goto(f"{base}/grants/ledger")
    assert axe_violations(page, (language, "ledger")) == []
    with page.expect_download() as download:
        page.get_by_role("link", name="Excel (XLSX)").click()
    book = openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    rows = list(book.active.iter_rows(values_only=True))
    assert any(1_000_000 in row for row in rows)  # the allocation from Helse Sør-Øst


@pytest.mark.parametrize("language", ["nb", "nn"])
def test_the_pages_fit_a_phone(round_at_recommendation, browser, language):  # noqa: F811
    base, _ = round_at_recommendation
    phone = {"viewport": {"width": 375, "height": 800}}
    for user, paths in (("per", ["/tasks?view=all", "/tasks?view=available", "/grants", "/grants/ledger"]),
                        ("ada", ["/tasks", "/applications", "/calls"])):
        page = signed_in(browser, base, user, language, **phone)
        for path in paths:
            page.goto(f"{base}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            shot(page, f"05-phone-{user}-{path.strip('/').replace('/', '-').replace('?', '-')}-{language}")
            assert width <= 375, f"{path} is {width} px wide at 375 px"
        assert axe_violations(page, (language, f"phone {user}")) == []


@pytest.mark.parametrize("language", ["nb", "nn"])
def test_the_case_diagram_is_readable(round_at_recommendation, browser, language):  # noqa: F811
    """Fitted to the width, zoomed and panned with the buttons and the keyboard, shown on the whole screen;
    lanes by the roles' words; the heading is the case's title."""
    base, y = round_at_recommendation
    page = signed_in(browser, base, "ada", language, viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/instances/{y.instance_id('safe')}")
    page.wait_for_selector("#diagram[data-rendered]")
    assert page.get_attribute("#diagram", "data-rendered") == "true"
    assert page.inner_text("h1") == "Trygg hjemkomst"
    assert page.locator("#diagram").bounding_box()["height"] >= 320
    lanes = page.locator("#diagram [data-element-id^=lane_] .djs-label").all_text_contents()
    assert {"nb": "Søker", "nn": "Søkjar"}[language] in " ".join(lanes)

    def transform() -> str:
        return page.get_attribute("#diagram .viewport", "transform")

    before = transform()
    page.get_by_role("button", name={"nb": "Forstørr", "nn": "Forstørr"}[language]).click()
    zoomed = transform()
    assert zoomed != before
    page.focus("#diagram")
    page.keyboard.press("ArrowRight")
    assert transform() != zoomed  # panned from the keyboard
    page.keyboard.press("0")
    assert transform() == before  # fitted again
    shot(page, f"06-diagram-{language}")
    assert axe_violations(page, (language, "case page with the diagram")) == []
    full = page.get_by_role("button", name="Fullskjerm")
    full.click()
    page.wait_for_function("document.fullscreenElement !== null")
    assert page.evaluate("document.fullscreenElement.className") == "diagram-figure"
    assert full.get_attribute("aria-pressed") == "true"
    shot(page, f"07-diagram-full-screen-{language}")
