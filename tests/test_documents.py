"""Documents: real PDFs read back with pypdf, real spreadsheets read back with openpyxl and csv."""

from __future__ import annotations

import copy
import csv
import io
from datetime import UTC, date, datetime

import openpyxl
import pytest
from pypdf import PdfReader

from community import documents
from community.documents import (
    DocumentError,
    export_rows_csv,
    export_rows_xlsx,
    format_date,
    format_kroner,
    html_to_pdf,
    render_html,
    render_pdf,
    url_fetcher,
)
from engine.errors import SamflytError

NBSP = "\u00a0"
COMMUNITY = "Helsefellesskapet i Vestfold"

APPLICATION = {
    "id": "S-2025-07",
    "title": "Felles kompetanseløft for skrøpelige eldre i Horten og Færder",
    "applicant_organisation": "Horten kommune",
    "partner_organisations": ["Sykehuset i Vestfold HF", "Færder kommune"],
    "contact_name": "Åse Ødegård",
    "contact_email": "ase.odegard@horten.kommune.no",
}


@pytest.fixture
def award() -> dict:
    return {
        "community": COMMUNITY,
        "date": date(2025, 12, 1),
        "case_id": "2025.35",
        "application": copy.deepcopy(APPLICATION),
        "amount": 1860030,
        "budget": [
            {"party": "Horten kommune", "year": 2026, "amount": 900000},
            {"party": "Sykehuset i Vestfold HF", "year": 2026, "amount": 560030},
            {"party": "Færder kommune", "year": 2027, "amount": 400000},
        ],
        "conditions": "Midlene skal brukes i tråd med søknaden og prosjektplanen.\n"
                      "Tilskuddet gis for ett år av gangen, med forbehold om at tilskuddet videreføres.",
        "final_report_deadline": "2027-03-01",
        "conclusion": "SSU tildeler rekrutterings- og samhandlingstilskudd til prosjektet i tråd med "
                      "arbeidsutvalgets innstilling.",
    }


@pytest.fixture
def rejection() -> dict:
    return {
        "community": COMMUNITY,
        "date": "2026-02-12",
        "case_id": "2026.04",
        "application": copy.deepcopy(APPLICATION),
        "reason": "Søknaden mangler signatur fra sykehuset, og økonomisk fordeling mellom partene er ikke beskrevet.",
    }


@pytest.fixture
def annual_report() -> dict:
    return {
        "community": COMMUNITY,
        "year": 2025,
        "summary": "Sju prosjekter fikk tilskudd i 2025. Alle har levert statusrapport innen 1. desember.",
        "projects": [
            {
                "application_id": "S-2025-07",
                "title": APPLICATION["title"],
                "applicant_organisation": "Horten kommune",
                "granted": 1860030,
                "spent": [{"party": "Horten kommune", "amount": 812500},
                          {"party": "Sykehuset i Vestfold HF", "amount": 400000}],
                "spent_total": 1212500,
                "implementation": "Kombinerte stillinger er opprettet; to av tre kurs er gjennomført.",
                "goal_attainment": "Færre reinnleggelser av skrøpelige eldre enn i 2024.",
                "benefit_realisation": "Kortere ventetid på kommunal plass for utskrivningsklare pasienter.",
                "status": "Pågår",
            },
            {
                "application_id": "S-2025-11",
                "title": "Barn og unges psykiske helse – felles inntaksteam",
                "applicant_organisation": "Tønsberg kommune",
                "granted": 640000,
                "spent": [{"party": "Tønsberg kommune", "amount": 640000}],
                "spent_total": 640000,
                "implementation": "Inntaksteamet er i drift.",
                "goal_attainment": "Målene er nådd.",
                "benefit_realisation": "Ventetiden i BUP er redusert.",
                "status": "Avsluttet",
            },
        ],
        "totals": {"granted": 2500030, "spent": 1852500},
    }


def pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def flat(text: str) -> str:
    """Text with line breaks made spaces, so phrases that wrap in the PDF still match."""
    return " ".join(text.split())


# --- formatters --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "expected"), [
    (1860030, "1 860 030 kr"),
    (13960030, "13 960 030 kr"),
    (100000, "100 000 kr"),
    (999, "999 kr"),
    (0, "0 kr"),
    (-50000, "-50 000 kr"),
])
def test_format_kroner_groups_thousands_with_no_break_spaces(amount: int, expected: str) -> None:
    assert format_kroner(amount) == expected.replace(" ", NBSP)


