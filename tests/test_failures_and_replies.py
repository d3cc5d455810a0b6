"""Edge cases found in review: replies within one transaction, failures while a task completes,
correlation of plain waits, instances in error left alone by timers, claims on closed tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine import clock
from engine.errors import InstanceStateError, TaskNotOpenError
from tests.bpmn_builder import (
    catch_event,
    chain,
    correlation,
    definitions,
    end,
    event_start,
    message,
    message_event,
    process,
    script_task,
    start,
    throw_event,
    timer,
    user_task,
)


def test_an_immediate_reply_reaches_the_asker_in_the_same_transaction(rt, deploy):
    deploy({"ask.bpmn": definitions(
        message("msg_request", "request"), message("msg_reply", "reply"),
        correlation("case_key", "case_id", {"msg_request": "case_id", "msg_reply": "case_id"}),
        process("asker", start("a_start"),
                throw_event("ask", message_event("msg_request", payload="{'case_id': case_id}")),
                catch_event("await_reply", message_event("msg_reply", variable="reply")), user_task("read"),
                end("a_end"), chain("a_start", "ask", "await_reply", "read", "a_end")),
        process("answerer", event_start("on_request", message_event("msg_request", variable="request")),
                script_task("decide", "case_id = request['case_id']\nanswer = 'ja'"),
                throw_event("answer", message_event("msg_reply", payload="{'case_id': case_id, 'answer': answer}")),
                end("b_end"), chain("on_request", "decide", "answer", "b_end")))})
    asker = rt.start("asker", {"case_id": 3})
    view = rt.instance(asker)
    assert view.status == "running" and view.data["reply"] == {"case_id": 3, "answer": "ja"}
    assert [m["status"] for m in rt.messages()] == ["delivered", "delivered"]


def test_a_plain_wait_takes_a_message_sent_with_correlation_values(rt, deploy):
    deploy({"plain.bpmn": definitions(message("msg_note", "note"), process(
        "plain", start(), catch_event("wait", message_event("msg_note", variable="note")), user_task("read"), end(),
        chain("start", "wait", "read", "end")))})
    iid = rt.start("plain")
    result = rt.send_message("note", {"text": "hei"}, correlations={"case_id": 7})
    assert (result.status, result.instance_id) == ("delivered", iid)


def test_a_failure_while_a_task_completes_puts_the_instance_in_error_and_retry_resumes(rt, deploy, connectors):
    calls = {"n": 0}

    def due_in() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("calendar service down")
        return "PT1H"

    connectors.register("calendar.due_in", due_in)
    wait = catch_event("wait", timer("duration", "connector('calendar.due_in')"))
    deploy({"f.bpmn": definitions(process("fails", start(), user_task("fill"), wait, user_task("after"), end(),
                                          chain("start", "fill", "wait", "after", "end")))})
    iid = rt.start("fails")
    task = rt.tasks(iid)[0]
    view = rt.complete(task.id, "ada", {"text": "kept"})  # the timer after it cannot be prepared
    assert view.status == "error" and view.error["element"] == "wait"
    assert "calendar service down" in view.error["message"]
    assert [e["details"]["data"] for e in rt.audit(iid) if e["action"] == "complete"] == [{"text": "kept"}]
    with pytest.raises(TaskNotOpenError):
        rt.complete(task.id, "ada", {})
    t0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    with clock.frozen_at(t0):
        assert rt.retry(iid, "admin") == "waiting"
    assert rt.instance(iid).timers[0]["due_at"] == (t0 + timedelta(hours=1)).isoformat()
    assert rt.fire_due_timers(t0 + timedelta(hours=1)) == [iid]
    assert [t.name for t in rt.tasks(iid)] == ["after"]
    assert rt.instance(iid).data["text"] == "kept"


def test_a_failing_script_on_the_completed_task_keeps_it_open(rt, deploy):
    post = ('<bpmn:userTask id="fill"><bpmn:extensionElements><spiffworkflow:postScript>total = amount / divisor'
            "</spiffworkflow:postScript></bpmn:extensionElements></bpmn:userTask>")
    deploy({"p.bpmn": definitions(process("post", start(), post, end(), chain("start", "fill", "end")))})
    iid = rt.start("post", {"divisor": 0})
    task = rt.tasks(iid)[0]
    view = rt.complete(task.id, "ada", {"amount": 10})
    assert view.status == "error" and "ZeroDivisionError" in view.error["message"]
    assert [t.id for t in view.tasks] == [task.id]  # still open, with the data it had
    with pytest.raises(InstanceStateError, match="retry"):
        rt.complete(task.id, "ada", {"amount": 10})


def test_timers_leave_an_instance_in_error_untouched(rt, deploy, connectors):
    connectors.register("fail.always", lambda: 1 / 0)
    boundary = f'<bpmn:boundaryEvent id="late" attachedToRef="work" cancelActivity="false">' \
               f'{timer("duration", chr(39) + "PT1H" + chr(39))}</bpmn:boundaryEvent>'
    deploy({"e.bpmn": definitions(process(
        "err", start(), user_task("work"), boundary, script_task("boom", "connector('fail.always')"), end(),
        end("late_end"), chain("start", "work", "end"), chain("late", "boom", "late_end")))})
    t0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    with clock.frozen_at(t0):
        iid = rt.start("err")
    assert rt.fire_due_timers(t0 + timedelta(hours=1)) == [iid]  # the boundary path fails
    assert rt.instance(iid).status == "error"
    with rt.Session() as s:
        from engine.models import ProcessInstance

        version = s.get(ProcessInstance, iid).lock_version
    for hours in (2, 3, 4):
        assert rt.fire_due_timers(t0 + timedelta(hours=hours)) == []
    with rt.Session() as s:
        assert s.get(ProcessInstance, iid).lock_version == version


def test_unclaim_and_assign_refuse_a_completed_task(rt, deploy):
    deploy({"u.bpmn": definitions(process("u", start(), user_task("one"), user_task("two"), end(),
                                          chain("start", "one", "two", "end")))})
    iid = rt.start("u")
    task = rt.tasks(iid)[0]
    rt.claim(task.id, "ada")
    rt.complete(task.id, "ada", {})
    with pytest.raises(TaskNotOpenError):
        rt.unclaim(task.id, "ada")
    with pytest.raises(TaskNotOpenError):
        rt.assign(task.id, "per", "admin")
