"""Moving running instances to a new version of their process (issue 15, point 10): SpiffWorkflow's diff
decides, each instance moves or is refused in its own transaction, and both are audited; the command line
and the admin page drive the same service. Also: stored states and specs say which serializer wrote them,
and a state written by an older one loads after an upgrade."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from engine.errors import NotAuthorisedError, NotFoundError, SamflytError
from engine.models import HumanTask, ProcessInstance, ProcessVersion
from engine.runtime import Runtime
from engine.serialization import VERSION, VERSION_KEY
from tests.bpmn_builder import call_activity, chain, definitions, end, process, script_task, start, user_task


def v1() -> str:
    """Prepare, then review, then done."""
    return definitions(process(
        "case", start(), user_task("prepare", "Forbered"), user_task("review", "Vurder"), end(),
        chain("start", "prepare", "review", "end"), lanes={"Admin": ["prepare", "review"]}))


def v2() -> str:
    """A check is added between prepare and review, and review is renamed (an edit of a reached element)."""
    return definitions(process(
        "case", start(), user_task("prepare", "Forbered"), user_task("check", "Kontroller"),
        user_task("review", "Vurder saken"), end(),
        chain("start", "prepare", "check", "review", "end"), lanes={"Admin": ["prepare", "check", "review"]}))


def _task(rt, instance_id: int, name: str) -> str:
    return next(t.id for t in rt.tasks(instance_id=instance_id) if t.name == name)


def _version(rt, instance_id: int) -> int:
    return rt.instance(instance_id).version


def test_a_hundred_running_instances_move_and_two_are_refused(rt, deploy):
    deploy({"case.bpmn": v1()})
    ids = [rt.start("case", {"n": i}, actor="admin") for i in range(100)]
    moved_on = ids[10], ids[57]
    for instance_id in moved_on:  # past prepare: now at review, which version 2 changes
        rt.complete(_task(rt, instance_id, "prepare"), "admin")
    before = {i: rt.instance(i).as_json() for i in moved_on}
    assert deploy({"case.bpmn": v2()})[0].version == 2

    dry = rt.migrate("case", 1, 2, "admin", dry_run=True)
    assert [o.instance_id for o in dry] == ids
    assert {o.instance_id for o in dry if o.status == "refused"} == set(moved_on)
    assert {o.status for o in dry if o.instance_id not in moved_on} == {"would_migrate"}
    refused = next(o for o in dry if o.instance_id == moved_on[0])
    assert any("'review'" in r and "changed in version 2" in r for r in refused.reasons), refused.reasons
    assert all(_version(rt, i) == 1 for i in (ids[0], ids[99]))  # a dry run moves nothing
    assert not [e for e in rt.audit() if e["action"] in ("migrated", "migration_refused")]

    outcomes = rt.migrate("case", 1, 2, "admin")
    assert [o.as_json()["status"] for o in outcomes].count("migrated") == 98
    assert {o.instance_id for o in outcomes if o.status == "refused"} == set(moved_on)
    for instance_id in moved_on:  # untouched: same version, same task, same data
        assert rt.instance(instance_id).as_json() == before[instance_id]
        refusal = [e for e in rt.audit(instance_id) if e["action"] == "migration_refused"]
        assert len(refusal) == 1 and refusal[0]["actor"] == "admin"
        assert refusal[0]["details"]["from_version"] == 1 and refusal[0]["details"]["to_version"] == 2
        assert refusal[0]["details"]["reasons"]
    for instance_id in (ids[0], ids[42], ids[99]):  # the moved ones go on through the new element
        assert _version(rt, instance_id) == 2
        assert [e["details"] for e in rt.audit(instance_id) if e["action"] == "migrated"] == \
            [{"from_version": 1, "to_version": 2}]
        rt.complete(_task(rt, instance_id, "prepare"), "admin")
        rt.complete(_task(rt, instance_id, "check"), "admin")
        view = rt.complete(_task(rt, instance_id, "review"), "admin")
        assert view.status == "completed"
    # the two refused still finish on version 1, which has no check
    rt.complete(_task(rt, moved_on[0], "review"), "admin")
    assert rt.instance(moved_on[0]).status == "completed"
    # run again: nothing left on version 1 but the refused one still running
    again = rt.migrate("case", 1, 2, "admin")
    assert [(o.instance_id, o.status) for o in again] == [(moved_on[1], "refused")]


def test_only_admins_migrate_and_bad_requests_say_why(rt, deploy):
    deploy({"case.bpmn": v1()})
    first = rt.start("case", actor="admin")
    with pytest.raises(NotAuthorisedError, match="admins only"):
        rt.migrate("case", 1, 2, "ada")
    with pytest.raises(NotFoundError, match="no version 2 of process 'case'"):
        rt.migrate("case", 1, 2, "admin")
    with pytest.raises(NotFoundError):
        rt.migrate("nothing", 1, 2, "admin")
    deploy({"case.bpmn": v2()})
    with pytest.raises(SamflytError, match="on version 2 already"):
        rt.migrate("case", 2, 2, "admin")
    claimed = _task(rt, first, "prepare")
    rt.claim(claimed, "admin")
    other = rt.start("case", actor="admin")  # on version 2 already
    outcomes = [o.as_json() for o in rt.migrate("case", 1, 2, "admin", instance_ids=[first, other, 999])]
    assert [(o["instance_id"], o["status"]) for o in outcomes] == \
        [(first, "migrated"), (other, "refused"), (999, "refused")]
    assert outcomes[1]["reasons"] == ["not an active instance of 'case' version 1"]
    # the open task is the same row, still claimed: nobody loses their place
    with rt.Session() as s:
        row = s.scalar(select(HumanTask).where(HumanTask.task_id == claimed))
        assert (row.status, row.claimed_by) == ("open", "admin")
        assert s.scalar(select(ProcessInstance.version_id).where(ProcessInstance.id == first)) == \
            s.scalar(select(ProcessInstance.version_id).where(ProcessInstance.id == other))


@pytest.fixture
def cli(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "engine.cli", "--db", db, *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=120)

    return run


def test_the_command_line_migrates_with_a_dry_run_first(cli, tmp_path):
    for version, text in (("1", v1()), ("2", v2())):
        (tmp_path / f"v{version}").mkdir()
        (tmp_path / f"v{version}" / "case.bpmn").write_text(text)
    assert cli("init-db").returncode == 0
    assert cli("users", "add", "boss", "--role", "admin").returncode == 0
    assert cli("users", "add", "ada", "--role", "applicant").returncode == 0
    assert cli("deploy", str(tmp_path / "v1")).returncode == 0
    ids = [json.loads(cli("--json", "start", "case").stdout)["id"] for _ in range(3)]
    task = next(t["id"] for t in json.loads(cli("--json", "tasks", "--instance", str(ids[1])).stdout))
    assert cli("complete", task, "--as", "boss").returncode == 0
    assert cli("deploy", str(tmp_path / "v2")).returncode == 0

    dry = cli("--json", "migrate", "case", "--from", "1", "--to", "2", "--dry-run", "--as", "boss")
    assert dry.returncode == 0, dry.stderr
    rows = json.loads(dry.stdout)
    assert [(r["instance_id"], r["status"]) for r in rows] == \
        [(ids[0], "would_migrate"), (ids[1], "refused"), (ids[2], "would_migrate")]
    assert set(rows[0]) == {"instance_id", "status", "reasons"} and rows[1]["reasons"]
    human = cli("migrate", "case", "--from", "1", "--to", "2", "--instance", str(ids[0]), "--as", "boss")
    assert human.returncode == 0 and f"instance {ids[0]}  migrated" in human.stdout, human.stderr
    assert json.loads(cli("--json", "instance", str(ids[0])).stdout)["version"] == 2
    assert json.loads(cli("--json", "instance", str(ids[2])).stdout)["version"] == 1

    refused = cli("migrate", "case", "--from", "1", "--to", "2", "--as", "ada")
    assert refused.returncode != 0 and refused.stderr.startswith("error: ada may not migrate instances")
    assert "Traceback" not in refused.stderr
    bad = cli("migrate", "case", "--from", "x", "--to", "2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    missing = cli("migrate", "case", "--from", "1", "--to", "7", "--as", "boss")
    assert missing.returncode == 1 and "no version 7 of process 'case'" in missing.stderr
    audit = json.loads(cli("--json", "audit", "--instance", str(ids[0])).stdout)
    assert [e["actor"] for e in audit if e["action"] == "migrated"] == ["boss"]


def test_the_admin_page_moves_instances_and_refuses_others(rt, deploy, db_engine):
    from engine import accounts
    from web import create_app

    with rt.session() as s:
        accounts.set_password(s, "admin", "passord-admin")
        accounts.set_password(s, "ada", "passord-ada")
    deploy({"case.bpmn": v1()})
    ids = [rt.start("case", actor="admin") for _ in range(3)]
    rt.complete(_task(rt, ids[2], "prepare"), "admin")
    deploy({"case.bpmn": v2()})
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = rt

    def client(user: str):
        c = app.test_client()
        assert c.post("/sign-in", data={"username": user, "password": f"passord-{user}"}).status_code == 302
        return c

    form = {"process_id": "case", "from_version": "1", "to_version": "2", "instance_ids": ""}
    applicant = client("ada")
    assert applicant.post("/admin/migrate", data=form).status_code == 403
    assert app.test_client().post("/admin/migrate", data=form).status_code == 302  # to sign-in
    assert _version(rt, ids[0]) == 1

    admin = client("admin")
    page = admin.get("/admin").get_data(as_text=True)
    assert 'action="/admin/migrate"' in page and 'for="m-from"' in page
    trial = admin.post("/admin/migrate", data={**form, "dry_run": "true"})
    text = trial.get_data(as_text=True)
    assert trial.status_code == 200 and "Prøvekjøring" in text and "Ville blitt flyttet" in text
    assert "Avvist" in text and "review" in text
    assert _version(rt, ids[0]) == 1
    done = admin.post("/admin/migrate", data={**form, "instance_ids": f"{ids[0]} {ids[2]}"})
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and "Flyttet" in text
    assert [_version(rt, i) for i in ids] == [2, 1, 1]
    admin.post("/language", data={"lang": "en", "next": "/admin"})
    english = admin.post("/admin/migrate", data={**form, "dry_run": "true"}).get_data(as_text=True)
    assert "Would move" in english and "is changed in version 2" in english
    admin.post("/language", data={"lang": "nb", "next": "/admin"})
    for bad in ({**form, "from_version": "en"}, {**form, "instance_ids": "1; DROP"}, {**form, "to_version": "9" * 30}):
        response = admin.post("/admin/migrate", data=bad, follow_redirects=True)
        assert response.status_code == 200 and "Oppgi prosessen" in response.get_data(as_text=True)
    missing = admin.post("/admin/migrate", data={**form, "to_version": "5"}, follow_redirects=True)
    assert "case" in missing.get_data(as_text=True) and missing.status_code == 200


def test_stored_specs_and_states_carry_the_serializer_version(rt, deploy):
    deploy({"case.bpmn": v1()})
    instance_id = rt.start("case", actor="admin")
    with rt.Session() as s:
        row = s.get(ProcessInstance, instance_id)
        spec_json = s.scalar(select(ProcessVersion.spec_json).where(ProcessVersion.id == row.version_id))
        assert json.loads(row.state)[VERSION_KEY] == VERSION
        assert json.loads(spec_json)[VERSION_KEY] == VERSION


def _as_written_by_serializer_1_4(spec_json: str, state: str) -> tuple[str, str]:
    """The version's specs and the instance's state as SpiffWorkflow 3.1 (serializer 1.4) wrote them.

    Serializer 1.5 moved the events of an event-based gateway's branches onto the gateway, leaving the
    catch events after it with no event of their own (``update_event_gateway_children``); under 1.4 each
    catch event carried its own. The state's form did not change, only its version mark."""
    specs = json.loads(spec_json)
    task_specs = specs["spec"]["task_specs"]
    gateway = task_specs["wait"]
    assert task_specs["got_message"]["event_definition"]["typename"] == "NoneEventDefinition"
    for name, definition in zip(gateway["outputs"], gateway["event_definition"]["event_definitions"], strict=True):
        task_specs[name]["event_definition"] = definition
    specs[VERSION_KEY] = "1.4"
    old_state = json.loads(state)
    old_state[VERSION_KEY] = "1.4"
    return json.dumps(specs), json.dumps(old_state)


