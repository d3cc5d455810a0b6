"""The meeting as a process (``bpmn/meetings/meeting.bpmn``, ``committee_meeting``).

A grant round sends its recommendation to SSU as a case, and someone registers another case; the secretariat
schedules a meeting, puts the cases on the agenda, the chair sends it back once and then approves it; the
notice goes by mail to the committee's members exactly ``notice_working_days`` working days before (nothing
the day before that); at the meeting the secretariat records the conclusions, and the grant round goes on
with the meeting's decision.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from sqlalchemy import select

from community.connectors.meetings import list_cases, list_meetings
from community.records import Meeting
from engine.calendar import working_days_before
from engine.mail import dispatch_outbox
from engine.models import OutboxMessage
from tests.grant_driver import GrantYear, application_form

MEETINGS = Path(__file__).resolve().parent.parent / "bpmn" / "meetings"
VV = "Helsefellesskap Vest-Viken"
VF = "Helsefellesskapet i Vestfold"
HF = "Vestre Viken HF"


def _meetings(rt) -> None:
    """The meeting bundle deployed, with its demo users: SSU's chairs (role ``chair``) and a member."""
    rt.deploy([str(MEETINGS)], actor="admin")
    for user in json.loads((MEETINGS / "demo.json").read_text(encoding="utf-8"))["users"]:
        rt.add_user(user["username"], user["roles"], user["organisations"], user["display_name"], user["email"])


def _outbox(y: GrantYear) -> list[OutboxMessage]:
    with y.rt.Session() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.subject.like("Innkalling%"))
                              .order_by(OutboxMessage.to_address)))


def _grant_case(y: GrantYear) -> tuple[str, int]:
    """A round of Vest-Viken with one application, recommended to SSU: (case number, application id)."""
    y.connector("ledger.allocate", {"year": 2025, "amount": 2_000_000, "reference": "HSØ 2025", "community": VV},
                "admin")
    call_id = y.open_round("round", "vera", ["2025-02-14"], 1_000_000, VV, cut=0)
    y.apply("a1", "ingrid", call_id, application_form("Felles rehabiliteringsforløp", "Drammen kommune", [HF],
                                                      [("Drammen kommune", 2025, 300_000)], contact="ingrid"))
    y.cosign("a1", "jon")
    y.submit("a1", "ingrid")
    y.check("a1", "vera")
    y.review("a1", "ola", 4)
    y.review("a1", "tone", 5)
    y.at("2025-02-17T08:00")
    y.complete("committee_assessment", "round", "eva", {"assessment_summary": "Vurdert.", "assessment_done": True})
    y.complete("fsu_input", "round", "fredrik", {"fsu_input": "FSU støtter tiltaket."})
    application_id = y.data("a1")["application_id"]
    y.complete("au_recommendation", "round", "vera", {
        "recommendation": [{"application_id": application_id, "proposed_amount": 300_000, "rank": 1}],
        "proposed_conclusion": "SSU innvilger 300 000 kr til «Felles rehabiliteringsforløp»."})
    return y.data("round")["case_id"], application_id


