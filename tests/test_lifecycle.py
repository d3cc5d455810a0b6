"""Instance lifecycle around the happy path: cancel, status, connectors' parameter checks."""

from __future__ import annotations

import pytest

from engine.connectors import ConnectorError, ConnectorRegistry
from engine.errors import InstanceStateError, NotAuthorisedError, TaskNotOpenError
from tests.bpmn_builder import chain, definitions, end, process, start, timer, user_task


def test_cancel_closes_tasks_and_timers_and_is_final(rt, deploy):
    boundary = f'<bpmn:boundaryEvent id="late" attachedToRef="work">{timer("duration", chr(39) + "P1D" + chr(39))}' \
               "</bpmn:boundaryEvent>"
    deploy({"c.bpmn": definitions(process("c", start(), user_task("work"), boundary, end(), end("late_end"),
                                          chain("start", "work", "end"), chain("late", "late_end")))})
    iid = rt.start("c", actor="ada")
    task = rt.tasks(iid)[0]
    assert rt.instance(iid).timers
    with pytest.raises(NotAuthorisedError):
        rt.cancel(iid, "knut")  # neither admin nor the starter
    rt.cancel(iid, "ada", reason="trukket")
    view = rt.instance(iid)
    assert (view.status, view.tasks, view.timers) == ("cancelled", [], [])
    assert view.ended_at is not None
    with pytest.raises(TaskNotOpenError):
        rt.complete(task.id, "ada", {})
    with pytest.raises(InstanceStateError):
        rt.cancel(iid, "admin")
    with pytest.raises(InstanceStateError):
        rt.retry(iid, "admin")
    assert [e["details"]["reason"] for e in rt.audit(iid) if e["action"] == "cancel"] == ["trukket"]


def test_connector_parameters_are_typed():
    registry = ConnectorRegistry()

    @registry.register("ledger.reserve")
    def reserve(project: str, amount: int) -> dict:
        """Reserve an amount for a project."""
        return {"project": project, "amount": amount}

    assert registry.call("ledger.reserve", {"project": "P1", "amount": "1200"}) == {"project": "P1", "amount": 1200}
    with pytest.raises(ConnectorError, match="must be int"):
        registry.call("ledger.reserve", {"project": "P1", "amount": "mye"})
    with pytest.raises(ConnectorError, match="takes no parameter"):
        registry.call("ledger.reserve", {"project": "P1", "amount": 1, "extra": 2})
    with pytest.raises(ConnectorError, match="unknown connector"):
        registry.call("ledger.nope", {})
    assert registry.get("ledger.reserve").description == "Reserve an amount for a project."
