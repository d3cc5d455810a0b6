"""The step context a connector is given: where it runs and the session to write in.

A connector that declares a keyword parameter named ``ctx`` receives a :class:`StepContext` from the
registry. ``ctx`` is not a BPMN parameter: it is not listed in the connector's ``params`` and a diagram
cannot set it. Inside a workflow step the context is the step's (its unit's session, inside the step's
savepoint, so what the connector writes is rolled back with the step if the step fails); outside any
step (``Runtime.call_connector``, ``samflyt connector``) it carries that call's own session and no
instance or task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import clock

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: The name of the parameter through which a connector asks for its :class:`StepContext`.
CONTEXT_PARAMETER = "ctx"


@dataclass(frozen=True)
class StepContext:
    """What a connector may know of the step that calls it.

    ``session``: the transaction to read and write in (never commit or roll it back);
    ``instance_id``: the process instance whose step runs, ``None`` outside a step;
    ``task_id``: the id of the running task (the service task, or the task whose script calls
    ``connector(...)``), ``None`` outside a task; ``actor``: the user the step runs for (``"system"``
    for timers and messages the engine delivers), ``None`` when not known; ``now``: the engine clock
    (call it: ``ctx.now()``), frozen at a timer's due time while the timer fires; ``send``: how
    :meth:`send_message` hands a message to the transaction (``None``: this context cannot send).
    """

    session: Session
    instance_id: int | None = None
    task_id: str | None = None
    actor: str | None = None
    now: Callable[[], datetime] = clock.now
    send: Callable[[str, dict[str, Any], dict[str, Any] | None, int | None], None] | None = None

    def send_message(self, name: str, payload: dict[str, Any] | None = None, *,
                     correlations: dict[str, Any] | None = None, to: int | None = None) -> None:
        """Send the message ``name`` as a throw event would: delivered in this transaction, after the step
        (and dropped with the step if it fails). ``correlations`` (property -> value) as ``samflyt message``
        takes them; ``to``: only that instance's waits may catch it (no other instance, no start event)."""
        if self.send is None:
            raise RuntimeError("this step context cannot send messages")
        self.send(name, dict(payload or {}), dict(correlations) if correlations else None, to)
