"""What the engine reads from, and adds to, SpiffWorkflow's event machinery.

SpiffWorkflow 3.2 keeps timers, message waits and event subprocesses in its own structures; the
engine indexes them in tables (timers, message waits) and delivers messages itself. This module holds
that reading, plus the few places where SpiffWorkflow's behaviour has to be completed:

* an event-based gateway holds all its events in one ``MultipleEventDefinition``;
* a message-started event subprocess has no waiting task until the message arrives;
* ``isInterrupting`` on event subprocess start events is ignored by SpiffWorkflow (the loader records
  it and :func:`interrupt_if_needed` applies it);
* a cycle timer refreshed several times in one transaction would fire a burst (:func:`cycle_guard`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid5

from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from . import clock
from .bpmn_loader import INTERRUPTING_EXTENSION


def event_parts(ed: Any) -> list[Any]:
    """The parts of an event definition: an event-based gateway holds one per event it waits for."""
    return list(ed.event_definitions) if isinstance(ed, MultipleEventDefinition) else [ed]


def timer_due(task: Task) -> tuple[str, datetime] | None:
    """The due time of a waiting timer task, read from SpiffWorkflow's own bookkeeping."""
    value = task._get_internal_data("event_value")
    if value is None:
        return None
    for ed in event_parts(task.task_spec.event_definition):
        if isinstance(ed, CycleTimerEventDefinition):
            if not isinstance(value, dict) or value.get("cycles") == 0:
                return None
            return "cycle", datetime.fromisoformat(value["next"])
        if isinstance(ed, DurationTimerEventDefinition):
            return "duration", TimerEventDefinition.get_datetime(value)
        if isinstance(ed, TimeDateEventDefinition):
            return "date", TimerEventDefinition.parse_time_or_duration(value)
    return None


def timer_element(task: Task) -> str:
    """The BPMN id of a waiting timer; for an event-based gateway, the timer event after it."""
    spec = task.task_spec
    ed = spec.event_definition
    if isinstance(ed, MultipleEventDefinition):  # the gateway holds its events' definitions in output order
        for part, output in zip(ed.event_definitions, spec.outputs, strict=False):
            if isinstance(part, TimerEventDefinition):
                return output.bpmn_id or output.name
    return spec.bpmn_id or spec.name


#: Cycle timer tasks that fired in the current unit of work; each fires at most once per transaction.
_cycles_fired: ContextVar[set[UUID] | None] = ContextVar("samflyt_cycles_fired", default=None)
_spiff_cycle_complete = CycleTimerEventDefinition.cycle_complete


def _cycle_complete_once(self: CycleTimerEventDefinition, my_task: Task) -> bool:
    """SpiffWorkflow fires a cycle on every ``refresh_timers`` whose ``next`` is past; ``advance``
    refreshes once per engine-step round, so a tick long after several cycles were due fired a burst
    of them. One per cycle timer and transaction; the missed ones follow on the next ticks."""
    fired = _cycles_fired.get()
    if fired is not None and my_task.id in fired:
        return False
    ready = _spiff_cycle_complete(self, my_task)
    if ready and fired is not None:
        fired.add(my_task.id)
    return ready


_installed = False


_spiff_parse_time_or_duration = TimerEventDefinition.parse_time_or_duration


def _parse_time_or_duration(expression: Any) -> Any:
    """SpiffWorkflow parses timer expressions as ISO text only; a date or datetime (what the business
    calendar helpers return, e.g. ``working_days_before(due, 10)``) is taken as the moment it names."""
    if isinstance(expression, datetime | date):
        return clock.to_utc(expression)
    return _spiff_parse_time_or_duration(expression)


def install() -> None:
    """Put the cycle-timer guard and date-aware timer parsing into SpiffWorkflow (idempotent)."""
    global _installed
    if not _installed:
        CycleTimerEventDefinition.cycle_complete = _cycle_complete_once
        TimerEventDefinition.parse_time_or_duration = staticmethod(_parse_time_or_duration)
        _installed = True


@contextmanager
def cycle_guard() -> Iterator[None]:
    """Within the block (one transaction) each cycle timer fires at most once."""
    token = _cycles_fired.set(set())
    try:
        yield
    finally:
        _cycles_fired.reset(token)


def interrupt_if_needed(task: Task) -> None:
    """Cancel the rest of the process when the start event of an interrupting event subprocess ran.

    SpiffWorkflow 3.2 starts event subprocesses but ignores ``isInterrupting``, so the main flow
    went on. The loader records the flag on event subprocess start events (``samflyt.interrupting``);
    this runs after every engine step, before the event subprocess can reach the process end.
    """
    spec = task.task_spec
    if (not isinstance(spec, StartEvent) or isinstance(spec.event_definition, NoneEventDefinition)
            or not (getattr(spec, "extensions", None) or {}).get(INTERRUPTING_EXTENSION)):
        return
    subprocess = task.workflow
    parent = subprocess.top_workflow.get_task_from_id(subprocess.parent_task_id)
    if parent is None or parent.parent is None:
        return
    for sibling in list(parent.parent.children):  # the main flow and any other event subprocess
        if sibling is not parent:
            sibling.cancel()


def all_tasks(workflow: BpmnWorkflow) -> Iterator[Task]:
    """Every task of the workflow and its subprocesses, straight from their task maps.

    Twenty times faster than SpiffWorkflow's tree iterator, and order does not matter to the callers.
    """
    yield from workflow.tasks.values()
    for subprocess in workflow.subprocesses.values():
        yield from subprocess.tasks.values()


