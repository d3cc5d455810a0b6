"""The grant's money and its rules: the Vestfold ledger, a three-year project with carry-over, bad input."""

from __future__ import annotations

import pytest

from community.conflicts import stand_aside
from community.connectors.grants import GrantError
from community.connectors.ledger import LedgerError
from engine.errors import NotAuthorisedError, ValidationError
from engine.scenario import ScenarioError
from tests.grant_driver import GrantYear, application_form

HF = "Vestre Viken HF"
VV = "Helsefellesskap Vest-Viken"


def test_the_vestfold_ledger_from_the_ssu_papers(year):
    """SSU 2025: 7 000 030 kr (2024) + 6 960 000 kr (2025) = 13 960 030 kr, 1 860 030 kr not yet allocated;
    the 2025 partnership meeting cost 50 000 kr of its 100 000 kr set-aside and the rest carries over."""
    y = year
    y.connector("ledger.allocate", {"year": 2024, "amount": 7_000_030, "reference": "HSØ 2024"}, "admin")
    y.connector("ledger.allocate", {"year": 2025, "amount": 6_960_000, "reference": "HSØ 2025"}, "admin")
    for year_, amount, purpose in ((2024, 4_200_000, "Eldrehelsekoordinatorer 12 x 50 %"),
                                   (2025, 4_200_000, "Eldrehelsekoordinatorer 12 x 50 %"),
                                   (2024, 1_500_000, "Prosjektstilling behandlingsavklaringer"),
                                   (2025, 1_500_000, "Prosjektstilling behandlingsavklaringer"),
                                   (2025, 700_000, "Digital møteserie for fastleger")):
        y.connector("ledger.reserve", {"year": year_, "amount": amount, "purpose": purpose}, "admin")
    assert y.ledger(2024)["allocated"] + y.ledger(2025)["allocated"] == 13_960_030
    y.connector("ledger.carry_over", {"year": 2024}, "admin")
    assert y.ledger(2025)["free"] == 1_860_030  # "gjenstående ikke fordelte midler"
    y.connector("ledger.set_aside", {"year": 2025, "amount": 100_000, "purpose": "Partnerskapskonferansen"}, "admin")
    y.connector("ledger.spend_set_aside", {"year": 2025, "amount": 50_000, "purpose": "Partnerskapsmøtet 5.6."},
                "admin")
    assert y.ledger(2025)["free"] == 1_760_030
    with pytest.raises(LedgerError, match="not enough free grant money in 2025"):
        y.connector("ledger.reserve", {"year": 2025, "amount": 1_760_031, "purpose": "For mye"}, "admin")
    y.connector("ledger.carry_over", {"year": 2025}, "admin")
    assert y.ledger(2025)["set_aside"] == 50_000
    assert y.ledger(2026)["carried_in"] == 1_810_030  # the unused 50 000 kr came back and carried over
    with pytest.raises(LedgerError, match="already closed"):
        y.connector("ledger.carry_over", {"year": 2025}, "admin")
    with pytest.raises(NotAuthorisedError):
        y.connector("ledger.allocate", {"year": 2026, "amount": 1, "reference": "x"}, "per")


def _decide_single(y: GrantYear, applicant: str, org: str, form: dict, reviewers=("lars", "tone"),
                   deadline="2025-02-14", frame=1_000_000, amount=300_000) -> int:
    call_id = y.open_round("round", "vera", [deadline], frame, "Helsefellesskap Vest-Viken", cut=0)
    y.apply("app", applicant, call_id, form)
    y.cosign("app", "jon")
    y.submit("app", applicant)
    y.check("app", "vera")
    for member in reviewers:
        y.review("app", member, 4)
    y.at("2025-02-17T08:00")
    y.complete("committee_assessment", "round", "eva", {"assessment_summary": "Vurdert.", "assessment_done": True})
    y.complete("fsu_input", "round", "fredrik", {"fsu_input": "Støttes."})
    app_id = y.data("app")["application_id"]
    y.complete("au_recommendation", "round", "vera", {
        "recommendation": [{"application_id": app_id, "proposed_amount": amount, "rank": 1}],
        "proposed_conclusion": "Innvilges."})
    y.complete("register_ssu_decision", "round", "sverre", {
        "conclusion": "Innvilget.", "decisions": [{"application_id": app_id, "granted": True, "amount": amount}]})
    return app_id


