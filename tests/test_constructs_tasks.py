"""BPMN constructs, one small diagram each, run through the Runtime.

Every runtime call is its own transaction that loads the workflow from the database and writes it back,
so each step below crosses a save -> load boundary. Tests assert what happened: the data, the path taken,
which human tasks became ready and the final instance status.
"""

from __future__ import annotations

import json
from uuid import UUID

import pytest
from SpiffWorkflow.util.task import TaskState

from engine.errors import ClaimedByOtherError, NotAuthorisedError, ValidationError
from engine.models import ProcessInstance
from tests.bpmn_builder import (
    business_rule_task,
    call_activity,
    chain,
    definitions,
    dmn_table,
    end,
    flow,
    gateway,
    manual_task,
    mi,
    process,
    script_task,
    service_task,
    start,
    user_task,
)
from tests.worklist import only_task as _task
from tests.worklist import open_names as _open


# --------------------------------------------------------------------------- helpers
def _completed_elements(rt, iid: int) -> set[str]:
    """BPMN ids of the elements that ran (the path taken), read from the stored workflow."""
    wf = rt.load_workflow(iid)
    return {t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.COMPLETED) if t.task_spec.bpmn_id}


def _task_data(rt, task_id: str) -> dict:
    """The data a ready human task holds, read from the stored workflow."""
    iid = next(t.instance_id for t in rt.tasks() if t.id == task_id)
    return dict(rt.load_workflow(iid).get_task_from_id(UUID(task_id)).data)


def _state_text(rt, iid: int) -> str:
    with rt.Session() as s:
        return s.get(ProcessInstance, iid).state


# --------------------------------------------------------------------------- exclusive gateway
def _exclusive_bpmn() -> str:
    return definitions(process(
        "excl",
        start(),
        user_task("apply"),
        gateway("exclusive", "size", default="to_medium"),
        script_task("large", 'route = "large"'),
        script_task("small", 'route = "small"'),
        script_task("medium", 'route = "medium"'),
        gateway("exclusive", "merge"),
        user_task("confirm"),
        end(),
        chain("start", "apply", "size"),
        flow("size", "large", "amount >= 10000"),
        flow("size", "small", "amount < 1000"),
        flow("size", "medium", id="to_medium"),
        flow("large", "merge"), flow("small", "merge"), flow("medium", "merge"),
        chain("merge", "confirm", "end"),
    ))


@pytest.mark.parametrize(("amount", "route"), [(50_000, "large"), (250, "small"), (5_000, "medium")])
def test_exclusive_gateway_takes_the_matching_condition_or_the_default(rt, deploy, amount, route):
    deploy({"excl.bpmn": _exclusive_bpmn()})
    iid = rt.start("excl", data={"applicant": "ada"}, actor="ada")
    assert _open(rt, iid) == ["apply"]
    assert not {"large", "small", "medium"} & _completed_elements(rt, iid)

    view = rt.complete(_task(rt, iid, "apply").id, "ada", {"amount": amount})
    assert view.status == "running"
    assert [t.name for t in view.tasks] == ["confirm"]
    assert view.data == {"applicant": "ada", "amount": amount, "route": route}
    ran = _completed_elements(rt, iid)
    assert route in ran
    assert not ({"large", "small", "medium"} - {route}) & ran  # the other branches never ran

    view = rt.complete(_task(rt, iid, "confirm").id, "ada", {"ok": True})
    assert view.status == "completed"
    assert view.data == {"applicant": "ada", "amount": amount, "route": route, "ok": True}
    assert view.tasks == []


