"""Sessions that can be ended: sign-out, a password change and idle time end them on every device, and a
per-address throttle keeps anyone from locking out a named account for free (issue "Failure paths", 5)."""

from __future__ import annotations

import time

from engine import accounts
from tests.test_web import PASSWORDS, site  # noqa: F401 - the fixture


def _signed_in(app, user: str, address: str = "127.0.0.1"):
    client = app.test_client()
    response = client.post("/sign-in", data={"username": user, "password": PASSWORDS[user]},
                           environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def _replay(app, cookie: str):
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client


def test_the_old_cookie_is_refused_after_sign_out(site):  # noqa: F811
    app, _ = site
    ada = _signed_in(app, "ada")
    assert ada.get("/tasks").status_code == 200
    cookie = ada.get_cookie("session").value
    other_device = _signed_in(app, "ada")
    assert ada.post("/sign-out").status_code == 302
    stolen = _replay(app, cookie).get("/tasks")
    assert stolen.status_code == 401
    assert "Økten din er avsluttet" in stolen.get_data(as_text=True)
    assert other_device.get("/tasks").status_code == 401  # sign-out ends every session of the account
    again = _signed_in(app, "ada")
    assert again.get("/tasks").status_code == 200


def test_a_password_change_ends_every_session(site):  # noqa: F811
    app, y = site
    per = _signed_in(app, "per")
    assert per.get("/tasks").status_code == 200
    with y.rt.session() as s:
        accounts.set_password(s, "per", "et-nytt-passord")
    assert per.get("/tasks").status_code == 401


def test_a_session_unused_longer_than_the_idle_time_has_ended(site):  # noqa: F811
    app, _ = site
    assert app.config["SESSION_IDLE_MINUTES"] == 480  # a working day by default
    app.config["SESSION_IDLE_MINUTES"] = 0.5 / 60  # half a second
    ada = _signed_in(app, "ada")
    assert ada.get("/tasks").status_code == 200
    time.sleep(0.7)
    ended = ada.get("/tasks?view=available")
    assert ended.status_code == 401
    html = ended.get_data(as_text=True)
    # the form signs in and comes back to where the person was
    assert 'action="/sign-in?next=/tasks?view%3Davailable' in html or "next=%2Ftasks%3Fview%3Davailable" in html


def test_an_anonymous_visit_is_sent_to_sign_in_and_back(site):  # noqa: F811
    app, _ = site
    response = app.test_client().get("/tasks?view=available")
    assert response.status_code == 302 and "/sign-in?next=" in response.location


def test_guessing_from_one_address_does_not_lock_the_owner_out(site):  # noqa: F811
    app, _ = site
    attacker = app.test_client()
    for _attempt in range(accounts.MAX_FAILURES):
        attacker.post("/sign-in", data={"username": "admin", "password": "gjett"},
                      environ_base={"REMOTE_ADDR": "203.0.113.9"})
    locked = attacker.post("/sign-in", data={"username": "admin", "password": PASSWORDS["admin"]},
                           environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert locked.status_code == 401  # the guesser is stopped, right password or not
    assert _signed_in(app, "admin", "10.0.0.5").get("/tasks").status_code == 200  # the owner is not


def test_one_address_trying_many_names_is_stopped(site):  # noqa: F811
    app, _ = site
    attacker = app.test_client()
    names = ["ada", "per", "bjorn", "mia", "tor", "hege", "siri"]
    for attempt in range(accounts.MAX_CLIENT_FAILURES):
        attacker.post("/sign-in", data={"username": names[attempt % len(names)], "password": "gjett"},
                      environ_base={"REMOTE_ADDR": "198.51.100.7"})
    refused = attacker.post("/sign-in", data={"username": "admin", "password": PASSWORDS["admin"]},
                            environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert refused.status_code == 401 and "For mange mislykkede forsøk" in refused.get_data(as_text=True)
    assert _signed_in(app, "ada", "10.0.0.6").get("/tasks").status_code == 200


def test_many_addresses_guessing_one_account_lock_it(site):  # noqa: F811
    app, y = site
    with y.rt.session() as s:
        for attempt in range(accounts.MAX_ACCOUNT_FAILURES):
            accounts.sign_in(s, "tor", "gjett", f"192.0.2.{attempt}")
        assert accounts.sign_in(s, "tor", PASSWORDS["tor"], "10.0.0.7").reason == "locked"
