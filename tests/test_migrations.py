"""The migrations build the schema the models describe: a column or index added to a model without its
migration (or the other way round) fails here, on SQLite and PostgreSQL, before a deploy finds it."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import community.records  # noqa: F401 - the grant tables are part of the metadata
from engine.models import Base


def test_migrated_schema_matches_the_models(db_engine):
    with db_engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
