"""The step a connector runs in: its transaction and its instance.

Connectors write in the transaction of the engine step that calls them, so what they write commits or
rolls back with the step.
"""

from __future__ import annotations

from sqlalchemy.orm import Session


def session() -> Session:
    from engine.unit_of_work import current_unit

    return current_unit().session


def instance_id() -> int | None:
    from engine.unit_of_work import current_instance_id

    return current_instance_id()