# --------------------------------------------------------------------------- parallel gateway
def test_parallel_gateway_readies_both_branches_and_join_waits_for_both(rt, deploy):
    deploy({"par.bpmn": definitions(process(
        "par",
        start(),
        gateway("parallel", "fork"),
        user_task("budget"),
        user_task("ethics"),
        gateway("parallel", "join"),
        script_task("after", "joined = budget_ok and ethics_ok"),
        user_task("decide"),
        end(),
        chain("start", "fork"),
        chain("fork", "budget", "join"),
        chain("fork", "ethics", "join"),
        chain("join", "after", "decide", "end"),
    ))})
    iid = rt.start("par", data={"case": 7}, actor="ada")
    assert _open(rt, iid) == ["budget", "ethics"]

    view = rt.complete(_task(rt, iid, "ethics").id, "knut", {"ethics_ok": True})
    assert view.status == "running"
    assert [t.name for t in view.tasks] == ["budget"]  # the join waits for the other branch
    assert "after" not in _completed_elements(rt, iid)

    view = rt.complete(_task(rt, iid, "budget").id, "mia", {"budget_ok": True})
    assert [t.name for t in view.tasks] == ["decide"]
    assert "after" in _completed_elements(rt, iid)
    decide = _task(rt, iid, "decide")
    assert _task_data(rt, decide.id) == {"case": 7, "budget_ok": True, "ethics_ok": True, "joined": True}

    view = rt.complete(decide.id, "per", {"final": "yes"})
    assert view.status == "completed"
    assert view.data == {"case": 7, "budget_ok": True, "ethics_ok": True, "joined": True, "final": "yes"}


# --------------------------------------------------------------------------- inclusive gateway
def test_inclusive_gateway_takes_every_true_branch_and_joins_them(rt, deploy):
    deploy({"incl.bpmn": definitions(process(
        "incl",
        start(),
        gateway("inclusive", "split"),
        user_task("finance_review"),
        user_task("legal_review"),
        user_task("ethics_review"),
        gateway("inclusive", "join"),
        script_task("summary", "summary = finance_note + ' / ' + ethics_note"),
        end(),
        chain("start", "split"),
        flow("split", "finance_review", '"finance" in topics'),
        flow("split", "legal_review", '"legal" in topics'),
        flow("split", "ethics_review", '"ethics" in topics'),
        flow("finance_review", "join"), flow("legal_review", "join"), flow("ethics_review", "join"),
        chain("join", "summary", "end"),
    ))})
    iid = rt.start("incl", data={"topics": ["finance", "ethics"]}, actor="ada")
    assert _open(rt, iid) == ["ethics_review", "finance_review"]

    view = rt.complete(_task(rt, iid, "finance_review").id, "knut", {"finance_note": "fine"})
    assert view.status == "running"
    assert [t.name for t in view.tasks] == ["ethics_review"]
    assert "summary" not in _completed_elements(rt, iid)

    view = rt.complete(_task(rt, iid, "ethics_review").id, "mia", {"ethics_note": "ok"})
    assert view.status == "completed"
    assert view.data["finance_note"] == "fine" and view.data["ethics_note"] == "ok"
    assert view.data["summary"] == "fine / ok"  # the join merged both branches' data
    ran = _completed_elements(rt, iid)
    assert {"finance_review", "ethics_review", "join", "summary"} <= ran
    assert "legal_review" not in ran


# --------------------------------------------------------------------------- user task with a form
FORM = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "title": "Project title", "minLength": 3},
        "amount": {"type": "integer", "minimum": 1},
        "start_date": {"type": "string", "format": "date"},
        "kind": {"type": "string", "enum": ["pilot", "scale-up"]},
    },
    "required": ["title", "amount"],
}


def test_user_task_form_validates_and_stores_coerced_data(rt, deploy):
    deploy({"form.bpmn": definitions(process(
        "formproc", start(), user_task("apply", "Apply", form="forms/application.json"), end(),
        chain("start", "apply", "end"))),
        "forms/application.json": json.dumps(FORM)})
    iid = rt.start("formproc", data={"applicant": "ada"}, actor="ada")
    task = _task(rt, iid, "apply")
    assert task.form_key == "forms/application.json"
    assert task.title == "Apply"
    assert rt.form_for(task.id).json_schema == FORM

    before_state = _state_text(rt, iid)
    before_audit = rt.audit(iid)
    with pytest.raises(ValidationError) as err:
        rt.complete(task.id, "ada", {"title": "x", "amount": "many", "kind": "other", "bogus": 1})
    messages = err.value.messages
    assert set(messages) == {"title", "amount", "kind", "bogus"}
    assert all(isinstance(m, list) and m for m in messages.values())
    with pytest.raises(ValidationError) as err:
        rt.complete(task.id, "ada", {"start_date": "2024-13-45"})
    assert set(err.value.messages) == {"title", "amount", "start_date"}

    # nothing changed: same stored workflow, same open task, no audit events
    assert _state_text(rt, iid) == before_state
    assert rt.audit(iid) == before_audit
    view = rt.instance(iid)
    assert view.status == "running"
    assert [t.id for t in view.tasks] == [task.id]
    assert view.tasks[0].claimed_by is None
    assert view.data == {"applicant": "ada"}

    view = rt.complete(task.id, "ada", {"title": "Digital hjemmeoppfølging", "amount": "125000",
                                        "start_date": "2025-01-15", "kind": "pilot"})
    assert view.status == "completed"
    assert view.data == {"applicant": "ada", "title": "Digital hjemmeoppfølging", "amount": 125000,
                         "start_date": "2025-01-15", "kind": "pilot"}
    complete = [e for e in rt.audit(iid) if e["action"] == "complete"]
    assert len(complete) == 1 and complete[0]["details"]["data"]["amount"] == 125000


