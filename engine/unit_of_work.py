"""One transaction of the runtime: load and lock instances, advance them, deliver messages, write back.

:class:`Unit` is what makes "one transaction per step" true: every runtime call opens one, and
everything it does -- the workflow state, the human-task, timer and message-wait index rows, messages
and audit events -- is written in that transaction or not at all. Messages an instance throws are
delivered inside the same unit, so a message is never half-sent.

Within the unit, a step is all or nothing: what a task's run writes to the database (through a
connector) is kept in a SAVEPOINT until the task completes. When the task fails, the savepoint is rolled
back with it, so the instance goes to ``error`` with nothing of the failed attempt written and ``retry``
runs the task once more against a clean slate; what the unit did before the step (the submitted data,
claims, audit events) stays.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Engine, delete, insert, or_, select
from sqlalchemy.orm import Session, SessionTransaction

from . import authz, clock
from .bpmn_loader import FORM_PROPERTIES
from .connectors import StepContext
from .db import for_update
from .errors import ConflictError, NotFoundError
from .models import AuditEvent, HumanTask, Message, MessageWait, ProcessInstance, TaskAudience, TaskNotice, Timer
from .notice_times import next_notice_at
from .scripting import current_instance
from .serialization import dump_state, dumps, load_state
from .spec_cache import CachedVersion, SpecCache, WorkflowCache
from .spiff_events import (
    catch_message,
    event_parts,
    instance_data,
    interrupt_if_needed,
    message_catch_points,
    start_event_subprocess,
    tasks_in_state,
    timer_due,
    timer_element,
    waiting_event_tasks,
)
from .views import InstanceView, MessageResult, TaskView, timer_view


class Host(Protocol):
    """What a unit needs of the runtime that opens it: the database engine (for its locking dialect), the
    spec and workflow caches, the script engine, and the latest version that catches a message. Named
    here so the unit of work does not import the runtime built on it."""

    engine: Engine
    cache: SpecCache
    workflows: WorkflowCache
    script_engine: Any

    def latest_version_catching(self, session: Session, message_name: str) -> CachedVersion | None: ...


class Refused(Exception):
    """Raised inside a unit to refuse the call *after* keeping what the unit wrote (e.g. a refused
    completion's data in the audit log): the unit commits, then its caller gets ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


#: Upper bound on engine-step rounds and message hops within one transaction (a runaway loop guard).
MAX_ROUNDS = 1000
SYSTEM = "system"

def task_properties(task: Task) -> dict[str, str]:
    """The ``spiffworkflow:properties`` of a task's element."""
    return (getattr(task.task_spec, "extensions", None) or {}).get("properties", {}) or {}


#: Start-event property naming the data field that receives the starting user (as Camunda's ``initiator``).
INITIATOR_PROPERTY = "samflyt.initiatorField"
#: User-task property naming the data field that receives the user who completed the task.
COMPLETED_BY_PROPERTY = "samflyt.completedByField"
#: User-task property: ``true`` lets one person work only one of the task's multi-instance siblings.
DISTINCT_WORKERS_PROPERTY = "samflyt.distinctWorkers"


def _initiator_data(version: CachedVersion, actor: str | None) -> dict[str, Any]:
    """``{field: actor}`` for each start event of the top process that names an initiator field."""
    if actor is None:
        return {}
    return dict.fromkeys(version.property_values(INITIATOR_PROPERTY), actor)


#: Start-event property naming the data field (a dotted path) an instance's title is taken from after each step.
TITLE_FIELD_PROPERTY = "samflyt.titleField"


def _derived_title(version: CachedVersion, data: dict[str, Any]) -> str | None:
    """The title the model derives from the instance's data, so worklists name a case by what it is about
    (an application by its project title) once the data says so; ``None`` keeps the title as it is."""
    for path in version.property_values(TITLE_FIELD_PROPERTY):
        value: Any = data
        for name in path.split("."):
            value = value.get(name) if isinstance(value, dict) else None
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:500]
    return None


