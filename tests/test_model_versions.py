"""Model versions cost the same to use after 50 deploys as after one: the latest version is found by a
query over small columns, the spec and file blobs of a version are read only when it is parsed into the
spec cache, and a bundle's files are stored once per content however often they are deployed again."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, func, select, text, update

from engine.models import BundleFile, ProcessVersion
from engine.runtime import Runtime
from tests import bpmn_builder as b

FORM = {"title": "Hva gjelder saken?", "type": "object", "required": ["subject"],
        "properties": {"subject": {"type": "string", "title": "Emne"}}}
BLOB_MARKERS = ("spec_json", "files_json", "bundle_files")


def _main(name: str) -> str:
    start_props = b.props(**{"samflyt.starterRoles": "applicant", "formJsonSchemaFilename": "main_start.json"})
    return b.definitions(b.process(
        "main", b.start("start", f"<bpmn:extensionElements>{start_props}</bpmn:extensionElements>"),
        b.user_task("write", "Skriv"), b.end(), b.chain("start", "write", "end"), name=name), id="main_defs")


PINGED = b.definitions(b.message("msg_ping", "ping"), b.process(  # written once: flow ids are counted
    "pinged", b.event_start("start", b.message_event("msg_ping")), b.user_task("look"), b.end(),
    b.chain("start", "look", "end"), name="Ping"), id="pinged_defs")


def _write_bundle(folder: Path, deploy_number: int) -> None:
    """The same bundle each time except the main process's name, so every deploy makes new versions."""
    folder.mkdir(exist_ok=True)
    (folder / "main.bpmn").write_text(_main(f"Sak {deploy_number}"), encoding="utf-8")
    (folder / "pinged.bpmn").write_text(PINGED, encoding="utf-8")
    (folder / "main_start.json").write_text(json.dumps(FORM), encoding="utf-8")
    (folder / "names.en.json").write_text(json.dumps({"main": {"write": "Write"}}), encoding="utf-8")


class Counter:
    """SQL statements run, those that read version blobs, and ProcessVersion rows loaded as objects."""

    def __init__(self, engine) -> None:
        self.statements: list[str] = []
        self.versions_loaded = 0
        self.engine = engine

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    def _on_load(self, target, context):
        self.versions_loaded += 1

    @contextmanager
    def counting(self):
        self.statements, self.versions_loaded = [], 0
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        event.listen(ProcessVersion, "load", self._on_load)
        try:
            yield self
        finally:
            event.remove(self.engine, "before_cursor_execute", self._on_execute)
            event.remove(ProcessVersion, "load", self._on_load)

    def cost(self) -> dict[str, int]:
        blob_reads = [s for s in self.statements
                      if s.lstrip().upper().startswith("SELECT") and any(m in s for m in BLOB_MARKERS)]
        return {"statements": len(self.statements), "blob_reads": len(blob_reads),
                "versions_loaded": self.versions_loaded}


def _measure(db_engine, connectors) -> dict[str, dict[str, int]]:
    """What the start page, starting an instance and an undeliverable message cost on a fresh runtime
    (cold spec cache), then again on the same runtime (warm)."""
    rt = Runtime(db_engine, connectors=connectors)
    counter = Counter(db_engine)
    costs: dict[str, dict[str, int]] = {}

    def measure(label: str, call) -> None:
        with counter.counting():
            call()
        costs[label] = counter.cost()

    measure("startable cold", lambda: rt.startable("ada"))
    measure("startable warm", lambda: rt.startable("ada"))
    measure("start_as", lambda: rt.start_as("main", "ada", {"subject": "x"}))
    measure("start", lambda: rt.start("main", actor="ada"))
    measure("undeliverable message", lambda: rt.send_message("nobody waits for this"))
    measure("models", rt.models)
    measure("element names", lambda: rt.element_names("en"))
    rt2 = Runtime(db_engine, connectors=connectors)  # a fresh process: nothing cached
    measure("start_as cold", lambda: rt2.start_as("main", "ada", {"subject": "y"}))
    measure("undeliverable message cold", lambda: rt2.send_message("nobody waits for this"))
    return costs


