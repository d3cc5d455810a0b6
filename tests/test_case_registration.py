"""Registering a case from the UI (``/cases/new``): the secretariat and AU register in their own community,
admins choose; each bad field gets its own error; files go through the engine's attachment store and are
numbered; the attachments download with the case page's access rules."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from community.records import CaseAttachment, MeetingCase
from engine import accounts, clock
from engine.models import AuditEvent
from tests.grant_driver import grant_runtime
from web import create_app

VF, VV = "Helsefellesskapet i Vestfold", "Helsefellesskap Vest-Viken"
PASSWORDS = {u: f"passord-{u}" for u in ("per", "siri", "vera", "ada", "admin", "sverre")}


@pytest.fixture
def site(db_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMFLYT_ATTACHMENTS_DIR", str(tmp_path / "files"))
    rt = grant_runtime(db_engine)
    with rt.session() as s:
        for user, password in PASSWORDS.items():
            accounts.set_password(s, user, password)
    clock.set_now("2025-09-01T09:00")
    earlier = rt.call_connector("meetings.enqueue_case", {
        "case_type": "Beslutning", "title": "Delavtale om IKT", "proposed_conclusion": "Vedtas.",
        "community": VF})["case_id"]
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = rt
    yield app, rt, earlier
    clock.set_now(None)


def client_for(app, user: str):
    client = app.test_client()
    assert client.post("/sign-in", data={"username": user, "password": PASSWORDS[user]}).status_code == 302
    return client


def _form(**more) -> dict:
    return {"committee": "SSU", "case_type": "Drøfting", "title": "Felles kompetanseplan",
            "case_handler": "siri", "background": "Kommunene og sykehuset ønsker én plan.",
            "proposed_conclusion": "Arbeidsutvalget lager et utkast til neste møte.", **more}


def test_the_secretariat_registers_a_case_with_attachments_and_downloads_them(site):
    app, rt, earlier = site
    siri = client_for(app, "siri")
    register = siri.get("/cases").get_data(as_text=True)
    assert 'href="/cases/new"' in register  # the case register leads to the form
    form = siri.get("/cases/new")
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert 'for="title"' in page and 'id="attachments"' in page and 'type="file" multiple' in page
    assert 'name="community"' not in page and VF in page  # one community: no choice to make
    data = _form(follows_up=earlier, attachments=[(io.BytesIO(b"%PDF-1.4 plan"), "Kompetanseplan.pdf"),
                                                 (io.BytesIO(b"tall;per;kommune\n"), "Tall.csv")])
    response = siri.post("/cases/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    with rt.Session() as s:
        case = s.scalar(select(MeetingCase).where(MeetingCase.title == "Felles kompetanseplan"))
        assert (case.community, case.committee, case.case_number, case.case_type, case.status) == (
            VF, "SSU", "2025.02", "Drøfting", "registered")
        assert case.case_handler == "siri" and case.instance_id is None
        assert s.get(MeetingCase, case.follows_up_id).case_number == earlier
        rows = s.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case.id)
                         .order_by(CaseAttachment.number)).all()
        assert [(r.number, r.title) for r in rows] == [(1, "Kompetanseplan.pdf"), (2, "Tall.csv")]
        [audit] = s.scalars(select(AuditEvent).where(AuditEvent.action == "case_registered")).all()
        assert audit.actor == "siri" and '"2025.02"' in audit.details
    assert response.headers["Location"].endswith(f"/cases/{case.id}")
    shown = siri.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "Saken er registrert." in shown and f"/cases/{case.id}/attachments/1" in shown
    assert f"Sak {earlier}" in shown and "<dd>Siri Sekretariat</dd>" in shown  # the handler by name
    first = siri.get(f"/cases/{case.id}/attachments/1")
    assert first.status_code == 200 and first.data == b"%PDF-1.4 plan" and first.mimetype == "application/pdf"
    assert "Kompetanseplan.pdf" in first.headers["Content-Disposition"]
    assert siri.get(f"/cases/{case.id}/attachments/2").data == b"tall;per;kommune\n"
    assert siri.get(f"/cases/{case.id}/attachments/3").status_code == 404
    # AU of the same community reads the files; another community's AU, an applicant and a stranger do not
    assert client_for(app, "per").get(f"/cases/{case.id}/attachments/1").status_code == 200
    assert client_for(app, "vera").get(f"/cases/{case.id}/attachments/1").status_code == 403
    assert client_for(app, "ada").get(f"/cases/{case.id}/attachments/1").status_code == 403
    assert app.test_client().get(f"/cases/{case.id}/attachments/1").status_code in (302, 401)


def test_each_bad_field_gets_its_own_error_and_nothing_is_registered(site):
    app, rt, earlier = site
    siri = client_for(app, "siri")
    response = siri.post("/cases/new", data=_form(case_type="Vedtak", title="", proposed_conclusion="",
                                                   case_handler="vera", follows_up="2025.77"),
                         content_type="multipart/form-data")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="error-summary"' in page
    for field, text in (("case_type", "Velg sakstype."), ("title", "Skriv en tittel."),
                        ("proposed_conclusion", "Skriv forslaget til konklusjon."),
                        ("case_handler", "Velg en saksbehandler fra helsefellesskapet."),
                        ("follows_up", "SSU i Helsefellesskapet i Vestfold har ingen sak 2025.77")):
        assert f'<p class="error" id="{field}-error">{text}' in page, field
        assert f'href="#{field}"' in page
    assert 'id="title" name="title" type="text" maxlength="300" value="" aria-describedby="title-error" ' \
           'aria-invalid="true"' in page
    # a file of a type the engine does not accept is refused with the engine's reason, tied to the field
    refused = siri.post("/cases/new", data=_form(attachments=[(io.BytesIO(b"MZ"), "program.exe")]),
                        content_type="multipart/form-data")
    assert refused.status_code == 422
    assert 'id="attachments-error">program.exe: filer av typen .exe' in refused.get_data(as_text=True)
    # in English too
    english = siri.post("/cases/new?lang=en", data=_form(title=""), content_type="multipart/form-data",
                        headers={"Accept-Language": "en"})
    assert english.status_code == 422
    assert '<p class="error" id="title-error">Write a title.' in english.get_data(as_text=True)
    nynorsk = siri.post("/cases/new?lang=nn", data=_form(title=""), content_type="multipart/form-data")
    assert '<p class="error" id="title-error">Skriv ein tittel.' in nynorsk.get_data(as_text=True)
    with rt.Session() as s:
        assert s.scalars(select(MeetingCase.case_number)).all() == [earlier]


def test_who_may_register_and_in_which_community(site):
    app, rt, _earlier = site
    # an applicant and SSU members may not register cases; another community's case cannot be followed up
    assert client_for(app, "ada").get("/cases/new").status_code == 403
    assert client_for(app, "ada").post("/cases/new", data=_form()).status_code == 403
    vera = client_for(app, "vera")
    page = vera.get("/cases/new").get_data(as_text=True)
    assert VF not in page  # Vest-Viken's AU sees no Vestfold handlers
    refused = vera.post("/cases/new", data=_form(case_handler="siri"), content_type="multipart/form-data")
    assert refused.status_code == 422 and 'id="case_handler-error"' in refused.get_data(as_text=True)
    made = vera.post("/cases/new", data=_form(case_handler="sverre", community=VF),
                     content_type="multipart/form-data")
    assert made.status_code == 302  # the posted community is ignored: AU registers in its own
    with rt.Session() as s:
        case = s.scalar(select(MeetingCase).where(MeetingCase.title == "Felles kompetanseplan"))
        assert (case.community, case.case_number) == (VV, "2025.01")
    # Vestfold's secretariat may not read Vest-Viken's case
    assert client_for(app, "siri").get(f"/cases/{case.id}").status_code == 403
    # an admin chooses the community, and must
    admin = client_for(app, "admin")
    page = admin.get("/cases/new").get_data(as_text=True)
    assert '<select id="community" name="community"' in page and VF in page and VV in page
    missing = admin.post("/cases/new", data=_form(case_handler=""), content_type="multipart/form-data")
    assert missing.status_code == 422 and 'id="community-error"' in missing.get_data(as_text=True)
    chosen = admin.post("/cases/new", data=_form(community=VV, committee="AU", case_handler="vera"),
                        content_type="multipart/form-data")
    assert chosen.status_code == 302
    with rt.Session() as s:
        assert s.scalars(select(MeetingCase.case_number).where(MeetingCase.committee == "AU",
                                                              MeetingCase.community == VV)).all() == ["2025.01"]