def _status(y: GrantYear, spent: int) -> None:
    y.complete("status_report", "app", "leif", {
        "implementation": "I rute.", "goal_attainment": "Nådd.", "benefit_realisation": "Dokumentert.",
        "spent": [{"party": "Kongsberg kommune", "amount": spent}]})
    y.complete("approve_status_report", "app", "vera", {"report_approved": True})


def test_a_three_year_project_carries_unspent_money_over(year):
    y = year
    for year_ in (2025, 2026, 2027):
        y.connector("ledger.allocate", {"year": year_, "amount": 1_000_000, "reference": f"HSØ {year_}",
                                        "community": VV}, "admin")
    form = application_form("Treårig kompetanseprogram", "Kongsberg kommune", [HF],
                            [("Kongsberg kommune", 2025, 300_000), ("Kongsberg kommune", 2026, 300_000),
                             ("Kongsberg kommune", 2027, 250_000)], "2025-03-01", "2027-12-31", "leif")
    app_id = _decide_single(y, "leif", "Kongsberg kommune", form)
    assert y.data("app")["report_years"] == [2025, 2026, 2027]
    assert y.ledger(2025)["reserved"] == 300_000

    y.at("2025-11-20T10:00")
    _status(y, 200_000)  # 100 000 kr not spent in 2025
    y.complete("decide_continuation", "app", "vera", {"continue_project": True, "continuation_amount": 300_000})
    assert (y.ledger(2025)["paid"], y.ledger(2025)["released"], y.ledger(2025)["reserved"]) == (200_000, 100_000, 0)
    assert y.ledger(2026)["reserved"] == 300_000
    y.at("2026-01-02T08:00")
    y.connector("ledger.carry_over", {"year": 2025, "community": VV}, "admin")
    assert y.ledger(2026)["carried_in"] == 1_000_000 - 300_000 + 100_000  # the unspent 100 000 kr included

    y.at("2026-11-20T10:00")
    _status(y, 300_000)
    y.complete("decide_continuation", "app", "vera", {"continue_project": True, "continuation_amount": 250_000})
    y.at("2027-01-04T08:00")
    y.connector("ledger.carry_over", {"year": 2026, "community": VV}, "admin")
    assert y.ledger(2027)["carried_in"] == 1_000_000 + 800_000 - 300_000

    y.at("2027-11-20T10:00")
    _status(y, 200_000)  # the last year: nothing released until the final report
    assert y.ledger(2027)["reserved"] == 50_000
    assert y.data("app")["final_report_deadline"] == "2028-02-29"  # 60 days after the end; 2028 is a leap year
    y.at("2028-02-10T10:00")
    y.complete("final_report", "app", "leif", {
        "results": "Programmet er en fast ordning.", "goal_attainment": "Nådd.", "benefit_realisation": "Målt.",
        "spent": [{"party": "Kongsberg kommune", "amount": 30_000}]})
    y.complete("approve_final_report", "app", "vera", {"report_approved": True})
    assert (y.ledger(2027)["paid"], y.ledger(2027)["released"], y.ledger(2027)["reserved"]) == (230_000, 20_000, 0)
    assert y.application_row("app").status == "completed"
    assert y.rt.instance(y.instance_id("app")).status == "completed"
    assert app_id == y.application_row("app").id


def _unchanged(y: GrantYear, ref: str):
    view = y.rt.instance(y.instance_id(ref))
    return view.status, [(t.id, t.name, t.claimed_by) for t in view.tasks], view.data


