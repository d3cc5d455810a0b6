"""Database connection, sessions and migrations.

SQLite is the embedded default (a file under ``./instance/``); PostgreSQL is one URL away. On SQLite
every writing transaction starts with ``BEGIN IMMEDIATE`` so two writers serialise at the start instead
of failing half-way with "database is locked" when they upgrade a read lock; WAL mode lets readers go on.
The schema is created and upgraded only by Alembic migrations (:func:`migrate`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///instance/samflyt.db"
#: Execution option marking a connection that will write (SQLite: ``BEGIN IMMEDIATE``).
WRITE_OPTION = "samflyt_write"


def database_url(url: str | None = None) -> str:
    """The URL to use: explicit, else ``SAMFLYT_DATABASE_URL``, else the SQLite file default."""
    return url or os.environ.get("SAMFLYT_DATABASE_URL") or DEFAULT_URL


def make_engine(url: str | None = None, **kwargs) -> Engine:
    url = database_url(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        # Writers take the write lock up front; readers use a plain (deferred) BEGIN and, with WAL,
        # never wait for a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def for_update(query, bind, **options):
    """``query`` with ``FOR UPDATE`` (``skip_locked``, ``of`` ...) where row locks exist.

    SQLite has none: its writers are serialised by ``BEGIN IMMEDIATE``, so the query is left as it is.
    """
    return query if is_sqlite(bind) else query.with_for_update(**options)


def session_factory(engine: Engine, write: bool = False) -> sessionmaker[Session]:
    """Sessions for reading, or (``write=True``) for units that change the database."""
    bind = engine.execution_options(**{WRITE_OPTION: True}) if write else engine
    return sessionmaker(bind, expire_on_commit=False)


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema to ``revision`` with Alembic (the only way the schema is created): by default the
    heads of the engine's branch and of every installed package's branch (``samflyt.migrations``)."""
    from alembic import command
    from alembic.config import Config

    from .plugins import migration_locations

    here = Path(__file__).parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(here))
    cfg.set_main_option("version_locations", " ".join([str(here / "versions"), *migration_locations()]))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
