"""Project-level checks: the demo bundle works, the web app answers, the code is ruff clean."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from engine import clock
from web import create_app

ROOT = Path(__file__).resolve().parent.parent


def test_demo_bundle_runs_both_paths_and_reminds(rt):
    rt.deploy([str(ROOT / "bpmn" / "demo")], actor="admin")
    rt.add_user("siri", roles=["secretariat"])
    t0 = clock.now()
    with clock.frozen_at(t0):
        approved = rt.start("demo_request", actor="ada")
        rejected = rt.start("demo_request", actor="ada")
        for iid in (approved, rejected):
            task = rt.tasks(iid)[0]
            rt.complete(task.id, "ada", {"title": "Felles forløp", "description": "...", "amount": 250000})
    review = rt.tasks(approved)[0]
    assert (review.name, review.lane) == ("review_request", "AU")
    assert rt.instance(approved).timers[0]["task"] == "review_overdue"
    assert rt.fire_due_timers(t0 + timedelta(days=14, seconds=1)) == [approved, rejected]
    assert sorted(t.name for t in rt.tasks(approved)) == ["review_request", "send_reminder"]
    rt.complete(review.id, "per", {"decision": "innvilget", "approved_amount": 200000})
    rt.complete(rt.tasks(rejected)[0].id, "per", {"decision": "avslått", "comment": "Utenfor kriteriene"})
    assert "approved_at" in rt.instance(approved).data and "approved_at" not in rt.instance(rejected).data
    for iid in (approved, rejected):
        read = [t for t in rt.tasks(iid) if t.name == "read_decision"][0]
        rt.complete(read.id, "ada", {})
    for iid in (approved, rejected):  # both reviews were overdue, so both got a reminder task
        rt.complete([t for t in rt.tasks(iid) if t.name == "send_reminder"][0].id, "siri", {})
    outcome = [(rt.instance(i).status, [t.name for t in rt.tasks(i)]) for i in (approved, rejected)]
    assert outcome == [("completed", [])] * 2


def test_health_page(db_engine):
    app = create_app({"TESTING": True, "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    response = app.test_client().get("/health")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    proc = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_demo_command_sets_up_users_and_instances_once(tmp_path):
    cmd = [sys.executable, "-m", "engine.cli", "--db", f"sqlite:///{tmp_path / 'demo.db'}", "--json"]
    for _ in range(2):
        proc = subprocess.run([*cmd, "demo", "--bundle", str(ROOT / "bpmn" / "demo")], capture_output=True,
                              text=True, cwd=tmp_path, timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["started"] == []  # the second run starts nothing new
    tasks = json.loads(subprocess.run([*cmd, "tasks", "--user", "ada"], capture_output=True, text=True,
                                      cwd=tmp_path, timeout=60).stdout)
    assert [t["name"] for t in tasks] == ["register_request", "register_request"]
