"""Task forms: JSON Schema (+ UI schema) files, validated with the ``jsonschema`` library (Draft 2020-12).

Forms are declared next to the BPMN the way SpiffWorkflow's own tools do it: a user task carries the
extension properties ``formJsonSchemaFilename`` and ``formUiSchemaFilename`` naming files in the
deployed bundle. The same :class:`Form` validates input in the engine and in the web UI, so the two can
never disagree. The schema means what JSON Schema says it means -- ``pattern`` is searched, not anchored;
``if``/``then``, ``dependentRequired``, ``const`` and formats work -- because a reference implementation
reads it, not a converter of our own.

Three things are added around it, each because a form is filled in by people through HTML fields:

* **Coercion first.** A page posts text, so ``"12"`` for an integer becomes ``12``, ``"true"`` for a boolean
  ``True``, a ``number`` an exact :class:`~decimal.Decimal`; an optional field sent as ``null`` counts as left
  empty. What cannot be read as its type is passed on unchanged, so the type error says so.
* **Rules of storage.** Integers fit 64 bits (``int_bounds``) and text holds no control character
  (``control``), whatever the form says: both would fail later, where nobody sees it.
* **Comparisons between fields** (``formatMinimum``/``formatMaximum``, see :func:`_compare`), which plain
  JSON Schema cannot say: an end date not before the start date, a budget year inside the project period.

Messages are not the library's prose: each error becomes a :class:`engine.texts.Text` (see :func:`message`)
built from the schema of the field it is about, nested field -> row index -> field, as a page needs them to
put each message next to its field.

What task data holds afterwards is plain JSON: integers, strings (``date`` as ISO text), booleans,
lists and objects. A JSON Schema ``number`` becomes a *string* holding the exact decimal ("1250.50"):
money belongs in integers (øre or whole kroner), and a float would silently round.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from .errors import ValidationError
from .payload import MAX_INT, MIN_INT
from .texts import Text, _, as_text, joined

SUPPORTED_TYPES = {"string", "integer", "number", "boolean", "array", "object", "null"}

#: A choice list filled from the task's data, written the way spiff-arena's forms write it:
#: ``"anyOf": ["options_from_task_data_var:NAME"]``, where the data field NAME holds a list of
#: ``{"value": ..., "label": ...}`` (or of plain values). The diagram fills NAME before the task (a service
#: task asking a connector, say), so the choices are the deployment's own -- its organisational scopes, the
#: calls open now -- and never a copy in a form file that goes stale.
OPTIONS_FROM_DATA = "options_from_task_data_var:"

#: Keywords comparing a field with a literal or with another field (``{"$data": "1/start_date"}``).
COMPARISONS = ("formatMinimum", "formatMaximum")


def options_variable(prop: Any) -> str | None:
    """The data field a property takes its choices from (``anyOf`` with the marker), or ``None``."""
    any_of = prop.get("anyOf") if isinstance(prop, dict) else None
    if (isinstance(any_of, list) and len(any_of) == 1 and isinstance(any_of[0], str)
            and any_of[0].startswith(OPTIONS_FROM_DATA)):
        return any_of[0][len(OPTIONS_FROM_DATA):].strip() or None
    return None


class FormDefinitionError(ValueError):
    """A form file that is not a usable JSON Schema; ``pointer`` says where (e.g. ``properties/amount``)."""

    def __init__(self, message: str, pointer: str = "") -> None:
        self.pointer = pointer
        super().__init__(f"{pointer}: {message}" if pointer else message)


def message(code: str, prop: dict[str, Any] | None = None, **params: Any) -> Text:
    """The text of a validation ``code`` for a field declared by JSON Schema ``prop``.

    The English of the older codes is marshmallow's wording, so messages read as they always did; the page
    translates the text.
    """
    prop = prop if isinstance(prop, dict) else {}
    if code == "required":
        return _("Missing data for required field.")
    if code == "null":
        return _("Field may not be null.")
    if code == "unknown":
        return _("Unknown field.")
    if code == "not_object":
        return _("data must be a JSON object")
    if code == "invalid_integer":
        return _("Not a valid integer.")
    if code == "invalid_number":
        return _("Not a valid number.")
    if code == "invalid_date":
        return _("Not a valid date.")
    if code == "invalid_datetime":
        return _("Not a valid datetime.")
    if code == "invalid_email":
        return _("Not a valid email address.")
    if code == "invalid_boolean":
        return _("Not a valid boolean.")
    if code == "invalid_string":
        return _("Not a valid string.")
    if code == "invalid_list":
        return _("Not a valid list.")
    if code == "invalid_object":
        return _("Invalid input type.")
    if code == "invalid":
        return _("Not a valid value.")
    if code == "attachment":
        return _("Not a valid attachment.")
    if code == "int_bounds":
        return _("The number is too large to be stored.")
    if code == "control":
        return _("The text contains a control character (such as a NUL byte) that is not allowed.")
    if code == "pattern":
        return _("String does not match expected pattern.")
    if code == "unique":
        return _("Each choice may be given only once.")
    if code == "one_of":
        return _("Must be one of: %(choices)s.", choices=joined(prop.get("enum") or []))
    if code == "const":
        if prop.get("const") is True:
            return _("You must answer Yes to go on.")
        if prop.get("const") is False:
            return _("You must answer No to go on.")
        return _("Must be %(value)s.", value=prop.get("const"))
    if code == "not_before":
        return _("Must not be earlier than %(min)s.", min=params.get("limit"))
    if code == "not_after":
        return _("Must not be later than %(max)s.", max=params.get("limit"))
    if code == "range":
        low = prop.get("minimum", prop.get("exclusiveMinimum"))
        high = prop.get("maximum", prop.get("exclusiveMaximum"))
        if low is not None and high is not None:
            return _("Must be greater than or equal to %(min)s and less than or equal to %(max)s.",
                     min=low, max=high)
        if low is not None:
            return _("Must be greater than or equal to %(min)s.", min=low)
        return _("Must be less than or equal to %(max)s.", max=high)
    if code in ("length", "items"):
        low, high = (prop.get("minLength"), prop.get("maxLength")) if code == "length" else (
            prop.get("minItems"), prop.get("maxItems"))
        if low is not None and high is not None:
            return _("Length must be between %(min)s and %(max)s.", min=low, max=high)
        if low is not None:
            return _("Shorter than minimum length %(min)s.", min=low)
        return _("Longer than maximum length %(max)s.", max=high)
    return as_text(code)


# -- the form definition ------------------------------------------------------------------------------------
def _kind(prop: dict[str, Any]) -> str:
    """The declared type of ``prop``, the first that is not ``null`` (``["string", "null"]`` is a string)."""
    kind = prop.get("type", "object" if "properties" in prop else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return kind if isinstance(kind, str) else "string"


def _check_property(prop: Any, pointer: str) -> None:
    if not isinstance(prop, dict):
        raise FormDefinitionError("property definition must be an object", pointer)
    kind = _kind(prop)
    if kind not in SUPPORTED_TYPES:
        raise FormDefinitionError(f"unsupported type '{kind}'", pointer)
    if "anyOf" in prop and options_variable(prop) is None:
        raise FormDefinitionError(f"anyOf is supported only as [\"{OPTIONS_FROM_DATA}NAME\"]", pointer)
    if "enum" in prop and (not isinstance(prop["enum"], list) or not prop["enum"]):
        raise FormDefinitionError("enum must be a non-empty list", pointer)
    for keyword in COMPARISONS:
        if keyword in prop:
            limit = prop[keyword]
            reference = limit.get("$data") if isinstance(limit, dict) else None
            if not (isinstance(limit, str) and _as_date(limit) is not None) and not (
                    isinstance(reference, str) and _RELATIVE_POINTER.match(reference)):
                raise FormDefinitionError(f"{keyword} must be an ISO date or {{\"$data\": \"<relative JSON "
                                          "pointer>\"}}", pointer)
    if kind == "object":
        _check_object(prop, pointer)
    elif kind == "array":
        items = prop.get("items", {"type": "string"})
        _check_property(items, f"{pointer}/items")


def _check_object(definition: Any, pointer: str = "") -> None:
    if not isinstance(definition, dict):
        raise FormDefinitionError("a form schema must be a JSON object", pointer)
    if definition.get("type", "object") != "object":
        raise FormDefinitionError("the top of a form schema must have type 'object'", pointer)
    properties = definition.get("properties", {})
    if not isinstance(properties, dict):
        raise FormDefinitionError("'properties' must be an object", pointer)
    required = definition.get("required", [])
    if not isinstance(required, list) or any(r not in properties for r in required):
        raise FormDefinitionError("'required' must list names of defined properties", pointer)
    for name, prop in properties.items():
        _check_property(prop, f"{pointer}/properties/{name}".lstrip("/"))


def _for_validator(schema: Any, root: bool = True) -> Any:
    """A copy of the form's schema as the validator reads it: every declared object refuses fields it does
    not declare unless it says ``additionalProperties`` itself, and a choice list still waiting for the task's
    data (the ``anyOf`` marker, not a schema) is left out."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if options_variable(out) is not None:
        out.pop("anyOf")
    if root or (_kind(out) == "object" and "properties" in out):
        out.setdefault("additionalProperties", False)
        out["properties"] = {k: _for_validator(v, False) for k, v in (out.get("properties") or {}).items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _for_validator(out["items"], False)
    return out


# -- formats ----------------------------------------------------------------------------------------------
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_ATTACHMENT = re.compile(r"^[0-9a-f-]{36}$")  # the id of an uploaded file (engine.attachments)

FORMATS = FormatChecker()


def _as_date(value: Any) -> dt.date | None:
    if not isinstance(value, str) or not _DATE.match(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


@FORMATS.checks("date")
def _is_date(value: Any) -> bool:
    return not isinstance(value, str) or _as_date(value) is not None


@FORMATS.checks("date-time")
def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return len(value) > 10 and bool(dt.datetime.fromisoformat(value))
    except ValueError:
        return False


@FORMATS.checks("email")
def _is_email(value: Any) -> bool:
    return not isinstance(value, str) or bool(_EMAIL.match(value))


@FORMATS.checks("attachment")
def _is_attachment(value: Any) -> bool:
    return not isinstance(value, str) or bool(_ATTACHMENT.match(value))


_FORMAT_CODES = {"date": "invalid_date", "date-time": "invalid_datetime", "email": "invalid_email",
                 "attachment": "attachment"}
_TYPE_CODES = {"integer": "invalid_integer", "number": "invalid_number", "boolean": "invalid_boolean",
               "string": "invalid_string", "array": "invalid_list", "object": "invalid_object"}

# -- coercion -----------------------------------------------------------------------------------------------
_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")
_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}
#: Text may hold tabs and line breaks, but no other control character: a NUL cannot be stored in
#: PostgreSQL, and the others only ever arrive by accident or on purpose, never typed.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _coerce(value: Any, prop: Any) -> Any:
    """``value`` as the type ``prop`` declares where it can be read as one (see the module's docstring);
    anything else unchanged, for the validator to refuse."""
    if not isinstance(prop, dict) or value is None:
        return value
    kind = _kind(prop)
    if kind == "object" and isinstance(value, dict):
        properties = prop.get("properties") or {}
        required = set(prop.get("required") or [])
        out = {}
        for key, child in value.items():
            declared = properties.get(key)
            if child is None and isinstance(declared, dict) and key not in required and not _allows_null(declared):
                continue  # an optional field left empty: as if not sent (restored as None afterwards)
            out[key] = _coerce(child, declared)
        return out
    if kind == "array" and isinstance(value, list):
        return [_coerce(item, prop.get("items")) for item in value]
    if isinstance(value, bool):
        return value
    if kind == "integer":
        if isinstance(value, str) and _INTEGER.match(value):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind == "number" and isinstance(value, (str, int, float)):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return value
        return number if number.is_finite() else value
    elif kind == "boolean":
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    return value


def _allows_null(prop: dict[str, Any]) -> bool:
    kind = prop.get("type")
    return kind == "null" or (isinstance(kind, list) and "null" in kind)


def _plain(value: Any, prop: Any) -> Any:
    """Validated data as plain JSON: a number as its exact decimal text, a date-time as ISO text."""
    if isinstance(value, dict):
        properties = (prop.get("properties") or {}) if isinstance(prop, dict) else {}
        return {k: _plain(v, properties.get(k)) for k, v in value.items()}
    if isinstance(value, list):
        items = prop.get("items") if isinstance(prop, dict) else None
        return [_plain(v, items) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str) and isinstance(prop, dict) and prop.get("format") == "date-time":
        return dt.datetime.fromisoformat(value).isoformat()
    return value


# -- comparisons between fields and the rules of storage -----------------------------------------------------
_RELATIVE_POINTER = re.compile(r"^(\d+)((?:/[^/]*)*)$")


def _resolve(root: Any, path: list[Any], reference: str) -> Any:
    """The value a relative JSON pointer (``"1/start_date"``: up one level from this field, then
    ``start_date``) names, seen from the field at ``path``; ``None`` when there is none."""
    found = _RELATIVE_POINTER.match(reference)
    if not found or int(found.group(1)) > len(path):
        return None
    here = root
    for step in path[:len(path) - int(found.group(1))]:
        here = here[step]
    for token in found.group(2).split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(here, dict):
            here = here.get(token)
        elif isinstance(here, list) and token.isdigit() and int(token) < len(here):
            here = here[int(token)]
        else:
            return None
    return here


def _compare(value: Any, limit: Any) -> tuple[Any, Any] | None:
    """``(value, limit)`` made comparable, or ``None`` when one of them is not there to compare: dates with
    dates, and a year (an integer) with the year of a date."""
    limit_date = _as_date(limit)
    if limit_date is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value, limit_date.year
    value_date = _as_date(value)
    return (value_date, limit_date) if value_date is not None else None


def _local_errors(value: Any, prop: Any, path: list[Any], root: Any) -> list[tuple[list[Any], Text]]:
    """What JSON Schema cannot say: storage bounds, control characters and comparisons, field by field."""
    if not isinstance(prop, dict):
        return []
    found: list[tuple[list[Any], Text]] = []
    kind = _kind(prop)
    if isinstance(value, dict) and kind == "object":
        properties = prop.get("properties") or {}
        for key, child in value.items():
            found += _local_errors(child, properties.get(key), [*path, key], root)
        return found
    if isinstance(value, list) and kind == "array":
        for index, item in enumerate(value):
            found += _local_errors(item, prop.get("items"), [*path, index], root)
        return found
    if isinstance(value, str) and _CONTROL.search(value):
        found.append((path, message("control", prop)))
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_INT <= value <= MAX_INT:
        found.append((path, message("int_bounds", prop)))
    for keyword, code, wrong in (("formatMinimum", "not_before", lambda a, b: a < b),
                                 ("formatMaximum", "not_after", lambda a, b: a > b)):
        if keyword not in prop:
            continue
        limit = prop[keyword]
        if isinstance(limit, dict):
            limit = _resolve(root, path, limit.get("$data", ""))
        pair = _compare(value, limit)
        if pair is not None and wrong(*pair):
            found.append((path, message(code, prop, limit=str(pair[1]))))
    return found


# -- errors -> messages per field -------------------------------------------------------------------------
def _schema_errors(error: Any) -> list[tuple[list[Any], Text]]:
    """One library error as ``(path, text)`` pairs: the path of the field it is about and the message."""
    path, schema, keyword = list(error.absolute_path), error.schema, error.validator
    instance = error.instance
    schema = schema if isinstance(schema, dict) else {}
    if keyword == "required" and isinstance(instance, dict):
        return [([*path, name], message("required")) for name in error.validator_value if name not in instance]
    if keyword == "dependentRequired" and isinstance(instance, dict):
        return [([*path, name], message("required")) for trigger, needed in error.validator_value.items()
                if trigger in instance for name in needed if name not in instance]
    if keyword == "additionalProperties" and isinstance(instance, dict):
        declared = schema.get("properties") or {}
        patterns = list(schema.get("patternProperties") or {})
        return [([*path, name], message("unknown")) for name in instance
                if name not in declared and not any(re.search(p, name) for p in patterns)]
    if keyword == "type":
        if instance is None:
            return [(path, message("null"))]
        return [(path, message(_TYPE_CODES.get(_kind(schema), "invalid"), schema))]
    if keyword == "format":
        return [(path, message(_FORMAT_CODES.get(error.validator_value, "invalid"), schema))]
    code = {"enum": "one_of", "const": "const", "pattern": "pattern", "uniqueItems": "unique",
            "minimum": "range", "maximum": "range", "exclusiveMinimum": "range", "exclusiveMaximum": "range",
            "minLength": "length", "maxLength": "length", "minItems": "items", "maxItems": "items"}.get(keyword)
    return [(path, message(code or "invalid", schema))]


def _put(tree: dict[Any, Any], path: list[Any], text: Text) -> None:
    """Add ``text`` at ``path`` (field, row index, field...) in the nested messages; a field with both its own
    messages and messages of its rows keeps its own under ``_schema``."""
    if not path:
        path = ["_schema"]
    node = tree
    for step in path[:-1]:
        inner = node.get(step)
        if not isinstance(inner, dict):
            inner = {"_schema": inner} if inner else {}
            node[step] = inner
        node = inner
    last = path[-1]
    if isinstance(node.get(last), dict):
        node, last = node[last], "_schema"
    messages = node.setdefault(last, [])
    if text not in messages:
        messages.append(text)


@dataclass
class Form:
    """A task form: its JSON Schema and optional UI schema, and the validator that reads the schema."""

    key: str
    json_schema: dict[str, Any]
    ui_schema: dict[str, Any] | None
    validator: Draft202012Validator = field(repr=False)

    @property
    def takes_options_from_data(self) -> bool:
        """Whether some field's choices come from the task's data (see :data:`OPTIONS_FROM_DATA`)."""
        return any(options_variable(p) or options_variable(p.get("items") if isinstance(p, dict) else None)
                   for p in self.json_schema.get("properties", {}).values())

    def for_data(self, data: dict[str, Any]) -> Form:
        """This form with its choices read from ``data``: each such field becomes an ``enum`` of the values
        (labels in the UI schema's ``ui:enumNames``), so the page offers them and validation accepts
        nothing else. A field whose list is missing or empty accepts no value, with the usual message."""
        if not self.takes_options_from_data:
            return self
        schema = json.loads(json.dumps(self.json_schema))
        ui = json.loads(json.dumps(self.ui_schema or {}))
        for name, prop in schema.get("properties", {}).items():
            target, ui_target = prop, ui.setdefault(name, {})
            if options_variable(prop) is None and options_variable(prop.get("items")):
                target, ui_target = prop["items"], ui_target.setdefault("items", {})
            variable = options_variable(target)
            if variable is None:
                continue
            options = data.get(variable) if isinstance(data.get(variable), list) else []
            values = [o.get("value") if isinstance(o, dict) else o for o in options]
            target.pop("anyOf")
            target["enum"] = values or [None]  # nothing to choose: only "no value", which a required field refuses
            ui_target["ui:enumNames"] = [str(o.get("label", o.get("value"))) if isinstance(o, dict) else str(o)
                                         for o in options]
        return build_form(self.key, schema, ui)

    def validate(self, data: Any) -> dict[str, Any]:
        """Return the coerced data, every top-level field present (``None`` when left empty), or raise
        :class:`engine.errors.ValidationError` with per-field messages (field -> row index -> field)."""
        if not isinstance(data, dict):
            raise ValidationError({"_schema": [message("not_object")]})
        values = _coerce(copy.deepcopy(data), self.json_schema)
        problems = [pair for error in self.validator.iter_errors(values) for pair in _schema_errors(error)]
        problems += _local_errors(values, self.json_schema, [], values)
        if problems:
            tree: dict[Any, Any] = {}
            for path, text in problems:
                _put(tree, path, text)
            raise ValidationError(tree)
        values = _plain(values, self.json_schema)
        # an optional field left empty is still part of the answer: scripts and gateways can say
        # ``comment or ''`` instead of guessing whether the name exists
        for name in self.json_schema.get("properties", {}):
            values.setdefault(name, None)
        return values


def build_form(key: str, json_schema: Any, ui_schema: Any = None) -> Form:
    """A :class:`Form` from a form file; raises :class:`FormDefinitionError` when the file is not a schema
    this engine can use (a JSON Schema it cannot read, or one that breaks the conventions above)."""
    if ui_schema is not None and not isinstance(ui_schema, dict):
        raise FormDefinitionError("a UI schema must be a JSON object")
    _check_object(json_schema)
    schema = _for_validator(json_schema)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise FormDefinitionError(exc.message, "/".join(map(str, exc.path))) from None
    return Form(key, json_schema, ui_schema, Draft202012Validator(schema, format_checker=FORMATS))
