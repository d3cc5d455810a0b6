"""No SSU decision is lost, and two health communities never share money.

A decision can only reach an application that waits for it: the round refuses AU's recommendation while
an application of the intake still waits for AU's completeness check or for its reviews, and an
application returned as incomplete cannot re-enter an intake whose recommendation has gone to SSU.
The ledger, carry-over and the export for Helse Sør-Øst are kept per community.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from community.connectors.ledger import LedgerError
from community.records import GrantApplication, LedgerEntry
from engine import db
from engine.formats import format_kroner
from engine.models import OutboxMessage
from tests.grant_driver import GrantYear, application_form
from tests.test_web import client_for, site  # noqa: F401 - the web app on the grant bundle (fixture)

VV = "Helsefellesskap Vest-Viken"
VF = "Helsefellesskapet i Vestfold"
HF = "Vestre Viken HF"
SIV = "Sykehuset i Vestfold HF"


def _signed(y: GrantYear, ref: str, applicant: str, org: str, title: str, amount: int, call_id: int,
            cosigner: str = "jon", partner: str = HF) -> None:
    y.apply(ref, applicant, call_id, application_form(title, org, [partner], [(org, 2025, amount)], contact=applicant))
    y.cosign(ref, cosigner)
    y.submit(ref, applicant)


def _prepare_case(y: GrantYear) -> None:
    y.complete("committee_assessment", "round", "eva", {"assessment_summary": "Vurdert.", "assessment_done": True})
    y.complete("fsu_input", "round", "fredrik", {"fsu_input": "FSU støtter tiltakene for eldre."})


def _recommend(y: GrantYear, proposal: dict[str, int]):
    return y.complete("au_recommendation", "round", "vera", {
        "recommendation": [{"application_id": y.data(ref)["application_id"], "proposed_amount": amount, "rank": i + 1}
                           for i, (ref, amount) in enumerate(proposal.items())],
        "proposed_conclusion": "SSU innvilger i tråd med innstillingen."})


def test_the_recommendation_waits_until_every_application_of_the_intake_is_reviewed(year):
    y, rt = year, year.rt
    y.connector("ledger.allocate", {"year": 2025, "amount": 2_000_000, "reference": "HSØ 2025", "community": VV},
                "admin")
    call_id = y.open_round("round", "vera", ["2025-02-14"], 1_000_000, VV, cut=0)
    _signed(y, "done", "ingrid", "Drammen kommune", "Ferdig vurdert", 300_000, call_id)
    y.check("done", "vera")
    y.review("done", "ola", 4)
    y.review("done", "tone", 4)
    _signed(y, "half", "kari", "Ringerike kommune", "Halvveis vurdert", 200_000, call_id)
    y.check("half", "vera")
    y.review("half", "ola", 3)  # the second review is still open
    _signed(y, "unchecked", "leif", "Kongsberg kommune", "Ikke kontrollert", 100_000, call_id)

    y.at("2025-02-17T08:00")
    _prepare_case(y)
    # AU lists every registered application, but one is half reviewed and one not yet checked: refused
    view = _recommend(y, {"done": 300_000, "half": 200_000})
    error = view.data["recommendation_error"]
    half, unchecked = y.data("half")["application_id"], y.data("unchecked")["application_id"]
    assert "kan ikke sendes før alle søknader til fristen er ferdig vurdert" in error
    assert f"søknad {half} «Halvveis vurdert» (vurderingene er ikke ferdige)" in error
    assert f"søknad {unchecked} «Ikke kontrollert» (venter på kontroll i AU)" in error
    assert [t.name for t in rt.tasks(y.instance_id("round"))] == ["au_recommendation"]
    assert "case_id" not in view.data
    assert {r["application_id"]: r["proposed_amount"] for r in view.data["recommendation"]} == {
        y.data("done")["application_id"]: 300_000, half: 200_000}  # AU's proposals are kept for the next try

    # the reviews finish and AU checks the last one: now the recommendation of all three goes to SSU
    y.review("half", "tone", 3)
    y.check("unchecked", "vera")
    y.review("unchecked", "lars", 5)
    y.review("unchecked", "tone", 5)
    view = _recommend(y, {"unchecked": 100_000, "done": 300_000, "half": 0})
    assert view.data["recommendation_error"] == "" and view.data["case_id"]

    y.complete("register_ssu_decision", "round", "sverre", {"conclusion": "Innvilget.", "decisions": [
        {"application_id": y.data("done")["application_id"], "granted": True, "amount": 300_000},
        {"application_id": half, "granted": False, "amount": 0, "reason": "Nådde ikke opp."},
        {"application_id": unchecked, "granted": True, "amount": 100_000}]})
    assert rt.instance(y.instance_id("round")).status == "completed"
    assert {ref: y.application_row(ref).status for ref in ("done", "half", "unchecked")} == {
        "done": "granted", "half": "rejected", "unchecked": "granted"}
    assert rt.messages(status="undeliverable") == []


def test_an_application_returned_as_incomplete_cannot_enter_a_decided_intake(year):
    y, rt = year, year.rt
    y.connector("ledger.allocate", {"year": 2025, "amount": 2_000_000, "reference": "HSØ 2025", "community": VV},
                "admin")
    call_id = y.open_round("round", "vera", ["2025-02-14"], 1_000_000, VV, cut=0)
    _signed(y, "good", "ingrid", "Drammen kommune", "Komplett søknad", 300_000, call_id)
    y.check("good", "vera")
    y.review("good", "ola", 4)
    y.review("good", "tone", 4)
    _signed(y, "returned", "kari", "Ringerike kommune", "Mangelfull søknad", 200_000, call_id)
    y.check("returned", "vera", complete=False, comments="Budsjettet mangler sykehusets andel.")
    assert y.application_row("returned").status == "returned"  # back with the applicant: holds nothing up

    y.at("2025-02-17T08:00")
    _prepare_case(y)
    with rt.session() as s:  # as an older version of the process left it: returned, but still "submitted"
        s.get(GrantApplication, y.data("returned")["application_id"]).status = "submitted"
    assert y.application_row("returned").status == "submitted"
    _recommend(y, {"good": 300_000})
    assert y.data("round")["recommendation_error"] == ""  # it is with the applicant: it holds nothing up
    y.complete("register_ssu_decision", "round", "sverre", {"conclusion": "Innvilget.", "decisions": [
        {"application_id": y.data("good")["application_id"], "granted": True, "amount": 300_000}]})
    assert rt.instance(y.instance_id("round")).status == "completed"

    # the applicant completes the returned application after the decision: refused with the reason, never
    # registered to wait for a decision that will not come
    y.at("2025-03-03T10:00")
    y.complete("fill_application", "returned", "kari", application_form(
        "Mangelfull søknad", "Ringerike kommune", [HF], [("Ringerike kommune", 2025, 100_000), (HF, 2025, 100_000)],
        contact="kari"))
    y.cosign("returned", "jon")
    view = y.submit("returned", "kari")
    assert view.status == "completed", view.error
    assert "ferdig vurdert, og innstillingen er sendt til SSU" in view.data["submission_refused"]
    assert "14.02.2025" in view.data["submission_refused"]
    assert y.application_row("returned").status == "refused_late"
    with rt.Session() as s:
        [mail] = s.scalars(select(OutboxMessage).where(OutboxMessage.instance_id == y.instance_id("returned"),
                                                       OutboxMessage.subject.like("Søknaden kom for sent:%"))).all()
        assert mail.to_address == "kari@example.no" and "innstillingen er sendt til SSU" in mail.body
    assert rt.messages(status="undeliverable") == []


def test_a_returned_application_completed_after_its_intake_was_decided_joins_the_next_open_intake(year):
    y = year
    y.connector("ledger.allocate", {"year": 2025, "amount": 2_000_000, "reference": "HSØ 2025", "community": VV},
                "admin")
    call_id = y.open_round("round", "vera", ["2025-02-14", "2025-05-01"], 1_000_000, VV, cut=0)
    _signed(y, "good", "ingrid", "Drammen kommune", "Komplett søknad", 300_000, call_id)
    y.check("good", "vera")
    y.review("good", "ola", 4)
    y.review("good", "tone", 4)
    _signed(y, "returned", "kari", "Ringerike kommune", "Mangelfull søknad", 200_000, call_id)
    y.check("returned", "vera", complete=False, comments="Mangler effektmål.")
    assert y.application_row("returned").deadline.isoformat() == "2025-02-14"
    y.at("2025-02-17T08:00")
    _prepare_case(y)
    _recommend(y, {"good": 300_000})
    y.at("2025-03-03T10:00")
    y.complete("fill_application", "returned", "kari", application_form(
        "Mangelfull søknad", "Ringerike kommune", [HF], [("Ringerike kommune", 2025, 200_000)], contact="kari"))
    y.cosign("returned", "jon")
    view = y.submit("returned", "kari")
    assert view.data["submission"]["accepted"] and view.data["submission"]["deadline"] == "2025-05-01"
    assert [t.name for t in y.rt.tasks(y.instance_id("returned"))] == ["check_completeness"]
    row = y.application_row("returned")
    assert (row.status, row.deadline.isoformat()) == ("submitted", "2025-05-01")


def test_a_decision_for_an_application_withdrawn_after_the_recommendation_goes_back_with_the_reason(year):
    y, rt = year, year.rt
    y.connector("ledger.allocate", {"year": 2025, "amount": 2_000_000, "reference": "HSØ 2025", "community": VV},
                "admin")
    y.open_round("round", "vera", ["2025-02-14"], 1_000_000, VV, cut=0)
    call_id = y.data("round")["call_id"]
    for ref, applicant, org in (("kept", "ingrid", "Drammen kommune"), ("gone", "kari", "Ringerike kommune")):
        _signed(y, ref, applicant, org, f"Prosjekt {ref}", 200_000, call_id)
        y.check(ref, "vera")
        y.review(ref, "ola", 4)
        y.review(ref, "tone", 4)
    y.at("2025-02-17T08:00")
    _prepare_case(y)
    _recommend(y, {"kept": 200_000, "gone": 200_000})
    y.message("withdraw_application", {"application_id": y.data("gone")["application_id"]}, {"reason": "Utsatt."})
    kept, gone = y.data("kept")["application_id"], y.data("gone")["application_id"]
    view = y.complete("register_ssu_decision", "round", "sverre", {"conclusion": "Innvilget.", "decisions": [
        {"application_id": kept, "granted": True, "amount": 200_000},
        {"application_id": gone, "granted": True, "amount": 200_000}]})
    assert view.data["decision_error"] == f"Søknad {gone} er trukket og skal ikke ha vedtak."
    assert y.application_row("kept").status == "registered"
    y.complete("register_ssu_decision", "round", "sverre", {"conclusion": "Innvilget.", "decisions": [
        {"application_id": kept, "granted": True, "amount": 200_000}]})
    assert rt.instance(y.instance_id("round")).status == "completed"
    assert (y.application_row("kept").status, y.application_row("gone").status) == ("granted", "withdrawn")
    assert y.ledger(2025, VV)["reserved"] == 200_000
    assert rt.messages(status="undeliverable") == []


def _granted_project(y: GrantYear, suffix: str, community: str, au: str, applicant: str, org: str, cosigner: str,
                     partner: str, reviewers: tuple[str, str], committee: str, fsu: str, secretariat: str,
                     amount: int, deadline: str, after: str) -> None:
    """One call in ``community`` with one application, granted ``amount`` by SSU after ``deadline``."""
    rnd, app = f"round-{suffix}", f"app-{suffix}"
    call_id = y.open_round(rnd, au, [deadline], 1_000_000, community, cut=0)
    y.apply(app, applicant, call_id, application_form(f"Prosjekt {suffix}", org, [partner],
                                                      [(org, 2025, amount)], "2025-03-01", "2025-12-31", applicant))
    y.cosign(app, cosigner)
    y.submit(app, applicant)
    y.check(app, au)
    for member in reviewers:
        y.review(app, member, 4)
    y.at(after)
    y.complete("committee_assessment", rnd, committee, {"assessment_summary": "Vurdert.", "assessment_done": True})
    y.complete("fsu_input", rnd, fsu, {"fsu_input": "Støttes."})
    app_id = y.data(app)["application_id"]
    y.complete("au_recommendation", rnd, au, {
        "recommendation": [{"application_id": app_id, "proposed_amount": amount, "rank": 1}],
        "proposed_conclusion": "Innvilges."})
    y.complete("register_ssu_decision", rnd, secretariat, {
        "conclusion": "Innvilget.", "decisions": [{"application_id": app_id, "granted": True, "amount": amount}]})


def test_two_communities_never_mix_their_money(year):
    y, rt = year, year.rt
    y.connector("ledger.allocate", {"year": 2025, "amount": 1_000_000, "reference": "HSØ VV", "community": VV}, "admin")
    y.connector("ledger.allocate", {"year": 2025, "amount": 400_000, "reference": "HSØ VF", "community": VF}, "admin")
    y.connector("ledger.set_aside", {"year": 2025, "amount": 100_000, "purpose": "Partnerskapskonferansen",
                                     "community": VF}, "admin")
    _granted_project(y, "vv", VV, "vera", "ingrid", "Drammen kommune", "jon", HF, ("ola", "tone"), "eva", "fredrik",
                     "sverre", 700_000, "2025-02-14", "2025-02-17T08:00")
    _granted_project(y, "vf", VF, "per", "ada", "Horten kommune", "bjorn", SIV, ("mia", "tor"), "knut", "frida",
                     "siri", 200_000, "2025-03-14", "2025-03-17T08:00")
    vv, vf = y.ledger(2025, VV), y.ledger(2025, VF)
    assert (vv["allocated"], vv["reserved"], vv["free"]) == (1_000_000, 700_000, 300_000)
    assert (vf["allocated"], vf["set_aside"], vf["reserved"], vf["free"]) == (400_000, 100_000, 200_000, 100_000)
    with rt.Session() as s:  # every application movement carries its call's community
        assert {(e.community, e.amount) for e in s.scalars(select(LedgerEntry).where(
            LedgerEntry.kind == "reservation"))} == {(VV, 700_000), (VF, 200_000)}

    # Vestfold cannot spend Vest-Viken's free money, though both together would have enough
    with pytest.raises(LedgerError, match=r"not enough free grant money in 2025 \(Helsefellesskapet i Vestfold\)"):
        y.connector("ledger.reserve", {"year": 2025, "amount": 150_000, "purpose": "Fastlegeseminar",
                                       "community": VF}, "admin")
    with pytest.raises(LedgerError, match="belongs to Helsefellesskap Vest-Viken"):
        y.connector("ledger.reserve", {"year": 2025, "amount": 1, "application_id": y.data("app-vv")["application_id"],
                                       "community": VF}, "admin")
    assert y.connector("ledger.balances", {"year": 2025, "community": VF}, "admin")["free"] == 100_000

    # status reports and the export for Helse Sør-Øst are per community
    y.at("2025-11-20T10:00")
    for suffix, applicant, au, org, spent in (("vv", "ingrid", "vera", "Drammen kommune", 500_000),
                                              ("vf", "ada", "per", "Horten kommune", 150_000)):
        y.complete("status_report", f"app-{suffix}", applicant, {
            "implementation": "I rute.", "goal_attainment": "Nådd.", "benefit_realisation": "Målt.",
            "spent": [{"party": org, "amount": spent}]})
        y.complete("approve_status_report", f"app-{suffix}", au, {"report_approved": True})
    assert y.ledger(2025, VV)["paid"] == 500_000 and y.ledger(2025, VF)["paid"] == 150_000
    y.start("grant_reporting", "vera", {"year": 2025, "community": VV}, ref="report-vv")
    y.start("grant_reporting", "per", {"year": 2025, "community": VF}, ref="report-vf")
    y.at("2025-12-02T08:00")
    assert [r["title"] for r in y.data("report-vv")["export"]["rows"]] == ["Prosjekt vv"]
    assert [r["title"] for r in y.data("report-vf")["export"]["rows"]] == ["Prosjekt vf"]
    assert y.data("report-vf")["export"]["spent_total"] == 150_000

    # at New Year each community's free money carries over to its own next year
    for ref, au in (("report-vv", "vera"), ("report-vf", "per")):
        y.complete("compile_annual_report", ref, au,
                   {"annual_summary": "Ett prosjekt.", "annual_report_approved": True})
    y.at("2026-01-02T08:00")
    # (what is reserved and not yet paid stays reserved until the final report; the unused set-aside returns)
    assert y.ledger(2026, VV)["carried_in"] == 1_000_000 - 700_000
    assert y.ledger(2026, VF)["carried_in"] == 400_000 - 200_000
    assert y.ledger(2026, "")["carried_in"] == 0


def test_the_ledger_page_shows_one_community(site):  # noqa: F811 - the fixture imported above
    app, y = site
    y.connector("ledger.allocate", {"year": 2025, "amount": 1_000_000, "reference": "HSØ VV", "community": VV}, "admin")
    y.connector("ledger.allocate", {"year": 2025, "amount": 250_000, "reference": "HSØ VF", "community": VF}, "admin")
    per = client_for(app, "per")
    vestfold = per.get("/grants/ledger", query_string={"year": 2025, "community": VF}).get_data(as_text=True)
    assert "250\u00a0000\u00a0kr" in vestfold and "HSØ VF" in vestfold
    assert "1\u00a0000\u00a0000\u00a0kr" not in vestfold and "HSØ VV" not in vestfold
    # without ?community= each reader sees their own community, and can choose the other; no sum of both
    own = per.get("/grants/ledger", query_string={"year": 2025}).get_data(as_text=True)
    assert "HSØ VF" in own and "HSØ VV" not in own and "1\u00a0250\u00a0000\u00a0kr" not in own
    assert f'href="/grants/ledger?community={VV.replace(" ", "+")}"' in own
    assert "HSØ VV" in client_for(app, "siri").get("/grants/ledger?community=" + VV).get_data(as_text=True)


def test_migration_0009_gives_old_ledger_entries_their_community(tmp_path):
    """Entries made before communities were recorded: an application's take its call's community, and the
    others that of the only community the database has calls for."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate(engine, "community_0001")  # the grant records as they were before engine revision 0009
    now = "2025-01-06 09:00:00"
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO grant_calls (id, community, title, year, criteria, priority_groups, frame, "
            "sustainability_cut_percent, reviewers_per_application, deadlines, closed_deadlines, status, "
            "published_at) VALUES (1, :c, 'Tilskudd', 2025, '[]', '[]', 1000, 0, 1, '[]', '[]', 'closed', :now)"),
            {"c": VF, "now": now})
        conn.execute(text(
            "INSERT INTO grant_applications (id, call_id, title, applicant_organisation, partner_organisations, "
            "plan, amount_applied, status, published) VALUES (7, 1, 'P', 'Horten kommune', '[]', '{}', 100, "
            "'granted', 0)"))
        conn.execute(text("INSERT INTO ledger_entries (year, kind, amount, application_id, at) VALUES "
                          "(2025, 'allocation', 1000, NULL, :now), (2025, 'reservation', 100, 7, :now)"), {"now": now})
    db.migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind, community FROM ledger_entries ORDER BY id")).all() == [
            ("allocation", VF), ("reservation", VF)]
        assert conn.execute(text("SELECT recommended_deadlines FROM grant_calls")).scalar() == "[]"
    engine.dispose()


