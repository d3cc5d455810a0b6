"""A committee member stands aside in one application (conflict of interest, forvaltningsloven § 6).

Declaring is two things in order: the declaration is recorded with its reason
(:func:`community.connectors.grants.declare_conflict`), then the engine keeps the member out of the
application's open review tasks and releases one they hold (:meth:`engine.runtime.Runtime.exclude_person`).
Review tasks planned later read the recorded declarations (:func:`community.connectors.grants.review_plan`).
The page and the tests go through :func:`stand_aside`, so both steps are always taken together.
"""

from __future__ import annotations

from engine.runtime import Runtime

from .connectors.grants import declare_conflict


def stand_aside(rt: Runtime, application_id: int, username: str, reason: str) -> int:
    """Record ``username``'s conflict of interest in the application and exclude them from its open
    review tasks; returns the application's case (instance) id."""
    with rt.session() as session:
        instance_id = declare_conflict(session, application_id, username, reason).instance_id
    if instance_id is not None:
        rt.exclude_person(instance_id, username, username, reason)
    return instance_id
