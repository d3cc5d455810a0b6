"""The secretariat walks one meeting through the browser (Debian's Chromium, Playwright, the real app on
loopback): start and plan the meeting, set up the agenda, the chair approves it, the notice goes out (the
clock moved), the conclusions, who attended, the minutes checked and mailed, and the meeting page with its
notice and minutes PDFs. Every page on the way is checked with axe-core (WCAG 2.1 A/AA) and photographed
into ``/tmp/shots-minutes`` (``SAMFLYT_SHOTS`` to change it).

Without Chromium these tests skip, unless ``SAMFLYT_BROWSER_TESTS=required`` (as in CI), where they fail.
"""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from werkzeug.serving import make_server

from community.records import Meeting
from engine import accounts, clock, db
from engine.models import OutboxMessage
from tests.grant_driver import GrantYear, grant_runtime
from tests.test_browser import CHROMIUM, axe_violations, playwright_api, sign_in
from web import create_app

MEETINGS = Path(__file__).resolve().parent.parent / "bpmn" / "meetings"
SHOTS = Path(os.environ.get("SAMFLYT_SHOTS", "/tmp/shots-minutes"))
VV = "Helsefellesskap Vest-Viken"
USERS = ("sverre", "kristin")

assert Path(CHROMIUM).exists()  # tests.test_browser skips (or fails, when required) without it


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The app on a free loopback port over a fresh SQLite database with the grant and meeting bundles, the
    meeting bundle's users and one case waiting for Vest-Viken's SSU; the clock on Monday 3 March 2025."""
    path = tmp_path_factory.mktemp("meeting-browser") / "samflyt.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.migrate(engine)
    rt = grant_runtime(engine)
    rt.deploy([str(MEETINGS)], actor="admin")
    for user in json.loads((MEETINGS / "demo.json").read_text(encoding="utf-8"))["users"]:
        rt.add_user(user["username"], user["roles"], user["organisations"], user["display_name"], user["email"])
    with rt.session() as s:
        for user in USERS:
            accounts.set_password(s, user, f"passord-{user}")
    year = GrantYear(rt)
    year.at("2025-03-03T09:00")
    year.connector("meetings.enqueue_case", {
        "case_type": "Drøfting", "title": "Strategi- og handlingsplan 2026", "community": VV,
        "background": "Utkast til plan for 2026.", "proposed_conclusion": "Utkastet drøftes."}, "admin")
    app = create_app({"SECRET_KEY": "browser-test", "DATABASE_URL": f"sqlite:///{path}"})
    app.extensions["samflyt_runtime"] = rt
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}", year
    http.shutdown()
    clock.set_now(None)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


def _check(page, name: str, problems: dict) -> None:
    """axe on the page as it is, and a screenshot of it."""
    found = axe_violations(page, ("nb", f"meeting-{name}"))
    if found:
        problems[name] = found
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{len(list(SHOTS.glob('*.png'))):02d}-{name}.png"), full_page=True)


def _open(page, base: str, title: str) -> None:
    page.goto(f"{base}/tasks")  # a case one started gives one its first task; else it is among the available
    if not page.get_by_role("link", name=title).count():
        page.goto(f"{base}/tasks?view=available")
    page.get_by_role("link", name=title).first.click()
    page.wait_for_load_state()


def _submit(page) -> None:
    page.get_by_role("button", name="Send inn").click()
    page.wait_for_load_state()


def test_the_secretariat_walks_a_meeting_from_plan_to_minutes(site, browser):
    base, year = site
    problems: dict[str, list[str]] = {}
    for old in SHOTS.glob("*.png"):
        old.unlink()
    sverre = sign_in(browser, base, "sverre")

    # start and plan the meeting
    sverre.goto(f"{base}/start")
    sverre.get_by_role("link", name="Møte i SSU, AU eller FSU").click()
    _check(sverre, "start", problems)
    sverre.get_by_role("button", name="Start").click()
    sverre.wait_for_load_state()
    assert sverre.locator("h1").inner_text().startswith("Planlegg møtet")
    sverre.select_option("#f-committee", "SSU")
    assert sverre.input_value("#f-community") == VV  # the secretary's own community, preselected
    sverre.fill("#f-meeting_date", "2025-03-20")
    sverre.fill("#f-meeting_time", "25:00")  # wrong on purpose: the error is shown at the field
    sverre.fill("#f-place", "Drammen rådhus, møterom 3")
    _submit(sverre)
    assert sverre.locator("#error-summary").is_visible()
    _check(sverre, "plan-with-error", problems)
    sverre.fill("#f-meeting_time", "12:30")
    _submit(sverre)
    assert "Oppgaven er fullført" in sverre.inner_text("main")

    # the agenda: the case waiting for Vest-Viken's SSU
    _open(sverre, base, "Sett opp saksliste")
    sverre.get_by_label("Strategi- og handlingsplan 2026").check()
    _check(sverre, "agenda", problems)
    _submit(sverre)
    assert "Oppgaven er fullført" in sverre.inner_text("main")

    # the chair approves it
    kristin = sign_in(browser, base, "kristin")
    _open(kristin, base, "Godkjenn saksliste")
    assert "Strategi- og handlingsplan 2026" in kristin.input_value("#f-agenda_summary")
    kristin.check("#f-agenda_approved-yes")
    _check(kristin, "approve-agenda", problems)
    _submit(kristin)
    assert "Oppgaven er fullført" in kristin.inner_text("main")

    # the notice goes out 7 working days before, and the meeting is held
    year.at("2025-03-11T08:00")
    with year.rt.Session() as s:
        assert s.scalar(select(OutboxMessage.subject).where(OutboxMessage.to_address == "kristin@drammen.example.no")
                        ) == "Innkalling til SSU 20.03.25"
    year.at("2025-03-20T12:30")
    with year.rt.Session() as s:
        meeting_id = s.scalar(select(Meeting.id).where(Meeting.community == VV))

    # the conclusions, prefilled with the proposals
    _open(sverre, base, "Registrer konklusjoner")
    assert sverre.input_value("#f-conclusions-2-conclusion") == "Utkastet drøftes."
    sverre.fill("#f-conclusions-2-conclusion", "Utkastet drøftet. Planen legges frem i juni.")
    _check(sverre, "conclusions", problems)
    _submit(sverre)
    assert "Oppgaven er fullført" in sverre.inner_text("main")

    # who attended: both members ticked present; Morten sent apologies, and a guest came
    _open(sverre, base, "Registrer hvem som var til stede")
    assert sverre.get_by_label("Kristin SSU-leder").is_checked()
    assert sverre.get_by_label("Morten SSU-medlem").is_checked()
    sverre.get_by_label("Morten SSU-medlem").uncheck()
    sverre.fill("#f-guests-0", "Sverre Sekretariat (referent)")
    _check(sverre, "attendance", problems)
    _submit(sverre)
    assert "Oppgaven er fullført" in sverre.inner_text("main")

    # the secretariat reads the minutes from the meeting page, then lets them go to the members
    _open(sverre, base, "Kontroller referatet")
    summary = sverre.input_value("#f-minutes_summary")
    assert "Forfall: Morten SSU-medlem" in summary and "Andre til stede: Sverre Sekretariat (referent)" in summary
    _check(sverre, "check-minutes", problems)
    response = sverre.request.get(f"{base}{sverre.get_attribute('#f-minutes_link a', 'href')}")
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    text = " ".join(PdfReader(io.BytesIO(response.body())).pages[0].extract_text().split())
    assert "Kristin SSU-leder" in text and "Morten SSU-medlem" in text
    assert "Utkastet drøftet. Planen legges frem i juni." in " ".join(
        p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages).replace("\n", " ")
    sverre.check("#f-minutes_ok-yes")
    _submit(sverre)
    assert "Oppgaven er fullført" in sverre.inner_text("main")
    with year.rt.Session() as s:
        assert s.get(Meeting, meeting_id).minutes_sent_at is not None

    # the meeting page: attendance, minutes sent, and both PDFs to download
    sverre.goto(f"{base}/meetings")
    sverre.get_by_role("link", name="20.03.2025", exact=False).first.click()
    sverre.wait_for_load_state()
    main = sverre.inner_text("main")
    for expected in ("Oppmøte", "Kristin SSU-leder", "Forfall", "Morten SSU-medlem", "Andre til stede",
                     "Sverre Sekretariat (referent)", "Referat sendt til medlemmene", "20.03.2025",
                     "Ikke ennå: neste møte godkjenner referatet"):
        assert expected in main, expected
    _check(sverre, "meeting", problems)
    with sverre.expect_download() as download:
        sverre.get_by_role("link", name="Innkalling og saksdokumenter (PDF)").click()
    assert download.value.suggested_filename == "innkalling-ssu-2025-03-20.pdf"
    with sverre.expect_download() as download:
        sverre.get_by_role("link", name="Referat (PDF)").click()
    assert download.value.suggested_filename == "referat-ssu-2025-03-20.pdf"

    # a meeting without minutes yet: a clear page, not a bare error
    later = year.rt.call_connector("meetings.schedule", {"committee": "SSU", "community": VV,
                                                         "starts_at": "2025-06-12T12:30", "place": "Drammen"})
    sverre.goto(f"{base}/meetings/{later['meeting_id']}/minutes.pdf")
    assert sverre.locator("h1").inner_text() == "Ikke noe referat ennå"
    _check(sverre, "no-minutes-yet", problems)
    assert problems == {}
