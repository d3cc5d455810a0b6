"""The health community's service-task connectors: one module per family (``grants.*``, ``ledger.*``,
``meetings.*``, ``documents.*``, ``agreements.*``), each with a ``register(registry)``. :func:`register` is the
package's one ``samflyt.connectors`` entry point, so a new family is a module here and a line in :data:`FAMILIES`."""

from __future__ import annotations

from importlib import import_module

from engine.connectors import ConnectorRegistry

#: the modules of this package whose connectors are registered, in order
FAMILIES = ("ledger", "grants", "meetings", "documents", "agreements")


def register(registry: ConnectorRegistry) -> None:
    for family in FAMILIES:
        import_module(f"{__name__}.{family}").register(registry)
