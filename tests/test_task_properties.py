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


def test_role_field_gives_a_task_the_role_or_the_user_its_data_names(rt, deploy):
    """``samflyt.roleField``: the role a task is for comes from its data instead of its lane; with the field
    empty the task is for no role, and its ``samflyt.userField`` names who may work it (and who is reminded)."""
    from engine.models import HumanTask
    from engine.reminders import recipients

    answer = user_task("answer", properties={"samflyt.roleField": "role", "samflyt.userField": "user"})
    deploy({"a.bpmn": definitions(process("assigned", '<bpmn:startEvent id="start"/>', answer, end(),
                                          chain("start", "answer", "end"), lanes={"Responsible": ["answer"]}))})
    rt.add_user("ola", roles=["au"], email="ola@example.no")
    rt.add_user("kari", roles=["secretariat"], email="kari@example.no")
    for_role = rt.start("assigned", {"role": "AU", "user": ""})
    task = rt.tasks(for_role)[0].id
    assert rt.why_not(task, "ola") is None
    assert "the task needs the role 'au'" in str(rt.why_not(task, "kari"))
    for_user = rt.start("assigned", {"role": "", "user": "kari"})
    task = rt.tasks(for_user)[0].id
    assert rt.why_not(task, "kari") is None and rt.why_not(task, "ola") is not None
    with rt.Session() as s:
        row = s.query(HumanTask).filter_by(task_id=task).one()
        assert row.candidate_role is None
        assert [u.username for u in recipients(s, row)] == ["kari"]
    nobody = rt.start("assigned", {"role": "", "user": ""})  # neither: nobody but an admin
    assert rt.why_not(rt.tasks(nobody)[0].id, "ola") is not None
