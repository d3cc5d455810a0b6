"""Worklists: the open human tasks a person sees, served from the human-task index, never from workflows.

Five views: ``mine`` (claimed by me), ``available`` (my roles, unclaimed, not blocked for me -- those
blocked come back separately with the reason so the page can say why), ``overdue`` (mine or available,
past the due date), ``workable`` (mine or available: what ``samflyt tasks --user`` lists) and ``all``
(every open task of the supervisor's scope, and those bound to none; supervisors and admins only).

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
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, any_, bindparam, func, or_, select, true, tuple_, union, union_all
from sqlalchemy import text as text_clause
from sqlalchemy.orm import Session, aliased

from . import authz, clock
from .errors import NotAuthorisedError
from .models import HumanTask, ProcessInstance, ProcessModel, TaskAudience, User

VIEWS = ("mine", "available", "overdue", "all", "workable")
SORTS = ("due", "created", "title")


#: At most this many "tasks you cannot take" are listed with their reasons.
BLOCKED_LIMIT = 50

#: Matching rows are counted exactly up to this many (or up to the end of the page asked for, if further);
#: beyond it a worklist says "more than". Counting every one of a region's 100 000 open tasks would cost a
#: read of them all on every page view, and no one pages through hundreds of tasks to find their own: they
#: search or filter.
COUNT_LIMIT = 200

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
    form_key: str | None = None


@dataclass
class Page:
    items: list[WorkItem]
    total: int
    page: int
    per_page: int
    blocked: list[WorkItem] = field(default_factory=list)
    #: more rows match than ``total``, which then is the number counted (see :data:`COUNT_LIMIT`)
    more: bool = False

    @property
    def pages(self) -> int:
        """Pages counted; with :attr:`more` there are pages after these."""
        return max(1, -(-self.total // self.per_page))


def may_see_all(user: User) -> bool:
    return authz.is_supervisor(user)


def _organisation(restrictions: dict[str, Any]) -> str | None:
    for key in ("organisations", "exclude_organisations"):
        values = restrictions.get(key) or []
        if values:
            return str(values[0])
    return None


# The user's values are bound parameters, so each shape of statement is built and compiled once per
# process (see :func:`_statements`) and a worklist read costs its queries, not their construction.
_USER = bindparam("username")
_ROLES = bindparam("roles", expanding=True)
_ORGS = bindparam("organisations", expanding=True)
_SCOPES = bindparam("scopes", expanding=True)
_NOW = bindparam("now")
_LIKE = bindparam("like")
_PROCESS = bindparam("process_id")


def _admitting_branches() -> list[Any]:
    """The task's "for whom" rules let the user work it, as disjoint branches the database answers each from
    its own index: ``narrowed`` says how many kinds of rule (organisations, named users) the task has -- none
    (open to the role: ``ix_human_tasks_offer``), one (the person matches it in ``task_audience``), or more
    (the person matches every kind). Kept apart rather than or-ed, so the planner may drive a branch from the
    person's few audience rows when they are few, and from the open rows in due order when they are many."""
    def matches(rule: str, value: Any):  # one kind of rule: an index-only read of ix_task_audience_match
        return select(TaskAudience.task_id).where(
            TaskAudience.task_id == HumanTask.task_id, TaskAudience.rule == rule,
            TaskAudience.value.in_(value) if value.expanding else TaskAudience.value == value).exists()

    matched = _audience(("organisations", _ORGS), ("users", _USER))
    both = select(matched.c.task_id).group_by(matched.c.task_id).having(
        func.count(func.distinct(matched.c.rule)) >= 2)
    # a task narrowed by one kind of rule has rows of that kind only: the two branches of it are disjoint
    return [HumanTask.narrowed == 0,
            and_(HumanTask.narrowed == 1, matches("organisations", _ORGS)),
            and_(HumanTask.narrowed == 1, matches("users", _USER)),
            and_(HumanTask.narrowed >= 2, HumanTask.task_id.in_(both))]


def _taken():
    """``(instance_id, element)`` of the tasks the user holds or did (not closed): for
    ``samflyt.distinctWorkers``, the other reviews of an application a member has reviewed are not theirs."""
    sibling = aliased(HumanTask)
    return select(sibling.instance_id, sibling.spec_name).where(
        sibling.status != "closed", or_(sibling.claimed_by == _USER, sibling.completed_by == _USER))


def _admits_beyond_audience(holding: bool):
    """The rest of the "for whom" rules: a task bound to a scope by its own property (``scope_bound``) is for
    that scope's people (its ``scope`` column); and -- for someone ``holding`` tasks -- a distinct-worker
    sibling of one the person holds or did is not offered (``samflyt.distinctWorkers``)."""
    in_scope = or_(HumanTask.scope_bound.is_(False), HumanTask.scope.in_(_SCOPES))
    if not holding:
        return in_scope
    return and_(in_scope, or_(HumanTask.distinct_workers.is_(False),
                              tuple_(HumanTask.instance_id, HumanTask.spec_name).not_in(_taken())))


