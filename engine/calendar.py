"""Norwegian business days: working-day arithmetic and the deadline rule of the Public Administration Act.

A working day is a weekday that is not a Norwegian public holiday (the ``holidays`` package) and not one
of the extra closed days an organisation configures (``SAMFLYT_CLOSED_DAYS``: comma-separated ISO dates
``2025-12-24`` or yearly ``12-24``). Forvaltningsloven § 30: a deadline that falls on a Saturday, Sunday
or public holiday moves to the next day that is none of these (:func:`deadline`; closed days do not move it).

These functions are available to BPMN scripts and expressions (timer expressions included), so a diagram
can say ``working_days_before(due, 10)``.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays

from . import clock

_extra_dates: set[date] = set()
_extra_yearly: set[tuple[int, int]] = set()


def configure(closed_days: str | None = None) -> None:
    """Set the extra closed days (default: from ``SAMFLYT_CLOSED_DAYS``)."""
    text = os.environ.get("SAMFLYT_CLOSED_DAYS", "") if closed_days is None else closed_days
    _extra_dates.clear()
    _extra_yearly.clear()
    for item in filter(None, (part.strip() for part in text.split(","))):
        if len(item) == 5:  # MM-DD, every year
            month, day = item.split("-")
            _extra_yearly.add((int(month), int(day)))
        else:
            _extra_dates.add(date.fromisoformat(item))


@lru_cache(maxsize=64)
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.Norway(years=year).keys())


def _as_date(value: date | datetime | str) -> date:
    """The Norwegian calendar day of a date, a datetime (aware ones converted to Norwegian time) or ISO text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return (value.astimezone(clock.LOCAL_TZ) if value.tzinfo else value).date()
    return value


def local_date(value: date | datetime | str) -> date:
    """The calendar day in Norway of ``value`` (``now()`` is UTC; 00:30 in Oslo is the day before in UTC)."""
    return _as_date(value)


def is_public_holiday(day: date | datetime | str) -> bool:
    day = _as_date(day)
    return day in _public_holidays(day.year)


def is_working_day(day: date | datetime | str) -> bool:
    day = _as_date(day)
    return (day.weekday() < 5 and not is_public_holiday(day) and day not in _extra_dates
            and (day.month, day.day) not in _extra_yearly)


def next_working_day(day: date | datetime | str) -> date:
    """``day`` itself if it is a working day, else the first working day after it."""
    day = _as_date(day)
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def deadline(day: date | datetime | str) -> date:
    """A deadline on a Saturday, Sunday or public holiday moves to the next day that is none of these.

    Forvaltningsloven § 30 names only "lørdag, helgedag eller høgtidsdag", so an organisation's own closed
    days (``SAMFLYT_CLOSED_DAYS``, e.g. Christmas Eve) do not move a legal deadline; they only count as
    non-working days for reminders and other working-day arithmetic.
    """
    day = _as_date(day)
    while day.weekday() >= 5 or is_public_holiday(day):
        day += timedelta(days=1)
    return day


def add_working_days(day: date | datetime | str, n: int) -> date:
    """The date ``n`` working days after ``day`` (before it for negative ``n``); ``day`` itself not counted."""
    day = _as_date(day)
    step = 1 if n >= 0 else -1
    remaining = abs(n)
    while remaining:
        day += timedelta(days=step)
        if is_working_day(day):
            remaining -= 1
    return day


def working_days_before(day: date | datetime | str, n: int) -> date:
    """The date ``n`` working days before ``day`` (e.g. a reminder 10 working days before a due date)."""
    return add_working_days(day, -n)


#: What BPMN scripts and expressions see.
SCRIPT_HELPERS = {"add_working_days": add_working_days, "working_days_before": working_days_before,
                  "next_working_day": next_working_day, "deadline": deadline, "is_working_day": is_working_day}

configure()
