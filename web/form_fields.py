"""Task forms as HTML fields: JSON Schema (+ UI schema) -> field descriptions for the templates, and the
posted form back into the JSON the engine validates.

Rendering is server-side and works without JavaScript: repeating rows (budget lines per party and year)
are added and removed with submit buttons that re-render the form with what the user typed. Validation
is not done here: the engine validates with the same form (engine/forms.py, JSON Schema) it always uses; this
module only turns the posted strings into JSON of the declared types and maps the engine's errors back onto
fields: nested field -> row index -> field, a field's own messages under ``_schema`` when its rows have some.

Field names are dotted paths (``budget.0.amount``); element ids are ``f-`` plus the path with dashes, so an
error summary can link to the field it is about (WCAG 3.3.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

_INT = re.compile(r"^-?\d+$")


@dataclass
class Field:
    path: str
    label: str
    kind: str  # text textarea number date email checkbox yesno select checkboxes list rows group shown
    required: bool = False
    help: str | None = None
    value: Any = None
    options: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)  # group: its fields
    rows: list[list[Field]] = field(default_factory=list)  # rows: one list of fields per row
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return "f-" + self.path.replace(".", "-")


def _messages(errors: Any, key: Any) -> Any:
    if not isinstance(errors, dict):
        return None
    return errors.get(key, errors.get(str(key)) if not isinstance(key, str) else errors.get(key))


def _as_list(messages: Any) -> list[str]:
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return messages
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, dict):  # a group or a list of rows: its own messages (the rows' go to the rows)
        return _as_list(messages.get("_schema"))
    return []


def _all_messages(messages: Any) -> list[str]:
    """Every message in ``messages``, rows included: a group of checkboxes shows them all at the group."""
    if isinstance(messages, dict):
        return [m for inner in messages.values() for m in _all_messages(inner)]
    return _as_list(messages)


def build_fields(schema: dict[str, Any], ui: dict[str, Any] | None, values: dict[str, Any] | None,
                 errors: dict[str, Any] | None = None, prefix: str = "", extra_rows: set[str] | None = None,
                 texts: dict[str, Any] | None = None) -> list[Field]:
    """Fields for an ``object`` schema in the UI schema's ``ui:order`` (else the schema's order).

    ``texts`` (a form's ``<form>.<language>.json``) replaces labels, help texts and option labels.
    """
    fields = _build(schema, ui, _rows_from_data(schema, ui, values or {}, values or {}), errors, prefix, extra_rows)
    for f in fields:  # a total shown with what the answers leave of it (``ui:options.subtract``)
        if f.kind == "shown" and f.attrs.get("subtract") and isinstance(f.value, int):
            rows_name, _dot, column = str(f.attrs["subtract"]).partition(".")
            rows = (values or {}).get(rows_name)
            used = sum(r.get(column) for r in rows if isinstance(r, dict) and isinstance(r.get(column), int)
                       and not isinstance(r.get(column), bool)) if isinstance(rows, list) else 0
            f.attrs["left"] = f.value - used
    if texts:
        _translate(fields, texts.get("fields", {}))
    return fields


def _rows_from_data(schema: dict[str, Any], ui: dict[str, Any] | None, values: dict[str, Any],
                    root: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the rows a process names ready to be answered: a list of objects whose UI schema says
    ``"ui:options": {"rowsFrom": "criteria", "rowLabel": "criterion"}`` and that has no rows yet starts with
    one row per item of the data field ``criteria`` (``{"criterion": item}``) -- a reviewer scores the call's
    own criteria instead of typing them."""
    out = dict(values)
    for name, prop in (schema.get("properties") or {}).items():
        sub_ui = (ui or {}).get(name) or {}
        if not isinstance(prop, dict):
            continue
        if prop.get("type") == "object":
            inner = out.get(name) if isinstance(out.get(name), dict) else {}
            filled = _rows_from_data(prop, sub_ui, inner, root)
            if filled != inner:
                out[name] = filled
        options = sub_ui.get("ui:options") or {}
        source = root.get(options.get("rowsFrom") or "") if options.get("rowLabel") else None
        if prop.get("type") == "array" and not out.get(name) and isinstance(source, list):
            out[name] = [{options["rowLabel"]: item} for item in source]
    return out


def _translate(fields: list[Field], texts: dict[str, Any]) -> None:
    for f in fields:
        key = re.sub(r"\.\d+(?=\.|$)", "", f.path)
        entry = texts.get(key) or {}
        if entry.get("label"):
            f.label = entry["label"]
        if entry.get("help"):
            f.help = entry["help"]
        if entry.get("options"):
            f.options = [(code, entry["options"].get(code, label)) for code, label in f.options]
        if f.kind == "list":  # one input per row, labelled "<label> <n>"
            for number, (item,) in enumerate(f.rows, 1):
                item.label = f"{f.label} {number}"
            continue
        _translate(f.children, texts)
        for row in f.rows:
            _translate(row, texts)


def _build(schema: dict[str, Any], ui: dict[str, Any] | None, values: dict[str, Any] | None,
           errors: dict[str, Any] | None = None, prefix: str = "", extra_rows: set[str] | None = None
           ) -> list[Field]:
    ui = ui or {}
    values = values or {}
    properties = schema.get("properties", {})
    order = [n for n in ui.get("ui:order", []) if n in properties]
    order += [n for n in properties if n not in order]
    required = set(schema.get("required", []))
    return [_field(name, properties[name], ui.get(name) or {}, values.get(name), _messages(errors, name),
                   f"{prefix}{name}", name in required, extra_rows or set()) for name in order]


def _field(name: str, prop: dict[str, Any], ui: dict[str, Any], value: Any, errors: Any, path: str, required: bool,
           extra_rows: set[str]) -> Field:
    kind = prop.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    f = Field(path, prop.get("title") or name, "text", required, ui.get("ui:help") or prop.get("description"), value,
              errors=_as_list(errors))
    widget = ui.get("ui:widget")
    if prop.get("readOnly") and widget == "textarea":
        f.kind, f.attrs = "textarea", {"readonly": True}  # a long text the process wrote: kept in its box
    elif prop.get("readOnly") and kind in ("string", "integer", "number"):
        # what the process knows, shown beside the answers (an application's title and score in a
        # recommendation row) and posted back unchanged, so a row that moves keeps its own
        f.kind, f.attrs = "shown", {"text": _shown(value, "date" if prop.get("format") == "date" else kind),
                                     "subtract": (ui.get("ui:options") or {}).get("subtract"),
                                     "hidden": widget == "hidden", "link": widget == "link"}
    elif kind == "object":
        f.kind = "group"
        f.children = _build(prop, ui, value if isinstance(value, dict) else {},
                                  errors if isinstance(errors, dict) else None, f"{path}.", extra_rows)
    elif kind == "array":
        items = prop.get("items", {"type": "string"})
        if "enum" in items:
            f.kind, f.options = "checkboxes", _options(items, ui)
            f.value = value if isinstance(value, list) else []
            f.errors = list(dict.fromkeys(_all_messages(errors)))
        elif items.get("type") == "object":
            f.kind = "rows"
            options = ui.get("ui:options") or {}  # rows the process gave, one per case: none added or taken
            f.attrs = {"addable": options.get("addable", True), "removable": options.get("removable", True)}
            if options.get("rowLabel"):  # each row named by one of its own values (a project's title)
                f.attrs["row_labels"] = [r.get(options["rowLabel"]) if isinstance(r, dict) else None
                                         for r in (value if isinstance(value, list) else [])]
            rows = value if isinstance(value, list) else []
            # an empty row to start from, and one more when asked for
            count = max(len(rows), 1) + (1 if path in extra_rows and f.attrs["addable"] else 0)
            item_ui = ui.get("items") or {}
            f.rows = [_build(items, item_ui, rows[i] if i < len(rows) and isinstance(rows[i], dict) else {},
                                   _messages(errors, i), f"{path}.{i}.", extra_rows) for i in range(count)]
        else:
            f.kind = "list"
            rows = value if isinstance(value, list) else []
            count = max(len(rows), 1) + (1 if path in extra_rows else 0)
            f.rows = [[Field(f"{path}.{i}", f"{f.label} {i + 1}", _scalar_kind(items, {}), False,
                             value=rows[i] if i < len(rows) else None, errors=_as_list(_messages(errors, i)),
                             attrs=_attrs(items))] for i in range(count)]
    elif "enum" in prop:
        f.kind, f.options = "select", _options(prop, ui)
    elif kind == "boolean":
        # a question that must be answered, or answered Yes (``const``), is asked with Yes and No; a checkbox
        # left unticked would answer No for the person
        asked = required or "const" in prop
        f.kind = "checkbox" if widget == "checkbox" or not asked else "yesno"
    else:
        f.kind = _scalar_kind(prop, ui)
        f.attrs = _attrs(prop)
    return f


def _shown(value: Any, kind: str) -> str:
    """A read-only value as people read it: ``250 000``, ``4,5`` (the page's language), or the text."""
    from flask_babel import format_decimal

    from .formatting import data_value

    if kind == "number" and isinstance(value, float):
        return format_decimal(value, format="#,##0.##")
    return data_value(value, {"kind": kind}) if value is not None else "–"


def _scalar_kind(prop: dict[str, Any], ui: dict[str, Any]) -> str:
    if prop.get("format") == "attachment":
        return "file"
    if prop.get("type") in ("integer", "number"):
        return "number"
    if prop.get("format") == "date":
        return "date"
    if prop.get("format") == "email":
        return "email"
    return "textarea" if ui.get("ui:widget") == "textarea" else "text"


def _attrs(prop: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, attr in (("minimum", "min"), ("maximum", "max"), ("maxLength", "maxlength"), ("minLength", "minlength")):
        if key in prop:
            attrs[attr] = prop[key]
    if prop.get("type") == "integer":
        attrs["step"] = 1
    if prop.get("format") == "attachment" and isinstance(prop.get("accept"), list):
        attrs["accept"] = ",".join(map(str, prop["accept"]))  # the suffixes the field narrows the upload to
    return attrs


def _options(prop: dict[str, Any], ui: dict[str, Any]) -> list[tuple[str, str]]:
    codes = [str(c) for c in prop["enum"] if c is not None]  # None: a list from the task's data was empty
    names = ui.get("ui:enumNames") or (ui.get("items") or {}).get("ui:enumNames") or codes
    return list(zip(codes, [str(n) for n in names], strict=False))


# -- posted form -> JSON -----------------------------------------------------------------------------------
def parse_form(schema: dict[str, Any], form: MultiDict, prefix: str = "", drop_row: str | None = None
               ) -> dict[str, Any]:
    """The posted fields as JSON of the declared types; empty optional fields are left out (the engine
    validates; a value it cannot read as the right type is passed on as typed, so the error says so)."""
    out: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        value = _parse(prop, form, f"{prefix}{name}", drop_row)
        if value is not None:
            out[name] = value
    return out


def _parse(prop: dict[str, Any], form: MultiDict, path: str, drop_row: str | None) -> Any:
    kind = prop.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        value = parse_form(prop, form, f"{path}.", drop_row)
        return value or None
    if kind == "array":
        items = prop.get("items", {"type": "string"})
        if "enum" in items:
            chosen = form.getlist(path)
            return chosen or None
        indexes = sorted({int(k[len(path) + 1:].split(".")[0]) for k in form
                          if k.startswith(f"{path}.") and k[len(path) + 1:].split(".")[0].isdigit()})
        rows = []
        for i in indexes:
            if drop_row == f"{path}.{i}":
                continue
            row = _parse(items, form, f"{path}.{i}", drop_row)
            if row not in (None, {}, ""):
                rows.append(row)
        return rows or None
    if kind == "boolean":
        raw = form.get(path)
        if raw is None:
            # an unticked checkbox is "no"; an unanswered yes/no question (radios, no marker) is no answer
            return False if f"{path}.present" in form else None
        return raw in ("true", "on", "1", "yes")
    raw = form.get(path)
    if (raw is None or raw.strip() == "") and prop.get("format") == "attachment":
        raw = form.get(f"{path}.current")  # the file uploaded before, kept when no new one is chosen
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if kind == "integer":
        compact = raw.replace(" ", "").replace("\u00a0", "")
        return int(compact) if _INT.match(compact) else raw
    if kind == "number":
        return raw.replace(" ", "").replace(",", ".")
    return raw


def file_accept(schema: dict[str, Any], path: str) -> list[str] | None:
    """The suffixes the attachment field at ``path`` accepts (its ``accept`` keyword), ``None`` for any."""
    prop: Any = schema
    for name in path.split("."):
        prop = (prop.get("properties") or {}).get(name) if isinstance(prop, dict) else None
    accept = prop.get("accept") if isinstance(prop, dict) else None
    return [str(a).lower() for a in accept] if isinstance(accept, list) and accept else None


def file_fields(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Paths of the attachment fields of a form (top level and inside objects)."""
    paths = []
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") == "object":
            paths += file_fields(prop, f"{prefix}{name}.")
        elif prop.get("format") == "attachment":
            paths.append(f"{prefix}{name}")
    return paths


def error_summary(fields: list[Field]) -> list[tuple[str, str, str]]:
    """(element id, label, message) for every field with an error, in page order."""
    out: list[tuple[str, str, str]] = []
    for f in fields:
        out.extend((f.id, f.label, m) for m in f.errors)
        out.extend(error_summary(f.children))
        for row in f.rows:
            out.extend(error_summary(row))
    return out