# --------------------------------------------------------------------------- manual task
def test_manual_task_is_a_human_task(rt, deploy):
    deploy({"manual.bpmn": definitions(process(
        "manual", start(), manual_task("sign", "Sign the agreement"), script_task("filed", "archived = signed"),
        end(), chain("start", "sign", "filed", "end")))})
    iid = rt.start("manual", actor="ada")

    tasks = rt.tasks(iid)
    assert [(t.name, t.title, t.status) for t in tasks] == [("sign", "Sign the agreement", "open")]
    assert [t.id for t in rt.tasks(user="ada")] == [tasks[0].id]
    assert rt.instance(iid).status == "running"
    assert "filed" not in _completed_elements(rt, iid)

    view = rt.complete(tasks[0].id, "ada", {"signed": True})
    assert view.status == "completed"
    assert view.data == {"signed": True, "archived": True}


# --------------------------------------------------------------------------- script task
def test_script_task_computes_data_that_survives_save_and_load(rt, deploy):
    deploy({"script.bpmn": definitions(process(
        "script", start(),
        script_task("sum", "total = sum(line['amount'] for line in lines)\nbiggest = max(lines, "
                           "key=lambda line: line['amount'])['what']\ndel lines"),
        user_task("check"),
        script_task("after", "checked_total = total * 2 if ok else 0"),
        end(),
        chain("start", "sum", "check", "after", "end")))})
    lines = [{"what": "lisens", "amount": 400}, {"what": "opplæring", "amount": 1100}, {"what": "drift", "amount": 50}]
    iid = rt.start("script", data={"lines": lines}, actor="ada")

    assert rt.instance(iid).data == {"total": 1550, "biggest": "opplæring"}
    check = _task(rt, iid, "check")
    assert _task_data(rt, check.id) == {"total": 1550, "biggest": "opplæring"}

    view = rt.complete(check.id, "ada", {"ok": True})
    assert view.status == "completed"
    assert view.data == {"total": 1550, "biggest": "opplæring", "ok": True, "checked_total": 3100}


# --------------------------------------------------------------------------- service task
def test_service_task_calls_the_connector_and_stores_its_result(rt, deploy, connectors):
    calls = []

    def double(value):
        calls.append(value)
        return value * 2

    connectors.register("calc.double", double, params={"value": int})
    deploy({"service.bpmn": definitions(process(
        "service", start(), user_task("enter"),
        service_task("double", "calc.double", result="doubled", value=("int", "amount + 1")),
        user_task("check"),
        end(), chain("start", "enter", "double", "check", "end")))})
    iid = rt.start("service", actor="ada")
    assert calls == []
    assert _open(rt, iid) == ["enter"]

    view = rt.complete(_task(rt, iid, "enter").id, "ada", {"amount": 20})
    assert calls == [21]
    assert view.status == "running"
    assert view.data == {"amount": 20, "doubled": 42}
    assert [t.name for t in view.tasks] == ["check"]
    assert "double" in _completed_elements(rt, iid)

    view = rt.complete(view.tasks[0].id, "ada", {})
    assert view.status == "completed"
    assert view.data == {"amount": 20, "doubled": 42}
    assert calls == [21]  # a reload never runs the service task again


# --------------------------------------------------------------------------- DMN business rule task
def _grant_dmn() -> str:
    return dmn_table(
        "grant_level",
        inputs=[("amount", "integer"), ("partners", "integer")],
        outputs=[("level", "string"), ("approver", "string")],
        rules=[
            (["< 100000", "-"], ['"small"', '"secretariat"']),
            (["< 1000000", ">= 2"], ['"medium"', '"committee"']),
            (["< 1000000", "-"], ['"medium"', '"au"']),
            (["-", "-"], ['"large"', '"board"']),
        ],
        hit_policy="FIRST",
    )


