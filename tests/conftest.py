"""Fixtures: a migrated database per test (SQLite file; PostgreSQL when SAMFLYT_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from engine import clock, db
from engine.connectors import ConnectorRegistry
from engine.mail import SmtpSettings
from engine.runtime import Runtime

PG_URL = os.environ.get("SAMFLYT_TEST_POSTGRES_URL")
needs_pg = pytest.mark.skipif(not PG_URL, reason="SAMFLYT_TEST_POSTGRES_URL is not set (no PostgreSQL to test)")


def _fresh_pg_engine():
    engine = db.make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[needs_pg, pytest.mark.postgres])])
def bare_engine(request, tmp_path: Path):
    """An empty database, not migrated: for upgrade tests that migrate it to an older revision first."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'samflyt.db'}") if request.param == "sqlite" \
        else _fresh_pg_engine()
    yield engine
    engine.dispose()


@pytest.fixture
def db_engine(bare_engine):
    """A migrated database: every engine test runs on SQLite and, when configured, on PostgreSQL."""
    db.migrate(bare_engine)
    return bare_engine


@pytest.fixture
def pg_engine():
    if not PG_URL:
        pytest.skip("SAMFLYT_TEST_POSTGRES_URL is not set (no PostgreSQL to test)")
    engine = _fresh_pg_engine()
    db.migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def connectors() -> ConnectorRegistry:
    return ConnectorRegistry()


@pytest.fixture
def rt(db_engine, connectors) -> Iterator[Runtime]:
    """A runtime with both caches off: every step loads spec and state from the database, as a fresh
    process would (tests of the caches make their own warm runtimes)."""
    runtime = Runtime(db_engine, connectors=connectors, workflow_cache_size=0, spec_cache=False)
    runtime.add_user("admin", roles=["admin"])
    runtime.add_user("ada", roles=["applicant"], organisations=["Horten kommune"])
    runtime.add_user("knut", roles=["committee"], organisations=["Sykehuset i Vestfold HF"])
    runtime.add_user("mia", roles=["committee"], organisations=["Larvik kommune"])
    runtime.add_user("per", roles=["au"])
    yield runtime
    clock.set_now(None)


@pytest.fixture
def deploy(rt, tmp_path: Path):
    """Write BPMN/DMN/form texts to a folder and deploy it: ``deploy({"p.bpmn": xml, ...})``."""
    counter = iter(range(10_000))

    def _deploy(files: dict[str, str]):
        folder = tmp_path / f"bundle{next(counter)}"
        folder.mkdir()
        for name, content in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(content, encoding="utf-8")
        return rt.deploy([str(folder)], actor="admin")

    return _deploy


class Inbox:
    """An SMTP handler that keeps what it receives; refuses the first ``refuse`` deliveries with 451."""

    def __init__(self, refuse: int = 0) -> None:
        self.messages: list = []
        self.refuse = refuse

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    """Start real SMTP servers on loopback: ``inbox, settings = smtp(refuse=0)``."""
    servers = []

    def start(refuse: int = 0) -> tuple[Inbox, SmtpSettings]:
        inbox = Inbox(refuse)
        port = _free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        servers.append(controller)
        return inbox, SmtpSettings(host="127.0.0.1", port=port, sender="samflyt@test.local", timeout=10)

    yield start
    for controller in servers:
        controller.stop()


@pytest.fixture
def year(db_engine):
    """The grant bundle deployed with the seed users, the clock at Monday 6 January 2025 (tests/grant_driver.py)."""
    from tests.grant_driver import GrantYear, grant_runtime

    y = GrantYear(grant_runtime(db_engine))
    y.at("2025-01-06T09:00")
    yield y
    clock.set_now(None)