@pytest.mark.parametrize("cached", [False, True])
def test_a_state_written_by_an_older_serializer_loads_and_runs_after_the_upgrade(rt, deploy, cached):
    """A process waiting at an event-based gateway, stored by serializer 1.4: read by today's SpiffWorkflow
    (1.5), its specs and state are migrated together and the instance goes on; without the migration the
    chosen branch's catch event would wait for a second message and the instance would never end."""
    from tests.test_constructs_events import _event_gateway_bpmn

    deploy({"evgw.bpmn": _event_gateway_bpmn()})
    instance_id = rt.start("evgw", {"case": 1})
    with rt.session() as s:
        row = s.get(ProcessInstance, instance_id)
        version = s.get(ProcessVersion, row.version_id)
        version.spec_json, state = _as_written_by_serializer_1_4(version.spec_json, row.state)
        s.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id).values(state=state))
    runtime = rt if not cached else Runtime(rt.engine, connectors=rt.connectors)  # a process after the upgrade
    workflow = runtime.load_workflow(instance_id)
    assert workflow.spec.task_specs["got_message"].event_definition.__class__.__name__ == "NoneEventDefinition"
    assert runtime.instance(instance_id).status == "waiting"
    result = runtime.send_message("approve", {"ok": True})
    assert (result.status, result.instance_id) == ("delivered", instance_id)
    view = runtime.instance(instance_id)
    assert (view.status, view.data["path"], view.data["approval"]) == ("completed", "message", {"ok": True})
    with rt.Session() as s:  # written back by today's serializer; the version's specs stay as stored
        assert json.loads(s.get(ProcessInstance, instance_id).state)[VERSION_KEY] == VERSION
    # a new instance of the old version starts on the migrated specs and takes the timer branch
    other = runtime.start("evgw", {"case": 2})
    assert runtime.instance(other).timers
    assert runtime.fire_due_timers(now=datetime.now(UTC) + timedelta(days=4)) == [other]
    assert runtime.instance(other).data["path"] == "timer"


