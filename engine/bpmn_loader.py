"""Deploy bundles of BPMN, DMN and form files: parse, validate, version by content hash.

A bundle is a folder (or a list of files): ``*.bpmn``, ``*.dmn`` and the JSON form files its user tasks
reference. Everything is checked before anything is written -- XML against the BPMN/DMN XSDs, call
activities and DMN references resolved within the bundle, service-task operators against the connector
registry, form files present and usable -- so a bad bundle fails with one message naming the file and
element, and leaves the database unchanged.

Each process in the bundle becomes (or stays) a :class:`~engine.models.ProcessModel`. Deploying
identical content again creates no version; changed content creates a new version of every process in
the bundle, while running instances stay on the version they started on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CONDITIONAL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TIMER_EVENT_XPATH,
)
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.event_parsers import SpiffStartEventParser
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.specs.defaults import CallActivity, ServiceTask
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from . import sandbox
from .connectors import ConnectorRegistry
from .errors import DeployError, NotFoundError
from .forms import FormDefinitionError, build_form
from .models import AuditEvent, BundleFile, ProcessModel, ProcessVersion
from .scripting import reserved_names
from .serialization import dump_specs, dumps

BPMN_SUFFIXES = {".bpmn", ".bpmn20.xml"}
FORM_PROPERTIES = ("formJsonSchemaFilename", "formUiSchemaFilename")
#: Extension the loader sets on event subprocess start events: SpiffWorkflow ignores isInterrupting.
INTERRUPTING_EXTENSION = "samflyt.interrupting"


@dataclass
class ParsedProcess:
    process_id: str
    name: str | None
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    start_messages: list[str]


@dataclass
class Bundle:
    """A parsed, validated bundle, ready to be written."""

    files: dict[str, str]
    content_hash: str
    processes: list[ParsedProcess] = field(default_factory=list)


@dataclass
class DeployResult:
    process_id: str
    version: int
    created: bool  # False when the same content was already deployed


def collect_files(paths: Iterable[str | Path]) -> dict[str, str]:
    """Read a bundle from folders and files into ``{relative name: text}``."""
    files: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            members = sorted(p for p in path.rglob("*") if p.is_file() and _is_bundle_file(p))
            entries = [(p.relative_to(path).as_posix(), p) for p in members]
        elif path.is_file():
            entries = [(path.name, path)]
        else:
            raise DeployError("no such file or folder", file=str(path))
        for name, member in entries:
            if name in files:
                raise DeployError("two files in the bundle have the same name", file=name)
            try:
                files[name] = member.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise DeployError("not UTF-8 text", file=str(member)) from None
    if not any(_suffix(n) in BPMN_SUFFIXES for n in files):
        raise DeployError("the bundle holds no .bpmn file")
    return files


def _is_bundle_file(p: Path) -> bool:
    return _suffix(p.name) in BPMN_SUFFIXES | {".dmn", ".json"}


def _suffix(name: str) -> str:
    return ".bpmn20.xml" if name.endswith(".bpmn20.xml") else Path(name).suffix.lower()


def content_hash(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


def _xml(name: str, text: str) -> etree._Element:
    try:
        return etree.fromstring(text.encode("utf-8"), parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError as exc:
        raise DeployError(f"malformed XML: {exc.msg}", file=name, line=exc.lineno) from None


def _deploy_error(exc: Exception, default_file: str | None = None) -> DeployError:
    if isinstance(exc, ValidationException):
        msg = str(exc.args[0]) if exc.args else str(exc)
        return DeployError(msg, file=exc.file_name or default_file, element=exc.id or None,
                           line=exc.line_number or None)
    element = getattr(exc, "task_spec", None)
    element_id = getattr(element, "bpmn_id", None) or getattr(exc, "task_id", None)
    return DeployError(str(exc), file=default_file, element=element_id)


class _StartEventParser(SpiffStartEventParser):
    """SpiffWorkflow 3.2 reads no error or escalation start event: it parses one as a plain start
    event, so an error event subprocess ran as soon as the process started. Read them."""

    def create_task(self):
        event_definition = self.get_event_definition([
            MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, TIMER_EVENT_XPATH, CONDITIONAL_EVENT_XPATH,
            ERROR_EVENT_XPATH, ESCALATION_EVENT_XPATH])
        task = self._create_task(event_definition)
        self.spec.start.connect(task)
        return task


class _Parser(SpiffBpmnParser):
    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("startEvent"): (_StartEventParser, SpiffBpmnParser.OVERRIDE_PARSER_CLASSES[full_tag("startEvent")][1]),
    }


def parse_bundle(files: dict[str, str], connectors: ConnectorRegistry) -> Bundle:
    """Parse and validate everything in ``files``; raise :class:`DeployError` on the first problem."""
    parser = _Parser(validator=VALIDATOR)
    interrupting: dict[str, bool] = {}  # event subprocess start event id -> isInterrupting
    for name in sorted(files):
        suffix = _suffix(name)
        if suffix not in BPMN_SUFFIXES | {".dmn"}:
            continue
        node = _xml(name, files[name])
        try:
            if suffix == ".dmn":
                parser.add_dmn_xml(node, filename=name)
            else:
                parser.add_bpmn_xml(node, filename=name)
                interrupting.update(_event_subprocess_starts(node))
        except (ValidationException, SpiffWorkflowException) as exc:
            raise _deploy_error(exc, name) from None
        except etree.LxmlError as exc:
            raise DeployError(f"invalid XML: {exc}", file=name) from None

    bundle = Bundle(files=files, content_hash=content_hash(files))
    process_ids = sorted(parser.get_process_ids())
    if not process_ids:
        raise DeployError("the bundle defines no process")
    for process_id in process_ids:
        process_parser = parser.get_process_parser(process_id)
        file_name = getattr(process_parser, "filename", None)
        try:
            spec = parser.get_spec(process_id)
            known = set(parser.get_process_ids())
            for ts in spec.task_specs.values():
                called = getattr(ts, "spec", None)
                if isinstance(ts, CallActivity) and called not in known:
                    raise DeployError(f"called element '{called}' is not a process in the bundle "
                                      f"(known: {', '.join(sorted(known))})", file=file_name, element=ts.bpmn_id)
            subprocess_specs = parser.get_subprocess_specs(process_id)
        except (ValidationException, SpiffWorkflowException) as exc:
            raise _deploy_error(exc, file_name) from None
        missing = [name for name, sp in subprocess_specs.items() if sp is None]
        if missing:  # pragma: no cover - SpiffWorkflow raises first; kept as a guard
            raise DeployError(f"called element '{missing[0]}' is not in the bundle", file=file_name)
        for sp in [spec, *subprocess_specs.values()]:
            _check_task_specs(sp, files, connectors)
            _mark_interrupting(sp, interrupting)
        start_messages = sorted({
            ts.event_definition.name for ts in spec.task_specs.values()
            if isinstance(ts, StartEvent) and isinstance(ts.event_definition, MessageEventDefinition)
        })
        bundle.processes.append(ParsedProcess(process_id, process_parser.get_name(), spec,
                                              subprocess_specs, start_messages))
    return bundle


def _event_subprocess_starts(node: etree._Element) -> dict[str, bool]:
    """SpiffWorkflow ignores ``isInterrupting`` on event subprocess start events; we keep it."""
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
    return {start.get("id"): start.get("isInterrupting", "true").lower() != "false"
            for start in node.xpath(".//bpmn:subProcess[@triggeredByEvent='true']/bpmn:startEvent", namespaces=ns)}


def _mark_interrupting(spec: BpmnProcessSpec, interrupting: dict[str, bool]) -> None:
    for ts in spec.task_specs.values():
        if isinstance(ts, StartEvent) and ts.bpmn_id in interrupting:
            ts.extensions = {**(getattr(ts, "extensions", None) or {}),
                             INTERRUPTING_EXTENSION: interrupting[ts.bpmn_id]}


def _check_task_specs(spec: BpmnProcessSpec, files: dict[str, str], connectors: ConnectorRegistry) -> None:
    for ts in spec.task_specs.values():
        file_name = spec.file
        if isinstance(ts, ServiceTask) and ts.operation_name not in connectors:
            known = ", ".join(connectors.names()) or "none registered"
            raise DeployError(f"unknown connector '{ts.operation_name}' (known: {known})",
                              file=file_name, element=ts.bpmn_id)
        for kind in ("script", "prescript", "postscript"):  # refused now rather than when the step runs
            source = getattr(ts, kind, None)
            if isinstance(source, str) and source.strip():
                try:
                    sandbox.compile_script(source)
                except SyntaxError as exc:
                    raise DeployError(f"the {kind} is not allowed in the script sandbox: {exc}",
                                      file=file_name, element=ts.bpmn_id) from None
        props = (getattr(ts, "extensions", None) or {}).get("properties", {})
        options = props.get("samflyt.startOptions")
        if options and options not in connectors:
            raise DeployError(f"unknown connector '{options}' in samflyt.startOptions", file=file_name,
                              element=ts.bpmn_id)
        schema_name, ui_name = (props.get(p) for p in FORM_PROPERTIES)
        if schema_name:
            json_schema = _load_json(files, schema_name, file_name, ts.bpmn_id)
            ui_schema = _load_json(files, ui_name, file_name, ts.bpmn_id) if ui_name else None
            try:
                build_form(schema_name, json_schema, ui_schema)
            except FormDefinitionError as exc:
                raise DeployError(f"invalid form {schema_name}: {exc}", file=file_name,
                                  element=ts.bpmn_id) from None
            clash = sorted(reserved_names() & set(json_schema.get("properties", {})))
            if clash:
                raise DeployError(f"form {schema_name}: field name(s) {', '.join(clash)} would hide the script "
                                  "helper(s) of that name; rename the field(s)", file=file_name, element=ts.bpmn_id)


def _load_json(files: dict[str, str], name: str, file_name: str | None, element: str) -> Any:
    text = find_file(files, name)
    if text is None:
        raise DeployError(f"form file '{name}' is not in the bundle", file=file_name, element=element)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeployError(f"form file '{name}' is not valid JSON: {exc.msg} (line {exc.lineno})",
                          file=file_name, element=element) from None


def find_path(files: dict[str, str], name: str) -> str | None:
    """A bundle file's path by its name as referenced from BPMN: exact relative path, else unique basename."""
    if name in files:
        return name
    matches = [path for path in files if Path(path).name == name]
    return matches[0] if len(matches) == 1 else None


