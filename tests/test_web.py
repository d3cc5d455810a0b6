"""The web UI through Flask's test client: sign-in, worklists, permissions, task forms, drafts, races,
languages and security headers. The grant bundle and its seed users are real; so is the database."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from html import escape
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from community.records import GrantCall
from engine import accounts, clock
from engine.errors import ValidationError
from tests.grant_driver import GrantYear, application_form, grant_runtime
from web import create_app

PASSWORDS = {u: f"passord-{u}" for u in ("ada", "per", "bjorn", "mia", "tor", "hege", "admin", "siri", "knut",
                                         "hanne")}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(db_engine):
    """The grant bundle with a published call and Ada's new application; the app on the same database."""
    rt = grant_runtime(db_engine)
    with rt.session() as s:
        for user, password in PASSWORDS.items():
            accounts.set_password(s, user, password)
    y = GrantYear(rt)
    y.at("2025-01-06T09:00")
    y.open_round("round", "per", ["2025-05-01"], 1_000_000, "Helsefellesskapet i Vestfold")
    y.start("grant_application", "ada", {"call_id": y.data("round")["call_id"]}, ref="app")
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = rt  # the same runtime (and connectors) the scenario uses
    yield app, y
    clock.set_now(None)


def client_for(app, user: str | None):
    client = app.test_client()
    if user:
        response = client.post("/sign-in", data={"username": user, "password": PASSWORDS[user]})
        assert response.status_code == 302, response.data
    return client


def _form(title: str = "Trygg hjemkomst") -> dict[str, str]:
    data = application_form(title, "Horten kommune", ["Sykehuset i Vestfold HF"],
                            [("Horten kommune", 2025, 200_000), ("Sykehuset i Vestfold HF", 2025, 100_000)],
                            contact="ada")
    flat = {k: v for k, v in data.items() if isinstance(v, str)}
    flat["priority_groups"] = data["priority_groups"][0]
    flat["partner_organisations.0"] = "Sykehuset i Vestfold HF"
    for i, line in enumerate(data["budget"]):
        flat.update({f"budget.{i}.party": line["party"], f"budget.{i}.year": str(line["year"]),
                     f"budget.{i}.amount": f"{line['amount']:,}".replace(",", " ")})
    return flat


def _to_review(app, y) -> None:
    """Ada fills in the application in the browser's way, the hospital co-signs, she submits, AU accepts it."""
    client_for(app, "ada").post(f"/tasks/{y.task('app', 'fill_application')}", data={**_form(), "_action": "complete"})
    y.cosign("app", "bjorn")
    y.submit("app", "ada")
    y.check("app", "per")


def test_sign_in_out_and_the_rate_limit(site):
    app, _ = site
    anonymous = app.test_client()
    assert anonymous.get("/").location.endswith("/sign-in")
    assert anonymous.get("/tasks").status_code == 302
    page = anonymous.post("/sign-in", data={"username": "ada", "password": "feil-passord"})
    assert page.status_code == 401 and "Feil brukernavn eller passord." in page.get_data(as_text=True)
    assert 'aria-invalid="true"' in page.get_data(as_text=True)
    for _attempt in range(5):
        anonymous.post("/sign-in", data={"username": "mia", "password": "feil"})
    locked = anonymous.post("/sign-in", data={"username": "mia", "password": PASSWORDS["mia"]})
    assert locked.status_code == 401 and "For mange mislykkede forsøk" in locked.get_data(as_text=True)
    signed_in = anonymous.post("/sign-in?next=https://evil.example/",
                               data={"username": "ada", "password": PASSWORDS["ada"]})
    assert signed_in.location == "/tasks"  # never an open redirect
    assert anonymous.get("/").location.endswith("/tasks")
    assert anonymous.post("/sign-out").location.endswith("/sign-in")
    assert anonymous.get("/tasks").status_code == 302


@pytest.mark.parametrize(("user", "path", "status"), [
    (None, "/tasks", 302), ("ada", "/tasks", 200), ("ada", "/tasks?view=available", 200),
    ("ada", "/tasks?view=all", 403), ("per", "/tasks?view=all", 200), ("admin", "/tasks?view=all", 200),
    ("ada", "/tasks?view=nonsense", 404), ("hege", "/instances/{app}", 403), ("ada", "/instances/{app}", 200),
    ("per", "/instances/{app}", 200), ("mia", "/instances/{round}", 403), ("ada", "/instances/999999", 404),
    ("hege", "/tasks/{fill}", 403), ("ada", "/tasks/{fill}", 200), ("admin", "/tasks/{fill}", 200),
    ("ada", "/tasks/no-such-task", 404),
])
def test_who_may_see_what(site, user, path, status):
    app, y = site
    fill = y.task("app", "fill_application")
    url = path.format(app=y.instance_id("app"), round=y.instance_id("round"), fill=fill)
    assert client_for(app, user).get(url).status_code == status


def test_the_worklist_shows_my_work_and_why_i_cannot_take_some(site):
    app, y = site
    ada = client_for(app, "ada")
    mine = ada.get("/tasks").get_data(as_text=True)  # she started the application: its first task is hers
    assert "Fyll ut søknad" in mine and '<strong class="overdue">' not in mine
    assert "Fyll ut søknad" not in ada.get("/tasks?view=available").get_data(as_text=True)
    _to_review(app, y)
    knut_blocked = client_for(app, "mia").get("/tasks?view=available").get_data(as_text=True)
    assert "Vurder søknad" in knut_blocked
    tor = client_for(app, "tor")  # Tønsberg: no conflict with Horten and the hospital
    assert "Vurder søknad" in tor.get("/tasks?view=available").get_data(as_text=True)
    bjorn_view = client_for(app, "bjorn").get("/tasks?view=available").get_data(as_text=True)
    assert "Vurder søknad" not in bjorn_view  # not a committee member at all


def test_a_form_with_errors_keeps_what_was_typed_and_links_each_error(site):
    app, y = site
    ada = client_for(app, "ada")
    task = y.task("app", "fill_application")
    form = {**_form(), "budget.0.amount": "-5", "contact_email": "ikke-en-adresse", "_action": "complete"}
    del form["purpose"]
    page = ada.post(f"/tasks/{task}", data=form)
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert '<div class="error-summary" role="alert"' in html
    assert 'href="#f-budget-0-amount"' in html and 'href="#f-purpose"' in html and 'href="#f-contact_email"' in html
    assert "Verdien må være mellom 0 og 100000000." in html and "Fyll ut feltet." in html
    assert re.search(r'id="f-budget-0-amount"[^>]*aria-describedby="[^"]*f-budget-0-amount-error"', html)
    assert 'value="Trygg hjemkomst"' in html  # nothing typed is lost
    assert [t.name for t in y.rt.tasks(y.instance_id("app"))] == ["fill_application"]


