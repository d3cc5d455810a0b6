"""Deploying bundles: versions by content hash, and bad bundles refused whole with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.errors import DeployError, NotAuthorisedError
from engine.models import AuditEvent, ProcessModel, ProcessVersion
from tests.bpmn_builder import chain, definitions, end, process, service_task, start, user_task

GOOD = definitions(process("good", start(), user_task("work"), end(), chain("start", "work", "end")))


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return folder


def _counts(rt) -> tuple[int, int, int]:
    with rt.Session() as s:
        return (s.scalar(select(func.count()).select_from(ProcessModel)),
                s.scalar(select(func.count()).select_from(ProcessVersion)),
                s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "deploy")))


def test_same_content_creates_no_version_and_changed_content_does(rt, tmp_path):
    folder = _write(tmp_path / "b", {"good.bpmn": GOOD})
    assert [(r.version, r.created) for r in rt.deploy([str(folder)])] == [(1, True)]
    assert [(r.version, r.created) for r in rt.deploy([str(folder)])] == [(1, False)]
    iid = rt.start("good")
    changed = GOOD.replace('name="work"', 'name="Arbeid"')
    _write(folder, {"good.bpmn": changed})
    assert [(r.version, r.created) for r in rt.deploy([str(folder)])] == [(2, True)]
    assert rt.instance(iid).version == 1  # running instances stay on their version
    assert rt.tasks(iid)[0].title == "work"
    new = rt.start("good")
    assert rt.instance(new).version == 2 and rt.tasks(new)[0].title == "Arbeid"


def test_only_admins_deploy(rt, tmp_path):
    folder = _write(tmp_path / "b", {"good.bpmn": GOOD})
    with pytest.raises(NotAuthorisedError):
        rt.deploy([str(folder)], actor="ada")
    assert _counts(rt) == (0, 0, 0)


CALLER = definitions(process("caller", start(), '<bpmn:callActivity id="call_missing" calledElement="nowhere"/>',
                             end(), chain("start", "call_missing", "end")))
FORM_TASK = definitions(process("formed", start(), user_task("fill", form="fill.json"), end(),
                                chain("start", "fill", "end")))


@pytest.mark.parametrize(("files", "file", "element", "words"), [
    ({"bad.bpmn": GOOD.replace("</bpmn:process>", "</bpmn:proces>")}, "bad.bpmn", None, "malformed XML"),
    ({"bad.bpmn": GOOD.replace("<bpmn:userTask", "<bpmn:userTaskk").replace("</bpmn:userTask>", "")},
     "bad.bpmn", None, "userTaskk"),
    ({"caller.bpmn": CALLER}, "caller.bpmn", "call_missing", "nowhere"),
    ({"svc.bpmn": definitions(process("svc", start(), service_task("charge", "ledger.nope"), end(),
                                      chain("start", "charge", "end")))}, "svc.bpmn", "charge",
     "unknown connector 'ledger.nope'"),
    ({"formed.bpmn": FORM_TASK}, "formed.bpmn", "fill", "form file 'fill.json' is not in the bundle"),
    ({"formed.bpmn": FORM_TASK, "fill.json": "{not json"}, "formed.bpmn", "fill", "not valid JSON"),
    ({"formed.bpmn": FORM_TASK, "fill.json": json.dumps({"type": "object", "properties": {"a": {"type": "date"}}})},
     "formed.bpmn", "fill", "unsupported type 'date'"),
    ({"formed.bpmn": FORM_TASK, "fill.json": json.dumps({"type": "object", "required": ["b"], "properties": {}})},
     "formed.bpmn", "fill", "'required'"),
    ({"formed.bpmn": FORM_TASK, "fill.json": json.dumps({"properties": {"date": {"type": "string"}}})},
     "formed.bpmn", "fill", "would hide the script helper"),
])
def test_bad_bundles_are_refused_whole(rt, tmp_path, files, file, element, words):
    folder = _write(tmp_path / "b", {"good.bpmn": GOOD, **files})
    with pytest.raises(DeployError) as err:
        rt.deploy([str(folder)], actor="admin")
    message = str(err.value)
    assert err.value.file == file and f"file {file}" in message
    if element:
        assert err.value.element == element and f"element {element}" in message
    assert words in message
    assert _counts(rt) == (0, 0, 0)  # nothing half-deployed: not even the good process


def test_call_activity_and_dmn_resolve_within_the_bundle(rt, tmp_path):
    called = definitions(process("inner", start(), user_task("inner_work"), end(), chain("start", "inner_work", "end")))
    caller = definitions(process("outer", start(), '<bpmn:callActivity id="call" calledElement="inner"/>', end(),
                                 chain("start", "call", "end")), id="defs2")
    folder = _write(tmp_path / "b", {"outer.bpmn": caller, "inner.bpmn": called})
    results = {r.process_id for r in rt.deploy([str(folder)])}
    assert results == {"outer", "inner"}
    iid = rt.start("outer")
    assert [t.name for t in rt.tasks(iid)] == ["inner_work"]
