"""A version's text may come from an uploaded document: Markdown and plain text as they are, Word (.docx)
converted to lines of text with the standard library, anything else refused with a clear error; the diff page
then compares the converted text with the version before it."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import select

from community.records import AgreementEvent, AgreementVersion
from engine import attachments
from engine.errors import SamflytError
from tests.test_agreement_revision import VF, revision  # noqa: F401 - delavtale j in the register, as a fixture
from web import create_app

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx(*paragraphs: str) -> bytes:
    """A small Word document: one paragraph per argument, a tab as ``w:tab`` and a line break as ``w:br``,
    each paragraph split in two runs as Word does."""
    body = []
    for text in paragraphs:
        runs = []
        for i, piece in enumerate(text.split("\t")):
            if i:
                runs.append("<w:r><w:tab/></w:r>")
            half = len(piece) // 2
            runs.append(f'<w:r><w:t xml:space="preserve">{piece[:half]}</w:t></w:r>'
                        f'<w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">{piece[half:]}</w:t></w:r>')
        body.append("<w:p>" + "".join(runs).replace("\n", "</w:t><w:br/><w:t>") + "</w:p>")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.'
                                                'org/package/2006/content-types"/>')
        archive.writestr("word/document.xml", f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                                              f'<w:document xmlns:w="{W}"><w:body>{"".join(body)}'
                                              f'<w:sectPr/></w:body></w:document>')
    return buffer.getvalue()


@pytest.fixture
def drafting(revision, monkeypatch, tmp_path):  # noqa: F811
    """The revision of delavtale j with its working group set up: the draft_text task is open."""
    monkeypatch.setenv("SAMFLYT_ATTACHMENTS_DIR", str(tmp_path / "files"))
    y, agreement_id = revision
    y.start("agreement_revision", "per", {"agreement_id": agreement_id}, ref="rev")
    y.complete("describe_need", "rev", "per", {
        "agreement_id": str(agreement_id), "source": "person", "reason": "Ny veileder.",
        "mandate": "Revider delavtale j.", "mandate_committee": "AU"})
    y.connector("meetings.conclude", {"number": y.data("rev")["case_id"], "community": VF, "committee": "AU",
                                      "conclusion": "Arbeidsgruppe nedsettes."}, "admin")
    y.complete("set_up_group", "rev", "per", {"leader": "renate", "members": ["kjetil"],
                                              "group_deadline": "2025-10-01"})
    return y, agreement_id


def _upload(y, content: bytes, filename: str) -> str:
    with y.rt.session() as s:
        return attachments.store(s, content, filename, "renate", y.task("rev", "draft_text")).id


def test_a_word_document_becomes_the_draft_text_and_the_diff(drafting, db_engine):
    y, agreement_id = drafting
    upload = _upload(y, docx("Delavtale j – Digitalisering", "Partene bruker\tnasjonale løsninger",
                             "Avvik meldes\nog følges opp"), "delavtale-j.docx")
    y.complete("draft_text", "rev", "renate", {"attachment": upload, "next_step": "status_report",
                                               "status_report": "Utkast fra Word."})
    expected = "Delavtale j – Digitalisering\nPartene bruker\tnasjonale løsninger\nAvvik meldes\nog følges opp\n"
    with y.rt.Session() as s:
        draft = s.scalar(select(AgreementVersion).where(AgreementVersion.agreement_id == agreement_id,
                                                        AgreementVersion.number == 2))
        assert (draft.status, draft.text) == ("draft", expected)
        saved = s.scalars(select(AgreementEvent).where(AgreementEvent.kind == "draft")).one()
        assert '"file": "delavtale-j.docx"' in saved.detail
    data = y.data("rev")
    assert data["text"] == expected and data["attachment"] is None  # the next round starts from the text

    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = y.rt
    page = app.test_client().get(f"/agreements/{agreement_id}/versions/2").get_data(as_text=True)
    assert "<ins>+ Avvik meldes</ins>" in page and "<ins>+ og følges opp</ins>" in page
    assert "<del>− Elektronisk meldingsutveksling mellom journalsystemene.</del>" in page

    # a typed text in the next round replaces it; a Markdown file is taken as it is
    markdown = _upload(y, b"# Delavtale j\n\n- Felles rutine\n", "utkast.md")
    y.complete("draft_text", "rev", "kjetil", {"text": "ignored: the file wins", "attachment": markdown,
                                               "next_step": "status_report", "status_report": "Nytt utkast."})
    with y.rt.Session() as s:
        assert s.get(AgreementVersion, y.data("rev")["version_id"]).text == "# Delavtale j\n\n- Felles rutine\n"


@pytest.mark.parametrize(("content", "filename", "error"), [
    (b"%PDF-1.4 not text", "utkast.pdf", "cannot be used as the agreement text: upload a file of type .md, .txt"),
    (b"not a zip", "utkast.docx", "not a valid .docx file"),
    (b"\xff\xfe\x00broken", "utkast.txt", "is not UTF-8 text"),
    (docx("", " "), "tom.docx", "has no text"),
])
def test_a_document_that_is_not_text_is_refused(drafting, content, filename, error):
    y, agreement_id = drafting
    upload = _upload(y, content, filename)
    revision_id = y.data("rev")["revision_id"]
    with pytest.raises(SamflytError, match=error):
        y.connector("agreements.save_draft", {"revision_id": revision_id, "attachment_id": upload}, "admin")
    with y.rt.Session() as s:  # no draft was made
        assert s.scalar(select(AgreementVersion.id).where(AgreementVersion.number == 2)) is None


def test_the_connector_takes_a_text_file_next_to_the_text(drafting):
    y, agreement_id = drafting
    upload = _upload(y, "Linje én\nLinje to\n".encode(), "utkast.txt")
    result = y.connector("agreements.save_draft", {"revision_id": y.data("rev")["revision_id"], "text": "",
                                                   "attachment_id": upload}, "admin")
    assert (result["number"], result["text"]) == (2, "Linje én\nLinje to\n")


def test_the_draft_form_takes_only_text_documents(drafting, db_engine):
    """On the working group's form the file field accepts .docx, .md and .txt only: a PDF is refused next to
    the field (the process does not go on to fail at the save), a Word file becomes the draft."""
    from engine import accounts

    y, agreement_id = drafting
    with y.rt.session() as s:
        accounts.set_password(s, "renate", "passord-renate")
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)})
    app.extensions["samflyt_runtime"] = y.rt
    client = app.test_client()
    assert client.post("/sign-in", data={"username": "renate", "password": "passord-renate"}).status_code == 302
    task = y.task("rev", "draft_text", "renate")
    form = client.get(f"/tasks/{task}").get_data(as_text=True)
    assert 'accept=".docx,.md,.txt"' in form and "Filer av typen .docx, .md, .txt" in form
    fields = {"next_step": "status_report", "status_report": "Utkast.", "_action": "complete"}
    refused = client.post(f"/tasks/{task}", data={**fields, "attachment": (io.BytesIO(b"%PDF-1.7"), "utkast.pdf")},
                          content_type="multipart/form-data")
    assert refused.status_code == 422
    assert "utkast.pdf: filer av typen .pdf tas ikke imot (tillatt: .docx, .md, .txt)" in refused.get_data(True)
    assert y.task("rev", "draft_text", "renate") == task  # still open, nothing failed
    done = client.post(f"/tasks/{task}", data={**fields, "attachment": (io.BytesIO(docx("Ny tekst")), "j.docx")},
                       content_type="multipart/form-data")
    assert done.status_code == 302
    with y.rt.Session() as s:
        assert s.get(AgreementVersion, y.data("rev")["version_id"]).text == "Ny tekst\n"
