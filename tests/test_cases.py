"""Cases (saker) per committee and health community, meetings and their agendas.

Numbers ``YYYY.NN`` are per (committee, community, year) and never shared by two concurrent enqueues; a
conclusion reaches the one process that enqueued the case, not another community's process waiting for
the same number; ``samflyt cases`` / ``samflyt meetings`` list them; a database from before (community_0003)
keeps its cases and their numbers.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import select, text

import engine as engine_package
from community.connectors import meetings
from community.records import CaseAttachment, CaseCounter, MeetingCase
from engine import clock, db
from engine.cli import main
from engine.connectors import ConnectorRegistry, StepContext
from engine.plugins import migration_locations
from engine.runtime import Runtime
from tests.bpmn_builder import _ext, chain, definitions, end, process, props, start, user_task
from tests.grant_driver import GrantYear, application_form

VV = "Helsefellesskap Vest-Viken"
VF = "Helsefellesskapet i Vestfold"


def _runtime(engine, extra: dict | None = None) -> Runtime:
    registry = ConnectorRegistry()
    meetings.register(registry)
    for name, function in (extra or {}).items():
        registry.register(name, function)
    return Runtime(engine, connectors=registry, workflow_cache_size=0, spec_cache=False)


def _case(**overrides) -> dict:
    return {"case_type": "Beslutning", "title": "Delavtale om helhetlig pasientforløp",
            "proposed_conclusion": "Delavtalen godkjennes.", "community": VF} | overrides


@pytest.fixture
def at_2025():
    clock.set_now(datetime.fromisoformat("2025-09-01T09:00:00+02:00"))
    yield
    clock.set_now(None)


def test_concurrent_enqueues_in_one_committee_never_share_a_number(db_engine, at_2025):
    postgres = db_engine.dialect.name == "postgresql"
    barrier = threading.Barrier(2)

    def enqueue_together(title: str, *, ctx: StepContext) -> dict:
        # both transactions have begun and read before either takes a number (max+1 took the same one);
        # SQLite serialises writers at BEGIN IMMEDIATE, so only PostgreSQL can meet here
        ctx.session.execute(select(MeetingCase.id)).all()
        if postgres:
            barrier.wait(timeout=20)
        return meetings.enqueue_case(ctx=ctx, **_case(title=title))

    rt = _runtime(db_engine, {"test.enqueue_together": enqueue_together})
    results, errors = [], []

    def run(title: str) -> None:
        try:
            for i in range(3):
                if i == 0:
                    results.append(rt.call_connector("test.enqueue_together", {"title": title}))
                else:
                    results.append(rt.call_connector("meetings.enqueue_case", _case(title=f"{title} {i}")))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"Sak fra tråd {n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(r["case_id"] for r in results) == [f"2025.{n:02d}" for n in range(1, 7)]
    with rt.Session() as s:
        assert s.get(CaseCounter, ("SSU", VF, 2025)).last == 6


def test_each_committee_of_each_community_numbers_its_own_cases(db_engine, at_2025):
    rt = _runtime(db_engine)
    first = rt.call_connector("meetings.enqueue_case", _case(community=VF))
    assert (first["case_id"], first["community"], first["committee"]) == ("2025.01", VF, "SSU")
    assert rt.call_connector("meetings.enqueue_case", _case(community=VV))["case_id"] == "2025.01"
    assert rt.call_connector("meetings.enqueue_case", _case(community=VF, committee="AU"))["case_id"] == "2025.01"
    assert rt.call_connector("meetings.enqueue_case", _case(community=VF))["case_id"] == "2025.02"
    clock.set_now(datetime.fromisoformat("2026-01-05T09:00:00+01:00"))
    assert rt.call_connector("meetings.enqueue_case", _case(community=VF))["case_id"] == "2026.01"
    # a case follows up an earlier one of its committee and community, with numbered attachments
    rt.add_user("kristin", roles=["secretariat"])
    later = rt.call_connector("meetings.enqueue_case", _case(
        community=VF, follows_up="2025.02", case_handler="kristin",
        attachments=[12, {"title": "Retningslinje", "attachment_id": "a1b2"}]))
    with rt.Session() as s:
        case = s.scalar(select(MeetingCase).where(MeetingCase.community == VF, MeetingCase.committee == "SSU",
                                                  MeetingCase.case_number == later["case_id"]))
        earlier = s.get(MeetingCase, case.follows_up_id)
        assert (earlier.case_number, earlier.community, case.case_handler, case.status) == (
            "2025.02", VF, "kristin", "registered")
        assert [(a.number, a.title, a.document_id, a.attachment_id) for a in s.scalars(
            select(CaseAttachment).where(CaseAttachment.case_id == case.id).order_by(CaseAttachment.number))] == [
            (1, None, 12, None), (2, "Retningslinje", None, "a1b2")]
    with pytest.raises(meetings.MeetingError, match="no SSU case 2025.09"):
        rt.call_connector("meetings.enqueue_case", _case(follows_up="2025.09"))
    with pytest.raises(meetings.MeetingError, match="no user 'nobody'"):
        rt.call_connector("meetings.enqueue_case", _case(case_handler="nobody"))
    with pytest.raises(meetings.MeetingError, match="committee must be one of"):
        rt.call_connector("meetings.enqueue_case", _case(committee="Styret"))


def _round_to_ssu(y: GrantYear, suffix: str, community: str, au: str, applicant: str, org: str, cosigner: str,
                  partner: str, reviewers: tuple[str, str], committee: str, fsu: str, amount: int) -> int:
    """A round in ``community`` with one application, its recommendation sent to SSU; the application's id."""
    rnd, app = f"round-{suffix}", f"app-{suffix}"
    call_id = y.open_round(rnd, au, ["2025-02-14"], 1_000_000, community, cut=0)
    y.apply(app, applicant, call_id, application_form(f"Prosjekt {suffix}", org, [partner],
                                                      [(org, 2025, amount)], "2025-03-01", "2025-12-31", applicant))
    y.cosign(app, cosigner)
    y.submit(app, applicant)
    y.check(app, au)
    for member in reviewers:
        y.review(app, member, 4)
    return y.data(app)["application_id"]