@pytest.mark.parametrize("bad", [1.5, "1000", None, True])
def test_format_kroner_accepts_only_whole_kroner(bad: object) -> None:
    with pytest.raises(DocumentError, match="whole number"):
        format_kroner(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-12-01", "01.12.2025"),
    (date(2025, 12, 1), "01.12.2025"),
    (datetime(2025, 12, 1, 9, 30), "01.12.2025"),
    ("2025-12-01T09:30:00", "01.12.2025"),
    # 23:30 UTC on 30 November is already 1 December in Norway.
    (datetime(2025, 11, 30, 23, 30, tzinfo=UTC), "01.12.2025"),
])
def test_format_date(value: object, expected: str) -> None:
    assert format_date(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["1. desember", "2025-13-01", None, 20251201])
def test_format_date_rejects_what_is_not_a_date(bad: object) -> None:
    with pytest.raises(DocumentError):
        format_date(bad)  # type: ignore[arg-type]


def test_document_error_is_a_samflyt_error() -> None:
    assert issubclass(DocumentError, SamflytError)


# --- PDFs --------------------------------------------------------------------------------------------


def test_award_letter(award: dict) -> None:
    pdf = render_pdf("award_letter", award)
    text = pdf_text(pdf)
    words = flat(text)

    assert "Tildelingsbrev: rekrutterings- og samhandlingstilskudd" in words
    assert COMMUNITY in text
    assert "01.12.2025" in text
    assert "2025.35" in text
    assert APPLICATION["title"] in words
    assert "Åse Ødegård" in text and "ase.odegard@horten.kommune.no" in text
    assert "Sykehuset i Vestfold HF" in text and "Færder kommune" in text
    # The granted amount, the budget lines and their sum, formatted with no-break spaces.
    assert f"1{NBSP}860{NBSP}030{NBSP}kr" in text
    assert f"900{NBSP}000{NBSP}kr" in text and f"560{NBSP}030{NBSP}kr" in text and f"400{NBSP}000{NBSP}kr" in text
    assert "2027" in text
    assert "ett år av gangen" in words
    assert "innen 1. desember hvert år" in words
    assert "Sluttrapport innen 01.03.2027".lower() in words.lower()
    assert "Helse Sør-Øst RHF" in words
    assert "arbeidsutvalgets innstilling" in words

    reader = PdfReader(io.BytesIO(pdf))
    assert reader.metadata.title == f"Tildelingsbrev – {APPLICATION['title']}"
    assert reader.metadata.author == COMMUNITY
    # A4 portrait: 210 x 297 mm in points.
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    # Archival PDF/A-2, declared in the XMP metadata.
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"pdfaid:part" in xmp and b"pdfaid:conformance" in xmp


def test_award_letter_without_partners(award: dict) -> None:
    award["application"]["partner_organisations"] = []
    assert "Ingen samarbeidspartnere" in flat(pdf_text(render_pdf("award_letter", award)))


def test_rejection_letter(rejection: dict) -> None:
    text = pdf_text(render_pdf("rejection_letter", rejection))
    words = flat(text)
    assert "Svar på søknad om rekrutterings- og samhandlingstilskudd: avslag" in words
    assert COMMUNITY in text
    assert "12.02.2026" in text
    assert "2026.04" in text
    assert "Søknaden er ikke innvilget" in words
    assert "økonomisk fordeling mellom partene er ikke beskrevet" in words
    assert "Horten kommune" in text and "Åse Ødegård" in text


def test_annual_report(annual_report: dict) -> None:
    text = pdf_text(render_pdf("annual_report", annual_report))
    words = flat(text)
    assert "Årsrapport til SSU: rekrutterings- og samhandlingstilskudd 2025" in words
    assert COMMUNITY in text
    for amount in ("1 860 030 kr", "1 212 500 kr", "640 000 kr", "2 500 030 kr", "1 852 500 kr", "812 500 kr"):
        assert amount.replace(" ", NBSP) in text, amount
    # Not spent: 2 500 030 - 1 852 500.
    assert f"647{NBSP}530{NBSP}kr" in text
    for heading in ("Gjennomføring", "Måloppnåelse", "Gevinstrealisering"):
        assert heading in text
    assert "Barn og unges psykiske helse – felles inntaksteam" in words
    assert "Tønsberg kommune" in text and "Pågår" in text and "Avsluttet" in text
    assert "Kortere ventetid på kommunal plass" in words