def tasks_in_state(workflow: BpmnWorkflow, state: int, manual: bool | None = None) -> list[Task]:
    return [t for t in all_tasks(workflow)
            if t.state & state and (manual is None or t.task_spec.manual == manual)]


def resume_stalled(workflow: BpmnWorkflow) -> None:
    """Prepare again what a failure left half-prepared, so ``retry`` can go on.

    A timer expression or pre-script that fails does so while its *predecessor* completes: the task is
    left FUTURE under a COMPLETED parent (or in ERROR). Updating it again is what SpiffWorkflow would have
    done had the expression worked.
    """
    for task in tasks_in_state(workflow, TaskState.ERROR):
        task._set_state(TaskState.READY)
    for task in tasks_in_state(workflow, TaskState.FUTURE):
        if task.parent is not None and task.parent.state == TaskState.COMPLETED:
            task.task_spec._update(task)


def has_waiting_timers(workflow: BpmnWorkflow) -> bool:
    return any(isinstance(d, TimerEventDefinition) for t in waiting_event_tasks(workflow)
               for d in event_parts(t.task_spec.event_definition))


def waiting_event_tasks(workflow: BpmnWorkflow) -> list[Task]:
    return [t for t in list(workflow.event_manager.tasks.values()) if t.state == TaskState.WAITING]


def instance_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """Final data of a completed workflow, else the data of its most recently completed task
    (called subprocesses included, so a task deep in a call activity shows its current data)."""
    if workflow.completed:
        data = dict(workflow.data)
    else:
        # a BoundaryEventJoin completes last when a boundary event interrupts, but holds none of the data
        last = max((t for t in tasks_in_state(workflow, TaskState.COMPLETED)
                    if not isinstance(t.task_spec, BoundaryEventJoin)),
                   key=lambda t: t.last_state_change, default=None)
        data = dict(last.data if last is not None else workflow.task_tree.data)
    if not data.get("data_objects"):
        data.pop("data_objects", None)
    return data


@dataclass
class CatchPoint:
    """A place that can catch a message now: a waiting task, or an event subprocess's message start."""

    task: Task | None  # None: an event subprocess that ``trigger`` starts when the message comes
    definition: MessageEventDefinition
    workflow: BpmnWorkflow
    data: dict[str, Any]
    trigger: str | None = None  # the event subprocess spec name
    start_spec: str | None = None


def message_catch_points(workflow: BpmnWorkflow) -> dict[str, CatchPoint]:
    """Every message catch point keyed by the id stored in ``MessageWait.task_id``."""
    points: dict[str, CatchPoint] = {}
    for task in waiting_event_tasks(workflow):
        parts = [d for d in event_parts(task.task_spec.event_definition) if isinstance(d, MessageEventDefinition)]
        for ed in parts:
            key = str(task.id) if len(parts) == 1 else str(uuid5(task.id, ed.name))
            points[key] = CatchPoint(task, ed, task.workflow, task.data)
    if not workflow.completed:
        for spec_name in getattr(workflow.spec.start, "trigger_specs", []):
            sp_spec = workflow.subprocess_specs.get(spec_name)
            for ts in sp_spec.bpmn_start_events if sp_spec is not None else []:
                if isinstance(ts.event_definition, MessageEventDefinition):
                    key = str(uuid5(workflow.task_tree.id, f"{spec_name}/{ts.name}"))
                    points[key] = CatchPoint(None, ts.event_definition, workflow, instance_data(workflow),
                                              spec_name, ts.name)
    return points


def start_event_subprocess(workflow: BpmnWorkflow, point: CatchPoint) -> Task | None:
    """Create the event subprocess of ``point`` and return its message start event, waiting.

    SpiffWorkflow seeds an event subprocess with the data the process *started* with; BPMN gives it the
    process's current data (a deviation report needs the application id assigned long after the start),
    so the start event gets the instance's current data.
    """
    child_id = workflow.spec.start.trigger_wf(workflow.task_tree, point.trigger)
    subprocess = workflow.subprocesses.get(child_id)
    if subprocess is None:
        return None
    start = subprocess.get_next_task(state=TaskState.WAITING, spec_name=point.start_spec)
    if start is not None:
        start.data.update(copy.deepcopy(point.data))
    return start


def catch_message(task: Task, payload: dict[str, Any], correlations: dict[str, dict[str, Any]],
                   ed: MessageEventDefinition | None = None) -> None:
    """Let a waiting message event catch ``payload`` with correlations the engine already matched.

    This is what SpiffWorkflow's ``catch`` does, except that it would recompute the correlations
    from the payload and fail when the payload lacks a correlation field that the sender gave
    separately (``samflyt message NAME --correlation case_id=7``).
    """
    ed = ed or task.task_spec.event_definition
    event = BpmnEvent(ed, payload=payload, correlations=correlations)
    for key, values in correlations.items():
        task.workflow.correlations.setdefault(key, {}).update(values)
    if isinstance(task.task_spec.event_definition, MultipleEventDefinition):
        # an event-based gateway: it runs the caught part's ``catch`` itself when it completes
        task._set_internal_data(seen_events=task.internal_data.get("seen_events", []) + [event])
    else:
        ed.update_internal_data(task, event)
        task._set_internal_data(event_fired=True)
    task._set_state(TaskState.WAITING)
    task.task_spec._update(task)