def test_au_sees_why_the_recommendation_was_sent_back(site):  # noqa: F811 - the fixture imported above
    app, y = site
    y.complete("fill_application", "app", "ada", application_form(
        "Trygg hjemkomst", "Horten kommune", [SIV], [("Horten kommune", 2025, 200_000)], contact="ada"))
    y.cosign("app", "bjorn")
    y.submit("app", "ada")
    y.check("app", "per")
    y.review("app", "mia", 4)  # one of two reviews: the other is still open
    y.at("2025-05-05T08:00")
    y.complete("committee_assessment", "round", "mia", {"assessment_summary": "Vurdert.", "assessment_done": True})
    y.complete("fsu_input", "round", "frida", {"fsu_input": "Støttes."})
    app_id = y.data("app")["application_id"]
    y.complete("au_recommendation", "round", "per", {
        "recommendation": [{"application_id": app_id, "proposed_amount": 100_000, "rank": 1}],
        "proposed_conclusion": "Innvilges."})
    page = client_for(app, "per").get(f"/tasks/{y.task('round', 'au_recommendation')}").get_data(as_text=True)
    assert "Merknad fra kontrollen" in page
    assert f"søknad {app_id} «Trygg hjemkomst» (vurderingene er ikke ferdige)" in page


def _to_recommendation(y) -> None:
    """Ada's application reviewed by two members (4 and 5), the intake closed and assessed: AU recommends."""
    y.complete("fill_application", "app", "ada", application_form(
        "Trygg hjemkomst", "Horten kommune", [SIV], [("Horten kommune", 2025, 200_000)], contact="ada"))
    y.cosign("app", "bjorn")
    y.submit("app", "ada")
    y.check("app", "per")
    y.review("app", "mia", 4)
    y.review("app", "tor", 5)
    y.at("2025-05-05T08:00")
    y.complete("committee_assessment", "round", "mia", {"assessment_summary": "Vurdert.", "assessment_done": True})
    y.complete("fsu_input", "round", "frida", {"fsu_input": "Støttes."})


