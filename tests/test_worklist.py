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


def _statements(rt):
    """The SQL statements run while the block runs (a list filled by an engine event)."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001 - the event's signature
        seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(rt.engine, "before_cursor_execute", record)


def test_every_view_is_answered_by_a_bounded_number_of_queries_without_instance_state(rt, deploy):
    """The shape, not the time: each view is counted and paged in SQL with the narrowing rules as rows, the
    same few statements however many instances there are, and no statement reads an instance's state."""
    deploy({"a.bpmn": _one_task("proc_a", "Prosess A")})
    ada, admin = _user(rt, "ada"), _user(rt, "admin")
    counts = {}
    for size in (4, 40):
        while len(rt.instances_summary()) < size:
            rt.start("proc_a", {"org": "Horten kommune" if len(rt.instances_summary()) % 2 else "Larvik kommune"})
        with rt.Session() as s:
            seen, stop = _statements(rt)
            try:
                for user, view in ((ada, "available"), (ada, "overdue"), (ada, "mine"), (ada, "workable"),
                                   (admin, "all")):
                    page = worklist(s, user, view, per_page=5)
                    assert len(page.items) <= 5
            finally:
                stop()
        counts[size] = len(seen)
        assert not [q for q in seen if "process_instances.state" in q or "process_instances.data" in q], seen
        lists = [q for q in seen if "FROM human_tasks" in q and "count(" not in q.lower()
                 and not q.startswith("SELECT EXISTS")]  # an existence probe reads one row at most
        assert lists and all("LIMIT" in q.upper() for q in lists), "a list read without a LIMIT"
    assert counts[4] == counts[40]  # the number of statements does not grow with the instances
    with rt.Session() as s:
        available = worklist(s, ada, "available", per_page=5)
    assert available.total == 20 and len(available.items) == 5  # Ada's half (Horten), counted by the database


def test_the_count_stops_at_its_limit_and_says_there_are_more(rt, deploy, monkeypatch):
    """Rows are counted up to ``COUNT_LIMIT``, or to the end of the page asked for: a count never reads every
    open task of a region, and the page still knows there is a next one."""
    import engine.worklist

    monkeypatch.setattr(engine.worklist, "COUNT_LIMIT", 3)
    deploy({"a.bpmn": _one_task("proc_a", "Prosess A")})
    started = [rt.start("proc_a", {"org": "Horten kommune"}) for _ in range(7)]
    admin = _user(rt, "admin")
    with rt.Session() as s:
        first = worklist(s, admin, "all", sort="created", per_page=2)
        assert (first.total, first.more, first.pages, len(first.items)) == (3, True, 2, 2)
        third = worklist(s, admin, "all", sort="created", page=3, per_page=2)  # counted past the page asked for
        assert (third.total, third.more, [i.instance_id for i in third.items]) == (6, True, started[4:6])
        last = worklist(s, admin, "all", sort="created", page=4, per_page=2)
        assert (last.total, last.more, last.pages, [i.instance_id for i in last.items]) == (7, False, 4, started[6:])
        seen, stop = _statements(rt)
        try:
            worklist(s, admin, "all", per_page=2)
        finally:
            stop()
    counts = [q for q in seen if "count(" in q.lower()]
    assert len(counts) == 1 and "LIMIT" in counts[0].upper()


def test_workable_is_mine_and_available_and_pages_the_cli(rt, deploy, tmp_path):
    """``samflyt tasks --user`` lists what the person may work -- claimed by them or open to them -- paged by
    the database, oldest first."""
    deploy({"a.bpmn": _one_task("proc_a", "Prosess A")})
    horten = [rt.start("proc_a", {"org": "Horten kommune" if i % 2 == 0 else "Larvik kommune"})
              for i in range(6)][::2]
    mine = rt.tasks(horten[2])[0]
    rt.claim(mine.id, "ada")
    assert [t.instance_id for t in rt.tasks(user="ada")] == horten  # one claimed, two available, none of Larvik's
    views, page = rt.task_page("ada", page=2, per_page=2)
    assert ([t.instance_id for t in views], page.total, page.pages) == ([horten[2]], 3, 2)
    assert [t.instance_id for t in rt.task_page("ada", "mine")[0]] == [horten[2]]
    assert [t.form_key for t in views] == [mine.form_key] and views[0].claimed_by == "ada"


