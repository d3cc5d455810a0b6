"""The entry-point groups through which installed packages plug into the engine and its front ends.

The engine knows no domain: a package that brings processes (their connectors, records, migrations,
scope rules, pages and commands) declares them in its ``pyproject.toml`` under these groups, and the
engine, the web app and the command line load them by name, never by import:

* ``samflyt.connectors`` -- ``register(registry)``: adds service-task connectors;
* ``samflyt.narrowing`` -- ``register()``: adds narrowing and scope rules and supervisor roles
  (:mod:`engine.authz`);
* ``samflyt.migrations`` -- a package whose ``versions/`` folder is an Alembic branch of its own (importing
  the package defines its tables on :data:`engine.models.Base`);
* ``samflyt.bundles`` -- ``bundle()``: the folder of a process bundle, deployed by ``samflyt demo``;
* ``samflyt.commands`` -- ``register(group)``: adds commands to the ``samflyt`` command;
* ``samflyt.blueprints`` -- ``register(app)``: adds pages to the web app (see :mod:`web`).
"""

from __future__ import annotations

import threading
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_narrowing_loaded = False


@cache
def load_group(group: str) -> tuple[Any, ...]:
    """The loaded objects of entry-point group ``group``, sorted by entry name (loaded once per process;
    an entry found twice, as when a package is on the path both installed and from a checkout, counts once;
    two packages that give different objects the same entry name both count)."""
    unique = {(ep.name, ep.value): ep for ep in entry_points(group=group)}
    return tuple(unique[key].load() for key in sorted(unique))


def load_narrowing() -> None:
    """Run the installed packages' narrowing registrations once per process."""
    global _narrowing_loaded
    with _lock:
        if _narrowing_loaded:
            return
        for register in load_group("samflyt.narrowing"):
            register()
        _narrowing_loaded = True


def migration_locations() -> list[str]:
    """The ``versions/`` folders of the installed packages' Alembic branches (importing each package
    puts its tables on the shared metadata, so autogenerate and the migration test see them)."""
    return [str(Path(module.__path__[0]) / "versions") for module in load_group("samflyt.migrations")]


def installed_bundles() -> list[Path]:
    """The process bundles the installed packages offer for ``samflyt demo``."""
    return [Path(bundle()) for bundle in load_group("samflyt.bundles")]
