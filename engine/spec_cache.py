"""Per-process caches: parsed process specs by (immutable) version id, warm workflows by instance.

Deserializing a spec costs more than a whole task completion, so every instance of a version shares
one parsed copy. SpiffWorkflow 3 treats specs as read-only at run time (multi-instance children are
task objects, not new specs); a test works two parallel multi-instance workflows against one cached
spec from two threads to keep it that way.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import select
from sqlalchemy.orm import Session

from .bpmn_loader import FORM_PROPERTIES, find_file, find_path, stored_files
from .errors import NotFoundError
from .forms import Form, build_form
from .models import ProcessModel, ProcessVersion
from .serialization import VERSION, load_specs


@dataclass
class CachedVersion:
    """A deployed version's parsed specs and files, shared by every instance of that version.

    Spec objects are read-only at run time in SpiffWorkflow 3 (multi-instance children are task
    objects, not new specs), so sharing them between instances and threads is safe; a test runs two
    parallel multi-instance workflows against one cached spec at once to keep it that way.
    """

    version_id: int
    process_id: str
    version: int
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    files: dict[str, str]
    #: the specs as stored, kept only when an older SpiffWorkflow serializer wrote them: the states of
    #: that time are migrated together with them (:func:`engine.serialization.load_state`)
    specs_text: str | None = None
    _forms: dict[str, Form] = field(default_factory=dict)
    _properties: dict[str, list[str]] = field(default_factory=dict)
    _fields: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def data_fields(self, language: str) -> dict[str, dict[str, Any]]:
        """What the bundle's forms call the data fields they ask for, in ``language``: ``{name: {"label",
        "kind", "options"}}`` with ``kind`` one of ``text``, ``integer``, ``number``, ``boolean``, ``date``
        and ``options`` the chosen code's words. An instance page shows a case's data by these labels; a
        field no form asks for is the process's own bookkeeping. Read once per version and language."""
        cached = self._fields.get(language)
        if cached is None:
            cached = {}
            for path, ui_key in self._form_paths():
                try:
                    schema = json.loads(self.files[path])
                except ValueError:
                    continue
                properties = schema.get("properties") if isinstance(schema, dict) else None
                if not isinstance(properties, dict):
                    continue
                texts = (self.form_texts(path, language) or {}).get("fields", {}) if language != "nb" else {}
                ui_text = find_file(self.files, ui_key) if ui_key else None
                ui = json.loads(ui_text) if ui_text else {}
                for name, prop in properties.items():
                    if name in cached or not isinstance(prop, dict) or not prop.get("title"):
                        continue
                    text = texts.get(name) or {}
                    codes = [str(c) for c in prop.get("enum", [])]
                    names = (ui.get(name) or {}).get("ui:enumNames") or codes
                    options = dict(zip(codes, map(str, names), strict=False)) | (text.get("options") or {})
                    kind = prop.get("type", "string")
                    kind = "date" if prop.get("format") == "date" else kind if kind in (
                        "integer", "number", "boolean") else "text"
                    cached[name] = {"label": text.get("label") or prop["title"], "kind": kind, "options": options}
            self._fields[language] = cached
        return cached

    def _form_paths(self) -> list[tuple[str, str | None]]:
        """(form path, UI schema name) of the forms this version's own tasks and start event use (its called
        processes' too), in the order of their elements: a bundle's other processes may use the same field
        names otherwise."""
        found: dict[str, str | None] = {}
        for spec in [self.spec, *self.subprocess_specs.values()]:
            for task_spec in spec.task_specs.values():
                properties = ((getattr(task_spec, "extensions", None) or {}).get("properties") or {})
                key = properties.get(FORM_PROPERTIES[0])
                path = find_path(self.files, key) if key else None
                if path and path not in found:
                    found[path] = properties.get(FORM_PROPERTIES[1])
        return list(found.items())

    def property_values(self, name: str) -> list[str]:
        """The values of extension property ``name`` on the top process's elements, read once per version:
        a save asks for some of them (e.g. ``samflyt.titleField``) every step."""
        values = self._properties.get(name)
        if values is None:
            values = [value for spec in self.spec.task_specs.values()
                      if (value := ((getattr(spec, "extensions", None) or {}).get("properties") or {}).get(name))]
            self._properties[name] = values
        return values

    def form_texts(self, key: str | None, language: str) -> dict[str, Any] | None:
        """A form's labels in another language: ``<form>.<language>.json`` next to the form, if deployed.

        ``{"title": ..., "fields": {"budget.party": {"label", "help", "options": {code: label}}}}``; paths
        have no array indexes. Forms are written in the default language; these only replace texts.
        """
        if not key or not key.endswith(".json"):
            return None
        text = find_file(self.files, f"{key[:-5]}.{language}.json")
        return json.loads(text) if text else None

    def form(self, key: str | None, ui_key: str | None = None) -> Form | None:
        if not key:
            return None
        form = self._forms.get(key)
        if form is None:
            schema_text = find_file(self.files, key)
            if schema_text is None:  # deploy checks this; a guard for hand-edited rows
                raise NotFoundError(f"form file {key} is missing from version {self.version_id}")
            ui_text = find_file(self.files, ui_key) if ui_key else None
            form = build_form(key, json.loads(schema_text), json.loads(ui_text) if ui_text else None)
            self._forms[key] = form
        return form


