"""Documents: letters and reports as PDF, lists as spreadsheets.

Why this module exists:

* **Letters for the archive.** An award letter (tildelingsbrev), a rejection (avslag) and the yearly
  report to the strategic committee (årsrapport til SSU) are records the hospital trust and the
  municipalities must file in their archives (Noark 5). They are rendered to PDF/A-2a (archival,
  tagged PDF), so the archived copy looks the same in twenty years as the day it was sent.
* **Exports for the regional health authority.** Helse Sør-Øst RHF asks for figures on request and
  the working committee (AU) compiles reports in Excel; :func:`export_rows_xlsx` and
  :func:`export_rows_csv` turn any list of rows into a file that Norwegian Excel opens correctly.

Everything here is a pure function of plain dicts: no database, no current time, no network. Callers
(connectors, the web UI) collect the data; this module only formats it.

Formatting conventions (shared with the web UI through :func:`format_kroner` and :func:`format_date`):

* Kroner are whole numbers, grouped in threes by a NO-BREAK SPACE (U+00A0), with a no-break space before
  "kr" as well, so an amount never wraps across lines: ``1860030`` -> ``"1\\u00a0860\\u00a0030\\u00a0kr"``.
  The PDFs use exactly the same string.
* Dates are ``dd.mm.yyyy`` (``01.12.2025``). Aware datetimes are shown in Norwegian time.

Security: templates are autoescaped, so text from applicants can never add markup; WeasyPrint gets a URL
fetcher that serves the bundled stylesheet and refuses everything else (no network, no other files).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from engine.clock import LOCAL_TZ
from engine.formats import NBSP, DocumentError, _as_date, format_date, format_kroner  # noqa: F401 - re-exported

__all__ = [
    "DocumentError",
    "TEMPLATE_DIR",
    "STYLESHEET",
    "BundledOnlyURLFetcher",
    "url_fetcher",
    "format_kroner",
    "format_date",
    "available_templates",
    "render_html",
    "html_to_pdf",
    "render_pdf",
    "export_rows_xlsx",
    "export_rows_csv",
]

TEMPLATE_DIR = Path(__file__).parent / "templates"
#: The one stylesheet the templates link to (``<link rel="stylesheet" href="documents.css">``).
STYLESHEET = TEMPLATE_DIR / "documents.css"
#: Archival PDF (ISO 19005-2, level A: tagged, with Unicode text), accepted by Norwegian public archives.
PDF_VARIANT = "pdf/a-2a"

#: Excel number format for kroner; Excel shows the thousands separator of the reader's locale.
KRONER_NUMBER_FORMAT = '#,##0 "kr"'
DATE_NUMBER_FORMAT = "DD.MM.YYYY"
DATETIME_NUMBER_FORMAT = "DD.MM.YYYY HH:MM"

_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
# A cell starting with one of these is a formula to Excel (CSV/formula injection, OWASP).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# --- PDF --------------------------------------------------------------------------------------------


class BundledOnlyURLFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that serves the bundled stylesheet and refuses every other URL.

    Documents are rendered on the server from data that partly comes from applicants; WeasyPrint must
    never reach the network (server-side request forgery) or read other local files. Refusals raise
    :class:`DocumentError`; :func:`render_pdf` runs WeasyPrint with ``fail_on_errors`` so a refused
    resource stops the rendering instead of silently producing a document without it.
    """

    def __init__(self, allowed: Iterable[Path] = (STYLESHEET,), **kwargs: Any) -> None:
        kwargs.setdefault("fail_on_errors", True)
        super().__init__(**kwargs)
        self._allowed = {path.resolve().as_uri(): path for path in allowed}

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        path = self._allowed.get(url.split("?")[0].split("#")[0])
        if path is None:
            raise DocumentError(f"documents may not fetch {url!r}: only the bundled stylesheet is allowed")
        return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": "text/css; charset=utf-8"})


#: The fetcher :func:`render_pdf` uses; callable: ``url_fetcher(url)``.
url_fetcher = BundledOnlyURLFetcher()

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _filter(formatter: Callable[[Any], str]) -> Callable[[Any], str]:
    """A Jinja filter from a formatter; an undefined input raises Jinja's "is undefined" error."""

    def apply(value: Any) -> str:
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()
        return formatter(value)

    return apply


_env.filters["kr"] = _filter(format_kroner)
_env.filters["dato"] = _filter(format_date)


def available_templates() -> list[str]:
    """Names accepted by :func:`render_pdf` (the ``*.html`` files without suffix, except partials)."""
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.html") if not p.stem.startswith("_"))


def render_html(template: str, context: Mapping[str, Any]) -> str:
    """Render ``engine/templates/<template>.html`` with ``context`` (autoescaped; every field required)."""
    if not isinstance(template, str) or not _TEMPLATE_NAME.match(template) or template not in available_templates():
        raise DocumentError(f"unknown document template {template!r}; known: {', '.join(available_templates())}")
    try:
        return _env.get_template(f"{template}.html").render(context)
    except jinja2.UndefinedError as error:
        raise DocumentError(f"document {template!r} is missing a value: {error.message}") from None
    except DocumentError as error:
        raise DocumentError(f"document {template!r}: {error}") from None
    except (TypeError, ValueError, KeyError) as error:
        raise DocumentError(f"document {template!r} has a malformed value: {error}") from None


