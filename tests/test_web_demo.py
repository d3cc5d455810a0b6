"""The demo year through the web UI: every demo user signs in and every task in their worklists opens,
so a newcomer can do each role's work in the browser after the README's first command."""

from __future__ import annotations

import json
import re

import pytest

from engine import accounts, clock
from engine.scenario import Scenario
from tests.grant_driver import BUNDLE, grant_runtime
from web import create_app


@pytest.fixture
def demo_site(db_engine):
    """The demo year (``bpmn/grant/demo.json``) run through the runtime, and the web app on its database.

    As ``samflyt demo`` does, the meeting bundle and its users are there first: Vest-Viken's round reaches
    SSU's meeting of 12.02.26, which its chair approves the agenda of."""
    rt = grant_runtime(db_engine)
    meetings = BUNDLE.parent / "meetings"
    rt.deploy([str(meetings)], actor="admin")
    for user in json.loads((meetings / "demo.json").read_text(encoding="utf-8"))["users"]:
        rt.add_user(user["username"], user["roles"], user["organisations"], user["display_name"], user["email"])
    demo = json.loads((BUNDLE / "demo.json").read_text(encoding="utf-8"))
    try:
        Scenario(rt).run(demo["steps"])
    finally:
        clock.set_now(None)
    app = create_app({"TESTING": True, "SECRET_KEY": "demo", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = rt
    return rt, app, demo


def test_every_demo_user_can_open_their_work(demo_site):
    rt, app, demo = demo_site
    opened = {}
    for user in demo["users"]:
        name = user["username"]
        with rt.session() as s:
            accounts.set_password(s, name, f"demo-{name}-passord")
        client = app.test_client()
        assert client.post("/sign-in", data={"username": name, "password": f"demo-{name}-passord"}).status_code == 302
        for view in ("mine", "available", "overdue"):
            page = client.get(f"/tasks?view={view}")
            assert page.status_code == 200, (name, view)
            for task_id in set(re.findall(r'href="/tasks/([0-9a-f-]{36})"', page.get_data(as_text=True))):
                task = client.get(f"/tasks/{task_id}")
                assert task.status_code == 200, (name, task_id)
                opened.setdefault(name, set()).add(task_id)
        if {"au", "ssu", "secretariat", "admin"} & set(user["roles"]):
            for path in ("/grants", "/grants/ledger", "/grants/reports"):
                assert client.get(path).status_code == 200, (name, path)
    for role_user in ("ada", "bjorn", "per", "mia", "tor", "frida", "siri", "emma", "vera", "ola", "tone", "lars",
                      "jon", "marit"):  # fredrik (FSU) gave Vest-Viken's input
        assert opened.get(role_user), f"{role_user} has nothing to do in the demo"


def test_each_community_reads_its_own_rounds_and_reports_in_the_demo(demo_site):
    rt, app, _ = demo_site
    pages = {}
    for name in ("per", "vera"):
        with rt.session() as s:
            accounts.set_password(s, name, f"demo-{name}-passord")
        client = app.test_client()
        client.post("/sign-in", data={"username": name, "password": f"demo-{name}-passord"})
        pages[name] = {path: client.get(path).get_data(as_text=True) for path in ("/grants", "/grants/reports")}
    assert "Rekrutterings- og samhandlingstilskudd 2025" in pages["per"]["/grants"]
    assert "Rekrutterings- og samhandlingstilskudd 2025" not in pages["vera"]["/grants"]
    assert "Rekrutterings- og samhandlingstilskudd 2026" in pages["vera"]["/grants"]
    assert "Felles rehabiliteringsforløp i Horten" in pages["per"]["/grants/reports"]  # Vestfold's status report
    assert "Felles rehabiliteringsforløp i Horten" not in pages["vera"]["/grants/reports"]
