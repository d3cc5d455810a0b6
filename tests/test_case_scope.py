"""An instance's scope binds all its tasks, applicant tasks included: a task without a scope property of its
own is overseen by its case's scope (``human_tasks.scope``), so another scope's supervisors neither list,
open nor reassign it -- while who may work it stays its narrowing's to say (an applicant's organisation need
not be placed in any scope). And the "tasks you cannot take" list holds only tasks an exclusion (conflict of
interest) blocks, never another applicant's draft nor another scope's case."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from engine.errors import NotAuthorisedError
from engine.models import HumanTask, User
from engine.worklist import worklist
from tests.bpmn_builder import (
    _ext,
    chain,
    definitions,
    end,
    flow,
    gateway,
    process,
    props,
    start,
    user_task,
)
from tests.grant_driver import GrantYear, grant_runtime

A, B = "Region A", "Region B"


def _ids(page) -> set[str]:
    return {i.task_id for i in page.items}


def _blocked(page) -> set[str]:
    return {i.task_id for i in page.blocked}


def _lists(rt, username: str, view: str):
    with rt.Session() as s:
        user = s.scalar(select(User).where(User.username == username))
        return worklist(s, user, view)


@pytest.fixture
def case(rt, deploy):
    """A case of region B started by ada, whose organisation is placed in no region: her draft (named
    users) and a partner's co-signature (an organisation) open at once, then a vetting by the committee
    with a conflict of interest for the parties; no task has a scope property of its own."""
    body = [start("start", _ext(props(**{"samflyt.scopeField": "region", "samflyt.initiatorField": "owner"}))),
            gateway("parallel", "split"),
            user_task("draft", "Utkast", properties={"samflyt.userField": "owner"}),
            user_task("cosign", "Signer", properties={"samflyt.organisationField": "partner"}),
            gateway("parallel", "join"),
            user_task("vet", "Vurder", properties={"samflyt.excludeOrganisationsField": "parties"}),
            end(), chain("start", "split"), flow("split", "draft"), flow("split", "cosign"),
            flow("draft", "join"), flow("cosign", "join"), chain("join", "vet", "end")]
    deploy({"c.bpmn": definitions(process("scoped", *body, lanes={
        "Applicant": ["draft", "cosign"], "Committee": ["vet"]}))})
    rt.set_scope(A, ["A1", "A2"])
    rt.set_scope(B, ["B1", "B2"])
    rt.add_user("aud_a", roles=["au"], organisations=["A1"])  # supervisors (AU) of A and of B
    rt.add_user("aud_b", roles=["au"], organisations=["B1"])
    rt.add_user("bo", roles=["applicant"], organisations=["A1"])  # another applicant, in A
    rt.add_user("siv", roles=["applicant"], organisations=["B2"])  # another applicant, in B: the partner
    rt.add_user("kim", roles=["committee"], organisations=["B1"])  # a party: conflict of interest
    rt.add_user("kai", roles=["committee"], organisations=["B2"])
    rt.add_user("kaa", roles=["committee"], organisations=["A2"])  # a party, of the other region
    instance = rt.start("scoped", data={"region": B, "partner": "B2", "parties": ["B1", "A2"]}, actor="ada")
    tasks = {t.name: t.id for t in rt.tasks(instance)}
    return instance, tasks


def test_an_applicants_draft_is_overseen_by_its_cases_scope_only(rt, case):
    instance, tasks = case
    draft, cosign = tasks["draft"], tasks["cosign"]
    with rt.Session() as s:
        rows = {r.spec_name: r for r in s.scalars(select(HumanTask).where(HumanTask.instance_id == instance))}
    assert {r.scope for r in rows.values()} == {B}  # the case's scope, though no task names one ...
    assert all('"scopes"' not in r.restrictions for r in rows.values())  # ... and not as a restriction
    # the other region's supervisor: not listed, not opened, not handed out
    assert not _ids(_lists(rt, "aud_a", "all")) & {draft, cosign}
    assert not _ids(_lists(rt, "aud_a", "available")) & {draft, cosign}
    assert not rt.may_view_task(draft, "aud_a") and not rt.may_view_instance(instance, "aud_a")
    assert not rt.may_reassign(draft, "aud_a") and not rt.may_reassign(cosign, "aud_a")
    with pytest.raises(NotAuthorisedError, match="belongs to Region B"):
        rt.assign(draft, "ada", "aud_a")
    # the case's own supervisor and admins do
    for overseer in ("aud_b", "admin"):
        assert _ids(_lists(rt, overseer, "all")) >= {draft, cosign}
        assert rt.may_view_task(draft, overseer) and rt.may_view_instance(instance, overseer)
        assert rt.may_reassign(draft, overseer)
    # the applicant works her own draft though her organisation is in no region: she started it, it is hers
    assert draft in _ids(_lists(rt, "ada", "mine")) and rt.may_view_task(draft, "ada")
    rt.assign(draft, "ada", "aud_b", reason="hers")
    assert draft in _ids(_lists(rt, "ada", "mine"))
    # other applicants: another's draft is simply not theirs -- not offered, not listed as blocked
    for other in ("bo", "siv"):
        page = _lists(rt, other, "available")
        assert draft not in _ids(page) | _blocked(page) and not rt.may_view_task(draft, other)
    page = _lists(rt, "siv", "available")  # the partner co-signs; the applicant is not blocked from it
    assert cosign in _ids(page) and not _blocked(page)
    assert cosign not in _blocked(_lists(rt, "ada", "available")) | _blocked(_lists(rt, "bo", "available"))


def test_only_an_exclusion_lists_a_task_as_blocked_and_never_another_scopes(rt, case):
    instance, tasks = case
    rt.complete(tasks["draft"], "ada", {})
    rt.complete(tasks["cosign"], "siv", {})
    [vet] = [t.id for t in rt.tasks(instance)]
    kim = _lists(rt, "kim", "available")  # a party of the case's own region: told why not
    assert vet not in _ids(kim) and vet in _blocked(kim)
    assert kim.blocked[0].blocked_reason == "conflict of interest: you are a member of B1"
    assert vet in _ids(_lists(rt, "kai", "available"))
    kaa = _lists(rt, "kaa", "available")  # a party of the other region: the case's title is not shown
    assert vet not in _ids(kaa) | _blocked(kaa)
    assert not rt.may_reassign(vet, "aud_a") and rt.may_reassign(vet, "aud_b")
    assert vet not in _ids(_lists(rt, "aud_a", "all")) and vet in _ids(_lists(rt, "aud_b", "all"))


def test_open_rows_written_before_take_their_cases_scope(rt, case):
    """Engine revision 0015 gives the rows written before this rule their case's scope (community_0003 runs
    the same statement after moving the communities of an old database)."""
    instance, tasks = case
    with rt.engine.begin() as conn:
        conn.execute(update(HumanTask).where(HumanTask.instance_id == instance).values(scope=None))
        conn.execute(text("INSERT INTO human_tasks (task_id, instance_id, spec_name, title, restrictions, status, "
                          f"created_at) VALUES ('bound', {instance}, 'x', 'x', "
                          "'{\"scopes\": [\"Region A\", \"Region B\"]}', 'open', CURRENT_TIMESTAMP)"))
    root = Path(__file__).resolve().parent.parent
    for path in (root / "engine/migrations/versions/0015_task_scope_from_instance.py",
                 root / "community/migrations/versions/community_0003_community_is_scope.py"):
        spec = importlib.util.spec_from_file_location("revision", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with rt.engine.begin() as conn:
            conn.execute(text(module.FILL))
        with rt.Session() as s:
            scopes = dict(s.execute(select(HumanTask.spec_name, HumanTask.scope)
                                    .where(HumanTask.instance_id == instance)).all())
        assert scopes == {"draft": B, "cosign": B, "x": None}  # a task naming its scopes keeps its own
        assert not rt.may_reassign(tasks["draft"], "aud_a")
        with rt.engine.begin() as conn:
            conn.execute(update(HumanTask).where(HumanTask.instance_id == instance).values(scope=None))


def test_a_grant_applicants_draft_is_its_communitys_only(db_engine):
    """The grant bundle, two communities: a Vest-Viken applicant's draft is not Vestfold AU's to see or hand
    out, nor shown to other applicants as a task they cannot take."""
    rt = grant_runtime(db_engine)
    y = GrantYear(rt)
    y.at("2025-01-06T09:00")
    y.open_round("vv", "vera", ["2025-05-01"], 500_000, "Helsefellesskap Vest-Viken")
    y.start("grant_application", "hege", {"call_id": y.data("vv")["call_id"]}, ref="hege")
    y.open_round("vf", "per", ["2025-05-01"], 500_000, "Helsefellesskapet i Vestfold")
    y.start("grant_application", "ada", {"call_id": y.data("vf")["call_id"]}, ref="ada")
    hege, ada = y.task("hege", "fill_application"), y.task("ada", "fill_application")
    assert hege not in _ids(_lists(rt, "per", "all")) and ada in _ids(_lists(rt, "per", "all"))
    assert hege in _ids(_lists(rt, "vera", "all")) and ada not in _ids(_lists(rt, "vera", "all"))
    assert not rt.may_view_task(hege, "per") and not rt.may_reassign(hege, "per")
    assert not rt.may_view_instance(y.instance_id("hege"), "per")
    with pytest.raises(NotAuthorisedError):
        rt.assign(hege, "hege", "per")
    assert rt.may_view_task(hege, "vera") and rt.may_reassign(hege, "vera")
    assert rt.may_reassign(hege, "admin") and hege in _ids(_lists(rt, "admin", "all"))
    for applicant in ("ingrid", "ada", "bjorn"):  # another applicant of either community
        page = _lists(rt, applicant, "available")
        assert hege not in _ids(page) | _blocked(page) and not page.blocked
    assert hege in _ids(_lists(rt, "hege", "mine"))  # she started it: its first task is hers
    rt.assign(hege, "hege", "vera")
    assert hege in _ids(_lists(rt, "hege", "mine"))
