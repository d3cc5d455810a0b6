"""When a human task's notices fall due: reminders on working days before its due date, and the overdue
notice just after it.

Kept apart from :mod:`engine.reminders`, which sends them, because the unit of work computes the next
moment whenever it writes a task row, and must not depend on the mail that the scheduler sends later.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from . import clock
from .calendar import local_date, working_days_before
from .models import HumanTask


def notices_due(task: HumanTask, now: datetime) -> list[str]:
    """The kinds of notice due for ``task`` at ``now``: ``reminder-N`` (oldest first) and ``overdue``."""
    if task.due_at is None:
        return []
    if now > task.due_at:
        return ["overdue"]
    today, due_day = local_date(now), local_date(task.due_at)
    return [f"reminder-{n}" for n in json.loads(task.reminders or "[]") if today >= working_days_before(due_day, n)]


def next_notice_at(task: HumanTask, sent: set[str]) -> datetime | None:
    """The first moment a notice not yet sent falls due: a reminder day's start, or just after the due time."""
    if task.due_at is None or "overdue" in sent:
        return None
    due_day = local_date(task.due_at)
    moments = [clock.to_utc(working_days_before(due_day, n)) for n in json.loads(task.reminders or "[]")
               if f"reminder-{n}" not in sent]
    moments.append(task.due_at + timedelta(seconds=1))
    return min(moments)