def test_a_waiting_timer_keeps_its_due_time_and_leads_into_the_new_element(rt, deploy):
    from engine import clock
    from tests.bpmn_builder import catch_event, timer

    def waiting(*after: str) -> str:
        tasks = [user_task(name, name.title()) for name in after]
        return definitions(process(
            "wait", start(), catch_event("pause", timer("duration", "'P10D'")), *tasks, end(),
            chain("start", "pause", *after, "end"), lanes={"Admin": list(after)}))

    t0 = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
    clock.set_now(t0)
    deploy({"wait.bpmn": waiting("finish")})
    instance_id = rt.start("wait", actor="admin")
    assert [t["due_at"] for t in rt.instance(instance_id).timers] == [(t0 + timedelta(days=10)).isoformat()]
    deploy({"wait.bpmn": waiting("inspect", "finish")})
    clock.set_now(t0 + timedelta(days=3))
    assert [o.status for o in rt.migrate("wait", 1, 2, "admin")] == ["migrated"]
    view = rt.instance(instance_id)
    assert (view.version, view.status) == (2, "waiting")
    assert [t["due_at"] for t in view.timers] == [(t0 + timedelta(days=10)).isoformat()]  # not ten days from now
    assert rt.fire_due_timers(now=t0 + timedelta(days=10)) == [instance_id]
    assert [t.name for t in rt.tasks(instance_id=instance_id)] == ["inspect"]


