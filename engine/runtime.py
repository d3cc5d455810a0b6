"""The runtime: start, claim, complete, message, cancel, retry, fire timers -- one transaction each.

Every public call follows the same shape: lock and load the instance, act, run engine steps to the next
wait state, then write back the workflow state, the human-task, timer and message-wait index rows and
the audit events, all in one database transaction (:class:`~engine.unit_of_work.Unit`). A crash at any point
leaves the previous state whole. Messages an instance throws are delivered in that same transaction (see
:meth:`~engine.unit_of_work.Unit.deliver`), so a message is never half-sent; one that nobody waits for is
stored as ``undeliverable`` and shown by ``samflyt messages``.

:class:`Runtime` is the one API the CLI, the scheduler, the web UI and the tests drive. It does no work of
its own: it composes the services of :mod:`engine.services`, each with one job, over one shared
:class:`~engine.services.core.Core`. No Flask here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from sqlalchemy import Engine

from .connectors import ConnectorRegistry
from .connectors import registry as default_connectors
from .services.core import Core
from .services.directory import Directory
from .services.instances import Instances
from .services.migration import Migrations
from .services.reads import Reads
from .services.repository import ModelRepository
from .services.tasks import Tasks
from .services.timers import TIMER_LEASE, Timers

__all__ = ["TIMER_LEASE", "Runtime", "open_runtime"]


def _delegate(service: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """A method of :class:`Runtime` that calls ``method`` on the service held in attribute ``service``
    (signature and docstring are the service's)."""
    name = method.__name__

    @wraps(method)
    def call(self: Runtime, *args: Any, **kwargs: Any) -> Any:
        return getattr(getattr(self, service), name)(*args, **kwargs)

    return call


class Runtime:
    """The engine's service layer. Thread-safe: each call opens its own session and transaction."""

    def __init__(self, engine: Engine | str | None = None, connectors: ConnectorRegistry | None = None,
                 workflow_cache_size: int = 256, spec_cache: bool = True) -> None:
        self.core = Core(engine, connectors, workflow_cache_size, spec_cache)
        self.directory = Directory(self.core)
        self.repository = ModelRepository(self.core)
        self.instances = Instances(self.core)
        self.task_service = Tasks(self.core)
        self.timer_service = Timers(self.core)
        self.reads = Reads(self.core)
        self.migrations = Migrations(self.core)
        # the core's parts, as callers outside the runtime use them (pages query with rt.Session)
        self.engine = self.core.engine
        self.Session = self.core.Session
        self.WriteSession = self.core.WriteSession
        self.connectors = self.core.connectors
        self.script_engine = self.core.script_engine
        self.cache = self.core.cache
        self.workflows = self.core.workflows

    session = _delegate("core", Core.session)
    load_workflow = _delegate("core", Core.load_workflow)

    # users and scopes
    add_user = _delegate("directory", Directory.add_user)
    set_scope = _delegate("directory", Directory.set_scope)
    set_user = _delegate("directory", Directory.set_user)

    # deployed models
    deploy = _delegate("repository", ModelRepository.deploy)
    element_names = _delegate("repository", ModelRepository.element_names)
    process_name = _delegate("repository", ModelRepository.process_name)
    models = _delegate("repository", ModelRepository.models)
    startable = _delegate("repository", ModelRepository.startable)

    # instances and messages
    start = _delegate("instances", Instances.start)
    start_as = _delegate("instances", Instances.start_as)
    cancel = _delegate("instances", Instances.cancel)
    retry = _delegate("instances", Instances.retry)
    call_connector = _delegate("instances", Instances.call_connector)
    send_message = _delegate("instances", Instances.send_message)
    messages = _delegate("instances", Instances.messages)

    # moving instances between versions
    migrate = _delegate("migrations", Migrations.migrate)

    # human tasks
    why_not = _delegate("task_service", Tasks.why_not)
    may_view_task = _delegate("task_service", Tasks.may_view_task)
    may_reassign = _delegate("task_service", Tasks.may_reassign)
    claim = _delegate("task_service", Tasks.claim)
    unclaim = _delegate("task_service", Tasks.unclaim)
    assign = _delegate("task_service", Tasks.assign)
    exclude_person = _delegate("task_service", Tasks.exclude_person)
    candidates = _delegate("task_service", Tasks.candidates)
    form_for = _delegate("task_service", Tasks.form_for)
    form_texts = _delegate("task_service", Tasks.form_texts)
    complete = _delegate("task_service", Tasks.complete)
    task_data = _delegate("task_service", Tasks.task_data)

    # timers
    fire_due_timers = _delegate("timer_service", Timers.fire_due_timers)
    next_due = _delegate("timer_service", Timers.next_due)
    timers = _delegate("timer_service", Timers.timers)

    # reading
    tasks = _delegate("reads", Reads.tasks)
    task_page = _delegate("reads", Reads.task_page)
    instance = _delegate("reads", Reads.instance)
    instances_summary = _delegate("reads", Reads.instances_summary)
    audit = _delegate("reads", Reads.audit)
    steps = _delegate("reads", Reads.steps)
    diagram = _delegate("reads", Reads.diagram)
    data_fields = _delegate("reads", Reads.data_fields)
    message_forms = _delegate("reads", Reads.message_forms)
    may_view_instance = _delegate("reads", Reads.may_view_instance)
    workers_hidden_from = _delegate("reads", Reads.workers_hidden_from)
    may_send_messages = _delegate("reads", Reads.may_send_messages)


def open_runtime(db_url: str | None = None) -> Runtime:
    """The runtime an entry point (CLI, web app, scheduler) uses: the process-wide connector registry with
    every connector the installed packages declare (``samflyt.connectors`` entry points)."""
    default_connectors.load_entry_points()
    return Runtime(db_url, connectors=default_connectors)
