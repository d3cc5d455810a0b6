"""A connector sends a message (``ctx.send_message``) to one instance: delivered after its step in the same
transaction, to that instance only (not the oldest waiting one), and dropped when the step fails."""

from __future__ import annotations

import pytest

from engine.connectors import ConnectorRegistry, StepContext
from tests.bpmn_builder import (
    catch_event,
    chain,
    definitions,
    end,
    message,
    message_event,
    process,
    service_task,
    start,
)


@pytest.fixture
def sending(rt, deploy, connectors: ConnectorRegistry) -> dict:
    state = {"fail": False}

    def send(target: int, text: str, *, ctx: StepContext) -> dict:
        ctx.send_message("note", {"text": text}, to=target)
        if state["fail"]:
            raise RuntimeError("the step fails after sending")
        return {"sent": True}

    connectors.register("test.send", send)
    deploy({"w.bpmn": definitions(message("msg_note", "note"), process(
        "waiter", start(), catch_event("wait", message_event("msg_note", variable="note")), end(),
        chain("start", "wait", "end")))})
    deploy({"s.bpmn": definitions(process(
        "sender", start(), service_task("send", "test.send", target=("int", "target"), text=("str", "text")), end(),
        chain("start", "send", "end")))})
    return state


def test_a_connector_message_reaches_only_the_instance_it_names(rt, sending):
    first, second = rt.start("waiter"), rt.start("waiter")
    sender = rt.start("sender", {"target": second, "text": "to the second"})
    assert rt.instance(sender).status == "completed"
    assert rt.instance(second).data["note"] == {"text": "to the second"}
    assert rt.instance(first).status == "waiting"  # the older waiter did not take it
    [sent] = rt.messages()
    assert (sent["sender_instance_id"], sent["target_instance_id"], sent["status"]) == (sender, second, "delivered")

    # a step that fails after sending sends nothing; its retry sends once
    sending["fail"] = True
    failed = rt.start("sender", {"target": first, "text": "again"})
    assert rt.instance(failed).status == "error" and rt.instance(first).status == "waiting"
    assert len(rt.messages()) == 1
    sending["fail"] = False
    rt.retry(failed, actor="admin")
    assert rt.instance(first).data["note"] == {"text": "again"} and rt.instance(failed).status == "completed"

    # outside any process too; an instance that does not wait keeps it as undeliverable
    result = rt.call_connector("test.send", {"target": first, "text": "late"})
    assert result == {"sent": True}
    assert [m["status"] for m in rt.messages()][-1] == "undeliverable"
