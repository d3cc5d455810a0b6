"""The runtime: start, claim, complete, message, cancel, retry, fire timers -- one transaction each.

Every public call follows the same shape: lock and load the instance, act, run engine steps to the next
wait state, then write back the workflow state, the human-task, timer and message-wait index rows and
the audit events, all in one database transaction (:class:`_Unit`). A crash at any point leaves the
previous state whole. Messages an instance throws are delivered in that same transaction (see
:meth:`_Unit.deliver`), so a message is never half-sent; one that nobody waits for is stored as
``undeliverable`` and shown by ``samflyt messages``.

No Flask here: the CLI, the scheduler, the web UI and the tests all drive this class.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
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
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from . import authz, clock
from .bpmn_loader import FORM_PROPERTIES, Bundle, DeployResult, collect_files, find_file, parse_bundle
from .bpmn_loader import deploy as write_bundle
from .connectors import ConnectorRegistry
from .connectors import registry as default_connectors
from .db import is_sqlite, make_engine, session_factory
from .errors import (
    ClaimedByOtherError,
    ConflictError,
    InstanceStateError,
    NotAuthorisedError,
    NotFoundError,
    TaskNotOpenError,
)
from .forms import Form, build_form
from .models import (
    AuditEvent,
    HumanTask,
    Message,
    MessageWait,
    ProcessInstance,
    ProcessModel,
    ProcessVersion,
    Timer,
    User,
)
from .scripting import SamflytScriptEngine
from .serialization import dump_state, dumps, load_specs, load_state

#: Upper bound on engine-step rounds and message hops within one transaction (a runaway loop guard).
MAX_ROUNDS = 1000
SYSTEM = "system"


# --------------------------------------------------------------------------- views returned to callers
@dataclass
class TaskView:
    id: str
    name: str
    title: str
    lane: str | None
    instance_id: int
    claimed_by: str | None
    due_at: datetime | None
    status: str
    form_key: str | None = None
    process_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "title": self.title, "lane": self.lane,
                "instance_id": self.instance_id, "claimed_by": self.claimed_by,
                "due_at": self.due_at.isoformat() if self.due_at else None}


@dataclass
class InstanceView:
    id: int
    process_id: str
    version: int
    status: str
    business_key: str | None
    title: str | None
    data: dict[str, Any]
    tasks: list[TaskView]
    timers: list[dict[str, Any]]
    error: dict[str, Any] | None
    started_by: str | None
    started_at: datetime
    ended_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "process_id": self.process_id, "version": self.version,
                "status": self.status, "business_key": self.business_key, "title": self.title,
                "data": self.data, "tasks": [t.as_json() for t in self.tasks], "timers": self.timers,
                "error": self.error, "started_by": self.started_by,
                "started_at": self.started_at.isoformat(),
                "ended_at": self.ended_at.isoformat() if self.ended_at else None}


@dataclass
class MessageResult:
    id: int
    status: str  # delivered | undeliverable
    instance_id: int | None
    started: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "instance_id": self.instance_id,
                "started": self.started}


# --------------------------------------------------------------------------- spec cache
@dataclass
class CachedVersion:
    """A deployed version's parsed specs and files, shared by every instance of that version.

    Spec objects are read-only at run time in SpiffWorkflow 3 (multi-instance children are task
    objects, not new specs), so sharing them between instances and threads is safe; a test runs two
    parallel multi-instance workflows against one cached spec at once to keep it that way.
    """

    version_id: int
    process_id: str
    version: int
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    files: dict[str, str]
    _forms: dict[str, Form] = field(default_factory=dict)

    def form(self, key: str | None, ui_key: str | None = None) -> Form | None:
        if not key:
            return None
        form = self._forms.get(key)
        if form is None:
            schema_text = find_file(self.files, key)
            if schema_text is None:  # deploy checks this; a guard for hand-edited rows
                raise NotFoundError(f"form file {key} is missing from version {self.version_id}")
            ui_text = find_file(self.files, ui_key) if ui_key else None
            form = build_form(key, json.loads(schema_text), json.loads(ui_text) if ui_text else None)
            self._forms[key] = form
        return form


class SpecCache:
    """Per-process cache of parsed specs keyed by version id (versions are immutable)."""

    def __init__(self) -> None:
        self._versions: dict[int, CachedVersion] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, version_id: int) -> CachedVersion:
        cached = self._versions.get(version_id)
        if cached is not None:
            return cached
        row = session.get(ProcessVersion, version_id)
        if row is None:
            raise NotFoundError(f"process version {version_id} does not exist")
        spec, subs = load_specs(row.spec_json)
        cached = CachedVersion(version_id, row.model.process_id, row.version, spec, subs,
                               json.loads(row.files_json))
        with self._lock:
            return self._versions.setdefault(version_id, cached)

    def clear(self) -> None:
        with self._lock:
            self._versions.clear()


# --------------------------------------------------------------------------- helpers on workflows
def _definitions(ed: Any) -> list[Any]:
    """The parts of an event definition: an event-based gateway holds one per event it waits for."""
    return list(ed.event_definitions) if isinstance(ed, MultipleEventDefinition) else [ed]


def _timer_due(task: Task) -> tuple[str, datetime] | None:
    """The due time of a waiting timer task, read from SpiffWorkflow's own bookkeeping."""
    value = task._get_internal_data("event_value")
    if value is None:
        return None
    for ed in _definitions(task.task_spec.event_definition):
        if isinstance(ed, CycleTimerEventDefinition):
            if not isinstance(value, dict) or value.get("cycles") == 0:
                return None
            return "cycle", datetime.fromisoformat(value["next"])
        if isinstance(ed, DurationTimerEventDefinition):
            return "duration", TimerEventDefinition.get_datetime(value)
        if isinstance(ed, TimeDateEventDefinition):
            return "date", TimerEventDefinition.parse_time_or_duration(value)
    return None


