"""Human tasks: who may work them, claim, unclaim, reassign, their forms, and completing them."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from .. import authz, clock
from ..errors import (
    ClaimedByOtherError,
    InstanceStateError,
    NotAuthorisedError,
    NotFoundError,
    TaskNotOpenError,
    ValidationError,
)
from ..forms import Form, message
from ..models import (
    HumanTask,
    ProcessInstance,
    Role,
    TaskAudience,
    User,
)
from ..payload import check as check_payload
from ..spiff_events import has_waiting_timers
from ..texts import Text, _
from ..unit_of_work import COMPLETED_BY_PROPERTY, Refused, plain, task_properties
from ..views import InstanceView, TaskView
from .core import Core


class Tasks:
    """Human-task commands and the permission questions pages ask before offering them."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def why_not(self, task_id: str, username: str) -> Text | None:
        """Why ``username`` may not work task ``task_id`` now (claimed by another, a conflict of interest,
        the wrong role...), or ``None`` if they may: what a worklist shows instead of a claim button."""
        with self.core.Session() as s:
            user = self.core.user(s, username)
            row = self.core.open_task(s, task_id)
            if row.status != "open":
                return _("the task is no longer open (%(status)s)", status=row.status)
            if row.claimed_by not in (None, username):
                return _("claimed by %(name)s", name=row.claimed_by)
            reason = authz.why_not(user, row, json.loads(row.restrictions or "{}"))
            if reason is None and row.claimed_by is None and self._sibling_taken(s, row, username):
                reason = _("you already have another '%(title)s' task in this case", title=row.title)
            return reason

    def may_view_task(self, task_id: str, username: str) -> bool:
        """Whether ``username`` may open task ``task_id`` (see :func:`engine.authz.may_view_task`)."""
        with self.core.Session() as s:
            user = self.core.user(s, username)
            row = self.core.open_task(s, task_id)
            return authz.may_view_task(user, row, json.loads(row.restrictions or "{}"))

    def may_reassign(self, task_id: str, username: str) -> bool:
        """Whether ``username`` may give task ``task_id`` to someone else: admins, and supervisors of the
        task's case's scope (:func:`engine.authz.case_scopes`; what :meth:`assign` enforces; the task page
        offers the form only to them)."""
        with self.core.Session() as s:
            user = self.core.user(s, username)
            row = self.core.open_task(s, task_id)
            return authz.supervises(user, row, json.loads(row.restrictions or "{}"))

    def candidates(self, task_id: str) -> list[tuple[str, str]]:
        """The people a supervisor may give the open task to: active accounts that may work it as its role
        or its named people (not admins by being admin), and that do not already have one of its
        distinct-worker siblings; ``(username, display name)``, by name."""
        with self.core.Session() as s:
            row = self.core.open_task(s, task_id)
            restrictions = json.loads(row.restrictions or "{}")
            query = select(User).where(User.active.is_(True))
            named = [str(u) for u in restrictions.get("users", [])]
            if named:
                query = query.where(User.username.in_(named))
            elif row.candidate_role:
                query = query.where(User.roles.any(Role.name == row.candidate_role))
            out = [(u.username, u.display_name or u.username) for u in s.scalars(query).unique()
                   if authz.why_not(u, row, restrictions) is None and not authz.needs_admin(u, row, restrictions)
                   and u.username != row.claimed_by and not self._sibling_taken(s, row, u.username)]
            return sorted(out, key=lambda pair: (pair[1].lower(), pair[0]))

    def claim(self, task_id: str, actor: str) -> TaskView:
        with self.core.unit() as unit:
            s = unit.session
            user = self.core.user(s, actor)
            row = self.core.open_task(s, task_id)
            if row.status != "open":
                raise _not_open(task_id, row.status)
            authz.require_may_work(user, row, json.loads(row.restrictions))
            if row.claimed_by == user.username:
                return TaskView.from_row(row)
            self._require_distinct_worker(s, row, user)
            if row.claimed_by is not None:
                raise ClaimedByOtherError(task_id, row.claimed_by)
            won = s.execute(update(HumanTask).where(
                HumanTask.id == row.id, HumanTask.status == "open", HumanTask.claimed_by.is_(None)
            ).values(claimed_by=user.username, claimed_at=clock.now()).execution_options(
                synchronize_session=False)).rowcount
            s.refresh(row)
            if not won:
                if row.status != "open":
                    raise _not_open(task_id, row.status)
                raise ClaimedByOtherError(task_id, row.claimed_by or _("someone else"))
            unit.audit("claim", actor, row.instance_id, task_id,
                       as_admin=authz.needs_admin(user, row, json.loads(row.restrictions)))
            return TaskView.from_row(row)

    def unclaim(self, task_id: str, actor: str) -> None:
        with self.core.unit() as unit:
            user = self.core.user(unit.session, actor)
            row = self.core.open_task(unit.session, task_id)
            if row.status != "open":
                raise _not_open(task_id, row.status)
            if row.claimed_by is None:
                return
            if row.claimed_by != user.username and not authz.is_admin(user):
                raise ClaimedByOtherError(task_id, row.claimed_by)
            self._set_claim(unit.session, row, None)
            unit.audit("unclaim", actor, row.instance_id, task_id, previous=row.claimed_by)

    def assign(self, task_id: str, assignee: str, actor: str, reason: str | None = None) -> None:
        """Give a task to ``assignee`` (admins and supervisors of the task's case's scope); the assignee
        must be allowed to work it."""
        with self.core.unit() as unit:
            s = unit.session
            user = self.core.user(s, actor)
            if not authz.is_supervisor(user):
                raise NotAuthorisedError(_("%(user)s may not assign tasks: %(reason)s", user=actor,
                                                       reason=_("admins and supervisors only")))
            target = self.core.user(s, assignee)
            row = self.core.open_task(s, task_id)
            if row.status != "open":
                raise _not_open(task_id, row.status)
            restrictions = json.loads(row.restrictions)
            if not authz.supervises(user, row, restrictions):
                raise NotAuthorisedError(_("%(user)s may not assign task %(task)s: %(reason)s", user=actor,
                                           task=task_id, reason=authz.oversight_reason(user, row, restrictions)))
            authz.require_may_work(target, row, restrictions)
            self._set_claim(unit.session, row, target.username)
            unit.audit("assign", actor, row.instance_id, task_id, assignee=assignee,
                       previous=row.claimed_by, reason=reason)

    def exclude_person(self, instance_id: int, username: str, actor: str, reason: str | None = None) -> int:
        """Keep ``username`` out of the case's open tasks that exclude people (``samflyt.excludeUsersField``):
        someone who stands aside for a conflict of interest after the tasks were offered. A task they hold
        is released for others. Themselves or an admin; audited. Returns how many open tasks now exclude them.

        Tasks created later take their exclusions from the case's data, which the process keeps (the
        package that records the reason puts it there when it plans the tasks)."""
        with self.core.unit() as unit:
            s = unit.session
            user = self.core.user(s, actor)
            if user.username != username and not authz.is_admin(user):
                raise NotAuthorisedError(_("%(user)s may not make someone else stand aside: %(reason)s",
                                           user=actor, reason=_("admins only")))
            person = self.core.user(s, username)
            rows = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                     HumanTask.status == "open")).all()
            count = 0
            for row in rows:
                restrictions = json.loads(row.restrictions or "{}")
                if authz.EXCLUDED_USERS not in restrictions:
                    continue
                count += 1
                if person.username in restrictions[authz.EXCLUDED_USERS]:
                    continue
                restrictions[authz.EXCLUDED_USERS].append(person.username)
                row.restrictions = json.dumps(restrictions)
                s.execute(delete(TaskAudience).where(TaskAudience.task_id == row.task_id,
                                                     TaskAudience.rule == authz.EXCLUDED_USERS,
                                                     TaskAudience.value == ""))  # "no one excluded" no longer
                s.add(TaskAudience(task_id=row.task_id, rule=authz.EXCLUDED_USERS, value=person.username))
                if row.claimed_by == person.username:
                    row.claimed_by = row.claimed_at = None
            unit.audit("exclude", actor, instance_id, None, person=person.username, reason=reason, tasks=count)
            return count

    @staticmethod
    def _set_claim(session: Session, row: HumanTask, username: str | None) -> None:
        """Change who holds an open task, atomically: a task completed meanwhile is not touched."""
        changed = session.execute(update(HumanTask).where(HumanTask.id == row.id, HumanTask.status == "open").values(
            claimed_by=username, claimed_at=clock.now() if username else None).execution_options(
            synchronize_session=False)).rowcount
        if not changed:
            raise TaskNotOpenError(_("task %(task)s is no longer open", task=row.task_id))

    @staticmethod
    def _sibling_taken(session: Session, row: HumanTask, username: str) -> bool:
        """With ``samflyt.distinctWorkers``, one person works one of a multi-instance task's siblings.

        Three committee members each review an application: the second review task must go to someone else.
        """
        if not json.loads(row.restrictions or "{}").get("distinct_workers"):
            return False
        return session.scalar(select(HumanTask.id).where(
            HumanTask.instance_id == row.instance_id, HumanTask.spec_name == row.spec_name,
            HumanTask.id != row.id, HumanTask.status != "closed",
            or_(HumanTask.claimed_by == username, HumanTask.completed_by == username)).limit(1)) is not None

    def _require_distinct_worker(self, session: Session, row: HumanTask, user: User) -> None:
        if self._sibling_taken(session, row, user.username):
            reason = _("you already have another '%(title)s' task in this case", title=row.title)
            raise NotAuthorisedError(_("%(user)s may not work task %(task)s: %(reason)s", user=user.username,
                                       task=row.task_id, reason=reason))

    def form_for(self, task_id: str) -> Form | None:
        """The task's form, its choices from the task's data filled in (``options_from_task_data_var``)."""
        with self.core.Session() as s:
            row = self.core.open_task(s, task_id)
            version_id = s.scalar(select(ProcessInstance.version_id).where(ProcessInstance.id == row.instance_id))
            form = self.core.cache.get(s, version_id).form(row.form_key, row.ui_form_key)
        if form is not None and form.takes_options_from_data and row.status == "open":
            form = form.for_data(self.task_data(task_id))
        return form

    def form_texts(self, task_id: str, language: str) -> dict[str, Any] | None:
        """The task form's labels in ``language``, when the bundle has them (see ``CachedVersion.form_texts``)."""
        with self.core.Session() as s:
            row = self.core.open_task(s, task_id)
            version_id = s.scalar(select(ProcessInstance.version_id).where(ProcessInstance.id == row.instance_id))
            return self.core.cache.get(s, version_id).form_texts(row.form_key, language)

    def complete(self, task_id: str, actor: str, data: dict[str, Any] | None = None) -> InstanceView:
        """Complete a human task with ``data`` (validated against its form) and advance the instance.

        Refuses tasks that are not READY -- including one a timer closed after the form was shown: the
        timers are refreshed first, and the submitted data is kept in the audit log either way, but only
        for someone who may work the task (the permission is checked before anything is written).
        """
        data = {} if data is None else data
        check_payload(data)  # before anything, the audit row included, is written
        with self.core.unit() as unit:
            user = self.core.user(unit.session, actor)
            row, li = unit.load_for_task(task_id)
            if row.status != "open":
                # only someone who could have worked it gets their input kept: anyone else's data is
                # never written into another case's audit log
                if user.username not in (row.claimed_by, row.completed_by):
                    authz.require_may_work(user, row, json.loads(row.restrictions))
                unit.audit("complete_refused", actor, row.instance_id, task_id, reason=row.status, data=plain(data))
                raise Refused(TaskNotOpenError(_("task %(task)s is no longer open (%(status)s); your input is kept "
                                                 "in the audit log", task=task_id, status=row.status)))
            authz.require_may_work(user, row, json.loads(row.restrictions))
            if row.claimed_by not in (None, user.username) and not authz.is_admin(user):
                raise ClaimedByOtherError(task_id, row.claimed_by)
            if li.row.status in ("error", "cancelled", "completed"):
                unit.audit("complete_refused", actor, row.instance_id, task_id, reason=li.row.status, data=plain(data))
                if li.row.status == "error":
                    why = _("instance %(instance)s is %(status)s (%(error)s); an admin must retry it; your input "
                            "is kept in the audit log", instance=li.row.id, status=li.row.status,
                            error=li.row.error_message)
                else:
                    why = _("instance %(instance)s is %(status)s; your input is kept in the audit log",
                            instance=li.row.id, status=li.row.status)
                raise Refused(InstanceStateError(why))
            form = li.version.form(row.form_key, row.ui_form_key)
            if form is not None and form.takes_options_from_data:
                ready = li.workflow.get_task_from_id(UUID(task_id))
                form = form.for_data(ready.data if ready is not None else {})
            if form is not None:
                values = form.validate(data)
            elif isinstance(data, dict):
                values = data
            else:
                raise ValidationError({"_schema": [message("not_object")]})
            if has_waiting_timers(li.workflow):  # a timer may have closed the task since the form was shown
                unit.advance(li, refresh_timers=True, actor=user.username,
                             fired={"fired_by": user.username, "during": "complete"})
            task = li.workflow.get_task_from_id(UUID(task_id))
            if (task is None or task.state != TaskState.READY or not task.task_spec.manual
                    or li.row.status in ("error", "cancelled")):
                unit.audit("complete_refused", actor, row.instance_id, task_id, reason="not ready", data=plain(data))
                raise Refused(TaskNotOpenError(_("task %(task)s is no longer open; your input is kept in the audit log",
                                                 task=task_id)))
            as_admin = authz.needs_admin(user, row, json.loads(row.restrictions))
            if row.claimed_by is None:
                self._require_distinct_worker(unit.session, row, user)
                row.claimed_by, row.claimed_at = user.username, clock.now()
            task.data.update(values)
            completed_by_field = task_properties(task).get(COMPLETED_BY_PROPERTY)
            if completed_by_field:
                _set_path(task.data, completed_by_field, user.username)
            row.status = "completed"
            row.completed_at = clock.now()
            row.completed_by = user.username
            unit.audit("complete", actor, row.instance_id, task_id, element=row.spec_name,
                       data=plain(values), as_admin=as_admin)
            if not unit.advance(li, first=task, actor=user.username) and task.state == TaskState.READY:
                row.status, row.completed_at, row.completed_by = "open", None, None  # its own script failed
            if row.status == "completed":  # its narrowing rows are no worklist's business any more
                unit.session.execute(delete(TaskAudience).where(TaskAudience.task_id == row.task_id))
        return li.view()

    def task_data(self, task_id: str) -> dict[str, Any]:
        """The data an open task sees (what its form starts from), read from the instance's workflow."""
        with self.core.Session() as s:
            row = self.core.open_task(s, task_id)
        task = self.core.load_workflow(row.instance_id).get_task_from_id(UUID(task_id))
        if task is None:
            raise NotFoundError(_("no task %(task)s in instance %(instance)s", task=task_id,
                                               instance=row.instance_id))
        return plain(dict(task.data))


def _not_open(task_id: str, status: str) -> TaskNotOpenError:
    return TaskNotOpenError(_("task %(task)s is no longer open (%(status)s)", task=task_id, status=status))


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``path`` ``"a.b"``, creating objects on the way."""
    *parents, last = path.split(".")
    for name in parents:
        child = data.get(name)
        if not isinstance(child, dict):
            child = data[name] = {}
        data = child
    data[last] = value
