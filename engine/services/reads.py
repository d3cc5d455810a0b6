"""Read models: open tasks, instances, the audit log, steps and diagrams -- what pages and the CLI show."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from .. import authz, spiff_events
from ..bpmn_loader import (
    find_file,
)
from ..errors import (
    NotFoundError,
)
from ..models import (
    AuditEvent,
    HumanTask,
    MessageWait,
    ProcessInstance,
    ProcessVersion,
    Timer,
)
from ..texts import _
from ..views import InstanceView, TaskView, timer_view
from ..worklist import Page, worklist
from .core import Core

#: A task property: the roles (comma-separated) who may see who worked the task (see
#: :meth:`Reads.workers_hidden_from`).
WORKERS_SHOWN_TO = "samflyt.workersShownTo"


class Reads:
    """Queries over the index tables and, where a page needs it, the deserialized workflow (read-only)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def tasks(self, instance_id: int | None = None, user: str | None = None) -> list[TaskView]:
        """Open human tasks, from the index; with ``user``: those claimed by or open to that user (every page
        of their ``workable`` worklist, see :meth:`task_page` for one)."""
        if user is not None:
            out: list[TaskView] = []
            number = 1
            while True:
                views, page = self.task_page(user, instance_id=instance_id, page=number, per_page=500)
                out += views
                if number >= page.pages and not page.more:
                    return out
                number += 1
        with self.core.Session() as s:
            query = (select(HumanTask, ProcessInstance.process_id)
                     .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
                     .where(HumanTask.status == "open").order_by(HumanTask.created_at, HumanTask.id))
            if instance_id is not None:
                query = query.where(HumanTask.instance_id == instance_id)
            return [TaskView.from_row(row, pid) for row, pid in s.execute(query)]

    def task_page(self, user: str, view: str = "workable", page: int = 1, per_page: int = 50,
                  instance_id: int | None = None) -> tuple[list[TaskView], Page]:
        """One page of ``user``'s worklist ``view``, oldest first, paged by the database
        (:func:`engine.worklist.worklist`): the tasks and the page (total, pages, whether there are more)."""
        with self.core.Session() as s:
            who = self.core.user(s, user)
            found = worklist(s, who, view, sort="created", page=page, per_page=per_page, instance_id=instance_id)
            return [TaskView.from_item(item) for item in found.items], found

    def instance(self, instance_id: int) -> InstanceView:
        with self.core.Session() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(_("instance %(instance)s does not exist", instance=instance_id))
            version = s.scalar(select(ProcessVersion.version).where(ProcessVersion.id == row.version_id))
            tasks = [TaskView.from_row(t, row.process_id) for t in s.scalars(
                select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.status == "open")
                .order_by(HumanTask.id))]
            timers = [timer_view(t.spec_name, t.task_id, t.kind, t.due_at) for t in s.scalars(
                select(Timer).where(Timer.instance_id == instance_id).order_by(Timer.due_at))]
            return InstanceView.from_row(row, version, tasks, timers)

    def instances_summary(self, status: str | None = None) -> list[dict[str, Any]]:
        """Instances without their state, newest first."""
        with self.core.Session() as s:
            query = select(ProcessInstance.id, ProcessInstance.process_id, ProcessInstance.status,
                           ProcessInstance.business_key, ProcessInstance.title).order_by(ProcessInstance.id.desc())
            if status:
                query = query.where(ProcessInstance.status == status)
            return [dict(r._mapping) for r in s.execute(query)]

    def audit(self, instance_id: int | None = None) -> list[dict[str, Any]]:
        with self.core.Session() as s:
            query = select(AuditEvent).order_by(AuditEvent.id)
            if instance_id is not None:
                query = query.where(AuditEvent.instance_id == instance_id)
            return [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                     "instance_id": e.instance_id, "task_id": e.task_id, "details": json.loads(e.details)}
                    for e in s.scalars(query)]

    def steps(self, instance_id: int) -> dict[str, list[dict[str, str]]]:
        """The instance's steps by BPMN element: ``done`` (completed, oldest first) and ``current`` (ready or
        waiting), each ``{"id", "name"}`` -- for marking the diagram and listing the same steps as text."""
        workflow = self.core.load_workflow(instance_id)

        def steps_in(state: int) -> list[dict[str, str]]:
            found: dict[str, dict[str, str]] = {}
            tasks = sorted(spiff_events.tasks_in_state(workflow, state), key=lambda t: t.last_state_change)
            for t in tasks:
                bpmn_id = getattr(t.task_spec, "bpmn_id", None)
                if bpmn_id and bpmn_id not in found:
                    found[bpmn_id] = {"id": bpmn_id, "name": t.task_spec.bpmn_name or bpmn_id}
            return list(found.values())

        return {"done": steps_in(TaskState.COMPLETED), "current": steps_in(TaskState.READY | TaskState.WAITING)}

    def diagram(self, instance_id: int) -> str:
        """The BPMN XML (with its DI) of the file that defines the instance's process, as deployed."""
        with self.core.Session() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(_("instance %(instance)s does not exist", instance=instance_id))
            files = self.core.cache.get(s, row.version_id).files
        marker = f'id="{row.process_id}"'
        for name, text in sorted(files.items()):
            if name.endswith(".bpmn") and marker in text and "process" in text:
                return text
        raise NotFoundError(_("no diagram for process %(process)s", process=row.process_id))

    def data_fields(self, instance_id: int, language: str) -> dict[str, dict[str, Any]]:
        """The labels of an instance's data fields, from its version's forms (see
        :meth:`engine.spec_cache.CachedVersion.data_fields`)."""
        with self.core.Session() as s:
            version_id = s.scalar(select(ProcessInstance.version_id).where(ProcessInstance.id == instance_id))
            if version_id is None:
                raise NotFoundError(_("instance %(instance)s does not exist", instance=instance_id))
            return self.core.cache.get(s, version_id).data_fields(language)

    def message_forms(self, instance_id: int) -> list[dict[str, Any]]:
        """Messages an instance waits for that people may send from a form: a wait whose message has a form
        file of the same name in the bundle (``deviation_report.json`` for ``deviation_report``) and whose
        correlation values are all known, so the message reaches exactly this instance."""
        with self.core.Session() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(_("instance %(instance)s does not exist", instance=instance_id))
            if row.status in ("completed", "cancelled"):
                return []
            version = self.core.cache.get(s, row.version_id)
            waits = s.scalars(select(MessageWait).where(MessageWait.instance_id == instance_id)
                              .order_by(MessageWait.id)).all()
            out: dict[str, dict[str, Any]] = {}
            for wait in waits:
                key = f"{wait.message_name}.json"
                correlations = json.loads(wait.correlations or "{}")
                if wait.message_name in out:
                    continue
                if find_file(version.files, key) is None or set(json.loads(wait.properties_json or "{}")) - set(
                        correlations) or any(v is None for v in correlations.values()):
                    continue
                out[wait.message_name] = {"message": wait.message_name, "form_key": key,
                                          "correlations": correlations, "form": version.form(key),
                                          "texts": version.form_texts}
            return list(out.values())

    def may_view_instance(self, instance_id: int, username: str) -> bool:
        """Whether ``username`` may open instance ``instance_id``: its starter, its workers and candidates,
        supervisors and admins (see :func:`engine.authz.may_view_instance`)."""
        return self._ask_about_case(instance_id, username, authz.may_view_instance)

    def workers_hidden_from(self, instance_id: int, username: str) -> set[str]:
        """The elements of the instance, and the ids of their human tasks, whose workers ``username`` may not
        see named: elements whose property
        ``samflyt.workersShownTo`` lists roles the user has none of (admins and supervisors see all). A
        committee's reviewers, say, are not named to the applicant whose case they assess; pages show such
        a task's history and holder without the person."""
        with self.core.Session() as s:
            user = self.core.user(s, username)
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(_("instance %(instance)s does not exist", instance=instance_id))
            if authz.is_admin(user) or authz.is_supervisor(user):
                return set()
            version = self.core.cache.get(s, row.version_id)
            hidden = set()
            for spec in [version.spec, *version.subprocess_specs.values()]:
                for task_spec in spec.task_specs.values():
                    props = (getattr(task_spec, "extensions", None) or {}).get("properties", {})
                    shown_to = props.get(WORKERS_SHOWN_TO)
                    if shown_to is not None and not ({r.strip().lower() for r in shown_to.split(",")}
                                                     & user.role_names):
                        hidden.add(task_spec.bpmn_id or task_spec.name)
            if hidden:
                hidden |= set(s.scalars(select(HumanTask.task_id).where(
                    HumanTask.instance_id == instance_id, HumanTask.spec_name.in_(sorted(hidden)))))
            return hidden

    def may_send_messages(self, instance_id: int, username: str) -> bool:
        """Whether ``username`` may send instance ``instance_id`` messages from their forms
        (see :func:`engine.authz.may_send_message`)."""
        return self._ask_about_case(instance_id, username, authz.may_send_message)

    def _ask_about_case(self, instance_id: int, username: str, rule: Callable[..., bool]) -> bool:
        """``rule(user, started_by, tasks, scope)`` for the instance and every human task it has had."""
        with self.core.Session() as s:
            user = self.core.user(s, username)
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(_("instance %(instance)s does not exist", instance=instance_id))
            tasks = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)).all()
            return rule(user, row.started_by, list(tasks), row.scope)