def _timer_element(task: Task) -> str:
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


CycleTimerEventDefinition.cycle_complete = _cycle_complete_once


def _interrupt_if_needed(task: Task) -> None:
    """Cancel the rest of the process when the start event of an interrupting event subprocess ran.

    SpiffWorkflow 3.2 starts event subprocesses but ignores ``isInterrupting``, so the main flow
    went on. The loader records the flag on event subprocess start events (``samflyt.interrupting``);
    this runs after every engine step, before the event subprocess can reach the process end.
    """
    spec = task.task_spec
    if (not isinstance(spec, StartEvent) or isinstance(spec.event_definition, NoneEventDefinition)
            or not (getattr(spec, "extensions", None) or {}).get("samflyt.interrupting")):
        return
    subprocess = task.workflow
    parent = subprocess.top_workflow.get_task_from_id(subprocess.parent_task_id)
    if parent is None or parent.parent is None:
        return
    for sibling in list(parent.parent.children):  # the main flow and any other event subprocess
        if sibling is not parent:
            sibling.cancel()


def _waiting_event_tasks(workflow: BpmnWorkflow) -> list[Task]:
    return [t for t in list(workflow.event_manager.tasks.values()) if t.state == TaskState.WAITING]


def _properties(task: Task) -> dict[str, str]:
    return (getattr(task.task_spec, "extensions", None) or {}).get("properties", {}) or {}


def _plain(value: Any) -> Any:
    """Task data as plain JSON-able values (Decimal -> str, date -> ISO) for summaries and audit."""
    return json.loads(dumps(value))


def _instance_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """Final data of a completed workflow, else the data of its most recently completed task
    (called subprocesses included, so a task deep in a call activity shows its current data)."""
    if workflow.completed:
        data = dict(workflow.data)
    else:
        # a BoundaryEventJoin completes last when a boundary event interrupts, but holds none of the data
        last = max((t for t in workflow.get_tasks(state=TaskState.COMPLETED)
                    if not isinstance(t.task_spec, BoundaryEventJoin)),
                   key=lambda t: t.last_state_change, default=None)
        data = dict(last.data if last is not None else workflow.task_tree.data)
    if not data.get("data_objects"):
        data.pop("data_objects", None)
    return data


def _as_aware(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=clock.LOCAL_TZ)
    return value.astimezone(UTC)


def _correlation_match(expected: dict[str, Any], given: dict[str, Any]) -> bool:
    """True when every given correlation value equals the instance's expected one.

    A correlated wait never takes an uncorrelated message, and an uncorrelated wait takes any.
    """
    if not given:
        return not expected
    for prop, value in given.items():
        if prop not in expected:
            return False
        have = expected[prop]
        if not (have == value or str(have) == str(value)):
            return False
    return True


@dataclass
class _CatchPoint:
    """A place that can catch a message now: a waiting task, or an event subprocess's message start."""

    task: Task | None  # None: an event subprocess that ``trigger`` starts when the message comes
    definition: MessageEventDefinition
    workflow: BpmnWorkflow
    data: dict[str, Any]
    trigger: str | None = None  # the event subprocess spec name
    start_spec: str | None = None


def _message_catch_points(workflow: BpmnWorkflow) -> dict[str, _CatchPoint]:
    """Every message catch point keyed by the id stored in ``MessageWait.task_id``."""
    points: dict[str, _CatchPoint] = {}
    for task in _waiting_event_tasks(workflow):
        parts = [d for d in _definitions(task.task_spec.event_definition) if isinstance(d, MessageEventDefinition)]
        for ed in parts:
            key = str(task.id) if len(parts) == 1 else str(uuid5(task.id, ed.name))
            points[key] = _CatchPoint(task, ed, task.workflow, task.data)
    if not workflow.completed:
        for spec_name in getattr(workflow.spec.start, "trigger_specs", []):
            sp_spec = workflow.subprocess_specs.get(spec_name)
            for ts in sp_spec.bpmn_start_events if sp_spec is not None else []:
                if isinstance(ts.event_definition, MessageEventDefinition):
                    key = str(uuid5(workflow.task_tree.id, f"{spec_name}/{ts.name}"))
                    points[key] = _CatchPoint(None, ts.event_definition, workflow, _instance_data(workflow),
                                              spec_name, ts.name)
    return points


def _start_event_subprocess(workflow: BpmnWorkflow, point: _CatchPoint) -> Task | None:
    """Create the event subprocess of ``point`` and return its message start event, waiting."""
    child_id = workflow.spec.start.trigger_wf(workflow.task_tree, point.trigger)
    subprocess = workflow.subprocesses.get(child_id)
    if subprocess is None:
        return None
    return subprocess.get_next_task(state=TaskState.WAITING, spec_name=point.start_spec)


