"""Named service-task connectors: operator name -> Python callable with typed parameters.

A BPMN service task names an operator (``spiffworkflow:serviceTaskOperator id="mail.send"``)
and its parameters. The engine ships no connector that knows the domain; processes register theirs,
either in code (``registry.register``) or through the ``samflyt.connectors`` entry-point group, whose
entries are callables that receive the registry. An operator that is not registered is a deploy-time
error, so a typo never reaches a running instance.

A connector that declares a keyword parameter ``ctx`` is given the :class:`StepContext` of the call
(the session to write in, the instance, task and actor); ``ctx`` is not one of its BPMN parameters.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import SamflytError
from .context import CONTEXT_PARAMETER, StepContext

__all__ = ["CONTEXT_PARAMETER", "Connector", "ConnectorError", "ConnectorRegistry", "StepContext", "registry"]


class ConnectorError(SamflytError):
    """A connector is unknown or was called with parameters it does not take."""


@dataclass(frozen=True)
class Connector:
    name: str
    func: Callable[..., Any]
    params: dict[str, type]
    description: str
    #: it declares ``ctx`` and is given the call's :class:`StepContext`
    takes_context: bool = False


class ConnectorRegistry:
    def __init__(self) -> None:
        self._connectors: dict[str, Connector] = {}

    def register(self, name: str, func: Callable[..., Any] | None = None, *,
                 params: dict[str, type] | None = None):
        """Register ``func`` under ``name``; usable as ``@registry.register("mail.send")``.

        ``params`` defaults to the function's annotated keyword parameters. A parameter named ``ctx``
        is never one of them: it receives the :class:`StepContext` of the call.
        """

        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            declared = params
            takes_context = CONTEXT_PARAMETER in inspect.signature(f).parameters
            if declared is not None:
                declared = {k: v for k, v in declared.items() if k != CONTEXT_PARAMETER}
            else:
                try:  # resolves string annotations (``from __future__ import annotations``)
                    hints = typing.get_type_hints(f)
                except Exception:  # noqa: BLE001 - unresolvable hints: accept any value
                    hints = {}
                declared = {}
                for pname in inspect.signature(f).parameters:
                    if pname == CONTEXT_PARAMETER:
                        continue
                    ann = hints.get(pname, object)
                    declared[pname] = ann if isinstance(ann, type) else object
            self._connectors[name] = Connector(name, f, declared, inspect.getdoc(f) or "", takes_context)
            return f

        return add(func) if func is not None else add

    def unregister(self, name: str) -> None:
        self._connectors.pop(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self._connectors

    def names(self) -> list[str]:
        return sorted(self._connectors)

    def get(self, name: str) -> Connector:
        try:
            return self._connectors[name]
        except KeyError:
            raise ConnectorError(f"unknown connector '{name}'") from None

    def call(self, name: str, params: dict[str, Any], ctx: StepContext | None = None) -> Any:
        """Call connector ``name`` with ``params`` checked and coerced to the declared types.

        A connector that declares ``ctx`` is given ``ctx``, and refuses to run without one.
        """
        connector = self.get(name)
        unknown = set(params) - set(connector.params)
        if unknown:
            raise ConnectorError(f"connector '{name}' takes no parameter(s) {sorted(unknown)}")
        kwargs = {}
        for pname, value in params.items():
            expected = connector.params[pname]
            if expected is object or value is None or isinstance(value, expected):
                kwargs[pname] = value
                continue
            try:
                kwargs[pname] = expected(value)
            except (TypeError, ValueError) as exc:
                raise ConnectorError(
                    f"connector '{name}': parameter '{pname}' must be {expected.__name__}, got {value!r}"
                ) from exc
        if connector.takes_context:
            if ctx is None:
                raise ConnectorError(f"connector '{name}' runs only in a workflow step or Runtime.call_connector")
            kwargs[CONTEXT_PARAMETER] = ctx
        return connector.func(**kwargs)

    def load_entry_points(self) -> None:
        from ..plugins import load_group

        for register in load_group("samflyt.connectors"):
            register(self)


#: The process-wide registry used by default.
registry = ConnectorRegistry()

