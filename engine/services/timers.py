"""Timers: firing due timers exactly once across any number of schedulers, and listing them."""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import DBAPIError

from .. import clock
from ..db import for_update
from ..errors import (
    ConflictError,
    StepFailedError,
)
from ..models import (
    AuditEvent,
    ProcessInstance,
    Timer,
)
from ..serialization import dumps
from ..unit_of_work import SYSTEM, describe_error
from .core import Core

log = logging.getLogger("samflyt.timers")

#: How long a scheduler's claim on due timers holds before another scheduler may take them over
#: (``SAMFLYT_TIMER_LEASE_SECONDS``; longer than the slowest batch of steps).
TIMER_LEASE = timedelta(seconds=float(os.environ.get("SAMFLYT_TIMER_LEASE_SECONDS", "60")))


class Timers:
    """Due timers claimed in batches under a lease, each instance fired in its own transaction."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def fire_due_timers(self, now: datetime | None = None, limit: int | None = None, batch: int = 10,
                        worker: str | None = None, seen: set[int] | None = None) -> list[int]:
        """Advance every instance with a timer due at ``now``, oldest first; each in its own transaction.

        Due timers are claimed in small batches (on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so any
        number of schedulers share the work) with a short wall-clock lease; each claimed instance is then
        locked, its due timers re-read, fired and the claims released in one transaction. A timer fires
        exactly once: the re-read after the lock sees what another scheduler already fired, and a killed
        scheduler's claims expire and are taken over. SpiffWorkflow fires a timer when its due time is
        strictly in the past, so the engine clock is set a microsecond past ``now``: a timer due exactly at
        ``now`` fires. Each instance is advanced at most once per ``seen`` set (one per call unless the
        caller shares one across calls), so a late cycle timer fires once per pass, not in a burst. Only
        instances that could be claimed again stay in ``seen`` (a timer still due, or busy), since the claim
        query excludes them: under a backlog, a set of every instance fired would grow without end.
        Returns the ids of the instances advanced.
        """
        live = now is None  # the scheduler's real time: each instance runs at the moment it is advanced
        now = now or clock.now()
        worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        fired: list[int] = []
        seen = set() if seen is None else seen
        while limit is None or len(fired) < limit:
            claimed = self._claim_due_timers(now, worker, batch, seen)
            if not claimed:
                break
            seen.update(claimed)
            for instance_id in claimed:
                moment = max(now, clock.now()) if live else now
                with clock.frozen_at(moment + timedelta(microseconds=1)):
                    try:
                        advanced, again = self._fire_instance(instance_id, now, worker)
                        if advanced:
                            fired.append(instance_id)
                        if advanced and not again:  # nothing of it is due any more, so the claims of this
                            seen.discard(instance_id)  # pass need not exclude it: the exclusion stays small
                    except StepFailedError as exc:  # the safety net caught it; before any step, record it here
                        if instance_id not in exc.instances:
                            self._put_in_error(instance_id, exc)
                    except (ConflictError, DBAPIError) as exc:  # busy: its claims lapse, it is tried again
                        log.warning("timers of instance %s not fired this time: %s", instance_id, exc)
                    except Exception as exc:  # noqa: BLE001 - a broken instance must not block the others
                        log.exception("timers of instance %s failed", instance_id)
                        self._put_in_error(instance_id, exc)
        return fired

    def _put_in_error(self, instance_id: int, exc: Exception) -> None:
        """Record a failure that escaped the step's own handling (e.g. unstorable data) and free its timers."""
        with self.core.WriteSession() as s, s.begin():
            s.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id).values(
                status="error", error_message=describe_error(exc), lock_version=ProcessInstance.lock_version + 1))
            s.execute(update(Timer).where(Timer.instance_id == instance_id).values(claimed_by=None, claimed_until=None))
            s.add(AuditEvent(at=clock.now(), actor=SYSTEM, action="error", instance_id=instance_id,
                             details=dumps({"message": describe_error(exc)})))

    def next_due(self) -> datetime | None:
        """When the earliest claimable timer of a runnable instance falls due (for schedulers to wake up)."""
        with self.core.Session() as s:
            return s.scalar(select(func.min(Timer.due_at))
                            .join(ProcessInstance, ProcessInstance.id == Timer.instance_id)
                            .where(ProcessInstance.status.in_(("running", "waiting")),
                                   or_(Timer.claimed_until.is_(None), Timer.claimed_until < datetime.now(UTC))))

    def _claim_due_timers(self, now: datetime, worker: str, batch: int, seen: set[int]) -> list[int]:
        """Claim up to ``batch`` due, unclaimed timers of runnable instances; their instance ids, oldest first."""
        wall = datetime.now(UTC)
        with self.core.WriteSession() as s, s.begin():
            query = (select(Timer.id, Timer.instance_id).join(ProcessInstance, ProcessInstance.id == Timer.instance_id)
                     .where(Timer.due_at <= now, ProcessInstance.status.in_(("running", "waiting")),
                            or_(Timer.claimed_until.is_(None), Timer.claimed_until < wall))
                     .order_by(Timer.due_at, Timer.id).limit(batch))
            if seen:
                query = query.where(Timer.instance_id.not_in(seen))
            rows = s.execute(for_update(query, self.core.engine, of=Timer, skip_locked=True)).all()
            if rows:
                s.execute(update(Timer).where(Timer.id.in_([r.id for r in rows]))
                          .values(claimed_by=worker, claimed_until=wall + TIMER_LEASE))
        return list(dict.fromkeys(r.instance_id for r in rows))

    def _fire_instance(self, instance_id: int, now: datetime, worker: str) -> tuple[bool, bool]:
        """Fire the due timers of one claimed instance in one transaction.

        Returns whether it was advanced, and whether a timer of it is still due by ``now`` afterwards (a
        late cycle timer's next round), which this pass must leave for the next one.
        """
        with self.core.unit() as unit:
            release = update(Timer).where(Timer.instance_id == instance_id).values(claimed_by=None, claimed_until=None)
            row = unit.lock_row(instance_id, skip_locked=True)
            if row is None:  # someone is working on it (a user's step, another scheduler): let our claims go,
                unit.session.execute(release.where(Timer.claimed_by == worker))  # so the next poll takes them
                return False, False
            timers = unit.session.scalars(select(Timer).where(Timer.instance_id == instance_id)
                                          .order_by(Timer.due_at)).all()
            due = [t for t in timers if t.due_at <= now]
            if not due or row.status not in ("running", "waiting"):
                unit.session.execute(release)
                return False, False  # fired meanwhile by another scheduler, or not runnable
            li = unit.load_row(row)  # locked above: not read again
            li.timer_rows = {t.task_id: t for t in timers}  # the save needs not read them again
            fired = {"worker": worker, "fired_at": now.isoformat()}  # each fire audited by the unit of work
            for due_at in sorted({t.due_at for t in due}):  # in time order: an earlier timer may cancel a later
                with clock.frozen_at(due_at + timedelta(microseconds=1)):
                    if not unit.advance(li, refresh_timers=True, actor=SYSTEM, fired=fired):
                        break
            unit.advance(li, refresh_timers=True, actor=SYSTEM, fired=fired)  # and what else is due by now
        # saved: fired rows are deleted, a cycle's re-armed; li.timers are what it waits for now
        return True, any(datetime.fromisoformat(t["due_at"]) <= now for t in li.timers)

    def timers(self) -> list[dict[str, Any]]:
        with self.core.Session() as s:
            now = clock.now()
            return [{"instance_id": t.instance_id, "task": t.spec_name, "task_id": t.task_id, "kind": t.kind,
                     "due_at": t.due_at.isoformat(),
                     "late_seconds": max(0.0, (now - t.due_at).total_seconds())}
                    for t in s.scalars(select(Timer).order_by(Timer.due_at))]
