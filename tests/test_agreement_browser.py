"""The agreement revision in the browser: a party's member answers the hearing and signs the agreement for
their municipality, in bokmål and nynorsk, with axe-core at 0 WCAG 2.1 A/AA violations on every page they
see (the task forms, the public register, an agreement and a version's changes). Chromium as in
tests/test_browser.py; without it these tests skip unless ``SAMFLYT_BROWSER_TESTS=required``."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from community.records import AgreementHearingAnswer, AgreementSignature
from engine import accounts, clock, db
from engine.scenario import Scenario
from tests.grant_driver import grant_runtime
from tests.test_browser import axe_violations, browser, monkeypatch_module, shot  # noqa: F401 - fixtures
from web import create_app

BPMN = Path(__file__).resolve().parent.parent / "bpmn"
VF = "Helsefellesskapet i Vestfold"
#: (language, party member, organisation)
WALKS = [("nb", "terje", "Tønsberg kommune"), ("nn", "frode", "Færder kommune")]
AGREEMENT_D = "5"  # the fifth agreement the demo registers: delavtale d, the emergency medical chain


def _to_signatures(y: Scenario) -> None:
    """A revision of delavtale d driven to its signatures (everything before them done by the people)."""
    y.at("2025-10-06T09:00")
    y.start("agreement_revision", "per", {"agreement_id": AGREEMENT_D}, ref="d")
    y.complete("describe_need", "d", "per", {"agreement_id": AGREEMENT_D, "source": "case", "mandate_committee": "AU",
                                             "reason": "SSU sak 2025.37.", "mandate": "AU nedsetter arbeidsgruppe."})
    y.connector("meetings.conclude", {"number": y.rt.instance(y.instance_id("d")).data["case_id"], "community": VF,
                                      "committee": "AU", "conclusion": "Vedtatt."}, "admin")
    y.complete("set_up_group", "d", "per", {"leader": "renate", "members": [], "group_deadline": "2025-11-01"})
    y.complete("draft_text", "d", "renate", {"text": "# Delavtale d\n\n- Felles øvelser", "next_step": "hearing",
                                             "hearing_working_days": 5})
    for user in ("ragnhild", "harald", "helga", "terje", "frode", "solveig", "linn"):
        y.complete("answer_hearing", "d", user, {"answer_kind": "no_input"})
    y.complete("answer_comments", "d", "renate", {"hearing_comments": [], "text": "# Delavtale d\n\n- Felles øvelser"})
    for user in ("ragnhild", "harald", "helga", "terje", "frode", "solveig", "linn"):
        y.complete("anchor_version", "d", user, {"anchored": True})
    y.complete("prepare_approval", "d", "per", {"effective_from": "2026-01-01", "evaluation_dates": [],
                                                "proposed_conclusion": "Delavtale d godkjennes."})
    y.connector("meetings.conclude", {"number": y.rt.instance(y.instance_id("d")).data["case_id"], "community": VF,
                                      "committee": "SSU", "conclusion": "Delavtale d godkjennes."}, "admin")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("agreements") / "samflyt.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.migrate(engine)
    rt = grant_runtime(engine)
    for bundle in ("meetings", "agreements"):
        rt.deploy([str(BPMN / bundle)], actor="admin")
        for user in json.loads((BPMN / bundle / "demo.json").read_text(encoding="utf-8"))["users"]:
            rt.add_user(user["username"], user["roles"], user["organisations"], user["display_name"], user["email"])
    y = Scenario(rt)
    try:
        y.run(json.loads((BPMN / "agreements" / "demo.json").read_text(encoding="utf-8"))["steps"])
        y.refs["j"] = y.refs["revision_j"]
        _to_signatures(y)
    finally:
        clock.set_now(None)
    # the pages are used while the hearing of j is open (until 09.02.26), whatever the real date
    clock.set_now(datetime.fromisoformat("2026-01-20T09:00:00+01:00"))
    with rt.session() as s:
        for _language, user, _organisation in WALKS:
            accounts.set_password(s, user, f"passord-{user}")
    app = create_app({"SECRET_KEY": "browser-test", "DATABASE_URL": f"sqlite:///{path}"})
    app.extensions["samflyt_runtime"] = rt
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_port}", y
    http.shutdown()
    clock.set_now(None)


def _sign_in(browser, base: str, user: str, language: str):  # noqa: F811 - the browser fixture
    page = browser.new_context(locale="nb-NO").new_page()
    page.goto(f"{base}/sign-in?lang={language}")
    page.fill("#username", user)
    page.fill("#password", f"passord-{user}")
    page.click("button.primary")
    page.wait_for_url(f"{base}/tasks")
    page.goto(f"{base}/tasks?lang={language}")  # the language is kept for the session
    return page


def _axe(page, problems: dict, name: str, language: str) -> None:
    if found := axe_violations(page, (language, name)):
        problems[name] = found
    shot(page, f"agreements-{language}-{name}")


@pytest.mark.parametrize(("language", "user", "organisation"), WALKS)
def test_a_party_answers_the_hearing_and_signs(site, browser, language, user, organisation):  # noqa: F811
    base, y = site
    problems: dict[str, list[str]] = {}
    page = _sign_in(browser, base, user, language)
    assert page.get_attribute("html", "lang") == language

    hearing = y.task("j", "answer_hearing", user)
    page.goto(f"{base}/tasks/{hearing}")
    assert {"nb": "Svar på høringen", "nn": "Svar på høyringa"}[language] in page.locator("main").inner_text()
    _axe(page, problems, "hearing-form", language)
    page.click("button[name=_action][value=complete]")  # no answer chosen: told at the field
    page.wait_for_selector("#error-summary")
    _axe(page, problems, "hearing-form-errors", language)
    _axe(page, problems, "hearing-form-errors", language)
    page.select_option("select[name=answer_kind]", "comments")
    page.fill("textarea[name=comments]", f"Innspill fra {organisation}: ta med velferdsteknologi.")
    page.click("button[name=_action][value=complete]")
    page.wait_for_load_state()

    signing = y.task("d", "sign_agreement", user)
    page.goto(f"{base}/tasks/{signing}")
    _axe(page, problems, "signature-form", language)
    page.check("input[name=signed][value=true]")
    page.click("button[name=_action][value=complete]")
    page.wait_for_load_state()

    for name, path in (("register", "/agreements"), ("agreement", "/agreements/8"),
                       ("version", "/agreements/5/versions/3")):
        page.goto(f"{base}{path}")
        _axe(page, problems, name, language)
    assert problems == {}

    with y.rt.Session() as s:
        answer = s.scalar(select(AgreementHearingAnswer).where(AgreementHearingAnswer.organisation == organisation,
                                                               AgreementHearingAnswer.comments.is_not(None)))
        signature = s.scalar(select(AgreementSignature).where(AgreementSignature.organisation == organisation))
    assert (answer.answered_by, answer.no_input) == (user, False)
    assert (signature.signed_by, signature.signed) == (user, True)
