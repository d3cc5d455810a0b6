"""Concurrent claims and completions, and who may work a task."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.errors import ClaimedByOtherError, ConflictError, NotAuthorisedError, TaskNotOpenError
from tests.bpmn_builder import chain, definitions, end, process, start, user_task

LANED = definitions(process(
    "laned", start(), user_task("apply", "Søk"), user_task("review", "Vurder søknad"), user_task("note"), end(),
    chain("start", "apply", "review", "note", "end"),
    lanes={"Applicant": ["start", "apply"], "Committee": ["review", "end"]}))


def _race(n: int, fn):
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        try:
            return ("ok", fn(i))
        except Exception as exc:  # noqa: BLE001 - outcomes are compared below
            return ("err", exc)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_two_people_complete_the_same_task_at_once(rt, deploy):
    deploy({"laned.bpmn": LANED})
    rt.add_user("ola", roles=["applicant"], organisations=["Horten kommune"])
    iid = rt.start("laned")
    task = rt.tasks(iid)[0]
    users = ["ada", "ola"]
    outcomes = _race(2, lambda i: rt.complete(task.id, users[i], {"by": users[i]}))
    wins = [o for o in outcomes if o[0] == "ok"]
    losses = [o[1] for o in outcomes if o[0] == "err"]
    assert len(wins) == 1 and len(losses) == 1
    assert isinstance(losses[0], ConflictError), losses[0]
    view = rt.instance(iid)
    assert [t.name for t in view.tasks] == ["review"]  # advanced exactly once
    completes = [e for e in rt.audit(iid) if e["action"] == "complete"]
    assert len(completes) == 1 and completes[0]["details"]["data"] == view.data


def test_twenty_claim_the_same_task_and_one_wins(rt, deploy):
    deploy({"laned.bpmn": LANED})
    names = [f"member{i}" for i in range(20)]
    for name in names:
        rt.add_user(name, roles=["committee"])
    iid = rt.start("laned")
    rt.complete(rt.tasks(iid)[0].id, "ada", {})
    task = rt.tasks(iid)[0]
    outcomes = _race(20, lambda i: rt.claim(task.id, names[i]))
    winners = [o[1].claimed_by for o in outcomes if o[0] == "ok"]
    assert len(winners) == 1
    assert all(isinstance(o[1], ClaimedByOtherError) for o in outcomes if o[0] == "err")
    assert rt.tasks(iid)[0].claimed_by == winners[0]
    assert len([e for e in rt.audit(iid) if e["action"] == "claim"]) == 1


def test_lane_role_decides_who_may_claim_and_complete(rt, deploy):
    deploy({"laned.bpmn": LANED})
    iid = rt.start("laned")
    apply_task = rt.tasks(iid)[0]
    with pytest.raises(NotAuthorisedError):
        rt.claim(apply_task.id, "knut")  # committee, not applicant
    with pytest.raises(NotAuthorisedError):
        rt.complete(apply_task.id, "knut", {})
    assert [t.id for t in rt.tasks(user="ada")] == [apply_task.id]
    assert rt.tasks(user="knut") == []
    rt.complete(apply_task.id, "ada", {})  # completing unclaimed claims it in the same step
    review = rt.tasks(iid)[0]
    assert review.lane == "Committee"
    rt.claim(review.id, "knut")
    with pytest.raises(ClaimedByOtherError):
        rt.complete(review.id, "mia", {})  # same role, but claimed by knut
    with pytest.raises(ClaimedByOtherError):
        rt.unclaim(review.id, "mia")
    rt.unclaim(review.id, "knut")
    rt.complete(review.id, "mia", {"score": 4})
    note = rt.tasks(iid)[0]
    assert note.lane is None and [t.id for t in rt.tasks(user="per")] == [note.id]  # outside lanes: anyone
    rt.complete(note.id, "per", {})
    assert rt.instance(iid).status == "completed"


def test_admin_may_act_on_any_task_and_is_audited_as_admin(rt, deploy):
    deploy({"laned.bpmn": LANED})
    iid = rt.start("laned")
    rt.complete(rt.tasks(iid)[0].id, "ada", {})
    review = rt.tasks(iid)[0]
    rt.claim(review.id, "knut")
    rt.complete(review.id, "admin", {"score": 1})  # even one claimed by someone else
    event = [e for e in rt.audit(iid) if e["action"] == "complete"][-1]
    assert event["actor"] == "admin" and event["details"]["as_admin"] is True
    note = rt.tasks(iid)[0]
    rt.assign(note.id, "per", "admin", reason="holiday cover")
    assert rt.tasks(iid)[0].claimed_by == "per"
    with pytest.raises(NotAuthorisedError, match="admins and supervisors only"):
        rt.assign(note.id, "per", "knut")  # a committee member does not hand out work


def test_narrowing_by_organisation_and_conflict_of_interest(rt, deploy):
    body = [start(), user_task("sign", "Signer", properties={"samflyt.organisationField": "partner"}),
            user_task("review", "Vurder", properties={"samflyt.excludeOrganisationsField": "parties"}),
            end(), chain("start", "sign", "review", "end")]
    deploy({"n.bpmn": definitions(process("narrow", *body, lanes={"Committee": ["review"]}))})
    rt.add_user("hanne", roles=["applicant"], organisations=["Larvik kommune"])
    iid = rt.start("narrow", data={"partner": "Larvik kommune",
                                   "parties": ["Horten kommune", "Sykehuset i Vestfold HF"]})
    sign = rt.tasks(iid)[0]
    with pytest.raises(NotAuthorisedError, match="only members of Larvik kommune"):
        rt.claim(sign.id, "ada")
    assert rt.tasks(user="ada") == [] and [t.id for t in rt.tasks(user="hanne")] == [sign.id]
    rt.complete(sign.id, "hanne", {})
    review = rt.tasks(iid)[0]
    with pytest.raises(NotAuthorisedError, match="conflict of interest"):
        rt.claim(review.id, "knut")  # knut works at the hospital, a party to the application
    assert rt.tasks(user="knut") == [] and [t.id for t in rt.tasks(user="mia")] == [review.id]
    rt.claim(review.id, "mia")


def test_completed_task_cannot_be_completed_or_claimed_again(rt, deploy):
    deploy({"laned.bpmn": LANED})
    iid = rt.start("laned")
    task = rt.tasks(iid)[0]
    rt.complete(task.id, "ada", {"first": True})
    with pytest.raises(TaskNotOpenError):
        rt.complete(task.id, "ada", {"second": True})
    with pytest.raises(TaskNotOpenError):
        rt.claim(task.id, "ada")
    assert rt.instance(iid).data == {"first": True}
    refused = [e for e in rt.audit(iid) if e["action"] == "complete_refused"]
    assert refused[-1]["details"]["data"] == {"second": True}


def test_readers_do_not_wait_for_a_writer(rt, deploy):
    """On SQLite (WAL) worklists and instance pages are read while a step is being written."""
    import time

    from sqlalchemy import update as sql_update

    from engine.models import ProcessInstance

    deploy({"laned.bpmn": LANED})
    iid = rt.start("laned")
    with rt.WriteSession() as writer, writer.begin():
        writer.execute(sql_update(ProcessInstance).where(ProcessInstance.id == iid).values(title="in progress"))
        started = time.monotonic()
        with ThreadPoolExecutor(1) as pool:  # another connection, as another request would use
            view = pool.submit(rt.instance, iid).result(timeout=20)
        assert time.monotonic() - started < 2
    assert view.title is None  # it saw the last committed state


def test_a_task_bound_to_a_community_is_for_that_community_only_supervisors_included(rt, deploy):
    """Two health communities in one deployment: the working committee of one neither sees, claims nor
    hands out the other's case; a task whose community field is empty is bound to none."""
    from engine.models import HumanTask
    from engine.worklist import worklist

    body = [start(), user_task("check", "Kontroller", properties={"samflyt.communityField": "community"}),
            end(), chain("start", "check", "end")]
    deploy({"c.bpmn": definitions(process("bound", *body, lanes={"AU": ["check"]}))})
    rt.set_scope("Helsefellesskapet i Vestfold", ["Sykehuset i Vestfold HF", "Horten kommune"])
    rt.set_scope("Helsefellesskap Vest-Viken", ["Vestre Viken HF"])
    rt.add_user("per", roles=["au"], organisations=["Sykehuset i Vestfold HF"])
    rt.add_user("vera", roles=["au"], organisations=["Vestre Viken HF"])
    rt.add_user("ola", roles=["au"], organisations=["Vestre Viken HF"])
    vestfold = rt.start("bound", data={"community": "Helsefellesskapet i Vestfold"})
    unbound = rt.start("bound", data={"community": ""})
    [task] = rt.tasks(vestfold)
    assert rt.why_not(task.id, "vera") == ("the case belongs to Helsefellesskapet i Vestfold, "
                                           "and you are not a member of it")
    with pytest.raises(NotAuthorisedError, match="not a member"):
        rt.claim(task.id, "vera")
    with pytest.raises(NotAuthorisedError, match="not a member"):
        rt.assign(task.id, "ola", "vera", reason="ferie")  # nor may AU hand out another community's work
    assert not rt.may_view_task(task.id, "vera") and not rt.may_view_instance(vestfold, "vera")
    assert not rt.may_reassign(task.id, "vera") and rt.may_reassign(task.id, "per")
    assert rt.may_view_instance(vestfold, "per") and rt.may_view_instance(unbound, "vera")
    assert not rt.may_send_messages(vestfold, "vera") and rt.may_send_messages(vestfold, "per")
    assert [t.instance_id for t in rt.tasks(user="vera")] == [unbound]
    with rt.Session() as s:
        from sqlalchemy import select

        from engine.models import User
        users = {u.username: u for u in s.scalars(select(User)).unique()}
        assert s.scalar(select(HumanTask.scope).where(HumanTask.task_id == task.id)) == \
            "Helsefellesskapet i Vestfold"
        assert [i.instance_id for i in worklist(s, users["vera"], "all").items] == [unbound]
        assert {i.instance_id for i in worklist(s, users["per"], "all").items} == {vestfold, unbound}
        assert {i.instance_id for i in worklist(s, users["admin"], "all").items} == {vestfold, unbound}
    rt.claim(task.id, "per")
    rt.assign(task.id, "admin", "admin")  # admins are bound to no community
    # moving an organisation to the other community moves its people's access with it
    rt.set_scope("Helsefellesskap Vest-Viken", ["Sykehuset i Vestfold HF"])
    assert rt.why_not(task.id, "per") is not None
    assert [e["action"] for e in rt.audit() if e["action"] == "scope_saved"] == ["scope_saved"] * 3
