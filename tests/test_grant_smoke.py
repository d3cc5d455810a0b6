"""One application from draft to award, to shake out the bundle before the whole year."""

from __future__ import annotations

import pytest

from tests.grant_driver import GrantYear, application_form, grant_runtime


@pytest.fixture
def year(db_engine):
    from engine import clock

    rt = grant_runtime(db_engine)
    y = GrantYear(rt)
    y.at("2025-01-10T09:00")
    yield y
    clock.set_now(None)


def test_one_application_to_award(year):
    y = year
    y.connector("ledger.allocate", {"year": 2025, "amount": 10_000_000, "reference": "Tildelingsbrev HSØ 2025"})
    call_id = y.open_round("round", "vera", ["2025-05-01"], 5_000_000, "Helsefellesskap Vest-Viken")
    form = application_form("Felles rehabiliteringsforløp", "Drammen kommune", ["Vestre Viken HF"],
                            [("Drammen kommune", 2025, 300_000), ("Vestre Viken HF", 2025, 200_000)], contact="ingrid")
    y.apply("a1", "ingrid", call_id, form)
    y.cosign("a1", "jon")
    y.submit("a1", "ingrid")
    y.check("a1", "vera")
    y.review("a1", "mia", 4)
    y.review("a1", "ola", 5)
    y.at("2025-05-05T08:00")  # 1 May is a public holiday: fvl. § 30 moves the deadline to Friday 2 May
    y.complete("committee_assessment", "round", "eva", {"assessment_summary": "God søknad.", "assessment_done": True})
    y.complete("fsu_input", "round", "fredrik", {"fsu_input": "Faglig godt forankret."})
    app_id = y.data("a1")["application_id"]
    y.complete("au_recommendation", "round", "vera", {
        "recommendation": [{"application_id": app_id, "proposed_amount": 400_000, "rank": 1}],
        "proposed_conclusion": "SSU innvilger søknaden med 400 000 kr."})
    y.complete("register_ssu_decision", "round", "sverre", {
        "conclusion": "Innvilget som foreslått.",
        "decisions": [{"application_id": app_id, "granted": True, "amount": 400_000}]})
    print(y.rt.instance(y.instance_id("a1")))
    assert y.application_row("a1").status == "granted"
    assert y.ledger(2025)["reserved"] == 400_000