def test_rows_can_be_added_and_removed_without_javascript(site):
    app, y = site
    ada = client_for(app, "ada")
    task = y.task("app", "fill_application")
    added = ada.post(f"/tasks/{task}", data={**_form(), "_add": "budget"}).get_data(as_text=True)
    assert 'id="f-budget-2-party"' in added and 'value="Horten kommune"' in added
    removed = ada.post(f"/tasks/{task}", data={**_form(), "_remove": "budget.0"}).get_data(as_text=True)
    assert 'id="f-budget-1-party"' not in removed and 'value="Sykehuset i Vestfold HF"' in removed


def test_a_draft_is_saved_and_comes_back(site):
    app, y = site
    ada = client_for(app, "ada")
    task = y.task("app", "fill_application")
    saved = ada.post(f"/tasks/{task}", data={"title": "Halvferdig søknad", "_action": "save"})
    assert saved.status_code == 302
    page = ada.get(f"/tasks/{task}").get_data(as_text=True)
    assert 'value="Halvferdig søknad"' in page and "Utkast lagret" in page
    assert [t.name for t in y.rt.tasks(y.instance_id("app"))] == ["fill_application"]  # not submitted
    done = ada.post(f"/tasks/{task}", data={**_form(), "_action": "complete"})
    assert done.status_code == 302
    assert y.data("app")["title"] == "Trygg hjemkomst" and y.data("app")["budget"][0]["amount"] == 200_000


def test_two_claim_at_once_and_the_loser_is_told(site):
    app, y = site
    _to_review(app, y)
    review = y.task("app", "review_application")
    mia, tor = client_for(app, "mia"), client_for(app, "tor")
    assert mia.post(f"/tasks/{review}/claim").status_code == 302
    lost = tor.post(f"/tasks/{review}/claim", follow_redirects=True).get_data(as_text=True)
    assert "mia tok oppgaven akkurat nå." in lost
    refused = tor.post(f"/tasks/{review}", data={"review.conflict_of_interest": "false",
                                                   "review.conflict_of_interest.present": "1"})
    assert refused.status_code == 409 and "har tatt denne oppgaven" in refused.get_data(as_text=True)


def test_a_task_closed_meanwhile_keeps_the_input(site):
    app, y = site
    task = y.task("app", "fill_application")
    first, second = client_for(app, "ada"), client_for(app, "ada")
    assert first.post(f"/tasks/{task}", data={**_form(), "_action": "complete"}).status_code == 302
    late = second.post(f"/tasks/{task}", data={**_form("Min andre versjon"), "_action": "complete"})
    html = late.get_data(as_text=True)
    assert late.status_code == 409 and "ble lukket i mellomtiden" in html
    assert 'value="Min andre versjon"' in html and "Oppgaven er fullført" in html  # what was typed, shown back
    refused = [e for e in y.rt.audit(y.instance_id("app")) if e["action"] == "complete_refused"]
    assert refused and refused[-1]["details"]["data"]["title"] == "Min andre versjon"


def test_conflict_of_interest_is_explained_on_claim(site):
    app, y = site
    _to_review(app, y)
    with y.rt.session() as s:
        accounts.set_password(s, "hanne", "passord-hanne")
    PASSWORDS["hanne"] = "passord-hanne"
    hanne = client_for(app, "hanne")  # a member of Horten kommune, the main applicant: a conflict of interest
    review = y.task("app", "review_application")
    page = hanne.post(f"/tasks/{review}/claim", follow_redirects=True).get_data(as_text=True)
    assert "Du kan ikke ta denne oppgaven: inhabilitet: du tilhører Horten kommune" in page
    listed = hanne.get("/tasks?view=available").get_data(as_text=True)
    assert "Oppgaver du ikke kan ta" in listed and "inhabilitet: du tilhører Horten kommune" in listed


