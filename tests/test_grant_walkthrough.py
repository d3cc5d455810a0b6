"""The README's path through the grant: `samflyt demo`, then one application from draft to final report with
the CLI (bpmn/grant/walkthrough.sh), as a newcomer would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_then_walkthrough_from_draft_to_final_report(tmp_path: Path):
    samflyt = Path(sys.executable).parent / "samflyt"
    env = {**os.environ, "SAMFLYT_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "SAMFLYT": str(samflyt)}
    env.pop("SAMFLYT_SMTP_HOST", None)
    demo = subprocess.run([str(samflyt), "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert "demo ready: 7 process(es), 45 user(s), 29 new instance(s)" in demo.stdout
    again = subprocess.run([str(samflyt), "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "0 new instance(s)" in again.stdout  # idempotent
    for user, expected in (("ada", "fill_application"), ("bjorn", "cosign_application"), ("per", "check_completeness"),
                           ("mia", "review_application"), ("frida", "fsu_input"), ("siri", "register_ssu_decision"),
                           ("emma", "status_report"), ("vera", "check_completeness"), ("tone", "review_application"),
                           ("lars", "review_application"), ("jon", "cosign_application"),
                           ("sverre", "register_ssu_decision")):
        tasks = subprocess.run([str(samflyt), "tasks", "--user", user], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=60)
        assert expected in tasks.stdout, (user, tasks.stdout)
    # the demo is dated to read as current, so this year's ledger already holds its money: compare
    params = json.dumps({"year": date.today().year, "community": "Helsefellesskapet i Vestfold"})
    before = json.loads(subprocess.run([str(samflyt), "--json", "connector", "ledger.balances", "--params", params],
                                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout)
    walk = subprocess.run(["sh", str(ROOT / "bpmn" / "grant" / "walkthrough.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert walk.returncode == 0, walk.stdout + walk.stderr
    assert "message ssu_decision: delivered" in walk.stdout
    assert "application instance: completed" in walk.stdout
    after = json.loads(walk.stdout.strip().splitlines()[-1])
    assert (after["paid"] - before["paid"], after["released"] - before["released"]) == (240_000, 10_000)
