"""Errors the engine raises on purpose.

Every error a user or operator can cause is a :class:`SamflytError` with a message that says what to
do; entry points (CLI, web) show ``str(error)`` and never a stack trace.
"""

from __future__ import annotations

from typing import Any


class SamflytError(Exception):
    """Base class: a clear, user-facing failure."""

    exit_code = 1


class NotFoundError(SamflytError):
    """A model, instance, task or user that does not exist."""


class DeployError(SamflytError):
    """A bundle that cannot be deployed. Names the file and, where known, the element id."""

    def __init__(self, message: str, *, file: str | None = None, element: str | None = None,
                 line: int | None = None) -> None:
        self.file = file
        self.element = element
        self.line = line
        where = []
        if file:
            where.append(f"file {file}" + (f" line {line}" if line else ""))
        if element:
            where.append(f"element {element}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(f"{prefix}{message}")


class ValidationError(SamflytError):
    """Submitted data does not fit the task's form. ``messages`` maps field name to messages."""

    def __init__(self, messages: dict[str, Any]) -> None:
        self.messages = messages
        parts = [f"{field}: {'; '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                 for field, msgs in messages.items()]
        super().__init__("invalid data: " + ", ".join(parts))


class ConflictError(SamflytError):
    """Someone else got there first (a claim, a completion, a concurrent update)."""


class TaskNotOpenError(ConflictError):
    """The task was completed, cancelled or closed by a timer before this request reached it."""


class ClaimedByOtherError(ConflictError):
    """The task is claimed by another user."""

    def __init__(self, task_id: str, claimed_by: str) -> None:
        self.claimed_by = claimed_by
        super().__init__(f"task {task_id} is claimed by {claimed_by}")


class NotAuthorisedError(SamflytError):
    """The actor may not do this (role, lane, claim or narrowing rule)."""


class InstanceStateError(SamflytError):
    """The instance is not in a state that allows this action (e.g. retry of a running instance)."""
