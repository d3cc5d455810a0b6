"""The public register of agreements: the list per community, an agreement with its text, versions, history
and the revision under way, and a version's changes from the one before; readable without signing in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import clock
from tests.grant_driver import grant_runtime
from web import create_app

DEMO = Path(__file__).resolve().parent.parent / "bpmn" / "agreements" / "demo.json"


@pytest.fixture
def site(db_engine):
    """The agreement demo's register and its revision of delavtale j (hearing open, Horten answered)."""
    from engine.scenario import Scenario

    rt = grant_runtime(db_engine)
    for bundle in ("meetings", "agreements"):
        rt.deploy([str(DEMO.parent.parent / bundle)], actor="admin")
        for user in json.loads((DEMO.parent.parent / bundle / "demo.json").read_text(encoding="utf-8"))["users"]:
            rt.add_user(user["username"], user["roles"], user["organisations"], user["display_name"], user["email"])
    try:
        Scenario(rt).run(json.loads(DEMO.read_text(encoding="utf-8"))["steps"])
    finally:
        clock.set_now(None)
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = rt
    return app


def test_the_register_is_public(site):
    client = site.test_client()
    page = client.get("/agreements").get_data(as_text=True)
    assert "Helsefellesskapet i Vestfold" in page
    assert "Samarbeid om helhetlig pasientforløp" in page and "Samarbeid om IKT-løsninger lokalt" in page
    assert "Om partenes ansvar" not in page  # merged into the new delavtale: not in the list of agreements
    assert "Samarbeidsavtaler" in page and "I kraft" in page


def test_an_agreement_with_its_history_and_the_revision_under_way(site):
    client = site.test_client()
    d = client.get("/agreements/5").get_data(as_text=True)
    assert "Første gang inngått 2014, revidert juli 2015 og september 2019" in d
    assert d.count("/agreements/5/versions/") == 3
    j = client.get("/agreements/8").get_data(as_text=True)
    assert "Revisjon under arbeid" in j and "På høring" in j
    # Horten answered the hearing; the other six parties have not yet
    waiting = j.split("<dt>Ikke svart på høringen</dt><dd>")[1].split("</dd>")[0]
    assert waiting.split(", ") == ["Sykehuset i Vestfold HF", "Færder kommune", "Holmestrand kommune",
                                   "Larvik kommune", "Sandefjord kommune", "Tønsberg kommune"]
    merged = client.get("/agreements/10").get_data(as_text=True)
    assert "Delavtale a – Om partenes ansvar" in merged and "2025.35" in merged
    assert client.get("/agreements/999").status_code == 404


def test_a_version_shows_its_changes(site):
    client = site.test_client()
    page = client.get("/agreements/5/versions/2").get_data(as_text=True)
    assert "<ins>+ - Felles øvelser</ins>" in page
    page = client.get("/agreements/8/versions/2").get_data(as_text=True)
    assert "<del>− - Partene bruker standardiserte meldinger</del>" in page
    assert "<ins>+ - Avvik meldes og håndteres etter felles rutine</ins>" in page
    assert client.get("/agreements/5/versions/9").status_code == 404


def test_the_register_on_the_command_line(site, db_engine):
    from click.testing import CliRunner

    from engine.cli import main

    url = db_engine.url.render_as_string(hide_password=False)
    listed = CliRunner().invoke(main, ["--db", url, "--json", "agreements", "--community",
                                       "Helsefellesskapet i Vestfold"])
    assert listed.exit_code == 0, listed.output
    rows = {r["title"]: r for r in json.loads(listed.output)}
    assert list(rows)[0] == "Overordnet samarbeidsavtale"  # the overall agreement first, then by letter
    new = rows["Samarbeid om helhetlig pasientforløp"]
    assert new | {"id": 0, "next_evaluation": ""} == {  # the next evaluation after today's date (May, December 2026)
        "id": 0, "community": "Helsefellesskapet i Vestfold", "letter": None,
        "title": "Samarbeid om helhetlig pasientforløp", "version": 1, "status": "in_force",
        "effective_from": "2025-12-01", "next_evaluation": ""}
    assert new["next_evaluation"] in ("2026-05-15", "2026-12-10", None)
    assert rows["Samarbeid om den akuttmedisinske kjeden"]["version"] == 3
    text = CliRunner().invoke(main, ["--db", url, "agreements"])
    assert "Samarbeid om IKT-løsninger lokalt" in text.output
    none = CliRunner().invoke(main, ["--db", url, "--json", "agreements", "--community", "Ingen"])
    assert json.loads(none.output) == []
