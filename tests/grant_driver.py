"""Drives the grant bundle (``bpmn/grant``) the way its users would, for the grant tests.

Every step goes through the runtime (:class:`engine.scenario.Scenario`): tasks are completed with form
data by the people who may work them, time moves with the clock seam and timers fire through
``fire_due_timers``. Nothing here touches the workflow state directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from community.connectors.ledger import balances
from community.records import GrantApplication
from engine.connectors import ConnectorRegistry
from engine.runtime import Runtime
from engine.scenario import Scenario

BUNDLE = Path(__file__).resolve().parent.parent / "bpmn" / "grant"

CRITERIA = ["Styrker samhandlingen mellom kommunene og sykehuset",
            "Retter seg mot prioriterte pasientgrupper",
            "Har plan for gevinstrealisering og videre drift"]


def grant_runtime(engine) -> Runtime:
    """A runtime with the grant connectors, both caches off, the bundle deployed and the seed communities
    and users."""
    registry = ConnectorRegistry()
    registry.load_entry_points()
    rt = Runtime(engine, connectors=registry, workflow_cache_size=0, spec_cache=False)
    seed = json.loads((BUNDLE / "demo.json").read_text(encoding="utf-8"))
    for community in seed["scopes"]:
        rt.set_scope(community["name"], community["organisations"])
    for user in seed["users"]:
        rt.add_user(user["username"], user["roles"], user["organisations"], user.get("display_name"),
                    user.get("email"))
    rt.deploy([str(BUNDLE)], actor="admin")
    return rt


def application_form(title: str, applicant_organisation: str, partners: list[str], budget: list[tuple[str, int, int]],
                     start: str = "2025-07-01", end: str = "2026-06-30", contact: str = "ada") -> dict[str, Any]:
    return {
        "title": title, "purpose": f"Formålet med «{title}» er bedre samhandling.",
        "effect_goals": "Færre reinnleggelser og kortere ventetid.", "result_goals": "Felles rutine tatt i bruk.",
        "priority_groups": ["frail_elderly"], "responsibility": f"{applicant_organisation} er ansvarlig.",
        "roles": "Prosjektleder i kommunen, fagperson i sykehuset.", "applicant_organisation": applicant_organisation,
        "partner_organisations": partners,
        "budget": [{"party": party, "year": year, "amount": amount} for party, year, amount in budget],
        "start_date": start, "end_date": end, "contact_name": contact.title(),
        "contact_email": f"{contact}@example.no",
    }


class GrantYear(Scenario):
    """Scenario steps named after what the people of the grant process do."""

    def ledger(self, year: int, community: str | None = None) -> dict[str, int]:
        """The year's balances of one community (``""``: entries kept without one; ``None``: all together)."""
        with self.rt.Session() as s:
            return balances(s, year, community)

    def application_row(self, ref: str) -> GrantApplication:
        with self.rt.Session() as s:
            return s.scalar(select(GrantApplication).where(GrantApplication.instance_id == self.instance_id(ref)))

    def data(self, ref: str) -> dict[str, Any]:
        return self.rt.instance(self.instance_id(ref)).data

    def open_round(self, ref: str, au: str, deadlines: list[str], frame: int, community: str, year: int = 2025,
                   cut: int = 20, reviewers: int = 2) -> int:
        self.start("grant_round", au, ref=ref, title=f"Tilskudd {year}")
        self.complete("draft_call", ref, au, {
            "title": f"Rekrutterings- og samhandlingstilskudd {year}", "year": year,
            "description": "Utlysning etter vedtatt handlingsplan.", "criteria": CRITERIA,
            "priority_groups": ["children_young", "frail_elderly"], "frame": frame,
            "sustainability_cut_percent": cut, "deadlines": deadlines, "reviewers_per_application": reviewers,
            "community": community})
        self.complete("approve_call", ref, au, {"call_approved": True, "approval_comment": "Godkjent i AU."})
        return self.data(ref)["call_id"]

    def apply(self, ref: str, applicant: str, call_id: int, form: dict[str, Any]) -> int:
        self.start("grant_application", applicant, {"call_id": call_id}, ref=ref, title=form["title"])
        self.complete("fill_application", ref, applicant, form)
        return self.instance_id(ref)

    def cosign(self, ref: str, signer: str, signed: bool = True, reason: str = "") -> None:
        signature = {"signed": signed} | ({"refusal_reason": reason} if reason else {})
        self.complete("cosign_application", ref, signer, {"signature": signature})

    def submit(self, ref: str, applicant: str):
        return self.complete("submit_application", ref, applicant, {"confirm": True})

    def check(self, ref: str, au: str, complete: bool = True, comments: str = "") -> None:
        self.complete("check_completeness", ref, au, {"complete": complete, "completeness_comments": comments})

    def review(self, ref: str, member: str, score: int, conflict: bool = False) -> None:
        scores = [] if conflict else [{"criterion": c, "score": score, "comment": "Godt begrunnet."} for c in CRITERIA]
        self.complete("review_application", ref, member, {"review": {
            "conflict_of_interest": conflict, "scores": scores, "comment": "Vurdert etter kriteriene."}})
