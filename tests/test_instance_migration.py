"""Moving running instances to a new version of their process (issue 15, point 10): SpiffWorkflow's diff
decides, each instance moves or is refused in its own transaction, and both are audited; the command line
and the admin page drive the same service. Also: stored states and specs say which serializer wrote them,
and a state written by an older one loads after an upgrade."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.errors import NotAuthorisedError, NotFoundError, SamflytError
from engine.models import HumanTask, ProcessInstance
from tests.bpmn_builder import chain, definitions, end, process, start, user_task


def v1() -> str:
    """Prepare, then review, then done."""
    return definitions(process(
        "case", start(), user_task("prepare", "Forbered"), user_task("review", "Vurder"), end(),
        chain("start", "prepare", "review", "end"), lanes={"Admin": ["prepare", "review"]}))


def v2() -> str:
    """A check is added between prepare and review, and review is renamed (an edit of a reached element)."""
    return definitions(process(
        "case", start(), user_task("prepare", "Forbered"), user_task("check", "Kontroller"),
        user_task("review", "Vurder saken"), end(),
        chain("start", "prepare", "check", "review", "end"), lanes={"Admin": ["prepare", "check", "review"]}))


def _task(rt, instance_id: int, name: str) -> str:
    return next(t.id for t in rt.tasks(instance_id=instance_id) if t.name == name)


def _version(rt, instance_id: int) -> int:
    return rt.instance(instance_id).version


def test_a_hundred_running_instances_move_and_two_are_refused(rt, deploy):
    deploy({"case.bpmn": v1()})
    ids = [rt.start("case", {"n": i}, actor="admin") for i in range(100)]
    moved_on = ids[10], ids[57]
    for instance_id in moved_on:  # past prepare: now at review, which version 2 changes
        rt.complete(_task(rt, instance_id, "prepare"), "admin")
    before = {i: rt.instance(i).as_json() for i in moved_on}
    assert deploy({"case.bpmn": v2()})[0].version == 2

    dry = rt.migrate("case", 1, 2, "admin", dry_run=True)
    assert [o.instance_id for o in dry] == ids
    assert {o.instance_id for o in dry if o.status == "refused"} == set(moved_on)
    assert {o.status for o in dry if o.instance_id not in moved_on} == {"would_migrate"}
    refused = next(o for o in dry if o.instance_id == moved_on[0])
    assert any("'review'" in r and "changed in version 2" in r for r in refused.reasons), refused.reasons
    assert all(_version(rt, i) == 1 for i in (ids[0], ids[99]))  # a dry run moves nothing
    assert not [e for e in rt.audit() if e["action"] in ("migrated", "migration_refused")]

    outcomes = rt.migrate("case", 1, 2, "admin")
    assert [o.as_json()["status"] for o in outcomes].count("migrated") == 98
    assert {o.instance_id for o in outcomes if o.status == "refused"} == set(moved_on)
    for instance_id in moved_on:  # untouched: same version, same task, same data
        assert rt.instance(instance_id).as_json() == before[instance_id]
        refusal = [e for e in rt.audit(instance_id) if e["action"] == "migration_refused"]
        assert len(refusal) == 1 and refusal[0]["actor"] == "admin"
        assert refusal[0]["details"]["from_version"] == 1 and refusal[0]["details"]["to_version"] == 2
        assert refusal[0]["details"]["reasons"]
    for instance_id in (ids[0], ids[42], ids[99]):  # the moved ones go on through the new element
        assert _version(rt, instance_id) == 2
        assert [e["details"] for e in rt.audit(instance_id) if e["action"] == "migrated"] == \
            [{"from_version": 1, "to_version": 2}]
        rt.complete(_task(rt, instance_id, "prepare"), "admin")
        rt.complete(_task(rt, instance_id, "check"), "admin")
        view = rt.complete(_task(rt, instance_id, "review"), "admin")
        assert view.status == "completed"
    # the two refused still finish on version 1, which has no check
    rt.complete(_task(rt, moved_on[0], "review"), "admin")
    assert rt.instance(moved_on[0]).status == "completed"
    # run again: nothing left on version 1 but the refused one still running
    again = rt.migrate("case", 1, 2, "admin")
    assert [(o.instance_id, o.status) for o in again] == [(moved_on[1], "refused")]
