"""Scenarios: a list of steps (start, complete, message, connector, move the clock) run through the runtime.

A demo database should show a process in the middle of its life (a funding round half-way through the
year, with something in every worklist), reached the way real users would reach it: by completing tasks
with form data, letting timers fire and delivering messages. A scenario is that path written as data
(``demo.json`` next to a bundle), so a new process gets a demo without new code, and tests can drive the
same steps from Python with :class:`Scenario`.

Steps (JSON objects, run in order):

* ``{"at": "2025-05-02T08:00"}`` -- move the clock there (naive times are Norwegian) and run one scheduler
  pass (timers, reminders, mail);
* ``{"start": PROCESS, "as": USER, "data": {...}, "key": K, "title": T, "ref": NAME}`` -- start an instance
  and remember it as ``NAME``;
* ``{"complete": ELEMENT, "in": NAME, "as": USER, "data": {...}}`` -- complete the open task ``ELEMENT`` of
  that instance (the first one USER may work, for multi-instance tasks);
* ``{"message": NAME, "correlation": {...}, "data": {...}}`` -- deliver a message;
* ``{"connector": NAME, "params": {...}, "as": ADMIN}`` -- run a connector in its own transaction;
* ``{"cancel": NAME, "as": USER}``.

Strings of the form ``"$NAME.data.field"`` (or ``"$NAME.id"``) are replaced by the remembered instance's
current values, so a step can use what an earlier one produced (the call id a round published).

A scenario is written for one year, but is run later: :func:`years_behind` says how many whole years its last
step lies behind a day, and :func:`shift_years` moves every date and year in it by that many, so a demo run
today reads as this year's rather than showing every task a year overdue.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from . import clock
from .errors import SamflytError
from .runtime import Runtime

_REF = re.compile(r"^\$([A-Za-z_][\w-]*)((?:\.[\w-]+)*)$")


#: a year in text or an ISO date (``2025``, ``2025-05-02``), and a short Norwegian date (``12.02.26``)
_YEAR = re.compile(r"(?<![\d.])(20\d\d)(?!\d)")
_SHORT_DATE = re.compile(r"(?<![\d.])(\d\d\.\d\d\.)(\d\d)(?![\d.])")


def _at_dates(steps: list[dict[str, Any]]) -> list[date]:
    return [datetime.fromisoformat(step["at"]).date() for step in steps if isinstance(step.get("at"), str)]


def years_behind(steps: list[dict[str, Any]], today: date) -> int:
    """How many whole years the scenario's last clock step lies behind ``today`` (0 for one not behind)."""
    dates = _at_dates(steps)
    if not dates:
        return 0
    last = max(dates)
    years = today.year - last.year - (1 if (last.month, last.day) > (today.month, today.day) else 0)
    return max(0, years)


def shift_years(steps: list[dict[str, Any]], years: int) -> list[dict[str, Any]]:
    """The steps with every date and year around the scenario's own moved ``years`` later: ISO dates and
    times, years in text (a call's title, a case number ``2025.30``), short dates (``12.02.26``) and whole
    numbers under a key naming a year. What lies outside the scenario's span (an agreement first made in
    2014) is history and stays as it is; so do 29 February's (there are none in a demo worth the trouble)."""
    dates = _at_dates(steps)
    if not years or not dates:
        return steps
    low, high = min(dates).year - 1, max(dates).year + 2

    def year(value: int) -> int:
        return value + years if low <= value <= high else value

    def text(value: str) -> str:
        value = _YEAR.sub(lambda m: str(year(int(m.group(1)))), value)
        return _SHORT_DATE.sub(lambda m: m.group(1) + f"{year(2000 + int(m.group(2))) % 100:02d}", value)

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str):
            return text(value)
        if isinstance(value, int) and not isinstance(value, bool) and "year" in key.lower():
            return year(value)
        return value

    return walk(steps)


class ScenarioError(SamflytError):
    """A step that cannot run: an unknown reference, no such open task, an unknown step kind."""


