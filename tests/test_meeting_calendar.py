"""The meeting calendar (``/meetings/calendar``): a month grid as a table with caption and headers, the
reader's own community's meetings linked on their days, previous and next month."""

from __future__ import annotations

import re

import pytest

from engine import accounts, clock
from tests.grant_driver import grant_runtime
from web import create_app

VF, VV = "Helsefellesskapet i Vestfold", "Helsefellesskap Vest-Viken"
PASSWORDS = {u: f"passord-{u}" for u in ("siri", "ada", "admin")}


@pytest.fixture
def site(db_engine):
    rt = grant_runtime(db_engine)
    with rt.session() as s:
        for user, password in PASSWORDS.items():
            accounts.set_password(s, user, password)
    clock.set_now("2025-09-10T09:00")
    ids = {}
    for name, committee, community, when in (
            ("ssu", "SSU", VF, "2025-09-25T12:30:00+02:00"), ("au", "AU", VF, "2025-09-04T09:00:00+02:00"),
            ("october", "SSU", VF, "2025-10-30T12:30:00+01:00"), ("vv", "SSU", VV, "2025-09-18T10:00:00+02:00")):
        ids[name] = rt.call_connector("meetings.schedule", {"committee": committee, "community": community,
                                                            "starts_at": when, "place": "Tønsberg"})["meeting_id"]
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = rt
    yield app, ids
    clock.set_now(None)


def client_for(app, user: str):
    client = app.test_client()
    assert client.post("/sign-in", data={"username": user, "password": PASSWORDS[user]}).status_code == 302
    return client


def _cell(page: str, day: int) -> str:
    """The table cell of ``day`` (its text up to the next cell)."""
    start = page.index(f'<span class="day">{day}</span>')
    return page[start:page.index("</td>", start)]


def test_the_month_grid_shows_own_meetings_on_their_days(site):
    app, ids = site
    siri = client_for(app, "siri")
    assert 'href="/meetings/calendar' in siri.get("/meetings").get_data(as_text=True)
    page = siri.get("/meetings/calendar").get_data(as_text=True)  # this month: September 2025
    assert "<caption>Møter i september 2025</caption>" in page
    headers = re.findall(r'<th scope="col"><abbr title="([^"]+)">', page)
    assert headers == ["mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"]
    assert page.count("<tr>") == 6  # the header row and five weeks (1 September 2025 is a Monday)
    assert f'href="/meetings/{ids["ssu"]}"' in _cell(page, 25) and "SSU" in _cell(page, 25)
    assert f'href="/meetings/{ids["au"]}"' in _cell(page, 4) and "AU" in _cell(page, 4)
    assert f'/meetings/{ids["vv"]}"' not in page  # Vest-Viken's meeting is not Vestfold's to see
    assert f'/meetings/{ids["october"]}"' not in page
    assert 'aria-current="date"' in _cell(page, 10) or 'aria-current="date"' in page
    assert 'href="/meetings/calendar?month=2025-08"' in page and 'href="/meetings/calendar?month=2025-10"' in page
    october = siri.get("/meetings/calendar?month=2025-10").get_data(as_text=True)
    assert "Møter i oktober 2025" in october and f'href="/meetings/{ids["october"]}"' in _cell(october, 30)
    only_au = siri.get("/meetings/calendar?month=2025-09&committee=AU").get_data(as_text=True)
    assert f'/meetings/{ids["au"]}"' in only_au and f'/meetings/{ids["ssu"]}"' not in only_au
    admin = client_for(app, "admin").get("/meetings/calendar?month=2025-09").get_data(as_text=True)
    assert f'/meetings/{ids["vv"]}"' in admin
    english = siri.get("/meetings/calendar?month=2025-12", headers={"Accept-Language": "en"})
    assert english.status_code == 200


def test_bad_months_and_readers(site):
    app, _ids = site
    siri = client_for(app, "siri")
    for bad in ("2025-13", "september", "0001-01", "2025-09&committee=styret"):
        assert siri.get(f"/meetings/calendar?month={bad}").status_code == 404, bad
    assert client_for(app, "ada").get("/meetings/calendar").status_code == 403
