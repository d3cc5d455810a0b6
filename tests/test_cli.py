"""The samflyt CLI, run as a real subprocess the way other tools script it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bpmn_builder import (
    chain,
    correlation,
    definitions,
    end,
    message,
    message_ref,
    process,
    start,
    timer,
    user_task,
)

# A process that is not part of this repository's bpmn/: a user task, a date timer, a correlated message.
OUTSIDE = definitions(
    message("decision"),
    correlation("case", "case_id", {"decision": "case_id"}),
    process(
        "outside_case", start(),
        user_task("prepare", "Forbered sak", form="prepare.json"),
        f'<bpmn:intermediateCatchEvent id="meeting_day">{timer("date", "meeting")}</bpmn:intermediateCatchEvent>',
        f'<bpmn:intermediateCatchEvent id="await_decision">{message_ref("decision", "decision")}'
        "</bpmn:intermediateCatchEvent>",
        user_task("record", "Protokollfør"), end(),
        chain("start", "prepare", "meeting_day", "await_decision", "record", "end"),
        lanes={"AU": ["prepare", "record"]}),
)
PREPARE_FORM = {"type": "object", "required": ["case_id", "meeting"],
                "properties": {"case_id": {"type": "integer"}, "meeting": {"type": "string", "format": "date-time"}}}


@pytest.fixture
def cli(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "engine.cli", "--db", db, *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=60)
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    def js(*args: str):
        return json.loads(run("--json", *args).stdout) if args[0] != "--json" else None

    run.json = js  # type: ignore[attr-defined]
    return run


def test_cli_drives_an_outside_bpmn_from_start_to_end(cli, tmp_path):
    bundle = tmp_path / "outside"
    bundle.mkdir()
    (bundle / "case.bpmn").write_text(OUTSIDE)
    (bundle / "prepare.json").write_text(json.dumps(PREPARE_FORM))
    cli("init-db")
    assert cli.json("deploy", str(bundle)) == [{"process_id": "outside_case", "version": 1, "created": True}]
    assert cli.json("deploy", str(bundle))[0]["created"] is False
    assert [m["process_id"] for m in cli.json("models")] == ["outside_case"]
    cli("users", "add", "per", "--role", "AU", "--org", "Helsefellesskapet")
    cli("users", "add", "ada", "--role", "applicant")

    instance_id = cli.json("start", "outside_case", "--key", "SAK-7", "--as", "per")["id"]
    tasks = cli.json("tasks", "--user", "per")
    assert [(t["name"], t["title"], t["lane"], t["instance_id"]) for t in tasks] == \
        [("prepare", "Forbered sak", "AU", instance_id)]
    assert set(tasks[0]) >= {"id", "name", "title", "lane", "instance_id", "claimed_by", "due_at"}
    assert cli.json("tasks", "--user", "ada") == []
    assert "(no open tasks)" in cli("tasks", "--user", "ada").stdout
    second = cli.json("start", "outside_case", "--key", "SAK-8", "--as", "per")["id"]
    paged = cli("tasks", "--user", "per", "--per-page", "1", "--page", "2").stdout
    assert f"instance={second}" in paged and f"instance={instance_id} " not in paged
    assert paged.splitlines()[-1] == "page 2 of 2 (2 tasks)"
    assert [t["instance_id"] for t in cli.json("tasks", "--user", "per", "--per-page", "1")] == [instance_id]
    cli("cancel", str(second), "--as", "per")
    task_id = tasks[0]["id"]

    denied = cli("claim", task_id, "--as", "ada", ok=False)
    assert denied.returncode != 0 and denied.stderr.startswith("error: ") and len(denied.stderr.splitlines()) == 1
    cli("claim", task_id, "--as", "per")
    bad = cli("complete", task_id, "--as", "per", "--data", '{"case_id": "seven"}', ok=False)
    assert bad.returncode != 0 and "case_id" in bad.stderr and "meeting" in bad.stderr
    cli("complete", task_id, "--as", "per", "--data", '{"case_id": 7, "meeting": "2030-03-05T10:00:00+01:00"}')

    view = cli.json("instance", str(instance_id))
    assert view["status"] == "waiting" and view["tasks"] == []
    assert view["timers"][0]["task"] == "meeting_day"
    assert view["timers"][0]["due_at"].startswith("2030-03-05T09:00:00")
    assert set(view) >= {"id", "process_id", "status", "data", "tasks", "timers"}

    assert cli.json("tick", "--now", "2030-03-05T09:59:00+01:00")["instances"] == []
    assert cli.json("tick", "--now", "2030-03-05T10:00:00+01:00")["instances"] == [instance_id]
    assert cli.json("instance", str(instance_id))["timers"] == []

    wrong = cli("message", "decision", "--correlation", "case_id=8", "--data", '{"vedtak": "nei"}', ok=False)
    assert wrong.returncode == 3 and "undeliverable" in wrong.stderr
    sent = cli.json("message", "decision", "--correlation", "case_id=7", "--data", '{"vedtak": "innvilget"}')
    assert sent == {"id": 2, "status": "delivered", "instance_id": instance_id, "started": False}
    assert [m["status"] for m in cli.json("messages")] == ["undeliverable", "delivered"]

    record = cli.json("tasks", "--instance", str(instance_id))[0]
    assert record["name"] == "record"
    done = cli.json("complete", record["id"], "--as", "per", "--data", '{"protokoll": "ok"}')
    assert done["status"] == "completed"
    assert done["data"]["decision"] == {"vedtak": "innvilget"} and done["data"]["protokoll"] == "ok"
    actions = [e["action"] for e in cli.json("audit", "--instance", str(instance_id))]
    assert actions[:2] == ["start", "claim"] and "timer_fired" in actions and "message_delivered" in actions


def test_cli_errors_are_one_line_and_non_zero(cli, tmp_path):
    missing_db = cli("tasks", ok=False)
    assert missing_db.returncode != 0 and "init-db" in missing_db.stderr
    cli("init-db")
    for args in (("start", "nope"), ("instance", "42"), ("complete", "x", "--as", "nobody"),
                 ("deploy", str(tmp_path / "nowhere")), ("start", "p", "--data", "[1]")):
        proc = cli(*args, ok=False)
        assert proc.returncode != 0, args
        assert proc.stderr.strip() and "Traceback" not in proc.stderr, proc.stderr


def test_cli_places_organisations_in_a_health_community(cli, tmp_path):
    cli("init-db")
    cli("users", "add", "vera", "--role", "au", "--org", "Vestre Viken HF")
    assert cli.json("users", "community", "Helsefellesskap Vest-Viken", "Vestre Viken HF", "Drammen kommune") == {
        "community": "Helsefellesskap Vest-Viken", "organisations": ["Drammen kommune", "Vestre Viken HF"]}
    missing = cli("users", "community", "Helsefellesskap Vest-Viken", ok=False)
    assert missing.returncode != 0 and "ORGANISATIONS" in missing.stderr
    blank = cli("users", "community", " ", "Lier kommune", ok=False)
    assert blank.returncode != 0 and blank.stderr.strip().splitlines() == [
        "error: invalid data: community: Missing data for required field."]
    audit = cli.json("audit")
    assert [e["details"]["organisations"] for e in audit if e["action"] == "community_saved"] == [
        ["Drammen kommune", "Vestre Viken HF"]]
