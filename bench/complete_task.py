"""Benchmark: what one persisted task completion costs, against SpiffWorkflow's in-memory floor.

Run from the repository root::

    .venv/bin/python bench/complete_task.py                       # SQLite only (or PostgreSQL from env)
    .venv/bin/python bench/complete_task.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/complete_task.py --json > results.json # JSON on stdout, table on stderr
    .venv/bin/python bench/complete_task.py --profile sqlite      # + cProfile of the completions

Measures, on SQLite (a file in a temp dir) and PostgreSQL (``--postgres`` or ``SAMFLYT_TEST_POSTGRES_URL``):

(a) a process of 25 sequential user tasks: the median time of one ``Runtime.complete`` (lock and load,
    complete, engine steps, save, index update, commit), as a ratio to the floor -- SpiffWorkflow alone, in
    memory, spec embedded as it does by default: ``deserialize_json`` + ``task.run()`` +
    ``do_engine_steps()`` + ``serialize_json``. Each completion and its floor run on the same workflow state,
    interleaved, so both see the same state sizes. Cold: the runtime's warm workflow cache is off, so every
    completion deserializes the stored state, as after a pause or in another worker process; the same with
    the warm cache is shown beside it.
(b) end to end, what a person waits for: ``start`` (and the starter's first task found, as the start page
    does) -> the first page of the "available" worklist, with a backlog of 2 000 tasks available to the
    same person -> ``complete`` -> end, for a one-user-task process, median ms.
(c) state size after 20 of the 25 tasks: ``len(ProcessInstance.state)`` as a percentage of
    ``len(default_serializer.serialize_json(workflow))``.

Only ratios against a floor measured in the same run are compared with targets; nothing is asserted.
On PostgreSQL the bench works in its own database ``samflyt_bench`` (created with CREATE DATABASE if
missing; its ``public`` schema is dropped, recreated and migrated each run). If the role may not create
or reset that database, it falls back to a schema ``samflyt_bench`` in the URL's database (dropped and
recreated each run). Nothing else on the server is touched.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import SpiffWorkflow  # noqa: E402
import sqlalchemy  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine import db  # noqa: E402
from engine.models import ProcessInstance  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.serialization import default_serializer  # noqa: E402
from tests.bpmn_builder import chain, definitions, end, process, start, user_task  # noqa: E402

SEQ_TASKS = 25
SIZE_AFTER = 20
USER = "bench"
BENCH_DB = "samflyt_bench"
TARGETS = {"ratio_sqlite": 1.5, "ratio_postgres": 2.5, "e2e_ms": 16.0, "state_pct": 25.0}
BACKLOG = 2000


# --------------------------------------------------------------------------- processes
def seq_bpmn(n: int = SEQ_TASKS) -> str:
    ids = [f"t{i}" for i in range(1, n + 1)]
    return definitions(process("bench_seq", start(), *[user_task(i) for i in ids], end(),
                               chain("start", *ids, "end")), id="bench_seq_defs")


def one_bpmn() -> str:
    return definitions(process("bench_one", start(), user_task("u1"), end(), chain("start", "u1", "end")),
                       id="bench_one_defs")


# --------------------------------------------------------------------------- databases
def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def reset_schema(engine: Engine, schema: str) -> None:
    """Drop and recreate a schema the bench owns (tables, and the functions and triggers migrations add)."""
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))


def sqlite_engine(folder: str) -> Engine:
    engine = db.make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
    db.migrate(engine)
    return engine


def postgres_engine(url: str) -> tuple[Engine, str]:
    """A migrated, empty database for the bench: its own database if we may create one, else a schema."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    base = make_url(url)
    admin = db.make_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": BENCH_DB}):
                conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
        engine = db.make_engine(base.set(database=BENCH_DB).render_as_string(hide_password=False))
        where = f"database {BENCH_DB}"
        reset_schema(engine, "public")  # the public schema of the bench's own database
    except sqlalchemy.exc.ProgrammingError as exc:  # may not create or reset it: a schema of our own instead
        log(f"  cannot use database {BENCH_DB} ({str(exc.orig).strip()}); using schema {BENCH_DB} "
            f"in {base.database}")
        engine = db.make_engine(base.render_as_string(hide_password=False),
                                connect_args={"options": f"-csearch_path={BENCH_DB}"})
        where = f"schema {BENCH_DB} in database {base.database}"
        reset_schema(engine, BENCH_DB)
    finally:
        admin.dispose()
    db.migrate(engine)
    return engine, where


