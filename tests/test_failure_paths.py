"""Failure paths that keep the case alive (issue 15, points 1, 3 and 4).

Scripts run in a sandbox (no ``os``, no ``open``, no dunders, an allow-list of imports) with a time limit;
``print`` goes to the log. Data a step cannot store is refused naming the element and field. Whatever
else goes wrong inside a step -- a bug, a value the database refuses -- rolls the step back, puts the
instance in ``error`` with its audit kept, and ``retry`` runs it again once fixed.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import sandbox
from engine.errors import StepFailedError, ValidationError
from engine.models import HumanTask
from engine.scripting import SandboxEnvironment
from engine.serialization import UnstorableDataError, check_storable
from engine.unit_of_work import Unit
from tests.bpmn_builder import chain, definitions, end, process, script_task, start, user_task


def _bundle(script: str, pid: str = "p") -> dict[str, str]:
    """start -> user task ``a`` -> script task ``s`` -> user task ``b`` -> end."""
    return {f"{pid}.bpmn": definitions(process(
        pid, start(), user_task("a"), script_task("s", script), user_task("b"), end(),
        chain("start", "a", "s", "b", "end")), id=f"defs_{pid}")}


def _task(rt, iid: int, element: str):
    return next(t for t in rt.tasks(iid) if t.name == element)


def _open_tasks(rt, iid: int) -> list[str]:
    with rt.Session() as s:
        return sorted(s.scalars(select(HumanTask.spec_name).where(HumanTask.instance_id == iid,
                                                                  HumanTask.status == "open")))


# -- the sandbox itself (no database)

@pytest.mark.parametrize(("script", "refusal"), [
    ("import os", "not allowed"),
    ("import subprocess", "not allowed"),
    ("from os import path", "not allowed"),
    ("__import__('os')", "starts with \"_\""),
    ("x = open('/etc/passwd').read()", "'open' is not defined"),
    ("x = eval('1')", "Eval calls are not allowed"),
    ("x = exec", "'exec' is not defined"),
    ("x = type(1)", "'type' is not defined"),
    ("x = (1).__class__", "starts with \"_\""),
    ("x = getattr(1, '__class__')", "starts with \"_\""),
    ("g = (i for i in [1])\nf = g.gi_frame", "restricted name"),
    ("import statistics\nx = statistics.sys", "has no attribute 'sys'"),
    ("import json\nx = json.codecs", "has no attribute 'codecs'"),
    ("x = '{0.__class__}'.format(1)", "not safe"),
    ("raise SystemExit(1)", "'SystemExit' is not defined"),
    ("import math\nmath.pi = 3", "attribute-less object"),
    ("from decimal import setcontext", "setcontext"),
    ("import decimal\nc = decimal.getcontext()", "has no attribute 'getcontext'"),
])
def test_sandbox_refuses_what_leads_out_of_it(script, refusal):
    with pytest.raises(Exception, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        SandboxEnvironment({}).execute(script, {})


def test_sandbox_runs_ordinary_scripts_and_allowed_imports():
    env = SandboxEnvironment({"double": lambda v: 2 * v})
    data = {"items": [{"n": 1}, {"n": 2}], "d": {"k": [1]}}
    env.execute("import math\nfrom statistics import mean\nfrom decimal import Decimal\n"
                "total = sum(i['n'] for i in items)\nroot = math.sqrt(4)\navg = mean([1, 3])\n"
                "d['k'].append(double(total))\ncount = 0\nfor a, b in [(1, 2), (3, 4)]:\n    count += a * b\n"
                "label = f'{total} items'\nfirst = dict.fromkeys(['x', 'x', 'y'])\nprice = Decimal('1.5')\n"
                "days = int(locals().get('days') or 7)\nhidden = [k for k in locals() if k.startswith('_')]",
                data)
    assert data["total"] == 3 and data["root"] == 2.0 and data["avg"] == 2 and data["d"] == {"k": [1, 6]}
    assert data["days"] == 7 and data["hidden"] == []
    assert data["count"] == 14 and data["label"] == "3 items" and list(data["first"]) == ["x", "y"]
    assert "math" not in data and "mean" not in data and "double" not in data  # helpers are not data
    assert not any(k.startswith("_") for k in data)
    assert env.evaluate("total > 2 and label.startswith('3')", data) is True


def test_time_limit_stops_a_single_line_endless_loop(monkeypatch):
    monkeypatch.setenv("SAMFLYT_SCRIPT_TIME_LIMIT", "0.3")
    began = time.monotonic()
    with pytest.raises(sandbox.ScriptTimeLimitError, match="time limit of 0.3 s"):
        SandboxEnvironment({}).execute("while True: pass", {})
    with pytest.raises(sandbox.ScriptTimeLimitError):
        SandboxEnvironment({}).evaluate("[x for x in range(10**6) for y in range(10**6)]", {})
    assert time.monotonic() - began < 5
    assert sys.gettrace() is None or sys.gettrace().__name__ != "tracer"  # the trace function is gone


def test_check_storable_names_the_field():
    for value, reason in ((float("nan"), "Out of range"), ({1, 2}, "set"), (object(), "object")):
        with pytest.raises(UnstorableDataError, match=f"field 'bad' cannot be stored: .*{reason}"):
            check_storable({"ok": 1, "bad": value})
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(UnstorableDataError, match="field 'loop'"):
        check_storable({"loop": cycle})
    check_storable({"fine": [1, "x", {"y": None}]})


# -- in a running process (SQLite and PostgreSQL)

@pytest.mark.parametrize(("script", "message"), [
    ("import os", "import of 'os' is not allowed"),
    ("x = open('/etc/passwd')", "'open' is not defined"),
    ("raise ValueError('the budget does not add up')", "the budget does not add up"),
])
def test_a_refused_or_failing_script_puts_the_instance_in_error(rt, deploy, script, message):
    deploy(_bundle(script))
    iid = rt.start("p", actor="ada")
    view = rt.complete(_task(rt, iid, "a").id, "ada", {"note": "mine"})
    assert view.status == "error"
    row = rt.instance(iid)
    assert row.error["element"] == "s" and message in row.error["message"]
    assert [e["action"] for e in rt.audit(iid)][-2:] == ["complete", "error"]


def test_a_script_the_sandbox_cannot_compile_is_refused_at_deploy(rt, deploy):
    from engine.errors import DeployError

    with pytest.raises(DeployError, match=r"element s: the script is not allowed in the script sandbox: .*starts with"):
        deploy(_bundle("x = __import__('os')"))
    with pytest.raises(DeployError, match="restricted name"):
        deploy(_bundle("f = (i for i in []).gi_frame"))


def test_an_endless_script_ends_in_error_and_retry_runs_it_after_the_fix(rt, deploy, monkeypatch):
    deploy(_bundle("n = 0\nwhile n < 300000:\n    n += 1"))
    monkeypatch.setenv("SAMFLYT_SCRIPT_TIME_LIMIT", "0.05")
    iid = rt.start("p", actor="ada")
    began = time.monotonic()
    assert rt.complete(_task(rt, iid, "a").id, "ada", {}).status == "error"
    assert time.monotonic() - began < 10
    row = rt.instance(iid)
    assert row.error["element"] == "s" and "time limit of 0.05 s" in row.error["message"]
    other = rt.start("p", actor="ada")  # the database is not held: others write on
    assert rt.instance(other).status == "running"
    monkeypatch.setenv("SAMFLYT_SCRIPT_TIME_LIMIT", "120")  # the fix: an admin gives scripts more time
    assert rt.retry(iid, "admin") == "running"
    assert rt.instance(iid).data["n"] == 300000 and _open_tasks(rt, iid) == ["b"]


def test_print_goes_to_the_log_with_instance_and_element(rt, deploy, caplog, capsys):
    deploy(_bundle("print('checking', 42)\nchecked = True"))
    iid = rt.start("p", actor="ada")
    with caplog.at_level(logging.INFO, logger="samflyt.script"):
        rt.complete(_task(rt, iid, "a").id, "ada", {})
    assert rt.instance(iid).data["checked"] is True
    assert f"(instance {iid}, element s): checking 42" in caplog.text
    assert "checking" not in capsys.readouterr().out


@pytest.mark.parametrize(("script", "field"), [
    ("import math\nbad = {1, 2}", "bad"),
    ("bad = float('nan')", "bad"),
    ("bad = []\nbad.append(bad)", "bad"),
    ("bad = iter([1, 2])", "bad"),
])
def test_data_a_script_cannot_store_is_refused_naming_element_and_field(rt, deploy, script, field):
    deploy(_bundle(script))
    iid = rt.start("p", actor="ada")
    assert rt.complete(_task(rt, iid, "a").id, "ada", {"note": "kept"}).status == "error"
    row = rt.instance(iid)
    assert row.error["element"] == "s" and f"field '{field}' cannot be stored" in row.error["message"]
    complete = next(e for e in rt.audit(iid) if e["action"] == "complete")
    assert complete["details"]["data"] == {"note": "kept"}
    assert row.data.get("note") == "kept" and "bad" not in row.data  # the state before the script


def test_too_much_data_is_refused(rt, deploy, monkeypatch):
    monkeypatch.setenv("SAMFLYT_MAX_DATA_BYTES", "1000")
    deploy(_bundle("big = 'x' * 5000"))
    iid = rt.start("p", actor="ada")
    assert rt.complete(_task(rt, iid, "a").id, "ada", {}).status == "error"
    assert "too large" in rt.instance(iid).error["message"]


def test_an_unexpected_failure_while_saving_is_caught_and_retry_works_after_the_fix(rt, deploy, monkeypatch):
    deploy(_bundle("checked = True"))
    iid = rt.start("p", actor="ada")
    task = _task(rt, iid, "a")
    original = Unit._sync_timers

    def bug(self, li):
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr(Unit, "_sync_timers", bug)
    with pytest.raises(StepFailedError, match="a bug in the engine") as refused:
        rt.complete(task.id, "ada", {"note": "mine"})
    assert f"instance {iid} is in error" in str(refused.value)
    row = rt.instance(iid)
    assert row.status == "error" and "RuntimeError: a bug in the engine" in row.error["message"]
    assert row.error["element"] == "s" and "checked" not in row.data  # nothing of the step was written
    actions = [(e["action"], e["details"].get("data")) for e in rt.audit(iid)]
    assert ("complete", {"note": "mine"}) in actions and actions[-1][0] == "error"
    assert _open_tasks(rt, iid) == ["a"]

    monkeypatch.setattr(Unit, "_sync_timers", original)  # the fix is deployed
    assert rt.retry(iid, "admin") == "running"
    view = rt.complete(task.id, "ada", {"note": "mine"})
    assert view.status == "running" and rt.instance(iid).data["checked"] is True
    assert _open_tasks(rt, iid) == ["b"]


def test_unstorable_submitted_data_is_refused_before_anything_runs(rt, deploy):
    deploy(_bundle("checked = True"))
    iid = rt.start("p", actor="ada")
    task = _task(rt, iid, "a")
    with pytest.raises(ValidationError, match="amount: Not a finite number"):
        rt.complete(task.id, "ada", {"amount": float("inf")})  # engine.payload, before the step runs
    assert rt.instance(iid).status == "running"
    assert rt.complete(task.id, "ada", {"amount": 1}).status == "running"


def test_a_failure_before_any_step_changes_nothing(rt, deploy, monkeypatch):
    deploy(_bundle("checked = True"))
    iid = rt.start("p", actor="ada")
    task = _task(rt, iid, "a")
    monkeypatch.setattr("engine.services.tasks.authz.needs_admin",
                        lambda *a: (_ for _ in ()).throw(KeyError("surprise")))
    with pytest.raises(StepFailedError, match="nothing was changed"):
        rt.complete(task.id, "ada", {})
    assert rt.instance(iid).status == "running"


# -- the command line

def test_cli_json_output_survives_print_and_failures_are_one_line(tmp_path: Path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "p.bpmn").write_text(definitions(process(
        "p", start(), script_task("s", "print('noise')\nx = 1"), user_task("a"),
        script_task("boom", "import os"), end(), chain("start", "s", "a", "boom", "end"))))
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "engine.cli", "--db", db, *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=60)

    assert run("init-db").returncode == 0 and run("deploy", str(bundle)).returncode == 0
    assert run("users", "add", "ada", "--role", "admin").returncode == 0
    started = run("--json", "start", "p", "--as", "ada")
    assert started.returncode == 0, started.stderr
    instance = json.loads(started.stdout)  # print() did not corrupt it
    task = json.loads(run("--json", "tasks", "--user", "ada").stdout)[0]
    done = run("--json", "complete", task["id"], "--as", "ada")
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "error"
    shown = json.loads(run("--json", "instance", str(instance["id"])).stdout)
    assert shown["status"] == "error" and "not allowed" in shown["error"]["message"]
    assert "Traceback" not in done.stderr


# -- the web UI

def test_web_shows_a_failed_step_as_a_conflict_and_a_failed_next_step_as_such(rt, deploy, monkeypatch):
    from engine import accounts
    from web import create_app

    deploy(_bundle("checked = True"))
    deploy(_bundle("import os", pid="q"))
    with rt.session() as s:
        accounts.set_password(s, "ada", "passord-ada")
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": rt.engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = rt
    client = app.test_client()
    assert client.post("/sign-in", data={"username": "ada", "password": "passord-ada"}).status_code == 302

    iid = rt.start("p", actor="ada")
    task = _task(rt, iid, "a")
    monkeypatch.setattr(Unit, "_sync_timers", lambda self, li: 1 / 0)
    page = client.post(f"/tasks/{task.id}", data={"_action": "complete"})
    assert page.status_code == 409, page.data
    assert "Saken kunne ikke gå videre fra denne oppgaven" in page.get_data(as_text=True)
    assert rt.instance(iid).status == "error"
    monkeypatch.undo()

    other = rt.start("q", actor="ada")
    done = client.post(f"/tasks/{_task(rt, other, 'a').id}", data={"_action": "complete"}, follow_redirects=True)
    assert done.status_code == 200
    assert "neste steg i saken feilet" in done.get_data(as_text=True)
    assert rt.instance(other).status == "error"


# -- a timer that fires during a user's step (issue 15, point 6)

def _deploy_deadline(deploy) -> None:
    from tests.bpmn_builder import boundary_event, timer

    deploy({"deadline.bpmn": definitions(process(
        "deadline", start(), user_task("work"), boundary_event("late", "work", timer("duration", "'PT1H'")),
        user_task("chase"), end(), end("e_late"),
        chain("start", "work", "end"), chain("late", "chase", "e_late")), id="defs_deadline")})


def _fired(rt, iid: int) -> list[dict]:
    return [e for e in rt.audit(iid) if e["action"] == "timer_fired"]


def test_a_timer_fired_by_a_users_step_is_audited(rt, deploy):
    from datetime import UTC, datetime, timedelta

    from engine import clock
    from engine.errors import TaskNotOpenError

    _deploy_deadline(deploy)
    t0 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
    with clock.frozen_at(t0):
        iid = rt.start("deadline", actor="ada")
    work = _task(rt, iid, "work")
    with clock.frozen_at(t0 + timedelta(hours=2)), pytest.raises(TaskNotOpenError):
        rt.complete(work.id, "ada", {"done": True})  # the timer was due first: it wins, and says so
    fired = _fired(rt, iid)
    assert [(e["details"]["element"], e["details"]["fired_by"]) for e in fired] == [("late", "ada")]
    assert _open_tasks(rt, iid) == ["chase"]
    assert rt.fire_due_timers(t0 + timedelta(hours=3)) == [] and len(_fired(rt, iid)) == 1


def test_every_fire_in_a_race_between_submission_and_scheduler_is_audited_once(rt, deploy):
    import threading
    from datetime import UTC, datetime, timedelta

    from engine import clock
    from engine.errors import SamflytError

    _deploy_deadline(deploy)
    t0 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
    with clock.frozen_at(t0):
        instances = [rt.start("deadline", actor="ada") for _ in range(8)]
    tasks = {iid: _task(rt, iid, "work").id for iid in instances}
    later = t0 + timedelta(hours=2)
    outcomes: list[str] = []
    for iid in instances:
        barrier = threading.Barrier(2)

        def submit(iid: int = iid, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                with clock.frozen_at(later):
                    rt.complete(tasks[iid], "ada", {"done": True})
                outcomes.append("completed")  # cannot be: the timer was due before the submission
            except SamflytError as exc:
                outcomes.append(exc.code)

        def schedule(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            rt.fire_due_timers(later)

        threads = [threading.Thread(target=submit), threading.Thread(target=schedule)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    rt.fire_due_timers(later)  # whatever a busy database left for the next pass
    assert len(outcomes) == len(instances) and "completed" not in outcomes, outcomes
    for iid in instances:
        assert len(_fired(rt, iid)) == 1, rt.audit(iid)
        assert _open_tasks(rt, iid) == ["chase"]


def test_a_dmn_table_that_never_ends_is_stopped_by_the_time_limit(rt, deploy, monkeypatch):
    from tests.bpmn_builder import business_rule_task, dmn_table

    monkeypatch.setenv("SAMFLYT_SCRIPT_TIME_LIMIT", "0.3")
    deploy({"d.bpmn": definitions(process(
        "d", start(), user_task("a"), business_rule_task("decide", "level"), user_task("b"), end(),
        chain("start", "a", "decide", "b", "end")), id="defs_d"),
        "level.dmn": dmn_table("level", inputs=[("sum(x * y for x in range(10**7) for y in range(10**7))", "integer")],
                               outputs=[("level", "string")], rules=[(["> 0"], ['"any"'])])})
    iid = rt.start("d", actor="ada")
    began = time.monotonic()
    assert rt.complete(_task(rt, iid, "a").id, "ada", {}).status == "error"
    assert time.monotonic() - began < 10
    row = rt.instance(iid)
    assert row.error["element"] == "decide" and "time limit of 0.3 s" in row.error["message"]
