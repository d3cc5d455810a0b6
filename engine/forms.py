"""Task forms: JSON Schema (+ UI schema) files -> marshmallow schemas for validation.

Forms are declared next to the BPMN the way SpiffWorkflow's own tools do it: a user task carries the
extension properties ``formJsonSchemaFilename`` and ``formUiSchemaFilename`` naming files in the
deployed bundle. The same marshmallow schema validates input in the engine and in the web UI, so the
two can never disagree. Validation rejects unknown fields, coerces types and reports per field.

Messages are not marshmallow's prose: each field is given codes as its error messages (``samflyt:range``)
and a failed load turns each code into a :class:`engine.texts.Text` built from the field's JSON Schema (its
``minimum``, ``maxLength``, ``enum``...), whose English is what marshmallow would have said.

What task data holds afterwards is plain JSON: integers, strings (``date`` as ISO text), booleans,
lists and objects. A JSON Schema ``number`` becomes a *string* holding the exact decimal ("1250.50"):
money belongs in integers (øre or whole kroner), and a float would silently round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, fields, validate
from marshmallow import ValidationError as MarshmallowValidationError

from .errors import ValidationError
from .payload import MAX_INT, MIN_INT
from .texts import Text, _, as_text, joined

SUPPORTED_TYPES = {"string", "integer", "number", "boolean", "array", "object"}

#: A choice list filled from the task's data, written the way spiff-arena's forms write it:
#: ``"anyOf": ["options_from_task_data_var:NAME"]``, where the data field NAME holds a list of
#: ``{"value": ..., "label": ...}`` (or of plain values). The diagram fills NAME before the task (a service
#: task asking a connector, say), so the choices are the deployment's own -- its organisational scopes, the
#: calls open now -- and never a copy in a form file that goes stale.
OPTIONS_FROM_DATA = "options_from_task_data_var:"


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


#: prefix of the codes given to marshmallow as messages (:func:`_codes`), read back by :func:`field_texts`
_CODE = "samflyt:"


def _codes(field_cls: type[fields.Field], kind: str) -> dict[str, str]:
    """Every message of ``field_cls`` as a code: ``required``, ``null`` or ``invalid_<kind>``."""
    keys: set[str] = set()
    for klass in field_cls.__mro__:
        keys.update(getattr(klass, "default_error_messages", {}))
    return {key: _CODE + (key if key in ("required", "null") else f"invalid_{kind}") for key in keys}


def message(code: str, prop: dict[str, Any] | None = None) -> Text:
    """The text of a validation ``code`` for a field declared by JSON Schema ``prop``.

    The English is marshmallow's own wording, so messages read as before; the page translates the text.
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
    if code == "attachment":
        return _("Not a valid attachment.")
    if code == "int_bounds":
        return _("The number is too large to be stored.")
    if code == "control":
        return _("The text contains a control character (such as a NUL byte) that is not allowed.")
    if code == "pattern":
        return _("String does not match expected pattern.")
    if code == "one_of":
        return _("Must be one of: %(choices)s.", choices=joined(prop.get("enum") or []))
    if code == "range":
        if prop.get("minimum") is not None and prop.get("maximum") is not None:
            return _("Must be greater than or equal to %(min)s and less than or equal to %(max)s.",
                     min=prop["minimum"], max=prop["maximum"])
        if prop.get("minimum") is not None:
            return _("Must be greater than or equal to %(min)s.", min=prop["minimum"])
        return _("Must be less than or equal to %(max)s.", max=prop.get("maximum"))
    if code in ("length", "items"):
        low, high = (prop.get("minLength"), prop.get("maxLength")) if code == "length" else (
            prop.get("minItems"), prop.get("maxItems"))
        if low is not None and high is not None:
            return _("Length must be between %(min)s and %(max)s.", min=low, max=high)
        if low is not None:
            return _("Shorter than minimum length %(min)s.", min=low)
        return _("Longer than maximum length %(max)s.", max=high)
    return as_text(code)


def _child(prop: dict[str, Any], key: Any) -> dict[str, Any]:
    """The JSON Schema of ``key`` inside ``prop``: a property of an object, an item of an array."""
    if not isinstance(prop, dict):
        return {}
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit() and prop.get("type") == "array"):
        return prop.get("items") or {}
    if key == "_schema":
        return prop
    return (prop.get("properties") or {}).get(key) or {}


def field_texts(messages: Any, prop: dict[str, Any]) -> Any:
    """marshmallow's messages (the codes of :func:`_codes`, nested by field and row) as :class:`Text` values,
    each built from the JSON Schema of the field it is about."""
    if isinstance(messages, dict):
        return {key: field_texts(value, _child(prop, key)) for key, value in messages.items()}
    if isinstance(messages, list):
        return [field_texts(m, prop) for m in messages]
    if isinstance(messages, str) and messages.startswith(_CODE):
        return message(messages[len(_CODE):], prop)
    return as_text(messages) if isinstance(messages, str) else messages


class _FormSchema(Schema):
    error_messages = {"unknown": _CODE + "unknown", "type": _CODE + "invalid_object"}


class _IsoDate(fields.Date):
    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).isoformat()


class _IsoDateTime(fields.DateTime):
    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).isoformat()


class _DecimalString(fields.Decimal):
    def _deserialize(self, value, attr, data, **kwargs):
        return str(super()._deserialize(value, attr, data, **kwargs))


