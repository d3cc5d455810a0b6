"""Splitting an agreement (the reverse of a merge): the original lives on in two or more new agreements, each
with its own first version; the history says so on both sides and the public register lists the new ones."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from community.records import Agreement, AgreementEvent, AgreementVersion
from engine.errors import SamflytError
from tests.test_agreement_pages import site  # noqa: F401 - the demo's register, as a fixture

PARTS = [{"letter": "d", "title": "Akuttmedisinsk kjede utenfor sykehus", "text": "# Prehospitalt\n- AMK\n"},
         {"letter": "l", "title": "Samarbeid om legevakt", "text": "# Legevakt\n- Felles legevakt\n"}]


def _split(app, agreement_id, parts, **extra):
    rt = app.extensions["samflyt_runtime"]
    return rt.call_connector("agreements.split", {"agreement_id": agreement_id, "parts": parts, **extra}, "admin")


def test_an_agreement_split_in_two(site):  # noqa: F811
    result = _split(site, 5, PARTS, reason="To tema", case_id="2026.04", effective_from="2026-02-01")
    assert result["names"] == ["Delavtale d – Akuttmedisinsk kjede utenfor sykehus",
                               "Delavtale l – Samarbeid om legevakt"]
    rt = site.extensions["samflyt_runtime"]
    with rt.Session() as s:
        origin = s.get(Agreement, 5)
        assert origin.status == "split"
        new = [s.get(Agreement, i) for i in result["agreement_ids"]]
        assert [(a.split_from_id, a.status, a.letter) for a in new] == [(5, "active", "d"), (5, "active", "l")]
        first = s.scalars(select(AgreementVersion).where(AgreementVersion.agreement_id == new[1].id)).one()
        assert (first.number, first.status, first.approved_case, first.effective_from.isoformat(), first.text) == (
            1, "in_force", "2026.04", "2026-02-01", "# Legevakt\n- Felles legevakt\n")
        kinds = s.scalars(select(AgreementEvent.kind).where(AgreementEvent.agreement_id == 5)).all()
        assert kinds[-1] == "split"
        assert s.scalars(select(AgreementEvent.kind).where(AgreementEvent.agreement_id == new[0].id)).all() == [
            "split_from"]

    client = site.test_client()
    register = client.get("/agreements").get_data(as_text=True)
    assert "Samarbeid om legevakt" in register and "Akuttmedisinsk kjede utenfor sykehus" in register
    assert "Samarbeid om den akuttmedisinske kjeden" not in register  # the original is no longer listed
    page = client.get("/agreements/5").get_data(as_text=True)
    assert "<dt>Delt i</dt>" in page and "Delavtale l – Samarbeid om legevakt" in page
    assert "Delt i nye avtaler" in page  # the event in the history
    assert page.count("/agreements/5/versions/") == 3  # the original keeps its versions
    part = client.get(f"/agreements/{result['agreement_ids'][1]}").get_data(as_text=True)
    assert "<dt>Delt ut fra</dt>" in part and "Delavtale d – Samarbeid om den akuttmedisinske kjeden" in part
    assert "Felles legevakt" in part
    with client.session_transaction() as session:
        session["lang"] = "en"
    english = client.get("/agreements/5").get_data(as_text=True)
    assert "<dt>Split into</dt>" in english

    with pytest.raises(SamflytError, match="not active"):  # a split agreement cannot be split again
        _split(site, 5, PARTS)


@pytest.mark.parametrize(("agreement_id", "parts", "error"), [
    (5, PARTS[:1], "at least two"),
    (5, [PARTS[0], {"letter": "j", "title": "IKT", "text": "x"}], "already a delavtale j"),
    (5, [PARTS[0], {"letter": "d", "title": "Annen", "text": "x"}], "already a delavtale d"),
    (5, [PARTS[0], {"letter": "m", "title": "", "text": "x"}], "needs a title"),
    (5, [PARTS[0], {"letter": "m", "title": "Tom", "text": " "}], "text of its first version"),
    (8, PARTS, "under revision"),  # delavtale j has a revision under way
    (999, PARTS, "no agreement 999"),
])
def test_a_split_that_cannot_be_made_is_refused(site, agreement_id, parts, error):  # noqa: F811
    with pytest.raises(SamflytError, match=error):
        _split(site, agreement_id, parts)
    with site.extensions["samflyt_runtime"].Session() as s:  # nothing was kept
        assert s.get(Agreement, 5).status == "active"
        assert s.scalar(select(Agreement.id).where(Agreement.split_from_id.is_not(None))) is None
