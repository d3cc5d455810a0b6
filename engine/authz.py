"""Who may claim and complete a human task.

The rule: a user may work a task when they hold the role named by the task's lane (lane name = role
name, case-insensitive); a task outside any lane is open to any signed-in user; role ``admin`` may act
on any task (and is audited as acting as admin). A task claimed by someone else can be completed only
by them or an admin.

Narrowing hook: a task may carry extension properties that narrow who may work it, evaluated against
the task's data when it becomes ready and stored on the human-task row (so worklists need no workflow):

* ``samflyt.organisationField`` -- data field holding an organisation name (or a list): only members;
* ``samflyt.excludeOrganisationsField`` -- data field holding organisation names whose members may
  *not* work the task (e.g. conflict of interest: the applicant and its partners);
* ``samflyt.excludeUsersField`` -- data field holding usernames who may *not* work the task (people who
  stood aside in the case); :meth:`engine.runtime.Runtime.exclude_person` adds one to the open tasks;
* ``samflyt.userField`` -- data field holding a username (or a list): only those users;
* ``samflyt.scopeField`` -- data field holding the name of the organisational scope whose case it is
  (a scope groups organisations, e.g. a region): only members of that scope's organisations, and that
  binds supervisors too -- a supervisor of one scope neither sees nor reassigns another scope's tasks.
  An empty field binds the task to no scope. Packages may name further scope properties
  (:func:`register_scope_property`), e.g. a property name their diagrams already use.

Processes may add rules with :func:`register_narrowing`.

Whose role a task is for is its lane's, unless it carries ``samflyt.roleField`` -- a data field holding the
role instead (:func:`candidate_role`): a task whose people are decided while the process runs (a role, or with
an empty field no role and a named user through ``samflyt.userField``) can sit in one lane of the diagram.

Two things are kept apart. *Who may work* a task is decided by its narrowing alone (above). *Whose
supervisors oversee* it -- see it listed, open it, reassign it -- is decided by its scope: the one its
own scope property names, else its case's (``process_instances.scope``), which the human-task row's
``scope`` column holds (:func:`case_scopes`). So an instance's scope binds all its tasks, an applicant's
draft included, without requiring the applicant's organisation to be placed in that scope.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from .errors import NotAuthorisedError
from .models import HumanTask, User
from .texts import Text, _, joined

ADMIN_ROLE = "admin"

#: property name -> (restriction key the values go to)
_NARROWING: dict[str, str] = {
    "samflyt.organisationField": "organisations",
    "samflyt.excludeOrganisationsField": "exclude_organisations",
    "samflyt.excludeUsersField": "exclude_users",
    "samflyt.userField": "users",
    "samflyt.scopeField": "scopes",
}
#: restriction key of the scope a task (and so its case) is bound to
SCOPES = "scopes"
#: the properties binding a task (and so its case) to a scope
SCOPE_PROPERTIES: list[str] = ["samflyt.scopeField"]
#: restriction key -> check(user, allowed values) -> reason it fails, or None when the user passes
_CHECKS: dict[str, Callable[[User, list[Any]], Text | None]] = {}
#: restriction keys that *exclude* people a task is otherwise offered to (a conflict of interest), as
#: opposed to those that name whom it is for: a worklist lists the tasks an exclusion blocks, with why
EXCLUSIONS: set[str] = {"exclude_organisations", "exclude_users"}
#: restriction key of the people who stood aside in a case (see :meth:`engine.runtime.Runtime.exclude_person`)
EXCLUDED_USERS = "exclude_users"


#: property naming a data field that holds the role a task is for, in place of its lane's
ROLE_PROPERTY = "samflyt.roleField"


def candidate_role(lane: str | None, properties: dict[str, str], data: dict[str, Any]) -> str | None:
    """The role a task is for: the value of its ``samflyt.roleField`` field when it has that property (an
    empty value: no role, so its narrowing alone says who), else its lane's name (lower-case)."""
    field = properties.get(ROLE_PROPERTY)
    if field:
        return str(data.get(field) or "").strip().lower() or None
    return lane.lower() if lane else None


