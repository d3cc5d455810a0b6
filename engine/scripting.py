"""The script environment for BPMN script tasks, expressions and service tasks.

Scripts, conditions and DMN expressions run in the restricted environment of :mod:`engine.sandbox`
(RestrictedPython, an allow-list of builtins and imports, a time limit, ``print`` to the log): whoever
deploys a bundle must not get to run arbitrary code on the server. Scripts and expressions see the task
data plus this documented, limited set of globals:

* ``datetime``, ``date``, ``timedelta``, ``timezone``, ``Decimal`` -- the standard types;
* ``now()`` -- the engine clock (aware UTC datetime), ``today()`` -- today's date in Norway;
* ``connector(name, **params)`` -- call a registered connector, as a service task would;
* ``add_working_days``, ``working_days_before``, ``next_working_day``, ``deadline``, ``is_working_day``
  -- Norwegian business days (:mod:`engine.calendar`).

Extra helpers (e.g. the business calendar) are added with :func:`register_global`.
Service tasks call the named connector with its evaluated parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from . import calendar, clock, sandbox
from .connectors import ConnectorRegistry, StepContext
from .serialization import check_storable, dumps

_EXTRA_GLOBALS: dict[str, Any] = {}


def register_global(name: str, value: Any) -> None:
    """Make ``value`` available to every script and expression under ``name``."""
    _EXTRA_GLOBALS[name] = value


#: The names every script and expression sees besides task data (see the module docstring).
BUILTIN_GLOBALS = ("datetime", "date", "timedelta", "timezone", "Decimal", "now", "today", "connector",
                   *calendar.SCRIPT_HELPERS)


def reserved_names() -> set[str]:
    """Names task data must not use: a data field of that name would hide the helper from scripts."""
    return set(BUILTIN_GLOBALS) | set(_EXTRA_GLOBALS)


def _today() -> date:
    return clock.now().astimezone(clock.LOCAL_TZ).date()


#: How a service task that SpiffWorkflow calls back reaches the context of the step running in this thread:
#: the runtime sets it to its unit's ``step_context`` for the unit's lifetime. Connectors never read it:
#: they are given ``ctx``.
current_step: ContextVar[Callable[[Any], StepContext] | None] = ContextVar("samflyt_current_step", default=None)


#: The instance whose step runs in this thread (set by the unit of work), for the script log.
current_instance: ContextVar[int | None] = ContextVar("samflyt_current_instance", default=None)


def _element_of(task: Any) -> str | None:
    spec = getattr(task, "task_spec", None)
    return (spec.bpmn_id or spec.name) if spec is not None else None


def _step_context(task: Any) -> StepContext | None:
    """The context of the step running in this thread (its unit opens the step's savepoint), if any."""
    step = current_step.get()
    return step(task) if step is not None else None


class SandboxEnvironment(TaskDataEnvironment):
    """SpiffWorkflow's task-data environment, with scripts and expressions compiled and run restricted.

    As in SpiffWorkflow, a script runs with the task data as its namespace, and what it leaves there
    (less the helpers, functions, imported modules) is the task's new data.
    """

    def evaluate(self, expression, context, external_context=None):  # type: ignore[no-untyped-def]
        code = sandbox.compile_expression(expression)
        names = {**self.globals, **(external_context or {}), **context}
        with sandbox.timed():
            return eval(code, sandbox.restricted_globals(names))  # noqa: S307 - restricted code

    def execute(self, script, context, external_context=None):  # type: ignore[no-untyped-def]
        self.check_for_overwrite(context, external_context or {})
        code = sandbox.compile_script(script)
        context.update(sandbox.restricted_globals({**self.globals, **(external_context or {})}))
        try:
            with sandbox.timed():
                exec(code, context)  # noqa: S102 - restricted code
        finally:
            self._remove_globals_and_functions_from_context(context, external_context)
        check_storable(context)
        return True

    def _remove_globals_and_functions_from_context(self, context, external_context=None):  # type: ignore[no-untyped-def]
        super()._remove_globals_and_functions_from_context(context, external_context)
        for key in [k for k, v in context.items() if k in sandbox.GUARDS or sandbox.is_sandbox_value(v)]:
            context.pop(key)


class SamflytScriptEngine(PythonScriptEngine):
    """PythonScriptEngine with our globals and connector-backed service tasks."""

    def __init__(self, connectors: ConnectorRegistry) -> None:
        self.connectors = connectors
        env_globals: dict[str, Any] = {
            "datetime": datetime, "date": date, "timedelta": timedelta, "timezone": timezone,
            "Decimal": Decimal, "now": clock.now, "today": _today, "connector": self._call_connector,
            **calendar.SCRIPT_HELPERS,
        }
        env_globals.update(_EXTRA_GLOBALS)
        super().__init__(environment=SandboxEnvironment(env_globals))

    def evaluate(self, task, expression, external_context=None):  # type: ignore[no-untyped-def]
        token = sandbox.running.set((current_instance.get(), _element_of(task)))
        try:
            return super().evaluate(task, expression, external_context)
        finally:
            sandbox.running.reset(token)

    def execute(self, task, script, external_context=None):  # type: ignore[no-untyped-def]
        token = sandbox.running.set((current_instance.get(), _element_of(task)))
        try:
            return super().execute(task, script, external_context)
        finally:
            sandbox.running.reset(token)

    def _call_connector(self, name: str, **params: Any) -> Any:
        with sandbox.untimed():  # trusted code: its own timeouts, not the script's
            return self.connectors.call(name, params, _step_context(None))

    def call_service(self, task, operation_name: str, operation_params: dict[str, Any], **_: Any) -> str:
        """Run a service task: call the connector; SpiffWorkflow expects the result as JSON text."""
        params = {name: spec.get("value") if isinstance(spec, dict) else spec
                  for name, spec in operation_params.items()}
        try:
            result = self.connectors.call(operation_name, params, _step_context(task))
        except Exception as exc:
            raise WorkflowTaskException(
                f"connector '{operation_name}' failed: {exc.__class__.__name__}: {exc}",
                task=task, exception=exc,
            ) from exc
        return dumps(result)