@pytest.mark.parametrize(("amount", "partners", "level", "approver"), [
    (50_000, 1, "small", "secretariat"),
    (400_000, 3, "medium", "committee"),
    (400_000, 1, "medium", "au"),
    (5_000_000, 4, "large", "board"),
])
def test_business_rule_task_applies_the_dmn_decision(rt, deploy, amount, partners, level, approver):
    deploy({"rules.bpmn": definitions(process(
        "rules", start(), user_task("apply"), business_rule_task("classify", "grant_level"), user_task("review"),
        end(), chain("start", "apply", "classify", "review", "end"))),
        "grant_level.dmn": _grant_dmn()})
    iid = rt.start("rules", data={"partners": partners}, actor="ada")
    assert _open(rt, iid) == ["apply"]

    view = rt.complete(_task(rt, iid, "apply").id, "ada", {"amount": amount})
    assert view.status == "running"
    assert view.data == {"amount": amount, "partners": partners, "level": level, "approver": approver}
    assert [t.name for t in view.tasks] == ["review"]
    assert "classify" in _completed_elements(rt, iid)

    view = rt.complete(view.tasks[0].id, "ada", {"seen": True})
    assert view.status == "completed"
    assert view.data == {"amount": amount, "partners": partners, "level": level, "approver": approver,
                         "seen": True}


# --------------------------------------------------------------------------- call activity, two deep
def test_call_activity_nested_two_deep_runs_the_innermost_user_task(rt, deploy):
    deploy({
        "a.bpmn": definitions(process(
            "A", start("a_start"), script_task("a_before", "trail = ['A']"), call_activity("call_b", "B"),
            script_task("a_after", "trail = trail + ['A done']"), end("a_end"),
            chain("a_start", "a_before", "call_b", "a_after", "a_end")), id="defs_a"),
        "b.bpmn": definitions(process(
            "B", start("b_start"), script_task("b_before", "trail = trail + ['B']"), call_activity("call_c", "C"),
            script_task("b_after", "trail = trail + ['B done']"), end("b_end"),
            chain("b_start", "b_before", "call_c", "b_after", "b_end")), id="defs_b"),
        "c.bpmn": definitions(process(
            "C", start("c_start"), script_task("c_before", "trail = trail + ['C']"), user_task("c_task", "Answer"),
            end("c_end"), chain("c_start", "c_before", "c_task", "c_end")), id="defs_c"),
    })
    iid = rt.start("A", data={"applicant": "ada"}, actor="ada")

    tasks = rt.tasks()
    assert [(t.name, t.title, t.instance_id, t.process_id) for t in tasks] == [("c_task", "Answer", iid, "A")]
    assert [t.id for t in rt.tasks(user="ada")] == [tasks[0].id]
    view = rt.instance(iid)
    assert view.status == "running"
    assert _task_data(rt, tasks[0].id) == {"applicant": "ada", "trail": ["A", "B", "C"]}

    view = rt.complete(tasks[0].id, "ada", {"answer": 42})
    assert view.status == "completed"
    assert view.data == {"applicant": "ada", "answer": 42, "trail": ["A", "B", "C", "B done", "A done"]}
    assert rt.tasks() == []


# --------------------------------------------------------------------------- multi-instance user tasks
def _mi_bpmn(pid: str, parallel: bool) -> str:
    return definitions(process(
        pid, start(),
        user_task("review", "Review", inner=mi(parallel, "reviewers", "reviewer", "scores", "score")),
        script_task("total", "total = sum(scores)"),
        end(), chain("start", "review", "total", "end")))


SCORES = {"knut": 4, "mia": 5, "per": 3}