def test_the_recommendation_form_shows_each_application_and_the_money_left(site):  # noqa: F811 - the fixture above
    """AU decides on what it sees: each row names the project, the applicant, its average score and the amount
    applied for, and the form says what is available after the cut and what the proposals leave of it. The
    rows are the intake's own: none can be added or removed, and what is shown goes back unchanged."""
    app, y = site
    _to_recommendation(y)
    available = y.data("round")["summary"]["available"]
    per = client_for(app, "per")
    task_id = y.task("round", "au_recommendation")
    page = per.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "<legend>1. Trygg hjemkomst</legend>" in page
    assert '<span class="shown-label">Søker:</span> <span class="shown-value">Horten kommune</span>' in page
    assert '<span class="shown-label">Gjennomsnittlig skår:</span> <span class="shown-value">4,5</span>' in page
    assert '<span class="shown-label">Omsøkt beløp (kr):</span> <span class="shown-value">200\u00a0000</span>' in page
    assert "Tilgjengelig etter bærekraftskuttet (kr)" in page
    assert f"Igjen etter forslagene: <strong class=\"left-value\">{format_kroner(available)}</strong>" in page
    assert 'name="_add"' not in page and 'name="_remove"' not in page
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    form.update({"recommendation.0.rank": "1", "recommendation.0.proposed_amount": "150000",
                 "proposed_conclusion": "Innvilges.", "_action": "save"})
    assert per.post(f"/tasks/{task_id}", data=form).status_code in (200, 302)
    saved = per.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert f"<strong class=\"left-value\">{format_kroner(available - 150_000)}</strong>" in saved
    assert "<legend>1. Trygg hjemkomst</legend>" in saved  # the shown values went back with the answers


