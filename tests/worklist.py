"""Worklist helpers shared by the construct tests."""

from __future__ import annotations


def open_names(rt, instance_id: int) -> list[str]:
    """Names (BPMN element ids) of the open human tasks of an instance, sorted."""
    return sorted(t.name for t in rt.tasks(instance_id))


def only_task(rt, instance_id: int, name: str):
    """The one open task called ``name``; fails the test if there is none or more than one."""
    matches = [t for t in rt.tasks(instance_id) if t.name == name]
    assert len(matches) == 1, f"expected one open task {name}, have {open_names(rt, instance_id)}"
    return matches[0]
