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
Filtering, sorting and paging happen here so every entry point pages the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from . import authz, clock
from .errors import NotAuthorisedError
from .models import HumanTask, ProcessInstance, ProcessModel, User

VIEWS = ("mine", "available", "overdue", "all")
SORTS = ("due", "created", "title")


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


def worklist(session: Session, user: User, view: str = "available", text: str | None = None, sort: str = "due",
             page: int = 1, per_page: int = 25, process_id: str | None = None) -> Page:
    """One page of a worklist, optionally narrowed to one process and by text.

    "Mine" and "all" are paged by the database (``all`` may be every open task of the scope).
    "Available" and "overdue" are paged after each row's narrowing rules (organisation, conflict of
    interest, named users) are evaluated, which are data of the row, not columns; those views hold only
    the open, unclaimed tasks of the user's roles.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}")
    if view == "all" and not may_see_all(user):
        raise NotAuthorisedError(f"{user.username} may not see all open tasks")
    now = clock.now()
    query = (select(HumanTask, ProcessInstance, ProcessModel.name)
             .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
             .join(ProcessModel, ProcessModel.process_id == ProcessInstance.process_id, isouter=True)
             .where(HumanTask.status == "open"))
    if view == "mine":
        query = query.where(HumanTask.claimed_by == user.username)
    elif view in ("available", "overdue"):
        mine_or_open = or_(HumanTask.claimed_by == user.username, HumanTask.claimed_by.is_(None))
        query = query.where(mine_or_open if view == "overdue" else HumanTask.claimed_by.is_(None))
        if not authz.is_admin(user):
            query = query.where(or_(HumanTask.candidate_role.in_(sorted(user.role_names)),
                                    HumanTask.candidate_role.is_(None)))
        if view == "overdue":
            query = query.where(HumanTask.due_at < now)
    if not authz.is_admin(user):
        # another scope's cases are not listed, not even as blocked: their titles are its own -- except
        # a task bound by its case alone (no scope property of its own) that is mine or mine to take,
        # which the rows' narrowing decides below
        in_scope = or_(HumanTask.scope.is_(None), HumanTask.scope.in_(sorted(user.scope_names)))
        if view != "all":
            in_scope = or_(in_scope, ~HumanTask.restrictions.contains(f'"{authz.SCOPES}":'))
        query = query.where(in_scope)
    if process_id:
        query = query.where(ProcessInstance.process_id == process_id)
    if text:
        like = f"%{text.strip()}%"
        query = query.where(or_(HumanTask.title.ilike(like), ProcessInstance.title.ilike(like),
                                ProcessInstance.business_key.ilike(like)))
    order = {"due": (HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.created_at),
             "created": (HumanTask.created_at,), "title": (HumanTask.title, HumanTask.created_at)}[sort]
    page = min(max(page, 1), MAX_PAGE)  # an absurd page number is the last page there could be, not an overflow
    start = (page - 1) * per_page
    query = query.order_by(*order, HumanTask.id)
    paged_here = view in ("mine", "all")
    if paged_here:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        query = query.offset(start).limit(per_page)
    items, blocked = [], []
    taken = taken_siblings(session, user.username) if view in ("available", "overdue") else set()
    for task, instance, process_name in session.execute(query).all():
        restrictions = json.loads(task.restrictions or "{}")
        if offered_elsewhere(task, restrictions, user.username, taken) or authz.scope_reason(user, restrictions):
            continue
        reason = None
        if view in ("available", "overdue") and task.claimed_by is None:
            reason = authz.why_not(user, task, restrictions)
        if reason is not None and authz.oversight_reason(user, task, restrictions):
            continue  # another scope's case that is not mine to take: not listed, not even as blocked
        item = WorkItem(task.task_id, task.spec_name, task.title, task.lane, instance.process_id,
                        process_name or instance.process_id, instance.id, instance.title, instance.business_key,
                        _organisation(restrictions), task.due_at, bool(task.due_at and task.due_at < now),
                        task.claimed_by, task.created_at, reason)
        if reason is None:
            items.append(item)
        elif (view == "available" and task.candidate_role in user.role_names
              and authz.blocked_by_exclusion(user, task, restrictions)):
            blocked.append(item)
    if paged_here:
        return Page(items, total, page, per_page, blocked)
    return Page(items[start:start + per_page], len(items), page, per_page, blocked)


def processes_with_open_tasks(session: Session) -> list[tuple[str, str]]:
    """``(process_id, name)`` of the models that have open human tasks: the choices of a worklist filter."""
    query = (select(ProcessInstance.process_id, ProcessModel.name).distinct()
             .join(HumanTask, HumanTask.instance_id == ProcessInstance.id)
             .join(ProcessModel, ProcessModel.process_id == ProcessInstance.process_id, isouter=True)
             .where(HumanTask.status == "open").order_by(ProcessInstance.process_id))
    return [(pid, name or pid) for pid, name in session.execute(query)]
