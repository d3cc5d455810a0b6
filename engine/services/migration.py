"""Moving running instances from one deployed version of a process to another.

A process that runs for years would otherwise keep every instance on the diagram it started with, bugs
included. SpiffWorkflow 3 compares two specs (:class:`~SpiffWorkflow.bpmn.util.diff.SpecDiff`), tells which
tasks of a workflow the differences touch (:class:`~SpiffWorkflow.bpmn.util.diff.WorkflowDiff`) and swaps a
workflow onto the new spec (:func:`~SpiffWorkflow.bpmn.util.diff.migrate_workflow`); this service decides
which instances may move and keeps the database in step.

An instance moves only when nothing it has done or is doing was changed: a task that completed, or is
ready, started, waiting or in error, whose element is gone from the new version or was edited there
(its script, form, name, lane, event...), refuses the instance, as does a flow it already took that the
new version no longer has, or a called process the new version lacks. What it has not reached yet may
change freely -- that is the point of a new version. Each instance moves in its own transaction, so one
refusal does not hold up the others, and every move and refusal is audited with its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, migrate_workflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from .. import authz
from ..errors import NotAuthorisedError, NotFoundError, SamflytError
from ..models import ProcessInstance, ProcessModel, ProcessVersion
from ..serialization import dump_state, load_state, registry
from ..spec_cache import CachedVersion
from ..texts import Text, _, joined
from ..unit_of_work import describe_error
from .core import Core

#: Task states that mean the instance has been there (or is there now): what a migration must not change.
REACHED = TaskState.COMPLETED | TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.ERROR
#: Instances that can still move; completed and cancelled ones keep the version they ran on.
ACTIVE = ("running", "waiting", "error")
#: Attributes of an element that say how it is connected, not what it does: checked through the flows an
#: instance took (a new element inserted after a completed one changes the latter's outputs only).
STRUCTURE = ("inputs", "outputs")


@dataclass
class MigrationOutcome:
    """What happened to one instance: ``migrated``, ``would_migrate`` (a dry run) or ``refused``."""

    instance_id: int
    status: str
    reasons: list[Text] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "status": self.status, "reasons": [str(r) for r in self.reasons]}


def _element(task: Task) -> str:
    spec = task.task_spec
    return spec.bpmn_id or spec.name


def _blockers(workflow: Any, diff: SpecDiff, version: int) -> list[Text]:
    """Why the reached tasks of one (sub)workflow keep it from moving onto the diffed spec."""
    reasons: list[Text] = []
    for task in workflow.get_tasks(state=REACHED, skip_subprocesses=True):
        spec = task.task_spec
        state = TaskState.get_name(task.state)
        new = diff.alignment.get(spec)
        if new is None:
            reasons.append(_("element '%(element)s' (%(state)s) is removed in version %(version)s",
                             element=_element(task), state=state, version=version))
            continue
        edited = [key for key in diff.comparisons.get(spec, []) if key not in STRUCTURE]
        if edited:
            reasons.append(_("element '%(element)s' (%(state)s) is changed in version %(version)s: %(what)s",
                             element=_element(task), state=state, version=version, what=joined(edited)))
            continue
        outputs = {o.name for o in new.outputs}
        for child in task.children:
            # a flow the instance took (the child is an old output, reached) that the new version lacks
            target = diff.alignment.get(child.task_spec)
            if (child.state & REACHED and child.task_spec in spec.outputs
                    and (target is None or target.name not in outputs)):
                reasons.append(_("the flow from '%(element)s' to '%(next)s' that the instance took is not in "
                                 "version %(version)s", element=_element(task), next=_element(child),
                                 version=version))
    return reasons


def why_not(workflow: BpmnWorkflow, new: CachedVersion) -> tuple[list[Text], dict[Any, SpecDiff]]:
    """The reasons ``workflow`` cannot move to version ``new`` (none: it can), and the spec diffs of the
    workflow and its subprocesses (by subprocess id; ``None`` for the top workflow) to migrate with."""
    diffs: dict[Any, SpecDiff] = {None: SpecDiff(registry, workflow.spec, new.spec)}
    reasons = _blockers(workflow, diffs[None], new.version)
    for sp_id, sp in workflow.subprocesses.items():
        spec: BpmnProcessSpec | None = new.subprocess_specs.get(sp.spec.name)
        if spec is None:
            reasons.append(_("the called process '%(process)s' is missing from version %(version)s",
                             process=sp.spec.name, version=new.version))
            continue
        diffs[sp_id] = SpecDiff(registry, sp.spec, spec)
        reasons.extend(_blockers(sp, diffs[sp_id], new.version))
    return reasons, diffs


def move(workflow: BpmnWorkflow, new: CachedVersion, diffs: dict[Any, SpecDiff]) -> None:
    """Put ``workflow`` and its subprocesses on version ``new``'s specs.

    SpiffWorkflow resets ready and waiting tasks so their successors are predicted again from the new
    diagram; a waiting timer keeps the moment it was set to fire (its internal data), so a three-month
    wait does not start over because the diagram changed elsewhere.
    """
    kept = {task.id: dict(task.internal_data) for task in workflow.get_tasks(state=TaskState.WAITING)
            if task.internal_data}
    for sp_id, sp in list(workflow.subprocesses.items()):
        spec = new.subprocess_specs[sp.spec.name]
        migrate_workflow(WorkflowDiff(sp, diffs[sp_id]), sp, spec)
    migrate_workflow(WorkflowDiff(workflow, diffs[None]), workflow, new.spec)
    workflow.subprocess_specs = new.subprocess_specs
    for task in workflow.get_tasks(state=TaskState.WAITING):
        if task.id in kept:
            task.internal_data.update(kept[task.id])


class Migrations:
    """Moving a process's instances between its versions (admins only, audited)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def _version_id(self, process_id: str, version: int) -> int:
        with self.core.Session() as s:
            found = s.scalar(select(ProcessVersion.id).join(ProcessModel, ProcessModel.id == ProcessVersion.model_id)
                             .where(ProcessModel.process_id == process_id, ProcessVersion.version == version))
        if found is None:
            raise NotFoundError(_("no version %(version)s of process '%(process)s'", version=version,
                                  process=process_id))
        return found

    def migrate(self, process_id: str, from_version: int, to_version: int, actor: str | None,
                dry_run: bool = False, instance_ids: list[int] | None = None) -> list[MigrationOutcome]:
        """Move the running instances of ``process_id`` on ``from_version`` (or just ``instance_ids``) to
        ``to_version``; one outcome per instance, in instance order. ``dry_run`` says what would happen
        and writes nothing. When ``actor`` is given they must be an admin (the CLI without ``--as``: whoever
        may write the database)."""
        if actor is not None:
            with self.core.Session() as s:
                if not authz.is_admin(self.core.user(s, actor)):
                    raise NotAuthorisedError(_("%(user)s may not migrate instances: %(reason)s", user=actor,
                                               reason=_("admins only")))
        if from_version == to_version:
            raise SamflytError(_("the instances are on version %(version)s already", version=to_version))
        old_id = self._version_id(process_id, from_version)
        new_id = self._version_id(process_id, to_version)
        with self.core.Session() as s:
            on_old = list(s.scalars(select(ProcessInstance.id).where(
                ProcessInstance.version_id == old_id, ProcessInstance.status.in_(ACTIVE)).order_by(ProcessInstance.id)))
        wanted = on_old if instance_ids is None else sorted(set(instance_ids))
        outcomes = []
        for instance_id in wanted:
            if instance_id not in on_old:
                outcomes.append(MigrationOutcome(instance_id, "refused", [self._not_on(
                    process_id, from_version)]))
                continue
            outcomes.append(self._one(instance_id, old_id, new_id, process_id, from_version, actor, dry_run))
        return outcomes

    @staticmethod
    def _not_on(process_id: str, version: int) -> Text:
        return _("not an active instance of '%(process)s' version %(version)s", process=process_id,
                 version=version)

    def _one(self, instance_id: int, old_id: int, new_id: int, process_id: str, from_version: int,
             actor: str | None, dry_run: bool) -> MigrationOutcome:
        """One instance, in its own transaction: checked again under its lock, then moved or refused."""
        with self.core.unit() as unit:
            li = unit.load(instance_id)
            if li.row.version_id != old_id or li.row.status not in ACTIVE:  # moved or ended meanwhile
                return MigrationOutcome(instance_id, "refused", [self._not_on(process_id, from_version)])
            new = self.core.cache.get(unit.session, new_id)
            versions = {"from_version": from_version, "to_version": new.version}
            try:
                reasons, diffs = why_not(li.workflow, new)
            except Exception as exc:  # noqa: BLE001 - a construct SpiffWorkflow's diff cannot align
                reasons, diffs = [_("the versions could not be compared: %(error)s", error=describe_error(exc))], {}
            if not reasons and not dry_run:
                try:
                    move(li.workflow, new, diffs)
                    # what is saved must load against the new specs (a task left on a spec the new version
                    # lacks would not): proven here, before anything is written
                    load_state(dump_state(li.workflow), new.spec, new.subprocess_specs, self.core.script_engine)
                except Exception as exc:  # noqa: BLE001 - SpiffWorkflow could not re-predict the new diagram
                    del unit.loaded[instance_id]  # half-moved: neither saved nor kept warm
                    reasons = [_("the move failed: %(error)s", error=describe_error(exc))]
            if reasons:
                if not dry_run:
                    unit.audit("migration_refused", actor, instance_id, **versions,
                               reasons=[str(r) for r in reasons])
                return MigrationOutcome(instance_id, "refused", reasons)
            if dry_run:
                return MigrationOutcome(instance_id, "would_migrate")
            li.row.version_id, li.version, li.dirty = new_id, new, True
            unit.audit("migrated", actor, instance_id, **versions)
            unit.advance(li, actor=actor)  # what the new diagram makes ready runs now, as after any step
            return MigrationOutcome(instance_id, "migrated")
