"""State storage: SpiffWorkflow's sharp edges, each pinned by a test."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import inspect, select, text, update

from engine import clock
from engine.errors import TaskNotOpenError, ValidationError
from engine.models import AuditEvent, HumanTask, ProcessInstance
from engine.runtime import Runtime
from engine.serialization import default_serializer, dump_state
from engine.unit_of_work import Unit
from tests.bpmn_builder import chain, definitions, end, mi, process, script_task, start, timer, user_task

from .conftest import needs_pg


def _sequence(n: int, pid: str = "seq") -> str:
    ids = [f"t{i}" for i in range(1, n + 1)]
    return definitions(process(pid, start(), *[user_task(i) for i in ids], end(), chain("start", *ids, "end")))


def _complete_next(rt, instance_id: int, data: dict, actor: str = "ada"):
    task = rt.tasks(instance_id)[0]
    return rt.complete(task.id, actor, data)


def _row(rt, instance_id: int) -> ProcessInstance:
    with rt.Session() as s:
        return s.get(ProcessInstance, instance_id)


def _workflow(rt, instance_id: int):
    return rt.load_workflow(instance_id)


def test_state_is_stored_as_the_exact_json_text_written(rt, deploy):
    """The database hands back the state byte for byte: a jsonb column (which reorders keys and
    reformats) would fail this."""
    deploy({"seq.bpmn": _sequence(4)})
    iid = rt.start("seq", data={"start": 1})
    for i in range(3):
        _complete_next(rt, iid, {f"v{i}": i})
    columns = {c["name"]: c["type"] for c in inspect(rt.engine).get_columns("process_instances")}
    assert "JSON" not in str(columns["state"]).upper()
    state = _row(rt, iid).state
    assert state == dump_state(_workflow(rt, iid))
    assert json.dumps(json.loads(state), separators=(",", ":")) == state
    ready = _workflow(rt, iid).get_next_task(state=TaskState.READY)
    assert ready.data == {"start": 1, "v0": 0, "v1": 1, "v2": 2}
    assert rt.instance(iid).data == {"start": 1, "v0": 0, "v1": 1, "v2": 2}


@needs_pg
def test_jsonb_reorders_keys_and_loses_spiffworkflow_task_data(pg_engine):
    """Why the state column is text: SpiffWorkflow's own format restores task data as deltas in key
    order, and jsonb sorts keys, so the same state read back through jsonb has lost its data."""
    rt = Runtime(pg_engine)
    with TemporaryDirectory() as d:
        Path(d, "seq.bpmn").write_text(_sequence(4))
        rt.deploy([d])
    rt.add_user("ada")
    iid = rt.start("seq", data={"start": 1})
    for i in range(3):
        _complete_next(rt, iid, {f"v{i}": i})
    spiff_default = default_serializer.serialize_json(_workflow(rt, iid))
    ours = _row(rt, iid).state
    with pg_engine.begin() as conn:
        through = [conn.execute(text("SELECT CAST(:s AS jsonb)::text"), {"s": s}).scalar()
                   for s in (spiff_default, ours)]
    restored = default_serializer.deserialize_json(through[0])
    assert restored.get_next_task(state=TaskState.READY).data != {"start": 1, "v0": 0, "v1": 1, "v2": 2}
    assert through[1] != ours  # our text would not survive a jsonb column unchanged either


def test_spec_is_stored_once_per_version_not_per_instance(rt, deploy):
    deploy({"seq.bpmn": _sequence(25)})
    iid = rt.start("seq")
    for i in range(20):
        _complete_next(rt, iid, {f"v{i}": i})
    state = _row(rt, iid).state
    assert "spec" not in json.loads(state)
    embedded = default_serializer.serialize_json(_workflow(rt, iid))
    assert len(state) <= 0.25 * len(embedded), (len(state), len(embedded))


def test_cached_spec_is_shared_safely_by_parallel_multi_instance_runs(rt, deploy):
    """Two instances with parallel multi-instance tasks, worked at once from two threads."""
    body = [start(), user_task("review", inner=mi(True, "items", "item", "results", "result")),
            script_task("summarise", "count = len(results)"), user_task("done"), end(),
            chain("start", "review", "summarise", "done", "end")]
    deploy({"mi.bpmn": definitions(process("mi", *body))})
    a = rt.start("mi", data={"items": list(range(6))})
    b = rt.start("mi", data={"items": list(range(9))})
    errors: list[BaseException] = []

    def work(instance_id: int, tag: str) -> None:
        try:
            while True:
                open_tasks = [t for t in rt.tasks(instance_id) if t.name == "review"]
                if not open_tasks:
                    return
                task = open_tasks[0]
                rt.complete(task.id, "ada", {"result": f"{tag}:{task.id[:8]}"})
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a, "a")), threading.Thread(target=work, args=(b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for iid, n, tag in ((a, 6, "a"), (b, 9, "b")):
        view = rt.instance(iid)
        assert view.data["count"] == n
        assert all(r.startswith(f"{tag}:") for r in view.data["results"])
        assert [t.name for t in view.tasks] == ["done"]


def test_runtime_refuses_a_task_that_is_not_ready(rt, deploy):
    """task.run() would happily run a completed task again; the runtime must not."""
    deploy({"seq.bpmn": _sequence(3)})
    iid = rt.start("seq")
    first = rt.tasks(iid)[0]
    rt.complete(first.id, "ada", {"a": 1})
    before = _row(rt, iid)
    with rt.Session() as s, s.begin():  # a stale index row claims the task is still open
        s.execute(update(HumanTask).where(HumanTask.task_id == first.id).values(status="open"))
    with pytest.raises(TaskNotOpenError):
        rt.complete(first.id, "ada", {"a": 2})
    after = _row(rt, iid)
    assert after.state == before.state
    assert rt.instance(iid).data["a"] == 1


def test_timer_that_fires_between_form_and_submit(rt, deploy):
    """The boundary timer closes the task; the submission is refused and its data kept in the audit."""
    one_hour = timer("duration", "'PT1H'")
    body = [start(), user_task("report", "Statusrapport"),
            f'<bpmn:boundaryEvent id="deadline" attachedToRef="report">{one_hour}</bpmn:boundaryEvent>',
            user_task("escalate", "Purring"), end(), end("late_end"),
            chain("start", "report", "end"), chain("deadline", "escalate", "late_end")]
    deploy({"t.bpmn": definitions(process("timed", *body))})
    t0 = clock.now()
    with clock.frozen_at(t0):
        iid = rt.start("timed")
    task = rt.tasks(iid)[0]  # the form is shown ...
    with clock.frozen_at(t0 + timedelta(hours=2)), pytest.raises(TaskNotOpenError):
        rt.complete(task.id, "ada", {"text": "late but written"})  # ... and submitted after the deadline
    assert [t.name for t in rt.tasks(iid)] == ["escalate"]
    refused = [e for e in rt.audit(iid) if e["action"] == "complete_refused"]
    assert refused and refused[-1]["details"]["data"] == {"text": "late but written"}


def test_decimals_survive_serialization(rt, deploy):
    form = {"type": "object", "properties": {"rate": {"type": "number"}, "amount": {"type": "integer"}}}
    body = [start(), user_task("enter", form="enter.json"),
            script_task("calc", "share = Decimal('0.2') * amount\nrate_d = Decimal(rate)"),
            user_task("check"), end(), chain("start", "enter", "calc", "check", "end")]
    deploy({"d.bpmn": definitions(process("dec", *body)), "enter.json": json.dumps(form)})
    iid = rt.start("dec")
    view = _complete_next(rt, iid, {"rate": "12.50", "amount": 1000})
    assert view.data["rate"] == "12.50" and view.data["amount"] == 1000  # task data: strings and ints
    ready = _workflow(rt, iid).get_next_task(state=TaskState.READY)
    assert ready.data["share"] == Decimal("200.0") and isinstance(ready.data["rate_d"], Decimal)
    view = _complete_next(rt, iid, {})
    assert view.status == "completed" and view.data["share"] == "200.0"  # summaries are plain JSON


def test_form_numbers_are_validated_not_rounded(rt, deploy):
    form = {"type": "object", "required": ["amount"],
            "properties": {"amount": {"type": "integer", "minimum": 0}, "rate": {"type": "number"}}}
    deploy({"f.bpmn": definitions(process("f", start(), user_task("enter", form="f.json"), end(),
                                          chain("start", "enter", "end"))), "f.json": json.dumps(form)})
    iid = rt.start("f")
    with pytest.raises(ValidationError) as err:
        _complete_next(rt, iid, {"amount": 12.5, "rate": "abc", "extra": 1})
    assert set(err.value.messages) == {"amount", "rate", "extra"}
    assert rt.instance(iid).status == "running"
    assert _complete_next(rt, iid, {"amount": "1200", "rate": 0.1}).data == {"amount": 1200, "rate": "0.1"}


def test_crash_after_engine_step_before_commit_leaves_previous_state(rt, deploy, monkeypatch):
    deploy({"seq.bpmn": _sequence(3)})
    iid = rt.start("seq")
    task = rt.tasks(iid)[0]
    before = _row(rt, iid)
    audit_before = len(rt.audit(iid))
    original = Unit.save_all

    class PowerCut(BaseException):
        """The process dies: not an error the engine's safety net handles (see test_failure_paths)."""

    def crash(self):
        original(self)  # engine steps ran and everything was written to the session ...
        raise PowerCut("power cut")  # ... but the transaction never commits

    monkeypatch.setattr(Unit, "save_all", crash)
    with pytest.raises(PowerCut):
        rt.complete(task.id, "ada", {"a": 1})
    monkeypatch.undo()
    after = _row(rt, iid)
    assert (after.state, after.lock_version) == (before.state, before.lock_version)
    assert [t.id for t in rt.tasks(iid)] == [task.id]
    assert len(rt.audit(iid)) == audit_before
    rt.complete(task.id, "ada", {"a": 1})  # and the task can still be done
    assert rt.instance(iid).data == {"a": 1}


