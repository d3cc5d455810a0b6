"""The minutes of a meeting, through the real process (``bpmn/meetings/meeting.bpmn``) with the clock moved.

After the conclusions the secretariat records who attended (the committee's members, prefilled as present,
and guests), the minutes are written as PDF, the secretariat checks them (and once sends them back to
correct the attendance), and they are mailed to the members with the PDF attached (to a loopback SMTP
server). The next meeting of the same committee and community has them as a numbered attachment of its
case «Godkjenning av referat fra forrige møte», so they are in its notice; concluding that case marks them
approved.
"""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from sqlalchemy import inspect, select, text

from community.connectors.meetings import list_cases
from community.records import CaseAttachment, Document, Meeting, MeetingAttendance, MeetingCase
from engine import accounts, clock, db
from engine.errors import SamflytError
from engine.mail import dispatch_outbox
from engine.models import OutboxAttachment, OutboxMessage
from tests.test_cases import _engine_head
from tests.test_meeting_process import VV, _meetings
from web import create_app

MINUTES_CASE = "Godkjenning av referat fra forrige møte"


def _text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join("\n".join(page.extract_text() for page in reader.pages).split())


def _mails(y, subject: str) -> list[OutboxMessage]:
    with y.rt.Session() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.subject == subject)
                              .order_by(OutboxMessage.to_address)))


def _attached(y, mail: OutboxMessage) -> list[OutboxAttachment]:
    with y.rt.Session() as s:
        return list(s.scalars(select(OutboxAttachment).where(OutboxAttachment.outbox_id == mail.id)
                              .order_by(OutboxAttachment.id)))


def _meeting_row(y, ref: str) -> Meeting:
    with y.rt.Session() as s:
        meeting = s.get(Meeting, y.data(ref)["meeting_id"])
        s.expunge(meeting)
        return meeting


def _plan(y, ref: str, day: str, title: str) -> str:
    """A case registered for Vest-Viken's SSU, and a meeting on ``day`` with it on the agenda, approved."""
    number = y.connector("meetings.enqueue_case", {
        "case_type": "Orientering", "title": title, "community": VV,
        "proposed_conclusion": f"«{title}» tas til orientering."}, "admin")["case_id"]
    y.start("committee_meeting", "sverre", ref=ref)
    y.complete("plan_meeting", ref, "sverre", {"committee": "SSU", "community": VV, "meeting_date": day,
                                               "meeting_time": "12:30", "place": "Drammen rådhus"})
    y.complete("build_agenda", ref, "sverre", {"agenda_cases": [number]})
    y.complete("approve_agenda", ref, "kristin", {"agenda_approved": True})
    return number


def _clients(y, db_engine, *users: str):
    """Signed-in web clients of the same database and runtime, one per user."""
    with y.rt.session() as s:
        for user in users:
            accounts.set_password(s, user, f"passord-{user}")
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = y.rt
    clients = []
    for user in users:
        client = app.test_client()
        assert client.post("/sign-in", data={"username": user, "password": f"passord-{user}"}).status_code == 302
        clients.append(client)
    return clients


def _conclude_all(y, ref: str) -> list[dict]:
    conclusions = y.rt.task_data(y.task(ref, "register_conclusions", "sverre"))["conclusions"]
    y.complete("register_conclusions", ref, "sverre", {"conclusions": conclusions})
    return conclusions


