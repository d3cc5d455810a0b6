"""Worklists: the open human tasks a person sees, served from the human-task index, never from workflows.

Four views: ``mine`` (claimed by me), ``available`` (my roles, unclaimed, not blocked for me -- those
blocked come back separately with the reason so the page can say why), ``overdue`` (mine or available,
past the due date) and ``all`` (every open task of the supervisor's scope, and those bound to none;
supervisors and admins only).

A task's scope is its own scope property's, else its case's (the row's ``scope`` column, see
:func:`engine.authz.case_scopes`). Another scope's tasks are listed to no one but admins and those they
are for: a task of another scope's case is listed only when it is mine or I may take it (an applicant's
own draft in a scope their organisation is not placed in) -- never in ``all``, never as blocked.

The blocked list ("tasks you cannot take") holds only tasks my role and scope would offer me and that
their other narrowing would too, but that an *exclusion* keeps me from (``authz.EXCLUSIONS``: a conflict
of interest). A task narrowed to someone else -- named users (another applicant's draft), an
organisation I am not in, a scope I am not in -- is simply not mine and is not listed at all.
Filtering, sorting, counting and paging happen in SQL, here, so every entry point pages the same way and
the cost does not grow with the number of instances.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from . import authz, clock
from .errors import NotAuthorisedError
from .models import HumanTask, ProcessInstance, ProcessModel, TaskAudience, User

VIEWS = ("mine", "available", "overdue", "all")
SORTS = ("due", "created", "title")


#: At most this many "tasks you cannot take" are listed with their reasons.
BLOCKED_LIMIT = 50

#: The highest page number asked for that is taken as such; beyond it the offset would overflow a query.
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class WorkItem:
    task_id: str
    name: str
    title: str
    lane: str | None
    process_id: str
    process_name: str
    instance_id: int
    instance_title: str | None
    business_key: str | None
    organisation: str | None
    due_at: datetime | None
    overdue: bool
    claimed_by: str | None
    created_at: datetime
    blocked_reason: str | None = None


@dataclass
class Page:
    items: list[WorkItem]
    total: int
    page: int
    per_page: int
    blocked: list[WorkItem] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def may_see_all(user: User) -> bool:
    return authz.is_supervisor(user)


def _organisation(restrictions: dict[str, Any]) -> str | None:
    for key in ("organisations", "exclude_organisations"):
        values = restrictions.get(key) or []
        if values:
            return str(values[0])
    return None


def taken_siblings(session: Session, username: str) -> set[tuple[int, str]]:
    """``(instance_id, element)`` of the multi-instance tasks ``username`` holds or did one of, for
    ``samflyt.distinctWorkers``: the other reviews of an application a member has reviewed are not theirs
    to take, so no worklist offers them (the claim would be refused)."""
    rows = session.execute(select(HumanTask.instance_id, HumanTask.spec_name).where(
        HumanTask.status != "closed", or_(HumanTask.claimed_by == username, HumanTask.completed_by == username)))
    return {(instance_id, name) for instance_id, name in rows}


def offered_elsewhere(task: HumanTask, restrictions: dict[str, Any], username: str,
                      taken: set[tuple[int, str]]) -> bool:
    """True for an unclaimed sibling of a distinct-worker task that ``username`` already has one of."""
    return (task.claimed_by is None and bool(restrictions.get("distinct_workers"))
            and (task.instance_id, task.spec_name) in taken)


def _admits(user: User):
    """The task's "for whom" rules let ``user`` work it -- in a form the database answers from indexes:
    ``narrowed`` says how many kinds of rule (organisations, named users) the task has, and the person must
    match that many in ``task_audience``; a task bound to a scope by its own property (``scope_bound``) is for
    that scope's people (its ``scope`` column); and a distinct-worker sibling of one the person holds or did
    is not offered (``samflyt.distinctWorkers``)."""
    positive = select(TaskAudience.task_id).where(or_(
        and_(TaskAudience.rule == "organisations", TaskAudience.value.in_(sorted(user.organisation_names))),
        and_(TaskAudience.rule == "users", TaskAudience.value == user.username)))
    both = positive.group_by(TaskAudience.task_id).having(func.count(func.distinct(TaskAudience.rule)) >= 2)
    sibling = aliased(HumanTask)
    taken = select(sibling.instance_id, sibling.spec_name).where(
        sibling.status != "closed", or_(sibling.claimed_by == user.username, sibling.completed_by == user.username))
    return and_(or_(HumanTask.narrowed == 0,
                    and_(HumanTask.narrowed == 1, HumanTask.task_id.in_(positive)),
                    and_(HumanTask.narrowed >= 2, HumanTask.task_id.in_(both))),
                or_(HumanTask.scope_bound.is_(False), HumanTask.scope.in_(sorted(user.scope_names))),
                or_(HumanTask.distinct_workers.is_(False),
                    tuple_(HumanTask.instance_id, HumanTask.spec_name).not_in(taken)))


def _excluded(user: User):
    """An exclusion keeps ``user`` out (``authz.EXCLUSIONS``: a conflict of interest)."""
    return HumanTask.task_id.in_(select(TaskAudience.task_id).where(or_(
        and_(TaskAudience.rule == "exclude_organisations", TaskAudience.value.in_(sorted(user.organisation_names))),
        and_(TaskAudience.rule == authz.EXCLUDED_USERS, TaskAudience.value == user.username))))


def worklist(session: Session, user: User, view: str = "available", text: str | None = None, sort: str = "due",
             page: int = 1, per_page: int = 25, process_id: str | None = None) -> Page:
    """One page of a worklist, optionally narrowed to one process and by text.

    Every view is filtered, sorted, counted and paged by the database from indexed columns of the task rows
    and their narrowing rows (``task_audience``), whatever the number of instances; no instance state is
    read -- only the columns a list shows. The rules are checked once more on the page's rows
    (:func:`engine.authz.why_not`), so a rule a package registered that SQL does not know
    (:func:`engine.authz.register_narrowing`) still holds, at the price of a shorter page.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}")
    if view == "all" and not may_see_all(user):
        raise NotAuthorisedError(f"{user.username} may not see all open tasks")
    now = clock.now()
    admin = authz.is_admin(user)
    conditions: list[Any] = [HumanTask.status == "open"]
    offered = None  # the rows offered to the user to take (available and overdue), before exclusions
    if view == "mine":
        conditions.append(HumanTask.claimed_by == user.username)
    elif view in ("available", "overdue"):
        offered = HumanTask.claimed_by.is_(None)
        if not admin:
            offered = and_(offered, or_(HumanTask.candidate_role.in_(sorted(user.role_names)),
                                        HumanTask.candidate_role.is_(None)), _admits(user))
        if view == "overdue":
            conditions.append(HumanTask.due_at < now)
    if not admin:
        # another scope's cases are not listed, not even as blocked: their titles are its own -- except
        # a task bound by its case alone (no scope property of its own) that is mine or mine to take
        in_scope = or_(HumanTask.scope.is_(None), HumanTask.scope.in_(sorted(user.scope_names)))
        if view != "all":
            in_scope = or_(in_scope, HumanTask.scope_bound.is_(False))
        conditions.append(in_scope)
        if not user.active:
            conditions.append(false())  # a deactivated account works nothing
    joined = bool(process_id or text)
    if process_id:
        conditions.append(ProcessInstance.process_id == process_id)
    if text:
        like = f"%{text.strip()}%"
        conditions.append(or_(HumanTask.title.ilike(like), ProcessInstance.title.ilike(like),
                              ProcessInstance.business_key.ilike(like)))
    blocked_conditions = None
    if offered is not None:
        if view == "available" and not admin:
            blocked_conditions = [*conditions, offered, _excluded(user),
                                  HumanTask.candidate_role.in_(sorted(user.role_names))]
        takeable = and_(offered, ~_excluded(user)) if not admin else offered
        conditions.append(or_(HumanTask.claimed_by == user.username, takeable) if view == "overdue" else takeable)
    order = {"due": (HumanTask.due_at.asc().nulls_last(), HumanTask.created_at),
             "created": (HumanTask.created_at,), "title": (HumanTask.title, HumanTask.created_at)}[sort]
    page = min(max(page, 1), MAX_PAGE)  # an absurd page number is the last page there could be, not an overflow
    counted = select(func.count()).select_from(HumanTask)
    if joined:
        counted = counted.join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
    total = session.scalar(counted.where(*conditions))
    items = []
    for task, instance_id, pid, title, key, process_name in session.execute(
            _listed(conditions).order_by(*order, HumanTask.id).offset((page - 1) * per_page).limit(per_page)).all():
        restrictions = json.loads(task.restrictions or "{}")
        if task.claimed_by is None and offered is not None and authz.why_not(user, task, restrictions):
            continue  # a rule SQL does not know (see the docstring)
        items.append(_item(task, restrictions, instance_id, pid, title, key, process_name, now))
    blocked = []
    if blocked_conditions is not None:  # "tasks you cannot take", and why: a bounded list
        for task, instance_id, pid, title, key, process_name in session.execute(
                _listed(blocked_conditions).order_by(*order, HumanTask.id).limit(BLOCKED_LIMIT)).all():
            restrictions = json.loads(task.restrictions or "{}")
            reason = authz.why_not(user, task, restrictions)
            if reason is None or authz.oversight_reason(user, task, restrictions):
                continue
            blocked.append(_item(task, restrictions, instance_id, pid, title, key, process_name, now, reason))
    return Page(items, total, page, per_page, blocked)