def _recommend(y: GrantYear, suffix: str, committee: str, fsu: str, au: str, app_id: int, amount: int) -> None:
    rnd = f"round-{suffix}"
    y.complete("committee_assessment", rnd, committee, {"assessment_summary": "Vurdert.", "assessment_done": True})
    y.complete("fsu_input", rnd, fsu, {"fsu_input": "Støttes."})
    y.complete("au_recommendation", rnd, au, {
        "recommendation": [{"application_id": app_id, "proposed_amount": amount, "rank": 1}],
        "proposed_conclusion": "Innvilges."})


def test_a_conclusion_reaches_only_the_round_of_its_community(year):
    y, rt = year, year.rt
    for community, reference in ((VV, "HSØ VV"), (VF, "HSØ VF")):
        y.connector("ledger.allocate", {"year": 2025, "amount": 1_000_000, "reference": reference,
                                        "community": community}, "admin")
    vv_app = _round_to_ssu(y, "vv", VV, "vera", "ingrid", "Drammen kommune", "jon", "Vestre Viken HF",
                           ("ola", "tone"), "eva", "fredrik", 300_000)
    vf_app = _round_to_ssu(y, "vf", VF, "per", "ada", "Horten kommune", "bjorn", "Sykehuset i Vestfold HF",
                           ("mia", "tor"), "knut", "frida", 200_000)
    y.at("2025-02-17T08:00")
    _recommend(y, "vv", "eva", "fredrik", "vera", vv_app, 300_000)
    _recommend(y, "vf", "knut", "frida", "per", vf_app, 200_000)
    # both rounds wait for SSU's case 2025.01: each of its own community
    assert y.data("round-vv")["case_id"] == y.data("round-vf")["case_id"] == "2025.01"
    assert [(c["community"], c["number"], c["status"]) for c in meetings_list(rt)] == [
        (VV, "2025.01", "registered"), (VF, "2025.01", "registered")]

    # the secretariat records Vestfold's conclusion: Vestfold's round goes on, Vest-Viken's still waits
    y.at("2025-03-20T15:00")
    result = y.connector("meetings.conclude", {
        "number": "2025.01", "community": VF, "conclusion": "SSU innvilger 200 000 kr.",
        "decisions": [{"application_id": vf_app, "granted": True, "amount": 200_000}]}, "admin")
    assert result["delivered"] is True and result["instance_id"] == y.instance_id("round-vf")
    assert rt.instance(y.instance_id("round-vf")).status == "completed"
    assert y.application_row("app-vf").status == "granted"
    assert [t.name for t in rt.tasks(y.instance_id("round-vv"))] == ["register_ssu_decision"]
    assert y.application_row("app-vv").status == "registered"
    assert rt.messages(status="undeliverable") == []
    [sent] = [m for m in rt.messages() if m["name"] == "ssu_decision"]
    assert (sent["target_instance_id"], sent["correlations"]) == (y.instance_id("round-vf"), {"case_id": "2025.01"})

    # Vest-Viken's decision taken outside a meeting (the fallback task) decides Vest-Viken's case only
    y.complete("register_ssu_decision", "round-vv", "sverre", {
        "conclusion": "Innvilget.", "decisions": [{"application_id": vv_app, "granted": True, "amount": 300_000}]})
    assert rt.instance(y.instance_id("round-vv")).status == "completed"
    assert {(c["community"], c["status"], c["conclusion"]) for c in meetings_list(rt)} == {
        (VF, "decided", "SSU innvilger 200 000 kr."), (VV, "decided", "Innvilget.")}
    # a number without its community is ambiguous once two communities have it
    with pytest.raises(meetings.MeetingError, match="exists in 2 communities"):
        y.connector("meetings.record_conclusion", {"case_id": "2025.01", "conclusion": "?"}, "admin")