def test_attendance_minutes_mail_and_approval_at_the_next_meeting(year, smtp, db_engine):
    y, rt = year, year.rt
    _meetings(rt)
    _plan(y, "march", "2025-03-06", "Prosjektrapportering samhandlingsprosjekter")
    y.at("2025-03-06T12:30")
    _conclude_all(y, "march")
    assert _meeting_row(y, "march").status == "held"

    # attendance: the committee's members in Vest-Viken, all ticked present to start with
    task = y.task("march", "record_attendance", "sverre")
    assert rt.why_not(task, "siri") is not None  # Vestfold's secretariat does not write Vest-Viken's minutes
    form = rt.form_for(task)
    present = form.json_schema["properties"]["present"]
    assert present["items"]["enum"] == ["kristin", "morten"]
    assert form.ui_schema["present"]["items"]["ui:enumNames"] == ["Kristin SSU-leder", "Morten SSU-medlem"]
    assert rt.task_data(task)["present"] == ["kristin", "morten"]
    # a name that is not one of the members is refused by the form, not stored
    with pytest.raises(SamflytError):
        y.complete("record_attendance", "march", "sverre", {"present": ["kristin", "sverre"]})
    y.complete("record_attendance", "march", "sverre", {"present": ["kristin"], "guests": ["Vera AU"]})

    # the secretariat reads the minutes and sends them back once to add a guest
    task = y.task("march", "check_minutes", "sverre")
    data = rt.task_data(task)
    assert data["minutes_summary"] == ("Til stede: Kristin SSU-leder\nForfall: Morten SSU-medlem\n"
                                       "Andre til stede: Vera AU")
    assert data["minutes_link"] == f"/meetings/{y.data('march')['meeting_id']}/minutes.pdf"
    first_version = data["minutes_document_id"]
    y.complete("check_minutes", "march", "sverre", {"minutes_ok": False})
    assert _mails(y, "Referat fra SSU 06.03.25") == []
    task = y.task("march", "record_attendance", "sverre")
    assert rt.task_data(task)["present"] == ["kristin"]  # what was recorded, to correct
    y.complete("record_attendance", "march", "sverre",
               {"present": ["kristin"], "guests": ["Vera AU", "Anne Gjest, Helse Sør-Øst"]})
    assert rt.task_data(y.task("march", "check_minutes", "sverre"))["minutes_document_id"] != first_version
    y.at("2025-03-07T10:00")
    y.complete("check_minutes", "march", "sverre", {"minutes_ok": True})
    assert rt.instance(y.instance_id("march")).status == "completed"

    march = _meeting_row(y, "march")
    assert march.minutes_sent_at is not None and march.minutes_sent_at.isoformat().startswith("2025-03-07T09:00")
    assert march.minutes_approved_at is None
    with rt.Session() as s:
        rows = s.scalars(select(MeetingAttendance).where(MeetingAttendance.meeting_id == march.id)
                         .order_by(MeetingAttendance.position)).all()
        assert [(r.username, r.name, r.present, r.guest) for r in rows] == [
            ("kristin", "Kristin SSU-leder", True, False), ("morten", "Morten SSU-medlem", False, False),
            (None, "Vera AU", True, True), (None, "Anne Gjest, Helse Sør-Øst", True, True)]
        minutes = s.get(Document, march.minutes_document_id)
        assert (minutes.kind, minutes.filename) == ("meeting_minutes", "referat-ssu-2025-03-06.pdf")
        minutes_pdf = minutes.content
    text = _text(minutes_pdf)
    assert text.index("Til stede") < text.index("Kristin SSU-leder") < text.index("Forfall")
    assert text.index("Forfall") < text.index("Morten SSU-medlem") < text.index("Andre til stede")
    assert text.index("Andre til stede") < text.index("Anne Gjest, Helse Sør-Øst") < text.index("Saker")
    assert "«Prosjektrapportering samhandlingsprosjekter» tas til orientering." in text

    # mailed to the members with the PDF attached, and delivered by SMTP
    mails = _mails(y, "Referat fra SSU 06.03.25")
    assert [m.to_address for m in mails] == ["kristin@drammen.example.no", "morten@asker.example.no"]
    assert "Vedlagt er referatet fra møtet 06.03.25" in mails[0].body
    for mail in mails:
        [attached] = _attached(y, mail)
        assert (attached.filename, attached.media_type) == ("referat-ssu-2025-03-06.pdf", "application/pdf")
        assert attached.content == minutes_pdf
    inbox, settings = smtp()
    delivered, failed = dispatch_outbox(rt.WriteSession, settings)
    assert failed == 0 and delivered >= 2
    subjects = [m.content.decode("utf-8", "replace") for m in inbox.messages]
    assert sum("Referat fra SSU 06.03.25" in text for text in subjects) == 2

    # the next meeting: its approval case carries the minutes as a numbered attachment, and so does the notice
    later = _plan(y, "may", "2025-05-08", "Strategi- og handlingsplan 2026")
    may_id = y.data("may")["meeting_id"]
    with rt.Session() as s:
        approval = s.scalar(select(MeetingCase).where(MeetingCase.meeting_id == may_id,
                                                      MeetingCase.title == MINUTES_CASE))
        [row] = s.scalars(select(CaseAttachment).where(CaseAttachment.case_id == approval.id)).all()
        assert (row.number, row.title, row.document_id) == (1, "Referat fra SSU 06.03.25", march.minutes_document_id)
        approval_id, approval_number = approval.id, approval.case_number
    assert approval.proposed_conclusion == "Referat fra møtet 06.03.25 godkjennes."
    y.at("2025-04-29T08:00")  # 7 working days before Thursday 8 May (1 May is a holiday)
    [notice, _other] = _mails(y, "Innkalling til SSU 08.05.25")
    assert "1. Referat fra SSU 06.03.25 (sak " + approval_number + ")" in notice.body
    notice_pdf, minutes_copy = _attached(y, notice)
    assert minutes_copy.content == minutes_pdf  # the members get the minutes with the notice
    assert "1. Referat fra SSU 06.03.25 (sak " + approval_number + ")" in _text(notice_pdf.content)

    # concluding the approval case approves the minutes of 6 March, and only those
    y.at("2025-05-08T12:30")
    conclusions = _conclude_all(y, "may")
    assert [c["case_id"] for c in conclusions][2:] == [later]
    march = _meeting_row(y, "march")
    assert march.minutes_approved_in_case_id == approval_id
    assert march.minutes_approved_at.isoformat().startswith("2025-05-08T10:30")
    assert _meeting_row(y, "may").minutes_approved_at is None
    with rt.Session() as s:
        assert {c["number"]: c["status"] for c in list_cases(s, "SSU", community=VV)}[approval_number] == "decided"

    # the meeting page: attendance, the minutes' status and both PDFs, for Vest-Viken only
    sverre, siri = _clients(y, db_engine, "sverre", "siri")
    page = sverre.get(f"/meetings/{march.id}").get_data(as_text=True)
    for expected in ("Til stede", "Kristin SSU-leder", "Forfall", "Morten SSU-medlem", "Andre til stede",
                     "Anne Gjest, Helse Sør-Øst", f"Referat godkjent i sak <a href=\"/cases/{approval_id}\">"
                     f"{approval_number}</a>", "07.03.2025", f'href="/meetings/{march.id}/minutes.pdf"',
                     f'href="/meetings/{march.id}/notice.pdf"'):
        assert expected in page, expected
    download = sverre.get(f"/meetings/{march.id}/minutes.pdf")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.data == minutes_pdf
    assert 'filename="referat-ssu-2025-03-06.pdf"' in download.headers["Content-Disposition"]
    notice = sverre.get(f"/meetings/{may_id}/notice.pdf")
    assert notice.status_code == 200 and notice.data == notice_pdf.content
    may_page = sverre.get(f"/meetings/{may_id}").get_data(as_text=True)
    assert "Ikke ennå" in may_page  # its own minutes: not approved yet
    for path in (f"/meetings/{march.id}/minutes.pdf", f"/meetings/{may_id}/notice.pdf"):
        assert siri.get(path).status_code == 403  # Vestfold's secretariat


