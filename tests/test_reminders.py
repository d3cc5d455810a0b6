"""Task reminders and overdue notices: on the right working days, once each, by real SMTP."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from engine import clock
from engine.mail import dispatch_outbox, outbox
from engine.reminders import send_task_reminders
from tests.bpmn_builder import chain, definitions, end, process, start, user_task


def _deploy_due(deploy, due_expression: str) -> None:
    task = user_task("status_report", "Statusrapport",
                     properties={"samflyt.dueDate": due_expression, "samflyt.reminders": "10,2"})
    deploy({"due.bpmn": definitions(process("report", start(), task, end(),
                                            chain("start", "status_report", "end"), lanes={"Applicant": [
                                                "status_report"]}))})


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day + "T08:00:00").replace(tzinfo=clock.LOCAL_TZ)


def _next_notice(rt, instance_id: int):
    from engine.models import HumanTask

    with rt.Session() as s:
        return s.scalars(select(HumanTask.next_notice_at).where(HumanTask.instance_id == instance_id)).first()


def _pass(rt, day: str, settings) -> dict[str, int]:
    with clock.frozen_at(_at(day)):
        counts = send_task_reminders(rt.WriteSession)
        dispatch_outbox(rt.WriteSession, settings)
    return counts


def test_reminders_before_1_december_2025_and_the_overdue_notice(rt, deploy, smtp):
    inbox, settings = smtp()
    rt.add_user("ada", roles=["applicant"], email="ada@horten.kommune.no", display_name="Ada")
    rt.add_user("ola", roles=["applicant"], email="ola@larvik.kommune.no")
    _deploy_due(deploy, "'2025-12-01'")  # a Monday
    with clock.frozen_at(datetime(2025, 11, 1, 9, 0, tzinfo=UTC)):
        iid = rt.start("report")
    assert _pass(rt, "2025-11-14", settings) == {}
    assert _next_notice(rt, iid) == datetime(2025, 11, 17, tzinfo=clock.LOCAL_TZ)
    assert _pass(rt, "2025-11-17", settings) == {"reminder": 1}  # 10 working days before
    assert _next_notice(rt, iid) == datetime(2025, 11, 27, tzinfo=clock.LOCAL_TZ)  # the scan skips it till then
    assert _pass(rt, "2025-11-18", settings) == {}  # once
    assert _pass(rt, "2025-11-27", settings) == {"reminder": 1}  # 2 working days before
    rt.claim(rt.tasks(iid)[0].id, "ada")  # from now on only the one who claimed it hears about it
    assert _pass(rt, "2025-12-01", settings) == {}  # due today: not overdue yet
    assert _pass(rt, "2025-12-02", settings) == {"overdue": 1}
    assert _pass(rt, "2025-12-03", settings) == {}
    assert _next_notice(rt, iid) is None  # nothing more to send
    subjects = [(e.rcpt_tos[0], e.content.decode("utf-8", "replace")) for e in inbox.messages]
    assert [to for to, _ in subjects] == ["ada@horten.kommune.no", "ola@larvik.kommune.no"] * 2 + \
        ["ada@horten.kommune.no"]
    assert all(m["status"] == "sent" for m in outbox(rt.Session))
    actions = [e["action"] for e in rt.audit(iid) if e["action"] in ("task_reminder", "task_overdue")]
    assert actions == ["task_reminder", "task_reminder", "task_overdue"]


def test_a_due_date_on_a_holiday_moves_and_reminders_follow(rt, deploy, smtp):
    inbox, settings = smtp()
    rt.add_user("ada", roles=["applicant"], email="ada@horten.kommune.no")
    _deploy_due(deploy, "deadline(date(2025, 12, 25))")  # Christmas Day -> Monday 29 December
    with clock.frozen_at(datetime(2025, 11, 1, 9, 0, tzinfo=UTC)):
        iid = rt.start("report")
    assert rt.tasks(iid)[0].due_at == datetime(2025, 12, 29, 23, 59, 59, tzinfo=clock.LOCAL_TZ)
    assert _pass(rt, "2025-12-10", settings) == {}
    assert _pass(rt, "2025-12-11", settings) == {"reminder": 1}  # 10 working days before 29.12 (24.12 counts)
    assert _pass(rt, "2025-12-22", settings) == {}
    assert _pass(rt, "2025-12-23", settings) == {"reminder": 1}  # 2 working days before
    assert len(inbox.messages) == 2


def test_a_task_created_after_its_first_reminder_day_gets_one_mail(rt, deploy, smtp):
    inbox, settings = smtp()
    rt.add_user("ada", roles=["applicant"], email="ada@horten.kommune.no")
    _deploy_due(deploy, "'2025-12-01'")
    with clock.frozen_at(_at("2025-11-28")):
        rt.start("report")
    assert _pass(rt, "2025-11-28", settings) == {"reminder": 1}
    assert _pass(rt, "2025-11-29", settings) == {}
    assert len(inbox.messages) == 1


def test_a_task_that_comes_back_in_a_loop_is_reminded_again(rt, deploy, smtp):
    """A report returned for changes is a fresh task: its reminders and overdue notice start over."""
    from tests.bpmn_builder import flow, gateway

    inbox, settings = smtp()
    rt.add_user("ada", roles=["applicant"], email="ada@horten.kommune.no")
    task = user_task("status_report", "Statusrapport",
                     properties={"samflyt.dueDate": "'2025-12-01'", "samflyt.reminders": "2"})
    deploy({"loop.bpmn": definitions(process(
        "report_loop", start(), task, gateway("exclusive", "approved", default="to_end"), end(),
        flow("start", "status_report"), flow("status_report", "approved"),
        flow("approved", "status_report", condition="returned", id="back"), flow("approved", "end", id="to_end"),
        lanes={"Applicant": ["status_report"]}))})
    with clock.frozen_at(_at("2025-11-20")):
        instance = rt.start("report_loop")
    assert _pass(rt, "2025-11-27", settings) == {"reminder": 1}
    [open_task] = rt.tasks(instance)
    with clock.frozen_at(_at("2025-11-27")):
        rt.complete(open_task.id, "ada", {"returned": True})
    assert _pass(rt, "2025-11-27", settings) == {"reminder": 1}  # the returned report is reminded again
    assert _pass(rt, "2025-12-02", settings) == {"overdue": 1}
    assert len(inbox.messages) == 3