def html_to_pdf(markup: str) -> bytes:
    """Convert HTML to an archival PDF (PDF/A-2a). Relative URLs resolve against the template folder.

    Only the bundled stylesheet can be fetched; any other resource (an image on the web, a local file)
    makes this raise :class:`DocumentError` instead of producing a document without it.
    """
    fetcher = BundledOnlyURLFetcher()  # one per call: URLFetcher keeps per-request state
    try:
        return HTML(string=markup, base_url=TEMPLATE_DIR.resolve().as_uri() + "/", url_fetcher=fetcher).write_pdf(
            pdf_variant=PDF_VARIANT)
    except FatalURLFetchingError as error:
        cause = error.__cause__
        raise DocumentError(str(cause) if isinstance(cause, DocumentError) else str(error)) from None


def render_pdf(template: str, context: Mapping[str, Any]) -> bytes:
    """Render ``engine/templates/<template>.html`` with ``context`` to an archival PDF (A4, PDF/A-2a).

    Raises :class:`DocumentError` for an unknown template, a missing or malformed value, or a resource
    the template tries to fetch that is not the bundled stylesheet.
    """
    return html_to_pdf(render_html(template, context))


# --- spreadsheets -----------------------------------------------------------------------------------


def _cell_value(row: Mapping[str, Any], key: str) -> Any:
    try:
        value = row[key]
    except KeyError:
        raise DocumentError(f"export row has no value for column {key!r}: {dict(row)!r}") from None
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(LOCAL_TZ).replace(tzinfo=None)
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(item) for item in value)
    return value


def _defuse_formula(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def _sheet_title(title: str) -> str:
    cleaned = _SHEET_TITLE_FORBIDDEN.sub("-", title).strip("'").strip()
    return cleaned[:31] or "Ark1"


def export_rows_xlsx(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], sheet_title: str,
                     *, plain_number_keys: Iterable[str] = ()) -> bytes:
    """One sheet: a bold, frozen header row of ``columns`` titles, then one line per row.

    ``columns`` is ``[(key, title), ...]``. Integers are written as numbers in the kroner format
    (``#,##0 "kr"``) unless their key is in ``plain_number_keys`` (years, counts); dates and datetimes
    as real Excel dates (``DD.MM.YYYY``); lists joined with ", "; ``None`` as an empty cell. Text that
    Excel would take for a formula stays text; control characters XLSX cannot hold are dropped. The
    sheet title is cut to Excel's 31 characters with ``[]:*?/\\`` replaced by "-". A row without one
    of the column keys is a :class:`DocumentError`.
    """
    plain = set(plain_number_keys)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _sheet_title(sheet_title)
    sheet.append([title for _, title in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    widths = [len(title) for _, title in columns]

    for row_number, row in enumerate(rows, start=2):
        for col_number, (key, _) in enumerate(columns, start=1):
            value = _cell_value(row, key)
            cell = sheet.cell(row=row_number, column=col_number)
            shown: str
            if isinstance(value, bool):
                cell.value = "Ja" if value else "Nei"
                shown = cell.value
            elif isinstance(value, int):
                cell.value = value
                if key in plain:
                    shown = str(value)
                else:
                    cell.number_format = KRONER_NUMBER_FORMAT
                    shown = format_kroner(value)
            elif isinstance(value, (float, Decimal)):
                cell.value = value
                shown = str(value)
            elif isinstance(value, datetime):
                cell.value = value
                cell.number_format = DATETIME_NUMBER_FORMAT
                shown = "00.00.0000 00:00"
            elif isinstance(value, date):
                cell.value = value
                cell.number_format = DATE_NUMBER_FORMAT
                shown = "00.00.0000"
            elif value is None:
                shown = ""
            else:
                # Control characters (pasted from word processors) are not allowed in XLSX.
                cell.value = ILLEGAL_CHARACTERS_RE.sub("", str(value))
                cell.data_type = "s"  # openpyxl would store "=..." as a formula
                shown = cell.value
            widths[col_number - 1] = max(widths[col_number - 1], len(shown))

    for col_number, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(col_number)].width = min(max(width + 2, 8), 60)
    sheet.freeze_panes = "A2"
    if columns:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(len(rows) + 1, 1)}"

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Ja" if value else "Nei"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        return str(value).replace(".", ",")  # Norwegian decimal comma
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M")
    if isinstance(value, date):
        return format_date(value)
    return _defuse_formula(str(value))


def export_rows_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> bytes:
    """CSV as Norwegian Excel reads it: UTF-8 with BOM, ``;`` between fields, CRLF, a header row of titles.

    Integers are plain digits (no thousands separator, so Excel reads them as numbers), decimals use a
    comma, dates are ``dd.mm.yyyy``, lists are joined with ", ", ``None`` is empty, and text Excel would
    take for a formula is prefixed with ``'``. A row without one of the column keys is a
    :class:`DocumentError`.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([title for _, title in columns])
    for row in rows:
        writer.writerow([_csv_text(_cell_value(row, key)) for key, _ in columns])
    return buffer.getvalue().encode("utf-8-sig")