def _case_scope(version: CachedVersion, data: dict[str, Any]) -> str | None:
    """The scope the case belongs to: the data field the process's scope properties name (on its start
    event or tasks), once the data holds it; ``None`` keeps it as it is."""
    names = (n for prop in authz.SCOPE_PROPERTIES for n in version.property_values(prop))
    for name in dict.fromkeys(names):
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None


def _reminder_days(rule: str | None) -> list[int]:
    """``samflyt.reminders="10,2"``: remind 10 and 2 working days before the due date."""
    days = []
    for part in (rule or "").split(","):
        if part.strip().isdigit():
            days.append(int(part.strip()))
    return sorted(set(days), reverse=True)


def plain(value: Any) -> Any:
    """Task data as plain JSON-able values (Decimal -> str, date -> ISO) for summaries and audit."""
    return json.loads(dumps(value))


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a) == str(b)


def correlation_match(expected: dict[str, Any], declared: Iterable[str], given: dict[str, Any]) -> bool:
    """Does a message with correlation values ``given`` fit a wait?

    Only the properties the wait declares count. Each one the instance already expects a value for must
    be given with that value; one it cannot know yet (its retrieval expression fails on its own data)
    is correlated by this message. Values given for properties the wait does not use are ignored, so an
    uncorrelated wait takes any message of its name.
    """
    for prop in declared:
        if prop in expected and (prop not in given or not _same(expected[prop], given[prop])):
            return False
    return True


def describe_error(exc: BaseException) -> str:
    """One line for an operator: the error and, when SpiffWorkflow wrapped it, the original cause."""
    text = f"{exc.__class__.__name__}: {str(exc).strip()}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc and str(cause) not in text:
        text += f" -- {cause.__class__.__name__}: {cause}"
    return text


