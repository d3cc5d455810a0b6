"""BPMN event constructs, one small diagram each, driven through the Runtime.

Every runtime call is its own transaction that loads and saves the workflow, so each test also checks
that waits (timers, messages, signals, boundary events) survive the round trip through the database.
Time moves only through ``clock.set_now`` and ``rt.fire_due_timers(now=...)``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine import clock
from engine.errors import TaskNotOpenError
from engine.models import ProcessInstance
from tests.bpmn_builder import (
    boundary_event,
    catch_event,
    chain,
    correlation,
    definitions,
    end,
    error,
    error_ref,
    escalation,
    escalation_ref,
    event_start,
    flow,
    gateway,
    message,
    message_event,
    process,
    script_task,
    signal,
    signal_ref,
    start,
    subprocess,
    throw_event,
    timer,
    user_task,
)
from tests.worklist import only_task as _task
from tests.worklist import open_names as _open

T0 = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen_clock(rt):
    """Every test starts at T0; the ``rt`` fixture puts the clock back afterwards."""
    clock.set_now(T0)


def _complete(rt, iid: int, name: str, data: dict | None = None, actor: str = "admin"):
    return rt.complete(_task(rt, iid, name).id, actor, data or {})


def _timers(rt, iid: int) -> list[tuple[str, str, datetime]]:
    return [(t["task"], t["kind"], datetime.fromisoformat(t["due_at"])) for t in rt.instance(iid).timers]


def _actions(rt, iid: int, action: str) -> list[dict]:
    return [e for e in rt.audit(iid) if e["action"] == action]


# --------------------------------------------------------------------------- event-based gateway
def _event_gateway_bpmn() -> str:
    return definitions(
        message("msg_approve", "approve"),
        process(
            "evgw",
            start(),
            gateway("eventBased", "wait"),
            catch_event("got_message", message_event("msg_approve", variable="approval")),
            catch_event("got_timeout", timer("duration", "'P3D'")),
            script_task("by_message", "path = 'message'"),
            script_task("by_timer", "path = 'timer'"),
            end("end_message"),
            end("end_timer"),
            chain("start", "wait"),
            chain("wait", "got_message", "by_message", "end_message"),
            chain("wait", "got_timeout", "by_timer", "end_timer"),
        ),
    )


def test_event_gateway_message_wins(rt, deploy):
    deploy({"evgw.bpmn": _event_gateway_bpmn()})
    iid = rt.start("evgw", {"case": 1})
    assert rt.instance(iid).status == "waiting"
    assert _timers(rt, iid) == [("got_timeout", "duration", T0 + timedelta(days=3))]

    result = rt.send_message("approve", {"ok": True})
    assert (result.status, result.instance_id, result.started) == ("delivered", iid, False)

    inst = rt.instance(iid)
    assert inst.status == "completed"
    assert inst.data["path"] == "message"
    assert inst.data["approval"] == {"ok": True}
    assert inst.timers == []
    assert rt.fire_due_timers(now=T0 + timedelta(days=30)) == []
    assert rt.instance(iid).data["path"] == "message"


def test_event_gateway_timer_wins(rt, deploy):
    deploy({"evgw.bpmn": _event_gateway_bpmn()})
    iid = rt.start("evgw", {"case": 1})
    assert rt.fire_due_timers(now=T0 + timedelta(days=3) - timedelta(seconds=1)) == []
    assert rt.instance(iid).status == "waiting"

    assert rt.fire_due_timers(now=T0 + timedelta(days=3)) == [iid]
    inst = rt.instance(iid)
    assert inst.status == "completed"
    assert inst.data["path"] == "timer"
    assert "approval" not in inst.data
    assert inst.timers == []
    late = rt.send_message("approve", {"ok": True})
    assert late.status == "undeliverable"
    assert rt.instance(iid).data["path"] == "timer"


# --------------------------------------------------------------------------- boundary timers on a user task
def _boundary_timer_bpmn(interrupting: bool) -> str:
    follow_up = "escalate" if interrupting else "remind"
    return definitions(process(
        "bt",
        start(),
        user_task("review", "Review the application"),
        boundary_event("deadline", "review", timer("duration", "'PT1H'"), interrupting=interrupting),
        script_task("mark", f"path = '{follow_up}'"),
        user_task(follow_up),
        script_task("done", "reviewed = True"),
        end(),
        end("end_follow_up"),
        chain("start", "review", "done", "end"),
        chain("deadline", "mark", follow_up, "end_follow_up"),
    ))


def test_boundary_timer_interrupting_cancels_user_task(rt, deploy):
    deploy({"bt.bpmn": _boundary_timer_bpmn(interrupting=True)})
    iid = rt.start("bt")
    review = _task(rt, iid, "review")
    assert _timers(rt, iid) == [("deadline", "duration", T0 + timedelta(hours=1))]

    assert rt.fire_due_timers(now=T0 + timedelta(minutes=59)) == []
    assert _open(rt, iid) == ["review"]
    assert "path" not in rt.instance(iid).data

    assert rt.fire_due_timers(now=T0 + timedelta(hours=1)) == [iid]
    assert _open(rt, iid) == ["escalate"]
    inst = rt.instance(iid)
    assert inst.data["path"] == "escalate"
    assert inst.timers == []
    assert [e["details"]["element"] for e in _actions(rt, iid, "timer_fired")] == ["deadline"]
    with pytest.raises(TaskNotOpenError):
        rt.complete(review.id, "admin", {})

    inst = _complete(rt, iid, "escalate")
    assert inst.status == "completed"
    assert "reviewed" not in inst.data


def test_boundary_timer_non_interrupting_keeps_user_task(rt, deploy):
    deploy({"bt.bpmn": _boundary_timer_bpmn(interrupting=False)})
    iid = rt.start("bt")
    review = _task(rt, iid, "review")

    assert rt.fire_due_timers(now=T0 + timedelta(minutes=30)) == []
    assert _open(rt, iid) == ["review"]
    assert rt.fire_due_timers(now=T0 + timedelta(hours=2)) == [iid]
    assert _open(rt, iid) == ["remind", "review"]
    assert _task(rt, iid, "review").id == review.id
    assert rt.instance(iid).timers == []  # a duration fires once
    assert rt.fire_due_timers(now=T0 + timedelta(days=10)) == []
    assert _open(rt, iid) == ["remind", "review"]

    _complete(rt, iid, "remind")
    assert _open(rt, iid) == ["review"]
    inst = _complete(rt, iid, "review")
    assert inst.status == "completed"
    assert inst.data["reviewed"] is True


# --------------------------------------------------------------------------- intermediate timer events
def test_intermediate_timer_date(rt, deploy):
    deploy({"td.bpmn": definitions(process(
        "td", start(), catch_event("on_date", timer("date", "'2030-12-01T09:00:00'")),
        script_task("after", "fired = True"), end(), chain("start", "on_date", "after", "end")))})
    iid = rt.start("td")
    # A naive timeDate is Norwegian local time: 09:00 CET is 08:00 UTC.
    due = datetime(2030, 12, 1, 8, 0, tzinfo=UTC)
    assert _timers(rt, iid) == [("on_date", "date", due)]
    assert rt.timers()[0]["due_at"] == due.isoformat()

    assert rt.fire_due_timers(now=due - timedelta(seconds=1)) == []
    assert rt.instance(iid).status == "waiting"
    assert rt.fire_due_timers(now=due) == [iid]
    inst = rt.instance(iid)
    assert inst.status == "completed"
    assert inst.data["fired"] is True
    assert inst.timers == []


def test_intermediate_timer_durations_count_from_arrival(rt, deploy):
    deploy({"tdur.bpmn": definitions(process(
        "tdur", start(),
        catch_event("wait_hour", timer("duration", "'PT1H'")),
        user_task("check"),
        catch_event("wait_days", timer("duration", "'P3D'")),
        script_task("after", "fired = True"),
        end(), chain("start", "wait_hour", "check", "wait_days", "after", "end")))})
    iid = rt.start("tdur")
    assert _timers(rt, iid) == [("wait_hour", "duration", T0 + timedelta(hours=1))]
    assert rt.fire_due_timers(now=T0 + timedelta(minutes=59, seconds=59)) == []
    assert rt.fire_due_timers(now=T0 + timedelta(hours=1)) == [iid]
    assert _open(rt, iid) == ["check"]
    assert rt.instance(iid).timers == []

    t1 = T0 + timedelta(hours=5)
    clock.set_now(t1)
    _complete(rt, iid, "check")
    assert _timers(rt, iid) == [("wait_days", "duration", t1 + timedelta(days=3))]
    assert rt.fire_due_timers(now=t1 + timedelta(days=3) - timedelta(seconds=1)) == []
    assert rt.fire_due_timers(now=t1 + timedelta(days=3)) == [iid]
    inst = rt.instance(iid)
    assert inst.status == "completed"
    assert inst.data["fired"] is True


def _cycle_bpmn() -> str:
    """A non-interrupting R3/PT1H boundary timer: every hour, three times, a reminder while work is open."""
    return definitions(process(
        "cyc", start(),
        user_task("work"),
        boundary_event("every_hour", "work", timer("cycle", "'R3/PT1H'"), interrupting=False),
        script_task("count", "reminded = True"),
        user_task("remind"),
        end(), end("end_remind"),
        chain("start", "work", "end"),
        chain("every_hour", "count", "remind", "end_remind")))


def _reminders(rt, iid: int) -> int:
    return sum(1 for name in _open(rt, iid) if name == "remind")


def test_cycle_timer_fires_on_schedule(rt, deploy):
    deploy({"cyc.bpmn": _cycle_bpmn()})
    iid = rt.start("cyc")
    assert _timers(rt, iid) == [("every_hour", "cycle", T0 + timedelta(hours=1))]
    assert rt.fire_due_timers(now=T0 + timedelta(minutes=59)) == []
    assert _reminders(rt, iid) == 0

    for n in (1, 2, 3):
        assert rt.fire_due_timers(now=T0 + timedelta(hours=n)) == [iid]
        assert _reminders(rt, iid) == n
        expected = [("every_hour", "cycle", T0 + timedelta(hours=n + 1))] if n < 3 else []
        assert _timers(rt, iid) == expected  # after R3's third cycle no timer is left
    assert rt.fire_due_timers(now=T0 + timedelta(days=30)) == []
    assert _open(rt, iid) == ["remind", "remind", "remind", "work"]
    for task in rt.tasks(iid):
        rt.complete(task.id, "admin", {})
    assert rt.instance(iid).status == "completed"


def test_cycle_timer_late_tick_fires_once_not_a_burst(rt, deploy):
    """The scheduler was down for a month: each tick fires one cycle; three in all, never more."""
    deploy({"cyc.bpmn": _cycle_bpmn()})
    iid = rt.start("cyc")
    assert _timers(rt, iid) == [("every_hour", "cycle", T0 + timedelta(hours=1))]

    far = T0 + timedelta(days=30)
    assert rt.fire_due_timers(now=far) == [iid]
    assert _reminders(rt, iid) == 1
    [(name, kind, due)] = _timers(rt, iid)
    assert (name, kind) == ("every_hour", "cycle") and due <= far  # the next, missed cycle is still due
    assert rt.fire_due_timers(now=far) == [iid]
    assert _reminders(rt, iid) == 2
    assert rt.fire_due_timers(now=far) == [iid]
    assert _reminders(rt, iid) == 3
    assert rt.instance(iid).timers == []  # R3: all cycles used
    assert rt.fire_due_timers(now=far + timedelta(days=30)) == []
    assert _reminders(rt, iid) == 3
    assert len(_actions(rt, iid, "timer_fired")) == 3

    for task in rt.tasks(iid):
        rt.complete(task.id, "admin", {})
    assert rt.instance(iid).status == "completed"


def test_a_pass_excludes_only_instances_that_could_fire_again(rt, deploy):
    """The claim query excludes the pass's ``seen`` instances; under a backlog a set of every instance
    fired would grow with each claim (and so would the query). Only a late cycle, still due, stays."""
    deploy({"cyc.bpmn": _cycle_bpmn()})
    late = rt.start("cyc")
    with clock.frozen_at(T0 + timedelta(days=29, hours=23)):  # its first hour is due before the pass
        done = [rt.start("cyc") for _ in range(12)]  # more than one claim batch
    seen: set[int] = set()
    far = T0 + timedelta(days=30)
    assert sorted(rt.fire_due_timers(now=far, batch=5, seen=seen)) == sorted([late, *done])
    assert seen == {late}  # its next missed cycle is due already: not again in this pass
    assert rt.fire_due_timers(now=far, seen=seen) == []
    assert _reminders(rt, late) == 1 and all(_reminders(rt, i) == 1 for i in done)


# --------------------------------------------------------------------------- messages with correlation
def _request_reply_bpmn() -> str:
    return definitions(
        message("msg_request", "request"),
        message("msg_reply", "reply"),
        correlation("case_key", "case_id", {"msg_request": "case_id", "msg_reply": "case_id"}),
        process(
            "requester",
            start("req_start"),
            throw_event("send_request", message_event("msg_request", payload="{'case_id': case_id}")),
            catch_event("await_reply", message_event("msg_reply", variable="reply")),
            script_task("use_reply", "answer = reply['answer']"),
            end("req_end"),
            chain("req_start", "send_request", "await_reply", "use_reply", "req_end"),
        ),
        process(
            "responder",
            event_start("on_request", message_event("msg_request", variable="request")),
            script_task("take_case", "case_id = request['case_id']"),
            user_task("answer_request"),
            throw_event("send_reply", message_event(
                "msg_reply", payload="{'case_id': case_id, 'answer': answer}")),
            end("resp_end"),
            chain("on_request", "take_case", "answer_request", "send_reply", "resp_end"),
        ),
    )


def _instance_of(rt, process_id: str, case_id: int) -> int:
    """The one instance of ``process_id`` whose data holds ``case_id``."""
    with rt.Session() as s:
        ids = s.scalars(select(ProcessInstance.id).where(ProcessInstance.process_id == process_id)).all()
    found = [i for i in ids if rt.instance(i).data.get("case_id") == case_id]
    assert len(found) == 1, (process_id, case_id, found)
    return found[0]


def test_message_correlation_between_two_processes(rt, deploy):
    deploy({"reqrep.bpmn": _request_reply_bpmn()})
    req7 = rt.start("requester", {"case_id": 7})
    req8 = rt.start("requester", {"case_id": 8})
    assert rt.instance(req7).status == rt.instance(req8).status == "waiting"

    resp7 = _instance_of(rt, "responder", 7)
    resp8 = _instance_of(rt, "responder", 8)
    assert resp7 != resp8
    assert _open(rt, resp7) == _open(rt, resp8) == ["answer_request"]
    assert rt.instance(resp7).data["request"] == {"case_id": 7}
    sent = [(m["name"], m["status"], m["sender_instance_id"], m["target_instance_id"], m["correlations"])
            for m in rt.messages()]
    assert sent == [("request", "delivered", req7, resp7, {"case_id": 7}),
                    ("request", "delivered", req8, resp8, {"case_id": 8})]

    # Answer case 8 first: the reply must reach requester 8, not the older requester 7.
    assert _complete(rt, resp8, "answer_request", {"answer": "eight"}).status == "completed"
    assert rt.instance(req8).status == "completed"
    assert rt.instance(req8).data["answer"] == "eight"
    assert rt.instance(req8).data["reply"] == {"case_id": 8, "answer": "eight"}
    assert rt.instance(req7).status == "waiting"

    _complete(rt, resp7, "answer_request", {"answer": "seven"})
    assert rt.instance(req7).status == "completed"
    assert rt.instance(req7).data["answer"] == "seven"
    replies = [(m["status"], m["sender_instance_id"], m["target_instance_id"])
               for m in rt.messages() if m["name"] == "reply"]
    assert replies == [("delivered", resp8, req8), ("delivered", resp7, req7)]


def test_message_with_nobody_waiting_is_undeliverable(rt, deploy):
    deploy({"reqrep.bpmn": _request_reply_bpmn()})
    req7 = rt.start("requester", {"case_id": 7})
    result = rt.send_message("reply", {"case_id": 99, "answer": "lost"}, correlations={"case_id": 99})
    assert result.status == "undeliverable"
    assert result.instance_id is None
    listed = rt.messages(status="undeliverable")
    assert [(m["id"], m["name"], m["correlations"], m["target_instance_id"]) for m in listed] == [
        (result.id, "reply", {"case_id": 99}, None)]
    assert rt.instance(req7).status == "waiting"
    assert "reply" not in rt.instance(req7).data


# --------------------------------------------------------------------------- signals
def test_signal_thrown_in_one_branch_caught_in_the_other(rt, deploy):
    deploy({"sig.bpmn": definitions(
        signal("sig_ready", "ready"),
        process(
            "sig", start(),
            gateway("parallel", "fork"),
            catch_event("wait_ready", signal_ref("sig_ready")),
            script_task("after_signal", "heard = True"),
            user_task("prepare"),
            throw_event("announce", signal_ref("sig_ready")),
            gateway("parallel", "join"),
            end(),
            chain("start", "fork"),
            chain("fork", "wait_ready", "after_signal", "join"),
            chain("fork", "prepare", "announce", "join"),
            chain("join", "end"),
        ))})
    iid = rt.start("sig")
    assert _open(rt, iid) == ["prepare"]
    assert rt.instance(iid).status == "running"  # a human task is ready
    inst = _complete(rt, iid, "prepare", {"prepared": True})
    assert inst.status == "completed"
    assert inst.data["heard"] is True
    assert inst.data["prepared"] is True


# --------------------------------------------------------------------------- event subprocesses
def test_event_subprocess_interrupting_message_cancels_main_flow(rt, deploy):
    deploy({"esi.bpmn": definitions(
        message("msg_abort", "abort"),
        process(
            "esi", start(), user_task("work"), script_task("worked", "path = 'main'"), end(),
            chain("start", "work", "worked", "end"),
            subprocess(
                "on_abort",
                event_start("abort_start", message_event("msg_abort", variable="abort"), interrupting=True),
                script_task("aborting", "path = 'aborted'"),
                end("abort_end"),
                chain("abort_start", "aborting", "abort_end"),
                event=True),
        ))})
    iid = rt.start("esi")
    work = _task(rt, iid, "work")
    result = rt.send_message("abort", {"reason": "withdrawn"})
    assert (result.status, result.instance_id) == ("delivered", iid)
    inst = rt.instance(iid)
    assert inst.status == "completed"
    assert inst.tasks == []
    assert inst.data["path"] == "aborted"
    with pytest.raises(TaskNotOpenError):
        rt.complete(work.id, "admin", {})


def test_event_subprocess_interrupting_error_cancels_main_flow(rt, deploy):
    """An error thrown in one parallel branch starts the error event subprocess and cancels the other branch."""
    deploy({"ese.bpmn": definitions(
        error("err_invalid", "invalid", code="INVALID"),
        process(
            "ese", start(),
            gateway("parallel", "fork"),
            user_task("check"),
            gateway("exclusive", "valid", default="ok"),
            end("fail", error_ref("err_invalid")),
            user_task("paperwork"),
            gateway("parallel", "join"),
            script_task("finish", "path = 'main'"),
            end(),
            chain("start", "fork", "check", "valid"),
            flow("valid", "join", id="ok"),
            flow("valid", "fail", condition="not valid_input"),
            chain("fork", "paperwork", "join", "finish", "end"),
            subprocess(
                "on_error",
                event_start("error_start", error_ref("err_invalid"), interrupting=True),
                script_task("handle", "path = 'error handled'"),
                user_task("fix_up"),
                end("error_end"),
                chain("error_start", "handle", "fix_up", "error_end"),
                event=True),
        ))})
    iid = rt.start("ese")
    assert _open(rt, iid) == ["check", "paperwork"]
    paperwork = _task(rt, iid, "paperwork")
    _complete(rt, iid, "check", {"valid_input": False})
    assert _open(rt, iid) == ["fix_up"]  # paperwork was cancelled by the interrupting event subprocess
    assert rt.instance(iid).status == "running"
    with pytest.raises(TaskNotOpenError):
        rt.complete(paperwork.id, "admin", {})
    inst = _complete(rt, iid, "fix_up")
    assert inst.status == "completed", inst.error
    assert inst.data["path"] == "error handled"


def test_event_subprocess_non_interrupting_message_keeps_main_flow(rt, deploy):
    deploy({"esn.bpmn": definitions(
        message("msg_note", "note"),
        process(
            "esn", start(), user_task("work"), script_task("worked", "main_done = True"), end(),
            chain("start", "work", "worked", "end"),
            subprocess(
                "on_note",
                event_start("note_start", message_event("msg_note", variable="note"), interrupting=False),
                user_task("read_note"),
                end("note_end"),
                chain("note_start", "read_note", "note_end"),
                event=True),
        ))})
    iid = rt.start("esn")
    work = _task(rt, iid, "work")
    assert rt.send_message("note", {"text": "hello"}).status == "delivered"
    assert _open(rt, iid) == ["read_note", "work"]
    assert _task(rt, iid, "work").id == work.id
    _complete(rt, iid, "read_note")
    assert _open(rt, iid) == ["work"]
    assert rt.instance(iid).status == "running"
    inst = _complete(rt, iid, "work")
    assert inst.status == "completed"
    assert inst.data["main_done"] is True


# --------------------------------------------------------------------------- error and escalation boundaries
def test_error_end_event_in_subprocess_caught_by_boundary(rt, deploy):
    deploy({"eb.bpmn": definitions(
        error("err_reject", "reject", code="REJECTED", payload="{'why': reason}", variable="rejection"),
        process(
            "eb", start(),
            subprocess(
                "assess",
                start("assess_start"),
                script_task("decide", "reason = 'incomplete' if amount > 100 else None"),
                gateway("exclusive", "ok", default="accept"),
                end("assess_end"),
                end("assess_reject", error_ref("err_reject")),
                chain("assess_start", "decide", "ok"),
                flow("ok", "assess_end", id="accept"),
                flow("ok", "assess_reject", condition="reason is not None"),
            ),
            boundary_event("rejected", "assess", error_ref("err_reject")),
            script_task("on_ok", "path = 'accepted'"),
            script_task("on_error", "path = 'rejected'"),
            user_task("notify"),
            end(), end("end_rejected"),
            chain("start", "assess", "on_ok", "end"),
            chain("rejected", "on_error", "notify", "end_rejected"),
        ))})
    ok = rt.start("eb", {"amount": 50})
    assert rt.instance(ok).status == "completed"
    assert rt.instance(ok).data["path"] == "accepted"

    bad = rt.start("eb", {"amount": 500})
    assert _open(rt, bad) == ["notify"]
    inst = rt.instance(bad)
    assert inst.status == "running"
    assert inst.data["path"] == "rejected"
    assert inst.data["rejection"] == {"why": "incomplete"}
    assert _complete(rt, bad, "notify").status == "completed"


def test_escalation_caught_by_non_interrupting_boundary(rt, deploy):
    deploy({"esc.bpmn": definitions(
        escalation("esc_late", "late", code="LATE"),
        process(
            "esc", start(),
            subprocess(
                "handle",
                start("handle_start"),
                throw_event("raise_late", escalation_ref("esc_late")),
                user_task("continue_work"),
                end("handle_end"),
                chain("handle_start", "raise_late", "continue_work", "handle_end"),
            ),
            boundary_event("late", "handle", escalation_ref("esc_late"), interrupting=False),
            user_task("inform_manager"),
            script_task("after", "path = 'main'"),
            end(), end("end_escalated"),
            chain("start", "handle", "after", "end"),
            chain("late", "inform_manager", "end_escalated"),
        ))})
    iid = rt.start("esc")
    assert _open(rt, iid) == ["continue_work", "inform_manager"]
    _complete(rt, iid, "inform_manager")
    assert _open(rt, iid) == ["continue_work"]
    inst = _complete(rt, iid, "continue_work")
    assert inst.status == "completed"
    assert inst.data["path"] == "main"


# --------------------------------------------------------------------------- failing script and retry
def test_failing_script_sets_error_and_retry_resumes(rt, deploy, connectors):
    calls: list[int] = []

    @connectors.register("flaky.lookup")
    def lookup(case_id: int) -> dict:
        calls.append(case_id)
        if len(calls) == 1:
            raise ConnectionError("registry unavailable")
        return {"case_id": case_id, "owner": "ada"}

    deploy({"fail.bpmn": definitions(process(
        "fail", start(),
        script_task("prepare", "prepared = True"),
        script_task("call_registry", "owner = connector('flaky.lookup', case_id=case_id)['owner']"),
        user_task("confirm"),
        end(), chain("start", "prepare", "call_registry", "confirm", "end")))})
    iid = rt.start("fail", {"case_id": 3})
    inst = rt.instance(iid)
    assert inst.status == "error"
    assert inst.error["element"] == "call_registry"
    assert "registry unavailable" in inst.error["message"]
    assert inst.tasks == []
    assert inst.data["prepared"] is True
    assert "owner" not in inst.data
    assert [e["details"]["element"] for e in _actions(rt, iid, "error")] == ["call_registry"]

    assert rt.retry(iid, "admin") == "running"
    inst = rt.instance(iid)
    assert inst.error is None
    assert inst.data["owner"] == "ada"
    assert _open(rt, iid) == ["confirm"]
    assert calls == [3, 3]
    assert _complete(rt, iid, "confirm").status == "completed"
