"""Workflow (de)serialization: specs once per version, instance state without the spec.

SpiffWorkflow's default serialization embeds the whole process spec (and every called subprocess
spec) in each workflow; for a small model that is three quarters of the bytes. We serialize the specs
once at deploy time (:func:`dump_specs`) and keep instance rows to the workflow state alone
(:func:`dump_state`), restoring against the parsed spec objects held in the per-process cache.

Task data may contain :class:`~decimal.Decimal` (from a DMN table or a script) and dates; both are
registered so they round-trip instead of breaking ``json.dumps``.

Both the specs and every state carry the version of SpiffWorkflow's serializer that wrote them
(``serializer_version``), so that after an upgrade of SpiffWorkflow they can be brought up to date. Its
migrations are written for its own form -- one dict holding the state *and* the specs -- so an older state
is joined with the specs as they were stored for its version, migrated as one, and restored against the
current specs (:func:`load_state`); older specs are migrated on their own when they are read
(:func:`load_specs`).
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.migration.version_migration import MIGRATIONS
from SpiffWorkflow.bpmn.serializer.workflow import VERSION, BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from .errors import SamflytError

VERSION_KEY = BpmnWorkflowSerializer.VERSION_KEY
#: What wrote the specs and states stored before they said so: this project has required SpiffWorkflow 3.2
#: (serializer 1.5) from its first schema, and its states always carried their version.
UNMARKED_VERSION = "1.5"
#: Migrations that run the following ones themselves (SpiffWorkflow chains 1.0 -> 1.1 -> 1.2 -> 1.3 in
#: one call, and each later one is a single step).
_CHAINED = {"1.0": "1.3", "1.1": "1.3", "1.2": "1.3"}


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _after(version: str) -> str:
    """The serializer version a state is at after SpiffWorkflow's migration from ``version``."""
    if version in _CHAINED:
        return _CHAINED[version]
    later = sorted((v for v in [*MIGRATIONS, VERSION] if _key(v) > _key(version)), key=_key)
    return later[0] if later else VERSION


def _upgrade(dct: dict[str, Any], version: str, until: str = VERSION) -> None:
    """Run SpiffWorkflow's migrations on a whole workflow dict (state and specs) from ``version`` to
    ``until``, one step after another (SpiffWorkflow itself runs only the step from the version found)."""
    while _key(version) < _key(until):
        if version not in MIGRATIONS:
            raise SamflytError(f"no migration from SpiffWorkflow serializer version {version}")
        MIGRATIONS[version](dct)
        version = _after(version)


# Compact task records: short keys, defaults left out, parent derived from children. The tasks are
# written as a list in tree order (parents first), which is also the order SpiffWorkflow needs to
# rebuild task data from its parent-relative deltas -- so the state no longer depends on the key order
# of a JSON object at all.
_TASK_KEYS = (("id", "i"), ("children", "c"), ("last_state_change", "l"), ("state", "s"),
              ("task_spec", "t"))
_TASK_OPTIONAL = (("triggered", "g", False), ("internal_data", "n", {}), ("data", "d", {}),
                  ("typename", "y", "Task"))


def _pack_tasks(tasks: dict[str, dict[str, Any]], root: str, registry) -> list[dict[str, Any]]:
    packed, stack = [], [root]
    while stack:
        task = tasks[stack.pop()]
        rec = {short: task[long] for long, short in _TASK_KEYS}
        for long, short, default in _TASK_OPTIONAL:
            if task.get(long, default) != default:
                rec[short] = task[long]
        if "d" in rec:  # a root task's data: SpiffWorkflow leaves it unconverted too
            rec["d"] = registry.convert(registry.clean(rec["d"]))
        delta = task.get("delta") or {}
        if delta.get("updates"):  # SpiffWorkflow leaves deltas unconverted (Decimal, date...)
            rec["u"] = registry.convert(delta["updates"])
        if delta.get("deletions"):
            rec["x"] = delta["deletions"]
        packed.append(rec)
        stack.extend(reversed(task["children"]))
    return packed


