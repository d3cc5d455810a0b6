"""One whole meeting cycle with the clock moved (issue 13, done when): a case from a grant round and one a
person registers → the agenda → the notice mailed to a loopback SMTP server exactly the right number of
working days before → the meeting's conclusions, with a follow-up → the grant round continues with the
decision → attendance and minutes, mailed → the minutes approved as a case of the next meeting → the
follow-up, unanswered, escalates to the secretariat the day after its due date.

The steps are each tested in depth elsewhere (tests/test_meeting_process.py, test_meeting_minutes.py,
test_meeting_follow_ups.py); this test proves they join up into one cycle."""

from __future__ import annotations

import io

from sqlalchemy import select

from community.connectors.meetings import list_cases
from community.records import CaseFollowUp, Meeting, MeetingCase
from engine import accounts
from engine.mail import dispatch_outbox
from engine.models import OutboxMessage
from tests.test_meeting_process import VV, _grant_case, _meetings
from web import create_app


def _mails(rt, subject: str) -> list[OutboxMessage]:
    with rt.Session() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.subject.like(subject + "%"))
                              .order_by(OutboxMessage.to_address)))


def _meeting(rt, meeting_id: int) -> Meeting:
    with rt.Session() as s:
        meeting = s.get(Meeting, meeting_id)
        s.expunge(meeting)
        return meeting


def _register_by_a_person(y, db_engine) -> str:
    """Sverre of the secretariat registers a case for SSU on the page /cases/new, with a file."""
    with y.rt.session() as s:
        accounts.set_password(s, "sverre", "passord-sverre")
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = y.rt
    sverre = app.test_client()
    assert sverre.post("/sign-in", data={"username": "sverre", "password": "passord-sverre"}).status_code == 302
    response = sverre.post("/cases/new", content_type="multipart/form-data", data={
        "committee": "SSU", "case_type": "Drøfting", "title": "Revidert delavtale om utskrivning",
        "case_handler": "sverre", "background": "Arbeidsgruppen har levert et utkast.",
        "proposed_conclusion": "Utkastet sendes på høring.",
        "attachments": [(io.BytesIO(b"%PDF-1.4 utkast"), "Utkast delavtale.pdf")]})
    assert response.status_code == 302, response.get_data(as_text=True)
    with y.rt.Session() as s:
        return s.scalar(select(MeetingCase.case_number).where(MeetingCase.title == "Revidert delavtale om utskrivning"))