def test_bad_input_gets_a_clear_error_and_changes_nothing(year):
    y, rt = year, year.rt
    call_id = y.open_round("round", "vera", ["2025-02-14"], 1_000_000, "Helsefellesskap Vest-Viken")
    good = application_form("Felles forløp", "Drammen kommune", [HF], [("Drammen kommune", 2025, 100_000)],
                            contact="ingrid")
    y.start("grant_application", "ingrid", {"call_id": call_id}, ref="app")
    task = y.task("app", "fill_application", "ingrid")
    before = _unchanged(y, "app")

    negative = {**good, "budget": [{"party": "Drammen kommune", "year": 2025, "amount": -5_000}]}
    with pytest.raises(ValidationError) as refused:
        rt.complete(task, "ingrid", negative)
    assert "budget" in refused.value.messages and _unchanged(y, "app") == before
    missing = {k: v for k, v in good.items() if k != "purpose"}
    with pytest.raises(ValidationError) as refused:
        rt.complete(task, "ingrid", missing)
    assert list(refused.value.messages) == ["purpose"] and _unchanged(y, "app") == before
    with pytest.raises(NotAuthorisedError, match="assigned to named users"):  # someone else's draft
        rt.complete(task, "hege", good)
    assert _unchanged(y, "app") == before

    y.complete("fill_application", "app", "ingrid", good)
    cosign = y.task("app", "cosign_application")
    before = _unchanged(y, "app")
    with pytest.raises(NotAuthorisedError, match="only members of Vestre Viken HF"):
        rt.complete(cosign, "hege", {"signature": {"signed": True}})  # an applicant from Bærum
    with pytest.raises(NotAuthorisedError, match="only members of Vestre Viken HF"):
        rt.claim(cosign, "hege")
    assert _unchanged(y, "app") == before
    y.cosign("app", "jon")
    y.submit("app", "ingrid")
    y.check("app", "vera")
    review = y.task("app", "review_application")
    rt.claim(review, "eva")  # the hospital co-signs, which is no personal conflict for its member ...
    stand_aside(rt, y.data("app")["application_id"], "eva", "Jeg har vært med på å skrive søknaden.")
    assert next(t for t in rt.tasks(y.instance_id("app")) if t.id == review).claimed_by is None  # ... until she
    # declares one: the task is released, and she cannot take it again
    before = _unchanged(y, "app")
    with pytest.raises(NotAuthorisedError, match="conflict of interest: you are a member of Drammen kommune"):
        rt.claim(review, "lars")
    with pytest.raises(NotAuthorisedError, match="conflict of interest: you have stood aside in this case"):
        rt.claim(review, "eva")
    with pytest.raises(ScenarioError, match="no open 'review_application' task for eva"):
        y.review("app", "eva", 5)
    with pytest.raises(GrantError, match="say why"):
        stand_aside(rt, y.data("app")["application_id"], "ola", " \n ")
    with pytest.raises(GrantError, match="only a member of the evaluation committee"):
        stand_aside(rt, y.data("app")["application_id"], "ingrid", "Søker selv.")
    assert _unchanged(y, "app") == before
    with pytest.raises(ValidationError) as refused:
        y.complete("review_application", "app", "ola", {"review": {"conflict_of_interest": False,
                                                                    "scores": [{"criterion": "x", "score": 9}]}})
    assert "review" in refused.value.messages and _unchanged(y, "app") == before


def test_the_conference_set_aside_is_made_once_a_year_from_what_is_free(year):
    """The yearly process's step: once per year and community, never more than is free, nothing when the
    year has no money yet (a later call, after the allocation, makes it)."""
    y = year
    assert y.connector("ledger.conference_set_aside", {"year": 2027}, "admin")["conference"] == 0
    assert y.ledger(2027)["set_aside"] == 0
    y.connector("ledger.allocate", {"year": 2027, "amount": 60_000, "reference": "HSØ 2027"}, "admin")
    assert y.connector("ledger.conference_set_aside", {"year": 2027}, "admin")["conference"] == 60_000
    y.connector("ledger.allocate", {"year": 2027, "amount": 1_000_000, "reference": "HSØ 2027 II"}, "admin")
    again = y.connector("ledger.conference_set_aside", {"year": 2027}, "admin")
    assert again["conference"] == 0 and again["already"] is True
    assert y.ledger(2027)["set_aside"] == 60_000 and y.ledger(2027)["free"] == 1_000_000
