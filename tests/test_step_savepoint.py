"""A step is all or nothing: what a failing step wrote through the unit's session is rolled back with it
(a SAVEPOINT per task run), the instance goes to ``error`` naming the element, and ``retry`` runs the step
again on a clean slate. Connectors learn where they run from an explicit ``ctx`` (StepContext)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from community.connectors import ledger
from community.records import LedgerEntry
from engine.connectors import ConnectorError, ConnectorRegistry, StepContext
from engine.models import HumanTask
from tests.bpmn_builder import chain, definitions, end, process, script_task, service_task, start, user_task

_meta = MetaData()
WRITES = Table("test_step_writes", _meta, Column("id", Integer, primary_key=True), Column("note", String(50)),
               Column("instance_id", Integer), Column("task_id", String(64)), Column("actor", String(50)))


@pytest.fixture
def failing(db_engine, connectors: ConnectorRegistry) -> dict:
    """``test.write`` writes a row through the step's session, then raises while ``failing["on"]``;
    ``test.gate`` only raises while it is on."""
    _meta.create_all(db_engine)
    state = {"on": True}

    def write(note: str, ctx: StepContext) -> dict:
        ctx.session.execute(insert(WRITES).values(note=note, instance_id=ctx.instance_id, task_id=ctx.task_id,
                                                  actor=ctx.actor))
        if state["on"]:
            raise RuntimeError("the archive is down")
        return {"note": note}

    def gate() -> bool:
        if state["on"]:
            raise RuntimeError("the budget check is down")
        return True

    connectors.register("test.write", write)
    connectors.register("test.gate", gate)
    return state


def _writes(rt) -> list[tuple]:
    with rt.Session() as s:
        return [tuple(r) for r in s.execute(select(WRITES.c.note, WRITES.c.instance_id, WRITES.c.task_id,
                                                   WRITES.c.actor))]


def test_ctx_is_not_a_bpmn_parameter_and_is_required():
    reg = ConnectorRegistry()
    seen = []
    reg.register("t.ctx", lambda amount, ctx: seen.append((amount, ctx)) or amount)
    assert set(reg.get("t.ctx").params) == {"amount"} and reg.get("t.ctx").takes_context
    with pytest.raises(ConnectorError, match="ctx"):
        reg.call("t.ctx", {"amount": 1, "ctx": "forged"})
    with pytest.raises(ConnectorError, match="workflow step"):
        reg.call("t.ctx", {"amount": 1})
    context = StepContext(session=None)  # type: ignore[arg-type]
    assert reg.call("t.ctx", {"amount": 2}, context) == 2 and seen == [(2, context)]
    assert callable(context.now) and context.instance_id is None and context.task_id is None


def test_a_failing_step_writes_nothing_and_retry_runs_it_on_a_clean_slate(rt, deploy, failing):
    deploy({"w.bpmn": definitions(process("archive", start(), service_task("store", "test.write", note=("str", "'a'")),
                                          end(), chain("start", "store", "end")))})
    iid = rt.start("archive", actor="ada")
    view = rt.instance(iid)
    assert view.status == "error" and view.error["element"] == "store"
    assert "the archive is down" in view.error["message"]
    assert _writes(rt) == []
    for _ in range(3):
        assert rt.retry(iid, "admin") == "error"
        assert _writes(rt) == []
    assert [e["action"] for e in rt.audit(iid)].count("error") == 4
    failing["on"] = False
    assert rt.retry(iid, "admin") == "completed"
    [(note, instance_id, task_id, actor)] = _writes(rt)
    assert (note, instance_id, actor) == ("a", iid, "admin") and task_id
    assert rt.instance(iid).data["result"] == {"note": "a"}


def test_a_rollback_keeps_what_the_unit_did_before_the_step(rt, deploy, failing):
    """Completing a task whose successor fails: the submission, claim and audit of the completion stay."""
    deploy({"h.bpmn": definitions(process(
        "handin", start(), user_task("fill"), service_task("store", "test.write", note=("str", "text")), end(),
        chain("start", "fill", "store", "end")))})
    iid = rt.start("handin")
    task = rt.tasks(iid)[0]
    view = rt.complete(task.id, "ada", {"text": "kept"})
    assert view.status == "error" and view.error["element"] == "store" and view.tasks == []
    assert _writes(rt) == []
    assert [e["details"]["data"] for e in rt.audit(iid) if e["action"] == "complete"] == [{"text": "kept"}]
    with rt.Session() as s:
        row = s.scalar(select(HumanTask).where(HumanTask.task_id == task.id))
        assert (row.status, row.claimed_by, row.completed_by) == ("completed", "ada", "ada")
    assert rt.instance(iid).data["text"] == "kept"
    failing["on"] = False
    assert rt.retry(iid, "admin") == "completed"
    assert [w[0] for w in _writes(rt)] == ["kept"]


def _ledger_setup(rt, connectors: ConnectorRegistry) -> None:
    ledger.register(connectors)
    rt.call_connector("ledger.allocate", {"year": 2025, "amount": 1000, "reference": "HSØ 2025"})


def _reservations(rt) -> list[int]:
    with rt.Session() as s:
        return list(s.scalars(select(LedgerEntry.amount).where(LedgerEntry.kind == "reservation")))


def test_a_reservation_is_not_made_twice_through_retries(rt, deploy, connectors, failing):
    """ledger.reserve, then a script that fails in the same engine-step run: the reservation's task
    completed and stays (once); retries run only the failing script."""
    _ledger_setup(rt, connectors)
    deploy({"r.bpmn": definitions(process(
        "award", start(),
        service_task("reserve", "ledger.reserve", year=("int", "2025"), amount=("int", "300"),
                     purpose=("str", "'Fastlegeseminar'")),
        script_task("check", "checked = connector('test.gate')"), end(), chain("start", "reserve", "check", "end")))})
    iid = rt.start("award")
    assert rt.instance(iid).error["element"] == "check"
    for _ in range(3):
        assert rt.retry(iid, "admin") == "error"
        assert _reservations(rt) == [300]
    failing["on"] = False
    assert rt.retry(iid, "admin") == "completed"
    assert _reservations(rt) == [300]
    assert rt.call_connector("ledger.balances", {"year": 2025})["free"] == 700


def test_a_script_that_reserves_and_then_fails_reserves_nothing_until_it_succeeds(rt, deploy, connectors, failing):
    _ledger_setup(rt, connectors)
    script = ("r = connector('ledger.reserve', year=2025, amount=300, purpose='Fastlegeseminar')\n"
              "checked = connector('test.gate')")
    deploy({"s.bpmn": definitions(process("award2", start(), script_task("reserve_and_check", script), end(),
                                          chain("start", "reserve_and_check", "end")))})
    iid = rt.start("award2")
    view = rt.instance(iid)
    assert view.status == "error" and view.error["element"] == "reserve_and_check"
    assert _reservations(rt) == []
    for _ in range(3):
        assert rt.retry(iid, "admin") == "error"
        assert _reservations(rt) == []
    failing["on"] = False
    assert rt.retry(iid, "admin") == "completed"
    assert _reservations(rt) == [300]
    with rt.Session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.instance_id == iid)) == 1


def test_a_database_error_in_a_step_is_rolled_back_and_the_unit_goes_on(rt, deploy, connectors, failing):
    """On PostgreSQL a failed statement aborts the transaction; the savepoint rollback recovers it, so the
    instance is still put in error (and not the whole call refused)."""

    def duplicate(ctx: StepContext) -> None:
        ctx.session.execute(insert(WRITES).values(id=1, note="first"))
        ctx.session.execute(insert(WRITES).values(id=1, note="again"))  # primary key violation

    connectors.register("test.duplicate", duplicate)
    deploy({"d.bpmn": definitions(process("dup", start(), service_task("twice", "test.duplicate"), end(),
                                          chain("start", "twice", "end")))})
    iid = rt.start("dup")
    view = rt.instance(iid)
    assert view.status == "error" and view.error["element"] == "twice" and "IntegrityError" in view.error["message"]
    assert _writes(rt) == []


def test_the_instance_row_changed_by_a_failing_step_is_restored_and_still_takes_the_error(rt, deploy, failing,
                                                                                         connectors):
    """The rollback expires the instance row the unit holds (the step changed it); the error is set after
    it, so it is written, and the step's change to the row is gone."""
    from engine.models import ProcessInstance

    def retitle(ctx: StepContext) -> None:
        ctx.session.get(ProcessInstance, ctx.instance_id).title = "changed by the failed step"
        ctx.session.flush()
        raise RuntimeError("after the title")

    connectors.register("test.retitle", retitle)
    deploy({"t.bpmn": definitions(process("titled", start(), service_task("retitle", "test.retitle"), end(),
                                          chain("start", "retitle", "end")))})
    iid = rt.start("titled", title="Original")
    view = rt.instance(iid)
    assert (view.status, view.error["element"], view.title) == ("error", "retitle", "Original")
    assert "after the title" in view.error["message"]
    assert [e["action"] for e in rt.audit(iid)] == ["start", "error"]