def find_file(files: dict[str, str], name: str) -> str | None:
    """A bundle file's text by its name as referenced from BPMN (see :func:`find_path`)."""
    path = find_path(files, name)
    return files[path] if path is not None else None


def store_files(session: Session, files: dict[str, str]) -> str:
    """Store the texts of ``files`` not stored yet in ``bundle_files``, one row per content (so a bundle
    deployed again with one file changed adds that file only); returns the version's ``file_hashes``."""
    hashes = {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in sorted(files.items())}
    known = set(session.scalars(select(BundleFile.sha256).where(BundleFile.sha256.in_(set(hashes.values())))))
    new = {sha: files[name] for name, sha in hashes.items() if sha not in known}
    if new:
        insert = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert
        session.execute(insert(BundleFile).on_conflict_do_nothing(index_elements=["sha256"]),  # a parallel deploy
                        [{"sha256": sha, "content": text} for sha, text in new.items()])
    return json.dumps(hashes, ensure_ascii=False)


def stored_texts(session: Session, hashes: Iterable[str]) -> dict[str, str]:
    """``{sha256: text}`` of stored bundle files."""
    wanted = set(hashes)
    if not wanted:
        return {}
    return dict(session.execute(select(BundleFile.sha256, BundleFile.content)
                                .where(BundleFile.sha256.in_(wanted))).all())


