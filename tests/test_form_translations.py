"""Nynorsk and English texts for the task forms of the grant and meeting bundles
(bpmn/<bundle>/forms/<form>.<language>.json).

The web UI shows a form's bokmål labels unless a translation file next to it has the user's language:
``{"title": ..., "fields": {"<dotted path without array indexes>": {"label", "help", "options"}}}``.
Every field at every level needs a label; help where the bokmål form has a help text (``ui:help`` or
``description``); options (enum code -> label) where the field or its items have an enum.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

BPMN_DIR = Path(__file__).resolve().parent.parent / "bpmn"
FORMS_DIRS = [BPMN_DIR / "grant" / "forms", BPMN_DIR / "meetings" / "forms", BPMN_DIR / "agreements" / "forms"]
LANGUAGES = ("nn", "en")
ENTRY_KEYS = {"label", "help", "options"}


def _form_names() -> list[str]:
    """Every bundle's forms, as ``<bundle>/<form>``."""
    return sorted(f"{d.parent.name}/{p.name.removesuffix('.json')}" for d in FORMS_DIRS for p in d.glob("*.json")
                  if not p.name.endswith((".ui.json", ".nn.json", ".en.json")))


def _path(name: str, suffix: str) -> Path:
    bundle, _slash, form = name.partition("/")
    return BPMN_DIR / bundle / "forms" / f"{form}{suffix}"


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _fields(schema: dict[str, Any], ui: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every field of the schema by dotted path (no array indexes), with its bokmål help text and enum codes."""
    found: dict[str, dict[str, Any]] = {}
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        entry_ui = ui.get(name) or {}
        items = prop.get("items") or {}
        codes = prop.get("enum") or items.get("enum")
        found[path] = {
            "title": prop.get("title"),
            "help": entry_ui.get("ui:help") or prop.get("description"),
            "codes": [str(c) for c in codes] if codes else None,
        }
        if prop.get("type") == "object":
            found.update(_fields(prop, entry_ui, f"{path}."))
        elif prop.get("type") == "array" and items.get("type") == "object":
            found.update(_fields(items, entry_ui.get("items") or {}, f"{path}."))
    return found


def _bokmal(name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    schema = _load(_path(name, ".json"))
    ui_path = _path(name, ".ui.json")
    ui = _load(ui_path) if ui_path.exists() else {}
    return schema, _fields(schema, ui)


def test_walker_finds_nested_paths():
    schema = {"properties": {
        "title": {"type": "string", "title": "Tittel"},
        "signature": {"type": "object", "title": "Signatur", "properties": {
            "signed": {"type": "boolean", "title": "Signert", "description": "Hjelp"}}},
        "review": {"type": "object", "title": "Vurdering", "properties": {
            "scores": {"type": "array", "title": "Poeng", "items": {"type": "object", "properties": {
                "criterion": {"type": "string", "title": "Kriterium"}}}}}},
        "groups": {"type": "array", "title": "Grupper", "items": {"type": "string", "enum": ["a", "b"]}},
        "names": {"type": "array", "title": "Navn", "items": {"type": "string", "title": "Navn"}},
    }}
    ui = {"review": {"scores": {"ui:help": "Gi poeng", "items": {"criterion": {"ui:help": "Fra utlysningen"}}}}}
    fields = _fields(schema, ui)
    assert list(fields) == ["title", "signature", "signature.signed", "review", "review.scores",
                            "review.scores.criterion", "groups", "names"]
    assert fields["signature.signed"]["help"] == "Hjelp"
    assert fields["review.scores"]["help"] == "Gi poeng"
    assert fields["review.scores.criterion"]["help"] == "Fra utlysningen"
    assert fields["groups"]["codes"] == ["a", "b"]
    assert fields["title"]["help"] is None and fields["names"]["codes"] is None


def test_there_are_forms_to_translate():
    assert {"grant/application", "meetings/register_conclusions"} <= set(_form_names())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", _form_names())
def test_form_is_translated(name, language):
    path = _path(name, f".{language}.json")
    assert path.is_file(), f"{path.name} is missing"
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n", f"{path.name} is not pretty"
    texts = json.loads(text)
    assert set(texts) == {"title", "fields"}, path.name

    schema, fields = _bokmal(name)
    title = texts["title"]
    assert isinstance(title, str) and title.strip(), f"{path.name}: empty title"
    if language == "en":
        assert title != schema["title"], f"{path.name}: title is not translated"

    assert set(texts["fields"]) == set(fields), (
        f"{path.name}: missing {sorted(set(fields) - set(texts['fields']))}, "
        f"unknown {sorted(set(texts['fields']) - set(fields))}")
    for field, bokmal in fields.items():
        entry = texts["fields"][field]
        where = f"{path.name}: {field}"
        assert isinstance(entry, dict) and set(entry) <= ENTRY_KEYS, where
        assert isinstance(entry.get("label"), str) and entry["label"].strip(), f"{where}: no label"
        if bokmal["help"]:
            assert isinstance(entry.get("help"), str) and entry["help"].strip(), f"{where}: no help"
        else:
            assert "help" not in entry, f"{where}: help, but the bokmål form has none"
        if bokmal["codes"]:
            options = entry.get("options")
            assert isinstance(options, dict), f"{where}: no options"
            assert set(options) == set(bokmal["codes"]), f"{where}: options do not match the enum"
            assert all(isinstance(v, str) and v.strip() for v in options.values()), f"{where}: empty option"
        else:
            assert "options" not in entry, f"{where}: options, but the field has no enum"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_translation_without_a_form(language):
    forms = set(_form_names())
    orphans = [p.name for d in FORMS_DIRS for p in d.glob(f"*.{language}.json")
               if f"{d.parent.name}/{p.name.removesuffix(f'.{language}.json')}" not in forms]
    assert not orphans