def test_parallel_multi_instance_user_task_one_task_per_element(rt, deploy):
    deploy({"mip.bpmn": _mi_bpmn("mip", parallel=True)})
    iid = rt.start("mip", data={"reviewers": ["knut", "mia", "per"]}, actor="ada")

    tasks = rt.tasks(iid)
    assert [t.name for t in tasks] == ["review"] * 3  # all ready at once
    by_reviewer = {_task_data(rt, t.id)["reviewer"]: t for t in tasks}
    assert set(by_reviewer) == {"knut", "mia", "per"}

    for n, who in enumerate(["per", "knut", "mia"]):  # not in list order
        view = rt.complete(by_reviewer[who].id, who, {"score": SCORES[who], "comment": f"from {who}"})
        if n < 2:
            assert view.status == "running"
            assert len(view.tasks) == 2 - n
            assert by_reviewer[who].id not in {t.id for t in view.tasks}
    assert view.status == "completed"
    # SpiffWorkflow appends each result to a separate output list as its instance completes
    assert view.data["scores"] == [3, 4, 5]
    assert view.data["total"] == 12
    assert view.data["reviewers"] == ["knut", "mia", "per"]
    assert not {"reviewer", "score", "comment"} & set(view.data)  # only the output item is gathered


def test_sequential_multi_instance_user_task_one_ready_at_a_time(rt, deploy):
    deploy({"mis.bpmn": _mi_bpmn("mis", parallel=False)})
    iid = rt.start("mis", data={"reviewers": ["knut", "mia", "per"]}, actor="ada")

    seen = []
    for who in ["knut", "mia", "per"]:
        tasks = rt.tasks(iid)
        assert len(tasks) == 1, [t.name for t in tasks]
        data = _task_data(rt, tasks[0].id)
        assert data["reviewer"] == who
        seen.append(tasks[0].id)
        view = rt.complete(tasks[0].id, who, {"score": SCORES[who]})
    assert len(set(seen)) == 3
    assert view.status == "completed"
    assert view.data["scores"] == [4, 5, 3]
    assert view.data["total"] == 12


# --------------------------------------------------------------------------- lanes
def _lane_bpmn() -> str:
    return definitions(process(
        "lanes", start(), user_task("assess", "Assess application"), end(),
        chain("start", "assess", "end"), lanes={"Committee": ["start", "assess", "end"]}))


def test_lane_task_is_worked_by_its_role_and_refused_to_others(rt, deploy):
    deploy({"lanes.bpmn": _lane_bpmn()})
    iid = rt.start("lanes", data={"case": 1}, actor="ada")
    task = _task(rt, iid, "assess")
    assert task.lane == "Committee"
    assert rt.tasks(user="ada") == []
    assert [t.id for t in rt.tasks(user="knut")] == [task.id]
    assert [t.id for t in rt.tasks(user="mia")] == [task.id]

    with pytest.raises(NotAuthorisedError):
        rt.claim(task.id, "ada")
    with pytest.raises(NotAuthorisedError):
        rt.complete(task.id, "ada", {"decision": "approve"})
    assert rt.instance(iid).tasks[0].claimed_by is None

    claimed = rt.claim(task.id, "knut")
    assert claimed.claimed_by == "knut"
    with pytest.raises(ClaimedByOtherError):
        rt.complete(task.id, "mia", {"decision": "reject"})
    assert rt.tasks(user="mia") == []

    view = rt.complete(task.id, "knut", {"decision": "approve"})
    assert view.status == "completed"
    assert view.data == {"case": 1, "decision": "approve"}
    events = [(e["action"], e["actor"]) for e in rt.audit(iid)]
    assert events == [("start", "ada"), ("claim", "knut"), ("complete", "knut")]
    complete = rt.audit(iid)[-1]
    assert complete["details"]["as_admin"] is False
    assert complete["details"]["element"] == "assess"


def test_admin_completes_a_lane_task_and_is_audited_as_admin(rt, deploy):
    deploy({"lanes.bpmn": _lane_bpmn()})
    iid = rt.start("lanes", data={"case": 2}, actor="ada")
    task = _task(rt, iid, "assess")
    assert [t.id for t in rt.tasks(user="admin")] == [task.id]

    view = rt.complete(task.id, "admin", {"decision": "reject"})
    assert view.status == "completed"
    assert view.data == {"case": 2, "decision": "reject"}
    complete = [e for e in rt.audit(iid) if e["action"] == "complete"]
    assert len(complete) == 1
    assert complete[0]["actor"] == "admin"
    assert complete[0]["task_id"] == task.id
    assert complete[0]["details"]["as_admin"] is True
    assert complete[0]["details"]["data"] == {"decision": "reject"}
