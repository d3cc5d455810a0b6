"""Timer lateness: how late do durable timers fire, with one and with two scheduler processes?

Creates N instances (default 10 000) on PostgreSQL, each waiting on a date timer, with due times spread
evenly over a window (default 60 s) that starts after the instances exist; then runs ``samflyt scheduler``
processes (default poll interval) until every timer has fired, and reads from the audit log when each
timer was due and when it actually fired (wall clock). Prints lateness p50 / p99 / max and fires per
second, for one scheduler and for two, and checks that every timer fired exactly once (from the audit: none
twice, none never). The bench's database is emptied afterwards. A script, not a test: it never fails on timing.

    .venv/bin/python bench/timers.py --postgres postgresql://postgres@127.0.0.1:5432/test [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from complete_task import log, postgres_engine, reset_schema  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from engine.models import AuditEvent, Timer  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from tests.bpmn_builder import chain, definitions, end, process, start, timer, user_task  # noqa: E402

TARGET_P99_S = 1.0
BPMN = definitions(process(
    "bench_timer", start(),
    f'<bpmn:intermediateCatchEvent id="due_timer">{timer("date", "due")}</bpmn:intermediateCatchEvent>',
    user_task("after"), end(), chain("start", "due_timer", "after", "end")))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(url: str, n: int, spread: float, schedulers: int, interval: float,
        workers: int | None = None) -> dict[str, Any]:
    engine, where = postgres_engine(url)
    if "schema" in where:
        raise SystemExit("bench/timers.py needs its own database (CREATE DATABASE allowed)")
    rt = Runtime(engine)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "t.bpmn").write_text(BPMN)
        rt.deploy([folder])
    log(f"[{schedulers} scheduler(s)] creating {n} instances ...")
    t = time.perf_counter()
    for _ in range(min(100, n)):  # measure the creation rate, with due times far away
        rt.start("bench_timer", {"due": (datetime.now(UTC) + timedelta(days=365)).isoformat()})
    per_instance = (time.perf_counter() - t) / min(100, n)
    window_start = datetime.now(UTC) + timedelta(seconds=per_instance * n * 1.3 + 10)
    with engine.begin() as conn:  # the 100 probes are not part of the measurement
        conn.execute(Timer.__table__.delete())
    for i in range(n):
        rt.start("bench_timer", {"due": (window_start + timedelta(seconds=spread * i / n)).isoformat()})
    if datetime.now(UTC) >= window_start:
        raise SystemExit("creating the instances overran the window start; run again")
    bench_url = engine.url.render_as_string(hide_password=False)
    argv = [sys.executable, "-m", "engine.cli", "--db", bench_url, "scheduler", "--interval", str(interval)]
    if workers:
        argv += ["--workers", str(workers)]
    procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                              cwd=ROOT, env=os.environ.copy()) for _ in range(schedulers)]
    log(f"[{schedulers} scheduler(s)] waiting for {n} timers due over {spread:.0f} s ...")
    try:
        deadline = window_start + timedelta(seconds=spread + 120)
        while datetime.now(UTC) < deadline:
            with engine.connect() as conn:
                if not conn.scalar(select(func.count()).select_from(Timer)):
                    break
            time.sleep(0.5)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.communicate(timeout=60)
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.instance_id, AuditEvent.details)
                            .where(AuditEvent.action == "timer_fired")).all()
        left = conn.scalar(select(func.count()).select_from(Timer))
    events = [json.loads(details) for _instance, details in rows]
    fires = Counter(instance for instance, _details in rows)
    doubled = sum(1 for count in fires.values() if count > 1)
    never = n - len(fires)
    reset_schema(engine, "public")  # the bench's own database: leave no instances, timers or audit behind
    late = [(datetime.fromisoformat(e["wall_time"]) - datetime.fromisoformat(e["due_at"])).total_seconds()
            for e in events]
    fired_at = sorted(datetime.fromisoformat(e["wall_time"]) for e in events)
    workers = {e["worker"] for e in events}
    busy = (fired_at[-1] - fired_at[0]).total_seconds() if len(fired_at) > 1 else 0.0
    engine.dispose()
    return {"schedulers": schedulers, "fired": len(events), "not_fired": left, "fired_twice": doubled,
            "never_fired": never, "workers_seen": len(workers),
            "lateness_s": {"p50": percentile(late, 50), "p99": percentile(late, 99), "max": max(late),
                           "mean": statistics.fmean(late)},
            "fires_per_second": len(events) / busy if busy else None, "where": where}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("SAMFLYT_TEST_POSTGRES_URL"), required=False)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which the timers fall due")
    parser.add_argument("--interval", type=float, default=1.0, help="scheduler poll interval (the default)")
    parser.add_argument("--schedulers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workers", type=int, help="threads per scheduler (default: the scheduler's own)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.postgres:
        parser.error("a PostgreSQL URL is needed (--postgres or SAMFLYT_TEST_POSTGRES_URL)")
    results = [run(args.postgres, args.n, args.spread, k, args.interval, args.workers) for k in args.schedulers]
    if args.json:
        print(json.dumps(results, indent=2))
    print(f"\n{args.n} timers due over {args.spread:.0f} s, poll interval {args.interval} s, "
          f"{args.workers or 'default'} worker threads per scheduler "
          f"(target: p99 lateness <= {TARGET_P99_S} s)", file=sys.stderr)
    print(f"{'schedulers':>10} {'fired':>7} {'left':>5} {'twice':>6} {'never':>6} {'p50 s':>7} {'p99 s':>7} "
          f"{'max s':>7} {'fires/s':>8}  verdict", file=sys.stderr)
    for r in results:
        lat = r["lateness_s"]
        once = not r["not_fired"] and not r["fired_twice"] and not r["never_fired"]
        verdict = "PASS" if lat["p99"] <= TARGET_P99_S and once else "MISS"
        print(f"{r['schedulers']:>10} {r['fired']:>7} {r['not_fired']:>5} {r['fired_twice']:>6} {r['never_fired']:>6} "
              f"{lat['p50']:>7.3f} {lat['p99']:>7.3f} {lat['max']:>7.3f} {r['fires_per_second'] or 0:>8.0f}  {verdict}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
