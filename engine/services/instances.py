"""Instances: start (by an operator or a person), cancel, retry, messages, and connectors run outside any process."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update

from .. import authz, clock
from ..connectors import StepContext
from ..errors import (
    InstanceStateError,
    NotAuthorisedError,
)
from ..models import HumanTask, Message
from ..payload import check as check_payload
from ..spiff_events import resume_stalled
from ..texts import _
from ..unit_of_work import plain
from ..views import MessageResult
from .core import Core
from .repository import start_event, start_form


class Instances:
    """Starting and steering process instances; each call one transaction (a unit of work)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def start(self, process_id: str, data: dict[str, Any] | None = None, business_key: str | None = None,
              actor: str | None = None, title: str | None = None) -> int:
        """Start the latest version of ``process_id``; returns the new instance id."""
        check_payload(data or {})
        with self.core.unit() as unit:
            if actor is not None:
                self.core.user(unit.session, actor)
            version = self.core.latest_version(unit.session, process_id)
            li = unit.create(version, data=data, business_key=business_key, title=title, actor=actor)
            unit.advance(li, actor=actor)
            instance_id = li.row.id
        if actor is not None:
            self.starter_takes_first_task(instance_id, actor)
        return instance_id

    def start_as(self, process_id: str, actor: str, data: dict[str, Any] | None = None,
                 business_key: str | None = None, title: str | None = None) -> int:
        """Start the latest version of ``process_id`` for a person, as the start page does: only when the
        start event's ``samflyt.starterRoles`` lets them (admins always), with ``data`` validated against
        the start event's form when it has one. Audited as every start is; returns the new instance id."""
        check_payload(data or {})
        with self.core.unit() as unit:
            user = self.core.user(unit.session, actor)
            version = self.core.latest_version(unit.session, process_id)
            event = start_event(version)
            properties = (getattr(event, "extensions", None) or {}).get("properties", {}) if event else {}
            if event is None or not authz.may_start(user, properties):
                raise NotAuthorisedError(_("%(user)s may not start %(process)s", user=actor, process=process_id))
            form = start_form(self.core, unit.session, version, properties, user.username)
            values = form.validate(data or {}) if form is not None else dict(data or {})
            li = unit.create(version, data=values, business_key=business_key, title=title, actor=user.username)
            unit.advance(li, actor=user.username)
            instance_id, username = li.row.id, user.username
        self.starter_takes_first_task(instance_id, username)
        return instance_id

    def starter_takes_first_task(self, instance_id: int, username: str) -> str | None:
        """Claim for the person who started an instance its first open task they may work, so that what
        they just began is under their own tasks rather than unclaimed among the available ones.

        Only a task meant for the starter -- named for them (``samflyt.userField``) or for a role they have --
        that they may work as such (:func:`engine.authz.why_not`), not one an admin could take only by being
        admin, and not one of a multi-instance task whose siblings go to distinct people. A task open to
        anyone stays open to anyone: starting a case says nothing about who does its parallel work.

        Its own transaction after the start's: the task rows exist only once the start is saved, and a start
        stands even if someone else took the task meanwhile. Audited as a claim; returns the claimed task's
        id, or ``None``.
        """
        with self.core.unit() as unit:
            s = unit.session
            user = self.core.user(s, username)
            rows = s.scalars(select(HumanTask).where(
                HumanTask.instance_id == instance_id, HumanTask.status == "open",
                HumanTask.claimed_by.is_(None)).order_by(HumanTask.id))
            for row in rows:
                restrictions = json.loads(row.restrictions or "{}")
                meant = user.username in restrictions.get("users", []) or bool(
                    row.candidate_role and row.candidate_role.lower() in user.role_names)
                if (not meant or restrictions.get("distinct_workers")
                        or authz.why_not(user, row, restrictions) is not None
                        or authz.needs_admin(user, row, restrictions)):
                    continue
                won = s.execute(update(HumanTask).where(
                    HumanTask.id == row.id, HumanTask.status == "open", HumanTask.claimed_by.is_(None)
                ).values(claimed_by=user.username, claimed_at=clock.now()).execution_options(
                    synchronize_session=False)).rowcount
                if won:
                    unit.audit("claim", user.username, instance_id, row.task_id, at_start=True)
                    return row.task_id
        return None

    def cancel(self, instance_id: int, actor: str | None, reason: str | None = None) -> None:
        with self.core.unit() as unit:
            user = self.core.user(unit.session, actor) if actor else None
            li = unit.load(instance_id)
            if user is not None and not authz.is_admin(user) and li.row.started_by != user.username:
                raise NotAuthorisedError(_("%(user)s may not cancel instance %(instance)s", user=actor,
                                                       instance=instance_id))
            if li.row.status in ("completed", "cancelled"):
                raise InstanceStateError(_("instance %(instance)s is already %(status)s", instance=instance_id,
                                                       status=li.row.status))
            li.workflow.cancel()
            li.row.status = "cancelled"
            li.dirty = True
            unit.audit("cancel", actor, instance_id, reason=reason)

    def retry(self, instance_id: int, actor: str | None) -> str:
        """Run an instance in ``error`` again from its failed step; returns the new status."""
        with self.core.unit() as unit:
            if actor is not None and not authz.is_admin(self.core.user(unit.session, actor)):
                raise NotAuthorisedError(_("%(user)s may not retry instances: %(reason)s", user=actor,
                                                       reason=_("admins only")))
            li = unit.load(instance_id)
            if li.row.status != "error":
                raise InstanceStateError(_("instance %(instance)s is %(status)s, not in error", instance=instance_id,
                                                       status=li.row.status))
            unit.audit("retry", actor, instance_id, previous_error=li.row.error_message)
            li.row.status = "running"
            unit.advance(li, before=lambda: resume_stalled(li.workflow), actor=actor)
            unit.deliver_held(instance_id, actor)  # what arrived while it was in error
        return li.view().status

    def call_connector(self, name: str, params: dict[str, Any] | None = None, actor: str | None = None) -> Any:
        """Run a connector outside any process, in its own audited transaction (admins only when ``actor``
        is given): e.g. recording a figure that comes from outside any process."""
        with self.core.unit() as unit:
            if actor is not None and not authz.is_admin(self.core.user(unit.session, actor)):
                raise NotAuthorisedError(_("%(user)s may not run connectors directly: %(reason)s", user=actor,
                                                       reason=_("admins only")))
            # its own transaction, outside any step; messages it sends are delivered when the unit saves
            context = StepContext(unit.session, actor=actor,
                                  send=lambda *message: unit.queue_message(*message, actor=actor))
            result = self.core.connectors.call(name, params or {}, context)
            unit.audit("connector", actor, None, connector=name, params=plain(params or {}))
            return result

    def send_message(self, name: str, payload: dict[str, Any] | None = None,
                     correlations: dict[str, Any] | None = None, actor: str | None = None) -> MessageResult:
        """Deliver a message by name and correlation (property id -> value) in one transaction."""
        check_payload({"payload": payload or {}, "correlations": correlations or {}})
        with self.core.unit() as unit:
            return unit.deliver(name, payload or {}, correlations or None, None, actor)

    def messages(self, status: str | None = None) -> list[dict[str, Any]]:
        with self.core.Session() as s:
            query = select(Message).order_by(Message.id)
            if status:
                query = query.where(Message.status == status)
            return [{"id": m.id, "name": m.name, "status": m.status, "payload": json.loads(m.payload),
                     "correlations": json.loads(m.correlations), "sender_instance_id": m.sender_instance_id,
                     "target_instance_id": m.target_instance_id, "created_at": m.created_at.isoformat()}
                    for m in s.scalars(query)]