def test_languages_and_the_lang_attribute(site):
    app, _ = site
    ada = client_for(app, "ada")
    assert '<html lang="nb">' in ada.get("/tasks").get_data(as_text=True)
    ada.post("/language", data={"lang": "nn", "next": "/tasks"})
    nynorsk = ada.get("/tasks").get_data(as_text=True)
    assert '<html lang="nn">' in nynorsk and "Mine oppgåver" in nynorsk
    english = ada.get("/tasks?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "My tasks" in english
    assert ada.post("/language", data={"lang": "de"}).status_code == 400


def test_every_ui_message_is_translated_in_all_three_languages():
    found = {msg[2] for package in ("engine", "web", "community")  # engine: texts marked with engine.texts._
             for msg in extract_from_dir(str(ROOT / package), method_map=[
                 ("**.py", "python"), ("**/templates/**.html", "jinja2"), ("templates/**.html", "jinja2")],
                 keywords={"_": None, "gettext": None})}
    ids = {m if isinstance(m, str) else m[0] for m in found}
    for lang in ("nb", "nn", "en"):
        folder = ROOT / "web" / "translations" / lang / "LC_MESSAGES"
        with open(folder / "messages.po", "rb") as f:
            po = {m.id: m.string for m in read_po(f) if m.id}
        with open(folder / "messages.mo", "rb") as f:
            mo = {m.id: m.string for m in read_mo(f) if m.id}
        untranslated = sorted(i for i in ids if not po.get(i))
        assert not untranslated, f"{lang}: untranslated {untranslated}"
        assert mo == po, f"{lang}: messages.mo is older than messages.po (run pybabel compile -d web/translations)"


def test_security_headers_and_csrf(db_engine):
    rt = grant_runtime(db_engine)
    app = create_app({"TESTING": True, "SECRET_KEY": "test",
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = rt
    client = app.test_client()
    page = client.get("/sign-in")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert client.post("/sign-in", data={"username": "ada", "password": "x"}).status_code == 400  # no CSRF token
    with pytest.raises(RuntimeError, match="SAMFLYT_SECRET_KEY"):
        create_app({"DATABASE_URL": db_engine.url.render_as_string(hide_password=False), "SECRET_KEY": None})


def test_admin_pages_are_for_admins_and_deploy_retry_cancel_work(site, tmp_path):
    app, y = site
    assert client_for(app, "per").get("/admin").status_code == 403
    admin = client_for(app, "admin")
    page = admin.get("/admin").get_data(as_text=True)
    assert "grant_application" in page and "Brukere" in page
    broken = admin.post("/admin/deploy", data={"bundle": (io.BytesIO(b"<not-bpmn"), "broken.bpmn")},
                        content_type="multipart/form-data", follow_redirects=True)
    assert "Ingenting ble tatt i bruk" in broken.get_data(as_text=True)
    demo = ROOT / "bpmn" / "demo"
    files = [(io.BytesIO(p.read_bytes()), p.name) for p in sorted(demo.iterdir()) if p.suffix in (".bpmn", ".json")
             and p.name != "demo.json"]
    deployed = admin.post("/admin/deploy", data={"bundle": files}, content_type="multipart/form-data",
                          follow_redirects=True).get_data(as_text=True)
    assert "demo_request versjon 1: tatt i bruk" in deployed
    instance_id = y.instance_id("app")
    assert admin.post(f"/admin/instances/{instance_id}/cancel", data={"reason": ""},
                      follow_redirects=True).status_code == 200
    assert y.rt.instance(instance_id).status == "running"  # no reason, no cancel
    admin.post(f"/admin/instances/{instance_id}/cancel", data={"reason": "Søknaden er sendt på papir."})
    assert y.rt.instance(instance_id).status == "cancelled"


def test_au_gives_a_task_to_someone_else_with_a_reason(site):
    app, y = site
    _to_review(app, y)
    review = y.task("app", "review_application")
    per = client_for(app, "per")
    page = per.get(f"/tasks/{review}").get_data(as_text=True)
    offered = re.findall(r'<option value="(\w+)">[^<]+ \(\1\)</option>', page)
    assert offered == ["knut", "mia", "tor"]  # the committee members who may take it, by name; not hanne (Horten)
    refused = per.post(f"/tasks/{review}/assign", data={"assignee": "hanne", "reason": "Ferie"},
                       follow_redirects=True).get_data(as_text=True)
    assert "inhabilitet" in refused  # the engine's rule holds for reassignment too
    per.post(f"/tasks/{review}/assign", data={"assignee": "mia", "reason": "Tor har ferie"})
    assert next(t for t in y.rt.tasks(y.instance_id("app")) if t.id == review).claimed_by == "mia"
    assign = [e for e in y.rt.audit(y.instance_id("app")) if e["action"] == "assign"][-1]
    assert assign["actor"] == "per" and assign["details"]["reason"] == "Tor har ferie"
    ada = client_for(app, "ada")
    assert ada.post(f"/tasks/{review}/assign", data={"assignee": "tor", "reason": "x"}).status_code == 302
    assert ada.get(f"/tasks/{review}").status_code == 403  # nor may she see a review someone holds
    assert next(t for t in y.rt.tasks(y.instance_id("app")) if t.id == review).claimed_by == "mia"


def test_overviews_of_rounds_ledger_and_reports(site):
    app, y = site
    y.connector("ledger.allocate", {"year": 2025, "amount": 6_960_000, "reference": "HSØ 2025"}, "admin")
    y.connector("ledger.set_aside", {"year": 2025, "amount": 100_000, "purpose": "Partnerskapskonferansen"}, "admin")
    assert client_for(app, "ada").get("/grants").status_code == 403
    per = client_for(app, "per")
    calls = per.get("/grants").get_data(as_text=True)
    assert "Rekrutterings- og samhandlingstilskudd 2025" in calls and "1\u00a0000\u00a0000\u00a0kr" in calls
    call_id = y.data("round")["call_id"]
    page = per.get(f"/grants/calls/{call_id}").get_data(as_text=True)
    assert "01.05.2025" in page and "Etter bærekraftskuttet (20 %)" in page and "800\u00a0000\u00a0kr" in page
    ledger = per.get("/grants/ledger?year=2025").get_data(as_text=True)
    assert "6\u00a0860\u00a0000\u00a0kr" in ledger and "Partnerskapskonferansen" in ledger
    assert "<td>Tildeling</td>" in ledger and "<td>Avsatt</td>" in ledger  # codes as words, not allocation
    per.post("/language", data={"lang": "en", "next": "/tasks"})
    english = per.get("/grants/ledger?year=2025").get_data(as_text=True)
    assert "<td>Allocation</td>" in english and "<td>Set aside</td>" in english
    history = per.get(f"/instances/{y.instance_id('round')}").get_data(as_text=True)
    assert "per: completed (" in history and ": complete (" not in history  # the timeline speaks too
    assert per.get("/grants/ledger?year=1999").status_code == 404
    assert per.get("/grants/reports").status_code == 200
    assert per.get("/grants/calls/9999").status_code == 404


def test_an_attachment_is_checked_stored_outside_the_rows_and_downloadable(site, tmp_path, monkeypatch):
    app, y = site
    monkeypatch.setenv("SAMFLYT_ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SAMFLYT_ATTACHMENT_MAX_BYTES", "2000")
    ada = client_for(app, "ada")
    task = y.task("app", "fill_application")
    refused = ada.post(f"/tasks/{task}", data={**_form(), "_action": "complete",
                                               "attachment": (io.BytesIO(b"MZ..."), "virus.exe")},
                       content_type="multipart/form-data")
    assert refused.status_code == 422 and "virus.exe: filer av typen .exe tas ikke imot" in refused.get_data(True)
    too_big = ada.post(f"/tasks/{task}", data={**_form(), "_action": "complete",
                                               "attachment": (io.BytesIO(b"%PDF" + b"x" * 3000), "plan.pdf")},
                       content_type="multipart/form-data")
    assert too_big.status_code == 422 and "plan.pdf er større enn 1 kB" in too_big.get_data(True)
    assert not (tmp_path / "files").exists() or not any((tmp_path / "files").iterdir())
    done = ada.post(f"/tasks/{task}", data={**_form(), "_action": "complete",
                                            "attachment": (io.BytesIO(b"%PDF-1.7 prosjektplan"), "prosjektplan.pdf")},
                    content_type="multipart/form-data")
    assert done.status_code == 302
    attachment_id = y.data("app")["attachment"]
    assert (tmp_path / "files" / attachment_id).read_bytes() == b"%PDF-1.7 prosjektplan"  # a file, not a row
    download = ada.get(f"/instances/attachments/{attachment_id}")
    assert download.status_code == 200 and download.data == b"%PDF-1.7 prosjektplan"
    assert "prosjektplan.pdf" in download.headers["Content-Disposition"]
    assert client_for(app, "hege").get(f"/instances/attachments/{attachment_id}").status_code == 403
    assert client_for(app, "per").get(f"/instances/attachments/{attachment_id}").status_code == 200


def test_the_applicant_reports_a_deviation_and_withdraws_from_the_case_page(site):
    app, y = site
    ada = client_for(app, "ada")
    ada.post(f"/tasks/{y.task('app', 'fill_application')}", data={**_form(), "_action": "complete"})
    y.cosign("app", "bjorn")
    y.submit("app", "ada")
    instance_id = y.instance_id("app")
    page = ada.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert "Meld avvik" in page and "Trekk søknaden" in page
    assert client_for(app, "hege").get(f"/instances/{instance_id}/messages/deviation_report").status_code == 403
    missing = ada.post(f"/instances/{instance_id}/messages/deviation_report", data={"description": "Forsinket"})
    assert missing.status_code == 422 and 'href="#f-consequences"' in missing.get_data(as_text=True)
    sent = ada.post(f"/instances/{instance_id}/messages/deviation_report", data={
        "description": "Prosjektleder har sluttet.", "consequences": "Oppstarten utsettes."})
    assert sent.status_code == 302
    assert "review_deviation" in [t.name for t in y.rt.tasks(instance_id)]
    ada.post(f"/instances/{instance_id}/messages/withdraw_application", data={"reason": "Prosjektet utsettes."})
    assert y.rt.instance(instance_id).status == "completed" and y.application_row("app").status == "withdrawn"
    assert ada.get(f"/instances/{instance_id}/messages/deviation_report").status_code == 404  # nothing waits now


def test_form_labels_follow_the_language(site):
    app, y = site
    ada = client_for(app, "ada")
    task = y.task("app", "fill_application")
    assert "Prosjektets tittel" in ada.get(f"/tasks/{task}").get_data(as_text=True)
    nynorsk = ada.get(f"/tasks/{task}?lang=nn").get_data(as_text=True)
    assert "Prosjektet sin tittel" in nynorsk and "Heile kroner" in nynorsk
    english = ada.get(f"/tasks/{task}?lang=en").get_data(as_text=True)
    assert "<h1>Application – project plan</h1>" in english and "Project title" in english
    assert "Frail elderly people" in english and "Prosjektets tittel" not in english


ACTIONS = {
    # action: (method, path template, form data)
    "claim review": ("post", "/tasks/{review}/claim", {}),
    "complete review": ("post", "/tasks/{review}", {"_action": "complete", "review.conflict_of_interest": "false",
                                                    "review.conflict_of_interest.present": "1",
                                                    "review.scores.0.criterion": "Forankring",
                                                    "review.scores.0.score": "4"}),
    "reassign review": ("post", "/tasks/{review}/assign", {"assignee": "mia", "reason": "Fordeling"}),
    "deploy": ("post", "/admin/deploy", {}),
    "retry": ("post", "/admin/instances/{app}/retry", {}),
    "cancel": ("post", "/admin/instances/{app}/cancel", {"reason": "Test"}),
    "report deviation": ("post", "/instances/{app}/messages/deviation_report",
                         {"description": "Avvik", "consequences": "Forsinkelse"}),
    "read ledger": ("get", "/grants/ledger", {}),
    "see all tasks": ("get", "/tasks?view=all", {}),
}
# who may do what: True = allowed, False = refused (403, or the engine's refusal shown without effect)
ALLOWED = {
    "ada": {"report deviation"},
    "tor": {"claim review", "complete review"},
    "knut": {"claim review", "complete review"},  # the hospital co-signed: no personal conflict for its member
    "hanne": set(),  # a member of Horten kommune, the main applicant: a conflict of interest
    "per": {"reassign review", "read ledger", "see all tasks", "report deviation"},
    "admin": set(ACTIONS),
}


#: what an allowed action that has nothing to act on answers (an empty deploy; a retry of a running instance)
ANSWERS = {"deploy": "Velg pakkens .bpmn-, .dmn- og skjemafiler", "retry": "har status running og har ingen feil"}


@pytest.mark.parametrize("db_engine", ["sqlite"], indirect=True)  # authorisation does not depend on the database
@pytest.mark.parametrize("user", sorted(ALLOWED))
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_the_roles_by_actions_matrix(site, user, action):
    """Every action by every kind of user: allowed ones take effect, the rest are refused and change nothing."""
    app, y = site
    _to_review(app, y)
    with y.rt.session() as s:
        accounts.set_password(s, "knut", "passord-knut")
    PASSWORDS["knut"] = "passord-knut"
    ids = {"review": y.task("app", "review_application"), "app": y.instance_id("app")}
    method, template, data = ACTIONS[action]
    client = client_for(app, user)
    before = y.rt.audit(ids["app"])
    response = getattr(client, method)(template.format(**ids), data=data)
    allowed = action in ALLOWED[user]
    effects = [e for e in y.rt.audit(ids["app"])[len(before):] if e["action"] != "complete_refused"]
    if method == "get":
        assert (response.status_code == 200) == allowed, response.status_code
    elif action in ("deploy", "retry", "cancel", "read ledger", "see all tasks", "report deviation") and not allowed:
        assert response.status_code == 403
        assert effects == []
    elif not allowed:
        assert response.status_code in (302, 403, 409, 422) and effects == []
    elif action in ANSWERS:  # an empty deploy and a retry of a running instance: the engine's answer, shown
        assert response.status_code == 302, response.status_code
        assert ANSWERS[action] in client.get(response.location).get_data(as_text=True)
    else:
        assert effects, f"{user} {action}: nothing happened ({response.status_code})"


def test_admin_changes_a_users_roles_and_organisations(site):
    app, y = site
    admin = client_for(app, "admin")
    admin.post("/admin/users", data={"username": "ada", "display_name": "Ada Søker", "email": "ada@horten.example.no",
                                     "roles": "applicant, committee", "organisations": "Horten kommune, Færder kommune",
                                     "active": "true"})
    with y.rt.Session() as s:
        from engine.models import User

        ada = s.query(User).filter_by(username="ada").one()
        assert ada.role_names == {"applicant", "committee"}
        assert ada.organisation_names == {"Horten kommune", "Færder kommune"}
    admin.post("/admin/users", data={"username": "ada", "roles": "applicant", "organisations": "Horten kommune"})
    page = admin.get("/admin").get_data(as_text=True)
    assert "ada (deaktivert)" in page  # the box was not ticked: deactivated
    assert app.test_client().post("/sign-in", data={"username": "ada", "password": PASSWORDS["ada"]}).status_code == 401
    refused = admin.post("/admin/users", data={"username": "admin", "roles": "applicant", "active": "true"},
                         follow_redirects=True).get_data(as_text=True)
    assert "kan ikke ta fra deg din egen administratorrolle" in refused
    assert "user_saved" in {e["action"] for e in y.rt.audit()}


def test_an_unexpected_error_shows_the_error_page_without_a_stack_trace(site):
    app, _ = site

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail from deep inside")

    app.testing = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    page = client_for(app, "ada").get("/boom")
    html = page.get_data(as_text=True)
    assert page.status_code == 500 and "Noe gikk galt" in html
    assert "secret detail" not in html and "Traceback" not in html


def test_task_titles_follow_the_language(site):
    app, y = site
    names = {lang: json.loads((ROOT / "bpmn" / "grant" / f"names.{lang}.json").read_text(encoding="utf-8"))
             for lang in ("nn", "en")}
    ada = client_for(app, "ada")
    assert "Fyll ut søknad" in ada.get("/tasks").get_data(as_text=True)
    for lang in ("nn", "en"):
        page = ada.get(f"/tasks?lang={lang}").get_data(as_text=True)
        assert escape(names[lang]["grant_application"]["fill_application"]) in page
        assert escape(names[lang]["grant_application"][""]) in page
        case = ada.get(f"/instances/{y.instance_id('app')}").get_data(as_text=True)
        assert escape(names[lang]["grant_application"]["prepare"]) in case  # a done step, by name


def test_someone_who_may_not_see_a_task_can_post_nothing_to_it(site, tmp_path, monkeypatch):
    """Hege (another municipality's applicant) may not see Ada's application: no file, draft, page or audit."""
    app, y = site
    monkeypatch.setenv("SAMFLYT_ATTACHMENTS_DIR", str(tmp_path / "files"))
    task = y.task("app", "fill_application")
    hege = client_for(app, "hege")
    posts = {
        "upload": {**_form(), "_action": "save", "attachment": (io.BytesIO(b"%PDF-1.7 hege"), "hege.pdf")},
        "draft": {"title": "Heges utkast", "_action": "save"},
        "add row": {**_form(), "_add": "budget"},
        "remove row": {**_form(), "_remove": "budget.0"},
        "complete": {**_form("Heges tittel"), "_action": "complete"},
    }
    for name, data in posts.items():
        response = hege.post(f"/tasks/{task}", data=data, content_type="multipart/form-data")
        assert response.status_code == 403, name
        assert "Trygg hjemkomst" not in response.get_data(as_text=True), name  # not the form with its values
    assert not (tmp_path / "files").exists() or not any((tmp_path / "files").iterdir())
    with y.rt.Session() as s:
        assert accounts.load_draft(s, task, "hege") is None
    client_for(app, "ada").post(f"/tasks/{task}", data={**_form(), "_action": "complete"})
    late = hege.post(f"/tasks/{task}", data={**_form("Heges tittel"), "_action": "complete"})
    assert late.status_code == 403
    audit = y.rt.audit(y.instance_id("app"))
    assert "hege" not in {e["actor"] for e in audit}
    assert "Heges tittel" not in json.dumps([e["details"] for e in audit], ensure_ascii=False)


def test_the_engine_keeps_no_refused_input_of_someone_who_may_not_work_the_task(site):
    """``complete`` on a closed task audits the input only for someone who could have worked it."""
    app, y = site
    task = y.task("app", "fill_application")
    client_for(app, "ada").post(f"/tasks/{task}", data={**_form(), "_action": "complete"})
    from engine.errors import NotAuthorisedError, TaskNotOpenError

    with pytest.raises(NotAuthorisedError):
        y.rt.complete(task, "hege", {"title": "Skrevet inn i en annens sak"})
    with pytest.raises(TaskNotOpenError):
        y.rt.complete(task, "ada", {"title": "Ada for sent"})
    refused = [e for e in y.rt.audit(y.instance_id("app")) if e["action"] == "complete_refused"]
    assert [(e["actor"], e["details"]["data"]["title"]) for e in refused] == [("ada", "Ada for sent")]


def test_a_draft_is_refused_for_someone_who_may_see_but_not_work_the_task(site):
    """AU may look at the applicant's task but keeps no draft in it (nor uploads)."""
    app, y = site
    task = y.task("app", "fill_application")
    per = client_for(app, "per")
    assert per.get(f"/tasks/{task}").status_code == 200
    refused = per.post(f"/tasks/{task}", data={"title": "AU sitt utkast", "_action": "save"})
    assert refused.status_code == 403 and "Du kan ikke lagre utkast" in refused.get_data(as_text=True)
    with y.rt.Session() as s:
        assert accounts.load_draft(s, task, "per") is None


def test_the_request_size_follows_the_attachment_limit(site, monkeypatch):
    """An upload larger than the limit allows is refused before the view reads it (nothing is stored)."""
    _, y = site
    monkeypatch.setenv("SAMFLYT_ATTACHMENT_MAX_BYTES", "1000")
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": str(y.rt.engine.url.render_as_string(hide_password=False))})
    app.extensions["samflyt_runtime"] = y.rt
    from web import FORM_SLACK_BYTES, UPLOADS_PER_REQUEST

    assert app.config["MAX_CONTENT_LENGTH"] == UPLOADS_PER_REQUEST * 1000 + FORM_SLACK_BYTES
    task = y.task("app", "fill_application")
    huge = client_for(app, "ada").post(f"/tasks/{task}", data={
        **_form(), "_action": "save", "attachment": (io.BytesIO(b"%PDF" + b"x" * FORM_SLACK_BYTES * 2), "a.pdf")},
        content_type="multipart/form-data")
    assert huge.status_code == 413 and "For stor fil" in huge.get_data(as_text=True)
    with y.rt.Session() as s:
        assert accounts.load_draft(s, task, "ada") is None


def test_a_candidate_opens_the_case_from_available_and_the_engine_decides(site):
    """Tor may claim the review, so its case opens for him; Hanne (conflict of interest) and Hege may not."""
    app, y = site
    _to_review(app, y)
    instance_id, review = y.instance_id("app"), y.task("app", "review_application")
    with y.rt.session() as s:
        accounts.set_password(s, "knut", "passord-knut")
    PASSWORDS["knut"] = "passord-knut"
    assert client_for(app, "tor").get(f"/instances/{instance_id}").status_code == 200
    assert client_for(app, "tor").get(f"/instances/{instance_id}/diagram.bpmn").status_code == 200
    assert client_for(app, "hanne").get(f"/instances/{instance_id}").status_code == 403
    assert client_for(app, "hege").get(f"/instances/{instance_id}").status_code == 403
    assert y.rt.may_view_instance(instance_id, "tor") and y.rt.may_view_task(review, "tor")
    assert not y.rt.may_view_instance(instance_id, "hanne") and not y.rt.may_view_task(review, "hanne")
    assert y.rt.may_view_instance(instance_id, "ada") and y.rt.may_view_instance(instance_id, "per")
    y.rt.claim(review, "mia")
    assert y.rt.may_view_task(review, "tor")  # the task page still says who has it


def _start_bundle(folder: Path) -> Path:
    """A permit process its start event lets applicants start with a start form, and one nobody may start."""
    from tests import bpmn_builder as b

    start_props = b.props(**{"samflyt.starterRoles": "Applicant, secretariat", "samflyt.titleField": "subject",
                             "formJsonSchemaFilename": "permit_start.json", "samflyt.initiatorField": "requested_by"})
    permit = b.definitions(b.process(
        "permit", b.start("start", f"<bpmn:extensionElements>{start_props}</bpmn:extensionElements>"),
        b.user_task("write", "Skriv søknaden", form="permit_write.json"), b.user_task("check", "Kontroller"), b.end(),
        b.chain("start", "write", "check", "end"), lanes={"Applicant": ["write"], "AU": ["check"]},
        name="Søknad om løyve"), id="permit_defs")
    internal = b.definitions(b.process("internal", b.start(), b.user_task("do"), b.end(), b.chain("start", "do", "end"),
                                       name="Intern sak"), id="internal_defs")
    folder.mkdir()
    (folder / "permit.bpmn").write_text(permit, encoding="utf-8")
    (folder / "internal.bpmn").write_text(internal, encoding="utf-8")
    (folder / "permit_start.json").write_text(json.dumps({
        "title": "Hva gjelder søknaden?", "type": "object", "required": ["subject"],
        "properties": {"subject": {"type": "string", "title": "Emne"}}}), encoding="utf-8")
    (folder / "permit_write.json").write_text(json.dumps({
        "title": "Søknaden", "type": "object",
        "properties": {"subject": {"type": "string", "title": "Emne"}}}), encoding="utf-8")
    return folder


def test_the_start_page_lists_what_the_diagram_lets_me_start(site, tmp_path):
    app, y = site
    y.rt.deploy([str(_start_bundle(tmp_path / "bundle"))], actor="admin")
    ada = client_for(app, "ada")
    listed = ada.get("/start").get_data(as_text=True)
    assert "Søknad om løyve" in listed and "Intern sak" not in listed
    assert 'href="/start/permit"' in listed
    admins = client_for(app, "admin").get("/start").get_data(as_text=True)
    assert "Søknad om løyve" in admins  # admins always, though not in the roles
    assert "Intern sak" not in admins and "grant_follow_up" not in admins  # names no starters: not for people
    assert "Søknad om løyve" not in client_for(app, "per").get("/start").get_data(as_text=True)
    assert ada.get("/start/internal").status_code == 403
    assert ada.get("/start/no_such_process").status_code == 404
    assert client_for(app, "per").post("/start/permit", data={"subject": "AU prøver"}).status_code == 403
    form = ada.get("/start/permit").get_data(as_text=True)
    assert '<label for="f-subject"' in form and "Hva gjelder søknaden?" in form
    linked = ada.get("/start/permit?subject=Uteservering&requested_by=per").get_data(as_text=True)
    assert 'value="Uteservering"' in linked and 'value="per"' not in linked  # only the form's own fields


def test_an_applicant_starts_a_case_with_a_start_form_and_it_is_named_by_its_data(site, tmp_path):
    app, y = site
    y.rt.deploy([str(_start_bundle(tmp_path / "bundle"))], actor="admin")
    before = len(y.rt.instances_summary())
    ada = client_for(app, "ada")
    missing = ada.post("/start/permit", data={"subject": ""})
    assert missing.status_code == 422 and 'href="#f-subject"' in missing.get_data(as_text=True)
    assert len(y.rt.instances_summary()) == before  # nothing started
    started = ada.post("/start/permit", data={"subject": "Løyve til kafé", "requested_by": "per"})
    assert started.status_code == 302
    newest = y.rt.instances_summary()[0]
    assert newest["process_id"] == "permit" and newest["title"] == "Løyve til kafé"
    view = y.rt.instance(newest["id"])
    write = next(t for t in view.tasks if t.name == "write")
    assert started.location.endswith(f"/tasks/{write.id}")  # straight to the first task
    assert view.started_by == "ada" and view.data["requested_by"] == "ada"  # the engine's value, not the form's
    start = next(e for e in y.rt.audit(newest["id"]) if e["action"] == "start")
    assert start["actor"] == "ada" and start["details"]["data"]["subject"] == "Løyve til kafé"
    assert "Løyve til kafé" in ada.get("/tasks").get_data(as_text=True)  # the case column, in her own tasks
    ada.post(f"/tasks/{write.id}", data={"subject": "Løyve til kafé og uteservering", "_action": "complete"})
    assert y.rt.instance(newest["id"]).title == "Løyve til kafé og uteservering"  # re-derived after the step
    available = client_for(app, "per").get("/tasks?view=available").get_data(as_text=True)
    assert "Løyve til kafé og uteservering" in available


def test_only_starters_may_start_in_the_engine(site, tmp_path):
    _, y = site
    y.rt.deploy([str(_start_bundle(tmp_path / "bundle"))], actor="admin")
    from engine.errors import NotAuthorisedError, ValidationError

    with pytest.raises(NotAuthorisedError):
        y.rt.start_as("permit", "per", {"subject": "x"})
    with pytest.raises(NotAuthorisedError):
        y.rt.start_as("internal", "ada")
    with pytest.raises(ValidationError):
        y.rt.start_as("permit", "ada", {"subject": "x", "unknown": 1})
    with pytest.raises(NotAuthorisedError):
        y.rt.start_as("internal", "admin")  # called or message-started models are not started by people
    assert y.rt.instance(y.rt.start_as("permit", "admin", {"subject": "x"})).started_by == "admin"
    assert [p["process_id"] for p in y.rt.startable("siri")] == ["permit"]  # role names are case-insensitive


def test_session_cookies_are_secure_http_only_and_same_site_in_production(site, monkeypatch):
    _, y = site
    monkeypatch.setenv("SAMFLYT_ENV", "production")
    app = create_app({"SECRET_KEY": "production-secret", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": y.rt.engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = y.rt
    signed_in = app.test_client().post("/sign-in", data={"username": "ada", "password": PASSWORDS["ada"]},
                                       base_url="https://samflyt.example")
    assert signed_in.status_code == 302
    cookie = next(c for c in signed_in.headers.getlist("Set-Cookie") if c.startswith("session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= flags, cookie
    assert signed_in.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    monkeypatch.delenv("SAMFLYT_ENV")
    development = create_app({"TESTING": True, "SECRET_KEY": "x", "WTF_CSRF_ENABLED": False,
                              "DATABASE_URL": y.rt.engine.url.render_as_string(hide_password=False)})
    assert development.config["SESSION_COOKIE_SECURE"] is False  # plain http on a developer's machine
    development.extensions["samflyt_runtime"] = y.rt
    assert "Strict-Transport-Security" not in development.test_client().get("/sign-in").headers


def _csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_csrf_is_required_on_a_task_form_and_an_admin_form(site):
    _, y = site
    app = create_app({"TESTING": True, "SECRET_KEY": "test",
                      "DATABASE_URL": y.rt.engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = y.rt
    task = y.task("app", "fill_application")

    def signed_in(user: str):
        client = app.test_client()
        token = _csrf_token(client.get("/sign-in").get_data(as_text=True))
        assert client.post("/sign-in", data={"username": user, "password": PASSWORDS[user],
                                             "csrf_token": token}).status_code == 302
        return client

    ada = signed_in("ada")
    draft = {"title": "Utkast uten token", "_action": "save"}
    assert ada.post(f"/tasks/{task}", data=draft).status_code == 400
    assert ada.post(f"/tasks/{task}", data={**draft, "csrf_token": "forged"}).status_code == 400
    with y.rt.Session() as s:
        assert accounts.load_draft(s, task, "ada") is None
    token = _csrf_token(ada.get(f"/tasks/{task}").get_data(as_text=True))
    assert ada.post(f"/tasks/{task}", data={**draft, "csrf_token": token}).status_code == 302  # the token works
    admin = signed_in("admin")
    new_user = {"username": "csrf-offer", "roles": "admin", "active": "true"}
    refused = admin.post("/admin/users", data=new_user)
    assert refused.status_code == 400 and "Skjemaet var utløpt" in refused.get_data(as_text=True)
    with y.rt.Session() as s:
        from engine.models import User

        assert s.query(User).filter_by(username="csrf-offer").first() is None
    token = _csrf_token(admin.get("/admin").get_data(as_text=True))
    assert admin.post("/admin/users", data={**new_user, "csrf_token": token}).status_code == 302


#: What the grant diagrams need for the start page and the case titles (see the report of issue #6): the
#: start events' properties and the application's start form, applied to a copy of the bundle.
def test_an_applicant_applies_from_the_start_page_with_the_grant_diagrams_properties(site):
    """With the start events' properties, Ada starts an application for a call in the browser's way, and
    the worklists name the case by its project title once she has filled it in."""
    app, y = site  # the bundle as deployed: its start events name their starters and the title field
    call_id = y.data("round")["call_id"]
    ada = client_for(app, "ada")
    listed = ada.get("/start").get_data(as_text=True)
    assert 'href="/start/grant_application"' in listed and 'href="/start/grant_round"' not in listed
    assert 'href="/start/grant_round"' in client_for(app, "per").get("/start").get_data(as_text=True)
    linked = ada.get(f"/start/grant_application?call_id={call_id}").get_data(as_text=True)
    assert f'value="{call_id}"' in linked
    with y.rt.session() as s:
        title = s.get(GrantCall, call_id).title
    assert f'<option value="{call_id}" selected>{title} (' in linked, "the link chooses the call, by its title"
    for unknown in ("999", "0", "-1", "abc"):  # no such call, or not a number: refused on the field
        refused = ada.post("/start/grant_application", data={"call_id": unknown})
        assert refused.status_code == 422 and 'id="f-call_id-error"' in refused.get_data(as_text=True)
    started = ada.post("/start/grant_application", data={"call_id": str(call_id)})
    assert started.status_code == 302 and "/tasks/" in started.location
    instance_id = y.rt.instances_summary()[0]["id"]
    view = y.rt.instance(instance_id)
    assert view.data["call_id"] == call_id and view.data["applicant_user"] == "ada" and view.title is None
    fill = started.location.rsplit("/", 1)[-1]
    assert ada.post(f"/tasks/{fill}", data={**_form("Felles legevakt"), "_action": "complete"}).status_code == 302
    assert y.rt.instance(instance_id).title == "Felles legevakt"
    cosign = client_for(app, "bjorn").get("/tasks?view=available").get_data(as_text=True)
    assert f'<a href="/instances/{instance_id}">Felles legevakt</a>' in cosign


def test_another_communitys_au_neither_sees_nor_works_its_cases(site):
    """Vest-Viken's AU (vera) and Vestfold's (per) share the deployment: Ada's Vestfold application reaches
    AU's completeness check, which only Vestfold's AU sees, opens and may hand out; the admin page shows the
    communities and places an organisation in one."""
    app, y = site
    with y.rt.session() as s:
        accounts.set_password(s, "vera", "passord-vera")
    PASSWORDS["vera"] = "passord-vera"
    # the draft is Vestfold's case from its start (its call's community), before any task is bound to one
    assert client_for(app, "vera").get(f"/instances/{y.instance_id('app')}").status_code == 403
    assert client_for(app, "per").get(f"/instances/{y.instance_id('app')}").status_code == 200
    assert not y.rt.may_send_messages(y.instance_id("app"), "vera")
    y.complete("fill_application", "app", "ada", application_form(
        "Trygg hjemkomst", "Horten kommune", ["Sykehuset i Vestfold HF"],
        [("Horten kommune", 2025, 200_000)], contact="ada"))
    y.cosign("app", "bjorn")
    y.submit("app", "ada")
    check = y.task("app", "check_completeness")
    with y.rt.session() as s:
        accounts.set_password(s, "vera", "passord-vera")
    PASSWORDS["vera"] = "passord-vera"
    vera, per = client_for(app, "vera"), client_for(app, "per")
    assert check not in vera.get("/tasks?view=all").get_data(as_text=True)
    available = vera.get("/tasks?view=available").get_data(as_text=True)
    assert check not in available and "Trygg hjemkomst" not in available  # not even listed as blocked
    assert vera.get(f"/tasks/{check}").status_code == 403
    assert vera.get(f"/instances/{y.instance_id('app')}").status_code == 403
    vera.post(f"/tasks/{check}/claim")
    assert next(t for t in y.rt.tasks(y.instance_id("app")) if t.id == check).claimed_by is None
    assert check in per.get("/tasks?view=available").get_data(as_text=True)
    assert 'name="assignee"' in per.get(f"/tasks/{check}").get_data(as_text=True)
    admin = client_for(app, "admin")
    page = admin.get("/admin").get_data(as_text=True)
    assert "Helsefellesskap Vest-Viken" in page and "Vestre Viken HF" in page
    assert "Skriv navnet på helsefellesskapet" in admin.post(
        "/admin/communities", data={"community": "", "organisations": "Asker kommune"},
        follow_redirects=True).get_data(as_text=True)
    admin.post("/admin/communities", data={"community": "Helsefellesskapet i Vestfold",
                                           "organisations": "Vestre Viken HF"})
    assert y.rt.why_not(check, "vera") is None  # vera's hospital now belongs to Vestfold
    assert per.post("/admin/communities", data={"community": "X", "organisations": "Y"}).status_code == 403


def test_the_call_is_for_one_of_the_deployments_communities_chosen_from_a_list(site):
    """The call's community is not typed: AU drafts for its own community (an admin chooses among those
    organisations are placed in), and the form starts with the drafter's own; anything else is refused."""
    app, y = site
    y.start("grant_round", "per", ref="next", title="Tilskudd 2026")
    draft = y.task("next", "draft_call")
    page = client_for(app, "per").get(f"/tasks/{draft}").get_data(as_text=True)
    assert '<option value="Helsefellesskapet i Vestfold" selected>Helsefellesskapet i Vestfold</option>' in page
    assert "Helsefellesskap Vest-Viken" not in page  # not into another community's queue and money
    y.start("grant_round", "admin", ref="admins", title="Tilskudd 2026")
    admins = client_for(app, "admin").get(f"/tasks/{y.task('admins', 'draft_call')}").get_data(as_text=True)
    assert '<option value="Helsefellesskap Vest-Viken" >Helsefellesskap Vest-Viken</option>' in admins
    assert '<option value="Helsefellesskapet i Vestfold" >Helsefellesskapet i Vestfold</option>' in admins
    with pytest.raises(ValidationError, match="community: Must be one of"):
        y.complete("draft_call", "next", "per", {"title": "X", "year": 2026, "criteria": ["S"],
                                                 "priority_groups": ["frail_elderly"], "frame": 1,
                                                 "sustainability_cut_percent": 0, "deadlines": ["2026-05-04"],
                                                 "reviewers_per_application": 2,
                                                 "community": "Helsefellesskap Vest-Viken"})
    call = {"title": "Tilskudd 2026", "year": 2026, "criteria": ["Samhandling"], "priority_groups": ["frail_elderly"],
            "frame": 500_000, "sustainability_cut_percent": 0, "deadlines": ["2026-05-04"],
            "reviewers_per_application": 2}
    with pytest.raises(ValidationError, match="community: Must be one of"):
        y.complete("draft_call", "next", "per", {**call, "community": "Helsefellesskap Innlandet"})
    y.complete("draft_call", "next", "per", {**call, "community": "Helsefellesskapet i Vestfold"})
    assert y.data("next")["community"] == "Helsefellesskapet i Vestfold"


def test_a_round_in_a_deployment_without_communities_stops_with_what_to_do(db_engine):
    from engine.connectors import ConnectorRegistry
    from engine.runtime import Runtime
    from tests.grant_driver import BUNDLE

    registry = ConnectorRegistry()
    registry.load_entry_points()
    rt = Runtime(db_engine, connectors=registry, workflow_cache_size=0, spec_cache=False)
    rt.add_user("per", ["au"], ["Sykehuset i Vestfold HF"])
    rt.deploy([str(BUNDLE)])
    view = rt.instance(rt.start("grant_round", actor="per"))
    assert view.status == "error" and view.error["element"] == "find_communities"
    assert "samflyt users community" in view.error["message"]


def test_anyone_reads_the_open_calls_and_an_applicant_applies_from_one(site):
    app, y = site
    call_id = y.data("round")["call_id"]
    anonymous = client_for(app, None)
    listing = anonymous.get("/calls").get_data(as_text=True)
    assert "Rekrutterings- og samhandlingstilskudd 2025" in listing
    # 1 May is a public holiday: the deadline holds until Friday 2 May (§ 30), and the page says so
    assert "02.05.2025 (utlyst med 01.05.2025, en helligdag eller helg)" in listing
    assert "1\u00a0000\u00a0000\u00a0kr" in listing
    apply_link = f'href="/start/grant_application?call_id={call_id}"'
    assert apply_link in listing  # signed out: the start asks for sign-in first
    page = anonymous.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "Styrker samhandlingen mellom kommunene og sykehuset" in page  # the criteria
    assert "Skrøpelige eldre" in page and "Barn og unge" in page  # priority groups as words
    assert "Ingen ennå." in page
    assert apply_link in client_for(app, "ada").get(f"/calls/{call_id}").get_data(as_text=True)
    assert apply_link not in client_for(app, "per").get(f"/calls/{call_id}").get_data(as_text=True)  # AU
    assert anonymous.get("/calls/999999").status_code == 404
    # the application is registered: the public list shows title, applicant and amount, nothing else
    y.complete("fill_application", "app", "ada", application_form(
        "Trygg hjemkomst", "Horten kommune", ["Sykehuset i Vestfold HF"],
        [("Horten kommune", 2025, 200_000), ("Sykehuset i Vestfold HF", 2025, 100_000)], contact="ada"))
    y.cosign("app", "bjorn")
    y.submit("app", "ada")
    y.check("app", "per")
    page = anonymous.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "Trygg hjemkomst" in page and "Horten kommune" in page and "300\u00a0000\u00a0kr" in page
    assert "ada@example.no" not in page
    # 1 May 2025 is a public holiday, so the call takes applications until Friday 2 May; then it is closed
    y.at("2025-05-02T12:00")
    assert "Rekrutterings- og samhandlingstilskudd 2025" in anonymous.get("/calls").get_data(as_text=True)
    clock.set_now(datetime(2025, 5, 3, 10, 0, tzinfo=clock.LOCAL_TZ))  # passed; no scheduler pass has run yet
    assert "Ingen utlysning tar imot søknader nå." in anonymous.get("/calls").get_data(as_text=True)
    closed = anonymous.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "Denne utlysningen tar ikke imot flere søknader." in closed and apply_link not in closed
    assert "(stengt)" in closed


def test_the_instance_page_shows_the_cases_data_by_its_form_labels(site):
    app, y = site
    per = client_for(app, "per")
    page = per.get(f"/instances/{y.instance_id('round')}").get_data(as_text=True)
    summary = page[page.index("<h2>Sammendrag</h2>"):page.index("<h2>Historikk</h2>")]
    assert "<dt>Ramme (kr)</dt><dd>1\u00a0000\u00a0000</dd>" in summary
    assert "<dt>Tilskuddsår</dt><dd>2025</dd>" in summary  # four digits stay as written
    assert "<dt>Beskrivelse</dt>" in summary and "<dt>Tittel</dt>" in summary  # the round's own forms' labels
    assert "<dt>Utlysningen godkjennes</dt><dd>Ja</dd>" in summary
    assert "round_owner" not in summary and "period_index" not in summary  # the process's bookkeeping
    assert "Tildelingsrunde" in page and "(versjon 1)" in page  # the process by its name, not its id
    assert "Søknadsfristen går ut: " in page  # the waiting timer by its step's name
    english = per.get(f"/instances/{y.instance_id('round')}?lang=en").get_data(as_text=True)
    assert "<dt>Total budget (NOK)</dt><dd>1\u00a0000\u00a0000</dd>" in english
    assert "<dt>Grant year</dt><dd>2025</dd>" in english
    fresh = per.get(f"/instances/{y.instance_id('app')}?lang=nb").get_data(as_text=True)
    assert "<dt>Utlysning</dt><dd>1</dd>" in fresh  # the start form's answer


def test_a_communitys_rounds_and_reports_are_its_own(site):
    """Vest-Viken's AU lists and opens none of Vestfold's rounds (scores and recommendations are the
    community's internal work); the ledger stays readable, being public money; admins see every round."""
    app, y = site
    call_id = y.data("round")["call_id"]
    with y.rt.session() as s:
        accounts.set_password(s, "vera", "passord-vera")
    PASSWORDS["vera"] = "passord-vera"
    vera, per, admin = client_for(app, "vera"), client_for(app, "per"), client_for(app, "admin")
    assert f"/grants/calls/{call_id}" not in vera.get("/grants").get_data(as_text=True)
    assert vera.get(f"/grants/calls/{call_id}").status_code == 403
    assert f"/grants/calls/{call_id}" in per.get("/grants").get_data(as_text=True)
    assert per.get(f"/grants/calls/{call_id}").status_code == 200
    assert admin.get(f"/grants/calls/{call_id}").status_code == 200
    assert vera.get("/grants/ledger?community=Helsefellesskapet+i+Vestfold").status_code == 200


def test_the_diagram_speaks_the_readers_language(site):
    """Lanes are named by the role's words, not its id; in nynorsk and English the steps by their names there."""
    app, y = site
    ada = client_for(app, "ada")
    url = f"/instances/{y.instance_id('app')}/diagram.bpmn"
    bokmal = ada.get(url).get_data(as_text=True)
    assert 'name="Søker"' in bokmal and 'name="Applicant"' not in bokmal and 'name="Fyll ut søknad"' in bokmal
    assert 'name="Arbeidsutvalget (AU)"' in bokmal
    english = ada.get(f"{url}?lang=en").get_data(as_text=True)
    assert 'name="Applicant"' in english and 'name="Fill in application"' in english
    nynorsk = ada.get(f"{url}?lang=nn").get_data(as_text=True)
    assert 'name="Søkjar"' in nynorsk and "<bpmndi:BPMNDiagram" in nynorsk  # the layout is kept


def test_the_worklist_says_more_than_when_its_count_stops(site, monkeypatch):
    """A worklist counts up to ``COUNT_LIMIT`` (or the page asked for): past it the page says "more than" and
    still offers the next page, which counts further."""
    import engine.worklist

    app, y = site
    y.start("grant_application", "ada", {"call_id": y.data("round")["call_id"]}, ref="second")
    monkeypatch.setattr(engine.worklist, "COUNT_LIMIT", 1)
    app.config["WORKLIST_PAGE_SIZE"] = 1
    admin = client_for(app, "admin")
    first = admin.get("/tasks?view=all").get_data(as_text=True)
    assert "Mer enn 1 oppgaver" in first and "Side 1 av mer enn 1" in first and ">Neste<" in first
    second = admin.get("/tasks?view=all&page=2").get_data(as_text=True)
    assert "2 oppgaver" in second and "Mer enn" not in second and "Side 2 av 2" in second
