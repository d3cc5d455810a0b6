"""Alembic environment: runs on the connection handed over by :func:`engine.db.migrate`."""

from alembic import context
from sqlalchemy import create_engine

import engine.records  # noqa: F401 - the domain tables belong to the same metadata
from engine.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` command line: connect from the configured URL
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
