"""The scheduler process: fires due timers, runs once or until SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine import db
from engine.runtime import Runtime
from tests.bpmn_builder import chain, definitions, end, process, start, timer, user_task

SHORT = definitions(process(
    "short", start(),
    f'<bpmn:intermediateCatchEvent id="pause">{timer("duration", chr(39) + "PT1S" + chr(39))}'
    "</bpmn:intermediateCatchEvent>",
    user_task("after"), end(), chain("start", "pause", "after", "end")))
# Not due for an hour: a scheduler started on a slow machine must still find nothing to fire.
LONG = SHORT.replace('"short"', '"long"').replace("PT1S", "PT1H")
DATED = definitions(process(
    "dated", start(), f'<bpmn:intermediateCatchEvent id="pause">{timer("date", "due")}</bpmn:intermediateCatchEvent>',
    user_task("after"), end(), chain("start", "pause", "after", "end")))


def _deployed(url: str, tmp_path: Path) -> Runtime:
    """A migrated SQLite file with SHORT deployed, as a scheduler process will find it."""
    engine = db.make_engine(url)
    db.migrate(engine)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "short.bpmn").write_text(SHORT)
    (tmp_path / "b" / "long.bpmn").write_text(LONG)
    rt = Runtime(engine)
    rt.deploy([str(tmp_path / "b")])
    return rt


def test_scheduler_process_fires_due_timers_and_stops_on_sigterm(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'sched.db'}"
    rt = _deployed(url, tmp_path)
    later = rt.start("long")
    assert rt.instance(later).status == "waiting"
    once = subprocess.run([sys.executable, "-m", "engine.cli", "--db", url, "--json", "scheduler", "--once"],
                          capture_output=True, text=True, timeout=60)
    assert once.returncode == 0 and '"instances": []' in once.stdout  # not due yet
    iid = rt.start("short")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "--db", url, "scheduler", "--interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and rt.instance(iid).status != "running":
            time.sleep(0.1)
        assert [t.name for t in rt.instance(iid).tasks] == ["after"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "fired timers in 1 instance" in err
    assert len([e for e in rt.audit(iid) if e["action"] == "timer_fired"]) == 1
    assert rt.instance(later).status == "waiting"


def _wait_for_log(proc: subprocess.Popen, text: str, timeout: float = 60) -> None:
    """Block until the process logs ``text`` on stderr: a slow machine may take seconds to import.

    Reads the raw descriptor, not the text wrapper, so no line sits unseen in a Python buffer.
    """
    import os
    import selectors

    fd = proc.stderr.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            chunk = os.read(fd, 65536)
            assert chunk, f"the process ended before logging {text!r}: {seen.decode()[-2000:]}"
            seen += chunk
            if text.encode() in seen:
                return
    raise AssertionError(f"no {text!r} within {timeout} s: {seen.decode()[-2000:]}")


def test_a_second_scheduler_on_the_same_sqlite_file_refuses_to_start(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    db.migrate(db.make_engine(url))
    first = subprocess.Popen([sys.executable, "-m", "engine.cli", "--db", url, "scheduler", "--interval", "0.5"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_log(first, "scheduler started")  # it holds the lock from here on
        assert first.poll() is None
        second = subprocess.run([sys.executable, "-m", "engine.cli", "--db", url, "scheduler"], capture_output=True,
                                text=True, timeout=60)
        assert second.returncode != 0
        assert "already runs against" in second.stderr and "PostgreSQL" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=20)


def test_timers_that_fell_due_while_no_scheduler_ran_fire_on_start_oldest_first(tmp_path: Path):
    from datetime import UTC, datetime, timedelta

    from engine import clock

    url = f"sqlite:///{tmp_path / 'late.db'}"
    rt = _deployed(url, tmp_path)
    started = []
    for minutes in (30, 10, 20):  # created out of due order, all due long ago
        with clock.frozen_at(datetime.now(UTC) - timedelta(minutes=minutes)):
            started.append(rt.start("short"))
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "--db", url, "scheduler", "--once"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    fired = [e["instance_id"] for e in rt.audit() if e["action"] == "timer_fired"]
    assert fired == [started[0], started[2], started[1]]


def test_serve_with_scheduler_fires_timers_in_process(tmp_path: Path):
    import urllib.request

    url = f"sqlite:///{tmp_path / 'serve.db'}"
    rt = _deployed(url, tmp_path)
    iid = rt.start("short")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "--db", url, "serve", "--port", str(port),
                             "--with-scheduler"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and rt.instance(iid).status != "running":
            time.sleep(0.2)
        assert [t.name for t in rt.instance(iid).tasks] == ["after"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_next_tick_counts_intervals_from_the_jobs_start():
    from datetime import UTC, datetime, timedelta

    from engine.scheduler import next_tick

    origin = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert next_tick(origin, 1.0, origin) == origin + timedelta(seconds=1)
    assert next_tick(origin, 1.0, origin + timedelta(seconds=0.4)) == origin + timedelta(seconds=1)
    assert next_tick(origin, 1.0, origin + timedelta(seconds=2.3)) == origin + timedelta(seconds=3)
    assert next_tick(origin, 0.5, origin + timedelta(seconds=1.0)) == origin + timedelta(seconds=1.5)


def test_a_poll_that_outlasted_its_interval_serves_timers_until_the_next_run_that_starts(tmp_path: Path):
    """APScheduler skips the runs an overlong poll overlapped; timers due meanwhile must not wait for the one after."""
    from datetime import UTC, datetime, timedelta

    from engine.scheduler import run_until_next_poll

    url = f"sqlite:///{tmp_path / 'overrun.db'}"
    rt = _deployed(url, tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "dated.bpmn").write_text(DATED)
    rt.deploy([str(tmp_path / "d")])
    due = datetime.now(UTC) + timedelta(seconds=0.5)
    first = rt.start("dated", {"due": due.isoformat()})
    second = rt.start("dated", {"due": (due + timedelta(seconds=0.3)).isoformat()})
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.05)
    assert rt.instance(first).status == rt.instance(second).status == "waiting"
    # The job started 1.2 intervals ago: its nominal deadline has passed, its next run is 0.8 s away.
    run_until_next_poll(rt, 1.0, 1, origin=datetime.now(UTC) - timedelta(seconds=1.2))
    assert rt.instance(first).status == rt.instance(second).status == "running"