def test_fifty_deploys_cost_no_more_than_one(rt, db_engine, connectors, tmp_path: Path):
    folder = tmp_path / "bundle"
    _write_bundle(folder, 1)
    rt.deploy([str(folder)], actor="admin")
    once = _measure(db_engine, connectors)
    for n in range(2, 51):
        _write_bundle(folder, n)
        assert rt.deploy([str(folder)], actor="admin")[0].created
    fifty = _measure(db_engine, connectors)
    print(json.dumps({"1 deploy": once, "50 deploys": fifty}, indent=1))
    assert fifty == once
    for label, cost in once.items():
        assert cost["versions_loaded"] == 0, label  # versions are read as columns, never whole rows
        # blobs are read only to parse a version not in the spec cache: its row and its files, once
        parsed = {"startable cold": 2, "start_as cold": 1, "element names": 1}.get(label, 0)
        assert cost["blob_reads"] <= 2 * parsed, (label, cost)
    assert rt.startable("ada")[0]["name"] == "Sak 50"
    assert rt.instance(rt.start("main")).version == 50
    started = rt.send_message("ping")
    assert started.status == "delivered" and rt.instance(started.instance_id).version == 50
    models = {m["process_id"]: m for m in rt.models()}
    assert (models["main"]["versions"], models["main"]["latest_version"], models["pinged"]["versions"]) == (50, 50, 50)
    assert rt.element_names("en")["main"] == {"write": "Write"}


def test_unchanged_files_are_stored_once(rt, db_engine, tmp_path: Path):
    folder = tmp_path / "bundle"
    sizes = {}
    for n in range(1, 51):
        _write_bundle(folder, n)
        rt.deploy([str(folder)], actor="admin")
        sizes = {p.name: len(p.read_text(encoding="utf-8").encode()) for p in folder.iterdir()}
    with db_engine.connect() as conn:
        stored = conn.execute(select(func.count(), func.sum(func.length(BundleFile.content)))).one()
        old_style = conn.scalar(select(func.count()).select_from(ProcessVersion)
                                .where(ProcessVersion.files_json != ""))
        versions = conn.scalar(select(func.count()).select_from(ProcessVersion))
    # main.bpmn changed 50 times; pinged.bpmn, the form and the names are stored once
    assert versions == 100 and old_style == 0
    assert stored[0] == 50 + 3
    assert stored[1] <= 50 * sizes["main.bpmn"] + sizes["pinged.bpmn"] + sizes["main_start.json"] \
        + sizes["names.en.json"]
    # the files are what was deployed
    iid = rt.start("main")
    assert 'name="Sak 50"' in rt.diagram(iid)
    assert rt.form_for(rt.tasks(iid)[0].id) is None
    assert rt.startable("ada")[0]["form"] is not None


def test_versions_deployed_before_bundle_files_still_work(rt, db_engine, connectors, tmp_path: Path):
    """A version written before migration 0013 holds its files in ``files_json``: instances of it go on."""
    folder = tmp_path / "bundle"
    _write_bundle(folder, 1)
    rt.deploy([str(folder)], actor="admin")
    iid = rt.start_as("main", "ada", {"subject": "old"})
    files = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    with db_engine.begin() as conn:  # as an older engine wrote it
        conn.execute(update(ProcessVersion).values(files_json=json.dumps(files), file_hashes=None))
        conn.execute(text("DELETE FROM bundle_files"))
    fresh = Runtime(db_engine, connectors=connectors)
    assert 'name="Sak 1"' in fresh.diagram(iid)
    assert fresh.element_names("en")["main"] == {"write": "Write"}
    assert fresh.startable("ada")[0]["form"] is not None
    task = fresh.tasks(iid)[0].id
    fresh.complete(task, "admin", {})
    assert fresh.instance(iid).status == "completed"
    _write_bundle(folder, 2)  # a new deploy stores its files the new way, next to the old version
    fresh.deploy([str(folder)], actor="admin")
    assert fresh.instance(fresh.start_as("main", "ada", {"subject": "new"})).version == 2
    assert fresh.startable("ada")[0]["name"] == "Sak 2"