class _StrictInteger(fields.Integer):
    """Integers only: "12" is coerced, 12.5 and "12,5" are refused instead of truncated."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=False, **kwargs)

    def _validated(self, value):
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._validated(value)


#: Text may hold tabs and line breaks, but no other control character: a NUL cannot be stored in
#: PostgreSQL, and the others only ever arrive by accident or on purpose, never typed.
_NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def _title(prop: dict[str, Any], name: str) -> str:
    return prop.get("title") or name


def _field_for(name: str, prop: dict[str, Any], required: bool, pointer: str) -> fields.Field:
    if not isinstance(prop, dict):
        raise FormDefinitionError("property definition must be an object", pointer)
    kind = prop.get("type", "string")
    if isinstance(kind, list):  # e.g. ["string", "null"]
        non_null = [k for k in kind if k != "null"]
        kind = non_null[0] if non_null else "string"
    if kind not in SUPPORTED_TYPES:
        raise FormDefinitionError(f"unsupported type '{kind}'", pointer)
    validators: list[Any] = []
    if "anyOf" in prop and options_variable(prop) is None:
        raise FormDefinitionError(f"anyOf is supported only as [\"{OPTIONS_FROM_DATA}NAME\"]", pointer)
    if "enum" in prop:
        if not isinstance(prop["enum"], list) or not prop["enum"]:
            raise FormDefinitionError("enum must be a non-empty list", pointer)
        validators.append(validate.OneOf(prop["enum"], error=_CODE + "one_of"))
    if "minimum" in prop or "maximum" in prop:
        validators.append(validate.Range(min=prop.get("minimum"), max=prop.get("maximum"), error=_CODE + "range"))
    if "minLength" in prop or "maxLength" in prop:
        validators.append(validate.Length(min=prop.get("minLength"), max=prop.get("maxLength"),
                                          error=_CODE + "length"))
    if "pattern" in prop:
        validators.append(validate.Regexp(prop["pattern"], error=_CODE + "pattern"))
    common: dict[str, Any] = {"required": required, "validate": validators,
                              "metadata": {"title": _title(prop, name)}}
    if not required:
        common["allow_none"] = True
    if kind == "string":
        fmt = prop.get("format")
        if fmt == "date":
            return _IsoDate(error_messages=_codes(_IsoDate, "date"), **common)
        if fmt == "date-time":
            return _IsoDateTime(error_messages=_codes(_IsoDateTime, "datetime"), **common)
        if fmt == "email":
            return fields.Email(error_messages=_codes(fields.Email, "email"), **common)
        if fmt == "attachment":  # the id of an uploaded file (engine.attachments)
            common["validate"].append(validate.Regexp(r"^[0-9a-f-]{36}$", error=_CODE + "attachment"))
        common["validate"].append(validate.Regexp(_NO_CONTROL, error=_CODE + "control"))
        return fields.String(error_messages=_codes(fields.String, "string"), **common)
    if kind == "integer":
        # whatever the form allows, a number must fit the 64-bit columns it may end up in
        common["validate"].append(validate.Range(min=MIN_INT, max=MAX_INT, error=_CODE + "int_bounds"))
        return _StrictInteger(error_messages=_codes(_StrictInteger, "integer"), **common)
    if kind == "number":
        return _DecimalString(error_messages=_codes(_DecimalString, "number"), **common)
    if kind == "boolean":
        return fields.Boolean(error_messages=_codes(fields.Boolean, "boolean"), **common)
    if kind == "object":
        return fields.Nested(schema_from_json_schema(prop, pointer), error_messages=_codes(fields.Nested, "object"),
                             **common)
    items = prop.get("items", {"type": "string"})
    if "minItems" in prop or "maxItems" in prop:
        common["validate"].append(validate.Length(min=prop.get("minItems"), max=prop.get("maxItems"),
                                                  error=_CODE + "items"))
    list_codes = _codes(fields.List, "list")
    if isinstance(items, dict) and items.get("type") == "object":
        return fields.List(fields.Nested(schema_from_json_schema(items, f"{pointer}/items"),
                                         error_messages=_codes(fields.Nested, "object")),
                           error_messages=list_codes, **common)
    return fields.List(_field_for(name, items, True, f"{pointer}/items"), error_messages=list_codes, **common)


def schema_from_json_schema(definition: dict[str, Any], pointer: str = "") -> Schema:
    """Build a marshmallow schema for an ``object`` JSON Schema; raises :class:`FormDefinitionError`."""
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
    declared = {
        name: _field_for(name, prop, name in required, f"{pointer}/properties/{name}".lstrip("/"))
        for name, prop in properties.items()
    }
    unknown = INCLUDE if definition.get("additionalProperties") is True else RAISE
    schema_cls = _FormSchema.from_dict(declared, name="FormSchema")
    return schema_cls(unknown=unknown)


@dataclass
class Form:
    """A task form: its JSON Schema, optional UI schema and the marshmallow schema built from it."""

    key: str
    json_schema: dict[str, Any]
    ui_schema: dict[str, Any] | None
    schema: Schema

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
        :class:`engine.errors.ValidationError` with per-field messages."""
        if not isinstance(data, dict):
            raise ValidationError({"_schema": [message("not_object")]})
        try:
            values = self.schema.load(data)
        except MarshmallowValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            raise ValidationError(field_texts(messages, self.json_schema)) from None
        # an optional field left empty is still part of the answer: scripts and gateways can say
        # ``comment or ''`` instead of guessing whether the name exists
        for name in self.json_schema.get("properties", {}):
            values.setdefault(name, None)
        return values


def build_form(key: str, json_schema: Any, ui_schema: Any = None) -> Form:
    if ui_schema is not None and not isinstance(ui_schema, dict):
        raise FormDefinitionError("a UI schema must be a JSON object")
    return Form(key, json_schema, ui_schema, schema_from_json_schema(json_schema))