def _nested_calls() -> dict[str, str]:
    return {
        "a.bpmn": definitions(process(
            "A", start("a_start"), call_activity("call_b", "B"), script_task("a_after", "trail = ['A done']"),
            end("a_end"), chain("a_start", "call_b", "a_after", "a_end")), id="defs_a"),
        "b.bpmn": definitions(process(
            "B", start("b_start"), call_activity("call_c", "C"), end("b_end"),
            chain("b_start", "call_c", "b_end")), id="defs_b"),
        "c.bpmn": definitions(process(
            "C", start("c_start"), user_task("c_task", "Answer"), end("c_end"),
            chain("c_start", "c_task", "c_end")), id="defs_c"),
    }


def _constructs() -> dict[str, tuple[dict[str, str], str, dict]]:
    """Diagrams with parts SpiffWorkflow keeps apart from the plain task tree: (files, process, start data)."""
    from tests.test_constructs_events import _boundary_timer_bpmn, _event_gateway_bpmn
    from tests.test_constructs_tasks import _mi_bpmn

    return {
        "multi-instance": ({"mip.bpmn": _mi_bpmn("mip", parallel=True)}, "mip", {"reviewers": ["knut", "mia"]}),
        "boundary timer": ({"bt.bpmn": _boundary_timer_bpmn(interrupting=False)}, "bt", {}),
        "event gateway": ({"evgw.bpmn": _event_gateway_bpmn()}, "evgw", {}),
        "call activities two deep": (_nested_calls(), "A", {}),
        "event subprocess": ({"esi.bpmn": _event_subprocess()}, "esi", {}),
    }


def _event_subprocess() -> str:
    from tests.bpmn_builder import event_start, message, message_event, subprocess

    return definitions(message("msg_abort", "abort"), process(
        "esi", start(), user_task("work"), script_task("worked", "path = 'main'"), end(),
        chain("start", "work", "worked", "end"),
        subprocess("on_abort", event_start("abort_start", message_event("msg_abort", variable="abort")),
                   script_task("aborting", "path = 'aborted'"), end("abort_end"),
                   chain("abort_start", "aborting", "abort_end"), event=True)))


