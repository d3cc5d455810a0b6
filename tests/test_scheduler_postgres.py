"""Schedulers as real processes against PostgreSQL: exactly once across processes, and after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.models import AuditEvent, HumanTask, ProcessInstance, Timer
from engine.runtime import Runtime
from tests.bpmn_builder import chain, definitions, end, process, start, timer, user_task

from .conftest import PG_URL

pytestmark = pytest.mark.postgres

N = 2000
WAIT = definitions(process(
    "wait_then_work", start(),
    f'<bpmn:intermediateCatchEvent id="pause">{timer("duration", chr(39) + "PT3S" + chr(39))}'
    "</bpmn:intermediateCatchEvent>",
    user_task("work"), end(), chain("start", "pause", "work", "end")))


def _instances(pg_engine, tmp_path: Path, n: int) -> Runtime:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "wait.bpmn").write_text(WAIT)
    rt = Runtime(pg_engine)
    rt.deploy([str(tmp_path / "b")])
    for _ in range(n):
        rt.start("wait_then_work")
    return rt


def _scheduler(*args: str, lease: str = "60") -> subprocess.Popen:
    env = {**os.environ, "SAMFLYT_TIMER_LEASE_SECONDS": lease}
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "--db", PG_URL, "scheduler", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_until_due(pg_engine) -> None:
    with pg_engine.connect() as conn:
        latest = conn.scalar(select(func.max(Timer.due_at)))
    remaining = (latest - datetime.now(UTC)).total_seconds()
    if remaining > 0:
        time.sleep(remaining + 0.2)


def _assert_each_fired_once(pg_engine, n: int) -> None:
    with pg_engine.connect() as conn:
        fired = Counter(conn.scalars(select(AuditEvent.instance_id).where(AuditEvent.action == "timer_fired")))
        statuses = Counter(conn.scalars(select(ProcessInstance.status)))
        assert conn.scalar(select(func.count()).select_from(Timer)) == 0
        open_work = Counter(conn.scalars(select(HumanTask.instance_id).where(HumanTask.status == "open")))
    assert len(fired) == n and set(fired.values()) == {1}, Counter(fired.values())
    assert statuses == {"running": n}  # each advanced exactly one step: none half-advanced, none twice
    assert len(open_work) == n and set(open_work.values()) == {1}


def test_four_schedulers_fire_two_thousand_timers_exactly_once(pg_engine, tmp_path):
    rt = _instances(pg_engine, tmp_path, N)
    _wait_until_due(pg_engine)
    procs = [_scheduler("--once") for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    _assert_each_fired_once(pg_engine, N)
    work = {t.instance_id for t in rt.tasks()}
    assert len(work) == N


def test_a_scheduler_killed_mid_batch_leaves_nothing_half_done(pg_engine, tmp_path):
    n = 600
    _instances(pg_engine, tmp_path, n)
    _wait_until_due(pg_engine)
    proc = _scheduler("--interval", "0.2", lease="3")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with pg_engine.connect() as conn:
            done = conn.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "timer_fired"))
        if done >= 50:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert 0 < done < n, "the scheduler must be killed in the middle of its work"
    time.sleep(3.5)  # its claims expire
    again = _scheduler("--once", lease="3")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    _assert_each_fired_once(pg_engine, n)
