"""Norwegian business days around Easter, 17 May, Christmas and New Year, and in BPMN expressions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine import calendar, clock
from tests.bpmn_builder import chain, definitions, end, process, start, user_task


@pytest.fixture(autouse=True)
def _no_extra_closed_days():
    calendar.configure("")
    yield
    calendar.configure("")


@pytest.mark.parametrize(("day", "expected"), [
    (date(2025, 4, 17), date(2025, 4, 22)),  # Maundy Thursday -> Tuesday after Easter Monday
    (date(2025, 4, 19), date(2025, 4, 22)),  # Easter Saturday
    (date(2025, 5, 17), date(2025, 5, 19)),  # 17 May 2025 is a Saturday
    (date(2026, 5, 17), date(2026, 5, 18)),  # 17 May 2026 is a Sunday
    (date(2025, 12, 25), date(2025, 12, 29)),  # Christmas Day, Boxing Day, weekend
    (date(2026, 1, 1), date(2026, 1, 2)),  # New Year's Day
    (date(2025, 12, 1), date(2025, 12, 1)),  # a Monday stays
])
def test_deadline_moves_to_the_next_working_day(day, expected):
    assert calendar.deadline(day) == expected


def test_working_day_arithmetic():
    assert calendar.add_working_days(date(2025, 4, 16), 1) == date(2025, 4, 22)  # over Easter
    assert calendar.add_working_days(date(2025, 12, 23), 2) == date(2025, 12, 29)
    assert calendar.add_working_days(date(2025, 12, 31), 1) == date(2026, 1, 2)
    assert calendar.working_days_before(date(2025, 12, 1), 10) == date(2025, 11, 17)
    assert calendar.working_days_before(date(2025, 12, 1), 2) == date(2025, 11, 27)
    assert calendar.working_days_before(date(2025, 5, 19), 1) == date(2025, 5, 16)
    assert calendar.add_working_days(date(2025, 5, 16), 0) == date(2025, 5, 16)


def test_extra_closed_days_are_configurable():
    assert calendar.is_working_day(date(2025, 12, 24))
    calendar.configure("12-24, 12-31, 2025-05-02")
    assert not calendar.is_working_day(date(2025, 12, 24))
    assert not calendar.is_working_day(date(2026, 12, 31))
    assert calendar.next_working_day(date(2025, 5, 1)) == date(2025, 5, 5)  # 1 May holiday, 2 May closed, weekend
    # fvl. § 30 moves a deadline past weekends and public holidays only, not past an office's closed days
    assert calendar.deadline(date(2025, 5, 1)) == date(2025, 5, 2)
    assert calendar.deadline(date(2025, 12, 24)) == date(2025, 12, 24)


def test_bpmn_expressions_use_the_calendar(rt, deploy):
    due = "deadline(date(today().year, 12, 1))"
    remind = "working_days_before(date(today().year, 12, 1), 10)"
    task = user_task("report", properties={"samflyt.dueDate": due})
    deploy({"cal.bpmn": definitions(process("cal", start(),
                                            f'<bpmn:scriptTask id="plan"><bpmn:script>remind_on = {remind}'
                                            "</bpmn:script></bpmn:scriptTask>",
                                            task, end(), chain("start", "plan", "report", "end")))})
    with clock.frozen_at(datetime(2026, 6, 1, 9, 0, tzinfo=UTC)):
        iid = rt.start("cal")
    report = rt.tasks(iid)[0]
    assert report.due_at == datetime(2026, 12, 1, 23, 59, 59, tzinfo=clock.LOCAL_TZ)  # 1 Dec 2026: a Tuesday
    assert rt.instance(iid).data["remind_on"] == "2026-11-17"


def test_calendar_helpers_in_a_timer_expression_and_norwegian_days_for_utc_moments(rt, deploy):
    from tests.bpmn_builder import timer

    wait = f'<bpmn:intermediateCatchEvent id="remind">{timer("date", "working_days_before(due, 2)")}' \
           "</bpmn:intermediateCatchEvent>"
    deploy({"t.bpmn": definitions(process("remind_proc", start(), wait, user_task("act"), end(),
                                          chain("start", "remind", "act", "end")))})
    with clock.frozen_at(datetime(2025, 11, 1, 9, 0, tzinfo=UTC)):
        iid = rt.start("remind_proc", {"due": "2025-12-01"})
    assert rt.instance(iid).timers[0]["due_at"] == "2025-11-26T23:00:00+00:00"  # 27.11 00:00 in Oslo
    assert rt.fire_due_timers(datetime(2025, 11, 26, 23, 0, 1, tzinfo=UTC)) == [iid]
    # 00:30 on Monday 17 November in Oslo is still Sunday in UTC: the Norwegian day counts
    assert calendar.is_working_day(datetime(2025, 11, 16, 23, 30, tzinfo=UTC))
