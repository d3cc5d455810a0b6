"""Follow-ups of a meeting's conclusions (oppfølging: ansvar og frist), with the real processes and the clock
moved: the secretariat records a conclusion with follow-ups (a wrong one sends the form back), each starts its
own ``case_follow_up`` process with a task for the responsible person or role, a reminder is mailed before the
due date, the day after it the follow-up is late and the secretariat is told by mail, and the responsible
answers with a new case that follows up the original one. Then the register page, its filters and CSV, which
an applicant may not open."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from community.records import CaseFollowUp, MeetingCase
from engine import accounts, clock
from engine.mail import dispatch_outbox
from engine.models import OutboxMessage
from tests.grant_driver import grant_runtime
from web import create_app

MEETINGS = Path(__file__).resolve().parent.parent / "bpmn" / "meetings"
VV = "Helsefellesskap Vest-Viken"
VF = "Helsefellesskapet i Vestfold"


def _meetings(rt) -> None:
    rt.deploy([str(MEETINGS)], actor="admin")
    for user in json.loads((MEETINGS / "demo.json").read_text(encoding="utf-8"))["users"]:
        rt.add_user(user["username"], user["roles"], user["organisations"], user["display_name"], user["email"])


def _mails(rt, to: str) -> list[OutboxMessage]:
    with rt.Session() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.to_address == to).order_by(OutboxMessage.id)))


def _follow_ups(rt) -> list[CaseFollowUp]:
    with rt.Session() as s:
        return list(s.scalars(select(CaseFollowUp).order_by(CaseFollowUp.id)))


def _held_meeting(y, case: str) -> list[dict]:
    """Vest-Viken's SSU meets on Monday 20 January 2025 with ``case`` on the agenda; returns the conclusions
    form's rows once the meeting has started."""
    y.start("committee_meeting", "sverre", {"notice_working_days": 3}, ref="meeting")
    y.complete("plan_meeting", "meeting", "sverre", {"committee": "SSU", "community": VV, "meeting_date": "2025-01-20",
                                                     "meeting_time": "09:00", "video_link": "https://teams.example/m"})
    y.complete("build_agenda", "meeting", "sverre", {"agenda_cases": [case]})
    y.complete("approve_agenda", "meeting", "kristin", {"agenda_approved": True})
    y.at("2025-01-20T09:00")
    return y.rt.task_data(y.task("meeting", "register_conclusions", "sverre"))["conclusions"]