class Scenario:
    """Runs steps against a runtime, remembering instances by name."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.refs: dict[str, int] = {}

    # -- references
    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            match = _REF.match(value)
            if match:
                return self._lookup(match.group(1), [p for p in match.group(2).split(".") if p])
            return value
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def _lookup(self, name: str, path: list[str]) -> Any:
        if name not in self.refs:
            raise ScenarioError(f"no instance remembered as '{name}'")
        value: Any = {"id": self.refs[name], "data": self.rt.instance(self.refs[name]).data}
        for part in path:
            try:
                value = value[int(part)] if isinstance(value, list) else value[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise ScenarioError(f"${name}.{'.'.join(path)} does not exist") from None
        return value

    def instance_id(self, ref: str | int) -> int:
        if isinstance(ref, int):
            return ref
        if ref not in self.refs:
            raise ScenarioError(f"no instance remembered as '{ref}'")
        return self.refs[ref]

    # -- steps
    def at(self, moment: str | datetime) -> list[int]:
        """Move the clock to ``moment`` and run one scheduler pass: due timers fire (oldest first), task
        reminders and overdue notices are written (and mailed when SMTP is configured)."""
        from .scheduler import run_once

        when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        if when.tzinfo is None:
            when = when.replace(tzinfo=clock.LOCAL_TZ)
        clock.set_now(when)
        return run_once(self.rt)

    def start(self, process_id: str, user: str | None = None, data: dict | None = None, key: str | None = None,
              title: str | None = None, ref: str | None = None) -> int:
        instance_id = self.rt.start(process_id, self.resolve(data or {}), key, user, title)
        if ref:
            self.refs[ref] = instance_id
        return instance_id

    def task(self, ref: str | int, element: str, user: str | None = None) -> str:
        """The id of an open task ``element`` of the instance, one ``user`` may work if given."""
        instance_id = self.instance_id(ref)
        candidates = [t for t in self.rt.tasks(instance_id) if t.name == element]
        if user is not None:
            candidates = [t for t in candidates if self.rt.why_not(t.id, user) is None]
        if not candidates:
            names = sorted(t.name for t in self.rt.tasks(instance_id))
            raise ScenarioError(f"instance {instance_id} has no open '{element}' task"
                                + (f" for {user}" if user else "") + f" (open: {', '.join(names) or 'none'})")
        return candidates[0].id

    def complete(self, element: str, ref: str | int, user: str, data: dict | None = None):
        view = self.rt.complete(self.task(ref, element, user), user, self.resolve(data or {}))
        if view.status == "error":
            raise ScenarioError(f"instance {view.id} failed at {view.error['element']}: {view.error['message']}")
        return view

    def message(self, name: str, correlation: dict | None = None, data: dict | None = None):
        return self.rt.send_message(name, self.resolve(data or {}), self.resolve(correlation or {}) or None)

    def connector(self, name: str, params: dict | None = None, user: str | None = None) -> Any:
        return self.rt.call_connector(name, self.resolve(params or {}), user)

    def run(self, steps: list[dict[str, Any]]) -> None:
        for number, step in enumerate(steps, 1):
            try:
                self.run_step(step)
            except SamflytError as exc:
                raise ScenarioError(f"step {number} ({_describe(step)}): {exc}") from exc

    def run_step(self, step: dict[str, Any]) -> Any:
        if "at" in step:
            return self.at(step["at"])
        if "start" in step:
            return self.start(step["start"], step.get("as"), step.get("data"), step.get("key"), step.get("title"),
                              step.get("ref"))
        if "complete" in step:
            return self.complete(step["complete"], step["in"], step["as"], step.get("data"))
        if "message" in step:
            return self.message(step["message"], step.get("correlation"), step.get("data"))
        if "connector" in step:
            return self.connector(step["connector"], step.get("params"), step.get("as"))
        if "cancel" in step:
            return self.rt.cancel(self.instance_id(step["cancel"]), step.get("as"))
        raise ScenarioError(f"unknown step {_describe(step)}")


def _describe(step: dict[str, Any]) -> str:
    kind = next(iter(step), "?")
    return f"{kind} {step.get(kind)!r}"
