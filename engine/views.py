"""What the runtime hands back to callers: plain dataclasses with a stable ``as_json`` form.

The CLI's ``--json`` output and the web layer are built from these; fields are added, never renamed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class TaskView:
    id: str
    name: str
    title: str
    lane: str | None
    instance_id: int
    claimed_by: str | None
    due_at: datetime | None
    status: str
    form_key: str | None = None
    process_id: str | None = None

    @classmethod
    def from_row(cls, row: Any, process_id: str | None = None) -> TaskView:
        """From a :class:`~engine.models.HumanTask` row."""
        return cls(row.task_id, row.spec_name, row.title, row.lane, row.instance_id, row.claimed_by,
                   row.due_at, row.status, row.form_key, process_id)

    @classmethod
    def from_item(cls, item: Any) -> TaskView:
        """From a worklist's :class:`~engine.worklist.WorkItem` (an open task)."""
        return cls(item.task_id, item.name, item.title, item.lane, item.instance_id, item.claimed_by,
                   item.due_at, "open", item.form_key, item.process_id)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "title": self.title, "lane": self.lane,
                "instance_id": self.instance_id, "claimed_by": self.claimed_by,
                "due_at": self.due_at.isoformat() if self.due_at else None}


@dataclass
class InstanceView:
    id: int
    process_id: str
    version: int
    status: str
    business_key: str | None
    title: str | None
    data: dict[str, Any]
    tasks: list[TaskView]
    timers: list[dict[str, Any]]
    error: dict[str, Any] | None
    started_by: str | None
    started_at: datetime
    ended_at: datetime | None

    @classmethod
    def from_row(cls, row: Any, version: int, tasks: list[TaskView], timers: list[dict[str, Any]]) -> InstanceView:
        """From a :class:`~engine.models.ProcessInstance` row and its open tasks and timers."""
        error = {"message": row.error_message, "element": row.error_task} if row.status == "error" else None
        return cls(row.id, row.process_id, version, row.status, row.business_key, row.title, json.loads(row.data),
                   tasks, timers, error, row.started_by, row.started_at, row.ended_at)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "process_id": self.process_id, "version": self.version,
                "status": self.status, "business_key": self.business_key, "title": self.title,
                "data": self.data, "tasks": [t.as_json() for t in self.tasks], "timers": self.timers,
                "error": self.error, "started_by": self.started_by,
                "started_at": self.started_at.isoformat(),
                "ended_at": self.ended_at.isoformat() if self.ended_at else None}


@dataclass
class MessageResult:
    id: int
    status: str  # delivered | undeliverable | held (kept for instance_id, which is in error)
    instance_id: int | None
    started: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "instance_id": self.instance_id,
                "started": self.started}


def timer_view(element: str, task_id: str, kind: str, due_at: datetime) -> dict[str, Any]:
    """A waiting timer as shown in an instance: ``{"task", "task_id", "kind", "due_at"}``."""
    return {"task": element, "task_id": task_id, "kind": kind, "due_at": due_at.isoformat()}