def test_a_meeting_from_agenda_to_the_grant_decision(year, smtp):
    y, rt = year, year.rt
    _meetings(rt)
    grant_case, application_id = _grant_case(y)
    other = y.connector("meetings.enqueue_case", {
        "case_type": "Orientering", "title": "Prosjektrapportering samhandlingsprosjekter",
        "proposed_conclusion": "Rapporteringen tas til orientering.", "community": VV}, "admin")["case_id"]

    # the secretariat schedules the meeting and sets up the agenda from the cases waiting for SSU
    y.start("committee_meeting", "sverre", ref="meeting")
    assert y.data("meeting")["community"] == VV  # the secretary's own community, preselected
    y.complete("plan_meeting", "meeting", "sverre", {"committee": "SSU", "community": VV,
                                                     "meeting_date": "2025-03-06", "meeting_time": "12:30",
                                                     "place": "Drammen rådhus"})
    task = y.task("meeting", "build_agenda", "sverre")
    choices = rt.form_for(task).json_schema["properties"]["agenda_cases"]["items"]["enum"]
    assert choices == sorted([grant_case, other])
    # a case registered after the meeting was planned: no case chosen reads the waiting cases again
    late = y.connector("meetings.enqueue_case", {
        "case_type": "Drøfting", "title": "Registrert etter planleggingen", "proposed_conclusion": "Drøftes.",
        "community": VV}, "admin")["case_id"]
    assert late not in rt.form_for(task).json_schema["properties"]["agenda_cases"]["items"]["enum"]
    y.complete("build_agenda", "meeting", "sverre", {"agenda_cases": []})
    task = y.task("meeting", "build_agenda", "sverre")
    assert rt.form_for(task).json_schema["properties"]["agenda_cases"]["items"]["enum"] == sorted(
        [grant_case, other, late])
    y.complete("build_agenda", "meeting", "sverre", {"agenda_cases": [other, grant_case]})
    # the chair (role `chair`, bound to the community) sends it back with a comment
    assert y.task("meeting", "approve_agenda", "kristin")
    assert rt.why_not(y.task("meeting", "approve_agenda"), "sverre") is not None
    assert f"Sak {grant_case} – Rekrutterings- og samhandlingstilskudd 2025" in y.data("meeting")["agenda_summary"]
    y.complete("approve_agenda", "meeting", "kristin", {"agenda_approved": False,
                                                        "agenda_comment": "Ta rapporteringen i neste møte."})
    assert y.data("meeting")["agenda_comment"] == "Ta rapporteringen i neste møte."
    y.complete("build_agenda", "meeting", "sverre", {"agenda_cases": [grant_case]})
    y.complete("approve_agenda", "meeting", "kristin", {"agenda_approved": True})
    with rt.Session() as s:
        [meeting] = list_meetings(s, "SSU")
        cases = {c["number"]: c for c in list_cases(s, "SSU", community=VV)}
    assert meeting["cases"][2:] == [grant_case] and len(meeting["cases"]) == 3
    assert [cases[n]["title"] for n in meeting["cases"][:2]] == [
        "Godkjenning av innkalling og saksliste", "Godkjenning av referat fra forrige møte"]
    assert cases[other]["status"] == "postponed" and cases[other]["meeting_id"] is None

    # the notice: 7 working days before Thursday 6 March is Tuesday 25 February; nothing on the 24th
    assert working_days_before(date(2025, 3, 6), 7) == date(2025, 2, 25)
    y.at("2025-02-24T09:00")
    assert _outbox(y) == []
    y.at("2025-02-25T07:59")
    assert _outbox(y) == []
    y.at("2025-02-25T08:00")
    notices = _outbox(y)
    assert [m.to_address for m in notices] == ["kristin@drammen.example.no", "morten@asker.example.no"]
    body = notices[0].body
    assert notices[0].subject == "Innkalling til SSU 06.03.25"
    for expected in ("• Dato: 06.03.25", "• Tid: kl. 12.30", "• Sted: Drammen rådhus", "Saksliste",
                     f"Sak {grant_case} – Rekrutterings- og samhandlingstilskudd 2025", "Sakstype: Beslutning",
                     "Forslag til konklusjon/beslutning:", "SSU innvilger 300 000 kr", "Vedlegg nr: 1",
                     "Innkalling og saksliste godkjennes."):
        assert expected in body, expected
    assert "Prosjektrapportering" not in body
    assert y.data("meeting")["notice_sent_at"].startswith("2025-02-25T07:00")  # 08:00 in Norway
    y.at("2025-02-25T08:05")  # the scheduler's next pass sends the outbox (here: to a loopback server)
    inbox, settings = smtp()
    assert dispatch_outbox(rt.WriteSession, settings) == (2, 0)
    assert {r for m in inbox.messages for r in m.rcpt_tos} == {"kristin@drammen.example.no", "morten@asker.example.no"}

    # the meeting: the secretariat records the conclusions, the grant round goes on with them
    y.at("2025-03-06T12:29")
    assert [t.name for t in rt.tasks(y.instance_id("meeting"))] == []
    y.at("2025-03-06T12:30")
    task = y.task("meeting", "register_conclusions", "sverre")
    conclusions = rt.task_data(task)["conclusions"]
    assert [c["case_id"] for c in conclusions] == meeting["cases"]
    grant_item = conclusions[2]
    assert grant_item["conclusion"] == "SSU innvilger 300 000 kr til «Felles rehabiliteringsforløp»."
    assert grant_item["decisions"] == [{"application_id": application_id, "granted": True, "amount": 300_000,
                                        "reason": ""}]
    grant_item["conclusion"] = "SSU innvilger 250 000 kr til «Felles rehabiliteringsforløp»."
    grant_item["decisions"][0]["amount"] = 250_000
    view = y.complete("register_conclusions", "meeting", "sverre", {"conclusions": conclusions})
    assert view.status == "running"  # the minutes come next (tests/test_meeting_minutes.py)
    assert [t.name for t in rt.tasks(y.instance_id("meeting"))] == ["record_attendance"]
    with rt.Session() as s:
        held = s.get(Meeting, meeting["id"])
        assert held.status == "held" and held.notice_sent_at is not None
        cases = {c["number"]: c for c in list_cases(s, "SSU", community=VV)}
    assert all(cases[n]["status"] == "decided" for n in meeting["cases"])
    assert cases[grant_case]["conclusion"] == "SSU innvilger 250 000 kr til «Felles rehabiliteringsforløp»."
    row = y.application_row("a1")
    assert (row.status, row.amount_granted, row.decision_case) == ("granted", 250_000, grant_case)
    assert y.data("round")["conclusion"] == "SSU innvilger 250 000 kr til «Felles rehabiliteringsforløp»."
    assert "register_ssu_decision" not in [t.name for t in rt.tasks(y.instance_id("round"))]


