"""Reminders and overdue notices for human tasks with a due date.

A user task may carry ``samflyt.dueDate`` (an expression giving the due date) and ``samflyt.reminders``
(working days before the due date to remind on, e.g. ``"10,2"``). The scheduler calls
:func:`send_task_reminders` on every pass: a reminder is mailed once it is due (a reminder whose day passed
before the task existed is recorded but only the latest one is mailed), and a task still open after its
due date is marked overdue and its people notified. Each notice is a ``task_notices`` row, unique per task
and kind, written in the same transaction as its mail: none is ever sent twice, even by two schedulers.

The people are whoever claimed the task, else the active users holding the task's role who may work it
(narrowing included) and have an e-mail address; a task for no role but for named users (``samflyt.userField``)
reminds those users. Escalation that changes the process (a task for a supervisor)
belongs in the BPMN, as a non-interrupting boundary timer.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import authz, clock
from .calendar import local_date
from .db import for_update
from .mail import enqueue
from .models import AuditEvent, HumanTask, ProcessInstance, ProcessModel, Role, TaskNotice, User
from .notice_times import next_notice_at, notices_due
from .serialization import dumps


def recipients(session: Session, task: HumanTask) -> list[User]:
    restrictions = json.loads(task.restrictions or "{}")
    named = [str(u) for u in restrictions.get("users", [])]
    if task.claimed_by:
        users = session.scalars(select(User).where(User.username == task.claimed_by)).unique().all()
    elif task.candidate_role:
        users = session.scalars(select(User).join(User.roles).where(Role.name == task.candidate_role.lower())
                                ).unique().all()
    elif named:  # no role, but named users (``samflyt.userField``): they are the ones to remind
        users = session.scalars(select(User).where(User.username.in_(named))).unique().all()
    else:
        return []  # open to everyone: nobody in particular to remind
    return [u for u in users if u.email and u.active and authz.why_not(u, task, restrictions) is None]


def send_task_reminders(sessions, now: datetime | None = None) -> dict[str, int]:
    """Write due reminders and overdue notices (mail in the outbox); returns counts by kind."""
    now = now or clock.now()
    counts: dict[str, int] = {}
    with sessions() as session:
        candidates = session.scalars(select(HumanTask.id).where(
            HumanTask.status == "open", HumanTask.next_notice_at <= now).order_by(HumanTask.next_notice_at)).all()
    for task_id in candidates:
        with sessions() as session, session.begin():
            query = select(HumanTask).where(HumanTask.id == task_id, HumanTask.status == "open")
            task = session.scalar(for_update(query, session.get_bind(), skip_locked=True))
            if task is None:
                continue
            kinds = notices_due(task, now)
            sent = set(session.scalars(select(TaskNotice.kind).where(TaskNotice.human_task_id == task.id)))
            new = [k for k in kinds if k not in sent]
            task.next_notice_at = next_notice_at(task, sent | set(new))
            if not new:
                continue
            for kind in new:
                session.add(TaskNotice(human_task_id=task.id, kind=kind, sent_at=now))
            if "overdue" in new:
                task.overdue_at = now
            kind = new[-1]  # the nearest reminder (or the overdue notice) is the one worth a mail
            _notify(session, task, kind, now)
            counts[kind.split("-")[0]] = counts.get(kind.split("-")[0], 0) + 1
    return counts


def _notify(session: Session, task: HumanTask, kind: str, now: datetime) -> None:
    instance = session.get(ProcessInstance, task.instance_id)
    process = session.scalar(select(ProcessModel.name).where(ProcessModel.process_id == instance.process_id))
    people = recipients(session, task)
    due = local_date(task.due_at).strftime("%d.%m.%Y")
    template = "task_overdue" if kind == "overdue" else "task_reminder"
    for user in people:
        enqueue(session, user.email, template, {"name": user.display_name or user.username, "task": task.title,
                                                "process": instance.title or process or instance.process_id,
                                                "due": due}, instance_id=task.instance_id, task_id=task.task_id)
    session.add(AuditEvent(at=now, actor="system", action="task_overdue" if kind == "overdue" else "task_reminder",
                           instance_id=task.instance_id, task_id=task.task_id,
                           details=dumps({"kind": kind, "due_at": task.due_at.isoformat(),
                                          "to": [u.username for u in people]})))