def test_annual_report_without_projects(annual_report: dict) -> None:
    annual_report["projects"] = []
    annual_report["totals"] = {"granted": 0, "spent": 0}
    assert "Ingen prosjekter har rapportert for 2025" in flat(pdf_text(render_pdf("annual_report", annual_report)))


def test_missing_top_level_field_is_a_document_error(award: dict) -> None:
    del award["final_report_deadline"]
    with pytest.raises(DocumentError, match="award_letter.*final_report_deadline"):
        render_pdf("award_letter", award)


def test_missing_nested_field_is_a_document_error(rejection: dict) -> None:
    del rejection["application"]["contact_email"]
    with pytest.raises(DocumentError, match="rejection_letter.*contact_email"):
        render_pdf("rejection_letter", rejection)


def test_malformed_amount_is_a_document_error(award: dict) -> None:
    award["amount"] = "1860030"
    with pytest.raises(DocumentError, match="award_letter.*whole number"):
        render_pdf("award_letter", award)


@pytest.mark.parametrize("name", ["no_such_letter", "../errors", "_base", "award_letter.html", ""])
def test_unknown_template_is_a_document_error(name: str) -> None:
    with pytest.raises(DocumentError, match="unknown document template"):
        render_pdf(name, {})


def test_context_text_is_escaped_so_it_cannot_add_markup(rejection: dict) -> None:
    rejection["reason"] = '<img src="http://example.com/x.png"> <b>fet</b> & mer'
    html = render_html("rejection_letter", rejection)
    assert "<img" not in html and "<b>" not in html
    assert "&lt;img src=&#34;http://example.com/x.png&#34;&gt;" in html
    text = pdf_text(render_pdf("rejection_letter", rejection))
    assert '<img src="http://example.com/x.png"> <b>fet</b> & mer' in text


@pytest.mark.parametrize("url", [
    "http://example.com/x.png",
    "https://example.com/style.css",
    "file:///etc/passwd",
    (documents.TEMPLATE_DIR / "award_letter.html").resolve().as_uri(),
    "data:text/css,body{}",
    "ftp://example.com/x",
])
def test_url_fetcher_refuses_everything_but_the_bundled_stylesheet(url: str) -> None:
    with pytest.raises(DocumentError, match="may not fetch"):
        url_fetcher(url)


def test_url_fetcher_serves_the_bundled_stylesheet() -> None:
    response = url_fetcher(documents.STYLESHEET.resolve().as_uri())
    assert b"@page" in response.read()
    assert response.content_type == "text/css"


def test_a_template_that_fetches_an_external_url_fails() -> None:
    """Even markup from a template (not only context data) cannot reach the network: the render stops."""
    with pytest.raises(DocumentError, match="may not fetch 'http://example.com/x.png'"):
        html_to_pdf('<p>hei</p><img src="http://example.com/x.png">')
    with pytest.raises(DocumentError, match="may not fetch"):
        html_to_pdf('<link rel="stylesheet" href="../errors.py"><p>hei</p>')


def test_html_to_pdf_uses_the_bundled_stylesheet() -> None:
    pdf = html_to_pdf('<link rel="stylesheet" href="documents.css"><p>Ærlig talt, ømme føtter på Åsgårdstrand</p>')
    assert "Ærlig talt, ømme føtter på Åsgårdstrand" in pdf_text(pdf)


# --- spreadsheets ------------------------------------------------------------------------------------

COLUMNS = [
    ("id", "Søknad"),
    ("title", "Prosjekt"),
    ("applicant_organisation", "Hovedsøker"),
    ("year", "År"),
    ("granted", "Tildelt beløp"),
    ("final_report_deadline", "Frist for sluttrapport"),
    ("partners", "Samarbeidspartnere"),
    ("note", "Merknad"),
]

ROWS = [
    {"id": "S-2025-07", "title": "Kompetanseløft for skrøpelige eldre", "applicant_organisation": "Horten kommune",
     "year": 2025, "granted": 1860030, "final_report_deadline": date(2027, 3, 1),
     "partners": ["Sykehuset i Vestfold HF", "Færder kommune"], "note": None},
    {"id": "S-2025-11", "title": "Barn og unges psykiske helse", "applicant_organisation": "Tønsberg kommune",
     "year": 2025, "granted": 640000, "final_report_deadline": date(2026, 12, 1),
     "partners": ["Sykehuset i Vestfold HF"], "note": "=HYPERLINK(\"http://example.com\")"},
]


