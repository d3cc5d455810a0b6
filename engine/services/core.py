"""The core the runtime's services share: the database, the caches, the script engine, and the unit of work.

Each service (:mod:`engine.services`) has one job and reaches the others only through this core's public
methods: a transaction (:meth:`Core.unit`), the acting user, a task row, the latest version of a process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from .. import clock, mail, plugins, spiff_events
from ..connectors import ConnectorRegistry
from ..connectors import registry as default_connectors
from ..db import for_update, make_engine, session_factory
from ..errors import (
    ConflictError,
    NotAuthorisedError,
    NotFoundError,
    SamflytError,
    StepFailedError,
)
from ..models import (
    AuditEvent,
    HumanTask,
    ProcessInstance,
    ProcessModel,
    ProcessVersion,
    User,
)
from ..scripting import SamflytScriptEngine, current_step
from ..serialization import dumps, load_state
from ..spec_cache import CachedVersion, SpecCache, WorkflowCache
from ..spiff_events import cycle_guard
from ..texts import _
from ..unit_of_work import SYSTEM, Refused, Unit, describe_error

log = logging.getLogger(__name__)


def latest_versions(*columns: Any) -> Any:
    """``select(*columns)`` over the latest version of every model, joined to its model: one query over
    small columns (the version blobs are deferred), however many versions were deployed."""
    latest = (select(ProcessVersion.model_id, func.max(ProcessVersion.version).label("version"))
              .group_by(ProcessVersion.model_id).subquery())
    return (select(*columns).select_from(ProcessVersion)
            .join(latest, (latest.c.model_id == ProcessVersion.model_id) & (latest.c.version == ProcessVersion.version))
            .join(ProcessModel, ProcessModel.id == ProcessVersion.model_id))


class Core:
    """What every service needs: sessions, the connector registry and script engine, the spec and workflow
    caches. Thread-safe: each call opens its own session and transaction."""

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

    @contextmanager
    def unit(self) -> Iterator[Unit]:
        """One transaction of the runtime (see :class:`~engine.unit_of_work.Unit`): committed when the block
        ends, its workflows kept warm; a concurrent change is reported as a conflict to retry.

        The safety net: an exception nobody foresaw (a bug, a value the database refuses, state that will
        not save) rolls the whole unit back and goes to :meth:`_step_failed`, which puts the instances the
        unit was stepping in ``error`` and keeps its audit -- never a half-written step, never a traceback.
        """
        unit: Unit | None = None
        refused: Exception | None = None
        saving = False
        try:
            with cycle_guard(), self.WriteSession() as session, session.begin():
                unit = Unit(self, session)
                token = current_step.set(unit.step_context)
                try:
                    yield unit
                    saving = True
                    unit.save_all()
                except Refused as refusal:  # keep what was written (the audit of the refusal), then say no
                    saving = True
                    unit.save_all()
                    refused = refusal.error
                finally:
                    current_step.reset(token)
        except StaleDataError:
            raise ConflictError(_("the instance was changed by someone else at the same time; "
                                  "reload and try again")) from None
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in ("40P01", "40001"):  # deadlock, serialization failure
                raise ConflictError(_("the instance was busy with another change; try again")) from exc
            if isinstance(exc, OperationalError | InterfaceError):  # the database, not the step: as it was
                raise
            self._step_failed(unit, exc)
        except ConflictError:
            raise
        except SamflytError as exc:  # a refusal the caller meant; while saving, a step that cannot be stored
            if not saving:
                raise
            self._step_failed(unit, exc)
        except Exception as exc:  # noqa: BLE001 - the safety net: see the docstring
            self._step_failed(unit, exc)
        for li in unit.loaded.values():  # committed: keep the workflows warm for the next step
            self.workflows.put(li.row.id, li.row.lock_version, li.workflow)
        if refused is not None:
            raise refused

    def _step_failed(self, unit: Unit | None, exc: Exception) -> NoReturn:
        """Record a unit that failed unexpectedly, in a transaction of its own, and refuse the call.

        The unit's transaction is gone; what it meant to audit (the submitted data) is written again, and
        each instance it was stepping goes to ``error`` with the element of the step that was running, so
        the case stays whole at its previous state and ``retry`` runs that step again once it is fixed.
        """
        log.error("unexpected failure in a step", exc_info=exc)
        message = describe_error(exc)[:4000]
        # the unit's row objects were expired by the rollback: only the ids it loaded them by are safe to read
        loaded = unit.loaded if unit is not None else {}
        stepping = {iid: li.element for iid, li in loaded.items() if li.dirty and not li.new}
        gone = {iid for iid, li in loaded.items() if li.new}
        kept = [row for row in (unit.audit_rows if unit is not None else []) if row["instance_id"] not in gone]
        now = clock.now()
        errors = [{"at": now, "actor": SYSTEM, "action": "error", "instance_id": iid, "task_id": None,
                   "details": dumps({"message": message, "element": element, "unexpected": True})}
                  for iid, element in stepping.items()]
        recorded: list[int] = []
        for audit in (kept + errors, errors):  # the unit's own rows may be what failed: then errors alone
            try:
                with self.WriteSession() as session, session.begin():
                    recorded = []
                    for iid, element in stepping.items():
                        row = session.scalar(for_update(select(ProcessInstance)
                                                        .where(ProcessInstance.id == iid), self.engine))
                        if row is None or row.status in ("completed", "cancelled"):
                            continue
                        row.status, row.error_message, row.error_task = "error", message, element
                        row.updated_at = now
                        recorded.append(row.id)
                    if audit:
                        session.execute(insert(AuditEvent), audit)
                break
            except Exception:  # noqa: BLE001 - logged; the caller still gets the refusal below
                log.exception("could not record the failed step")
        if recorded:
            raise StepFailedError(_("the step failed and was stopped: %(error)s; instance %(instances)s is in "
                                    "error for an admin to retry; what you submitted is kept in the audit log",
                                    error=message, instances=", ".join(map(str, recorded))),
                                  instances=tuple(recorded)) from None
        raise StepFailedError(_("the step failed and was stopped, nothing was changed: %(error)s",
                                error=message)) from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read/write session in one transaction, for callers outside the runtime (CLI, web)."""
        with self.WriteSession() as session, session.begin():
            yield session

    def user(self, session: Session, username: str | None) -> User:
        """The acting user, who must exist (every action is someone's, audited by name)."""
        if not username:
            raise NotAuthorisedError(_("this action needs a user (--as USER)"))
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(_("no user named '%(name)s'", name=username))
        return user

    def open_task(self, session: Session, task_id: str) -> HumanTask:
        """The human-task row of ``task_id`` (open or not)."""
        row = session.scalar(select(HumanTask).where(HumanTask.task_id == task_id))
        if row is None:
            raise NotFoundError(_("no human task %(task)s", task=task_id))
        return row

    def latest_version(self, session: Session, process_id: str) -> CachedVersion:
        """The latest deployed version of ``process_id``, parsed once per version (the spec cache)."""
        version_id = session.scalar(select(ProcessVersion.id)
                                    .join(ProcessModel, ProcessModel.id == ProcessVersion.model_id)
                                    .where(ProcessModel.process_id == process_id)
                                    .order_by(ProcessVersion.version.desc()).limit(1))
        if version_id is None:
            raise NotFoundError(_("no deployed process '%(process)s'", process=process_id))
        return self.cache.get(session, version_id)

    def latest_version_catching(self, session: Session, message_name: str) -> CachedVersion | None:
        """The latest version of the first model (by id) whose start event catches ``message_name``: the
        latest versions' ``start_messages`` are searched in the database, no spec is read to find it."""
        query = (latest_versions(ProcessVersion.id, ProcessVersion.start_messages)
                 .where(ProcessVersion.start_messages.contains(json.dumps(message_name), autoescape=True))
                 .order_by(ProcessModel.id))
        for version_id, start_messages in session.execute(query):
            if message_name in json.loads(start_messages):  # the text matched; is it one of the names?
                return self.cache.get(session, version_id)
        return None

    def load_workflow(self, instance_id: int) -> BpmnWorkflow:
        """The deserialized workflow, read-only (for diagrams and diagnostics)."""
        with self.Session() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None:
                raise NotFoundError(_("instance %(instance)s does not exist", instance=instance_id))
            version = self.cache.get(s, row.version_id)
            return load_state(row.state, version.spec, version.subprocess_specs, self.script_engine,
                              version.specs_text)