@pytest.mark.parametrize("construct", list(_constructs()))
def test_an_unchanged_diagram_moves_every_construct_and_runs_on(rt, deploy, construct):
    """A new version whose diagrams are the same (a comment added): nothing an instance reached changed, so
    every instance moves, whatever it is doing, and goes on to its end on the new version."""
    files, process_id, data = _constructs()[construct]
    deploy(files)
    instance_id = rt.start(process_id, data, actor="admin")
    if construct == "multi-instance":  # one of the two reviews done, the other open
        rt.complete(_task(rt, instance_id, "review"), "admin", {"score": 4})
    before = rt.instance(instance_id)
    assert deploy({name: text + "<!-- v2 -->\n" for name, text in files.items()})[0].version == 2
    outcomes = rt.migrate(process_id, 1, 2, "admin")
    assert [(o.instance_id, o.status, o.reasons) for o in outcomes] == [(instance_id, "migrated", [])]
    after = rt.instance(instance_id)
    assert after.version == 2
    assert ([t.id for t in after.tasks], after.timers, after.status) == \
        ([t.id for t in before.tasks], before.timers, before.status)
    if construct == "event gateway":
        assert rt.send_message("approve", {"ok": True}).instance_id == instance_id
    if construct == "event subprocess":  # the event subprocess still listens on the new version
        assert rt.send_message("abort", {"why": "withdrawn"}).instance_id == instance_id
        assert rt.instance(instance_id).data["path"] == "aborted"
    for _ in range(3):
        for task in rt.tasks(instance_id=instance_id):
            rt.complete(task.id, "admin", {"score": 5})
    assert rt.instance(instance_id).status == "completed"


def test_an_instance_inside_a_called_process_the_new_version_lacks_is_refused(rt, deploy):
    deploy(_nested_calls())
    instance_id = rt.start("A", actor="admin")
    v2 = _nested_calls()
    v2["b.bpmn"] = v2["b.bpmn"].replace('calledElement="C"', 'calledElement="D"')
    v2["c.bpmn"] = v2["c.bpmn"].replace('id="C"', 'id="D"')
    deploy(v2)
    [outcome] = rt.migrate("A", 1, 2, "admin")
    assert outcome.status == "refused"
    assert "the called process 'C' is missing from version 2" in outcome.reasons
    assert any("'call_c' (STARTED) is changed" in r for r in outcome.reasons), outcome.reasons
    assert rt.instance(instance_id).version == 1
    rt.complete(_task(rt, instance_id, "c_task"), "admin")  # and it still runs on version 1
    assert rt.instance(instance_id).status == "completed"


def test_a_state_from_a_later_serializer_is_refused_with_a_clear_error(rt, deploy):
    deploy({"case.bpmn": v1()})
    instance_id = rt.start("case", actor="admin")
    with rt.session() as s:
        state = json.loads(s.get(ProcessInstance, instance_id).state)
        state[VERSION_KEY] = "9.0"
        s.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id).values(state=json.dumps(state)))
    with pytest.raises(SamflytError, match=r"later SpiffWorkflow serializer \(9.0\)"):
        rt.load_workflow(instance_id)


def test_a_move_that_fails_refuses_that_instance_only_and_leaves_it_whole(rt, deploy, monkeypatch):
    """SpiffWorkflow failing half-way through one instance's move: that one is refused and audited, stays on
    its version as it was (nothing of the half-move saved or kept in the warm workflow cache), the rest move."""
    from engine.services import migration

    warm = Runtime(rt.engine, connectors=rt.connectors)  # with the workflow cache a half-move could poison
    deploy({"case.bpmn": v1()})
    ids = [warm.start("case", actor="admin") for _ in range(3)]
    deploy({"case.bpmn": v2()})
    real, calls = migration.migrate_workflow, []

    def failing_for_the_second(diff, workflow, spec, *args):
        calls.append(workflow)
        result = real(diff, workflow, spec, *args)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return result

    monkeypatch.setattr(migration, "migrate_workflow", failing_for_the_second)
    outcomes = warm.migrate("case", 1, 2, "admin")
    assert [(o.instance_id, o.status) for o in outcomes] == [(ids[0], "migrated"), (ids[1], "refused"),
                                                             (ids[2], "migrated")]
    assert outcomes[1].reasons == ["the move failed: RuntimeError: boom"]
    assert [e["details"]["reasons"] for e in warm.audit(ids[1]) if e["action"] == "migration_refused"] == \
        [["the move failed: RuntimeError: boom"]]
    assert warm.instance(ids[1]).version == 1
    warm.complete(_task(warm, ids[1], "prepare"), "admin")
    assert [t.name for t in warm.tasks(instance_id=ids[1])] == ["review"]  # version 1's path: no check
    warm.complete(_task(warm, ids[0], "prepare"), "admin")
    assert [t.name for t in warm.tasks(instance_id=ids[0])] == ["check"]
