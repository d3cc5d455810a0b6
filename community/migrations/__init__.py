"""The health community's Alembic branch (``community``): its ``versions/`` are found through the
``samflyt.migrations`` entry point, and importing this package puts the domain's tables on the metadata."""

from community import records  # noqa: F401 - the tables join engine.models.Base's metadata
