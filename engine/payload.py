"""Checks on data that comes from outside before the engine stores it.

Task data, start data and message payloads end up in JSON columns and in task data that SpiffWorkflow
serialises; some values pass JSON parsing but break later, far from where they came in: a NUL byte
(PostgreSQL refuses it in text, after the step has half run), ``NaN``/``Infinity`` (accepted by Python's
``json`` but printed as invalid JSON by ``--json``), an integer beyond 64 bits (overflows a BIGINT column),
or nesting deep enough to exhaust the interpreter's stack. Refusing them here, before anything is
written, turns each into a field error instead of a traceback or a half-written step.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import ValidationError
from .texts import Text, _

#: Deepest nesting a payload may have; forms nest a list of objects in an object a few levels at most.
MAX_DEPTH = 64
#: Integers must fit a signed 64-bit column (PostgreSQL BIGINT, SQLite INTEGER).
MIN_INT, MAX_INT = -(2**63), 2**63 - 1


def _refusal(value: Any, depth: int) -> Text | None:
    """Why ``value`` itself cannot be stored (not looking inside containers), or ``None``."""
    if depth > MAX_DEPTH:
        return _("The data is nested more than %(max)s levels deep.", max=MAX_DEPTH)
    if isinstance(value, str) and "\x00" in value:
        return _("The text contains a NUL character, which cannot be stored.")
    if isinstance(value, float) and not math.isfinite(value):
        return _("Not a finite number.")
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_INT <= value <= MAX_INT:
        return _("The number is too large to be stored.")
    return None


def problems(value: Any, depth: int = 0) -> dict[Any, Any]:
    """Every value in ``value`` that cannot be stored, nested as marshmallow nests its messages (field name,
    then row index, then field), so a page ties each message to its field; ``_schema`` for the top.

    The depth limit stops the walk long before Python's recursion limit would.
    """
    reason = _refusal(value, depth)
    if reason is not None:
        return {"_schema": [reason]}
    found: dict[Any, Any] = {}
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str) or "\x00" in key:
                found.setdefault("_schema", []).append(
                    _("Field names must be text without NUL characters."))
                continue
            inner = problems(child, depth + 1)
            if inner:
                found[key] = inner.get("_schema", []) if set(inner) == {"_schema"} else inner
    elif isinstance(value, (list, tuple)):
        for index, child in enumerate(value):
            inner = problems(child, depth + 1)
            if inner:
                found[index] = inner.get("_schema", []) if set(inner) == {"_schema"} else inner
    return found


def check(value: Any) -> Any:
    """Return ``value`` unchanged or raise :class:`ValidationError` naming each field that cannot be stored."""
    found = problems(value)
    if found:
        raise ValidationError(found)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def loads(text: str) -> Any:
    """Strict JSON: ``NaN``/``Infinity`` refused, absurd nesting a ``ValueError`` instead of a
    ``RecursionError``; the result is then :func:`check`-ed."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    return check(value)
