"""The timer scheduler process: APScheduler polls the durable timer index and fires what is due.

APScheduler's own job stores are *not* the source of truth and are never shared: the ``timers`` table
is. Each pass calls :meth:`engine.runtime.Runtime.fire_due_timers`, which advances every instance with
a due timer in its own transaction (on PostgreSQL an instance locked by another scheduler is skipped,
so several schedulers do not fire one timer twice).

This is the first version (timers only); reminders, overdue marking and the mail outbox are added by
the scheduler issue.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
from pathlib import Path
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler

from .errors import SamflytError
from .runtime import Runtime

log = logging.getLogger("samflyt.scheduler")


def run_once(runtime: Runtime) -> list[int]:
    """One pass: fire every due timer now; returns the instance ids advanced."""
    fired = runtime.fire_due_timers()
    if fired:
        log.info("fired timers in %d instance(s): %s", len(fired), fired)
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


def run_forever(runtime: Runtime, interval: float = 1.0) -> None:
    """Poll every ``interval`` seconds until SIGTERM or SIGINT."""
    lock = single_scheduler_lock(runtime)  # noqa: F841 - held for the life of the process
    scheduler = BlockingScheduler(job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(run_once, "interval", seconds=interval, args=[runtime], id="fire_due_timers")

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started, polling every %.1f s", interval)
    run_once(runtime)  # catch up on what fell due while no scheduler ran
    scheduler.start()