def _unpack_tasks(packed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    parents = {child: rec["i"] for rec in packed for child in rec["c"]}
    tasks = {}
    for rec in packed:
        task = {long: rec[short] for long, short in _TASK_KEYS}
        for long, short, default in _TASK_OPTIONAL:
            task[long] = rec.get(short, copy.deepcopy(default))
        task["parent"] = parents.get(rec["i"])
        task["delta"] = {"updates": rec.get("u", {}), "deletions": rec.get("x", [])} if task["parent"] else {}
        tasks[rec["i"]] = task
    return tasks


def _pack(dct: dict[str, Any], registry) -> None:
    for part in (dct, *dct.get("subprocesses", {}).values()):
        part["tasks"] = _pack_tasks(part["tasks"], part["root"], registry)
        part["correlations"] = registry.convert(part.get("correlations", {}))


def _unpack(dct: dict[str, Any], registry) -> None:
    for part in (dct, *dct.get("subprocesses", {}).values()):
        if isinstance(part["tasks"], list):
            part["tasks"] = _unpack_tasks(part["tasks"])
        part["correlations"] = registry.restore(part.get("correlations", {}))


class StateOnlyWorkflowConverter(BpmnWorkflowConverter):
    """Converts a top-level workflow without its specs; specs are passed in on restore."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        _pack(dct, self.registry)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):  # type: ignore[override]
        if spec is None:  # a state written with its spec embedded (SpiffWorkflow's default form)
            return super().from_dict(dct)
        _unpack(dct, self.registry)
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _registry(state_only: bool):
    config = dict(SPIFF_CONFIG)
    if state_only:
        config[BpmnWorkflow] = StateOnlyWorkflowConverter
    registry = BpmnWorkflowSerializer.configure(config)
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
    return registry


_STATE_REGISTRY = _registry(state_only=True)
#: The converters specs and states are stored with, for whoever compares specs (a version migration).
registry = _STATE_REGISTRY

#: SpiffWorkflow's own serializer with spiff extensions, spec embedded: the benchmark floor and the
#: form to compare our state size with.
default_serializer = BpmnWorkflowSerializer(_registry(state_only=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """JSON text for data the engine stores (task data summaries, audit details, payloads)."""
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def dump_specs(spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec]) -> str:
    return json.dumps({
        "spec": _STATE_REGISTRY.convert(spec),
        "subprocess_specs": {name: _STATE_REGISTRY.convert(s) for name, s in subprocess_specs.items()},
        VERSION_KEY: VERSION,
    })


def _upgrade_specs(specs: dict[str, Any], version: str, until: str = VERSION) -> dict[str, Any]:
    """Specs stored by an older serializer, migrated to ``until``.

    SpiffWorkflow's migrations change a spec through the tasks that use it (an element with no task in
    the workflow is left as it was), so the specs are migrated inside a workflow that has one stand-in
    task for each element of the top process."""
    if _key(version) >= _key(until):
        return specs
    tasks = {}
    for name in specs["spec"]["task_specs"]:
        task_id = str(uuid.uuid4())
        tasks[task_id] = {"id": task_id, "parent": None, "children": [], "last_state_change": 0, "state": 1,
                          "task_spec": name, "triggered": False, "internal_data": {}, "data": {}, "delta": {},
                          "typename": "Task"}
    stand_in = {"spec": specs["spec"], "subprocess_specs": specs["subprocess_specs"], "tasks": tasks,
                "root": next(iter(tasks), None), "subprocesses": {}, "data": {}, "correlations": {},
                "last_task": None, "success": True, "completed": False, "bpmn_events": [],
                "typename": "BpmnWorkflow"}
    _upgrade(stand_in, version, until)
    return {"spec": stand_in["spec"], "subprocess_specs": stand_in["subprocess_specs"]}


def stored_specs(text: str) -> tuple[str, dict[str, Any]]:
    """The serializer version stored specs were written by, and the specs as stored."""
    dct = json.loads(text)
    return dct.pop(VERSION_KEY, UNMARKED_VERSION), dct


def load_specs(text: str) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec], str]:
    """The specs of a deployed version, migrated first when an older serializer wrote them, and the
    version of the serializer that wrote them."""
    version, dct = stored_specs(text)
    dct = _upgrade_specs(dct, version)
    spec = _STATE_REGISTRY.restore(dct["spec"])
    subs = {name: _STATE_REGISTRY.restore(s) for name, s in dct["subprocess_specs"].items()}
    return spec, subs, version


class UnstorableDataError(SamflytError):
    """Task data holds a value that cannot be stored (and would not come back as itself)."""


_STORABLE_HINT = "use strings, numbers, lists, dicts, dates or Decimal; no NaN or infinity"
DEFAULT_MAX_DATA_BYTES = 10_000_000


def max_data_bytes() -> int:
    """The most JSON text a script may leave as task data (``SAMFLYT_MAX_DATA_BYTES``, default 10 MB):
    more is a runaway script, and every later step would load, copy and write it again."""
    try:
        value = int(os.environ.get("SAMFLYT_MAX_DATA_BYTES", DEFAULT_MAX_DATA_BYTES))
    except ValueError:
        return DEFAULT_MAX_DATA_BYTES
    return value if value > 0 else DEFAULT_MAX_DATA_BYTES


def _json_text(value: Any) -> str:
    return json.dumps(value, default=_json_default, allow_nan=False, ensure_ascii=False)


def check_storable(data: dict[str, Any]) -> None:
    """Refuse task data a step cannot store: a value JSON cannot hold (a set, a module, an object, NaN,
    a reference cycle, nesting deeper than the interpreter can write) or more than :func:`max_data_bytes`.

    Checked where the data is made (after each script), so the error names the element and field that
    made it and the step fails as a whole, instead of the instance's state failing to save afterwards.
    """
    try:
        text = _json_text(data)
    except (TypeError, ValueError, RecursionError) as exc:
        field = None
        for name, value in data.items():
            try:
                _json_text(value)
            except (TypeError, ValueError, RecursionError):
                field = name
                break
        what = f"field '{field}'" if field is not None else "task data"
        reason = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise UnstorableDataError(f"{what} cannot be stored: {reason} ({_STORABLE_HINT})") from None
    limit = max_data_bytes()
    if len(text) > limit:
        raise UnstorableDataError(f"task data is too large to store: {len(text)} bytes of JSON, at most {limit} "
                                  "(SAMFLYT_MAX_DATA_BYTES)")


def dump_state(workflow: BpmnWorkflow) -> str:
    """The workflow's state as JSON text, without specs.

    Strict: a value with no registered conversion (a set, an object from a script) raises instead of
    being turned into a string that would come back as something else.
    """
    dct = _STATE_REGISTRY.convert(workflow)
    dct[VERSION_KEY] = VERSION
    try:
        return json.dumps(dct, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        reason = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise UnstorableDataError(f"task data cannot be stored: {reason} ({_STORABLE_HINT})") from None


def load_state(text: str, spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec],
               script_engine, specs_text: str | None = None) -> BpmnWorkflow:
    """Restore a state against the (current) specs of its version.

    A state an older serializer wrote is migrated first, joined with its version's specs as they were
    stored (``specs_text``, brought to the state's serializer version if they are older still), since
    SpiffWorkflow's migrations read a state together with its specs."""
    dct = json.loads(text)
    version = dct.pop(VERSION_KEY, UNMARKED_VERSION)
    if _key(version) > _key(VERSION):
        raise SamflytError(f"the state was written by a later SpiffWorkflow serializer ({version}) than this "
                           f"one ({VERSION}): upgrade SpiffWorkflow")
    if version != VERSION:
        if specs_text is None:
            raise SamflytError(f"a state of SpiffWorkflow serializer version {version} needs its stored specs "
                               "to be migrated")
        spec_version, specs = stored_specs(specs_text)
        if _key(spec_version) > _key(version):
            raise SamflytError(f"a state of serializer version {version} with specs of a later version "
                               f"({spec_version}) cannot be migrated")
        specs = _upgrade_specs(specs, spec_version, until=version)
        for part in (dct, *dct.get("subprocesses", {}).values()):
            if isinstance(part["tasks"], list):
                part["tasks"] = _unpack_tasks(part["tasks"])
        dct.update(spec=specs["spec"], subprocess_specs=specs["subprocess_specs"])
        _upgrade(dct, version)
        del dct["spec"], dct["subprocess_specs"]
    workflow = _STATE_REGISTRY.restore(dct, spec=spec, subprocess_specs=subprocess_specs)
    workflow.script_engine = script_engine
    return workflow
