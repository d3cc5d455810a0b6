"""Answers that must be given, in the web form (issue 16, first group): each refusal is shown at its field
with the error tied to it (aria-describedby, aria-invalid, a link from the error summary), in bokmål and
nynorsk, and nothing is completed; the applicant sees a co-signer's reason on her task and the case page."""

from __future__ import annotations

import re

from tests.test_web import _form, client_for, site  # noqa: F401 - the fixture


def _field_error(html: str, field_id: str, text: str) -> None:
    """The error summary links to the field, the field names its error (aria) and the error says ``text``."""
    assert f'href="#{field_id}"' in html, field_id
    tag = re.search(rf'<[a-z]+ [^>]*id="{field_id}"[^>]*>', html)
    assert tag and re.search(rf'aria-describedby="[^"]*\b{field_id}-error\b', tag.group(0)), field_id
    assert 'aria-invalid="true"' in tag.group(0)
    assert text in html.split(f'id="{field_id}-error">')[1].split("</p>")[0], text


def test_end_before_start_and_a_year_outside_the_period_are_refused_at_their_fields(site):  # noqa: F811
    app, y = site
    ada = client_for(app, "ada")
    task = y.task("app", "fill_application")
    form = {**_form(), "_action": "complete", "start_date": "2025-07-01", "end_date": "2025-06-30",
            "budget.1.year": "2027"}
    page = ada.post(f"/tasks/{task}", data=form)
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    _field_error(html, "f-end_date", "Kan ikke være tidligere enn 2025-07-01.")
    _field_error(html, "f-budget-1-year", "Kan ikke være senere enn 2025.")
    assert y.task("app", "fill_application") == task  # still open
    ada.post("/language", data={"lang": "nn", "next": "/tasks"})
    nynorsk = ada.post(f"/tasks/{task}", data=form).get_data(as_text=True)
    _field_error(nynorsk, "f-end_date", "Kan ikkje vere tidlegare enn 2025-07-01.")
    assert ada.post(f"/tasks/{task}", data={**form, "end_date": "2026-06-30", "budget.1.year": "2025"}
                    ).status_code == 302


def test_a_co_signers_no_needs_a_reason_and_the_applicant_sees_it(site):  # noqa: F811
    app, y = site
    client_for(app, "ada").post(f"/tasks/{y.task('app', 'fill_application')}", data={**_form(), "_action": "complete"})
    bjorn = client_for(app, "bjorn")
    cosign = y.task("app", "cosign_application")
    page = bjorn.post(f"/tasks/{cosign}", data={"_action": "complete", "signature.signed": "false"})
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    _field_error(html, "f-signature-refusal_reason", "Fyll ut feltet.")
    reason = "Budsjettet er ikke behandlet i klinikkledelsen."
    done = bjorn.post(f"/tasks/{cosign}", data={"_action": "complete", "signature.signed": "false",
                                                "signature.refusal_reason": reason})
    assert done.status_code == 302
    refill = y.task("app", "fill_application")
    ada = client_for(app, "ada")
    task_page = ada.get(f"/tasks/{refill}").get_data(as_text=True)
    assert f"Sykehuset i Vestfold HF: {reason}" in task_page
    assert "Begrunnelse fra parter som ikke signerte" in task_page
    case_page = ada.get(f"/instances/{y.instance_id('app')}").get_data(as_text=True)
    assert f"Sykehuset i Vestfold HF: {reason}" in case_page


def test_the_confirmation_must_be_yes_and_a_yes_no_must_be_answered(site):  # noqa: F811
    app, y = site
    ada = client_for(app, "ada")
    ada.post(f"/tasks/{y.task('app', 'fill_application')}", data={**_form(), "_action": "complete"})
    y.cosign("app", "bjorn")
    submit = y.task("app", "submit_application")
    page = ada.get(f"/tasks/{submit}").get_data(as_text=True)
    assert 'type="radio" id="f-confirm-yes"' in page and 'type="radio" id="f-confirm-no"' in page
    unanswered = ada.post(f"/tasks/{submit}", data={"_action": "complete"})
    assert unanswered.status_code == 422
    _field_error(unanswered.get_data(as_text=True), "f-confirm", "Fyll ut feltet.")
    no = ada.post(f"/tasks/{submit}", data={"_action": "complete", "confirm": "false"})
    assert no.status_code == 422
    _field_error(no.get_data(as_text=True), "f-confirm", "Du må svare Ja for å gå videre.")
    assert y.task("app", "submit_application") == submit
    assert ada.post(f"/tasks/{submit}", data={"_action": "complete", "confirm": "true"}).status_code == 302


def test_an_absurd_amount_is_a_field_message(site):  # noqa: F811
    app, y = site
    ada = client_for(app, "ada")
    task = y.task("app", "fill_application")
    page = ada.post(f"/tasks/{task}", data={**_form(), "_action": "complete", "budget.0.amount": "900 000 000"})
    assert page.status_code == 422
    _field_error(page.get_data(as_text=True), "f-budget-0-amount", "Verdien må være mellom 0 og 100000000.")
    # 10^30 cannot be stored at all; the form's other complaints come with it, so all are corrected at once
    both = ada.post(f"/tasks/{task}", data={**_form(), "_action": "complete", "budget.0.amount": "1" + "0" * 30,
                                            "end_date": "2025-01-01"}).get_data(as_text=True)
    _field_error(both, "f-budget-0-amount", "Tallet er for stort til å lagres.")
    _field_error(both, "f-end_date", "Kan ikke være tidligere enn 2025-07-01.")
    assert both.count("Tallet er for stort til å lagres.") == 2  # once in the summary, once at the field
