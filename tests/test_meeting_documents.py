"""The meeting's PDFs, read back with pypdf: the notice (innkalling: agenda and case papers in one document,
attachments numbered across the meeting) mailed to the members, and the minutes (referat: present, absent,
each case with its conclusion in the meeting), both archival (tagged, A4), with the structure of the
Vestfold SSU papers of 25.09.25. One render per test: WeasyPrint is slow.
"""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from community.connectors import meetings
from community.records import Document, Meeting
from engine import clock
from engine.connectors import ConnectorRegistry
from engine.models import OutboxAttachment, OutboxMessage
from engine.runtime import Runtime

VF = "Helsefellesskapet i Vestfold"
PLACE = "Kommunestyresalen i Færder kommune, Tinghaugveien 18"


@pytest.fixture
def vestfold(db_engine):
    """Vestfold's SSU (two members with mail, one without) and the meeting of 25.09.25 with three cases:
    the two standard cases, an agreement with two attachments and a case following up an earlier one."""
    clock.set_now(datetime.fromisoformat("2025-09-01T09:00:00+02:00"))
    registry = ConnectorRegistry()
    meetings.register(registry)
    rt = Runtime(db_engine, connectors=registry, workflow_cache_size=0, spec_cache=False)
    rt.add_user("pernille", ["ssu"], ["Sykehuset i Vestfold HF"], "Pernille Lysaker", "pernille@siv.example.no")
    rt.add_user("kristin", ["ssu", "chair"], ["Færder kommune"], "Kristin Liset", "kristin@faerder.example.no")
    rt.add_user("hilde", ["ssu"], ["Færder kommune"], "Hilde Kari Maugesten")  # no mail address
    rt.add_user("ola", ["ssu"], ["Drammen kommune"], "Ola Vest-Viken", "ola@drammen.example.no")  # not Vestfold
    rt.set_scope(VF, ["Færder kommune", "Sykehuset i Vestfold HF"])
    earlier = rt.call_connector("meetings.enqueue_case", {
        "case_type": "Drøfting", "title": "Rekrutterings- og samhandlingstilskudd", "community": VF,
        "proposed_conclusion": "Saken drøftes."})["case_id"]
    agreement = rt.call_connector("meetings.enqueue_case", {
        "case_type": "Beslutning", "community": VF, "case_handler": "pernille",
        "title": "Delavtale samarbeid om helhetlig pasientforløp",
        "background": "Avtaleforslag til behandling med retningslinje for samarbeid om innlagte pasienter.",
        "proposed_conclusion": "1. Fremforhandlet delavtale godkjennes og iverksettes 01.12.25.\n"
                               "2. Retningslinjen godkjennes og iverksettes 01.12.25.",
        "attachments": [{"title": "Delavtale helhetlig pasientforløp", "attachment_id": "a-7a"},
                        {"title": "Retningslinje for samarbeid om innlagte pasienter", "attachment_id": "a-7c"}],
    })["case_id"]
    grant = rt.call_connector("meetings.enqueue_case", {
        "case_type": "Beslutning", "community": VF, "case_handler": "hilde", "follows_up": earlier,
        "title": "Avtale om forvaltning av rekrutterings- og samhandlingstilskudd",
        "background": "Forslag til avtale om forvaltning av tilskuddet til behandling.",
        "proposed_conclusion": "Avtalen godkjennes.",
        "attachments": [{"title": "Avtale om forvaltning", "attachment_id": "a-11"}]})["case_id"]
    meeting_id = rt.call_connector("meetings.schedule", {
        "committee": "SSU", "community": VF, "starts_at": "2025-09-25T12:30:00+02:00", "place": PLACE})["meeting_id"]
    for number in (agreement, grant):
        agenda = rt.call_connector("meetings.add_to_agenda", {"meeting_id": meeting_id, "case_id": number})["agenda"]
    assert agenda[2:] == [agreement, grant] and len(agenda) == 4
    yield rt, meeting_id, agenda, earlier
    clock.set_now(None)


def _read(pdf: bytes) -> tuple[PdfReader, str]:
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    return reader, " ".join("\n".join(page.extract_text() for page in reader.pages).split())


def _archival_a4(reader: PdfReader) -> None:
    for page in reader.pages:
        box = page.mediabox
        assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 portrait, in points
    root = reader.trailer["/Root"]
    assert "/StructTreeRoot" in root  # tagged: headings, lists and tables for screen readers
    assert root["/MarkInfo"]["/Marked"]
    xmp = root["/Metadata"].get_object().get_data()
    assert b"pdfaid:part" in xmp and b"pdfaid:conformance" in xmp