def test_a_follow_up_is_reminded_escalated_and_answered_with_a_new_case(year, smtp):
    y, rt = year, year.rt
    _meetings(rt)
    case = y.connector("meetings.enqueue_case", {
        "case_type": "Beslutning", "title": "Revidert delavtale om utskrivning", "community": VV,
        "proposed_conclusion": "Delavtalen vedtas."}, "admin")["case_id"]
    conclusions = _held_meeting(y, case)
    item = next(c for c in conclusions if c["case_id"] == case)

    # a follow-up with both a person and a role, and one due before today: the form comes back, nothing decided
    item["follow_ups"] = [{"description": "Send delavtalen til kommunene", "responsible_user": "vera",
                           "responsible_role": "au", "due_date": "2025-01-31"},
                          {"description": "Evaluer", "responsible_role": "au", "due_date": "2025-01-17"}]
    y.complete("register_conclusions", "meeting", "sverre", {"conclusions": conclusions})
    problems = y.data("meeting")["conclusions_problems"]
    assert f"Sak {case}, oppfølging 1: velg enten en ansvarlig person eller en ansvarlig rolle" in problems
    assert f"Sak {case}, oppfølging 2: fristen 17.01.2025 er passert" in problems
    assert y.task("meeting", "register_conclusions", "sverre")
    assert _follow_ups(rt) == []
    # a person of another health community is refused too
    item["follow_ups"] = [{"description": "Send delavtalen", "responsible_user": "per", "due_date": "2025-01-31"}]
    y.complete("register_conclusions", "meeting", "sverre", {"conclusions": conclusions})
    assert f"«per» hører ikke til {VV}" in y.data("meeting")["conclusions_problems"]

    item["follow_ups"] = [{"description": "Send delavtalen til kommunene for signering", "responsible_user": "vera",
                           "due_date": "2025-01-31"},
                          {"description": "Evaluer delavtalen etter et halvt år", "responsible_role": "au",
                           "due_date": "2025-06-30"}]
    view = y.complete("register_conclusions", "meeting", "sverre", {"conclusions": conclusions})
    assert view.status == "running"  # on to the attendance and minutes (tests/test_meeting_minutes.py)
    assert [t.name for t in y.rt.tasks(y.instance_id("meeting"))] == ["record_attendance"]
    person, role = _follow_ups(rt)
    assert (person.status, person.responsible_user, person.responsible_role, str(person.due_date)) == (
        "open", "vera", None, "2025-01-31")
    assert (role.responsible_user, role.responsible_role, role.community, role.committee) == (None, "au", VV, "SSU")
    assert person.instance_id and role.instance_id and person.instance_id != role.instance_id
    for row in (person, role):
        assert rt.instance(row.instance_id).process_id == "case_follow_up"

    # the person's task is vera's alone; the role's is for AU of Vest-Viken, not of Vestfold
    y.refs["person"], y.refs["role"] = person.instance_id, role.instance_id
    task = y.task("person", "answer_follow_up")
    assert rt.why_not(task, "vera") is None
    assert rt.why_not(task, "sverre") is not None and rt.why_not(task, "per") is not None
    role_task = y.task("role", "answer_follow_up")
    assert rt.why_not(role_task, "vera") is None
    assert rt.why_not(role_task, "per") is not None  # AU, but of Vestfold
    assert rt.why_not(role_task, "sverre") is not None  # Vest-Viken, but not AU
    data = rt.task_data(task)
    assert (data["case_id"], data["description"], data["due_date"]) == (
        case, "Send delavtalen til kommunene for signering", "2025-01-31")

    # reminders in working days: 5 working days before Friday 31 January is Friday 24 January
    y.at("2025-01-23T09:00")
    assert [m.subject for m in _mails(rt, "vera@vestreviken.example.no")] == []
    y.at("2025-01-24T09:00")
    [reminder] = _mails(rt, "vera@vestreviken.example.no")
    assert reminder.subject.startswith("Påminnelse: «Svar på oppfølgingen»") and "31.01.2025" in reminder.subject

    # the day after the due date the follow-up is late, and the secretariat of Vest-Viken is told
    y.at("2025-01-31T16:00")
    assert _follow_ups(rt)[0].status == "open"
    assert _mails(rt, "sverre@vestreviken.example.no") == []
    y.at("2025-02-01T08:00")
    assert _follow_ups(rt)[0].status == "late"
    [escalation] = _mails(rt, "sverre@vestreviken.example.no")
    assert escalation.subject == f"Forsinket oppfølging av sak {case} i SSU"
    assert "Send delavtalen til kommunene for signering" in escalation.body and "Ansvarlig: vera" in escalation.body
    assert _mails(rt, "siri@siv.example.no") == []  # Vestfold's secretariat is not told
    inbox, settings = smtp()
    y.at("2025-02-01T08:05")  # the scheduler's next pass sends the outbox (here: to a loopback server)
    dispatch_outbox(rt.WriteSession, settings)
    assert "sverre@vestreviken.example.no" in {r for m in inbox.messages for r in m.rcpt_tos}
    y.at("2025-02-02T08:00")
    assert len(_mails(rt, "sverre@vestreviken.example.no")) == 1  # told once

    # vera answers with a new case to a later meeting; without its title the form comes back first
    answer = {"answer": "new_case", "comment": "Kommunene ba om endringer; saken må behandles på nytt."}
    y.complete("answer_follow_up", "person", "vera", answer)
    assert y.data("person")["answer_problems"].startswith("For en ny sak")
    y.complete("answer_follow_up", "person", "vera", answer | {
        "new_case_title": "Endringer i delavtale om utskrivning", "new_case_type": "Beslutning",
        "new_case_proposal": "Endringene vedtas.", "new_case_background": "Innspill fra kommunene."})
    assert rt.instance(person.instance_id).status == "completed"
    closed = _follow_ups(rt)[0]
    assert (closed.status, closed.closed_by, closed.comment) == (
        "done", "vera", "Kommunene ba om endringer; saken må behandles på nytt.")
    with rt.Session() as s:
        new_case = s.get(MeetingCase, closed.new_case_id)
        original = s.scalar(select(MeetingCase).where(MeetingCase.case_number == case, MeetingCase.community == VV))
        assert (new_case.title, new_case.status, new_case.community, new_case.committee) == (
            "Endringer i delavtale om utskrivning", "registered", VV, "SSU")
        assert new_case.follows_up_id == original.id and new_case.case_handler == "vera"

    # the role's follow-up is answered "done" by an AU member of Vest-Viken
    y.complete("answer_follow_up", "role", "vera", {"answer": "done", "comment": "Evaluert, ingen endringer."})
    assert _follow_ups(rt)[1].status == "done" and _follow_ups(rt)[1].new_case_id is None


PASSWORDS = {u: f"passord-{u}" for u in ("siri", "sverre", "vera", "per", "ada", "admin")}