def test_export_rows_xlsx() -> None:
    data = export_rows_xlsx(ROWS, COLUMNS, "Tildelinger 2025", plain_number_keys={"year"})
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    sheet = workbook["Tildelinger 2025"]

    assert [cell.value for cell in sheet[1]] == [title for _, title in COLUMNS]
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.max_row == 3

    first = {title: cell for (_, title), cell in zip(COLUMNS, sheet[2], strict=True)}
    assert first["Søknad"].value == "S-2025-07"
    assert first["Hovedsøker"].value == "Horten kommune"
    assert first["Tildelt beløp"].value == 1860030
    assert first["Tildelt beløp"].data_type == "n"
    assert first["Tildelt beløp"].number_format == '#,##0 "kr"'
    assert first["År"].value == 2025 and first["År"].number_format == "General"
    assert isinstance(first["Frist for sluttrapport"].value, datetime)
    assert first["Frist for sluttrapport"].value.date() == date(2027, 3, 1)
    assert first["Frist for sluttrapport"].is_date
    assert first["Samarbeidspartnere"].value == "Sykehuset i Vestfold HF, Færder kommune"
    assert first["Merknad"].value is None

    # Text that looks like a formula stays text.
    note = sheet.cell(row=3, column=8)
    assert note.data_type == "s" and note.value == "=HYPERLINK(\"http://example.com\")"

    widths = [sheet.column_dimensions[letter].width for letter in "ABCDEFGH"]
    assert all(8 <= width <= 60 for width in widths)
    assert widths[1] > widths[3]  # the project title column is wider than the year column


def test_export_rows_xlsx_cleans_the_sheet_title() -> None:
    data = export_rows_xlsx([], [("id", "Søknad")], "Søknader 2025/2026: [alle] og mer enn 31 tegn")
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    title = workbook.active.title
    assert len(title) <= 31 and not set(title) & set("[]:*?/\\")
    assert [cell.value for cell in workbook.active[1]] == ["Søknad"]


def test_export_rows_xlsx_aware_datetime_in_norwegian_time() -> None:
    rows = [{"at": datetime(2025, 11, 30, 23, 30, tzinfo=UTC)}]
    sheet = openpyxl.load_workbook(io.BytesIO(export_rows_xlsx(rows, [("at", "Tidspunkt")], "Ark"))).active
    assert sheet["A2"].value == datetime(2025, 12, 1, 0, 30)


def test_export_rows_xlsx_drops_control_characters() -> None:
    rows = [{"text": "Linje\x0bskift fra Word\x07"}]
    sheet = openpyxl.load_workbook(io.BytesIO(export_rows_xlsx(rows, [("text", "Tekst")], "Ark"))).active
    assert sheet["A2"].value == "Linjeskift fra Word"


def test_export_missing_key_is_a_document_error() -> None:
    rows = [{"id": "S-2025-07"}]
    with pytest.raises(DocumentError, match="granted"):
        export_rows_xlsx(rows, [("id", "Søknad"), ("granted", "Tildelt")], "Ark")
    with pytest.raises(DocumentError, match="granted"):
        export_rows_csv(rows, [("id", "Søknad"), ("granted", "Tildelt")])


def test_export_rows_csv() -> None:
    data = export_rows_csv(ROWS, COLUMNS)
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 byte order mark, so Excel reads æøå

    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert lines[0] == [title for _, title in COLUMNS]
    assert lines[1] == ["S-2025-07", "Kompetanseløft for skrøpelige eldre", "Horten kommune", "2025", "1860030",
                        "01.03.2027", "Sykehuset i Vestfold HF, Færder kommune", ""]
    # A formula-looking text is prefixed with ' so Excel shows it as text.
    assert lines[2][7] == "'=HYPERLINK(\"http://example.com\")"
    assert len(lines) == 3
    assert b"\r\n" in data


def test_export_rows_csv_quotes_separators_and_uses_decimal_comma() -> None:
    rows = [{"text": "Vestre Viken; Bærum", "share": 0.25, "ok": True}]
    data = export_rows_csv(rows, [("text", "Tekst"), ("share", "Andel"), ("ok", "Signert")])
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert lines[1] == ["Vestre Viken; Bærum", "0,25", "Ja"]