def test_minutes_written_after_the_next_agenda_still_reach_its_notice(year, db_engine):
    """The next meeting's agenda can be set up before the minutes exist: the notice picks them up."""
    y, rt = year, year.rt
    _meetings(rt)
    _plan(y, "march", "2025-03-06", "Prosjektrapportering samhandlingsprosjekter")
    y.at("2025-03-06T12:30")
    _conclude_all(y, "march")
    _plan(y, "may", "2025-05-08", "Strategi- og handlingsplan 2026")  # before the minutes of March are written
    may_id = y.data("may")["meeting_id"]
    with rt.Session() as s:
        approval = s.scalar(select(MeetingCase).where(MeetingCase.meeting_id == may_id,
                                                      MeetingCase.title == MINUTES_CASE))
        assert s.scalars(select(CaseAttachment).where(CaseAttachment.case_id == approval.id)).all() == []
    # before: the meeting page says what is missing, and the PDFs are a clear "not yet" (404)
    [sverre] = _clients(y, db_engine, "sverre")
    march_id = y.data("march")["meeting_id"]
    page = sverre.get(f"/meetings/{march_id}").get_data(as_text=True)
    assert "Ikke registrert ennå" in page and "ikke skrevet ennå" in page
    missing = sverre.get(f"/meetings/{march_id}/minutes.pdf")
    assert missing.status_code == 404 and "Referatet er ikke skrevet ennå" in missing.get_data(as_text=True)
    missing = sverre.get(f"/meetings/{may_id}/notice.pdf")
    assert missing.status_code == 404 and "Ingen innkalling ennå" in missing.get_data(as_text=True)
    assert sverre.get("/meetings/999999/minutes.pdf").status_code == 404
    y.complete("record_attendance", "march", "sverre", {"present": ["kristin", "morten"]})
    y.complete("check_minutes", "march", "sverre", {"minutes_ok": True})
    y.at("2025-04-29T08:00")
    [notice, _other] = _mails(y, "Innkalling til SSU 08.05.25")
    assert f"1. Referat fra SSU 06.03.25 (sak {approval.case_number})" in notice.body
    # nobody recorded as absent: the minutes say so
    with rt.Session() as s:
        pdf = s.get(Document, s.get(Meeting, y.data("march")["meeting_id"]).minutes_document_id).content
    text = _text(pdf)
    assert "Ingen forfall." in text and "Andre til stede" not in text


