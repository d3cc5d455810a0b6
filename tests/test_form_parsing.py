"""Posted task forms read back as data: an unanswered yes/no question is no answer (not "no"), an unticked
checkbox is "no", and a repeating row left blank -- yes/no questions unanswered -- is no row."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from web.form_fields import parse_form

SCHEMA = {"type": "object", "required": ["conflict"], "properties": {
    "conflict": {"type": "boolean", "title": "Jeg er inhabil"},
    "newsletter": {"type": "boolean", "title": "Nyhetsbrev"},
    "decisions": {"type": "array", "items": {"type": "object", "required": ["application_id", "granted"],
                                             "properties": {"application_id": {"type": "integer"},
                                                            "granted": {"type": "boolean"}}}}}}


def test_an_unanswered_yes_no_question_is_no_answer_and_a_blank_row_no_row():
    # what the page posts untouched: checkboxes carry a marker, yes/no radios post nothing when unanswered
    posted = MultiDict([("newsletter.present", "1"), ("decisions.0.application_id", "")])
    assert parse_form(SCHEMA, posted) == {"newsletter": False}
    answered = MultiDict([("conflict", "false"), ("decisions.0.application_id", "7"), ("decisions.0.granted", "true")])
    assert parse_form(SCHEMA, answered) == {"conflict": False, "decisions": [{"application_id": 7, "granted": True}]}


def test_errors_reach_their_fields_checkbox_groups_and_rows_included():
    from engine.errors import ValidationError
    from engine.forms import build_form
    from web.form_fields import build_fields, error_summary

    schema = {"type": "object", "properties": {
        "groups": {"type": "array", "title": "Grupper", "items": {"type": "string", "enum": ["a", "b"]}},
        "lines": {"type": "array", "title": "Linjer", "maxItems": 1, "items": {
            "type": "object", "properties": {"n": {"type": "integer", "title": "Tall"}}}},
        "confirm": {"type": "boolean", "title": "Jeg bekrefter", "const": True}}}
    try:
        build_form("f.json", schema).validate({"groups": ["c"], "lines": [{"n": "x"}, {"n": 2}], "confirm": False})
    except ValidationError as refused:
        messages = refused.messages
    fields = build_fields(schema, None, {}, messages)
    by_id = {f.id: f for f in fields}
    assert by_id["f-groups"].errors == ["Must be one of: a, b."]  # shown at the group, not lost in a row
    assert by_id["f-lines"].errors == ["Longer than maximum length 1."]  # the list's own message
    assert by_id["f-lines"].rows[0][0].errors == ["Not a valid integer."]
    assert by_id["f-confirm"].kind == "yesno"  # a question that must be answered Yes is asked, not ticked
    assert [(i, m) for i, _label, m in error_summary(fields)] == [
        ("f-groups", "Must be one of: a, b."), ("f-lines", "Longer than maximum length 1."),
        ("f-lines-0-n", "Not a valid integer."), ("f-confirm", "You must answer Yes to go on.")]
