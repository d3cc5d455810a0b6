"""The runtime: start, claim, complete, message, cancel, retry, fire timers -- one transaction each.

Every public call follows the same shape: lock and load the instance, act, run engine steps to the next
wait state, then write back the workflow state, the human-task, timer and message-wait index rows and
the audit events, all in one database transaction (:class:`~engine.unit_of_work.Unit`). A crash at any point leaves the
previous state whole. Messages an instance throws are delivered in that same transaction (see
:meth:`~engine.unit_of_work.Unit.deliver`), so a message is never half-sent; one that nobody waits for is stored as
``undeliverable`` and shown by ``samflyt messages``.

No Flask here: the CLI, the scheduler, the web UI and the tests all drive this class.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.bpmn_task_spec import BpmnTaskSpec
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from . import authz, clock, mail, plugins, spiff_events
from .bpmn_loader import (
    FORM_PROPERTIES,
    Bundle,
    DeployResult,
    collect_files,
    find_file,
    find_path,
    parse_bundle,
    stored_texts,
)
from .bpmn_loader import deploy as write_bundle
from .connectors import ConnectorRegistry, StepContext
from .connectors import registry as default_connectors
from .db import for_update, make_engine, session_factory
from .errors import (
    ClaimedByOtherError,
    ConflictError,
    InstanceStateError,
    NotAuthorisedError,
    NotFoundError,
    TaskNotOpenError,
    ValidationError,
)
from .forms import Form
from .models import (
    AuditEvent,
    HumanTask,
    Message,
    MessageWait,
    ProcessInstance,
    ProcessModel,
    ProcessVersion,
    Timer,
    User,
)
from .scripting import SamflytScriptEngine, current_step
from .serialization import dumps, load_state
from .spec_cache import CachedVersion, SpecCache, WorkflowCache
from .spiff_events import cycle_guard, has_waiting_timers, resume_stalled
from .unit_of_work import COMPLETED_BY_PROPERTY, SYSTEM, Unit, describe_error, plain, task_properties
from .views import InstanceView, MessageResult, TaskView, timer_view
from .worklist import offered_elsewhere, taken_siblings

log = logging.getLogger("samflyt.runtime")

#: How long a scheduler's claim on due timers holds before another scheduler may take them over
#: (``SAMFLYT_TIMER_LEASE_SECONDS``; longer than the slowest batch of steps).
TIMER_LEASE = timedelta(seconds=float(os.environ.get("SAMFLYT_TIMER_LEASE_SECONDS", "60")))


def _latest_versions(*columns: Any) -> Any:
    """``select(*columns)`` over the latest version of every model, joined to its model: one query over
    small columns (the version blobs are deferred), however many versions were deployed."""
    latest = (select(ProcessVersion.model_id, func.max(ProcessVersion.version).label("version"))
              .group_by(ProcessVersion.model_id).subquery())
    return (select(*columns).select_from(ProcessVersion)
            .join(latest, (latest.c.model_id == ProcessVersion.model_id) & (latest.c.version == ProcessVersion.version))
            .join(ProcessModel, ProcessModel.id == ProcessVersion.model_id))


class Runtime:
    """The engine's service layer. Thread-safe: each call opens its own session and transaction."""

    def __init__(self, engine: Engine | str | None = None, connectors: ConnectorRegistry | None = None,
                 workflow_cache_size: int = 256, spec_cache: bool = True) -> None:
        clock.install()
        spiff_events.install()
        plugins.load_narrowing()
        self.engine = engine if isinstance(engine, Engine) else make_engine(engine)
        self.Session = session_factory(self.engine)
        self.WriteSession = session_factory(self.engine, write=True)
        self.connectors = connectors or default_connectors
        if "mail.send" not in self.connectors:
            mail.register_connectors(self.connectors)
        self.script_engine = SamflytScriptEngine(self.connectors)
        self.cache = SpecCache(enabled=spec_cache)
        self.workflows = WorkflowCache(workflow_cache_size)
        self._names: dict[tuple[tuple[int, ...], str], dict[str, dict[str, str]]] = {}

    # -- transactions
    @contextmanager
    def _unit(self) -> Iterator[Unit]:
        unit: Unit
        try:
            with cycle_guard(), self.WriteSession() as session, session.begin():
                unit = Unit(self, session)
                token = current_step.set(unit.step_context)
                try:
                    yield unit
                    unit.save_all()
                finally:
                    current_step.reset(token)
        except StaleDataError:
            raise ConflictError("the instance was changed by someone else at the same time; "
                                "reload and try again") from None
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in ("40P01", "40001"):  # deadlock, serialization failure
                raise ConflictError("the instance was busy with another change; try again") from exc
            raise
        for li in unit.loaded.values():  # committed: keep the workflows warm for the next step
            self.workflows.put(li.row.id, li.row.lock_version, li.workflow)
        if unit.deferred is not None:
            raise unit.deferred

    def call_connector(self, name: str, params: dict[str, Any] | None = None, actor: str | None = None) -> Any:
        """Run a connector outside any process, in its own audited transaction (admins only when ``actor``
        is given): e.g. recording a figure that comes from outside any process."""
        with self._unit() as unit:
            if actor is not None and not authz.is_admin(self._user(unit.session, actor)):
                raise NotAuthorisedError(f"{actor} may not run connectors directly: admins only")
            context = StepContext(unit.session, actor=actor)  # its own transaction, outside any step
            result = self.connectors.call(name, params or {}, context)
            unit.audit("connector", actor, None, connector=name, params=plain(params or {}))
            return result

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read/write session in one transaction, for callers outside the runtime (CLI, web)."""
        with self.WriteSession() as session, session.begin():
            yield session

    # -- users
    def _user(self, session: Session, username: str | None) -> User:
        if not username:
            raise NotAuthorisedError("this action needs a user (--as USER)")
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"no user named '{username}'")
        return user

    def add_user(self, username: str, roles: list[str] = (), organisations: list[str] = (),
                 display_name: str | None = None, email: str | None = None, actor: str | None = None) -> User:
        """Create or update a user; roles and organisations are created on first use."""
        from .models import Organisation, Role

        with self._unit() as unit:
            s = unit.session
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                user = User(username=username, created_at=clock.now())
                s.add(user)
            user.display_name = display_name or user.display_name
            user.email = email or user.email
            for name in roles:
                role = s.scalar(select(Role).where(Role.name == name.lower())) or Role(name=name.lower())
                if role not in user.roles:
                    user.roles.append(role)
            for name in organisations:
                org = s.scalar(select(Organisation).where(Organisation.name == name)) or Organisation(name=name)
                if org not in user.organisations:
                    user.organisations.append(org)
            unit.audit("user_saved", actor, username=username, roles=sorted(user.role_names),
                       organisations=sorted(user.organisation_names))
        return user

    def set_scope(self, scope: str, organisations: list[str], actor: str | None = None,
                  action: str = "scope_saved") -> None:
        """Place ``organisations`` in the scope ``scope`` (created on first use), which tasks bound to a
        scope check (``samflyt.scopeField``); an organisation belongs to one scope, so placing it here moves
        it from any other. Audited as ``action`` (a package may keep the name its tools know)."""
        from .models import Organisation

        scope = scope.strip()
        organisations = [o.strip() for o in organisations if o.strip()]
        if not scope or not organisations:
            field = "scope" if not scope else "organisations"
            raise ValidationError({field: ["Missing data for required field."]})
        if len(scope) > 200 or any(len(o) > 200 for o in organisations):
            raise ValidationError({"scope" if len(scope) > 200 else "organisations":
                                   ["Longer than maximum length 200."]})
        with self._unit() as unit:
            s = unit.session
            acting = s.scalar(select(User).where(User.username == actor)) if actor else None
            if acting is not None and not authz.is_admin(acting):  # a command-line operator is trusted
                raise NotAuthorisedError(f"{actor} may not place organisations in scopes: admins only")
            moved = []
            for name in organisations:
                org = s.scalar(select(Organisation).where(Organisation.name == name))
                if org is None:
                    org = Organisation(name=name)
                    s.add(org)
                if org.scope != scope:
                    moved.append({"organisation": name, "from": org.scope})
                    org.scope = scope
            unit.audit(action, actor, scope=scope, organisations=sorted(organisations), moved=moved)

    def set_user(self, username: str, roles: list[str], organisations: list[str], display_name: str | None,
                 email: str | None, active: bool, actor: str) -> None:
        """Create or change a user with exactly these roles and organisations (admins only; audited)."""
        from .models import Organisation, Role

        with self._unit() as unit:
            s = unit.session
            if not authz.is_admin(self._user(s, actor)):
                raise NotAuthorisedError(f"{actor} may not change users: admins only")
            if username == actor and (not active or "admin" not in {r.lower() for r in roles}):
                raise ConflictError("you cannot take your own admin role or deactivate yourself")
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                user = User(username=username, created_at=clock.now())
                s.add(user)
            user.display_name, user.email, user.active = display_name or None, email or None, active
            user.roles = [s.scalar(select(Role).where(Role.name == name.lower())) or Role(name=name.lower())
                          for name in dict.fromkeys(r.strip() for r in roles if r.strip())]
            user.organisations = [s.scalar(select(Organisation).where(Organisation.name == name))
                                  or Organisation(name=name)
                                  for name in dict.fromkeys(o.strip() for o in organisations if o.strip())]
            unit.audit("user_saved", actor, username=username, roles=sorted(user.role_names),
                       organisations=sorted(user.organisation_names), active=active)

    # -- deploy
    def deploy(self, paths: list[str], actor: str | None = None) -> list[DeployResult]:
        """Parse, validate and deploy a bundle. When ``actor`` is given it must hold the admin role."""
        bundle: Bundle = parse_bundle(collect_files(paths), self.connectors)
        with self._unit() as unit:
            if actor is not None and not authz.is_admin(self._user(unit.session, actor)):
                raise NotAuthorisedError(f"{actor} may not deploy: only admins deploy (scripts run as trusted code)")
            return write_bundle(unit.session, bundle, actor)

    def element_names(self, language: str) -> dict[str, dict[str, str]]:
        """Element names in ``language`` from the ``names.<language>.json`` files deployed with the latest
        version of each model: ``{process id: {element id: name, "": process name}}``. Diagrams are named in
        the default language (bokmål); these translate what worklists and instance pages show.

        Versions never change, so the result is kept per set of latest versions: a page asks one cheap
        query, and the bundle files are read again only after a deploy.
        """
        with self.Session() as s:
            ids = tuple(sorted(s.scalars(_latest_versions(ProcessVersion.id))))
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
        with self.Session() as s:
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
        with self.Session() as s:
            return [{"process_id": r.process_id, "name": r.name, "versions": r.versions or 0,
                     "latest_version": r.version, "content_hash": r.content_hash,
                     "deployed_at": r.deployed_at.isoformat() if r.deployed_at else None}
                    for r in s.execute(query)]

    def _latest_version(self, session: Session, process_id: str) -> CachedVersion:
        version_id = session.scalar(select(ProcessVersion.id)
                                    .join(ProcessModel, ProcessModel.id == ProcessVersion.model_id)
                                    .where(ProcessModel.process_id == process_id)
                                    .order_by(ProcessVersion.version.desc()).limit(1))
        if version_id is None:
            raise NotFoundError(f"no deployed process '{process_id}'")
        return self.cache.get(session, version_id)

    def _latest_version_catching(self, session: Session, message_name: str) -> CachedVersion | None:
        """The latest version of the first model (by id) whose start event catches ``message_name``: the
        latest versions' ``start_messages`` are searched in the database, no spec is read to find it."""
        query = (_latest_versions(ProcessVersion.id, ProcessVersion.start_messages)
                 .where(ProcessVersion.start_messages.contains(json.dumps(message_name), autoescape=True))
                 .order_by(ProcessModel.id))
        for version_id, start_messages in session.execute(query):
            if message_name in json.loads(start_messages):  # the text matched; is it one of the names?
                return self.cache.get(session, version_id)
        return None

    # -- instances
    def start(self, process_id: str, data: dict[str, Any] | None = None, business_key: str | None = None,
              actor: str | None = None, title: str | None = None) -> int:
        """Start the latest version of ``process_id``; returns the new instance id."""
        with self._unit() as unit:
            if actor is not None:
                self._user(unit.session, actor)
            version = self._latest_version(unit.session, process_id)
            li = unit.create(version, data=data, business_key=business_key, title=title, actor=actor)
            unit.advance(li, actor=actor)
            return li.row.id

    def cancel(self, instance_id: int, actor: str | None, reason: str | None = None) -> None:
        with self._unit() as unit:
            user = self._user(unit.session, actor) if actor else None
            li = unit.load(instance_id)
            if user is not None and not authz.is_admin(user) and li.row.started_by != user.username:
                raise NotAuthorisedError(f"{actor} may not cancel instance {instance_id}")
            if li.row.status in ("completed", "cancelled"):
                raise InstanceStateError(f"instance {instance_id} is already {li.row.status}")
            li.workflow.cancel()
            li.row.status = "cancelled"
            li.dirty = True
            unit.audit("cancel", actor, instance_id, reason=reason)

    def retry(self, instance_id: int, actor: str | None) -> str:
        """Run an instance in ``error`` again from its failed step; returns the new status."""
        with self._unit() as unit:
            if actor is not None and not authz.is_admin(self._user(unit.session, actor)):
                raise NotAuthorisedError(f"{actor} may not retry instances: admins only")
            li = unit.load(instance_id)
            if li.row.status != "error":
                raise InstanceStateError(f"instance {instance_id} is {li.row.status}, not in error")
            unit.audit("retry", actor, instance_id, previous_error=li.row.error_message)
            li.row.status = "running"
            unit.advance(li, before=lambda: resume_stalled(li.workflow), actor=actor)
        return li.view().status

    # -- human tasks
    def _open_task(self, session: Session, task_id: str) -> HumanTask:
        row = session.scalar(select(HumanTask).where(HumanTask.task_id == task_id))
        if row is None:
            raise NotFoundError(f"no human task {task_id}")
        return row

    @staticmethod
    def _sibling_taken(session: Session, row: HumanTask, username: str) -> bool:
        """With ``samflyt.distinctWorkers``, one person works one of a multi-instance task's siblings.

        Three committee members each review an application: the second review task must go to someone else.
        """
        if not json.loads(row.restrictions or "{}").get("distinct_workers"):
            return False
        return session.scalar(select(HumanTask.id).where(
            HumanTask.instance_id == row.instance_id, HumanTask.spec_name == row.spec_name,
            HumanTask.id != row.id, HumanTask.status != "closed",
            or_(HumanTask.claimed_by == username, HumanTask.completed_by == username)).limit(1)) is not None

    def _require_distinct_worker(self, session: Session, row: HumanTask, user: User) -> None:
        if self._sibling_taken(session, row, user.username):
            raise NotAuthorisedError(f"{user.username} may not work task {row.task_id}: "
                                     f"you already have another '{row.title}' task in this case")

    def why_not(self, task_id: str, username: str) -> str | None:
        """Why ``username`` may not work task ``task_id`` now (claimed by another, a conflict of interest,
        the wrong role...), or ``None`` if they may: what a worklist shows instead of a claim button."""
        with self.Session() as s:
            user = self._user(s, username)
            row = self._open_task(s, task_id)
            if row.status != "open":
                return f"the task is no longer open ({row.status})"
            if row.claimed_by not in (None, username):
                return f"claimed by {row.claimed_by}"
            reason = authz.why_not(user, row, json.loads(row.restrictions or "{}"))
            if reason is None and row.claimed_by is None and self._sibling_taken(s, row, username):
                reason = f"you already have another '{row.title}' task in this case"
            return reason

    def may_view_task(self, task_id: str, username: str) -> bool:
        """Whether ``username`` may open task ``task_id`` (see :func:`engine.authz.may_view_task`)."""
        with self.Session() as s:
            user = self._user(s, username)
            row = self._open_task(s, task_id)
            return authz.may_view_task(user, row, json.loads(row.restrictions or "{}"))

    def may_reassign(self, task_id: str, username: str) -> bool:
        """Whether ``username`` may give task ``task_id`` to someone else: admins, and supervisors of the
        task's case's scope (:func:`engine.authz.case_scopes`; what :meth:`assign` enforces; the task page
        offers the form only to them)."""
        with self.Session() as s:
            user = self._user(s, username)
            row = self._open_task(s, task_id)
            return authz.supervises(user, row, json.loads(row.restrictions or "{}"))

    def may_view_instance(self, instance_id: int, username: str) -> bool:
        """Whether ``username`` may open instance ``instance_id``: its starter, its workers and candidates,
        supervisors and admins (see :func:`engine.authz.may_view_instance`)."""
        with self.Session() as s:
            user = self._user(s, username)
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(f"instance {instance_id} does not exist")
            tasks = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)).all()
            return authz.may_view_instance(user, row.started_by, list(tasks), row.scope)

    def may_send_messages(self, instance_id: int, username: str) -> bool:
        """Whether ``username`` may send instance ``instance_id`` messages from their forms
        (see :func:`engine.authz.may_send_message`)."""
        with self.Session() as s:
            user = self._user(s, username)
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(f"instance {instance_id} does not exist")
            tasks = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)).all()
            return authz.may_send_message(user, row.started_by, list(tasks), row.scope)

    @staticmethod
    def _start_event(version: CachedVersion) -> BpmnTaskSpec | None:
        """The top-level start event a person starts the process from: a plain one (no message, timer...)."""
        for spec in version.spec.task_specs.values():
            if isinstance(spec, StartEvent) and isinstance(spec.event_definition, NoneEventDefinition):
                return spec
        return None

    def startable(self, username: str) -> list[dict[str, Any]]:
        """The processes ``username`` may start from the start page, by the start event's
        ``samflyt.starterRoles``: ``[{"process_id", "name", "version", "form"}]`` (latest versions)."""
        with self.Session() as s:
            user = self._user(s, username)
            out = []
            for process_id, name, version_id in s.execute(_latest_versions(
                    ProcessModel.process_id, ProcessModel.name, ProcessVersion.id).order_by(ProcessModel.process_id)):
                version = self.cache.get(s, version_id)
                event = self._start_event(version)
                properties = (getattr(event, "extensions", None) or {}).get("properties", {}) if event else {}
                if event is None or not authz.may_start(user, properties):
                    continue
                out.append({"process_id": process_id, "name": name or process_id,
                            "version": version.version, "form": version.form(
                                *(properties.get(p) for p in FORM_PROPERTIES)), "form_texts": version.form_texts})
            return out

    def start_as(self, process_id: str, actor: str, data: dict[str, Any] | None = None,
                 business_key: str | None = None, title: str | None = None) -> int:
        """Start the latest version of ``process_id`` for a person, as the start page does: only when the
        start event's ``samflyt.starterRoles`` lets them (admins always), with ``data`` validated against
        the start event's form when it has one. Audited as every start is; returns the new instance id."""
        with self._unit() as unit:
            user = self._user(unit.session, actor)
            version = self._latest_version(unit.session, process_id)
            event = self._start_event(version)
            properties = (getattr(event, "extensions", None) or {}).get("properties", {}) if event else {}
            if event is None or not authz.may_start(user, properties):
                raise NotAuthorisedError(f"{actor} may not start {process_id}")
            form = version.form(*(properties.get(p) for p in FORM_PROPERTIES))
            values = form.validate(data or {}) if form is not None else dict(data or {})
            li = unit.create(version, data=values, business_key=business_key, title=title, actor=user.username)
            unit.advance(li, actor=user.username)
            return li.row.id

    def claim(self, task_id: str, actor: str) -> TaskView:
        with self._unit() as unit:
            s = unit.session
            user = self._user(s, actor)
            row = self._open_task(s, task_id)
            if row.status != "open":
                raise TaskNotOpenError(f"task {task_id} is no longer open ({row.status})")
            authz.require_may_work(user, row, json.loads(row.restrictions))
            if row.claimed_by == user.username:
                return TaskView.from_row(row)
            self._require_distinct_worker(s, row, user)
            if row.claimed_by is not None:
                raise ClaimedByOtherError(task_id, row.claimed_by)
            won = s.execute(update(HumanTask).where(
                HumanTask.id == row.id, HumanTask.status == "open", HumanTask.claimed_by.is_(None)
            ).values(claimed_by=user.username, claimed_at=clock.now()).execution_options(
                synchronize_session=False)).rowcount
            s.refresh(row)
            if not won:
                if row.status != "open":
                    raise TaskNotOpenError(f"task {task_id} is no longer open ({row.status})")
                raise ClaimedByOtherError(task_id, row.claimed_by or "someone else")
            unit.audit("claim", actor, row.instance_id, task_id,
                       as_admin=authz.needs_admin(user, row, json.loads(row.restrictions)))
            return TaskView.from_row(row)

    def unclaim(self, task_id: str, actor: str) -> None:
        with self._unit() as unit:
            user = self._user(unit.session, actor)
            row = self._open_task(unit.session, task_id)
            if row.status != "open":
                raise TaskNotOpenError(f"task {task_id} is no longer open ({row.status})")
            if row.claimed_by is None:
                return
            if row.claimed_by != user.username and not authz.is_admin(user):
                raise ClaimedByOtherError(task_id, row.claimed_by)
            self._set_claim(unit.session, row, None)
            unit.audit("unclaim", actor, row.instance_id, task_id, previous=row.claimed_by)

    def assign(self, task_id: str, assignee: str, actor: str, reason: str | None = None) -> None:
        """Give a task to ``assignee`` (admins and supervisors of the task's case's scope); the assignee
        must be allowed to work it."""
        with self._unit() as unit:
            s = unit.session
            user = self._user(s, actor)
            if not authz.is_supervisor(user):
                raise NotAuthorisedError(f"{actor} may not assign tasks: admins and supervisors only")
            target = self._user(s, assignee)
            row = self._open_task(s, task_id)
            if row.status != "open":
                raise TaskNotOpenError(f"task {task_id} is no longer open ({row.status})")
            restrictions = json.loads(row.restrictions)
            if not authz.supervises(user, row, restrictions):
                raise NotAuthorisedError(f"{actor} may not assign task {task_id}: "
                                         f"{authz.oversight_reason(user, row, restrictions)}")
            authz.require_may_work(target, row, restrictions)
            self._set_claim(unit.session, row, target.username)
            unit.audit("assign", actor, row.instance_id, task_id, assignee=assignee,
                       previous=row.claimed_by, reason=reason)

    @staticmethod
    def _set_claim(session: Session, row: HumanTask, username: str | None) -> None:
        """Change who holds an open task, atomically: a task completed meanwhile is not touched."""
        changed = session.execute(update(HumanTask).where(HumanTask.id == row.id, HumanTask.status == "open").values(
            claimed_by=username, claimed_at=clock.now() if username else None).execution_options(
            synchronize_session=False)).rowcount
        if not changed:
            raise TaskNotOpenError(f"task {row.task_id} is no longer open")

    def form_for(self, task_id: str) -> Form | None:
        """The task's form, its choices from the task's data filled in (``options_from_task_data_var``)."""
        with self.Session() as s:
            row = self._open_task(s, task_id)
            version_id = s.scalar(select(ProcessInstance.version_id).where(ProcessInstance.id == row.instance_id))
            form = self.cache.get(s, version_id).form(row.form_key, row.ui_form_key)
        if form is not None and form.takes_options_from_data and row.status == "open":
            form = form.for_data(self.task_data(task_id))
        return form

    def message_forms(self, instance_id: int) -> list[dict[str, Any]]:
        """Messages an instance waits for that people may send from a form: a wait whose message has a form
        file of the same name in the bundle (``deviation_report.json`` for ``deviation_report``) and whose
        correlation values are all known, so the message reaches exactly this instance."""
        with self.Session() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(f"instance {instance_id} does not exist")
            if row.status in ("completed", "cancelled"):
                return []
            version = self.cache.get(s, row.version_id)
            waits = s.scalars(select(MessageWait).where(MessageWait.instance_id == instance_id)
                              .order_by(MessageWait.id)).all()
            out: dict[str, dict[str, Any]] = {}
            for wait in waits:
                key = f"{wait.message_name}.json"
                correlations = json.loads(wait.correlations or "{}")
                if wait.message_name in out:
                    continue
                if find_file(version.files, key) is None or set(json.loads(wait.properties_json or "{}")) - set(
                        correlations) or any(v is None for v in correlations.values()):
                    continue
                out[wait.message_name] = {"message": wait.message_name, "form_key": key,
                                          "correlations": correlations, "form": version.form(key),
                                          "texts": version.form_texts}
            return list(out.values())

    def data_fields(self, instance_id: int, language: str) -> dict[str, dict[str, Any]]:
        """The labels of an instance's data fields, from its version's forms (see
        :meth:`engine.spec_cache.CachedVersion.data_fields`)."""
        with self.Session() as s:
            version_id = s.scalar(select(ProcessInstance.version_id).where(ProcessInstance.id == instance_id))
            if version_id is None:
                raise NotFoundError(f"instance {instance_id} does not exist")
            return self.cache.get(s, version_id).data_fields(language)

    def form_texts(self, task_id: str, language: str) -> dict[str, Any] | None:
        """The task form's labels in ``language``, when the bundle has them (see ``CachedVersion.form_texts``)."""
        with self.Session() as s:
            row = self._open_task(s, task_id)
            version_id = s.scalar(select(ProcessInstance.version_id).where(ProcessInstance.id == row.instance_id))
            return self.cache.get(s, version_id).form_texts(row.form_key, language)

    def complete(self, task_id: str, actor: str, data: dict[str, Any] | None = None) -> InstanceView:
        """Complete a human task with ``data`` (validated against its form) and advance the instance.

        Refuses tasks that are not READY -- including one a timer closed after the form was shown: the
        timers are refreshed first, and the submitted data is kept in the audit log either way, but only
        for someone who may work the task (the permission is checked before anything is written).
        """
        data = {} if data is None else data
        with self._unit() as unit:
            user = self._user(unit.session, actor)
            row, li = unit.load_for_task(task_id)
            if row.status != "open":
                # only someone who could have worked it gets their input kept: anyone else's data is
                # never written into another case's audit log
                if user.username not in (row.claimed_by, row.completed_by):
                    authz.require_may_work(user, row, json.loads(row.restrictions))
                unit.audit("complete_refused", actor, row.instance_id, task_id, reason=row.status, data=plain(data))
                unit.deferred = TaskNotOpenError(f"task {task_id} is no longer open ({row.status}); "
                                                 "your input is kept in the audit log")
                return None  # type: ignore[return-value]
            authz.require_may_work(user, row, json.loads(row.restrictions))
            if row.claimed_by not in (None, user.username) and not authz.is_admin(user):
                raise ClaimedByOtherError(task_id, row.claimed_by)
            if li.row.status in ("error", "cancelled", "completed"):
                unit.audit("complete_refused", actor, row.instance_id, task_id, reason=li.row.status, data=plain(data))
                unit.deferred = InstanceStateError(
                    f"instance {li.row.id} is {li.row.status}" + (f" ({li.row.error_message}); an admin must retry it"
                                                                   if li.row.status == "error" else "")
                    + "; your input is kept in the audit log")
                return None  # type: ignore[return-value]
            form = li.version.form(row.form_key, row.ui_form_key)
            if form is not None and form.takes_options_from_data:
                ready = li.workflow.get_task_from_id(UUID(task_id))
                form = form.for_data(ready.data if ready is not None else {})
            if form is not None:
                values = form.validate(data)
            elif isinstance(data, dict):
                values = data
            else:
                raise ValidationError({"_schema": ["data must be a JSON object"]})
            if has_waiting_timers(li.workflow):  # a timer may have closed the task since the form was shown
                unit.advance(li, refresh_timers=True, actor=user.username)
            task = li.workflow.get_task_from_id(UUID(task_id))
            if (task is None or task.state != TaskState.READY or not task.task_spec.manual
                    or li.row.status in ("error", "cancelled")):
                unit.audit("complete_refused", actor, row.instance_id, task_id, reason="not ready", data=plain(data))
                unit.deferred = TaskNotOpenError(f"task {task_id} is no longer open; "
                                                 "your input is kept in the audit log")
                return None  # type: ignore[return-value]
            as_admin = authz.needs_admin(user, row, json.loads(row.restrictions))
            if row.claimed_by is None:
                self._require_distinct_worker(unit.session, row, user)
                row.claimed_by, row.claimed_at = user.username, clock.now()
            task.data.update(values)
            completed_by_field = task_properties(task).get(COMPLETED_BY_PROPERTY)
            if completed_by_field:
                _set_path(task.data, completed_by_field, user.username)
            row.status = "completed"
            row.completed_at = clock.now()
            row.completed_by = user.username
            unit.audit("complete", actor, row.instance_id, task_id, element=row.spec_name,
                       data=plain(values), as_admin=as_admin)
            if not unit.advance(li, first=task, actor=user.username) and task.state == TaskState.READY:
                row.status, row.completed_at, row.completed_by = "open", None, None  # its own script failed
        return li.view()

    # -- messages
    def send_message(self, name: str, payload: dict[str, Any] | None = None,
                     correlations: dict[str, Any] | None = None, actor: str | None = None) -> MessageResult:
        """Deliver a message by name and correlation (property id -> value) in one transaction."""
        with self._unit() as unit:
            return unit.deliver(name, payload or {}, correlations or None, None, actor)

    def messages(self, status: str | None = None) -> list[dict[str, Any]]:
        with self.Session() as s:
            query = select(Message).order_by(Message.id)
            if status:
                query = query.where(Message.status == status)
            return [{"id": m.id, "name": m.name, "status": m.status, "payload": json.loads(m.payload),
                     "correlations": json.loads(m.correlations), "sender_instance_id": m.sender_instance_id,
                     "target_instance_id": m.target_instance_id, "created_at": m.created_at.isoformat()}
                    for m in s.scalars(query)]

    # -- timers
    def fire_due_timers(self, now: datetime | None = None, limit: int | None = None, batch: int = 10,
                        worker: str | None = None, seen: set[int] | None = None) -> list[int]:
        """Advance every instance with a timer due at ``now``, oldest first; each in its own transaction.

        Due timers are claimed in small batches (on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so any
        number of schedulers share the work) with a short wall-clock lease; each claimed instance is then
        locked, its due timers re-read, fired and the claims released in one transaction. A timer fires
        exactly once: the re-read after the lock sees what another scheduler already fired, and a killed
        scheduler's claims expire and are taken over. SpiffWorkflow fires a timer when its due time is
        strictly in the past, so the engine clock is set a microsecond past ``now``: a timer due exactly at
        ``now`` fires. Each instance is advanced at most once per ``seen`` set (one per call unless the
        caller shares one across calls), so a late cycle timer fires once per pass, not in a burst. Only
        instances that could be claimed again stay in ``seen`` (a timer still due, or busy), since the claim
        query excludes them: under a backlog, a set of every instance fired would grow without end.
        Returns the ids of the instances advanced.
        """
        live = now is None  # the scheduler's real time: each instance runs at the moment it is advanced
        now = now or clock.now()
        worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        fired: list[int] = []
        seen = set() if seen is None else seen
        while limit is None or len(fired) < limit:
            claimed = self._claim_due_timers(now, worker, batch, seen)
            if not claimed:
                break
            seen.update(claimed)
            for instance_id in claimed:
                moment = max(now, clock.now()) if live else now
                with clock.frozen_at(moment + timedelta(microseconds=1)):
                    try:
                        advanced, again = self._fire_instance(instance_id, now, worker)
                        if advanced:
                            fired.append(instance_id)
                        if advanced and not again:  # nothing of it is due any more, so the claims of this
                            seen.discard(instance_id)  # pass need not exclude it: the exclusion stays small
                    except (ConflictError, DBAPIError) as exc:  # busy: its claims lapse, it is tried again
                        log.warning("timers of instance %s not fired this time: %s", instance_id, exc)
                    except Exception as exc:  # noqa: BLE001 - a broken instance must not block the others
                        log.exception("timers of instance %s failed", instance_id)
                        self._put_in_error(instance_id, exc)
        return fired

    def _put_in_error(self, instance_id: int, exc: Exception) -> None:
        """Record a failure that escaped the step's own handling (e.g. unstorable data) and free its timers."""
        with self.WriteSession() as s, s.begin():
            s.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id).values(
                status="error", error_message=describe_error(exc), lock_version=ProcessInstance.lock_version + 1))
            s.execute(update(Timer).where(Timer.instance_id == instance_id).values(claimed_by=None, claimed_until=None))
            s.add(AuditEvent(at=clock.now(), actor=SYSTEM, action="error", instance_id=instance_id,
                             details=dumps({"message": describe_error(exc)})))

    def next_due(self) -> datetime | None:
        """When the earliest claimable timer of a runnable instance falls due (for schedulers to wake up)."""
        with self.Session() as s:
            return s.scalar(select(func.min(Timer.due_at))
                            .join(ProcessInstance, ProcessInstance.id == Timer.instance_id)
                            .where(ProcessInstance.status.in_(("running", "waiting")),
                                   or_(Timer.claimed_until.is_(None), Timer.claimed_until < datetime.now(UTC))))

    def _claim_due_timers(self, now: datetime, worker: str, batch: int, seen: set[int]) -> list[int]:
        """Claim up to ``batch`` due, unclaimed timers of runnable instances; their instance ids, oldest first."""
        wall = datetime.now(UTC)
        with self.WriteSession() as s, s.begin():
            query = (select(Timer.id, Timer.instance_id).join(ProcessInstance, ProcessInstance.id == Timer.instance_id)
                     .where(Timer.due_at <= now, ProcessInstance.status.in_(("running", "waiting")),
                            or_(Timer.claimed_until.is_(None), Timer.claimed_until < wall))
                     .order_by(Timer.due_at, Timer.id).limit(batch))
            if seen:
                query = query.where(Timer.instance_id.not_in(seen))
            rows = s.execute(for_update(query, self.engine, of=Timer, skip_locked=True)).all()
            if rows:
                s.execute(update(Timer).where(Timer.id.in_([r.id for r in rows]))
                          .values(claimed_by=worker, claimed_until=wall + TIMER_LEASE))
        return list(dict.fromkeys(r.instance_id for r in rows))

    def _fire_instance(self, instance_id: int, now: datetime, worker: str) -> tuple[bool, bool]:
        """Fire the due timers of one claimed instance in one transaction.

        Returns whether it was advanced, and whether a timer of it is still due by ``now`` afterwards (a
        late cycle timer's next round), which this pass must leave for the next one.
        """
        with self._unit() as unit:
            release = update(Timer).where(Timer.instance_id == instance_id).values(claimed_by=None, claimed_until=None)
            row = unit.lock_row(instance_id, skip_locked=True)
            if row is None:  # someone is working on it (a user's step, another scheduler): let our claims go,
                unit.session.execute(release.where(Timer.claimed_by == worker))  # so the next poll takes them
                return False, False
            timers = unit.session.scalars(select(Timer).where(Timer.instance_id == instance_id)
                                          .order_by(Timer.due_at)).all()
            due = [t for t in timers if t.due_at <= now]
            if not due or row.status not in ("running", "waiting"):
                unit.session.execute(release)
                return False, False  # fired meanwhile by another scheduler, or not runnable
            li = unit.load_row(row)  # locked above: not read again
            li.timer_rows = {t.task_id: t for t in timers}  # the save needs not read them again
            for due_at in sorted({t.due_at for t in due}):  # in time order: an earlier timer may cancel a later
                with clock.frozen_at(due_at + timedelta(microseconds=1)):
                    if not unit.advance(li, refresh_timers=True, actor=SYSTEM):
                        break
            unit.advance(li, refresh_timers=True, actor=SYSTEM)  # and whatever else is due by the pass's moment
            for timer in due:
                task = li.workflow.get_task_from_id(UUID(timer.task_id))
                if task is None or task.state != TaskState.CANCELLED:  # fired (a cancelled one did not)
                    unit.audit("timer_fired", SYSTEM, instance_id, timer.task_id, element=timer.spec_name,
                               due_at=timer.due_at.isoformat(), fired_at=now.isoformat(), worker=worker,
                               wall_time=datetime.now(UTC).isoformat())
        # saved: fired rows are deleted, a cycle's re-armed; li.timers are what it waits for now
        return True, any(datetime.fromisoformat(t["due_at"]) <= now for t in li.timers)

    def timers(self) -> list[dict[str, Any]]:
        with self.Session() as s:
            now = clock.now()
            return [{"instance_id": t.instance_id, "task": t.spec_name, "task_id": t.task_id, "kind": t.kind,
                     "due_at": t.due_at.isoformat(),
                     "late_seconds": max(0.0, (now - t.due_at).total_seconds())}
                    for t in s.scalars(select(Timer).order_by(Timer.due_at))]

    # -- reading
    def tasks(self, instance_id: int | None = None, user: str | None = None) -> list[TaskView]:
        """Open human tasks, from the index; with ``user``: those claimed by or open to that user."""
        with self.Session() as s:
            query = (select(HumanTask, ProcessInstance.process_id)
                     .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
                     .where(HumanTask.status == "open").order_by(HumanTask.created_at, HumanTask.id))
            if instance_id is not None:
                query = query.where(HumanTask.instance_id == instance_id)
            if user is None:
                return [TaskView.from_row(row, pid) for row, pid in s.execute(query)]
            who = self._user(s, user)
            if not authz.is_admin(who):
                roles = who.role_names
                query = query.where(HumanTask.candidate_role.is_(None) | HumanTask.candidate_role.in_(roles)
                                    | (HumanTask.claimed_by == who.username))
            out = []
            taken = taken_siblings(s, who.username)
            for row, pid in s.execute(query):
                restrictions = json.loads(row.restrictions)
                if row.claimed_by == who.username or (
                        row.claimed_by is None and authz.why_not(who, row, restrictions) is None
                        and not offered_elsewhere(row, restrictions, who.username, taken)):
                    out.append(TaskView.from_row(row, pid))
            return out

    def instance(self, instance_id: int) -> InstanceView:
        with self.Session() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(f"instance {instance_id} does not exist")
            version = s.scalar(select(ProcessVersion.version).where(ProcessVersion.id == row.version_id))
            tasks = [TaskView.from_row(t, row.process_id) for t in s.scalars(
                select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.status == "open")
                .order_by(HumanTask.id))]
            timers = [timer_view(t.spec_name, t.task_id, t.kind, t.due_at) for t in s.scalars(
                select(Timer).where(Timer.instance_id == instance_id).order_by(Timer.due_at))]
            return InstanceView.from_row(row, version, tasks, timers)

    def instances_summary(self, status: str | None = None) -> list[dict[str, Any]]:
        """Instances without their state, newest first."""
        with self.Session() as s:
            query = select(ProcessInstance.id, ProcessInstance.process_id, ProcessInstance.status,
                           ProcessInstance.business_key, ProcessInstance.title).order_by(ProcessInstance.id.desc())
            if status:
                query = query.where(ProcessInstance.status == status)
            return [dict(r._mapping) for r in s.execute(query)]

    def audit(self, instance_id: int | None = None) -> list[dict[str, Any]]:
        with self.Session() as s:
            query = select(AuditEvent).order_by(AuditEvent.id)
            if instance_id is not None:
                query = query.where(AuditEvent.instance_id == instance_id)
            return [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                     "instance_id": e.instance_id, "task_id": e.task_id, "details": json.loads(e.details)}
                    for e in s.scalars(query)]

    def task_data(self, task_id: str) -> dict[str, Any]:
        """The data an open task sees (what its form starts from), read from the instance's workflow."""
        with self.Session() as s:
            row = self._open_task(s, task_id)
        task = self.load_workflow(row.instance_id).get_task_from_id(UUID(task_id))
        if task is None:
            raise NotFoundError(f"no task {task_id} in instance {row.instance_id}")
        return plain(dict(task.data))

    def steps(self, instance_id: int) -> dict[str, list[dict[str, str]]]:
        """The instance's steps by BPMN element: ``done`` (completed, oldest first) and ``current`` (ready or
        waiting), each ``{"id", "name"}`` -- for marking the diagram and listing the same steps as text."""
        workflow = self.load_workflow(instance_id)

        def steps_in(state: int) -> list[dict[str, str]]:
            found: dict[str, dict[str, str]] = {}
            tasks = sorted(spiff_events.tasks_in_state(workflow, state), key=lambda t: t.last_state_change)
            for t in tasks:
                bpmn_id = getattr(t.task_spec, "bpmn_id", None)
                if bpmn_id and bpmn_id not in found:
                    found[bpmn_id] = {"id": bpmn_id, "name": t.task_spec.bpmn_name or bpmn_id}
            return list(found.values())

        return {"done": steps_in(TaskState.COMPLETED), "current": steps_in(TaskState.READY | TaskState.WAITING)}

    def diagram(self, instance_id: int) -> str:
        """The BPMN XML (with its DI) of the file that defines the instance's process, as deployed."""
        with self.Session() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(f"instance {instance_id} does not exist")
            files = self.cache.get(s, row.version_id).files
        marker = f'id="{row.process_id}"'
        for name, text in sorted(files.items()):
            if name.endswith(".bpmn") and marker in text and "process" in text:
                return text
        raise NotFoundError(f"no diagram for process {row.process_id}")

    def load_workflow(self, instance_id: int) -> BpmnWorkflow:
        """The deserialized workflow, read-only (for diagrams and diagnostics)."""
        with self.Session() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(f"instance {instance_id} does not exist")
            version = self.cache.get(s, row.version_id)
            return load_state(row.state, version.spec, version.subprocess_specs, self.script_engine)


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``path`` ``"a.b"``, creating objects on the way."""
    *parents, last = path.split(".")
    for name in parents:
        child = data.get(name)
        if not isinstance(child, dict):
            child = data[name] = {}
        data = child
    data[last] = value


def open_runtime(db_url: str | None = None) -> Runtime:
    """The runtime an entry point (CLI, web app, scheduler) uses: the process-wide connector registry with
    every connector the installed packages declare (``samflyt.connectors`` entry points)."""
    default_connectors.load_entry_points()
    return Runtime(db_url, connectors=default_connectors)