def _listed(conditions: list[Any]):
    """The columns a list shows: the task row, its case's title and key, its process's name."""
    return (select(HumanTask, ProcessInstance.id, ProcessInstance.process_id, ProcessInstance.title,
                   ProcessInstance.business_key, ProcessModel.name)
            .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
            .join(ProcessModel, ProcessModel.process_id == ProcessInstance.process_id, isouter=True)
            .where(*conditions))


def _item(task: HumanTask, restrictions: dict[str, Any], instance_id: int, process_id: str, title: str | None,
          business_key: str | None, process_name: str | None, now: datetime, reason: Any = None) -> WorkItem:
    return WorkItem(task.task_id, task.spec_name, task.title, task.lane, process_id, process_name or process_id,
                    instance_id, title, business_key, _organisation(restrictions), task.due_at,
                    bool(task.due_at and task.due_at < now), task.claimed_by, task.created_at, reason)


def processes_with_open_tasks(session: Session) -> list[tuple[str, str]]:
    """``(process_id, name)`` of the models that have open human tasks: the choices of a worklist filter."""
    query = (select(ProcessInstance.process_id, ProcessModel.name).distinct()
             .join(HumanTask, HumanTask.instance_id == ProcessInstance.id)
             .join(ProcessModel, ProcessModel.process_id == ProcessInstance.process_id, isouter=True)
             .where(HumanTask.status == "open").order_by(ProcessInstance.process_id))
    return [(pid, name or pid) for pid, name in session.execute(query)]
