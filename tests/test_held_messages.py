"""A message for an instance in error is held for it and delivered when the instance runs again (issue
"Failure paths", point 8): before, it was stored as undeliverable and never reached the case."""

from __future__ import annotations

from engine.views import MessageResult
from tests.bpmn_builder import (
    catch_event,
    chain,
    definitions,
    end,
    flow,
    gateway,
    message,
    message_event,
    process,
    start,
    user_task,
)

POST = ('<bpmn:userTask id="fill"><bpmn:extensionElements><spiffworkflow:postScript>total = amount / divisor'
        "</spiffworkflow:postScript></bpmn:extensionElements></bpmn:userTask>")
HELD = definitions(
    message("msg_decision", "decision"),
    process("held", start(), gateway("parallel", "split"), POST,
            catch_event("await_decision", message_event("msg_decision", variable="decision")),
            gateway("parallel", "join"), user_task("read"), end(),
            chain("start", "split"), flow("split", "fill"), flow("split", "await_decision"),
            flow("fill", "join"), flow("await_decision", "join"), chain("join", "read", "end")))


def test_a_message_to_an_instance_in_error_is_held_and_delivered_after_retry(rt, deploy):
    deploy({"held.bpmn": HELD})
    iid = rt.start("held", {"divisor": 0})
    fill = next(t for t in rt.tasks(iid) if t.name == "fill")
    assert rt.complete(fill.id, "ada", {"amount": 10}).status == "error"
    result = rt.send_message("decision", {"granted": True})
    assert result == MessageResult(result.id, "held", iid)
    assert [(m["status"], m["target_instance_id"]) for m in rt.messages()] == [("held", iid)]
    assert "decision" not in rt.instance(iid).data
    assert [e["action"] for e in rt.audit(iid)].count("message_held") == 1

    rt.retry(iid, "admin")
    view = rt.instance(iid)
    assert view.status == "running" and view.data["decision"] == {"granted": True}
    assert [(m["status"], m["target_instance_id"]) for m in rt.messages()] == [("delivered", iid)]
    assert len(rt.messages()) == 1  # the held row was delivered, not copied
    assert rt.complete(fill.id, "ada", {"amount": 10, "divisor": 2}).status == "running"
    assert [t.name for t in rt.tasks(iid)] == ["read"]


def test_a_running_instance_still_takes_the_message_before_one_in_error(rt, deploy):
    deploy({"held.bpmn": HELD})
    broken = rt.start("held", {"divisor": 0})
    rt.complete(next(t for t in rt.tasks(broken) if t.name == "fill").id, "ada", {"amount": 1})
    healthy = rt.start("held", {"divisor": 1})
    assert rt.send_message("decision", {"granted": False}).instance_id == healthy
    assert rt.instance(healthy).data["decision"] == {"granted": False}
    assert rt.instance(broken).status == "error"
