"""`samflyt demo` dates its scenarios so that they read as current: a scenario written for 2025 and run in
December 2026 is moved one year, every date and year in it with it, and history outside its span stays."""

from __future__ import annotations

from datetime import date

from engine.scenario import shift_years, years_behind

STEPS = [
    {"at": "2025-01-06T09:00"},
    {"connector": "ledger.allocate", "params": {"year": 2025, "amount": 2025, "reference": "Tildelingsbrev 2025"}},
    {"start": "meeting", "data": {"title": "SSU 12.02.26", "number": "2025.30", "first_made": 2014,
                                  "deadlines": ["2025-05-01", "2026-10-01"], "note": "Avtalen fra 2014"}},
    {"at": "2025-12-05T09:00"},
]


def test_years_behind_counts_whole_years_to_the_last_step():
    assert years_behind(STEPS, date(2025, 12, 5)) == 0
    assert years_behind(STEPS, date(2026, 12, 4)) == 0  # not a whole year yet: run as written
    assert years_behind(STEPS, date(2026, 12, 7)) == 1
    assert years_behind(STEPS, date(2028, 1, 1)) == 2
    assert years_behind(STEPS, date(2024, 1, 1)) == 0  # never into the future
    assert years_behind([{"start": "x"}], date(2030, 1, 1)) == 0


def test_shift_years_moves_dates_years_and_texts_but_not_history_or_amounts():
    moved = shift_years(STEPS, 1)
    assert moved[0] == {"at": "2026-01-06T09:00"} and moved[3] == {"at": "2026-12-05T09:00"}
    assert moved[1]["params"] == {"year": 2026, "amount": 2025, "reference": "Tildelingsbrev 2026"}
    data = moved[2]["data"]
    assert data["title"] == "SSU 12.02.27" and data["number"] == "2026.30"
    assert data["deadlines"] == ["2026-05-01", "2027-10-01"]
    assert data["first_made"] == 2014 and data["note"] == "Avtalen fra 2014"  # before the span: history
    assert shift_years(STEPS, 0) is STEPS and STEPS[0] == {"at": "2025-01-06T09:00"}  # the original untouched
