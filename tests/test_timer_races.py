"""A boundary timer that wins the race against a user's submission is audited like any other fire
(issue "Failure paths", point 6): before, a timer fired inside a user's step left no ``timer_fired``."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta

from engine import clock
from engine.errors import SamflytError
from tests.bpmn_builder import boundary_event, chain, definitions, end, flow, process, start, timer, user_task

RACE = definitions(process(
    "race", start(), user_task("fill"), boundary_event("deadline", "fill", timer("duration", "'PT1H'")),
    user_task("late"), end(), end("late_end"),
    chain("start", "fill", "end"), flow("deadline", "late"), flow("late", "late_end")))
T0 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)


def _fires(rt, iid: int) -> list[dict]:
    return [e for e in rt.audit(iid) if e["action"] == "timer_fired"]


def test_a_timer_fired_inside_a_users_step_is_audited(rt, deploy):
    deploy({"race.bpmn": RACE})
    clock.set_now(T0)
    try:
        iid = rt.start("race")
        fill = rt.tasks(iid)[0]
        clock.set_now(T0 + timedelta(hours=1, minutes=1))  # due; no scheduler has run: the submission finds it
        with contextlib.suppress(SamflytError):  # the timer won: the task had closed
            rt.complete(fill.id, "ada", {})
        [fired] = _fires(rt, iid)
        assert fired["details"]["element"] == "deadline" and fired["actor"] == "system"
        assert [t.name for t in rt.tasks(iid)] == ["late"]
        assert rt.fire_due_timers(T0 + timedelta(hours=2)) == []  # and it never fires again
        assert len(_fires(rt, iid)) == 1
    finally:
        clock.set_now(None)


def test_every_fire_is_audited_whoever_wins_the_race(rt, deploy):
    deploy({"race.bpmn": RACE})
    clock.set_now(T0)
    try:
        instances = [rt.start("race") for _ in range(24)]
        tasks = {iid: rt.tasks(iid)[0].id for iid in instances}
        clock.set_now(T0 + timedelta(hours=1))
        for iid in instances:
            barrier = threading.Barrier(2)

            def submit(iid: int = iid, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                with contextlib.suppress(SamflytError):  # closed by the timer, or the instance was busy
                    rt.complete(tasks[iid], "ada", {})

            def tick(barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                rt.fire_due_timers(T0 + timedelta(hours=1))

            threads = [threading.Thread(target=submit), threading.Thread(target=tick)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rt.fire_due_timers(T0 + timedelta(hours=1))  # whatever a busy pass left
        timer_won = 0
        for iid in instances:
            late = "late" in [t.name for t in rt.tasks(iid)]  # the timer's path, else the submission won
            timer_won += late
            assert len(_fires(rt, iid)) == (1 if late else 0), (iid, [e["action"] for e in rt.audit(iid)])
            assert rt.instance(iid).status in ("running", "waiting", "completed")
        print(f"the timer won {timer_won} of {len(instances)} races")
    finally:
        clock.set_now(None)