def register_narrowing(property_name: str, key: str,
                       check: Callable[[User, list[Any]], Text | None], excludes: bool = False) -> None:
    """Add a narrowing rule: ``property_name`` names a data field whose values go to ``key``. With
    ``excludes``, the rule keeps people out of a task they would otherwise be offered (a conflict of
    interest), so worklists show them the task as blocked with the reason rather than not at all."""
    _NARROWING[property_name] = key
    _CHECKS[key] = check
    if excludes:
        EXCLUSIONS.add(key)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple | set) else [value]


def restrictions_for(properties: dict[str, str], data: dict[str, Any]) -> dict[str, list[Any]]:
    """Evaluate a task's narrowing properties against its data."""
    result: dict[str, list[Any]] = {}
    for prop, key in _NARROWING.items():
        field = properties.get(prop)
        if field:
            values = [v for v in _as_list(data.get(field)) if v not in (None, "")]
            if key == SCOPES and not values:
                continue  # not (yet) bound to a scope: no narrowing, rather than no one at all
            if key == "users" and not values and candidate_role(None, properties, data):
                continue  # the task's data gives it a role (``samflyt.roleField``) instead of named users
            result.setdefault(key, []).extend(values)
    return result


def audience(restrictions: dict[str, list[Any]]) -> list[tuple[str, str]]:
    """The restrictions as ``(rule, value)`` pairs, one per value: the rows of ``task_audience`` that let a
    worklist filter by them in SQL (:mod:`engine.worklist`). A rule present with no values (a task for the
    people of a field left empty: no one) is one pair with the value ``""``, which matches no one."""
    pairs = []
    for rule, values in restrictions.items():
        values = [v for v in (values if isinstance(values, list) else [values]) if v not in (None, "")]
        pairs += [(str(rule)[:40], str(v)[:300]) for v in values] or [(str(rule)[:40], "")]
    return pairs


def register_scope_property(property_name: str) -> None:
    """Let ``property_name`` bind tasks to a scope as ``samflyt.scopeField`` does."""
    _NARROWING[property_name] = SCOPES
    if property_name not in SCOPE_PROPERTIES:
        SCOPE_PROPERTIES.append(property_name)


def task_scope(restrictions: dict[str, list[Any]]) -> str | None:
    """The one scope a task is bound to (the human-task row's ``scope`` column), if exactly one."""
    values = {str(v) for v in restrictions.get(SCOPES, [])}
    return values.pop() if len(values) == 1 else None


def _check_organisations(user: User, allowed: list[Any]) -> Text | None:
    if user.organisation_names & {str(a) for a in allowed}:
        return None
    if not allowed:
        return _("only members of a named organisation may work this task")
    return _("only members of %(organisations)s may work this task", organisations=joined(allowed))


def _check_excluded(user: User, excluded: list[Any]) -> Text | None:
    clash = sorted(user.organisation_names & {str(e) for e in excluded})
    if clash:
        return _("conflict of interest: you are a member of %(organisations)s", organisations=joined(clash))
    return None


def _check_excluded_users(user: User, excluded: list[Any]) -> Text | None:
    if user.username in {str(e) for e in excluded}:
        return _("conflict of interest: you have stood aside in this case")
    return None


def _check_users(user: User, allowed: list[Any]) -> Text | None:
    return None if user.username in {str(a) for a in allowed} else _("this task is assigned to named users")


def _check_scopes(user: User, allowed: list[Any]) -> Text | None:
    if user.scope_names & {str(a) for a in allowed}:
        return None
    return _("the case belongs to %(scope)s, and you are not a member of it", scope=joined(allowed))


_CHECKS.update({"organisations": _check_organisations, "exclude_organisations": _check_excluded,
                EXCLUDED_USERS: _check_excluded_users,
                "users": _check_users, SCOPES: _check_scopes})