def _exclusions():
    excluding = _audience(("exclude_organisations", _ORGS), (authz.EXCLUDED_USERS, _USER))
    return select(excluding.c.task_id)


def _excluded():
    """An exclusion keeps the user out (``authz.EXCLUSIONS``: a conflict of interest)."""
    return HumanTask.task_id.in_(_exclusions())


@lru_cache(maxsize=1)
def _circumstances():
    """Whether any open task excludes the user, and whether they hold or did any task: two index probes
    that spare most people's worklist statements the rules that could not apply to them (and the time it
    takes to plan those)."""
    return select(_exclusions().exists(), _taken().exists())


def _audience(*rules: tuple[str, Any]):
    """The ``(task_id, rule)`` rows of ``task_audience`` whose rule has one of the given values: one
    index-only range read of ``ix_task_audience_match`` per rule, never a visit to the table."""
    return union_all(*(select(TaskAudience.task_id, TaskAudience.rule).where(
        TaskAudience.rule == rule, TaskAudience.value.in_(values) if values.expanding else TaskAudience.value == values)
        for rule, values in rules)).subquery()


@dataclass(frozen=True)
class _Statements:
    count: Any  # counts the matching rows, up to the bound ``limit``
    page: Any  # one page of them (``offset``, ``per_page``)
    blocked: Any | None  # the "tasks you cannot take" (``limit``), for the available view


@lru_cache(maxsize=128)
def _statements(view: str, admin: bool, sort: str, by_process: bool, by_text: bool,
                by_instance: bool, postgres: bool, excluding: bool = True, holding: bool = True) -> _Statements:
    """The statements of one shape of worklist, built once: every value a user or a request brings is a
    bound parameter.

    The rows a view lists are the union of disjoint branches (mine; offered to take, by kind of narrowing),
    each filtered by its own index; the count adds the branches up to its limit, and the page takes each
    branch's first rows in the list's order and merges them."""
    common: list[Any] = [HumanTask.status == "open"]
    branches: list[Any] = [true()]
    blocked = None
    if view == "mine":
        common.append(HumanTask.claimed_by == _USER)
    elif view in ("available", "overdue", "workable"):
        if view == "overdue":
            common.append(HumanTask.due_at < _NOW)
        offered = HumanTask.claimed_by.is_(None)
        if admin:
            branches = [offered]
        else:
            offered = and_(offered, or_(HumanTask.candidate_role.in_(_ROLES), HumanTask.candidate_role.is_(None)),
                           _admits_beyond_audience(holding))
            branches = [and_(offered, narrowing, ~_excluded()) if excluding else and_(offered, narrowing)
                        for narrowing in _admitting_branches()]
            if view == "available" and excluding:
                blocked = [offered, or_(*_admitting_branches()), _excluded(), HumanTask.candidate_role.in_(_ROLES)]
        if view != "available":
            branches.append(HumanTask.claimed_by == _USER)
    if not admin:
        # another scope's cases are not listed, not even as blocked: their titles are its own -- except
        # a task bound by its case alone (no scope property of its own) that is mine or mine to take
        in_scope = or_(HumanTask.scope.is_(None), HumanTask.scope.in_(_SCOPES))
        if view != "all":
            in_scope = or_(in_scope, HumanTask.scope_bound.is_(False))
        common.append(in_scope)
    if by_process:
        common.append(HumanTask.process_id == _PROCESS)
    if by_instance:
        common.append(HumanTask.instance_id == bindparam("instance_id"))
    if by_text:
        # the task's title, or its case's title or key: as branches of their own too, so each is answered
        # by its trigram index (migration 0018) -- a task matching both is counted and listed once
        cases = select(ProcessInstance.id).where(
            or_(ProcessInstance.title.ilike(_LIKE, escape="\\"),
                ProcessInstance.business_key.ilike(_LIKE, escape="\\")))
        # PostgreSQL: the matching cases first, then their tasks by index (``= ANY(ARRAY(...))``), where an
        # ``IN`` would be planned as a scan of every open task joined to them
        of_cases = (HumanTask.instance_id == any_(func.array(cases.scalar_subquery())) if postgres
                    else HumanTask.instance_id.in_(cases))
        matches = (HumanTask.title.ilike(_LIKE, escape="\\"), of_cases)
        branches = [and_(branch, match) for branch in branches for match in matches]
        if blocked is not None:
            blocked.append(or_(*matches))
    order = {"due": (HumanTask.due_at.asc().nulls_last(), HumanTask.created_at),
             "created": (HumanTask.created_at,), "title": (HumanTask.title, HumanTask.created_at)}[sort]
    order = (*order, HumanTask.id)
    if len(branches) == 1:
        count = select(func.count()).select_from(
            select(HumanTask.id).where(*common, branches[0]).limit(bindparam("limit")).subquery())
        page = _listed([*common, branches[0]]).order_by(*order).offset(bindparam("offset")).limit(
            bindparam("per_page"))
    else:
        counted = (union if by_text else union_all)(*(select(HumanTask.id).where(*common, branch)
                                                      for branch in branches))
        count = select(func.count()).select_from(counted.limit(bindparam("limit")).subquery())
        # each branch's first rows up to the end of the page, in the list's order; then the page of their union
        firsts = union_all(*(select(_first.c.id).select_from(_first) for _first in (
            select(HumanTask.id).where(*common, branch).order_by(*order).limit(bindparam("window")).subquery()
            for branch in branches))).subquery()
        page = _listed([HumanTask.id.in_(select(firsts.c.id))]).order_by(*order).offset(
            bindparam("offset")).limit(bindparam("per_page"))
    if blocked is not None:
        blocked = _listed([*common, *blocked]).order_by(*order).limit(bindparam("limit"))
    return _Statements(count, page, blocked)


