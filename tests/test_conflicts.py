"""Conflict of interest is personal: a hospital committee member may review a municipality's application the
hospital co-signs; a member of the main applicant's organisation may not; a member who declares a conflict on
the case page stands aside (recorded, the review task they hold released, no review task offered again), and
AU sees who stood aside and why while the applicant's case page names no reviewer."""

from __future__ import annotations

import re

from sqlalchemy import select

from community.records import GrantConflict
from engine import accounts
from tests.test_web import PASSWORDS, _to_review, client_for, site  # noqa: F401 - the web app (fixture)


def test_members_stand_aside_in_person_and_the_applicant_does_not_see_the_reviewers(site):  # noqa: F811
    app, y = site
    rt = y.rt
    with rt.session() as s:
        for user in ("knut", "hanne"):
            accounts.set_password(s, user, f"passord-{user}")
            PASSWORDS[user] = f"passord-{user}"
    _to_review(app, y)  # Horten's application, co-signed by the hospital (Sykehuset i Vestfold HF)
    instance_id = y.instance_id("app")
    application_id = y.data("app")["application_id"]
    reviews = [t.id for t in rt.tasks(instance_id) if t.name == "review_application"]
    assert len(reviews) == 2
    assert y.data("app")["review_plan"]["eligible"] == ["knut", "mia", "tor"]  # hanne (Horten) may not review

    knut = client_for(app, "knut")  # the hospital's member: co-signing is no personal conflict
    assert knut.post(f"/tasks/{reviews[0]}/claim").status_code == 302
    form = knut.get(f"/tasks/{reviews[0]}").get_data(as_text=True)
    criteria = y.data("app")["criteria"]
    for number, criterion in enumerate(criteria, 1):  # the call's criteria are the rows to score
        assert f"<legend>{number}. {criterion}</legend>" in form
    assert 'name="_add"' not in form
    posted = dict(re.findall(r'<input type="hidden" name="(review\.scores\.[^"]+)" value="([^"]*)"', form))
    unanswered = knut.post(f"/tasks/{reviews[0]}", data={**posted, "_action": "complete"})
    assert unanswered.status_code == 422 and 'id="f-review-conflict_of_interest-error"' in unanswered.get_data(
        as_text=True)  # "Jeg er inhabil" must be answered
    scores = {f"review.scores.{i}.score": "4" for i in range(len(criteria))}
    done = knut.post(f"/tasks/{reviews[0]}", data={**posted, **scores, "review.conflict_of_interest": "false",
                                                   "_action": "complete"})
    assert done.status_code == 302
    [completed] = [e for e in rt.audit(instance_id) if e["action"] == "complete" and e["task_id"] == reviews[0]]
    review = completed["details"]["data"]["review"]
    assert [(r["criterion"], r["score"]) for r in review["scores"]] == [(c, 4) for c in criteria]
    assert rt.why_not(reviews[1], "hanne") == "conflict of interest: you are a member of Horten kommune"
    with rt.Session() as s:
        recorded = {c.username: c.source for c in s.scalars(select(GrantConflict))}
    assert recorded == {"hanne": "organisation"}

    mia = client_for(app, "mia")
    assert mia.post(f"/tasks/{reviews[1]}/claim").status_code == 302
    case = mia.get(f"/instances/{instance_id}").get_data(as_text=True)
    link = f'href="/applications/{application_id}/conflict"'
    assert link in case and "Meld inhabilitet" in case
    form = mia.get(f"/applications/{application_id}/conflict").get_data(as_text=True)
    assert '<label for="reason">' in form
    empty = mia.post(f"/applications/{application_id}/conflict", data={"reason": "  "})
    assert empty.status_code == 422 and 'id="reason-error"' in empty.get_data(as_text=True)
    assert 'href="#reason"' in empty.get_data(as_text=True)  # the error summary points at the field
    done = mia.post(f"/applications/{application_id}/conflict", data={"reason": "Søsteren min er prosjektleder."})
    assert done.status_code == 302 and done.location.endswith("/tasks")
    after = mia.get("/tasks").get_data(as_text=True)
    assert "Du står utenfor «Trygg hjemkomst». Vurderingsoppgavene i saken tilbys deg ikke lenger." in after
    assert mia.get(f"/instances/{instance_id}").status_code == 403  # no longer among the case's workers
    assert next(t for t in rt.tasks(instance_id) if t.id == reviews[1]).claimed_by is None  # released
    assert mia.post(f"/tasks/{reviews[1]}/claim").status_code in (302, 403)
    assert next(t for t in rt.tasks(instance_id) if t.id == reviews[1]).claimed_by is None
    assert rt.why_not(reviews[1], "mia") == "conflict of interest: you have stood aside in this case"
    available = mia.get("/tasks?view=available").get_data(as_text=True)
    assert f'/tasks/{reviews[1]}"' not in available or "stood aside" in available or "inhabil" in available

    au = client_for(app, "per").get(f"/instances/{instance_id}").get_data(as_text=True)
    assert "Søsteren min er prosjektleder." in au and "Mia" in au  # AU sees who stood aside and why

    ada = client_for(app, "ada")
    own = ada.get(f"/instances/{instance_id}").get_data(as_text=True)
    history = own[own.index("<h2>Historikk</h2>"):]
    for member in ("knut", "mia", "Knut", "Mia"):
        assert member not in history, member
    assert "Søsteren min" not in own and link not in own
    assert re.search(r"Vurder søknad</a>[^<]*(–|&ndash;) Tatt av", own) is None  # no holder named
    assert ada.get(f"/applications/{application_id}/conflict").status_code == 403
    assert client_for(app, "knut").get("/applications/999999/conflict").status_code == 404

    # a member who declares the conflict in the review itself is on record too
    y.review("app", "tor", 3, conflict=True)
    with rt.Session() as s:
        recorded = {c.username: c.source for c in s.scalars(select(GrantConflict))}
    assert recorded == {"hanne": "organisation", "mia": "declared", "tor": "declared"}
