"""Benchmark: the worklist at the size of a region -- many instances, thousands of tasks available to one person.

Run from the repository root::

    .venv/bin/python bench/worklist.py --postgres postgresql://postgres@127.0.0.1:5432/test   # 100 000 instances
    .venv/bin/python bench/worklist.py --instances 20000                                      # SQLite

It builds the database quickly: one instance is started through the runtime (so the rows are what the engine
writes), then ``--instances`` copies of its instance, human-task and narrowing (``task_audience``) rows are
inserted in bulk -- a case's tasks are for one organisation; every ``--share``-th is for the measured person's
(5 000 of 100 000 by default). Then each view (``mine``, ``available``, ``overdue``, ``all``) and the text
search are read page 1 (25 rows) ``--repeat`` times through :func:`engine.worklist.worklist`, as the page and
``samflyt tasks`` do (counted up to :data:`engine.worklist.COUNT_LIMIT`), and so are the process filter's
choices the page shows beside them; p50/p95 are printed beside the baseline measured in the same run: one
indexed primary-key read of a task row. On PostgreSQL the database is vacuumed after the bulk load, as
autovacuum would have done to a database that grew. The goal (issue "Fast at the size of a real region") is
p95 <= 20 ms per view on PostgreSQL at 100 000 instances; PASS/MISS is printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bench.complete_task import log, postgres_engine, sqlite_engine  # noqa: E402
from engine.models import HumanTask, ProcessInstance, TaskAudience, User  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.worklist import processes_with_open_tasks, worklist  # noqa: E402
from tests.bpmn_builder import chain, definitions, end, process, start, user_task  # noqa: E402

GOAL_MS = 20.0
ORGS = ["Horten kommune", *[f"Kommune {i}" for i in range(1, 40)]]


def bundle_xml() -> str:
    return definitions(process("bench_work", start(), user_task("work", "Arbeid", properties={
        "samflyt.organisationField": "org"}), end(), chain("start", "work", "end"), name="Arbeid"),
        id="defs_bench_work")


def build(rt: Runtime, instances: int, share: int) -> None:
    """One real instance, then ``instances`` copies of its rows in bulk; every ``share``-th for Horten."""
    template = rt.start("bench_work", {"org": "Horten kommune"})
    with rt.Session() as s:
        row = s.get(ProcessInstance, template)
        task = s.scalar(select(HumanTask).where(HumanTask.instance_id == template))
        base = {c.name: getattr(row, c.name) for c in ProcessInstance.__table__.columns if c.name != "id"}
        task_base = {c.name: getattr(task, c.name) for c in HumanTask.__table__.columns if c.name != "id"}
    batch = 5000
    for first in range(0, instances, batch):
        count = min(batch, instances - first)
        with rt.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(insert(ProcessInstance).returning(ProcessInstance.id),
                                              [base | {"title": f"Sak {first + i}"} for i in range(count)])] \
                if rt.engine.dialect.name == "postgresql" else _sqlite_ids(conn, base, first, count)
            tasks, audience = [], []
            for i, instance_id in enumerate(ids):
                n = first + i
                org = "Horten kommune" if n % share == 0 else ORGS[1 + n % (len(ORGS) - 1)]
                task_id = f"{n:08d}-0000-4000-8000-000000000000"
                tasks.append(task_base | {"task_id": task_id, "instance_id": instance_id,
                                          "restrictions": json.dumps({"organisations": [org]}),
                                          "due_at": task_base["created_at"]})
                audience.append({"task_id": task_id, "rule": "organisations", "value": org})
            conn.execute(insert(HumanTask), tasks)
            conn.execute(insert(TaskAudience), audience)
        log(f"  {first + count} instances")
    if rt.engine.dialect.name == "postgresql":
        # a region's database is vacuumed by autovacuum as it grows; a bulk load is not yet, so do it here
        # (statistics for the planner, the visibility map for index-only scans)
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


def _sqlite_ids(conn, base, first, count) -> list[int]:
    ids = []
    for i in range(count):
        result = conn.execute(insert(ProcessInstance), [base | {"title": f"Sak {first + i}"}])
        ids.append(result.inserted_primary_key[0])
    return ids


def measure(fn, repeat: int) -> dict[str, float]:
    fn()  # warm the connection and the plan
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"p50": statistics.median(samples), "p95": samples[max(0, int(len(samples) * 0.95) - 1)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (default: SQLite in a temp folder)")
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--share", type=int, default=20, help="every N-th case is the measured person's (20: 5 %)")
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.postgres:
            engine, where = postgres_engine(args.postgres)
        else:
            engine, where = sqlite_engine(folder), "SQLite"
        rt = Runtime(engine, workflow_cache_size=0)
        rt.add_user("ada", roles=["applicant"], organisations=["Horten kommune"])
        rt.add_user("boss", roles=["admin"])
        bundle = Path(folder) / "bundle"
        bundle.mkdir()
        (bundle / "work.bpmn").write_text(bundle_xml(), encoding="utf-8")
        rt.deploy([str(bundle)])
        log(f"building {args.instances} instances in {where}")
        t0 = time.perf_counter()
        build(rt, args.instances, args.share)
        log(f"  built in {time.perf_counter() - t0:.1f} s")
        with rt.Session() as s:
            ada = s.scalar(select(User).where(User.username == "ada"))
            boss = s.scalar(select(User).where(User.username == "boss"))
            some_id = s.scalar(select(HumanTask.id).order_by(HumanTask.id.desc()).limit(1))
            one = measure(lambda: s.get(HumanTask, some_id, populate_existing=True), args.repeat)
            views = {
                "available": lambda: worklist(s, ada, "available"),
                "overdue": lambda: worklist(s, ada, "overdue"),
                "mine": lambda: worklist(s, ada, "mine"),
                "all (admin)": lambda: worklist(s, boss, "all"),
                "search 'Sak 99'": lambda: worklist(s, ada, "available", text="Sak 99"),
                "process filter": lambda: processes_with_open_tasks(s),
            }
            available = s.scalar(select(func.count()).select_from(HumanTask).where(
                HumanTask.status == "open", HumanTask.claimed_by.is_(None),
                HumanTask.restrictions == json.dumps({"organisations": ["Horten kommune"]})))
            first = worklist(s, ada, "available")
            results = {name: measure(fn, args.repeat) for name, fn in views.items()}
        print(f"worklist at {args.instances} instances, {available} available to the person ({where}); "
              f"the page counts {'more than ' if first.more else ''}{first.total}")
        print(f"baseline: one task row by primary key p50 {one['p50']:.2f} ms")
        print(f"{'view':<18}{'p50 ms':>9}{'p95 ms':>9}{'p95/baseline':>14}  goal p95 <= {GOAL_MS:.0f} ms")
        for name, r in results.items():
            verdict = "PASS" if r["p95"] <= GOAL_MS else "MISS"
            print(f"{name:<18}{r['p50']:>9.2f}{r['p95']:>9.2f}{r['p95'] / max(one['p50'], 1e-6):>14.1f}  {verdict}")


if __name__ == "__main__":
    main()
