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


def _messages(form, data):
    with pytest.raises(ValidationError) as err:
        form.validate(data)
    return err.value.messages


def test_pattern_is_searched_not_anchored_as_json_schema_says():
    form = build_form("p.json", {"type": "object", "properties": {
        "code": {"type": "string", "pattern": "[0-9]{4}"},
        "phone": {"type": "string", "pattern": "^\\+?[0-9 ]{8,15}$"}}})
    assert form.validate({"code": "Postnummer 3117 Tønsberg"})["code"] == "Postnummer 3117 Tønsberg"
    assert [str(m) for m in _messages(form, {"code": "ingen"})["code"]] == ["String does not match expected pattern."]
    assert set(_messages(form, {"phone": "ring meg på 33342000"})) == {"phone"}  # anchored where it says so


SIGNATURE = {"type": "object", "required": ["signed"], "properties": {
    "signed": {"type": "boolean", "title": "Vi signerer"},
    "refusal_reason": {"type": "string", "maxLength": 200}},
    "if": {"properties": {"signed": {"const": False}}, "required": ["signed"]},
    "then": {"required": ["refusal_reason"]}}


def test_if_then_makes_a_field_required_by_the_answer_to_another():
    form = build_form("s.json", SIGNATURE)
    assert form.validate({"signed": True}) == {"signed": True, "refusal_reason": None}
    assert form.validate({"signed": "false", "refusal_reason": "Ikke forankret"})["signed"] is False
    messages = _messages(form, {"signed": False})
    assert messages == {"refusal_reason": ["Missing data for required field."]}
    assert _messages(form, {"signed": False, "refusal_reason": None}) == messages  # left empty is no reason
    nested = build_form("n.json", {"type": "object", "properties": {"signature": SIGNATURE}})
    assert set(_messages(nested, {"signature": {"signed": False}})["signature"]) == {"refusal_reason"}


def test_dependent_required_asks_for_the_field_that_goes_with_another():
    form = build_form("d.json", {"type": "object", "properties": {
        "phone": {"type": "string"}, "phone_hours": {"type": "string"}},
        "dependentRequired": {"phone": ["phone_hours"]}})
    assert form.validate({})["phone"] is None
    assert form.validate({"phone": "33342000", "phone_hours": "8-16"})["phone_hours"] == "8-16"
    assert _messages(form, {"phone": "33342000"}) == {"phone_hours": ["Missing data for required field."]}


def test_const_true_is_a_confirmation_that_must_be_yes():
    form = build_form("c.json", {"type": "object", "required": ["confirm"], "properties": {
        "confirm": {"type": "boolean", "const": True}, "kind": {"type": "string", "const": "søknad"}}})
    assert form.validate({"confirm": "true"}) == {"confirm": True, "kind": None}
    assert [str(m) for m in _messages(form, {"confirm": False})["confirm"]] == ["You must answer Yes to go on."]
    assert _messages(form, {})["confirm"] == ["Missing data for required field."]
    assert [str(m) for m in _messages(form, {"confirm": True, "kind": "brev"})["kind"]] == ["Must be søknad."]


PERIOD = {"type": "object", "required": ["start", "end"], "properties": {
    "start": {"type": "string", "format": "date"},
    "end": {"type": "string", "format": "date", "formatMinimum": {"$data": "1/start"}},
    "lines": {"type": "array", "items": {"type": "object", "properties": {
        "year": {"type": "integer", "formatMinimum": {"$data": "3/start"}, "formatMaximum": {"$data": "3/end"}}}}},
    "deadline": {"type": "string", "format": "date", "formatMaximum": "2030-12-31"}}}


def test_a_date_compared_with_another_field_and_years_inside_the_period():
    form = build_form("period.json", PERIOD)
    ok = form.validate({"start": "2026-03-01", "end": "2026-03-01", "lines": [{"year": "2026"}]})
    assert ok["lines"] == [{"year": 2026}]
    messages = _messages(form, {"start": "2026-03-01", "end": "2026-02-28",
                                "lines": [{"year": 2026}, {"year": 2025}, {"year": 2027}], "deadline": "2031-01-01"})
    assert [str(m) for m in messages["end"]] == ["Must not be earlier than 2026-03-01."]
    assert set(messages["lines"]) == {1, 2}
    assert [str(m) for m in messages["lines"][1]["year"]] == ["Must not be earlier than 2026."]
    assert [str(m) for m in messages["lines"][2]["year"]] == ["Must not be later than 2026."]
    assert [str(m) for m in messages["deadline"]] == ["Must not be later than 2030-12-31."]
    # a start that is itself wrong gets its own message; the comparison waits for a date to compare with
    assert set(_messages(form, {"start": "1. mars", "end": "2026-01-01"})) == {"start"}
    with pytest.raises(FormDefinitionError, match="formatMinimum"):
        build_form("bad.json", {"type": "object", "properties": {"a": {"type": "string", "formatMinimum": 5}}})


def test_storage_rules_and_coercion_hold_whatever_the_form_says():
    form = build_form("s.json", {"type": "object", "properties": {
        "n": {"type": "integer"}, "x": {"type": "number", "minimum": 0}, "t": {"type": "string"},
        "when": {"type": "string", "format": "date-time"}, "pick": {"type": "string", "enum": ["a", "b"]}}})
    assert form.validate({"n": 12.0, "x": 1250.5, "when": "2026-01-15T10:00:00+01:00"}) == {
        "n": 12, "x": "1250.5", "t": None, "when": "2026-01-15T10:00:00+01:00", "pick": None}
    messages = _messages(form, {"n": 2**64, "x": "-1", "t": "a\x07b", "when": "2026-01-15", "pick": "c"})
    assert messages["n"] == ["The number is too large to be stored."]
    assert messages["x"] == ["Must be greater than or equal to 0."]
    assert messages["t"] == ["The text contains a control character (such as a NUL byte) that is not allowed."]
    assert messages["when"] == ["Not a valid datetime."]
    assert messages["pick"] == ["Must be one of: a, b."]
    assert _messages(form, {"n": "12,5", "x": "mye"}) == {"n": ["Not a valid integer."], "x": ["Not a valid number."]}
    assert [m.msgid for m in _messages(form, {"n": "12,5"})["n"]] == ["Not a valid integer."]  # a Text to translate


def test_a_schema_the_library_cannot_read_is_a_definition_error():
    with pytest.raises(FormDefinitionError, match="pattern"):
        build_form("bad.json", {"type": "object", "properties": {"a": {"type": "string", "pattern": "(["}}})
    with pytest.raises(FormDefinitionError, match="minimum"):
        build_form("bad.json", {"type": "object", "properties": {"a": {"type": "integer", "minimum": "ti"}}})
