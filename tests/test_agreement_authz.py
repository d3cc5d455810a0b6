"""Who may answer a party's hearing, anchor the text and sign for it, through the web: the authorisation matrix
of the agreement revision. Only the party's own people (and an administrator, audited as such) may; another
party's member, the working group, AU and the secretariat are refused and nothing changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import accounts, clock
from engine.scenario import Scenario
from tests.grant_driver import grant_runtime
from web import create_app

BPMN = Path(__file__).resolve().parent.parent / "bpmn"
VF = "Helsefellesskapet i Vestfold"
PARTY_MEMBERS = ("ragnhild", "harald", "helga", "terje", "frode", "solveig", "linn")
USERS = ("linn", "terje", "renate", "per", "siri", "admin")
#: action: (element, the form data that completes it, the stage the revision of delavtale d is brought to)
ACTIONS = {
    "answer Larvik's hearing": ("answer_hearing", {"answer_kind": "no_input"}, "hearing"),
    "anchor for Larvik": ("anchor_version", {"anchored": "true", "anchored.present": "1"}, "anchoring"),
    "sign for Larvik": ("sign_agreement", {"signed": "true", "signed.present": "1"}, "signatures"),
}
ALLOWED = {"linn": set(ACTIONS), "admin": set(ACTIONS)}


def _revision_of_d(y: Scenario, stage: str) -> None:
    """A revision of delavtale d brought to ``stage`` by its people; Larvik's task of that stage is open."""
    y.at("2025-10-06T09:00")
    y.start("agreement_revision", "per", {"agreement_id": "5"}, ref="d")
    y.complete("describe_need", "d", "per", {"agreement_id": "5", "source": "case", "mandate_committee": "AU",
                                             "reason": "SSU sak 2025.37.", "mandate": "AU nedsetter arbeidsgruppe."})
    y.connector("meetings.conclude", {"number": y.rt.instance(y.instance_id("d")).data["case_id"], "community": VF,
                                      "committee": "AU", "conclusion": "Vedtatt."}, "admin")
    y.complete("set_up_group", "d", "per", {"leader": "renate", "members": [], "group_deadline": "2025-11-01"})
    y.complete("draft_text", "d", "renate", {"text": "# Delavtale d", "next_step": "hearing",
                                             "hearing_working_days": 5})
    if stage == "hearing":
        return
    for user in PARTY_MEMBERS:
        y.complete("answer_hearing", "d", user, {"answer_kind": "no_input"})
    y.complete("answer_comments", "d", "renate", {"hearing_comments": [], "text": "# Delavtale d"})
    if stage == "anchoring":
        return
    for user in PARTY_MEMBERS:
        y.complete("anchor_version", "d", user, {"anchored": True})
    y.complete("prepare_approval", "d", "per", {"effective_from": "2026-01-01", "evaluation_dates": [],
                                                "proposed_conclusion": "Delavtale d godkjennes."})
    y.connector("meetings.conclude", {"number": y.rt.instance(y.instance_id("d")).data["case_id"], "community": VF,
                                      "committee": "SSU", "conclusion": "Godkjent."}, "admin")


@pytest.mark.parametrize("db_engine", ["sqlite"], indirect=True)  # authorisation does not depend on the database
@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_only_the_party_answers_anchors_and_signs_for_itself(db_engine, user, action):
    element, form, stage = ACTIONS[action]
    rt = grant_runtime(db_engine)
    for bundle in ("meetings", "agreements"):
        rt.deploy([str(BPMN / bundle)], actor="admin")
        for person in json.loads((BPMN / bundle / "demo.json").read_text(encoding="utf-8"))["users"]:
            rt.add_user(person["username"], person["roles"], person["organisations"], person["display_name"],
                        person["email"])
    y = Scenario(rt)
    try:
        y.at("2025-09-26T09:00")
        for step in json.loads((BPMN / "agreements" / "demo.json").read_text(encoding="utf-8"))["steps"]:
            if "connector" in step and step["connector"] == "agreements.import_agreement":
                y.run_step(step)  # the register only
        _revision_of_d(y, stage)
        with rt.session() as s:
            accounts.set_password(s, user, f"passord-{user}")
        task = y.task("d", element, "linn")  # Larvik's task
        app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                          "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
        app.extensions["samflyt_runtime"] = rt
        client = app.test_client()
        assert client.post("/sign-in", data={"username": user, "password": f"passord-{user}"}).status_code == 302
        before = rt.audit(y.instance_id("d"))
        response = client.post(f"/tasks/{task}", data={"_action": "complete", **form})
        effects = [e for e in rt.audit(y.instance_id("d"))[len(before):] if e["action"] == "complete"]
        open_tasks = {t.id for t in rt.tasks(y.instance_id("d"))}
    finally:
        clock.set_now(None)
    if action in ALLOWED.get(user, set()):
        assert [e["actor"] for e in effects] == [user] and task not in open_tasks
        assert effects[0]["details"].get("as_admin") is (user == "admin")
    else:
        assert response.status_code in (302, 403, 409, 422)
        assert effects == [] and task in open_tasks