def scope_reason(user: User, restrictions: dict[str, list[Any]]) -> Text | None:
    """Why ``user`` is outside the scope a task is bound to, or ``None`` (admins are never outside)."""
    if is_admin(user) or not restrictions.get(SCOPES):
        return None
    return _check_scopes(user, restrictions[SCOPES])


def case_scopes(task: HumanTask, restrictions: dict[str, list[Any]]) -> list[str]:
    """The scopes whose supervisors oversee ``task``: those its own scope property names, else its row's
    ``scope`` -- its case's, written with the row (an applicant's draft has no scope property of its own,
    yet is its case's)."""
    own = [str(v) for v in restrictions.get(SCOPES, [])]
    return own or ([task.scope] if task.scope else [])


def oversight_reason(user: User, task: HumanTask, restrictions: dict[str, list[Any]]) -> str | None:
    """Why ``user`` is outside the scope of ``task``'s case (:func:`case_scopes`), or ``None`` (admins are
    never outside). Unlike :func:`scope_reason`, this decides who oversees a task, not who may work it."""
    scopes = case_scopes(task, restrictions)
    if is_admin(user) or not scopes:
        return None
    return _check_scopes(user, scopes)


def supervises(user: User, task: HumanTask, restrictions: dict[str, list[Any]]) -> bool:
    """Whether ``user`` oversees ``task`` (with these restrictions): a supervisor of its case's scope."""
    return is_supervisor(user) and oversight_reason(user, task, restrictions) is None


#: Roles that oversee all work of their scope (see every open task, reassign): none by default; packages
#: add theirs (:func:`register_supervisor_roles`) and ``SAMFLYT_SUPERVISOR_ROLES`` (comma-separated) more.
SUPERVISOR_ROLES = {r.strip().lower() for r in os.environ.get("SAMFLYT_SUPERVISOR_ROLES", "").split(",") if r.strip()}


def register_supervisor_roles(*roles: str) -> None:
    """Configure roles that supervise the work of their scope (a package's own committee, say)."""
    SUPERVISOR_ROLES.update(r.strip().lower() for r in roles if r.strip())


def is_supervisor(user: User) -> bool:
    """Admins and the supervising roles may see all open tasks (of their scope) and reassign."""
    return is_admin(user) or bool(user.role_names & SUPERVISOR_ROLES)


def is_admin(user: User) -> bool:
    return ADMIN_ROLE in user.role_names


def why_not(user: User, task: HumanTask, restrictions: dict[str, list[Any]]) -> Text | None:
    """The reason ``user`` may not work ``task`` (ignoring who claimed it), or ``None`` if they may."""
    if not user.active:
        return _("the account is deactivated")
    if is_admin(user):
        return None
    return _member_reason(user, task, restrictions)


def needs_admin(user: User, task: HumanTask, restrictions: dict[str, list[Any]]) -> bool:
    """True when ``user`` can act on ``task`` only because they are an admin (audited as such)."""
    if not is_admin(user):
        return False
    if task.claimed_by not in (None, user.username):
        return True
    return _member_reason(user, task, restrictions) is not None


def _member_reason(user: User, task: HumanTask, restrictions: dict[str, list[Any]]) -> Text | None:
    if task.candidate_role and task.candidate_role.lower() not in user.role_names:
        return _("the task needs the role '%(role)s'", role=task.candidate_role)
    for key, values in restrictions.items():
        check = _CHECKS.get(key)
        if check is not None:
            reason = check(user, values)
            if reason:
                return reason
    return None


def blocked_by_exclusion(user: User, task: HumanTask, restrictions: dict[str, list[Any]]) -> bool:
    """True when only an exclusion (:data:`EXCLUSIONS`, e.g. a conflict of interest) keeps ``user`` from a
    task that their role, scope and its other narrowing would offer them: what a worklist lists as
    blocked. A task narrowed to other people (named users, an organisation they are not in, another
    scope) is simply not theirs, and not listed at all."""
    if is_admin(user) or not user.active or not (EXCLUSIONS & restrictions.keys()):
        return False
    offered = {k: v for k, v in restrictions.items() if k not in EXCLUSIONS}
    return _member_reason(user, task, offered) is None and _member_reason(user, task, restrictions) is not None


