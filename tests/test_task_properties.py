"""Task-level extension properties that record who did what and keep multi-instance work apart."""

from __future__ import annotations

import pytest

from engine.errors import NotAuthorisedError
from tests.bpmn_builder import _ext, chain, definitions, end, mi, process, props, user_task


def test_initiator_and_completed_by_fields_record_the_people(rt, deploy):
    started = f'<bpmn:startEvent id="start">{_ext(props(**{"samflyt.initiatorField": "applicant_user"}))}'
    started += "</bpmn:startEvent>"
    sign = user_task("sign", properties={"samflyt.completedByField": "signed_by"})
    deploy({"p.bpmn": definitions(process("people", started, sign, end(), chain("start", "sign", "end")))})
    rt.add_user("ada", roles=["applicant"])
    rt.add_user("bo", roles=["applicant"])
    iid = rt.start("people", actor="ada")
    view = rt.complete(rt.tasks(iid)[0].id, "bo", {"signed_by": "someone else"})
    assert view.data["applicant_user"] == "ada"
    assert view.data["signed_by"] == "bo"  # the engine's record wins over what the form sent
    assert "applicant_user" not in rt.instance(rt.start("people")).data  # no actor, no field


def test_distinct_workers_give_each_sibling_task_to_someone_else(rt, deploy):
    review = user_task("review", "Vurder søknad", properties={"samflyt.distinctWorkers": "true"},
                       inner=mi(True, "slots", "slot"))
    deploy({"r.bpmn": definitions(process("reviews", '<bpmn:startEvent id="start"/>', review, end(),
                                          chain("start", "review", "end"), lanes={"Committee": ["review"]}))})
    for name in ("knut", "liv"):
        rt.add_user(name, roles=["committee"])
    iid = rt.start("reviews", {"slots": [1, 2]})
    first, second = rt.tasks(iid)
    rt.claim(first.id, "knut")
    with pytest.raises(NotAuthorisedError, match="already have another 'Vurder søknad' task"):
        rt.claim(second.id, "knut")
    rt.complete(first.id, "knut", {})
    with pytest.raises(NotAuthorisedError):  # completing counts too, and completing unclaimed claims it
        rt.complete(second.id, "knut", {})
    rt.complete(second.id, "liv", {})
    assert rt.instance(iid).status == "completed"
