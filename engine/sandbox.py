"""The restricted environment BPMN scripts, conditions and DMN expressions run in.

Anyone who may deploy a bundle writes code that runs on the server, and deploying is open to every admin
of the web UI: so scripts are not trusted. They are compiled with RestrictedPython (the choice of
spiff-arena, SpiffWorkflow's own application), which refuses at compile time every name and attribute
starting with ``_`` and the frame/traceback attributes that lead out of the sandbox, and routes attribute,
item and iteration access through the guards below. On top of that:

* **builtins** are an allow-list (:data:`SAFE_BUILTINS`): no ``open``, ``eval``, ``exec``, ``type``,
  ``globals``, ``getattr`` without the guard...;
* **imports** are limited to :data:`ALLOWED_MODULES`, handed over as read-only views of their public,
  non-module attributes (``statistics.sys`` would otherwise lead to ``os``);
* **time**: each script or expression gets :func:`time_limit` seconds of its own bytecode
  (``SAMFLYT_SCRIPT_TIME_LIMIT``, default 5), enforced by a trace function on the script's frames only --
  an endless loop ends in :class:`ScriptTimeLimitError` instead of holding the instance's lock for ever.
  Trusted helpers it calls (a connector) are not traced and not timed;
* **print** goes to the ``samflyt.script`` logger with the instance and element, never to stdout (where
  it would corrupt the CLI's ``--json`` output).
"""

from __future__ import annotations

import logging
import operator
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache, lru_cache
from types import CodeType, ModuleType
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
    safer_getattr_raise,
)

log = logging.getLogger("samflyt.script")

#: The modules a script may import.
ALLOWED_MODULES = ("math", "statistics", "decimal", "datetime", "json")
#: The file name scripts are compiled under: the trace function times frames of this file only.
SCRIPT_FILE = "<bpmn script>"
#: Cap on ``range()`` in scripts: a loop that large is a mistake, and ``sum(range(10**12))`` runs in C,
#: where the time limit cannot stop it.
MAX_RANGE = 10_000_000
DEFAULT_TIME_LIMIT = 5.0


class ScriptTimeLimitError(Exception):
    """A script or expression ran past its time limit."""


class ScriptImportError(ImportError):
    """A script imported a module that is not on the allow-list."""


def time_limit() -> float:
    """Seconds a script or expression may run (``SAMFLYT_SCRIPT_TIME_LIMIT``; a bad value gives the default)."""
    try:
        value = float(os.environ.get("SAMFLYT_SCRIPT_TIME_LIMIT", DEFAULT_TIME_LIMIT))
    except ValueError:
        return DEFAULT_TIME_LIMIT
    return value if value > 0 else DEFAULT_TIME_LIMIT


#: Attributes of allowed modules a script does not get: the decimal context is per thread (a context
#: variable), so setting it, or changing the template contexts, would change how the engine's own
#: money arithmetic rounds in that worker for every later request.
HIDDEN = {"decimal": {"getcontext", "setcontext", "localcontext", "DefaultContext", "BasicContext",
                      "ExtendedContext"}}


class ModuleView:
    """A read-only view of an allowed module: its public attributes that are not modules themselves."""

    def __init__(self, module: ModuleType) -> None:
        hidden = HIDDEN.get(module.__name__, set())
        for name in dir(module):
            value = getattr(module, name)
            if not name.startswith("_") and not isinstance(value, ModuleType) and name not in hidden:
                object.__setattr__(self, name, value)
        object.__setattr__(self, "_name", module.__name__)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"module {self._name} is read-only in scripts")

    def __repr__(self) -> str:
        return f"<module {self._name}>"


@cache
def _module_view(name: str) -> ModuleView:
    return ModuleView(__import__(name))


def _guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                    level: int = 0) -> ModuleView:
    if level != 0 or name not in ALLOWED_MODULES:
        raise ScriptImportError(f"import of '{name}' is not allowed in scripts "
                                f"(allowed: {', '.join(ALLOWED_MODULES)})")
    return _module_view(name)


def _range(*args: int) -> range:
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise ValueError(f"range of {len(values)} numbers is too large for a script (at most {MAX_RANGE})")
    return values


#: Who is running the script, for the log lines of its ``print``: (instance id, element id).
running: ContextVar[tuple[int | None, str | None]] = ContextVar("samflyt_script_running", default=(None, None))


class ScriptPrinter:
    """``print`` in a script: each call is one log line naming the instance and element."""

    def __init__(self, _getattr_: Any = None) -> None:
        self.lines: list[str] = []

    def _call_print(self, *objects: Any, sep: str | None = " ", end: str | None = "\n", **_: Any) -> None:
        text = (sep if sep is not None else " ").join(str(o) for o in objects)
        self.lines.append(text + (end if end is not None else "\n"))
        instance, element = running.get()
        log.info("script print (instance %s, element %s): %s", instance, element, text)

    def __call__(self) -> str:  # ``printed``: what the script printed so far
        return "".join(self.lines)


_INPLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
            "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
            ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor,
            "@=": operator.imatmul}


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


def _getitem(obj: Any, key: Any) -> Any:
    return obj[key]


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


_MISSING = object()


def _hasattr(obj: Any, name: str) -> bool:
    return safer_getattr(obj, name, _MISSING) is not _MISSING


def _locals() -> dict[str, Any]:
    """``locals()`` in a script: a copy of its namespace without the sandbox's own names, so the idiom
    ``locals().get('field')`` (is the field in the data yet?) works and nothing reached through it leads
    to the builtins or the guards."""
    return {name: value for name, value in sys._getframe(1).f_locals.items()
            if not name.startswith("_") and not is_sandbox_value(value)}


#: Exceptions a script may catch but not raise past the engine's error handling (they are not ``Exception``).
_PROCESS_EXITS = ("SystemExit", "KeyboardInterrupt", "GeneratorExit", "BaseException")

#: The builtins a script sees: RestrictedPython's safe set (less the process exits), the harmless container
#: and iteration helpers, ``getattr`` through the guard, and the import guard.
SAFE_BUILTINS: dict[str, Any] = {
    **{name: value for name, value in safe_builtins.items() if name not in _PROCESS_EXITS},
    "list": list, "dict": dict, "set": set, "frozenset": frozenset, "sum": sum, "min": min, "max": max,
    "any": any, "all": all, "enumerate": enumerate, "map": map, "filter": filter, "reversed": reversed,
    "sorted": sorted, "zip": zip, "tuple": tuple, "bytes": bytes, "format": format, "iter": iter, "next": next,
    "range": _range, "locals": _locals, "getattr": safer_getattr, "hasattr": _hasattr,
    "__import__": _guarded_import,
}

#: The guard functions RestrictedPython's compiled code calls.
GUARDS: dict[str, Any] = {
    "_getattr_": safer_getattr_raise, "_getitem_": _getitem, "_getiter_": iter, "_write_": full_write_guard,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence, "_unpack_sequence_": guarded_unpack_sequence,
    "_inplacevar_": _inplacevar, "_apply_": _apply, "_print_": ScriptPrinter,
}


@lru_cache(maxsize=2048)
def _compile(source: str, mode: str) -> CodeType:
    compiler = compile_restricted_exec if mode == "exec" else compile_restricted_eval
    result = compiler(source, filename=SCRIPT_FILE)
    if result.errors or result.code is None:
        raise SyntaxError("; ".join(result.errors) or "the script does not compile")
    return result.code


def compile_script(source: str) -> CodeType:
    """``source`` (a script) compiled under the restrictions; a ``SyntaxError`` says what is refused."""
    return _compile(source, "exec")


def compile_expression(source: str) -> CodeType:
    """``source`` (an expression) compiled under the restrictions."""
    return _compile(source.strip(), "eval")


def restricted_globals(values: dict[str, Any]) -> dict[str, Any]:
    """Globals for restricted code: ``values`` plus the safe builtins and the guards."""
    return {**values, **GUARDS, "__builtins__": SAFE_BUILTINS}


def is_sandbox_value(value: Any) -> bool:
    """Objects the sandbox put into a script's namespace (module views, the print collector): not data."""
    return isinstance(value, ModuleView | ScriptPrinter)


@contextmanager
def timed(limit: float | None = None) -> Iterator[None]:
    """Run restricted code in this block for at most ``limit`` seconds of its own bytecode.

    A trace function that only follows frames of :data:`SCRIPT_FILE` checks the clock on each of their
    opcodes (line events alone miss ``while True: pass``, which never starts a new line); every other
    frame is left untraced. The thread's previous trace function (a debugger, coverage) is restored afterwards.
    """
    limit = time_limit() if limit is None else limit
    deadline = time.monotonic() + limit

    def local(frame: Any, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise ScriptTimeLimitError(f"the script ran longer than its time limit of {limit:g} s "
                                       "(SAMFLYT_SCRIPT_TIME_LIMIT)")
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == SCRIPT_FILE:
            frame.f_trace_opcodes = True
            return local(frame, event, arg)
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(previous)


@contextmanager
def untimed() -> Iterator[None]:
    """Suspend the script's tracing while trusted code it called runs (a connector)."""
    previous = sys.gettrace()
    sys.settrace(None)
    try:
        yield
    finally:
        sys.settrace(previous)