@pytest.fixture
def follow_up_site(db_engine):
    """Follow-ups of three cases, two of Vestfold (one late, one done) and one of Vest-Viken."""
    rt = grant_runtime(db_engine)
    _meetings(rt)
    with rt.session() as s:
        for user, password in PASSWORDS.items():
            accounts.set_password(s, user, password)
    clock.set_now("2025-09-01T09:00")

    def concluded(title: str, community: str, follow_ups: list[dict], committee: str = "SSU") -> str:
        number = rt.call_connector("meetings.enqueue_case", {
            "case_type": "Beslutning", "title": title, "proposed_conclusion": "Vedtas.", "community": community,
            "committee": committee})["case_id"]
        rt.call_connector("meetings.conclude", {"number": number, "community": community, "committee": committee,
                                                "conclusion": "Vedtatt.", "follow_ups": follow_ups})
        return number

    first = concluded("Delavtale om legemiddelhåndtering", VF, [
        {"description": "Sende avtalen på høring", "responsible_user": "per", "due_date": "2025-09-10"}])
    second = concluded("Felles kompetanseplan", VF, [
        {"description": "Lage utkast til plan", "responsible_role": "au", "due_date": "2025-10-15"}], "AU")
    third = concluded("Vest-Vikens sak", VV, [
        {"description": "Vest-Vikens oppfølging", "responsible_user": "vera", "due_date": "2025-10-01"}])
    with rt.Session() as s:
        instances = {r.description: r.instance_id for r in s.scalars(select(CaseFollowUp))}
    rt.complete(next(t.id for t in rt.tasks(instances["Lage utkast til plan"]) if t.name == "answer_follow_up"),
                "per", {"answer": "done", "comment": "Utkastet er sendt AU."})
    clock.set_now("2025-09-12T09:00")  # the first is past its due date
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = rt
    yield app, {"first": first, "second": second, "third": third}
    clock.set_now(None)


def _client(app, user: str):
    client = app.test_client()
    assert client.post("/sign-in", data={"username": user, "password": PASSWORDS[user]}).status_code == 302
    return client


def test_the_register_lists_filters_and_exports_the_follow_ups(follow_up_site):
    app, refs = follow_up_site
    siri = _client(app, "siri")
    assert 'href="/follow-ups"' in siri.get("/tasks").get_data(as_text=True)  # the menu leads there
    page = siri.get("/follow-ups").get_data(as_text=True)  # by default those not done
    assert "Sende avtalen på høring" in page and "Lage utkast til plan" not in page
    assert "Vest-Vikens oppfølging" not in page  # another community's
    assert "10.09.2025" in page and "Forsinket" in page
    everything = siri.get("/follow-ups?status=all").get_data(as_text=True)
    assert "Sende avtalen på høring" in everything and "Lage utkast til plan" in everything
    assert "Vest-Vikens oppfølging" not in everything
    late = siri.get("/follow-ups?status=late").get_data(as_text=True)
    assert "Sende avtalen på høring" in late and "Lage utkast til plan" not in late
    done = siri.get("/follow-ups?status=done").get_data(as_text=True)
    assert "Lage utkast til plan" in done and "Sende avtalen på høring" not in done
    au = siri.get("/follow-ups?committee=AU&status=all").get_data(as_text=True)
    assert "Lage utkast til plan" in au and "Sende avtalen på høring" not in au
    mine = siri.get("/follow-ups?status=all&responsible=per").get_data(as_text=True)
    assert "Sende avtalen på høring" in mine and "Lage utkast til plan" not in mine
    au_role = siri.get("/follow-ups?status=all&responsible=AU").get_data(as_text=True)
    assert "Lage utkast til plan" in au_role and "Sende avtalen på høring" not in au_role
    assert siri.get("/follow-ups?status=nonsense").status_code == 400
    assert siri.get("/follow-ups?committee=XYZ").status_code == 400

    export = siri.get("/follow-ups.csv?status=late")
    assert export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert [(r["Sak"], r["Utvalg"], r["Hva skal gjøres"], r["Ansvarlig"], r["Frist"], r["Status"])
            for r in rows] == [(refs["first"], "SSU", "Sende avtalen på høring", "per", "10.09.2025", "Forsinket")]
    everything = siri.get("/follow-ups.csv?status=all").get_data(as_text=True)
    assert "Lage utkast til plan" in everything and "Utkastet er sendt AU." in everything
    assert "Vest-Vikens oppfølging" not in everything

    # the case page shows its follow-ups
    case_page = siri.get(f"/cases?q={refs['first']}").get_data(as_text=True)
    start = case_page.index("/cases/", case_page.index("<tbody>")) + len("/cases/")
    case_id = int(case_page[start:case_page.index('"', start)])
    shown = siri.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Sende avtalen på høring" in shown and "10.09.2025" in shown

    # English
    english = siri.get("/follow-ups?lang=en").get_data(as_text=True)
    assert "<h1>Follow-ups</h1>" in english and "What is to be done" in english and "Late" in english
    nynorsk = siri.get("/follow-ups?lang=nn").get_data(as_text=True)
    assert "Kva skal gjerast" in nynorsk and "Forseinka" in nynorsk

    admin = _client(app, "admin").get("/follow-ups").get_data(as_text=True)
    assert "Vest-Vikens oppfølging" in admin


def test_an_applicant_may_not_open_the_register(follow_up_site):
    app, _refs = follow_up_site
    ada = _client(app, "ada")
    assert ada.get("/follow-ups").status_code == 403
    assert ada.get("/follow-ups.csv").status_code == 403
    assert 'href="/follow-ups"' not in ada.get("/tasks").get_data(as_text=True)