def test_the_notice_is_one_pdf_of_agenda_and_case_papers_attached_to_each_members_mail(vestfold):
    rt, meeting_id, agenda, earlier = vestfold
    opening, minutes_case, agreement, grant = agenda
    result = rt.call_connector("meetings.send_notice", {"meeting_id": meeting_id})
    assert result["sent_to"] == ["kristin", "pernille"]

    with rt.Session() as s:
        doc = s.get(Document, result["document_id"])
        assert (doc.kind, doc.filename, doc.media_type) == ("meeting_notice", "innkalling-ssu-2025-09-25.pdf",
                                                            "application/pdf")
        pdf = doc.content
        mails = s.scalars(select(OutboxMessage).order_by(OutboxMessage.to_address)).all()
        assert [m.to_address for m in mails] == ["kristin@faerder.example.no", "pernille@siv.example.no"]
        assert {m.subject for m in mails} == {"Innkalling til SSU 25.09.25"}
        for mail in mails:
            [attached] = s.scalars(select(OutboxAttachment).where(OutboxAttachment.outbox_id == mail.id)).all()
            assert (attached.filename, attached.media_type) == (doc.filename, "application/pdf")
            assert attached.content == pdf
        assert "Vedlegg nr: 1, 2" in mails[0].body  # the text of the mail keeps the same numbering

    reader, text = _read(pdf)
    _archival_a4(reader)
    assert reader.metadata.title == "Innkalling til møte i Strategisk samarbeidsutvalg (SSU) 25.09.2025"
    assert reader.metadata.author == VF
    # the seed's structure: header, date and place, attachments numbered across the meeting, agenda, papers
    for expected in ("Innkalling til møte i Strategisk samarbeidsutvalg (SSU)", VF, "Dato og sted",
                     "25.09.2025", "kl. 12.30", PLACE, "Vedlegg", "Saksliste", "Saksfremlegg", "Saksnummer",
                     "Type sak", "Saksbehandler", "Bakgrunn", "Forslag til konklusjon",
                     "1. Delavtale helhetlig pasientforløp (sak " + agreement + ")",
                     "2. Retningslinje for samarbeid om innlagte pasienter (sak " + agreement + ")",
                     "3. Avtale om forvaltning (sak " + grant + ")",
                     f"Sak {opening} – Godkjenning av innkalling og saksliste", "Innkalling og saksliste godkjennes.",
                     f"Sak {minutes_case} – Godkjenning av referat fra forrige møte",
                     f"Sak {agreement} – Delavtale samarbeid om helhetlig pasientforløp",
                     f"Sak {grant} – Avtale om forvaltning av rekrutterings- og samhandlingstilskudd",
                     "Pernille Lysaker", "Hilde Kari Maugesten", "Vedlegg nr 1, 2", "Vedlegg nr 3",
                     f"Oppfølging av sak {earlier}", "Avtaleforslag til behandling med retningslinje",
                     "1. Fremforhandlet delavtale godkjennes og iverksettes 01.12.25.", "Avtalen godkjennes."):
        assert expected in text, expected
    # the agenda before the papers, in the agenda's order
    assert text.index("Saksliste") < text.index("Saksfremlegg") < text.index(f"Sak {opening} –")
    assert text.index(f"Sak {agreement} –") < text.index(f"Sak {grant} –")
    assert "Ola Vest-Viken" not in text and "Rekrutterings- og samhandlingstilskudd Saken drøftes" not in text
    with rt.Session() as s:
        assert s.get(Meeting, meeting_id).notice_sent_at is not None


def test_the_minutes_list_present_absent_and_each_conclusion_in_the_meeting(vestfold):
    rt, meeting_id, agenda, _earlier = vestfold
    opening, minutes_case, agreement, grant = agenda
    for number, conclusion in ((opening, "Innkalling og saksliste godkjennes."),
                               (minutes_case, "Referat fra forrige møte godkjennes."),
                               (agreement, "Delavtalen godkjennes og iverksettes 01.01.26.")):
        rt.call_connector("meetings.conclude", {"number": number, "community": VF, "conclusion": conclusion})
    rt.call_connector("meetings.mark_held", {"meeting_id": meeting_id})
    with pytest.raises(meetings.MeetingError, match="lists of names"):
        rt.call_connector("meetings.write_minutes", {"meeting_id": meeting_id, "present": "kristin"})

    result = rt.call_connector("meetings.write_minutes", {
        "meeting_id": meeting_id, "present": ["kristin", "Anita Bjune Archer"], "absent": ["pernille"]})
    with rt.Session() as s:
        assert s.get(Meeting, meeting_id).minutes_document_id == result["document_id"]
        doc = s.get(Document, result["document_id"])
        assert (doc.kind, doc.filename) == ("meeting_minutes", "referat-ssu-2025-09-25.pdf")
        pdf = doc.content

    reader, text = _read(pdf)
    _archival_a4(reader)
    assert reader.metadata.title == "Referat fra møte i Strategisk samarbeidsutvalg (SSU) 25.09.2025"
    for expected in ("Referat fra møte i Strategisk samarbeidsutvalg (SSU)", VF, "25.09.2025", PLACE,
                     "Til stede", "Kristin Liset", "Anita Bjune Archer", "Forfall", "Pernille Lysaker",
                     f"Sak {opening} – Godkjenning av innkalling og saksliste",
                     f"Sak {agreement} – Delavtale samarbeid om helhetlig pasientforløp", "Type sak Beslutning",
                     "Konklusjon i møtet", "Delavtalen godkjennes og iverksettes 01.01.26.",
                     f"Sak {grant} – Avtale om forvaltning av rekrutterings- og samhandlingstilskudd",
                     "Ikke behandlet i møtet."):
        assert expected in text, expected
    assert text.index("Til stede") < text.index("Kristin Liset") < text.index("Forfall") \
        < text.index("Pernille Lysaker") < text.index(f"Sak {opening} –")
    assert text.count("Konklusjon i møtet") == 4
