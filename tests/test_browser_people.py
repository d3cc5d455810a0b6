"""An applicant finds their own work in Debian's Chromium: starting an application from the public calls page
puts its first task under "Mine oppgaver"; "Mine søknader" shows a granted application's status and
decision; its case page shows the amount and the award letter, which downloads as a PDF pypdf reads.
Every page is checked with axe-core (WCAG 2.1 A/AA) in bokmål and nynorsk; screenshots go to
``$SAMFLYT_SHOTS`` (default ``artifacts/screenshots/people``).

Without Chromium these tests skip, unless ``SAMFLYT_BROWSER_TESTS=required``, where they fail.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pypdf
import pytest
from werkzeug.serving import make_server

from engine import accounts, clock, db
from tests.grant_driver import GrantYear, application_form, grant_runtime
from tests.test_browser import CHROMIUM, axe_violations, browser, monkeypatch_module  # noqa: F401 - fixtures
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("SAMFLYT_SHOTS", ROOT / "artifacts" / "screenshots" / "people"))
VF = "Helsefellesskapet i Vestfold"
SIV = "Sykehuset i Vestfold HF"


@pytest.fixture(scope="module")
def granted(tmp_path_factory, monkeypatch_module):  # noqa: F811 - the fixture imported above
    """The app on loopback over a fresh SQLite database: a Vestfold call, and Ada's application granted
    250 000 kr by SSU, driven through the runtime by the people of the grant process."""
    path = tmp_path_factory.mktemp("people") / "samflyt.db"
    monkeypatch_module.setenv("SAMFLYT_ATTACHMENTS_DIR", str(path.parent / "attachments"))
    engine = db.make_engine(f"sqlite:///{path}")
    db.migrate(engine)
    rt = grant_runtime(engine)
    with rt.session() as s:
        for user in ("ada", "emma", "hege"):
            accounts.set_password(s, user, f"passord-{user}")
    y = GrantYear(rt)
    y.at("2025-01-06T09:00")
    y.connector("ledger.allocate", {"year": 2025, "amount": 1_000_000, "reference": "HSØ VF", "community": VF},
                "admin")
    call_id = y.open_round("round", "per", ["2025-05-01", "2025-10-01"], 1_000_000, VF)
    y.apply("app", "ada", call_id, application_form("Trygg hjemkomst", "Horten kommune", [SIV],
                                                    [("Horten kommune", 2025, 200_000), (SIV, 2025, 100_000)]))
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
        "recommendation": [{"application_id": app_id, "proposed_amount": 250_000, "rank": 1}],
        "proposed_conclusion": "Innvilges."})
    y.complete("register_ssu_decision", "round", "siri", {
        "conclusion": "Innvilget.", "decisions": [{"application_id": app_id, "granted": True, "amount": 250_000}]})
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


def sign_in_from(page, user: str) -> None:
    page.fill("#username", user)
    page.fill("#password", f"passord-{user}")
    page.click("button.primary")
    page.wait_for_load_state()


@pytest.mark.parametrize(("language", "user"), [("nb", "emma"), ("nn", "hege")])
def test_an_applicant_starts_from_the_calls_page_and_has_the_first_task(granted, browser, language, user):  # noqa: F811
    base, _ = granted
    page = browser.new_context(locale="nb-NO").new_page()
    page.goto(f"{base}/calls?lang={language}")
    shot(page, f"01-calls-signed-out-{language}")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Logg inn").click()
    sign_in_from(page, user)
    assert page.url.split("?")[0] == f"{base}/calls"  # back where she was
    page.get_by_role("link", name="Søk på «Rekrutterings- og samhandlingstilskudd 2025»").click()
    page.get_by_role("button", name="Start").click()
    page.wait_for_load_state()
    assert "/tasks/" in page.url, page.inner_text("main")
    page.goto(f"{base}/tasks")
    assert page.get_by_role("link", name="Fyll ut søknad").count() == 1
    shot(page, f"02-mine-oppgaver-after-start-{language}")
    assert axe_violations(page) == []


@pytest.mark.parametrize("language", ["nb", "nn"])
def test_an_applicant_finds_her_application_its_decision_and_letter(granted, browser, language):  # noqa: F811
    base, y = granted
    context = browser.new_context(locale="nb-NO", accept_downloads=True)
    page = context.new_page()
    page.goto(f"{base}/tasks?lang={language}")  # asks for sign-in first, in the visitor's language
    assert {"nb": "Logg inn for å se denne siden.", "nn": "Logg inn for å sjå denne sida."}[language] \
        in page.inner_text("main")
    sign_in_from(page, "ada")
    menu = {"nb": "Mine søknader", "nn": "Mine søknader"}[language]
    page.get_by_role("link", name=menu).click()
    page.wait_for_load_state()
    main = page.inner_text("main")
    assert {"nb": "Innvilget 250\u00a0000\u00a0kr", "nn": "Innvilga 250\u00a0000\u00a0kr"}[language] in main
    assert "Trygg hjemkomst" in main and "2025.01" in main
    shot(page, f"03-mine-soknader-{language}")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Trygg hjemkomst").click()
    page.wait_for_load_state()
    assert {"nb": "Innvilget beløp", "nn": "Innvilga beløp"}[language] in page.inner_text("main")
    shot(page, f"04-case-with-letter-{language}")
    assert axe_violations(page) == []
    with page.expect_download() as download:
        page.get_by_role("link", name="Tildelingsbrev (tildelingsbrev-1.pdf)").click()
    letter = pypdf.PdfReader(io.BytesIO(Path(download.value.path()).read_bytes()))
    text = letter.pages[0].extract_text()
    assert "Trygg hjemkomst" in text and "250" in text
    context.close()
