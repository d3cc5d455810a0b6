"""The engine's only source of "now".

SpiffWorkflow's timer code calls ``datetime.now(timezone.utc)`` directly. We route that call through
this module (see :func:`install`) so tests, demos and ``samflyt tick --now`` can move time without
monkeypatching the standard library. Naive timer expressions in BPMN are read as Norwegian local time,
not as the server's time zone.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Europe/Oslo")

_state = threading.local()
_global_override: datetime | None = None


def now() -> datetime:
    """Return the current time (UTC, aware), honouring a frozen or moved clock."""
    override = getattr(_state, "override", None) or _global_override
    if override is not None:
        return override
    return datetime.now(UTC)


def to_utc(value: datetime | date | str, end_of_day: bool = False) -> datetime:
    """An aware UTC datetime from a datetime, a date or ISO text; naive means Norwegian time.

    A bare date means its first moment, or with ``end_of_day`` its last second (a due date "1 December"
    is met by work done on 1 December).
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(23, 59, 59) if end_of_day else time.min)
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(UTC)


@contextlib.contextmanager
def frozen_at(moment: datetime) -> Iterator[datetime]:
    """Make :func:`now` return ``moment`` in this thread for the duration of the block."""
    previous = getattr(_state, "override", None)
    _state.override = to_utc(moment)
    try:
        yield _state.override
    finally:
        _state.override = previous


def set_now(moment: datetime | None) -> None:
    """Move the clock for the whole process (``None`` returns to real time). For demos and tests."""
    global _global_override
    _global_override = to_utc(moment) if moment is not None else None


class _ClockDatetime(datetime):
    """A ``datetime`` whose ``now`` asks the engine clock; swapped into SpiffWorkflow's timer module."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        current = now()
        return current.astimezone(tz) if tz is not None else current.astimezone(LOCAL_TZ).replace(tzinfo=None)


_installed = False


def install() -> None:
    """Point SpiffWorkflow's timer module at this clock and at Norwegian local time. Idempotent."""
    global _installed
    if _installed:
        return
    from SpiffWorkflow.bpmn.specs.event_definitions import timer

    timer.datetime = _ClockDatetime
    timer.LOCALTZ = LOCAL_TZ
    _installed = True