def make_runtime(engine: Engine, folder: str, cold: bool = False) -> Runtime:
    """A runtime with the bench bundle; ``cold`` turns the warm workflow cache off (every step deserializes)."""
    rt = Runtime(engine, workflow_cache_size=0 if cold else 256)
    rt.add_user(USER)  # create or update: the warm runtime of the same database finds the user there
    bundle = Path(folder) / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "bench_seq.bpmn").write_text(seq_bpmn(), encoding="utf-8")
    (bundle / "bench_one.bpmn").write_text(one_bpmn(), encoding="utf-8")
    rt.deploy([str(bundle)])
    return rt


# --------------------------------------------------------------------------- measuring
def summary(samples: list[float]) -> dict[str, float]:
    """Milliseconds: median, p10, p90, mean over the samples (given in seconds)."""
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=10) if len(ms) > 1 else [ms[0]] * 9
    return {"median": statistics.median(ms), "p10": q[0], "p90": q[-1], "mean": statistics.fmean(ms),
            "n": len(ms)}


def floor_once(state_json: str, data: dict[str, Any]) -> float:
    """SpiffWorkflow alone: restore (spec embedded), complete the ready user task, run, serialize."""
    t0 = time.perf_counter()
    wf = default_serializer.deserialize_json(state_json)
    task = wf.get_next_task(state=TaskState.READY, manual=True)
    task.data.update(data)
    task.run()
    wf.do_engine_steps()
    default_serializer.serialize_json(wf)
    return time.perf_counter() - t0


def bench_completions(rt: Runtime, instances: int, warmup_instances: int,
                      profiler: cProfile.Profile | None = None) -> dict[str, Any]:
    """(a): every completion of ``instances`` runs of the 25-task process, each next to its floor."""
    floor: list[float] = []
    persisted: list[float] = []
    gc.collect()  # once: a collection per sample would cost more than the samples (and hide real GC work)
    for run in range(warmup_instances + instances):
        measuring = run >= warmup_instances
        iid = rt.start("bench_seq", actor=USER)
        for step in range(SEQ_TASKS):
            data = {"step": step}
            state_json = default_serializer.serialize_json(rt.load_workflow(iid))
            task_id = rt.tasks(iid)[0].id
            if step % 2:  # alternate the order so neither side always runs on a warmer cache
                f = floor_once(state_json, data)
            if profiler is not None and measuring:
                profiler.enable()
            t0 = time.perf_counter()
            view = rt.complete(task_id, USER, data)
            p = time.perf_counter() - t0
            if profiler is not None and measuring:
                profiler.disable()
            if not step % 2:
                f = floor_once(state_json, data)
            if measuring:
                floor.append(f)
                persisted.append(p)
        if view.status != "completed":
            raise RuntimeError(f"instance {iid} ended {view.status}, not completed")
    f, p = summary(floor), summary(persisted)
    per_step = [a / b for a, b in zip(persisted, floor, strict=True)]
    return {"completions": len(persisted), "floor_ms": f, "complete_ms": p,
            "ratio": p["median"] / f["median"], "ratio_median_of_pairs": statistics.median(per_step)}


def build_backlog(rt: Runtime, tasks: int) -> None:
    """``tasks`` open tasks available to the bench user, each a started instance of the one-task process: the
    worklist the person of (b) reads is not an empty one."""
    for _ in range(tasks):
        rt.start("bench_one", actor=USER)
    if rt.engine.dialect.name == "postgresql":  # statistics of a database that grew, as autovacuum keeps them
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


def bench_end_to_end(rt: Runtime, runs: int, warmup: int, backlog: int) -> dict[str, Any]:
    """(b): what a person waits for, one sample per new instance of the one-task process: start it (and find
    its first task for the starter, as the start page does), read the worklist's first page of available
    tasks (with the backlog behind it, counted and paged by the database), complete the task."""
    total: list[float] = []
    parts: dict[str, list[float]] = {"start": [], "worklist": [], "complete": []}
    gc.collect()
    for run in range(warmup + runs):
        t0 = time.perf_counter()
        iid = rt.start("bench_one", actor=USER)
        task_id = rt.tasks(iid, user=USER)[0].id
        t1 = time.perf_counter()
        listed, page = rt.task_page(USER, "available", per_page=25)
        t2 = time.perf_counter()
        view = rt.complete(task_id, USER, {"ok": True})
        t3 = time.perf_counter()
        if view.status != "completed":
            raise RuntimeError(f"instance {iid} ended {view.status}, not completed")
        if not listed or not (page.more or page.total > backlog):
            raise RuntimeError(f"the worklist read found {page.total} tasks, not the backlog of {backlog} and more")
        if run >= warmup:
            total.append(t3 - t0)
            parts["start"].append(t1 - t0)
            parts["worklist"].append(t2 - t1)
            parts["complete"].append(t3 - t2)
    return {"runs": len(total), "total_ms": summary(total),
            "parts_median_ms": {k: summary(v)["median"] for k, v in parts.items()}}


