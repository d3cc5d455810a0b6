"""Errors the engine raises on purpose.

Every error a user or operator can cause is a :class:`SamflytError` with a message that says what to
do; entry points (CLI, web) show it and never a stack trace. ``str(error)`` is the English wording (what
the command line prints); ``error.text`` is the same as a :class:`engine.texts.Text` a page translates,
and ``error.code`` a stable word for what went wrong (``not_found``, ``conflict``...).
"""

from __future__ import annotations

from typing import Any

from .texts import Text, _, as_text


class SamflytError(Exception):
    """Base class: a clear, user-facing failure. ``message`` is best a :class:`Text` (``_("...")``)."""

    exit_code = 1
    code = "error"

    def __init__(self, message: Any = "") -> None:
        self.text: Text = as_text(message)
        super().__init__(self.text)

    def __str__(self) -> str:
        return str.__str__(self.text)


class NotFoundError(SamflytError):
    """A model, instance, task or user that does not exist."""

    code = "not_found"


class DeployError(SamflytError):
    """A bundle that cannot be deployed. Names the file and, where known, the element id."""

    code = "deploy"

    def __init__(self, message: Any, *, file: str | None = None, element: str | None = None,
                 line: int | None = None) -> None:
        self.file = file
        self.element = element
        self.line = line
        where = []
        if file:
            where.append(f"file {file}" + (f" line {line}" if line else ""))
        if element:
            where.append(f"element {element}")
        if where:
            message = _("%(where)s: %(message)s", where=", ".join(where), message=as_text(message))
        super().__init__(message)


class ValidationError(SamflytError):
    """Submitted data does not fit the task's form. ``messages`` maps field name to messages (each a
    :class:`Text` where the engine wrote it)."""

    code = "validation"

    def __init__(self, messages: dict[str, Any]) -> None:
        self.messages = messages
        parts = [f"{field}: {'; '.join(map(str, msgs))}" for field, msgs in _flat(messages)]
        super().__init__(_("invalid data: %(fields)s", fields=", ".join(parts)))


def _flat(messages: Any, prefix: str = "") -> list[tuple[str, list[Any]]]:
    """Nested messages (field, row index, field...) as ``(dotted.name, [messages])`` pairs, for one line."""
    if isinstance(messages, dict):
        pairs: list[tuple[str, list[Any]]] = []
        for key, inner in messages.items():
            name = prefix if key == "_schema" and prefix else f"{prefix}.{key}" if prefix else str(key)
            pairs.extend(_flat(inner, name))
        return pairs
    return [(prefix or "_schema", messages if isinstance(messages, list) else [messages])]


class ConflictError(SamflytError):
    """Someone else got there first (a claim, a completion, a concurrent update)."""

    code = "conflict"


class TaskNotOpenError(ConflictError):
    """The task was completed, cancelled or closed by a timer before this request reached it."""

    code = "task_not_open"


class ClaimedByOtherError(ConflictError):
    """The task is claimed by another user."""

    code = "claimed_by_other"

    def __init__(self, task_id: str, claimed_by: str) -> None:
        self.claimed_by = claimed_by
        super().__init__(_("task %(task)s is claimed by %(name)s", task=task_id, name=claimed_by))


class NotAuthorisedError(SamflytError):
    """The actor may not do this (role, lane, claim or narrowing rule). ``reason``: why, without who and
    what (``the task needs the role 'x'``), is :attr:`reason`, for a page that already says who and what."""

    code = "not_authorised"

    @property
    def reason(self) -> Text:
        """The ``reason`` parameter of the text when it has one (``%(user)s may not ...: %(reason)s``),
        else the whole text."""
        return as_text(self.text.params.get("reason", self.text))


class InstanceStateError(SamflytError):
    """The instance is not in a state that allows this action (e.g. retry of a running instance)."""

    code = "instance_state"


class StepFailedError(ConflictError):
    """A step failed in a way nobody foresaw (a bug, data the database refused): its writes were rolled
    back, the instance was put in ``error`` for an admin to ``retry``, and what the user submitted is in
    the audit log. A conflict, not a crash: the request was valid, the case cannot take it now."""

    code = "step_failed"

    def __init__(self, message: Any, instances: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        #: the instances put in ``error`` for it (none when the failure came before any step)
        self.instances = instances
