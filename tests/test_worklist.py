"""Worklist paging and filters, from the human-task index (engine.worklist)."""

from __future__ import annotations

from sqlalchemy import select

from engine.models import User
from engine.worklist import processes_with_open_tasks, worklist
from tests.bpmn_builder import chain, definitions, end, process, start, user_task


def _one_task(pid: str, name: str) -> str:
    return definitions(process(pid, start(), user_task("work", "Arbeid", properties={
        "samflyt.organisationField": "org"}), end(), chain("start", "work", "end"), name=name), id=f"defs_{pid}")


def _user(rt, name: str) -> User:
    with rt.Session() as s:
        return s.scalar(select(User).where(User.username == name))


def test_all_is_paged_by_the_database_and_filtered_by_process(rt, deploy):
    deploy({"a.bpmn": _one_task("proc_a", "Prosess A"), "b.bpmn": _one_task("proc_b", "Prosess B")})
    a = [rt.start("proc_a", {"org": "Horten kommune"}) for _ in range(7)]
    b = [rt.start("proc_b", {"org": "Larvik kommune"}) for _ in range(3)]
    admin = _user(rt, "admin")
    with rt.Session() as s:
        pages = [worklist(s, admin, "all", sort="created", page=n, per_page=4) for n in (1, 2, 3)]
        assert [p.total for p in pages] == [10, 10, 10] and pages[0].pages == 3
        assert [len(p.items) for p in pages] == [4, 4, 2]
        assert [i.instance_id for p in pages for i in p.items] == a + b  # every task once, in order
        only_b = worklist(s, admin, "all", per_page=2, process_id="proc_b")
        assert (only_b.total, only_b.pages) == (3, 2) and {i.process_id for i in only_b.items} == {"proc_b"}
        assert processes_with_open_tasks(s) == [("proc_a", "Prosess A"), ("proc_b", "Prosess B")]


def test_available_is_paged_after_the_narrowing_rules(rt, deploy):
    deploy({"a.bpmn": _one_task("proc_a", "Prosess A")})
    for i in range(6):  # Ada (Horten) may work every other one: the rest belong to Larvik
        rt.start("proc_a", {"org": "Horten kommune" if i % 2 == 0 else "Larvik kommune"})
    ada = _user(rt, "ada")
    with rt.Session() as s:
        first, second = (worklist(s, ada, "available", sort="created", page=n, per_page=2) for n in (1, 2))
        assert (first.total, len(first.items), len(second.items)) == (3, 2, 1)
        assert {i.organisation for i in first.items + second.items} == {"Horten kommune"}
