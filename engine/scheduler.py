"""The timer scheduler process: APScheduler polls the durable timer index and fires what is due.

APScheduler's own job stores are *not* the source of truth and are never shared: the ``timers`` table
is. Each pass calls :meth:`engine.runtime.Runtime.fire_due_timers`, which advances every instance with
a due timer in its own transaction (on PostgreSQL an instance locked by another scheduler is skipped,
so several schedulers do not fire one timer twice).

Each pass also writes due task reminders and overdue notices (:mod:`engine.reminders`) and sends the
mail outbox when SMTP is configured (``SAMFLYT_SMTP_HOST``, see :mod:`engine.mail`).
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from . import clock
from .errors import SamflytError
from .mail import SmtpSettings, dispatch_outbox
from .reminders import send_task_reminders
from .runtime import Runtime

log = logging.getLogger("samflyt.scheduler")

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1}
#: Seconds between runs of the reminder and mail job.
NOTIFY_INTERVAL = float(os.environ.get("SAMFLYT_NOTIFY_INTERVAL", "15"))
#: Shortest sleep between rounds of one poll.
MIN_SLEEP = 0.05
#: A poll ends this long before the next run would start, so that run is never skipped as overlapping.
TICK_MARGIN = timedelta(milliseconds=20)


def default_workers(runtime: Runtime) -> int:
    """Threads firing timers: several on PostgreSQL (each step waits on the database), one on SQLite."""
    return 1 if runtime.engine.dialect.name == "sqlite" else 4


def fire_timers(runtime: Runtime, workers: int = 1, seen: set[int] | None = None) -> list[int]:
    """Fire every due timer now; returns the instance ids advanced.

    With ``workers`` > 1, that many threads claim and fire batches side by side (on PostgreSQL the
    claims never overlap), since a step spends much of its time waiting for the database. ``seen`` is
    shared by the threads (and by the rounds of one poll), so an instance is advanced once per poll.
    """
    seen = set() if seen is None else seen
    if workers <= 1:
        fired = runtime.fire_due_timers(seen=seen)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="timers") as pool:
            parts = pool.map(lambda _: runtime.fire_due_timers(seen=seen), range(workers))
            fired = [i for part in parts for i in part]
    if fired:
        log.info("fired timers in %d instance(s)%s", len(fired), f": {fired}" if len(fired) <= 20 else "")
    return fired


def notify(runtime: Runtime) -> None:
    """Write due task reminders and overdue notices, then send the mail outbox (when SMTP is configured).

    A job of its own: a slow or unreachable mail server must never hold up timers.
    """
    notices = send_task_reminders(runtime.WriteSession)
    if notices:
        log.info("task notices: %s", notices)
    settings = SmtpSettings.from_env()
    if settings is not None:
        sent, failed = dispatch_outbox(runtime.WriteSession, settings)
        if sent or failed:
            log.info("mail: %d sent, %d failed for good", sent, failed)


def run_once(runtime: Runtime, workers: int = 1) -> list[int]:
    """One pass of every job (``samflyt scheduler --once``): timers, then reminders and mail."""
    fired = fire_timers(runtime, workers)
    notify(runtime)
    return fired


class SchedulerLockError(SamflytError):
    """Another scheduler already runs against this SQLite database."""


def single_scheduler_lock(runtime: Runtime):
    """On SQLite, hold an exclusive lock file beside the database while a scheduler runs.

    SQLite serialises writers, so a second scheduler would only queue behind the first; refusing it says so
    plainly. On PostgreSQL any number may run (they share due timers through ``SKIP LOCKED`` claims), and this
    returns ``None``.
    """
    url = runtime.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database).resolve().with_suffix(".scheduler.lock")
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise SchedulerLockError(f"a scheduler ({holder}) already runs against {url.database}; on SQLite only one "
                                 "may run -- use PostgreSQL to run several") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def next_tick(origin: datetime, interval: float, at: datetime | None = None) -> datetime:
    """The first run of an interval job started at ``origin`` that comes after ``at`` (default: now)."""
    at = at or datetime.now(UTC)
    elapsed = max(0.0, (at - origin).total_seconds())
    return origin + timedelta(seconds=interval * (math.floor(elapsed / interval) + 1))


def run_until_next_poll(runtime: Runtime, interval: float, workers: int = 1, origin: datetime | None = None) -> None:
    """One poll: fire what is due, and keep firing timers that fall due before the next poll.

    Waking up for the next due time instead of waiting for the next poll keeps lateness to the time a
    step takes, not the poll interval. A round that fires nothing ends the poll, so timers that cannot
    fire yet (claimed by another scheduler, a locked instance) never make it spin.

    "The next poll" is the next run APScheduler will really start. When a busy poll outlasts its interval,
    the runs it overlapped are skipped (one instance at a time), so the poll goes on serving timers until
    the first tick after now, counted from ``origin``, the job's start; ending at the nominal deadline would
    leave timers due in the skipped stretch waiting for a whole interval.
    """
    origin = origin or datetime.now(UTC)
    seen: set[int] = set()
    while True:
        if not fire_timers(runtime, workers, seen):
            return
        upcoming = runtime.next_due()
        if upcoming is None:
            return
        wait = max(MIN_SLEEP, (upcoming - clock.now()).total_seconds())
        wake = datetime.now(UTC) + timedelta(seconds=wait)
        if wake >= next_tick(origin, interval) - TICK_MARGIN:
            return
        time.sleep(wait)


def _add_jobs(scheduler, runtime: Runtime, interval: float, workers: int | None, notify_interval: float) -> None:
    origin = datetime.now(UTC)
    scheduler.add_job(run_until_next_poll, IntervalTrigger(seconds=interval, start_date=origin),
                      args=[runtime, interval, workers or default_workers(runtime), origin], id="fire_due_timers")
    scheduler.add_job(notify, "interval", seconds=notify_interval, args=[runtime], id="notify")


def start_background(runtime: Runtime, interval: float = 1.0, workers: int | None = None,
                     notify_interval: float = NOTIFY_INTERVAL) -> BackgroundScheduler:
    """The scheduler's jobs on a background thread of this process (``samflyt serve --with-scheduler``)."""
    lock = single_scheduler_lock(runtime)
    scheduler = BackgroundScheduler(job_defaults=JOB_DEFAULTS)
    _add_jobs(scheduler, runtime, interval, workers, notify_interval)
    scheduler.start()
    scheduler._samflyt_lock = lock  # held as long as the scheduler lives
    log.info("in-process scheduler started, polling every %.1f s", interval)
    return scheduler


def run_forever(runtime: Runtime, interval: float = 1.0, workers: int | None = None,
                notify_interval: float = NOTIFY_INTERVAL) -> None:
    """Run the jobs until SIGTERM or SIGINT; timers that fell due meanwhile fire at once."""
    lock = single_scheduler_lock(runtime)  # noqa: F841 - held for the life of the process
    scheduler = BlockingScheduler(job_defaults=JOB_DEFAULTS)
    _add_jobs(scheduler, runtime, interval, workers, notify_interval)
    stopping = []

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        stopping.append(signum)
        if scheduler.running:
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started, polling every %.1f s", interval)
    fire_timers(runtime, workers or default_workers(runtime))  # catch up on what fell due while none ran
    if not stopping:
        scheduler.start()