def worklist(session: Session, user: User, view: str = "available", text: str | None = None, sort: str = "due",
             page: int = 1, per_page: int = 25, process_id: str | None = None,
             instance_id: int | None = None) -> Page:
    """One page of a worklist, optionally narrowed to one process, to one instance and by text.

    Every view is filtered, sorted, counted and paged by the database from indexed columns of the task rows
    and their narrowing rows (``task_audience``), whatever the number of instances; no instance state is
    read -- only the columns a list shows. The rules are checked once more on the page's rows
    (:func:`engine.authz.why_not`), so a rule a package registered that SQL does not know
    (:func:`engine.authz.register_narrowing`) still holds, at the price of a shorter page.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}")
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    if view == "all" and not may_see_all(user):
        raise NotAuthorisedError(f"{user.username} may not see all open tasks")
    page = min(max(page, 1), MAX_PAGE)  # an absurd page number is the last page there could be, not an overflow
    admin = authz.is_admin(user)
    if not admin and not user.active:
        return Page([], 0, page, per_page)  # a deactivated account works nothing
    now = clock.now()
    text = (text or "").strip()
    postgres = session.get_bind().dialect.name == "postgresql"
    params: dict[str, Any] = {"username": user.username, "roles": sorted(user.role_names),
                              "organisations": sorted(user.organisation_names), "scopes": sorted(user.scope_names),
                              "now": now, "process_id": process_id, "like": f"%{_literal(text)}%",
                              "instance_id": instance_id}
    excluding = holding = True
    if not admin and view != "mine":
        excluding, holding = session.execute(_circumstances(), params).one()
    statements = _statements(view, admin, sort, bool(process_id), bool(text), instance_id is not None, postgres,
                             bool(excluding), bool(holding))
    if postgres:
        # plan for this person's values every time: a plan made once for any values (PostgreSQL's "generic"
        # plan for a prepared statement) cannot know that a person's audience rows are few, or many
        session.execute(text_clause("SET LOCAL plan_cache_mode = force_custom_plan"))
    # counted exactly up to COUNT_LIMIT (and always past the page asked for): beyond it "more than" is
    # what a person needs, and a count of every row would cost what the whole region's open tasks cost
    limit = max(COUNT_LIMIT, page * per_page)
    total = session.scalar(statements.count, params | {"limit": limit + 1})
    more = total > limit
    total = min(total, limit)
    offered = view in ("available", "overdue", "workable")
    items = []
    for task, instance_id, pid, title, key, process_name in session.execute(
            statements.page, params | {"offset": (page - 1) * per_page, "per_page": per_page,
                                       "window": page * per_page}).all():
        restrictions = json.loads(task.restrictions or "{}")
        if task.claimed_by is None and offered and authz.why_not(user, task, restrictions):
            continue  # a rule SQL does not know (see the docstring)
        items.append(_item(task, restrictions, instance_id, pid, title, key, process_name, now))
    blocked = []
    if statements.blocked is not None:  # "tasks you cannot take", and why: a bounded list
        for task, instance_id, pid, title, key, process_name in session.execute(
                statements.blocked, params | {"limit": BLOCKED_LIMIT}).all():
            restrictions = json.loads(task.restrictions or "{}")
            reason = authz.why_not(user, task, restrictions)
            if reason is None or authz.oversight_reason(user, task, restrictions):
                continue
            blocked.append(_item(task, restrictions, instance_id, pid, title, key, process_name, now, reason))
    return Page(items, total, page, per_page, blocked, more)


def _literal(text: str) -> str:
    """``text`` for a LIKE pattern that finds it as typed: ``%`` and ``_`` are characters, not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
                    bool(task.due_at and task.due_at < now), task.claimed_by, task.created_at, reason, task.form_key)


def processes_with_open_tasks(session: Session) -> list[tuple[str, str]]:
    """``(process_id, name)`` of the models that have open human tasks: the choices of a worklist filter --
    one probe of ``ix_human_tasks_open_process`` per model, however many tasks are open."""
    has_open = select(HumanTask.id).where(HumanTask.status == "open",
                                          HumanTask.process_id == ProcessModel.process_id).exists()
    query = select(ProcessModel.process_id, ProcessModel.name).where(has_open).order_by(ProcessModel.process_id)
    return [(pid, name or pid) for pid, name in session.execute(query)]