def meetings_list(rt) -> list[dict]:
    with rt.Session() as s:
        return meetings.list_cases(s)


def test_an_agenda_opens_with_the_standard_cases_and_a_case_can_be_postponed(db_engine, at_2025):
    rt = _runtime(db_engine)
    numbers = [rt.call_connector("meetings.enqueue_case", _case(title=f"Sak {n}"))["case_id"] for n in range(3)]
    assert numbers == ["2025.01", "2025.02", "2025.03"]
    may = rt.call_connector("meetings.schedule", {"committee": "SSU", "community": VF,
                                                  "starts_at": "2025-05-22T12:30:00+02:00", "place": "Teams"})
    september = rt.call_connector("meetings.schedule", {
        "committee": "SSU", "community": VF, "starts_at": "2025-09-25T12:30:00+02:00",
        "place": "Kommunestyresalen i Færder kommune, Tinghaugveien 18"})
    # each meeting is scheduled with "Godkjenning av innkalling og saksliste" and the previous meeting's minutes
    # as its first cases, numbered before the waiting cases are placed
    placed = rt.call_connector("meetings.add_to_agenda", {"meeting_id": september["meeting_id"], "case_id": "2025.01"})
    assert placed["agenda"] == ["2025.06", "2025.07", "2025.01"] and placed["position"] == 3
    rt.call_connector("meetings.add_to_agenda", {"meeting_id": september["meeting_id"], "case_id": "2025.02"})
    placed = rt.call_connector("meetings.add_to_agenda", {"meeting_id": september["meeting_id"],
                                                          "case_id": "2025.03", "position": 3})
    assert placed["agenda"] == ["2025.06", "2025.07", "2025.03", "2025.01", "2025.02"]
    with rt.Session() as s:
        standard = {c.case_number: (c.title, c.proposed_conclusion, c.status) for c in
                    meetings.agenda(s, september["meeting_id"])[:2]}
    assert standard == {
        "2025.06": ("Godkjenning av innkalling og saksliste", "Innkalling og saksliste godkjennes.", "on_agenda"),
        "2025.07": ("Godkjenning av referat fra forrige møte", "Referat fra møtet 22.05.25 godkjennes.",
                    "on_agenda")}
    # postponed: off the agenda, waiting again; the rest keep their order
    result = rt.call_connector("meetings.postpone", {"case_id": "2025.03", "meeting_id": september["meeting_id"]})
    assert (result["status"], result["meeting_id"]) == ("postponed", None)
    with pytest.raises(meetings.MeetingError, match="not later than"):
        rt.call_connector("meetings.postpone", {"case_id": "2025.02", "meeting_id": september["meeting_id"],
                                                "to_meeting_id": may["meeting_id"]})
    # a case of another community does not go on Vestfold's agenda
    rt.call_connector("meetings.enqueue_case", _case(community=VV))
    with pytest.raises(meetings.MeetingError, match="no SSU case 2025.08"):
        rt.call_connector("meetings.add_to_agenda", {"meeting_id": september["meeting_id"], "case_id": "2025.08"})

    url = db_engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    listed = runner.invoke(main, ["--db", url, "--json", "meetings", "--committee", "SSU"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == [
        {"id": may["meeting_id"], "committee": "SSU", "community": VF, "starts_at": json.loads(listed.output)[0][
            "starts_at"], "place": "Teams", "status": "planned", "cases": ["2025.04", "2025.05"]},
        {"id": september["meeting_id"], "committee": "SSU", "community": VF,
         "starts_at": json.loads(listed.output)[1]["starts_at"],
         "place": "Kommunestyresalen i Færder kommune, Tinghaugveien 18", "status": "planned",
         "cases": ["2025.06", "2025.07", "2025.01", "2025.02"]}]
    assert json.loads(listed.output)[1]["starts_at"].startswith("2025-09-25T")
    cases = runner.invoke(main, ["--db", url, "--json", "cases", "--committee", "SSU", "--status", "postponed"])
    assert cases.exit_code == 0, cases.output
    assert json.loads(cases.output) == [{"number": "2025.03", "committee": "SSU", "community": VF,
                                         "type": "Beslutning", "title": "Sak 2", "status": "postponed",
                                         "meeting_id": None, "conclusion": None}]
    everything = json.loads(runner.invoke(main, ["--db", url, "--json", "cases"]).output)
    assert [(c["community"], c["number"]) for c in everything] == [
        (VV, "2025.01"), *((VF, f"2025.{n:02d}") for n in range(1, 8))]
    human = runner.invoke(main, ["--db", url, "cases", "--status", "on_agenda"])
    assert human.exit_code == 0 and len(human.output.splitlines()) == 6
    assert human.output.splitlines()[0].startswith(f"2025.01  SSU  {VF}  Beslutning  on_agenda  møte ")
    wrong = runner.invoke(main, ["--db", url, "meetings", "--committee", "styret"])
    assert wrong.exit_code != 0


# -- the upgrade from a database at community_0003


def _engine_head() -> str:
    here = Path(engine_package.__file__).parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(here))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("version_locations", " ".join([str(here / "versions"), *migration_locations()]))
    [head] = [h for h in ScriptDirectory.from_config(cfg).get_heads() if not h.startswith("community_")]
    return head


def test_the_upgrade_keeps_the_cases_and_their_numbers(bare_engine, tmp_path, at_2025):
    db.migrate(bare_engine, _engine_head())
    db.migrate(bare_engine, "community_0003")
    rt = _runtime(bare_engine)
    folder = tmp_path / "scoped"
    folder.mkdir()
    (folder / "p.bpmn").write_text(definitions(process(
        "scoped", start("start", _ext(props(**{"samflyt.scopeField": "community"}))), user_task("wait", "Vent"),
        end(), chain("start", "wait", "end"))), encoding="utf-8")
    rt.deploy([str(folder)])
    instance = rt.start("scoped", data={"community": VV})
    insert = text("""INSERT INTO meeting_cases (case_number, committee, case_type, title, proposed_conclusion,
                                               attachments, status, instance_id, created_at)
                     VALUES (:number, 'SSU', 'Beslutning', :title, 'Godkjennes.', :attachments, 'pending',
                             :instance, :at)""")
    with bare_engine.begin() as conn:
        conn.execute(insert, {"number": "2025.07", "title": "Tildeling", "attachments": "[5, 6]",
                              "instance": instance, "at": clock.now()})
        conn.execute(insert, {"number": "2025.08", "title": "Uten prosess", "attachments": "[]",
                              "instance": None, "at": clock.now()})

    db.migrate(bare_engine)
    with rt.Session() as s:
        cases = {c.case_number: c for c in s.scalars(select(MeetingCase))}
        assert {n: (c.community, c.committee, c.status, c.reply_message) for n, c in cases.items()} == {
            "2025.07": (VV, "SSU", "registered", "ssu_decision"), "2025.08": ("", "SSU", "registered", None)}
        assert [(a.number, a.document_id) for a in s.scalars(select(CaseAttachment).order_by(
            CaseAttachment.number))] == [(1, 5), (2, 6)]
        assert {(c.community, c.last) for c in s.scalars(select(CaseCounter))} == {(VV, 7), ("", 8)}
    # the next numbers follow the old ones, per community
    assert rt.call_connector("meetings.enqueue_case", _case(community=VV))["case_id"] == "2025.08"
    assert rt.call_connector("meetings.enqueue_case", _case(community=VF))["case_id"] == "2025.01"
    assert rt.call_connector("meetings.enqueue_case", _case(community=""))["case_id"] == "2025.09"


def test_a_case_from_before_samflyt_keeps_its_number_and_later_ones_follow_it(db_engine, at_2025):
    rt = _runtime(db_engine)
    rt.add_user("admin", roles=["admin"])
    kept = rt.call_connector("meetings.import_case", _case(number="2025.35"), actor="admin")
    assert kept["case_id"] == "2025.35"
    with pytest.raises(meetings.MeetingError, match="SSU case 2025.35 exists already"):
        rt.call_connector("meetings.import_case", _case(number="2025.35"), actor="admin")
    with pytest.raises(meetings.MeetingError, match="YYYY.NN"):
        rt.call_connector("meetings.import_case", _case(number="35"), actor="admin")
    assert rt.call_connector("meetings.enqueue_case", _case())["case_id"] == "2025.36"
    rt.call_connector("meetings.import_case", _case(number="2025.20"), actor="admin")  # an older one: no step back
    assert rt.call_connector("meetings.enqueue_case", _case())["case_id"] == "2025.37"
    other = rt.call_connector("meetings.import_case", _case(number="2025.35", community=VV), actor="admin")
    assert other == {"case_id": "2025.35", "community": VV, "committee": "SSU"}