def test_the_search_box_finds_a_task_by_its_title_or_its_cases_title_or_key_and_lists_it_once(rt, deploy):
    """The text is looked for in the task's title and in its case's title and key (each answered by its own
    index); a task that matches more than one way is counted and listed once, and the narrowing still holds."""
    deploy({"a.bpmn": _one_task("proc_a", "Prosess A")})
    arbeid = rt.start("proc_a", {"org": "Horten kommune"}, title="Arbeid med demens")  # title and case match
    keyed = rt.start("proc_a", {"org": "Horten kommune"}, business_key="SAK-ARBEID-7", title="Frisklivssentral")
    rt.start("proc_a", {"org": "Horten kommune"}, title="Frisklivssentral")
    larvik = rt.start("proc_a", {"org": "Larvik kommune"}, title="Demensteam")
    ada, admin = _user(rt, "ada"), _user(rt, "admin")
    with rt.Session() as s:
        by_case = worklist(s, ada, "available", text="demens")
        assert (by_case.total, [i.instance_id for i in by_case.items]) == (1, [arbeid])  # not Larvik's
        by_key = worklist(s, ada, "available", text="sak-arbeid")
        assert [i.instance_id for i in by_key.items] == [keyed]
        everywhere = worklist(s, ada, "available", text="ARBEID", sort="created")  # every task is "Arbeid"
        assert everywhere.total == 3 and len({i.task_id for i in everywhere.items}) == 3
        assert [i.instance_id for i in worklist(s, admin, "all", text="Demens", sort="created").items] == \
            [arbeid, larvik]
        assert worklist(s, ada, "workable", text="%").total == 0  # the text is a text, not a pattern


def test_a_database_from_before_the_audience_rows_upgrades_with_its_open_tasks(rt, deploy, db_engine):
    """``samflyt init-db`` on a database made before revision 0017: its open tasks get their narrowing rows,
    so the worklists answer as before and nothing is lost."""
    from sqlalchemy import text

    from engine import db

    deploy({"a.bpmn": _one_task("proc_a", "Prosess A")})
    for i in range(4):
        rt.start("proc_a", {"org": "Horten kommune" if i % 2 == 0 else "Larvik kommune"})
    with db_engine.begin() as conn:  # the database as revision 0016 left it
        conn.execute(text("DROP TABLE task_audience"))
        conn.execute(text("DROP INDEX ix_human_tasks_open_due"))
        conn.execute(text("DROP INDEX ix_human_tasks_completed_by"))
        conn.execute(text("DROP INDEX ix_human_tasks_offer"))
        for index in ("ix_process_instances_title_search", "ix_process_instances_key_search",
                      "ix_human_tasks_title_search", "ix_human_tasks_open_process"):  # revision 0018's
            conn.execute(text(f"DROP INDEX {index}"))
        for column in ("narrowed", "scope_bound", "distinct_workers", "process_id"):
            conn.execute(text(f"ALTER TABLE human_tasks DROP COLUMN {column}"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0016' WHERE version_num = '0018'"))
    db.migrate(db_engine)
    with rt.Session() as s:
        available = worklist(s, _user(rt, "ada"), "available")
    assert available.total == 2 and {i.organisation for i in available.items} == {"Horten kommune"}
    with rt.Session() as s:  # each task row has its instance's process again: the filter still offers it
        assert processes_with_open_tasks(s) == [("proc_a", "Prosess A")]
        assert worklist(s, _user(rt, "admin"), "all", process_id="proc_a").total == 4
