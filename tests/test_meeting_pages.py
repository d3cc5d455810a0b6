"""The meeting and case pages: a reader finds their own community's meetings and cases without knowing an
id, a meeting's agenda and calendar file, the case register's search and a case with its follow-ups."""

from __future__ import annotations

import pytest

from engine import accounts, clock
from tests.grant_driver import grant_runtime
from web import create_app

VF, VV = "Helsefellesskapet i Vestfold", "Helsefellesskap Vest-Viken"
PASSWORDS = {u: f"passord-{u}" for u in ("per", "siri", "vera", "ada", "admin")}


@pytest.fixture
def meetings_site(db_engine):
    rt = grant_runtime(db_engine)
    with rt.session() as s:
        for user, password in PASSWORDS.items():
            accounts.set_password(s, user, password)
    clock.set_now("2025-09-01T09:00")

    def case(title: str, community: str = VF, **more) -> str:
        return rt.call_connector("meetings.enqueue_case", {
            "case_type": "Beslutning", "title": title, "proposed_conclusion": f"{title}: vedtas.",
            "community": community, **more})["case_id"]

    first = case("Revidert delavtale om helhetlig pasientforløp", background="Arbeidsgruppen har revidert.\n"
                 "Høringsrunde uten innspill.", case_handler="siri")
    later = case("Evaluering av delavtalen", follows_up=first)
    waiting = case("Tilskuddsmidler 2026")
    other = case("Vest-Vikens sak", community=VV)
    meeting = rt.call_connector("meetings.schedule", {
        "committee": "SSU", "starts_at": "2025-09-25T12:00:00+02:00", "place": "Tønsberg, Sykehuset i Vestfold",
        "community": VF})["meeting_id"]
    rt.call_connector("meetings.add_to_agenda", {"meeting_id": meeting, "case_id": first})
    rt.call_connector("meetings.add_to_agenda", {"meeting_id": meeting, "case_id": later})
    vv_meeting = rt.call_connector("meetings.schedule", {
        "committee": "SSU", "starts_at": "2026-02-12T10:00:00+01:00", "video_link": "https://meet.example/ssu",
        "community": VV})["meeting_id"]
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = rt
    yield app, {"first": first, "later": later, "waiting": waiting, "other": other, "meeting": meeting,
                "vv_meeting": vv_meeting}
    clock.set_now(None)


def client_for(app, user: str):
    client = app.test_client()
    assert client.post("/sign-in", data={"username": user, "password": PASSWORDS[user]}).status_code == 302
    return client


def _case_id(client, number: str) -> int:
    page = client.get(f"/cases?q={number}").get_data(as_text=True)
    marker = '/cases/'
    start = page.index(marker, page.index("<tbody>")) + len(marker)
    return int(page[start:page.index('"', start)])


def test_secretariat_finds_the_meeting_its_agenda_and_the_calendar_file(meetings_site):
    app, refs = meetings_site
    siri = client_for(app, "siri")
    home = siri.get("/tasks").get_data(as_text=True)
    assert 'href="/meetings"' in home  # the menu leads there
    listing = siri.get("/meetings").get_data(as_text=True)
    assert "25.09.2025 12:00" in listing and "Tønsberg, Sykehuset i Vestfold" in listing
    assert f'/meetings/{refs["vv_meeting"]}"' not in listing  # another community's meeting is not listed
    page = siri.get(f"/meetings/{refs['meeting']}").get_data(as_text=True)
    assert "Saksliste" in page
    for text in ("Godkjenning av innkalling og saksliste", "Godkjenning av referat fra forrige møte",
                 "Revidert delavtale om helhetlig pasientforløp", "Evaluering av delavtalen", "Beslutning"):
        assert text in page
    ics = siri.get(f"/meetings/{refs['meeting']}/calendar.ics")
    assert ics.mimetype == "text/calendar"
    body = ics.get_data(as_text=True)
    assert body.startswith("BEGIN:VCALENDAR\r\n") and body.endswith("END:VCALENDAR\r\n")
    assert "DTSTART:20250925T100000Z" in body and "DTEND:20250925T130000Z" in body
    assert "LOCATION:Tønsberg\\, Sykehuset i Vestfold" in body
    assert all(len(line.encode("utf-8")) <= 75 for line in body.split("\r\n"))
    unfolded = body.replace("\r\n ", "")
    assert f"{refs['first']} Revidert delavtale om helhetlig pasientforløp" in unfolded
    assert siri.get(f"/meetings/{refs['vv_meeting']}").status_code == 403
    assert siri.get(f"/meetings/{refs['vv_meeting']}/calendar.ics").status_code == 403
    assert siri.get("/meetings/999999").status_code == 404


def test_case_register_search_waiting_and_a_case_with_its_history(meetings_site):
    app, refs = meetings_site
    per = client_for(app, "per")
    register = per.get("/cases").get_data(as_text=True)
    assert "Revidert delavtale" in register and "Vest-Vikens sak" not in register
    waiting = per.get("/cases?waiting=1").get_data(as_text=True)
    assert "Tilskuddsmidler 2026" in waiting and "Revidert delavtale" not in waiting
    found = per.get("/cases?q=evaluering").get_data(as_text=True)
    assert "Evaluering av delavtalen" in found and "Tilskuddsmidler" not in found
    assert "Ingen saker passer." in per.get("/cases?q=finnes-ikke").get_data(as_text=True)
    assert per.get("/cases?status=nonsense").status_code == 404
    assert per.get("/cases?q=" + "x" * 5000).status_code == 200  # an absurd search is cut, not an error
    first = per.get(f"/cases/{_case_id(per, refs['first'])}").get_data(as_text=True)
    assert "Høringsrunde uten innspill." in first and "Saksbehandler" in first and "<dd>Siri Sekretariat</dd>" in first
    assert "Fulgt opp i" in first and "Evaluering av delavtalen" in first
    later = per.get(f"/cases/{_case_id(per, refs['later'])}").get_data(as_text=True)
    assert "Oppfølging av" in later and refs["first"] in later
    vera = client_for(app, "vera")
    assert "Vest-Vikens sak" in vera.get("/cases").get_data(as_text=True)
    assert vera.get(f"/cases/{_case_id(per, refs['first'])}").status_code == 403
    admin = client_for(app, "admin")
    everything = admin.get("/cases").get_data(as_text=True)
    assert "Vest-Vikens sak" in everything and "Revidert delavtale" in everything


def test_meeting_pages_are_for_the_committees_and_speak_three_languages(meetings_site):
    app, refs = meetings_site
    ada = client_for(app, "ada")
    assert ada.get("/meetings").status_code == 403 and ada.get("/cases").status_code == 403
    assert 'href="/meetings"' not in ada.get("/tasks").get_data(as_text=True)
    assert app.test_client().get("/meetings").status_code == 302  # to sign-in
    siri = client_for(app, "siri")
    nynorsk = siri.get(f"/meetings/{refs['meeting']}?lang=nn").get_data(as_text=True)
    assert "Sakslista" not in nynorsk and "Saksliste" in nynorsk and "Avgjerd" in nynorsk
    english = siri.get(f"/meetings/{refs['meeting']}?lang=en").get_data(as_text=True)
    assert "Agenda" in english and "Decision" in english and "Add to calendar (iCalendar)" in english