def test_attendance_and_minutes_refuse_what_they_cannot_use(year):
    """Clear errors instead of tracebacks: a non-member as present, a meeting without minutes to send."""
    y, rt = year, year.rt
    _meetings(rt)
    meeting_id = y.connector("meetings.schedule", {"committee": "SSU", "community": VV,
                                                   "starts_at": "2025-03-06T12:30", "place": "Drammen"},
                             "admin")["meeting_id"]
    with pytest.raises(SamflytError) as refused:
        y.connector("meetings.record_attendance", {"meeting_id": meeting_id, "present": ["hilde"]}, "admin")
    assert str(refused.value) == "hilde is not a member of SSU in Helsefellesskap Vest-Viken"
    with pytest.raises(SamflytError) as refused:
        y.connector("meetings.record_attendance", {"meeting_id": meeting_id, "present": "kristin"}, "admin")
    assert str(refused.value) == "present and guests are lists of names"
    with pytest.raises(SamflytError) as refused:
        y.connector("meetings.send_minutes", {"meeting_id": meeting_id}, "admin")
    assert str(refused.value) == f"meeting {meeting_id} has no minutes yet"



def test_the_upgrade_keeps_meetings_and_finds_the_notice_already_sent(bare_engine):
    """A database at community_0004 upgrades: its meetings keep their rows, a notice already sent is found
    for the download, and the minutes columns and the attendance table start empty."""
    db.migrate(bare_engine, _engine_head())
    db.migrate(bare_engine, "community_0004")
    now = clock.now()
    meeting = text("""INSERT INTO meetings (community, committee, starts_at, place, status, notice_sent_at,
                                           minutes_document_id, instance_id, created_at)
                      VALUES (:community, 'SSU', :at, 'Drammen', :status, :sent, :minutes, :instance, :at)""")
    document = text("""INSERT INTO documents (kind, filename, media_type, content, instance_id, created_at)
                       VALUES (:kind, :name, 'application/pdf', :content, :instance, :at)""")
    with bare_engine.begin() as conn:
        for kind, instance in (("meeting_notice", 41), ("meeting_notice", 41), ("meeting_minutes", 41),
                               ("meeting_notice", 42)):
            conn.execute(document, {"kind": kind, "name": f"{kind}.pdf", "content": b"%PDF-", "instance": instance,
                                    "at": now})
        conn.execute(meeting, {"community": VV, "at": now, "status": "held", "sent": now, "minutes": 3,
                               "instance": 41})
        conn.execute(meeting, {"community": VV, "at": now, "status": "planned", "sent": None, "minutes": None,
                               "instance": 42})
    db.migrate(bare_engine)
    with bare_engine.connect() as conn:
        rows = conn.execute(text("""SELECT instance_id, status, notice_document_id, minutes_document_id,
                                           minutes_sent_at, minutes_approved_in_case_id, minutes_approved_at
                                    FROM meetings ORDER BY id""")).all()
        assert [tuple(r) for r in rows] == [(41, "held", 2, 3, None, None, None),
                                            (42, "planned", None, None, None, None, None)]
        assert conn.execute(text("SELECT COUNT(*) FROM meeting_attendance")).scalar_one() == 0
    assert "meeting_attendance" in inspect(bare_engine).get_table_names()