def _evaluate_properties(env: Any, properties: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    """Correlation values from ``data`` by retrieval expression; properties that do not evaluate are left out."""
    values = {}
    for prop, expression in properties.items():
        try:
            values[prop] = env.evaluate(expression, copy.deepcopy(data))
        except Exception:  # noqa: BLE001 - the data has no such field (yet): no value
            continue
    return values


def _correlations_for(ed: MessageEventDefinition, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """SpiffWorkflow's form of correlations ({key: {property: value}}) for the given property values."""
    correlations: dict[str, dict[str, Any]] = {}
    for cp in ed.correlation_properties:
        if cp.name in values:
            for key in cp.correlation_keys:
                correlations.setdefault(key, {})[cp.name] = values[cp.name]
    return correlations


@dataclass
class Loaded:
    row: ProcessInstance
    workflow: BpmnWorkflow
    version: CachedVersion
    failed: bool = False
    #: created in this unit: no index rows exist yet, so there is nothing to read back
    new: bool = False
    #: it waited on timers / messages when loaded: those index rows may exist and must be synced
    waited: bool = False
    had_message_waits: bool = False
    #: it had human tasks open when loaded ("running"); one that was only waiting has no open rows
    had_open_tasks: bool = True
    #: changed in this unit, so it is written back (instances only looked at are not)
    dirty: bool = False
    #: message-wait rows were written for it in this unit (messages delivered later in the unit see them)
    waits_written: bool = False
    #: the instance's timer rows when the caller has read them already (the scheduler has)
    timer_rows: dict[str, Timer] | None = None
    #: after save: the open human tasks and waiting timers, for the view returned to the caller
    open_tasks: list[HumanTask] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    #: the element of the last task that started to run in this unit: what a failure is blamed on
    element: str | None = None

    def view(self) -> InstanceView:
        """The instance as saved by this unit (read after commit, without another query)."""
        tasks = [TaskView.from_row(t, self.row.process_id) for t in sorted(self.open_tasks, key=lambda t: t.id)]
        return InstanceView.from_row(self.row, self.version.version, tasks, self.timers)


@dataclass(frozen=True)
class Outgoing:
    """A message a connector sends (:meth:`StepContext.send_message`), delivered when the unit drains its
    outbox; ``to``: the one instance that may catch it."""

    name: str
    payload: dict[str, Any]
    correlations: dict[str, Any] | None
    to: int | None
    actor: str | None


@dataclass
class _Step:
    """The engine step a unit is running (:meth:`Unit.advance`): whose, for whom, which task."""

    instance_id: int
    actor: str | None
    #: the task whose run is under way; ``None`` between task runs
    task: Task | None = None
    #: open while the running task (or the preparation before it) has written through the session
    savepoint: SessionTransaction | None = None
    #: how many audit rows the unit had when the savepoint was opened (later ones go with it)
    audit_mark: int = 0
    #: how long the outbox was when the savepoint was opened (messages the step sent go with it)
    outbox_mark: int = 0


class Unit:
    """One transaction: the instances it has loaded, the messages in flight, the audit it writes."""

    def __init__(self, runtime: Host, session: Session) -> None:
        self.rt = runtime
        self.session = session
        self.loaded: dict[int, Loaded] = {}
        self.outbox: list[tuple[int | None, BpmnEvent | Outgoing]] = []
        self.audit_rows: list[dict[str, Any]] = []
        self._step: _Step | None = None

    # -- audit
    def audit(self, action: str, actor: str | None, instance_id: int | None = None,
              task_id: str | None = None, **details: Any) -> None:
        self.audit_rows.append({"at": clock.now(), "actor": actor, "action": action, "instance_id": instance_id,
                                "task_id": task_id, "details": dumps(details)})

    def flush_audit(self) -> None:
        """Write the unit's audit events in one statement (they are append-only: no ORM bookkeeping)."""
        if self.audit_rows:
            self.session.execute(insert(AuditEvent), self.audit_rows)
            self.audit_rows = []

    # -- steps: what a failing step wrote goes with it
    def savepoint(self) -> None:
        """Open the running step's savepoint unless it has one: called before a step first reaches the
        database (a connector's context, :meth:`step_context`). Steps write only through connectors, so a
        step that calls none costs no SAVEPOINT. ``begin_nested`` flushes the unit's own pending changes
        first, so they are outside the savepoint and stay when it is rolled back."""
        step = self._step
        if step is not None and step.savepoint is None:
            step.audit_mark = len(self.audit_rows)
            step.outbox_mark = len(self.outbox)
            step.savepoint = self.session.begin_nested()

    def _end_savepoint(self, keep: bool) -> None:
        """Release the step's savepoint (``keep``: its writes become the unit's) or roll it back."""
        step = self._step
        if step is None or step.savepoint is None:
            return
        savepoint, step.savepoint = step.savepoint, None
        if keep:
            savepoint.commit()
        else:  # expires the objects the step changed; objects only added by it are expunged
            savepoint.rollback()
            del self.audit_rows[step.audit_mark:]
            del self.outbox[step.outbox_mark:]

    def step_context(self, task: Task | None = None) -> StepContext:
        """The context for a connector called now: in a step, the step's instance, task and actor (and its
        savepoint is opened); outside one, just the unit's session."""
        step = self._step
        if step is None:
            return StepContext(self.session, send=self.queue_message)
        self.savepoint()
        task = task if task is not None else step.task
        return StepContext(self.session, step.instance_id, str(task.id) if task is not None else None, step.actor,
                           send=self.queue_message)

    def queue_message(self, name: str, payload: dict[str, Any], correlations: dict[str, Any] | None,
                      to: int | None, actor: str | None = None) -> None:
        """A message sent from a connector: delivered by :meth:`drain`, as the messages instances throw."""
        step = self._step
        sender = step.instance_id if step is not None else None
        actor = actor if actor is not None else (step.actor if step is not None else None)
        self.outbox.append((sender, Outgoing(name, payload, correlations, to, actor)))

    # -- loading
    def lock_row(self, instance_id: int, skip_locked: bool = False) -> ProcessInstance | None:
        query = for_update(select(ProcessInstance).where(ProcessInstance.id == instance_id), self.rt.engine,
                           skip_locked=skip_locked)
        return self.session.scalar(query.execution_options(populate_existing=True))

    def load(self, instance_id: int, skip_locked: bool = False) -> Loaded | None:
        if instance_id in self.loaded:
            return self.loaded[instance_id]
        row = self.lock_row(instance_id, skip_locked)
        if row is None:
            if skip_locked:
                return None
            raise NotFoundError(f"instance {instance_id} does not exist")
        return self.load_row(row)

    def load_for_task(self, task_id: str) -> tuple[HumanTask, Loaded]:
        """Lock and load the instance of a human task, then read the task's row.

        The instance is locked first, as every other unit does, so two units never wait on each other
        in opposite order; the task row read after the lock shows what the previous holder committed.
        """
        instance_id = select(HumanTask.instance_id).where(HumanTask.task_id == task_id).scalar_subquery()
        query = for_update(select(ProcessInstance).where(ProcessInstance.id == instance_id), self.rt.engine)
        instance_row = self.session.scalar(query.execution_options(populate_existing=True))
        task_row = self.session.scalar(select(HumanTask).where(HumanTask.task_id == task_id)
                                       .execution_options(populate_existing=True))
        if instance_row is None or task_row is None:
            raise NotFoundError(f"no human task {task_id}")
        loaded = self.loaded.get(instance_row.id) or self.load_row(instance_row)
        return task_row, loaded

    def load_row(self, row: ProcessInstance) -> Loaded:
        """Load the workflow of an instance row this unit has locked (without reading the row again)."""
        if row.id in self.loaded:
            return self.loaded[row.id]
        version = self.rt.cache.get(self.session, row.version_id)
        workflow = self.rt.workflows.take(row.id, row.lock_version)
        if workflow is None:
            workflow = load_state(row.state, version.spec, version.subprocess_specs, self.rt.script_engine,
                                  version.specs_text)
        catch_points = bool(message_catch_points(workflow))
        loaded = Loaded(row, workflow, version, waited=bool(waiting_event_tasks(workflow)) or catch_points,
                        had_message_waits=catch_points, had_open_tasks=row.status != "waiting")
        self.loaded[row.id] = loaded
        return loaded

    def create(self, version: CachedVersion, *, data: dict[str, Any] | None, business_key: str | None,
               title: str | None, actor: str | None) -> Loaded:
        workflow = BpmnWorkflow(version.spec, version.subprocess_specs, script_engine=self.rt.script_engine)
        data = {**(data or {}), **_initiator_data(version, actor)}
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
        loaded = Loaded(row, workflow, version, new=True)
        self.loaded[row.id] = loaded
        self.audit("start", actor, row.id, process_id=version.process_id, version=version.version,
                   business_key=business_key, data=plain(data or {}))
        return loaded

    # -- running
    def advance(self, li: Loaded, refresh_timers: bool = False, first: Task | None = None,
                before: Callable[[], None] | None = None, actor: str | None = None,
                fired: dict[str, Any] | None = None) -> bool:
        """Run engine steps until only human tasks and waits remain; on a failure, record ``error``.

        ``first`` is a (human) task to run before the engine steps, ``before`` any other preparation;
        both run under the same error handling. A task that raises is put back to READY with the data
        it had before it ran, so the instance keeps the state before the failing step and ``retry`` can
        run it again; the error names the element that failed (a successor whose timer or pre-script
        failed, not the task that was completing).

        Each task's run is all or nothing in the database too: what it writes (through connectors, whose
        :class:`~engine.connectors.StepContext` names ``actor``) is kept in a savepoint that is released
        when the task completes and rolled back when it fails, so the writes of the tasks that completed
        stay, as their completion does, and those of the failed one go.

        With ``refresh_timers``, every timer that fires is audited (``timer_fired``) here, whoever caused
        the refresh -- the scheduler, or a user's step that a boundary timer wins the race against;
        ``fired`` adds details to those rows (the scheduler's worker name).
        """
        if li.failed or li.row.status in ("error", "cancelled"):
            return False
        li.dirty = True
        wf = li.workflow
        started: dict[str, Any] = {}
        step = self._step = _Step(li.row.id, actor)
        instance_token = current_instance.set(li.row.id)

        def will_complete(task: Task) -> None:
            li.element = task.task_spec.bpmn_id or task.task_spec.name
            started["task"] = task
            started["data"] = copy.deepcopy(task.data)
            step.task = task

        def did_complete(task: Task) -> None:
            interrupt_if_needed(task)
            step.task = None
            self._end_savepoint(keep=True)  # the task is done: what it wrote stays, as its completion does

        try:
            if before is not None:
                before()
            if first is not None:
                will_complete(first)
                first.run()
                step.task = None
                self._end_savepoint(keep=True)
            if refresh_timers:  # fire what is due by the engine clock (timer expressions may raise too)
                self._refresh_timers(li, fired or {})
            for _ in range(MAX_ROUNDS):
                wf.do_engine_steps(will_complete_task=will_complete, did_complete_task=did_complete)
                if not tasks_in_state(wf, TaskState.READY, manual=False):
                    break
            if not wf.completed and not tasks_in_state(wf, TaskState.NOT_FINISHED_MASK):
                # an interrupting event subprocess ended the process: its branch has no End task in
                # SpiffWorkflow, so nothing marks the workflow complete (nor copies the final data)
                last = max(tasks_in_state(wf, TaskState.COMPLETED), key=lambda t: t.last_state_change)
                wf._mark_complete(last)
            self._end_savepoint(keep=True)
        except Exception as exc:  # a failing script, expression, connector, DMN table or timer
            # Roll back what the failed attempt wrote. A task that completed before its successor's
            # preparation failed (a timer expression) stays completed, so what it wrote stays too.
            running = step.task
            self._end_savepoint(keep=running is not None and running.state == TaskState.COMPLETED)
            task = started.get("task")
            if task is not None and task.state in (TaskState.ERROR, TaskState.STARTED, TaskState.READY):
                task.data = started["data"]
                task._set_state(TaskState.READY)
            failed = getattr(exc, "task", None)
            failed = failed if isinstance(failed, Task) else task
            li.failed = True
            # set after the rollback (which expires what the step changed), so the error is written
            li.row.status = "error"
            li.row.error_message = describe_error(exc)
            li.row.error_task = failed.task_spec.bpmn_id or failed.task_spec.name if failed is not None else None
            self.audit("error", SYSTEM, li.row.id, str(failed.id) if failed is not None else None,
                       message=li.row.error_message, element=li.row.error_task)
            return False
        finally:
            self._step = None
            current_instance.reset(instance_token)
        for event in wf.get_events():
            self.outbox.append((li.row.id, event))
        return True

    def _refresh_timers(self, li: Loaded, details: dict[str, Any]) -> None:
        """Fire the timers due by the engine clock and audit each one that fired."""
        now = clock.now()
        due: dict[UUID, tuple[str, datetime]] = {}
        for task in waiting_event_tasks(li.workflow):
            when = timer_due(task)
            if when is not None and when[1] <= now:
                due[task.id] = (timer_element(task), when[1])
        li.workflow.refresh_timers()
        for task_id, (element, due_at) in due.items():
            task = li.workflow.get_task_from_id(task_id)
            after = timer_due(task) if task is not None and task.state == TaskState.WAITING else None
            if task is None or task.state == TaskState.CANCELLED or (after is not None and after[1] == due_at):
                continue  # cancelled meanwhile, or did not fire (still waiting for the same moment)
            self.audit("timer_fired", SYSTEM, li.row.id, str(task_id), **{
                "element": element, "due_at": due_at.isoformat(), "fired_at": now.isoformat(),
                "wall_time": datetime.now(UTC).isoformat(), **details})

    # -- messages
    def deliver(self, name: str, payload: dict[str, Any], given: dict[str, Any] | None,
                sender: int | None, actor: str | None, to: int | None = None,
                held: Message | None = None) -> MessageResult:
        """Deliver one message to the oldest matching waiting instance, else a message start event; with
        ``to``, only to a wait of that instance (and no start event).

        A message whose matching wait belongs to an instance in ``error`` is *held* for that instance
        (status ``held``, its target set) instead of being lost: :meth:`deliver_held` hands it over when
        the instance runs again. ``held`` is such a row, delivered now (no new row is written)."""
        payload = payload or {}
        message = held or Message(name=name, payload=dumps(payload), correlations=dumps(given or {}),
                                  sender_instance_id=sender, sent_by=actor, status="undeliverable",
                                  created_at=clock.now())
        self.session.add(message)
        for li in self.loaded.values():  # waits that arose in this unit (a reply to a request just sent)
            if li.dirty and not li.failed:
                self._sync_message_waits(li)
        self.session.flush()
        env = self.rt.script_engine.environment
        query = select(MessageWait).where(MessageWait.message_name == name)
        if to is not None:
            query = query.where(MessageWait.instance_id == to)
        waits = self.session.scalars(query.order_by(MessageWait.created_at, MessageWait.id)).all()
        in_error: int | None = None
        for wait in waits:
            properties = json.loads(wait.properties_json or "{}")
            values = given if given else _evaluate_properties(env, properties, payload)
            if not correlation_match(json.loads(wait.correlations), properties, values):
                continue
            li = self.load(wait.instance_id)
            point = message_catch_points(li.workflow).get(wait.task_id)
            if point is not None and li.row.status == "error" and in_error is None:
                in_error = li.row.id  # kept for it, unless a running instance takes the message
            if point is None or li.row.status in ("error", "cancelled"):
                continue
            task = point.task if point.task is not None else start_event_subprocess(li.workflow, point)
            if task is None or task.state != TaskState.WAITING:
                continue
            catch_message(task, copy.deepcopy(payload), _correlations_for(point.definition, values), point.definition)
            self.advance(li, actor=actor)
            self._mark_delivered(message, li.row.id, actor, name)
            return MessageResult(message.id, "delivered", li.row.id)

        version = self.rt.latest_version_catching(self.session, name) if to is None else None
        if version is not None:
            li = self.create(version, data=None, business_key=None, title=None, actor=actor or SYSTEM)
            self.advance(li, actor=actor or SYSTEM)
            start = next((t for t in waiting_event_tasks(li.workflow)
                          if isinstance(t.task_spec.event_definition, MessageEventDefinition)
                          and t.task_spec.event_definition.name == name), None)
            if start is not None:
                ed = start.task_spec.event_definition
                properties = {cp.name: cp.retrieval_expression for cp in ed.correlation_properties}
                values = {**_evaluate_properties(env, properties, payload), **(given or {})}
                catch_message(start, copy.deepcopy(payload), _correlations_for(ed, values))
                self.advance(li, actor=actor or SYSTEM)
                self._mark_delivered(message, li.row.id, actor, name)
                return MessageResult(message.id, "delivered", li.row.id, started=True)
        if in_error is not None:
            message.status, message.target_instance_id = "held", in_error
            self.audit("message_held", actor, in_error, message_id=message.id, name=name,
                       correlations=plain(given or {}))
            return MessageResult(message.id, "held", in_error)
        self.audit("message_undeliverable", actor, sender, message_id=message.id, name=name,
                   correlations=plain(given or {}), **({"to": to} if to is not None else {}))
        return MessageResult(message.id, "undeliverable", None)

    def deliver_held(self, instance_id: int, actor: str | None) -> list[MessageResult]:
        """Hand an instance that runs again the messages held for it while it was in ``error``, oldest first."""
        results = []
        held = self.session.scalars(select(Message).where(Message.status == "held",
                                                          Message.target_instance_id == instance_id)
                                    .order_by(Message.id)).all()
        for message in held:
            if self.load(instance_id).row.status != "running":
                break
            results.append(self.deliver(message.name, json.loads(message.payload),
                                        json.loads(message.correlations) or None, message.sender_instance_id,
                                        actor, to=instance_id, held=message))
        return results

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
            if isinstance(event, Outgoing):
                self.deliver(event.name, event.payload, event.correlations, sender, event.actor or SYSTEM,
                             to=event.to)
                continue
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
            if li.dirty:
                self.save(li)
        self.flush_audit()

    def save(self, li: Loaded) -> None:
        wf, row = li.workflow, li.row
        now = clock.now()
        row.state = dump_state(wf)
        data = instance_data(wf)
        row.data = dumps(data)
        row.title = _derived_title(li.version, data) or row.title
        row.scope = _case_scope(li.version, data) or row.scope
        if row.status not in ("error", "cancelled"):
            row.error_message = row.error_task = None
            if wf.completed:
                row.status = "completed"
            elif tasks_in_state(wf, TaskState.READY):
                row.status = "running"
            elif tasks_in_state(wf, TaskState.WAITING) or message_catch_points(wf):
                row.status = "waiting"
            else:  # nothing ready, nothing waiting, not done: a step failed outside any task's run
                row.status = "error"
                row.error_message = "stalled: no task is ready or waiting (a task's preparation failed)"
                self.audit("error", SYSTEM, row.id, message=row.error_message)
        if row.status in ("completed", "cancelled") and row.ended_at is None:
            row.ended_at = now
        row.updated_at = now
        self._sync_human_tasks(li, now)
        self._sync_timers(li)
        self._sync_message_waits(li)

    def _sync_human_tasks(self, li: Loaded, now: datetime) -> None:
        ready = {str(t.id): t for t in tasks_in_state(li.workflow, TaskState.READY, manual=True)}
        if li.row.status == "cancelled":
            ready = {}
        known: dict[str, HumanTask] = {}
        if not li.new and li.had_open_tasks:
            # open rows, and closed rows of tasks ready again (reopened, not duplicated)
            known = {r.task_id: r for r in self.session.scalars(select(HumanTask).where(
                HumanTask.instance_id == li.row.id,
                or_(HumanTask.status == "open", HumanTask.task_id.in_(list(ready)))))}
        li.open_tasks = []
        gone: list[str] = []  # task ids whose audience rows go: closed, or open again with new rules
        audience: list[dict[str, str]] = []
        for task_id, row in known.items():
            if row.status == "open" and task_id not in ready:
                row.status = "closed"
                row.completed_at = now
                gone.append(task_id)
            elif row.status == "open":
                li.open_tasks.append(row)
                if row.scope != li.row.scope and authz.SCOPES not in json.loads(row.restrictions or "{}"):
                    row.scope = li.row.scope  # the case came to know its scope: its open tasks follow it
        for task_id, task in ready.items():
            row = known.get(task_id)
            if row is not None and row.status == "open":
                continue
            spec = task.task_spec
            props = task_properties(task)
            if row is not None:  # reopened: a fresh round of the task, so its notices start over
                self.session.execute(delete(TaskNotice).where(TaskNotice.human_task_id == row.id))
            row = row or HumanTask(task_id=task_id, instance_id=li.row.id, process_id=li.row.process_id)
            row.spec_name = spec.bpmn_id or spec.name
            row.title = spec.bpmn_name or spec.bpmn_id or spec.name
            row.lane = spec.lane
            row.candidate_role = authz.candidate_role(spec.lane, props, task.data)
            row.form_key, row.ui_form_key = (props.get(p) for p in FORM_PROPERTIES)
            restrictions = authz.restrictions_for(props, task.data)
            if str(props.get(DISTINCT_WORKERS_PROPERTY, "")).lower() == "true":
                restrictions["distinct_workers"] = [spec.bpmn_id or spec.name]
            row.restrictions = dumps(restrictions)
            row.narrowed = sum(1 for rule in ("organisations", "users") if rule in restrictions)
            row.scope_bound = authz.SCOPES in restrictions
            row.distinct_workers = bool(restrictions.get("distinct_workers"))
            if row.id is not None:
                gone.append(task_id)
            audience += [{"task_id": task_id, "rule": rule, "value": value}
                         for rule, value in authz.audience(restrictions)]
            # the scope that oversees the task: its own scope property's, else its case's (set by save()
            # above from the data), so an instance's scope binds all its tasks -- not as a restriction,
            # since who may work it (an applicant of an organisation in no scope) is its narrowing's to say
            row.scope = authz.task_scope(restrictions) if authz.SCOPES in restrictions else li.row.scope
            row.due_at = self._due_at(li, task, props)
            row.reminders = dumps(_reminder_days(props.get("samflyt.reminders")))
            row.overdue_at = None
            row.next_notice_at = next_notice_at(row, set())
            row.status = "open"
            row.created_at = now
            row.claimed_by = row.claimed_at = row.completed_at = row.completed_by = None
            self.session.add(row)
            li.open_tasks.append(row)
        if gone:
            self.session.execute(delete(TaskAudience).where(TaskAudience.task_id.in_(gone)))
        if audience:
            self.session.execute(insert(TaskAudience), audience)

    def _due_at(self, li: Loaded, task: Task, props: dict[str, str]) -> datetime | None:
        expression = props.get("samflyt.dueDate")
        if not expression:
            return None
        try:
            value = self.rt.script_engine.evaluate(task, expression)
            return clock.to_utc(value, end_of_day=True) if value not in (None, "") else None
        except Exception as exc:  # noqa: BLE001 - a bad due date must not stop the process
            self.audit("due_date_invalid", SYSTEM, li.row.id, str(task.id),
                       expression=expression, error=str(exc))
            return None

    def _sync_timers(self, li: Loaded) -> None:
        wanted: dict[str, tuple[str, str, datetime]] = {}
        for task in waiting_event_tasks(li.workflow):
            if any(isinstance(d, TimerEventDefinition) for d in event_parts(task.task_spec.event_definition)):
                due = timer_due(task)
                if due is not None:
                    wanted[str(task.id)] = (timer_element(task), *due)
        li.timers = sorted((timer_view(element, task_id, kind, due)
                            for task_id, (element, kind, due) in wanted.items()), key=lambda t: t["due_at"])
        rows: dict[str, Timer] = {}
        if li.timer_rows is not None:
            rows = li.timer_rows
        elif li.waited and not li.new:  # else no timer rows can exist for this instance
            rows = {r.task_id: r for r in self.session.scalars(select(Timer).where(Timer.instance_id == li.row.id))}
        for task_id, row in rows.items():
            if task_id not in wanted:
                self.session.delete(row)
        for task_id, (spec_name, kind, due) in wanted.items():
            row = rows.get(task_id)
            if row is None:
                self.session.add(Timer(instance_id=li.row.id, task_id=task_id, spec_name=spec_name,
                                       kind=kind, due_at=due))
            elif row.due_at != due:  # a cycle's next round: due again later, claimable again
                row.due_at = due
                row.claimed_by = row.claimed_until = None

    def _sync_message_waits(self, li: Loaded) -> None:
        wanted: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {}
        env = self.rt.script_engine.environment
        for key, point in message_catch_points(li.workflow).items():
            ed = point.definition
            properties = {cp.name: cp.retrieval_expression for cp in ed.correlation_properties}
            # what a message already correlated, else what the instance's own data says it expects
            expected = _evaluate_properties(env, properties, point.data)
            for cp in ed.correlation_properties:
                known = [point.workflow.correlations.get(k, {}).get(cp.name) for k in cp.correlation_keys]
                known = [v for v in known if v is not None]
                if known:
                    expected[cp.name] = known[0]
            wanted[key] = (ed.name, plain(expected), properties)
        if (li.had_message_waits and not li.new) or li.waits_written:  # else no wait rows can exist for it
            self.session.execute(delete(MessageWait).where(MessageWait.instance_id == li.row.id))
        li.waits_written = bool(wanted)
        for task_id, (name, expected, properties) in wanted.items():
            self.session.add(MessageWait(instance_id=li.row.id, task_id=task_id, message_name=name,
                                         correlations=dumps(expected), properties_json=dumps(properties),
                                         created_at=li.row.started_at))
