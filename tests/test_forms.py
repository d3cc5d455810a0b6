"""Form files -> validation: what is accepted, coerced and refused."""

from __future__ import annotations

import pytest

from engine.errors import ValidationError
from engine.forms import FormDefinitionError, build_form

BUDGET = {
    "type": "object",
    "required": ["title", "lines"],
    "properties": {
        "title": {"type": "string", "minLength": 3},
        "start": {"type": "string", "format": "date"},
        "groups": {"type": "array", "items": {"type": "string", "enum": ["barn og unge", "eldre"]}},
        "lines": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["party", "year", "amount"],
            "properties": {"party": {"type": "string"}, "year": {"type": "integer", "minimum": 2024},
                           "amount": {"type": "integer", "minimum": 0}}}},
        "share": {"type": "number"},
        "ok": {"type": "boolean"},
    },
}


def test_valid_input_is_coerced_to_plain_json():
    form = build_form("budget.json", BUDGET)
    data = form.validate({"title": "Felles forløp", "start": "2026-01-15", "groups": ["eldre"], "ok": "true",
                          "share": "0.2", "lines": [{"party": "Horten kommune", "year": "2026", "amount": 150000}]})
    assert data == {"title": "Felles forløp", "start": "2026-01-15", "groups": ["eldre"], "ok": True, "share": "0.2",
                    "lines": [{"party": "Horten kommune", "year": 2026, "amount": 150000}]}


def test_errors_are_reported_per_field_including_rows():
    form = build_form("budget.json", BUDGET)
    with pytest.raises(ValidationError) as err:
        form.validate({"title": "x", "start": "15.01.2026", "groups": ["alle"], "surprise": 1,
                       "lines": [{"party": "SiV", "year": 2020, "amount": -5}]})
    messages = err.value.messages
    assert set(messages) == {"title", "start", "groups", "surprise", "lines"}
    assert set(messages["lines"][0]) == {"year", "amount"}


def test_additional_properties_true_keeps_extra_fields():
    form = build_form("open.json", {"type": "object", "additionalProperties": True,
                                    "properties": {"a": {"type": "integer"}}})
    assert form.validate({"a": "1", "note": "kept"}) == {"a": 1, "note": "kept"}


@pytest.mark.parametrize("definition", [
    {"type": "array"}, {"type": "object", "properties": {"a": {"type": "date"}}},
    {"type": "object", "properties": {"a": {"enum": []}}}, {"type": "object", "properties": []},
])
def test_unusable_definitions_are_refused(definition):
    with pytest.raises(FormDefinitionError):
        build_form("bad.json", definition)


CHOOSE = {"type": "object", "required": ["community"], "properties": {
    "community": {"type": "string", "title": "Helsefellesskap",
                  "anyOf": ["options_from_task_data_var:community_options"]},
    "groups": {"type": "array", "title": "Grupper",
               "items": {"type": "string", "anyOf": ["options_from_task_data_var:group_options"]}},
    "note": {"type": "string", "maxLength": 10}}}


def test_choices_from_the_tasks_data_become_the_fields_options():
    form = build_form("choose.json", CHOOSE)
    assert form.takes_options_from_data
    assert not build_form("plain.json", {"type": "object", "properties": {"a": {"type": "string"}}}
                          ).takes_options_from_data
    data = {"community_options": [{"value": "Helsefellesskap Vest-Viken", "label": "Vest-Viken"},
                                  {"value": "Helsefellesskapet i Vestfold", "label": "Vestfold"}],
            "group_options": ["elderly", "children"]}
    chosen = form.for_data(data)
    assert chosen.json_schema["properties"]["community"]["enum"] == ["Helsefellesskap Vest-Viken",
                                                                     "Helsefellesskapet i Vestfold"]
    assert chosen.ui_schema["community"]["ui:enumNames"] == ["Vest-Viken", "Vestfold"]
    assert chosen.json_schema["properties"]["groups"]["items"]["enum"] == ["elderly", "children"]
    assert chosen.validate({"community": "Helsefellesskapet i Vestfold", "groups": ["children"]})["groups"] == [
        "children"]
    with pytest.raises(ValidationError, match="community: Must be one of"):
        chosen.validate({"community": "Helsefellesskap Innlandet"})
    with pytest.raises(ValidationError, match="groups"):
        chosen.validate({"community": "Helsefellesskapet i Vestfold", "groups": ["adults"]})
    assert "enum" not in form.json_schema["properties"]["community"]  # the deployed form is not changed
    # no list in the data: nothing can be chosen, and the required field says so
    with pytest.raises(ValidationError, match="community"):
        form.for_data({}).validate({"community": "Helsefellesskapet i Vestfold"})


def test_any_of_is_refused_except_as_choices_from_data():
    with pytest.raises(FormDefinitionError, match="anyOf is supported only as"):
        build_form("bad.json", {"type": "object", "properties": {
            "a": {"type": "string", "anyOf": [{"const": "x"}, {"const": "y"}]}}})