def test_a_whole_meeting_cycle(year, smtp, db_engine):
    y, rt = year, year.rt
    _meetings(rt)
    inbox, settings = smtp()
    grant_case, application_id = _grant_case(y)
    person_case = _register_by_a_person(y, db_engine)

    # the agenda: both cases, after the two standard ones; the chair approves it
    y.start("committee_meeting", "sverre", ref="march")
    y.complete("plan_meeting", "march", "sverre", {"committee": "SSU", "community": VV, "meeting_date": "2025-03-06",
                                                   "meeting_time": "12:30", "place": "Drammen rådhus"})
    y.complete("build_agenda", "march", "sverre", {"agenda_cases": [grant_case, person_case]})
    y.complete("approve_agenda", "march", "kristin", {"agenda_approved": True})
    march_id = y.data("march")["meeting_id"]

    # the notice: 7 working days before Thursday 6 March is Tuesday 25 February at 08:00, not a minute before
    y.at("2025-02-25T07:59")
    assert _mails(rt, "Innkalling til SSU 06.03.25") == []
    y.at("2025-02-25T08:00")
    notices = _mails(rt, "Innkalling til SSU 06.03.25")
    assert len(notices) == 2
    for expected in (f"Sak {grant_case}", f"Sak {person_case} – Revidert delavtale om utskrivning"):
        assert expected in notices[0].body
    y.at("2025-02-25T08:05")
    assert dispatch_outbox(rt.WriteSession, settings) == (2, 0)
    assert {r for m in inbox.messages for r in m.rcpt_tos} == {"kristin@drammen.example.no",
                                                               "morten@asker.example.no"}

    # the meeting: conclusions (the grant's amount changed), a follow-up on the person's case
    y.at("2025-03-06T12:30")
    conclusions = rt.task_data(y.task("march", "register_conclusions", "sverre"))["conclusions"]
    grant_item = next(c for c in conclusions if c["case_id"] == grant_case)
    grant_item["conclusion"] = "SSU innvilger 250 000 kr til «Felles rehabiliteringsforløp»."
    grant_item["decisions"][0]["amount"] = 250_000
    person_item = next(c for c in conclusions if c["case_id"] == person_case)
    person_item["conclusion"] = "Utkastet sendes på høring med SSUs merknader."
    person_item["follow_ups"] = [{"description": "Send utkastet på høring til kommunene",
                                  "responsible_user": "vera", "due_date": "2025-03-20"}]
    y.complete("register_conclusions", "march", "sverre", {"conclusions": conclusions})

    # the grant round continues with the meeting's decision
    row = y.application_row("a1")
    assert (row.status, row.amount_granted, row.decision_case) == ("granted", 250_000, grant_case)
    assert "register_ssu_decision" not in [t.name for t in rt.tasks(y.instance_id("round"))]

    # attendance and minutes, mailed to the members with the PDF
    y.complete("record_attendance", "march", "sverre", {"present": ["kristin"], "guests": ["Vera AU"]})
    y.at("2025-03-07T10:00")
    y.complete("check_minutes", "march", "sverre", {"minutes_ok": True})
    assert rt.instance(y.instance_id("march")).status == "completed"
    minutes = _mails(rt, "Referat fra SSU 06.03.25")
    assert [m.to_address for m in minutes] == ["kristin@drammen.example.no", "morten@asker.example.no"]
    assert _meeting(rt, march_id).minutes_sent_at is not None

    # nobody answers the follow-up: the day after its due date it is late and the secretariat is told
    [follow_up] = _follow_ups(rt)
    assert (follow_up.status, follow_up.responsible_user) == ("open", "vera")
    y.at("2025-03-20T16:00")
    assert _mails(rt, "Forsinket oppfølging") == []
    y.at("2025-03-21T08:00")
    assert _follow_ups(rt)[0].status == "late"
    [escalation] = _mails(rt, "Forsinket oppfølging")
    assert escalation.to_address == "sverre@vestreviken.example.no"
    assert escalation.subject == f"Forsinket oppfølging av sak {person_case} i SSU"

    # the next meeting approves the minutes as its second standard case
    plan = y.connector("meetings.enqueue_case", {
        "case_type": "Orientering", "title": "Strategi- og handlingsplan 2026", "community": VV,
        "proposed_conclusion": "Saken tas til orientering."}, "admin")["case_id"]
    y.start("committee_meeting", "sverre", ref="may")
    y.complete("plan_meeting", "may", "sverre", {"committee": "SSU", "community": VV, "meeting_date": "2025-05-08",
                                                 "meeting_time": "12:30", "place": "Drammen rådhus"})
    y.complete("build_agenda", "may", "sverre", {"agenda_cases": [plan]})
    y.complete("approve_agenda", "may", "kristin", {"agenda_approved": True})
    y.at("2025-04-29T08:00")  # 7 working days before Thursday 8 May (1 May is a holiday)
    [may_notice, _other] = _mails(rt, "Innkalling til SSU 08.05.25")
    assert "Referat fra SSU 06.03.25" in may_notice.body
    y.at("2025-05-08T12:30")
    conclusions = rt.task_data(y.task("may", "register_conclusions", "sverre"))["conclusions"]
    y.complete("register_conclusions", "may", "sverre", {"conclusions": conclusions})
    march = _meeting(rt, march_id)
    assert march.minutes_approved_at is not None
    with rt.Session() as s:
        cases = {c["number"]: c for c in list_cases(s, "SSU", community=VV)}
    approval = next(c for c in cases.values() if c["meeting_id"] == y.data("may")["meeting_id"]
                    and c["title"] == "Godkjenning av referat fra forrige møte")
    assert approval["status"] == "decided"
    assert all(cases[n]["status"] == "decided" for n in (grant_case, person_case))


def _follow_ups(rt) -> list[CaseFollowUp]:
    with rt.Session() as s:
        return list(s.scalars(select(CaseFollowUp).order_by(CaseFollowUp.id)))