def measure_state_size(rt: Runtime) -> dict[str, Any]:
    """(c): our stored state vs SpiffWorkflow's default serialization after 20 completed tasks."""
    iid = rt.start("bench_seq", actor=USER)
    for step in range(SIZE_AFTER):
        rt.complete(rt.tasks(iid)[0].id, USER, {"step": step})
    with rt.Session() as s:
        ours = len(s.get(ProcessInstance, iid).state)
    spiff = len(default_serializer.serialize_json(rt.load_workflow(iid)))
    return {"completed_tasks": SIZE_AFTER, "state_chars": ours, "default_chars": spiff,
            "percent": 100.0 * ours / spiff}


def run_backend(name: str, engine: Engine, folder: str, args: argparse.Namespace,
                size: bool) -> dict[str, Any]:
    instances = math.ceil(args.n / SEQ_TASKS)
    t0 = time.perf_counter()
    rt = make_runtime(engine, folder, cold=True)
    warm = make_runtime(engine, folder, cold=False) if not args.cold_only else None
    log(f"[{name}] (a) {instances * SEQ_TASKS} completions in {instances} instances, cold ...")
    result: dict[str, Any] = {"a": bench_completions(rt, instances, args.warmup)}
    if warm is not None:
        log(f"[{name}] (a) the same, with the warm workflow cache ...")
        result["a_warm"] = bench_completions(warm, instances, args.warmup)
    log(f"[{name}] (b) a backlog of {args.backlog} available tasks, then {args.e2e} end-to-end runs ...")
    build_backlog(rt, args.backlog)
    result["b"] = bench_end_to_end(rt, args.e2e, max(5, args.e2e // 10), args.backlog)
    if size:
        result["c"] = measure_state_size(rt)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    if args.profile == name:  # a separate pass: the profiler's overhead must not reach the figures
        log(f"[{name}] profiling {instances * SEQ_TASKS} more completions (cold) ...")
        profiler = cProfile.Profile()
        bench_completions(rt, instances, 0, profiler)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative")
        stats.print_stats(45)
        stats.sort_stats("tottime").print_stats(25)
        log(f"[{name}] cProfile of the measured Runtime.complete calls:\n{out.getvalue()}")
    engine.dispose()
    return result


# --------------------------------------------------------------------------- reporting
def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def table(results: dict[str, Any]) -> str:
    """A compact table: one column per backend; PASS/MISS next to each figure that has a target."""
    backends = [b for b in ("sqlite", "postgres") if b in results["backends"]]
    data = results["backends"]
    rows: list[tuple[str, ...]] = [("", *backends, "target")]

    def row(label: str, fmt: Callable[[str, dict[str, Any]], str], target: str = "") -> None:
        rows.append((label, *(fmt(b, data[b]) for b in backends), target))

    def judged(text: str, value: float, target: float) -> str:
        return f"{text} {verdict(value, target)}"

    a_ratio = TARGETS["ratio_sqlite"]
    pg_ratio = TARGETS["ratio_postgres"]
    row("(a) floor: SpiffWorkflow in memory, spec embedded, ms", lambda b, r: f"{r['a']['floor_ms']['median']:.2f}")
    row("(a) Runtime.complete, cold, ms", lambda b, r: f"{r['a']['complete_ms']['median']:.2f}")
    row("(a) Runtime.complete cold / floor",
        lambda b, r: judged(f"{r['a']['ratio']:.2f}x", r["a"]["ratio"], a_ratio if b == "sqlite" else pg_ratio),
        f"<= {a_ratio:g}x sqlite, {pg_ratio:g}x pg")
    if any("a_warm" in data[b] for b in backends):
        row("    warm workflow cache / its floor",
            lambda b, r: f"{r['a_warm']['ratio']:.2f}x" if "a_warm" in r else "")
    row("(b) start -> worklist -> complete -> end, ms",
        lambda b, r: judged(f"{r['b']['total_ms']['median']:.2f}", r["b"]["total_ms"]["median"], TARGETS["e2e_ms"]),
        f"<= {TARGETS['e2e_ms']:g} ms")
    row("    start / worklist page / complete, ms",
        lambda b, r: " / ".join(f"{v:.1f}" for v in r["b"]["parts_median_ms"].values()))
    if any("c" in data[b] for b in backends):
        row(f"(c) state after {SIZE_AFTER} tasks / SpiffWorkflow default",
            lambda b, r: judged(f"{r['c']['percent']:.1f}%", r["c"]["percent"], TARGETS["state_pct"])
            if "c" in r else "", f"<= {TARGETS['state_pct']:g}%")
        row("    characters: ours / SpiffWorkflow default",
            lambda b, r: f"{r['c']['state_chars']} / {r['c']['default_chars']}" if "c" in r else "")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths,
                                                                                                  strict=True)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    env = results["environment"]
    first = data[backends[0]]["a"]
    head = (f"Samflyt complete-task bench: medians of {first['completions']} completions ({SEQ_TASKS}-task sequence) "
            f"and {data[backends[0]]['b']['runs']} end-to-end runs per backend\n"
            f"SpiffWorkflow {env['spiffworkflow']}, Python {env['python']}, SQLAlchemy {env['sqlalchemy']}")
    pg = (f"postgres: {env['postgres']}" if "postgres" in backends
          else "postgres: skipped (no --postgres and no SAMFLYT_TEST_POSTGRES_URL)")
    return "\n".join([head, *lines, pg, f"total {results['seconds']} s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("SAMFLYT_TEST_POSTGRES_URL"),
                        help="PostgreSQL URL (default: $SAMFLYT_TEST_POSTGRES_URL); the bench uses its own "
                             f"database {BENCH_DB} on that server")
    parser.add_argument("--n", type=int, default=200,
                        help=f"completions measured per backend for (a), rounded up to whole {SEQ_TASKS}-task "
                             "instances (default 200)")
    parser.add_argument("--e2e", type=int, default=None, help="end-to-end runs for (b) (default: n/2, >= 20)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up instances (of 25 tasks) before (a)")
    parser.add_argument("--json", action="store_true", help="write results as JSON to stdout (table to stderr)")
    parser.add_argument("--profile", choices=["sqlite", "postgres"],
                        help="cProfile the measured Runtime.complete calls on that backend (printed to stderr)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--cold-only", action="store_true",
                        help="measure (a) cold only (every completion deserializes the state), not warm beside it")
    parser.add_argument("--backlog", type=int, default=BACKLOG,
                        help=f"tasks available to the user before (b) (default {BACKLOG})")
    args = parser.parse_args(argv)
    args.e2e = args.e2e or max(20, args.n // 2)

    results: dict[str, Any] = {
        "environment": {"python": platform.python_version(), "spiffworkflow": getattr(
            SpiffWorkflow, "__version__", _dist_version("SpiffWorkflow")), "sqlalchemy": sqlalchemy.__version__,
            "machine": platform.machine(), "postgres": None},
        "parameters": {"n": args.n, "e2e": args.e2e, "warmup_instances": args.warmup, "seq_tasks": SEQ_TASKS,
                       "backlog": args.backlog},
        "targets": TARGETS,
        "backends": {},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="samflyt-bench-") as folder:
        if not args.no_sqlite:
            results["backends"]["sqlite"] = run_backend("sqlite", sqlite_engine(folder), folder, args, size=True)
        if args.postgres:
            engine, where = postgres_engine(args.postgres)
            with engine.connect() as conn:
                server = conn.scalar(text("SHOW server_version"))
            results["environment"]["postgres"] = f"{server}, {where} on {engine.url.host}:{engine.url.port}"
            pg_folder = Path(folder) / "pg"
            pg_folder.mkdir()
            results["backends"]["postgres"] = run_backend("postgres", engine, str(pg_folder), args,
                                                          size=args.no_sqlite)
    if not results["backends"]:
        parser.error("nothing to run: --no-sqlite and no PostgreSQL URL")
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["verdicts"] = verdicts(results)

    text_table = table(results)
    if args.json:
        print(text_table, file=sys.stderr)
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        print(text_table)
    return 0


def verdicts(results: dict[str, Any]) -> dict[str, str]:
    out = {}
    for name, r in results["backends"].items():
        out[f"a_ratio_{name}"] = verdict(r["a"]["ratio"], TARGETS[f"ratio_{name}"])
        out[f"b_e2e_{name}"] = verdict(r["b"]["total_ms"]["median"], TARGETS["e2e_ms"])
        if "c" in r:
            out["c_state_size"] = verdict(r["c"]["percent"], TARGETS["state_pct"])
    return out


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    sys.exit(main())
