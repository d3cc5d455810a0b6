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