def test_a_recommendation_sent_back_takes_au_to_the_returned_task(site):  # noqa: F811 - the fixture above
    """Not a green "completed" and an unclaimed copy: AU lands on the returned task, theirs, with the reason."""
    app, y = site
    _to_recommendation(y)
    per = client_for(app, "per")
    task_id = y.task("round", "au_recommendation")
    page = per.get(f"/tasks/{task_id}").get_data(as_text=True)
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    form.update({"recommendation.0.rank": "1", "recommendation.0.proposed_amount": "200000",
                 "proposed_conclusion": "Innvilges.", "_action": "complete"})
    form.pop("csrf_token", None)
    y.at("2025-05-05T09:00")
    with y.rt.session() as s:  # the frame shrank meanwhile: the proposal no longer fits
        s.execute(text("UPDATE grant_calls SET frame = 100000"))
    sent = per.post(f"/tasks/{task_id}", data=form)
    returned = y.task("round", "au_recommendation")
    assert sent.status_code == 302 and sent.location.endswith(f"/tasks/{returned}") and returned != task_id
    assert next(t for t in y.rt.tasks(y.instance_id("round")) if t.id == returned).claimed_by == "per"
    landed = per.get(sent.location).get_data(as_text=True)
    assert "Svaret ditt ble sendt tilbake: Innstilling til SSU" in landed and "Oppgaven er fullført" not in landed
    assert "Merknad fra kontrollen" in landed and "mer enn rammen" in landed
