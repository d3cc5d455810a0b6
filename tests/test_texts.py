"""One way to speak the user's language: texts marked in the engine, translated where they are shown."""

from __future__ import annotations

import copy
import pickle

import pytest
from flask import Flask
from flask_babel import Babel

from engine.errors import ClaimedByOtherError, NotAuthorisedError, ValidationError
from engine.forms import build_form
from engine.mail import MailError, render
from engine.texts import Text, _
from web.i18n import translate, translate_all


def test_a_text_is_its_english_and_keeps_its_id_and_values():
    text = _("task %(task)s is claimed by %(name)s", task="t1", name="kari")
    assert isinstance(text, Text) and text == "task t1 is claimed by kari"
    assert (text.msgid, text.params) == ("task %(task)s is claimed by %(name)s", {"task": "t1", "name": "kari"})
    for again in (copy.deepcopy(text), pickle.loads(pickle.dumps(text))):
        assert (again, again.msgid, again.params) == (text, text.msgid, text.params)


def test_errors_carry_a_text_and_a_code_and_print_english():
    exc = ClaimedByOtherError("t1", "kari")
    assert (str(exc), exc.code, exc.text.msgid) == ("task t1 is claimed by kari", "claimed_by_other",
                                                     "task %(task)s is claimed by %(name)s")
    refused = NotAuthorisedError(_("%(user)s may not work task %(task)s: %(reason)s", user="per", task="t1",
                                   reason=_("the account is deactivated")))
    assert str(refused) == "per may not work task t1: the account is deactivated"
    assert refused.reason.msgid == "the account is deactivated" and refused.code == "not_authorised"


def _app(language: str) -> Flask:
    app = Flask(__name__, root_path=str(__import__("web").__path__[0]))
    Babel(app, locale_selector=lambda: language)
    return app


@pytest.mark.parametrize(("language", "expected"), [
    ("nb", ["Verdien må være minst 0.", "Fyll ut feltet."]),
    ("nn", ["Verdien må vere minst 0.", "Fyll ut feltet."]),
    ("en", ["The value must be at least 0.", "Fill in this field."]),
])
def test_form_messages_are_built_from_codes_and_translated(language, expected):
    form = build_form("f.json", {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "amount": {"type": "integer", "minimum": 0}}})
    with pytest.raises(ValidationError) as err:
        form.validate({"amount": -1})
    assert err.value.messages == {"amount": ["Must be greater than or equal to 0."],
                                  "name": ["Missing data for required field."]}
    with _app(language).test_request_context():
        shown = translate_all(err.value.messages)
    assert [shown["amount"][0], shown["name"][0]] == expected


def test_parameters_that_are_texts_are_translated_too():
    text = _("%(user)s may not work task %(task)s: %(reason)s", user="per", task="t1",
             reason=_("conflict of interest: you are a member of %(organisations)s", organisations="SiV"))
    with _app("nn").test_request_context():
        assert translate(text) == "per kan ikkje arbeide med oppgåve t1: inhabilitet: du høyrer til SiV"
        assert translate("plain words") == "plain words"


def test_mail_templates_are_files_and_unknown_placeholders_stay_visible():
    language, subject, body = render("task_overdue", "nn", {"task": "Vurder", "due": "01.02.2026"})
    assert (language, subject) == ("nn", "Fristen er ute: «Vurder»")
    assert body.startswith("Hei {{ name }},\n\nFristen for «Vurder» i «{{ process }}» gjekk ut 01.02.2026.")
    with pytest.raises(MailError, match="has no language 'de'"):
        render("task_overdue", "de", {})
    with pytest.raises(MailError, match="unknown mail template"):
        render("../task_overdue", "nb", {})
