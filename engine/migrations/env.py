"""Alembic environment: runs on the connection handed over by :func:`engine.db.migrate`."""

from alembic import context
from sqlalchemy import create_engine

from engine.models import Base
from engine.plugins import migration_locations

migration_locations()  # imports the installed packages' migrations, whose tables join the metadata

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