def test_audit_log_is_append_only(rt, deploy):
    deploy({"seq.bpmn": _sequence(1)})
    rt.start("seq")
    with pytest.raises(Exception, match="append-only"), rt.Session() as s, s.begin():
        s.execute(update(AuditEvent).values(actor="someone else"))
    with pytest.raises(Exception, match="append-only"), rt.Session() as s, s.begin():
        s.execute(AuditEvent.__table__.delete())
    with rt.Session() as s:
        assert s.scalars(select(AuditEvent)).first() is not None


def test_warm_workflow_cache_never_serves_a_stale_workflow(rt, deploy, db_engine, connectors):
    """Two runtimes on one database (two processes): each sees the other's steps."""
    deploy({"seq.bpmn": _sequence(4)})
    other = Runtime(db_engine, connectors=connectors)
    iid = rt.start("seq")
    _complete_next(rt, iid, {"a": 1})  # rt now holds a warm copy of the workflow
    _complete_next(other, iid, {"b": 2})  # ... which this step, by another process, makes stale
    view = _complete_next(rt, iid, {"c": 3})
    assert view.data == {"a": 1, "b": 2, "c": 3}
    assert [t.name for t in view.tasks] == ["t4"]
    cold = Runtime(db_engine, connectors=connectors, workflow_cache_size=0)
    assert _complete_next(cold, iid, {"d": 4}).status == "completed"
    assert rt.instance(iid).data == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_a_triggered_event_subprocess_does_not_change_the_shared_spec(deploy, db_engine, connectors, rt):
    """SpiffWorkflow wires an event subprocess into the spec on its first trigger; with one spec shared by
    all instances, that must neither start it in later instances nor be missing in a fresh process."""
    from tests.bpmn_builder import event_start, message, message_event, subprocess

    deploy({"esn.bpmn": definitions(message("msg_note", "note"), process(
        "esn", start(), user_task("work"), end(), chain("start", "work", "end"),
        subprocess("on_note", event_start("note_start", message_event("msg_note", variable="note"), interrupting=False),
                   user_task("read_note"), end("note_end"), chain("note_start", "read_note", "note_end"),
                   event=True)))})
    warm = Runtime(db_engine, connectors=connectors)
    a = warm.start("esn")
    assert warm.send_message("note", {"t": 1}).instance_id == a
    assert sorted(t.name for t in warm.tasks(a)) == ["read_note", "work"]
    b = warm.start("esn")  # same process, same cached spec
    assert [t.name for t in warm.tasks(b)] == ["work"]
    assert _complete_next(warm, b, {}).status == "completed"
    fresh = Runtime(db_engine, connectors=connectors)  # another process finishes a
    for task in fresh.tasks(a):
        fresh.complete(task.id, "ada", {})
    assert fresh.instance(a).status == "completed"


def test_decimals_and_dates_keep_their_type_in_start_data_and_across_call_activities(rt, deploy):
    from datetime import date

    from tests.bpmn_builder import call_activity

    inner = process("inner", start(), user_task("inside"), script_task("use", "inner_sum = amount + top"), end(),
                    chain("start", "inside", "use", "end"))
    prepare = script_task("prepare", "amount = Decimal('2.25')\nday = date(2025, 12, 1)")
    outer = process("outer", start(), prepare, call_activity("call", "inner"), user_task("after"), end(),
                    chain("start", "prepare", "call", "after", "end"))
    deploy({"outer.bpmn": definitions(outer), "inner.bpmn": definitions(inner, id="defs_inner")})
    iid = rt.start("outer", data={"top": Decimal("1.5")})
    inside = _workflow(rt, iid).get_next_task(state=TaskState.READY)
    assert (inside.data["top"], inside.data["amount"], inside.data["day"]) == (Decimal("1.5"), Decimal("2.25"),
                                                                              date(2025, 12, 1))
    _complete_next(rt, iid, {})
    after = _workflow(rt, iid).get_next_task(state=TaskState.READY)
    assert after.data["inner_sum"] == Decimal("3.75") and isinstance(after.data["day"], date)