def test_a_meeting_with_a_shorter_notice_and_only_a_registered_case(year):
    """``notice_working_days`` from the start data; a case someone registered; a video meeting in Vestfold,
    whose notice goes to Vestfold's SSU only."""
    y, rt = year, year.rt
    _meetings(rt)
    case = y.connector("meetings.enqueue_case", {
        "case_type": "Drøfting", "title": "Strategi- og handlingsplan 2026", "community": VF,
        "proposed_conclusion": "Utkast til handlingsplan legges frem i november."}, "admin")["case_id"]
    y.start("committee_meeting", "siri", {"notice_working_days": 3}, ref="meeting")
    y.complete("plan_meeting", "meeting", "siri", {"committee": "SSU", "community": VF, "meeting_date": "2025-01-20",
                                                   "meeting_time": "09:00", "video_link": "https://teams.example/m"})
    y.complete("build_agenda", "meeting", "siri", {"agenda_cases": [case]})
    assert rt.why_not(y.task("meeting", "approve_agenda"), "kristin") is not None  # Vest-Viken's chair
    y.complete("approve_agenda", "meeting", "hilde", {"agenda_approved": True})
    # Monday 20 January, 3 working days before: Wednesday 15 January
    y.at("2025-01-14T12:00")
    assert _outbox(y) == []
    y.at("2025-01-15T08:00")
    notices = _outbox(y)
    assert [m.to_address for m in notices] == ["hilde@faerder.example.no", "sigrid@larvik.example.no"]
    assert "• Videolenke: https://teams.example/m" in notices[0].body
    assert f"Sak {case} – Strategi- og handlingsplan 2026" in notices[0].body
    y.at("2025-01-20T09:00")
    y.complete("register_conclusions", "meeting", "siri", {"conclusions": rt.task_data(
        y.task("meeting", "register_conclusions", "siri"))["conclusions"]})
    with rt.Session() as s:
        assert {c["number"]: c["conclusion"] for c in list_cases(s, "SSU", community=VF)}[case] == (
            "Utkast til handlingsplan legges frem i november.")
    # the attendance as it came (everyone), the minutes checked and mailed: the meeting's process is done
    y.complete("record_attendance", "meeting", "siri", {"present": ["hilde", "sigrid"]})
    y.complete("check_minutes", "meeting", "siri", {"minutes_ok": True})
    assert rt.instance(y.instance_id("meeting")).status == "completed"