def require_may_work(user: User, task: HumanTask, restrictions: dict[str, list[Any]]) -> None:
    reason = why_not(user, task, restrictions)
    if reason:
        raise NotAuthorisedError(_("%(user)s may not work task %(task)s: %(reason)s", user=user.username,
                                   task=task.task_id, reason=reason))


def may_view_task(user: User, task: HumanTask, restrictions: dict[str, list[Any]]) -> bool:
    """Who may open a task's page: whoever may work it (even while someone else holds it, so a colleague
    can see who has it), whoever claimed or completed it, supervisors of its case's scope
    (:func:`case_scopes`) and admins.

    Decided here and not in a view, so every entry point (pages, downloads, form posts) applies one rule.
    """
    if not user.active:
        return False
    if supervises(user, task, restrictions) or user.username in (task.claimed_by, task.completed_by):
        return True
    return task.status == "open" and _member_reason(user, task, restrictions) is None


def may_view_instance(user: User, started_by: str | None, tasks: list[HumanTask],
                      scope: str | None = None) -> bool:
    """Who may open an instance's page: its starter, anyone who has or had one of its tasks, anyone who
    may claim one of its open tasks (the case link in "Available" must open), admins, and supervisors --
    of the case's scope, when it or one of its tasks is bound to a scope.

    ``tasks`` are the instance's human-task rows, open and closed; ``scope`` the instance's own.
    """
    if not user.active:
        return False
    if _speaks_for_case(user, started_by, tasks, scope):
        return True
    for task in tasks:
        if user.username in (task.claimed_by, task.completed_by):
            return True
        if (task.status == "open" and task.claimed_by is None
                and _member_reason(user, task, json.loads(task.restrictions or "{}")) is None):
            return True
    return False


#: Start-event property: comma-separated roles whose members may start the process from the UI.
STARTER_ROLES_PROPERTY = "samflyt.starterRoles"


def starter_roles(properties: dict[str, str]) -> set[str]:
    """The roles a start event's ``samflyt.starterRoles`` names (lower-case, as roles are stored)."""
    return {r.strip().lower() for r in properties.get(STARTER_ROLES_PROPERTY, "").split(",") if r.strip()}


def may_start(user: User, properties: dict[str, str]) -> bool:
    """Whether ``user`` may start a process whose start event has ``properties``.

    The diagram decides: members of the roles its start event names, and admins. A process whose start
    event names no roles is not started by people at all -- it is called by another process (a follow-up),
    started by a message, or by an operator on the command line -- so it is offered to nobody, not even
    an admin, since starting it bare would lack the data its caller passes.
    """
    roles = starter_roles(properties)
    if not user.active or not roles:
        return False
    return is_admin(user) or bool(user.role_names & roles)


def _speaks_for_case(user: User, started_by: str | None, tasks: list[HumanTask], scope: str | None) -> bool:
    """The case's starter, admins, and supervisors of the case's scope: the instance's own (``scope``,
    known from its data before any task is bound to it) and every one a task of the instance is bound to;
    ``tasks`` are the instance's human-task rows."""
    if user.username == started_by:
        return True
    if scope and scope_reason(user, {SCOPES: [scope]}):
        return False
    return is_supervisor(user) and all(oversight_reason(user, t, json.loads(t.restrictions or "{}")) is None
                                       for t in tasks)


def may_send_message(user: User, started_by: str | None, tasks: Sequence[HumanTask] = (),
                     scope: str | None = None) -> bool:
    """Who may send an instance a message from its form (a report, a withdrawal): the one who started it
    -- the starter speaks for the case -- admins, and supervisors of the case's scope (``tasks`` and
    ``scope`` as for :func:`may_view_instance`)."""
    return user.active and _speaks_for_case(user, started_by, list(tasks), scope)
