"""The model repository: deploying bundles and finding what is deployed, without loading version blobs."""

from __future__ import annotations

import json
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_task_spec import BpmnTaskSpec
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from sqlalchemy import func, select

from .. import authz
from ..bpmn_loader import (
    FORM_PROPERTIES,
    Bundle,
    DeployResult,
    collect_files,
    find_file,
    find_path,
    parse_bundle,
    stored_texts,
)
from ..bpmn_loader import deploy as write_bundle
from ..connectors import StepContext
from ..errors import (
    NotAuthorisedError,
)
from ..forms import Form
from ..models import (
    ProcessModel,
    ProcessVersion,
)
from ..spec_cache import CachedVersion
from ..texts import _
from .core import Core, latest_versions

#: A start event's connector that gives its form's choices (``options_from_task_data_var``): the start form
#: has no task data to read them from, so the connector, called with the starter as ``ctx.actor``, returns
#: that data (e.g. ``{"open_calls": [{"value": 7, "label": "..."}]}``). The choices are read when the form is
#: shown and again when the start is validated, so a value no longer offered is refused.
START_OPTIONS_PROPERTY = "samflyt.startOptions"


def start_event(version: CachedVersion) -> BpmnTaskSpec | None:
    """The top-level start event a person starts the process from: a plain one (no message, timer...)."""
    for spec in version.spec.task_specs.values():
        if isinstance(spec, StartEvent) and isinstance(spec.event_definition, NoneEventDefinition):
            return spec
    return None


def start_form(core: Core, session: Any, version: CachedVersion, properties: dict[str, Any],
               username: str) -> Form | None:
    """The start event's form as ``username`` is offered it: its choices filled by the start event's
    :data:`START_OPTIONS_PROPERTY` connector, if it names one, in ``session``."""
    form = version.form(*(properties.get(p) for p in FORM_PROPERTIES))
    if form is None or not form.takes_options_from_data:
        return form
    name = properties.get(START_OPTIONS_PROPERTY)
    data = core.connectors.call(name, {}, StepContext(session, actor=username)) if name else {}
    return form.for_data(data if isinstance(data, dict) else {})


class ModelRepository:
    """Deployed process models: deploy, their names (per language), the latest versions, what people may start."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._names: dict[tuple[tuple[int, ...], str], dict[str, dict[str, str]]] = {}

    def deploy(self, paths: list[str], actor: str | None = None) -> list[DeployResult]:
        """Parse, validate and deploy a bundle. When ``actor`` is given it must hold the admin role."""
        bundle: Bundle = parse_bundle(collect_files(paths), self.core.connectors)
        with self.core.unit() as unit:
            if actor is not None and not authz.is_admin(self.core.user(unit.session, actor)):
                raise NotAuthorisedError(_("%(user)s may not deploy: %(reason)s", user=actor,
                                                       reason=_("only admins deploy (scripts run as trusted code)")))
            return write_bundle(unit.session, bundle, actor)

    def element_names(self, language: str) -> dict[str, dict[str, str]]:
        """Element names in ``language`` from the ``names.<language>.json`` files deployed with the latest
        version of each model: ``{process id: {element id: name, "": process name}}``. Diagrams are named in
        the default language (bokmål); these translate what worklists and instance pages show.

        Versions never change, so the result is kept per set of latest versions: a page asks one cheap
        query, and the bundle files are read again only after a deploy.
        """
        with self.core.Session() as s:
            ids = tuple(sorted(s.scalars(latest_versions(ProcessVersion.id))))
            key = (ids, language)
            if key not in self._names:
                wanted = f"names.{language}.json"
                found: list[tuple[str | None, str | None]] = []  # per version: (its text, or the file's hash)
                for files_json, file_hashes in s.execute(select(
                        ProcessVersion.files_json, ProcessVersion.file_hashes)
                        .where(ProcessVersion.id.in_(ids)).order_by(ProcessVersion.id)):
                    if file_hashes is None:  # deployed before bundle_files: its files are its own
                        found.append((find_file(json.loads(files_json), wanted), None))
                    else:
                        hashes = json.loads(file_hashes)
                        path = find_path(hashes, wanted)
                        found.append((None, hashes[path] if path else None))
                texts = stored_texts(s, [sha for _, sha in found if sha])
                names: dict[str, dict[str, str]] = {}
                for own, sha in found:
                    text = texts.get(sha) if sha else own
                    for process_id, mapping in (json.loads(text) if text else {}).items():
                        names.setdefault(process_id, {}).update(mapping)
                self._names = {k: v for k, v in self._names.items() if k[0] == ids}  # older sets are stale
                self._names[key] = names
        return self._names[key]

    def process_name(self, process_id: str) -> str | None:
        """A deployed process's name (the BPMN process element's), without loading its versions."""
        with self.core.Session() as s:
            return s.scalar(select(ProcessModel.name).where(ProcessModel.process_id == process_id))

    def models(self) -> list[dict[str, Any]]:
        """Every model with its number of versions and its latest version, by aggregate queries."""
        counts = (select(ProcessVersion.model_id, func.count().label("versions"),
                         func.max(ProcessVersion.version).label("latest"))
                  .group_by(ProcessVersion.model_id).subquery())
        query = (select(ProcessModel.process_id, ProcessModel.name, counts.c.versions, ProcessVersion.version,
                        ProcessVersion.content_hash, ProcessVersion.deployed_at)
                 .outerjoin(counts, counts.c.model_id == ProcessModel.id)
                 .outerjoin(ProcessVersion, (ProcessVersion.model_id == ProcessModel.id)
                            & (ProcessVersion.version == counts.c.latest))
                 .order_by(ProcessModel.process_id))
        with self.core.Session() as s:
            return [{"process_id": r.process_id, "name": r.name, "versions": r.versions or 0,
                     "latest_version": r.version, "content_hash": r.content_hash,
                     "deployed_at": r.deployed_at.isoformat() if r.deployed_at else None}
                    for r in s.execute(query)]

    def startable(self, username: str) -> list[dict[str, Any]]:
        """The processes ``username`` may start from the start page, by the start event's
        ``samflyt.starterRoles``: ``[{"process_id", "name", "version", "form"}]`` (latest versions)."""
        with self.core.Session() as s:
            user = self.core.user(s, username)
            out = []
            for process_id, name, version_id in s.execute(latest_versions(
                    ProcessModel.process_id, ProcessModel.name, ProcessVersion.id).order_by(ProcessModel.process_id)):
                version = self.core.cache.get(s, version_id)
                event = start_event(version)
                properties = (getattr(event, "extensions", None) or {}).get("properties", {}) if event else {}
                if event is None or not authz.may_start(user, properties):
                    continue
                out.append({"process_id": process_id, "name": name or process_id,
                            "version": version.version, "form": start_form(self.core, s, version, properties,
                                                                           user.username),
                            "form_texts": version.form_texts})
            return out
