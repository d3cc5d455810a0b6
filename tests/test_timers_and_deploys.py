"""Timers around deployments and due dates: a timer that fires during a deploy, due dates on tasks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine import clock
from tests.bpmn_builder import chain, definitions, end, process, script_task, start, timer, user_task


def _timed(label: str) -> str:
    wait = f'<bpmn:intermediateCatchEvent id="wait">{timer("duration", chr(39) + "PT1H" + chr(39))}' \
           "</bpmn:intermediateCatchEvent>"
    return definitions(process("timed", start(), wait, script_task("mark", f"path = '{label}'"), user_task("after"),
                               end(), chain("start", "wait", "mark", "after", "end")))


def test_a_timer_firing_during_a_deploy_runs_on_the_instances_own_version(rt, tmp_path: Path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "timed.bpmn").write_text(_timed("v1"))
    rt.deploy([str(folder)], actor="admin")
    t0 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
    with clock.frozen_at(t0):
        old = [rt.start("timed") for _ in range(5)]
    (folder / "timed.bpmn").write_text(_timed("v2"))
    errors: list[BaseException] = []
    fired: list[int] = []

    def deploy() -> None:
        try:
            rt.deploy([str(folder)], actor="admin")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def fire() -> None:
        try:
            fired.extend(rt.fire_due_timers(t0 + timedelta(hours=2)))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=deploy), threading.Thread(target=fire)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(fired) == old
    for iid in old:
        view = rt.instance(iid)
        assert (view.version, view.data["path"], [t.name for t in view.tasks]) == (1, "v1", ["after"])
    new = rt.start("timed")
    assert rt.instance(new).version == 2
    with clock.frozen_at(datetime.now(UTC) + timedelta(hours=2)):
        rt.fire_due_timers()
    assert rt.instance(new).data["path"] == "v2"


def test_timers_fire_only_when_due_and_once(rt, deploy):
    deploy({"timed.bpmn": _timed("once")})
    t0 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
    with clock.frozen_at(t0):
        iid = rt.start("timed")
    due = datetime.fromisoformat(rt.instance(iid).timers[0]["due_at"])
    assert due == t0 + timedelta(hours=1)
    assert rt.fire_due_timers(due - timedelta(seconds=1)) == []
    assert rt.fire_due_timers(due) == [iid]  # due exactly now fires
    assert rt.fire_due_timers(due + timedelta(days=1)) == []  # and never again
    assert len([e for e in rt.audit(iid) if e["action"] == "timer_fired"]) == 1
    assert rt.timers() == []


def test_user_task_due_date_from_an_expression(rt, deploy):
    task = user_task("report", "Statusrapport", properties={"samflyt.dueDate": "f'{today().year}-12-01'"})
    bad = user_task("broken", properties={"samflyt.dueDate": "no_such_field"})
    body = [start(), task, bad, end(), chain("start", "report", "broken", "end")]
    deploy({"due.bpmn": definitions(process("due", *body))})
    with clock.frozen_at(datetime(2025, 6, 2, 10, 0, tzinfo=UTC)):
        iid = rt.start("due")
    report = rt.tasks(iid)[0]
    assert report.due_at == datetime(2025, 12, 1, 23, 59, 59, tzinfo=clock.LOCAL_TZ)  # the end of that day
    rt.complete(report.id, "ada", {})
    broken = rt.tasks(iid)[0]
    assert broken.due_at is None  # a bad expression does not stop the process ...
    assert [e["details"]["expression"] for e in rt.audit(iid) if e["action"] == "due_date_invalid"] == \
        ["no_such_field"]  # ... and is reported


def test_of_two_interrupting_timers_due_in_one_pass_only_the_earlier_fires(rt, deploy):
    from tests.bpmn_builder import boundary_event

    deploy({"two.bpmn": definitions(process(
        "two", start(), user_task("work"),
        boundary_event("first", "work", timer("duration", "'PT1H'")),
        boundary_event("second", "work", timer("duration", "'PT2H'")),
        user_task("after_first"), user_task("after_second"), end(), end("e1"), end("e2"),
        chain("start", "work", "end"), chain("first", "after_first", "e1"), chain("second", "after_second", "e2")))})
    t0 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
    with clock.frozen_at(t0):
        iid = rt.start("two")
    assert rt.fire_due_timers(t0 + timedelta(hours=3)) == [iid]  # both are due by now; the first wins
    assert [t.name for t in rt.tasks(iid)] == ["after_first"]
    assert [e["details"]["element"] for e in rt.audit(iid) if e["action"] == "timer_fired"] == ["first"]