def _catch_message(task: Task, payload: dict[str, Any], correlations: dict[str, dict[str, Any]],
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


# --------------------------------------------------------------------------- the unit of work
@dataclass
class _Loaded:
    row: ProcessInstance
    workflow: BpmnWorkflow
    version: CachedVersion
    failed: bool = False


class _Unit:
    """One transaction: the instances it has loaded, the messages in flight, the audit it writes."""

    def __init__(self, runtime: Runtime, session: Session) -> None:
        self.rt = runtime
        self.session = session
        self.loaded: dict[int, _Loaded] = {}
        self.outbox: list[tuple[int | None, BpmnEvent]] = []
        self.deferred: Exception | None = None

    # -- audit
    def audit(self, action: str, actor: str | None, instance_id: int | None = None,
              task_id: str | None = None, **details: Any) -> None:
        self.session.add(AuditEvent(at=clock.now(), actor=actor, action=action, instance_id=instance_id,
                                    task_id=task_id, details=dumps(details)))

    # -- loading
    def lock_row(self, instance_id: int, skip_locked: bool = False) -> ProcessInstance | None:
        query = select(ProcessInstance).where(ProcessInstance.id == instance_id)
        if not is_sqlite(self.rt.engine):  # SQLite: BEGIN IMMEDIATE already serialises writers
            query = query.with_for_update(skip_locked=skip_locked)
        return self.session.scalar(query.execution_options(populate_existing=True))

    def load(self, instance_id: int, skip_locked: bool = False) -> _Loaded | None:
        if instance_id in self.loaded:
            return self.loaded[instance_id]
        row = self.lock_row(instance_id, skip_locked)
        if row is None:
            if skip_locked:
                return None
            raise NotFoundError(f"instance {instance_id} does not exist")
        version = self.rt.cache.get(self.session, row.version_id)
        workflow = load_state(row.state, version.spec, version.subprocess_specs, self.rt.script_engine)
        loaded = _Loaded(row, workflow, version)
        self.loaded[instance_id] = loaded
        return loaded

    def create(self, version: CachedVersion, *, data: dict[str, Any] | None, business_key: str | None,
               title: str | None, actor: str | None) -> _Loaded:
        workflow = BpmnWorkflow(version.spec, version.subprocess_specs, script_engine=self.rt.script_engine)
        if data:
            workflow.task_tree.data.update(data)
            for child in workflow.task_tree.children:
                child.data.update(data)
        now = clock.now()
        row = ProcessInstance(version_id=version.version_id, process_id=version.process_id, status="running",
                              business_key=business_key, title=title, state="{}", data="{}",
                              started_by=actor, started_at=now, updated_at=now)
        self.session.add(row)
        self.session.flush()
        loaded = _Loaded(row, workflow, version)
        self.loaded[row.id] = loaded
        self.audit("start", actor, row.id, process_id=version.process_id, version=version.version,
                   business_key=business_key, data=_plain(data or {}))
        return loaded

    # -- running
    def advance(self, li: _Loaded, refresh_timers: bool = False) -> bool:
        """Run engine steps until only human tasks and waits remain; on a failure, record ``error``.

        A script or service task that raises is put back to READY with the data it had before it ran,
        so the instance keeps the state before the failing step and ``retry`` can run it again.
        """
        if li.failed or li.row.status in ("error", "cancelled"):
            return False
        wf = li.workflow
        started: dict[str, Any] = {}

        def will_complete(task: Task) -> None:
            started["task"] = task
            started["data"] = copy.deepcopy(task.data)

        try:
            if refresh_timers:  # fire what is due by the engine clock (timer expressions may raise too)
                wf.refresh_timers()
            for _ in range(MAX_ROUNDS):
                wf.do_engine_steps(will_complete_task=will_complete, did_complete_task=_interrupt_if_needed)
                if not wf.get_next_task(state=TaskState.READY, manual=False):
                    break
            if not wf.completed and wf.get_next_task(state=TaskState.NOT_FINISHED_MASK) is None:
                # an interrupting event subprocess ended the process: its branch has no End task in
                # SpiffWorkflow, so nothing marks the workflow complete (nor copies the final data)
                last = max(wf.get_tasks(state=TaskState.COMPLETED), key=lambda t: t.last_state_change)
                wf._mark_complete(last)
        except Exception as exc:  # a failing script, expression, connector or DMN table
            task = started.get("task")
            if task is not None and task.state in (TaskState.ERROR, TaskState.STARTED, TaskState.READY):
                task.data = started["data"]
                task._set_state(TaskState.READY)
            li.failed = True
            li.row.status = "error"
            li.row.error_message = f"{exc.__class__.__name__}: {exc}"
            li.row.error_task = task.task_spec.bpmn_id if task is not None else None
            self.audit("error", SYSTEM, li.row.id, str(task.id) if task is not None else None,
                       message=li.row.error_message, element=li.row.error_task)
            return False
        for event in wf.get_events():
            self.outbox.append((li.row.id, event))
        return True

    # -- messages
    def deliver(self, name: str, payload: dict[str, Any], given: dict[str, Any] | None,
                sender: int | None, actor: str | None) -> MessageResult:
        """Deliver one message to the oldest matching waiting instance, else a message start event."""
        payload = payload or {}
        message = Message(name=name, payload=dumps(payload), correlations=dumps(given or {}),
                          sender_instance_id=sender, sent_by=actor, status="undeliverable",
                          created_at=clock.now())
        self.session.add(message)
        self.session.flush()
        env = self.rt.script_engine.environment
        waits = self.session.scalars(select(MessageWait).where(MessageWait.message_name == name)
                                     .order_by(MessageWait.created_at, MessageWait.id)).all()
        for wait in waits:
            expected = json.loads(wait.correlations)
            if given:
                values = given
            else:  # compute from the payload with the waiting model's retrieval expressions
                values = {}
                for prop, expression in json.loads(wait.properties_json or "{}").items():
                    try:
                        values[prop] = env.evaluate(expression, copy.deepcopy(payload))
                    except Exception:  # noqa: BLE001 - a payload without that field: no value
                        continue
            if not _correlation_match(expected, values):
                continue
            li = self.load(wait.instance_id)
            point = _message_catch_points(li.workflow).get(wait.task_id)
            if point is None or li.row.status in ("error", "cancelled"):
                continue
            ed = point.definition
            correlations: dict[str, dict[str, Any]] = {}
            for cp in ed.correlation_properties:
                if cp.name in values:
                    for key in cp.correlation_keys:
                        correlations.setdefault(key, {})[cp.name] = values[cp.name]
            task = point.task if point.task is not None else _start_event_subprocess(li.workflow, point)
            if task is None or task.state != TaskState.WAITING:
                continue
            _catch_message(task, copy.deepcopy(payload), correlations, ed)
            self.advance(li)
            self._mark_delivered(message, li.row.id, actor, name)
            return MessageResult(message.id, "delivered", li.row.id)

        version = self.rt._latest_version_catching(self.session, name)
        if version is not None:
            li = self.create(version, data=None, business_key=None, title=None, actor=actor or SYSTEM)
            li.workflow.do_engine_steps()
            start = next((t for t in _waiting_event_tasks(li.workflow)
                          if isinstance(t.task_spec.event_definition, MessageEventDefinition)
                          and t.task_spec.event_definition.name == name), None)
            if start is not None:
                values = dict(given or {})
                for cp in start.task_spec.event_definition.correlation_properties:
                    if cp.name not in values:
                        try:
                            values[cp.name] = env.evaluate(cp.retrieval_expression, copy.deepcopy(payload))
                        except Exception:  # noqa: BLE001 - not in the payload: not correlated yet
                            continue
                correlations = {}
                for cp in start.task_spec.event_definition.correlation_properties:
                    if cp.name in values:
                        for key in cp.correlation_keys:
                            correlations.setdefault(key, {})[cp.name] = values[cp.name]
                _catch_message(start, copy.deepcopy(payload), correlations)
                self.advance(li)
                self._mark_delivered(message, li.row.id, actor, name)
                return MessageResult(message.id, "delivered", li.row.id, started=True)
        self.audit("message_undeliverable", actor, sender, message_id=message.id, name=name,
                   correlations=_plain(given or {}))
        return MessageResult(message.id, "undeliverable", None)

    def _mark_delivered(self, message: Message, instance_id: int, actor: str | None, name: str) -> None:
        message.status = "delivered"
        message.target_instance_id = instance_id
        message.delivered_at = clock.now()
        self.audit("message_delivered", actor, instance_id, message_id=message.id, name=name)

    def drain(self) -> None:
        for _ in range(MAX_ROUNDS):
            if not self.outbox:
                return
            sender, event = self.outbox.pop(0)
            ed = event.event_definition
            if isinstance(ed, MessageEventDefinition):
                flat = {prop: value for props in (event.correlations or {}).values()
                        for prop, value in props.items()}
                self.deliver(ed.name, event.payload or {}, flat or None, sender, SYSTEM)
            else:
                self.audit("event_not_caught", SYSTEM, sender, event=ed.__class__.__name__,
                           name=getattr(ed, "name", None))
        raise ConflictError(f"message loop: more than {MAX_ROUNDS} hops in one transaction")

    # -- writing back
    def save_all(self) -> None:
        self.drain()
        for li in self.loaded.values():
            self.save(li)

    def save(self, li: _Loaded) -> None:
        wf, row = li.workflow, li.row
        now = clock.now()
        row.state = dump_state(wf)
        row.data = dumps(_instance_data(wf))
        if row.status not in ("error", "cancelled"):
            row.error_message = row.error_task = None
            if wf.completed:
                row.status = "completed"
            elif wf.get_next_task(state=TaskState.READY) is not None:
                row.status = "running"
            else:
                row.status = "waiting"
        if row.status in ("completed", "cancelled") and row.ended_at is None:
            row.ended_at = now
        row.updated_at = now
        self._sync_human_tasks(li, now)
        self._sync_timers(li)
        self._sync_message_waits(li)

    def _sync_human_tasks(self, li: _Loaded, now: datetime) -> None:
        ready = {str(t.id): t for t in li.workflow.get_tasks(state=TaskState.READY, manual=True)}
        if li.row.status == "cancelled":
            ready = {}
        rows = {r.task_id: r for r in self.session.scalars(
            select(HumanTask).where(HumanTask.instance_id == li.row.id, HumanTask.status == "open"))}
        for task_id, row in rows.items():
            if task_id not in ready:
                row.status = "closed"
                row.completed_at = now
        missing = [tid for tid in ready if tid not in rows]
        existing = {r.task_id: r for r in self.session.scalars(
            select(HumanTask).where(HumanTask.task_id.in_(missing)))} if missing else {}
        for task_id in missing:
            task = ready[task_id]
            spec = task.task_spec
            props = _properties(task)
            row = existing.get(task_id) or HumanTask(task_id=task_id, instance_id=li.row.id)
            row.spec_name = spec.bpmn_id or spec.name
            row.title = spec.bpmn_name or spec.bpmn_id or spec.name
            row.lane = spec.lane
            row.candidate_role = spec.lane.lower() if spec.lane else None
            row.form_key, row.ui_form_key = (props.get(p) for p in FORM_PROPERTIES)
            row.restrictions = dumps(authz.restrictions_for(props, task.data))
            row.due_at = self._due_at(li, task, props)
            row.status = "open"
            row.created_at = now
            row.claimed_by = row.claimed_at = row.completed_at = row.completed_by = None
            self.session.add(row)

    def _due_at(self, li: _Loaded, task: Task, props: dict[str, str]) -> datetime | None:
        expression = props.get("samflyt.dueDate")
        if not expression:
            return None
        try:
            return _as_aware(self.rt.script_engine.evaluate(task, expression))
        except Exception as exc:  # noqa: BLE001 - a bad due date must not stop the process
            self.audit("due_date_invalid", SYSTEM, li.row.id, str(task.id),
                       expression=expression, error=str(exc))
            return None

    def _sync_timers(self, li: _Loaded) -> None:
        wanted: dict[str, tuple[str, str, datetime]] = {}
        for task in _waiting_event_tasks(li.workflow):
            if any(isinstance(d, TimerEventDefinition) for d in _definitions(task.task_spec.event_definition)):
                due = _timer_due(task)
                if due is not None:
                    wanted[str(task.id)] = (_timer_element(task), *due)
        rows = {r.task_id: r for r in self.session.scalars(select(Timer).where(Timer.instance_id == li.row.id))}
        for task_id, row in rows.items():
            if task_id not in wanted:
                self.session.delete(row)
        for task_id, (spec_name, kind, due) in wanted.items():
            row = rows.get(task_id)
            if row is None:
                self.session.add(Timer(instance_id=li.row.id, task_id=task_id, spec_name=spec_name,
                                       kind=kind, due_at=due))
            elif _utc(row.due_at) != due:
                row.due_at = due

    def _sync_message_waits(self, li: _Loaded) -> None:
        wanted: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {}
        env = self.rt.script_engine.environment
        for key, point in _message_catch_points(li.workflow).items():
            ed = point.definition
            expected: dict[str, Any] = {}
            properties: dict[str, str] = {}
            for cp in ed.correlation_properties:
                properties[cp.name] = cp.retrieval_expression
                known = [point.workflow.correlations.get(k, {}).get(cp.name) for k in cp.correlation_keys]
                known = [v for v in known if v is not None]
                if known:
                    expected[cp.name] = known[0]
                    continue
                try:  # not yet set by a message: the instance's own data says what it expects
                    expected[cp.name] = env.evaluate(cp.retrieval_expression, copy.deepcopy(point.data))
                except Exception:  # noqa: BLE001 - unknown yet; the wait matches no correlated message
                    continue
            wanted[key] = (ed.name, _plain(expected), properties)
        self.session.execute(delete(MessageWait).where(MessageWait.instance_id == li.row.id))
        for task_id, (name, expected, properties) in wanted.items():
            self.session.add(MessageWait(instance_id=li.row.id, task_id=task_id, message_name=name,
                                         correlations=dumps(expected), properties_json=dumps(properties),
                                         created_at=li.row.started_at))


# --------------------------------------------------------------------------- the runtime
class Runtime:
    """The engine's service layer. Thread-safe: each call opens its own session and transaction."""

    def __init__(self, engine: Engine | str | None = None, connectors: ConnectorRegistry | None = None) -> None:
        clock.install()
        self.engine = engine if isinstance(engine, Engine) else make_engine(engine)
        self.Session = session_factory(self.engine)
        self.connectors = connectors or default_connectors
        self.script_engine = SamflytScriptEngine(self.connectors)
        self.cache = SpecCache()

    # -- transactions
    @contextmanager
    def _unit(self) -> Iterator[_Unit]:
        unit: _Unit
        token = _cycles_fired.set(set())
        try:
            with self.Session() as session, session.begin():
                unit = _Unit(self, session)
                yield unit
                unit.save_all()
        except StaleDataError:
            raise ConflictError("the instance was changed by someone else at the same time; "
                                "reload and try again") from None
        finally:
            _cycles_fired.reset(token)
        if unit.deferred is not None:
            raise unit.deferred

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read/write session in one transaction, for callers outside the runtime (CLI, web)."""
        with self.Session() as session, session.begin():
            yield session

    # -- users
    def _user(self, session: Session, username: str | None) -> User:
        if not username:
            raise NotAuthorisedError("this action needs a user (--as USER)")
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"no user named '{username}'")
        return user

    def add_user(self, username: str, roles: list[str] = (), organisations: list[str] = (),
                 display_name: str | None = None, email: str | None = None, actor: str | None = None) -> User:
        """Create or update a user; roles and organisations are created on first use."""
        from .models import Organisation, Role

        with self._unit() as unit:
            s = unit.session
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                user = User(username=username, created_at=clock.now())
                s.add(user)
            user.display_name = display_name or user.display_name
            user.email = email or user.email
            for name in roles:
                role = s.scalar(select(Role).where(Role.name == name.lower())) or Role(name=name.lower())
                if role not in user.roles:
                    user.roles.append(role)
            for name in organisations:
                org = s.scalar(select(Organisation).where(Organisation.name == name)) or Organisation(name=name)
                if org not in user.organisations:
                    user.organisations.append(org)
            unit.audit("user_saved", actor, username=username, roles=sorted(user.role_names),
                       organisations=sorted(user.organisation_names))
        return user

    # -- deploy
    def deploy(self, paths: list[str], actor: str | None = None) -> list[DeployResult]:
        """Parse, validate and deploy a bundle. When ``actor`` is given it must hold the admin role."""
        bundle: Bundle = parse_bundle(collect_files(paths), self.connectors)
        with self._unit() as unit:
            if actor is not None and not authz.is_admin(self._user(unit.session, actor)):
                raise NotAuthorisedError(f"{actor} may not deploy: only admins deploy (scripts run as trusted code)")
            return write_bundle(unit.session, bundle, actor)

    def models(self) -> list[dict[str, Any]]:
        with self.Session() as s:
            out = []
            for model in s.scalars(select(ProcessModel).order_by(ProcessModel.process_id)):
                latest = model.versions[-1] if model.versions else None
                out.append({"process_id": model.process_id, "name": model.name,
                            "versions": len(model.versions),
                            "latest_version": latest.version if latest else None,
                            "content_hash": latest.content_hash if latest else None,
                            "deployed_at": latest.deployed_at.isoformat() if latest else None})
            return out

    def _latest_version(self, session: Session, process_id: str) -> CachedVersion:
        row = session.scalar(select(ProcessVersion).join(ProcessModel)
                             .where(ProcessModel.process_id == process_id)
                             .order_by(ProcessVersion.version.desc()).limit(1))
        if row is None:
            raise NotFoundError(f"no deployed process '{process_id}'")
        return self.cache.get(session, row.id)

    def _latest_version_catching(self, session: Session, message_name: str) -> CachedVersion | None:
        for model in session.scalars(select(ProcessModel).order_by(ProcessModel.id)):
            if model.versions and message_name in json.loads(model.versions[-1].start_messages):
                return self.cache.get(session, model.versions[-1].id)
        return None

    # -- instances
    def start(self, process_id: str, data: dict[str, Any] | None = None, business_key: str | None = None,
              actor: str | None = None, title: str | None = None) -> int:
        """Start the latest version of ``process_id``; returns the new instance id."""
        with self._unit() as unit:
            if actor is not None:
                self._user(unit.session, actor)
            version = self._latest_version(unit.session, process_id)
            li = unit.create(version, data=data, business_key=business_key, title=title, actor=actor)
            unit.advance(li)
            return li.row.id

    def cancel(self, instance_id: int, actor: str | None, reason: str | None = None) -> None:
        with self._unit() as unit:
            user = self._user(unit.session, actor) if actor else None
            li = unit.load(instance_id)
            if user is not None and not authz.is_admin(user) and li.row.started_by != user.username:
                raise NotAuthorisedError(f"{actor} may not cancel instance {instance_id}")
            if li.row.status in ("completed", "cancelled"):
                raise InstanceStateError(f"instance {instance_id} is already {li.row.status}")
            li.workflow.cancel()
            li.row.status = "cancelled"
            unit.audit("cancel", actor, instance_id, reason=reason)

    def retry(self, instance_id: int, actor: str | None) -> str:
        """Run an instance in ``error`` again from its failed step; returns the new status."""
        with self._unit() as unit:
            if actor is not None and not authz.is_admin(self._user(unit.session, actor)):
                raise NotAuthorisedError(f"{actor} may not retry instances: admins only")
            li = unit.load(instance_id)
            if li.row.status != "error":
                raise InstanceStateError(f"instance {instance_id} is {li.row.status}, not in error")
            unit.audit("retry", actor, instance_id, previous_error=li.row.error_message)
            li.row.status = "running"
            unit.advance(li)
        return self.instance(instance_id).status

    # -- human tasks
    def _open_task(self, session: Session, task_id: str) -> HumanTask:
        row = session.scalar(select(HumanTask).where(HumanTask.task_id == task_id))
        if row is None:
            raise NotFoundError(f"no human task {task_id}")
        return row

    def claim(self, task_id: str, actor: str) -> TaskView:
        with self._unit() as unit:
            s = unit.session
            user = self._user(s, actor)
            row = self._open_task(s, task_id)
            if row.status != "open":
                raise TaskNotOpenError(f"task {task_id} is no longer open ({row.status})")
            authz.require_may_work(user, row, json.loads(row.restrictions))
            if row.claimed_by == user.username:
                return self._task_view(s, row)
            if row.claimed_by is not None:
                raise ClaimedByOtherError(task_id, row.claimed_by)
            won = s.execute(update(HumanTask).where(
                HumanTask.id == row.id, HumanTask.status == "open", HumanTask.claimed_by.is_(None)
            ).values(claimed_by=user.username, claimed_at=clock.now()).execution_options(
                synchronize_session=False)).rowcount
            s.refresh(row)
            if not won:
                if row.status != "open":
                    raise TaskNotOpenError(f"task {task_id} is no longer open ({row.status})")
                raise ClaimedByOtherError(task_id, row.claimed_by or "someone else")
            unit.audit("claim", actor, row.instance_id, task_id, as_admin=self._acting_as_admin(user, row))
            return self._task_view(s, row)

    def unclaim(self, task_id: str, actor: str) -> None:
        with self._unit() as unit:
            user = self._user(unit.session, actor)
            row = self._open_task(unit.session, task_id)
            if row.status != "open":
                raise TaskNotOpenError(f"task {task_id} is no longer open ({row.status})")
            if row.claimed_by is None:
                return
            if row.claimed_by != user.username and not authz.is_admin(user):
                raise ClaimedByOtherError(task_id, row.claimed_by)
            unit.audit("unclaim", actor, row.instance_id, task_id, previous=row.claimed_by)
            row.claimed_by = row.claimed_at = None

    def assign(self, task_id: str, assignee: str, actor: str, reason: str | None = None) -> None:
        """Give a task to ``assignee`` (admins only); the assignee must be allowed to work it."""
        with self._unit() as unit:
            s = unit.session
            user = self._user(s, actor)
            if not authz.is_admin(user):
                raise NotAuthorisedError(f"{actor} may not assign tasks: admins only")
            target = self._user(s, assignee)
            row = self._open_task(s, task_id)
            if row.status != "open":
                raise TaskNotOpenError(f"task {task_id} is no longer open ({row.status})")
            authz.require_may_work(target, row, json.loads(row.restrictions))
            unit.audit("assign", actor, row.instance_id, task_id, assignee=assignee,
                       previous=row.claimed_by, reason=reason)
            row.claimed_by, row.claimed_at = target.username, clock.now()

    def form_for(self, task_id: str) -> Form | None:
        with self.Session() as s:
            row = self._open_task(s, task_id)
            version_id = s.scalar(select(ProcessInstance.version_id).where(ProcessInstance.id == row.instance_id))
            return self.cache.get(s, version_id).form(row.form_key, row.ui_form_key)

    def complete(self, task_id: str, actor: str, data: dict[str, Any] | None = None) -> InstanceView:
        """Complete a human task with ``data`` (validated against its form) and advance the instance.

        Refuses tasks that are not READY -- including one a timer closed after the form was shown: the
        timers are refreshed first, and the submitted data is kept in the audit log either way.
        """
        data = {} if data is None else data
        with self._unit() as unit:
            s = unit.session
            user = self._user(s, actor)
            row = self._open_task(s, task_id)
            if row.status != "open":
                unit.audit("complete_refused", actor, row.instance_id, task_id, reason=row.status,
                           data=_plain(data))
                unit.deferred = TaskNotOpenError(f"task {task_id} is no longer open ({row.status}); "
                                                 "your input is kept in the audit log")
                return None  # type: ignore[return-value]
            authz.require_may_work(user, row, json.loads(row.restrictions))
            if row.claimed_by not in (None, user.username) and not authz.is_admin(user):
                raise ClaimedByOtherError(task_id, row.claimed_by)
            version_id = s.scalar(select(ProcessInstance.version_id).where(ProcessInstance.id == row.instance_id))
            form = self.cache.get(s, version_id).form(row.form_key, row.ui_form_key)
            if form is not None:
                values = form.validate(data)
            elif isinstance(data, dict):
                values = data
            else:
                from .errors import ValidationError

                raise ValidationError({"_schema": ["data must be a JSON object"]})

            li = unit.load(row.instance_id)
            s.refresh(row)
            unit.advance(li, refresh_timers=True)
            task = li.workflow.get_task_from_id(UUID(task_id))
            if (task is None or task.state != TaskState.READY or not task.task_spec.manual
                    or li.row.status in ("error", "cancelled")):
                unit.audit("complete_refused", actor, row.instance_id, task_id, reason="not ready",
                           data=_plain(data))
                unit.deferred = TaskNotOpenError(f"task {task_id} is no longer open; "
                                                 "your input is kept in the audit log")
                return None  # type: ignore[return-value]
            if row.claimed_by is None:
                row.claimed_by, row.claimed_at = user.username, clock.now()
            task.data.update(values)
            task.run()
            row.status = "completed"
            row.completed_at = clock.now()
            row.completed_by = user.username
            unit.audit("complete", actor, row.instance_id, task_id, element=row.spec_name,
                       data=_plain(values), as_admin=self._acting_as_admin(user, row))
            unit.advance(li)
            instance_id = row.instance_id
        return self.instance(instance_id)

    @staticmethod
    def _acting_as_admin(user: User, row: HumanTask) -> bool:
        return authz.is_admin(user) and bool(row.candidate_role) and row.candidate_role not in user.role_names

    # -- messages
    def send_message(self, name: str, payload: dict[str, Any] | None = None,
                     correlations: dict[str, Any] | None = None, actor: str | None = None) -> MessageResult:
        """Deliver a message by name and correlation (property id -> value) in one transaction."""
        with self._unit() as unit:
            return unit.deliver(name, payload or {}, correlations or None, None, actor)

    def messages(self, status: str | None = None) -> list[dict[str, Any]]:
        with self.Session() as s:
            query = select(Message).order_by(Message.id)
            if status:
                query = query.where(Message.status == status)
            return [{"id": m.id, "name": m.name, "status": m.status, "payload": json.loads(m.payload),
                     "correlations": json.loads(m.correlations), "sender_instance_id": m.sender_instance_id,
                     "target_instance_id": m.target_instance_id, "created_at": m.created_at.isoformat()}
                    for m in s.scalars(query)]

    # -- timers
    def fire_due_timers(self, now: datetime | None = None, limit: int | None = None) -> list[int]:
        """Advance every instance with a timer due at ``now``; each in its own transaction.

        Returns the ids of the instances advanced. SpiffWorkflow fires a timer when its due time is
        strictly in the past, so the engine clock is set a microsecond past ``now``: a timer due exactly
        at ``now`` fires.
        """
        now = now or clock.now()
        moment = now + timedelta(microseconds=1)
        with self.Session() as s:
            query = (select(Timer.instance_id, Timer.due_at).where(Timer.due_at <= now)
                     .order_by(Timer.due_at))
            ids = list(dict.fromkeys(r.instance_id for r in s.execute(query)))
        if limit is not None:
            ids = ids[:limit]
        fired = []
        with clock.frozen_at(moment):
            for instance_id in ids:
                if self._fire_instance(instance_id, now):
                    fired.append(instance_id)
        return fired

    def _fire_instance(self, instance_id: int, now: datetime) -> bool:
        with self._unit() as unit:
            due = unit.session.scalars(select(Timer).where(Timer.instance_id == instance_id,
                                                           Timer.due_at <= now)).all()
            if not due:
                return False  # fired meanwhile by another process
            li = unit.load(instance_id, skip_locked=True)
            if li is None or li.row.status in ("error", "cancelled", "completed"):
                return False
            for timer in due:
                unit.audit("timer_fired", SYSTEM, instance_id, timer.task_id, element=timer.spec_name,
                           due_at=timer.due_at.isoformat(), fired_at=now.isoformat())
            unit.advance(li, refresh_timers=True)
            return True

    def timers(self) -> list[dict[str, Any]]:
        with self.Session() as s:
            now = clock.now()
            return [{"instance_id": t.instance_id, "task": t.spec_name, "task_id": t.task_id, "kind": t.kind,
                     "due_at": _utc(t.due_at).isoformat(),
                     "late_seconds": max(0.0, (now - _utc(t.due_at)).total_seconds())}
                    for t in s.scalars(select(Timer).order_by(Timer.due_at))]

    # -- reading
    def _task_view(self, s: Session, row: HumanTask, process_id: str | None = None) -> TaskView:
        return TaskView(row.task_id, row.spec_name, row.title, row.lane, row.instance_id, row.claimed_by,
                        _utc(row.due_at) if row.due_at else None, row.status, row.form_key, process_id)

    def tasks(self, instance_id: int | None = None, user: str | None = None) -> list[TaskView]:
        """Open human tasks, from the index; with ``user``: those claimed by or open to that user."""
        with self.Session() as s:
            query = (select(HumanTask, ProcessInstance.process_id)
                     .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
                     .where(HumanTask.status == "open").order_by(HumanTask.created_at, HumanTask.id))
            if instance_id is not None:
                query = query.where(HumanTask.instance_id == instance_id)
            if user is None:
                return [self._task_view(s, row, pid) for row, pid in s.execute(query)]
            who = self._user(s, user)
            if not authz.is_admin(who):
                roles = who.role_names
                query = query.where(HumanTask.candidate_role.is_(None) | HumanTask.candidate_role.in_(roles)
                                    | (HumanTask.claimed_by == who.username))
            out = []
            for row, pid in s.execute(query):
                if row.claimed_by == who.username or (
                        row.claimed_by is None and authz.why_not(who, row, json.loads(row.restrictions)) is None):
                    out.append(self._task_view(s, row, pid))
            return out

    def instance(self, instance_id: int) -> InstanceView:
        with self.Session() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(f"instance {instance_id} does not exist")
            version = s.get(ProcessVersion, row.version_id)
            tasks = [self._task_view(s, t, row.process_id) for t in s.scalars(
                select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.status == "open")
                .order_by(HumanTask.id))]
            timers = [{"task": t.spec_name, "task_id": t.task_id, "kind": t.kind,
                       "due_at": _utc(t.due_at).isoformat()}
                      for t in s.scalars(select(Timer).where(Timer.instance_id == instance_id)
                                         .order_by(Timer.due_at))]
            error = ({"message": row.error_message, "element": row.error_task}
                     if row.status == "error" else None)
            return InstanceView(row.id, row.process_id, version.version, row.status, row.business_key,
                                row.title, json.loads(row.data), tasks, timers, error, row.started_by,
                                _utc(row.started_at), _utc(row.ended_at) if row.ended_at else None)

    def instances_summary(self, status: str | None = None) -> list[dict[str, Any]]:
        """Instances without their state, newest first."""
        with self.Session() as s:
            query = select(ProcessInstance.id, ProcessInstance.process_id, ProcessInstance.status,
                           ProcessInstance.business_key, ProcessInstance.title).order_by(ProcessInstance.id.desc())
            if status:
                query = query.where(ProcessInstance.status == status)
            return [dict(r._mapping) for r in s.execute(query)]

    def audit(self, instance_id: int | None = None) -> list[dict[str, Any]]:
        with self.Session() as s:
            query = select(AuditEvent).order_by(AuditEvent.id)
            if instance_id is not None:
                query = query.where(AuditEvent.instance_id == instance_id)
            return [{"id": e.id, "at": _utc(e.at).isoformat(), "actor": e.actor, "action": e.action,
                     "instance_id": e.instance_id, "task_id": e.task_id, "details": json.loads(e.details)}
                    for e in s.scalars(query)]

    def load_workflow(self, instance_id: int) -> BpmnWorkflow:
        """The deserialized workflow, read-only (for diagrams and diagnostics)."""
        with self.Session() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(f"instance {instance_id} does not exist")
            version = self.cache.get(s, row.version_id)
            return load_state(row.state, version.spec, version.subprocess_specs, self.script_engine)


def _utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