def stored_files(session: Session, files_json: str | None, file_hashes: str | None) -> dict[str, str]:
    """A version's ``{filename: text}``: from ``bundle_files`` by its ``file_hashes``, or, for a version
    deployed before those (``file_hashes`` None), from its own ``files_json``."""
    if file_hashes is None:
        return json.loads(files_json or "{}")
    names = json.loads(file_hashes)
    texts = stored_texts(session, names.values())
    missing = sorted(name for name, sha in names.items() if sha not in texts)
    if missing:  # pragma: no cover - rows are written together; a guard for hand-edited databases
        raise NotFoundError(f"stored bundle file(s) missing: {', '.join(missing)}")
    return {name: texts[sha] for name, sha in names.items()}


def deploy(session: Session, bundle: Bundle, actor: str | None = None) -> list[DeployResult]:
    """Write the bundle's processes as model versions, in the caller's transaction.

    The bundle's files go to ``bundle_files`` once per content (:func:`store_files`); each new version
    records their hashes, not the files.
    """
    results = []
    file_hashes: str | None = None
    for proc in bundle.processes:
        model = session.scalar(select(ProcessModel).where(ProcessModel.process_id == proc.process_id))
        if model is None:
            model = ProcessModel(process_id=proc.process_id, name=proc.name)
            session.add(model)
            session.flush()
        existing = session.scalar(select(ProcessVersion.version).where(
            ProcessVersion.model_id == model.id, ProcessVersion.content_hash == bundle.content_hash))
        if existing is not None:
            results.append(DeployResult(proc.process_id, existing, False))
            continue
        number = (session.scalar(select(func.max(ProcessVersion.version))
                                 .where(ProcessVersion.model_id == model.id)) or 0) + 1
        model.name = proc.name or model.name
        if file_hashes is None:
            file_hashes = store_files(session, bundle.files)
        session.add(ProcessVersion(
            model_id=model.id, version=number, content_hash=bundle.content_hash,
            spec_json=dump_specs(proc.spec, proc.subprocess_specs), files_json="", file_hashes=file_hashes,
            start_messages=json.dumps(proc.start_messages), deployed_by=actor,
        ))
        results.append(DeployResult(proc.process_id, number, True))
    session.add(AuditEvent(actor=actor, action="deploy", details=dumps({
        "content_hash": bundle.content_hash, "files": sorted(bundle.files),
        "versions": [{"process_id": r.process_id, "version": r.version, "created": r.created}
                     for r in results],
    })))
    session.flush()
    return results