def prepare_event_subprocesses(spec: BpmnProcessSpec) -> None:
    """Wire event subprocesses the way SpiffWorkflow wires them on their first trigger, up front.

    ``BpmnStartTask.trigger_wf`` connects Start -> event subprocess -> EndJoin the first time an event
    subprocess is triggered. With the spec stored once and shared, that would change the spec for every
    later instance (which then started the event subprocess at once), and an instance loaded in another
    process would find its triggered subprocess with no way to the end. So the link to the end is made
    here for every instance alike, and Start is recorded as an input only (not as an output, which
    would start the subprocess with every instance), so ``trigger_wf`` finds nothing left to connect.
    """
    start = spec.start
    for name in getattr(start, "trigger_specs", []):
        task_spec = spec.task_specs.get(name)
        if task_spec is None:
            continue
        if start.name not in task_spec._inputs:
            task_spec._inputs.append(start.name)
        if spec.end not in task_spec.outputs:
            task_spec.connect(spec.end)


class SpecCache:
    """Per-process cache of parsed specs keyed by version id (versions are immutable).

    ``enabled=False`` parses the spec on every request: what a fresh process sees, used by tests to prove
    that nothing an instance needs lives only in a cached object.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._versions: dict[int, CachedVersion] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, version_id: int) -> CachedVersion:
        cached = self._versions.get(version_id)
        if cached is not None:
            return cached
        # the only place a version's blobs are read: once per version id (per call when disabled)
        row = session.execute(select(ProcessModel.process_id, ProcessVersion.version, ProcessVersion.spec_json,
                                     ProcessVersion.files_json, ProcessVersion.file_hashes)
                              .join(ProcessModel, ProcessModel.id == ProcessVersion.model_id)
                              .where(ProcessVersion.id == version_id)).one_or_none()
        if row is None:
            raise NotFoundError(f"process version {version_id} does not exist")
        spec, subs, serializer_version = load_specs(row.spec_json)
        for process_spec in (spec, *subs.values()):
            prepare_event_subprocesses(process_spec)
        cached = CachedVersion(version_id, row.process_id, row.version, spec, subs,
                               stored_files(session, row.files_json, row.file_hashes),
                               None if serializer_version == VERSION else row.spec_json)
        if not self.enabled:
            return cached
        with self._lock:
            return self._versions.setdefault(version_id, cached)

    def clear(self) -> None:
        with self._lock:
            self._versions.clear()


class WorkflowCache:
    """Deserialized workflows of recently worked instances, keyed by instance id and lock version.

    Loading a workflow costs about as much as the rest of a task completion. After a unit commits, its
    workflows are put here with the instance's new ``lock_version``; the next unit that locks the same
    instance at the same version takes the object instead of deserializing the state again. ``take``
    removes the entry, so an object is never used by two units at once; a unit that fails puts nothing
    back, and a change by another process bumps the version, so a stale object is never used.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[int, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, instance_id: int, lock_version: int) -> BpmnWorkflow | None:
        with self._lock:
            entry = self._entries.pop(instance_id, None)
        if entry is not None and entry[0] == lock_version:
            return entry[1]
        return None

    def put(self, instance_id: int, lock_version: int, workflow: BpmnWorkflow) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._entries[instance_id] = (lock_version, workflow)
            self._entries.move_to_end(instance_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
