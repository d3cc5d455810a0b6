"""Connectors ``documents.*``: letters as PDFs and the yearly export, stored in the step's transaction.

Rendering is :mod:`engine.documents` (pure functions); these connectors store the result as a
:class:`engine.records.Document` so the letter exists exactly when the step that wrote it committed.
"""

from __future__ import annotations

from typing import Any

from community.records import Document
from engine import clock
from engine.calendar import local_date
from engine.connectors import StepContext

from .grants import status_reports

#: The columns of the export for the regional health authority (key, bokmål title).
EXPORT_COLUMNS = [
    ("application_id", "Søknad"), ("title", "Prosjekt"), ("applicant_organisation", "Hovedsøker"),
    ("granted", "Tildelt"), ("spent_total", "Brukt"), ("spent_by_party", "Brukt per part"),
    ("implementation", "Gjennomføring"), ("goal_attainment", "Måloppnåelse"),
    ("benefit_realisation", "Gevinstrealisering"), ("status", "Rapportstatus"),
]


def store(ctx: StepContext, kind: str, filename: str, media_type: str, content: bytes,
          application_id: int | None = None, call_id: int | None = None) -> Document:
    """Keep a generated document in the step's transaction, marked with the step's instance."""
    session = ctx.session
    doc = Document(kind=kind, filename=filename, media_type=media_type, content=content,
                   instance_id=ctx.instance_id, application_id=application_id, call_id=call_id,
                   created_at=clock.now())
    session.add(doc)
    session.flush()
    return doc


def render(template: str, context: dict, filename: str = "", application_id: int | None = None,
           call_id: int | None = None, *, ctx: StepContext) -> dict:
    """Render ``template`` (e.g. ``award_letter``) with ``context`` to PDF and keep it; returns its id."""
    from community.documents import render_pdf  # WeasyPrint takes seconds to import: only where letters are made

    pdf = render_pdf(template, context)
    doc = store(ctx, template, filename or f"{template}.pdf", "application/pdf", pdf, application_id, call_id)
    return {"document_id": doc.id, "filename": doc.filename, "bytes": len(pdf)}


def export_year(year: int, community: str = "", *, ctx: StepContext) -> dict:
    """The year's status reports of ``community``'s projects (all communities when not given) as XLSX and
    CSV: per-project economy and goal attainment, for Helse Sør-Øst and the annual report."""
    from community.documents import export_rows_csv, export_rows_xlsx

    rows = export_rows(ctx.session, year, community)
    xlsx = store(ctx, "export_xlsx", f"tilskudd-{year}.xlsx",
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 export_rows_xlsx(rows, EXPORT_COLUMNS, f"Tilskudd {year}", plain_number_keys={"application_id"}))
    csv = store(ctx, "export_csv", f"tilskudd-{year}.csv", "text/csv; charset=utf-8",
                export_rows_csv(rows, EXPORT_COLUMNS))
    return {"xlsx_document_id": xlsx.id, "csv_document_id": csv.id, "projects": len(rows),
            "spent_total": sum(r["spent_total"] for r in rows), "granted_total": sum(r["granted"] for r in rows),
            "rows": rows, "date": local_date(clock.now()).isoformat(), "community": community}


def export_rows(session, year: int, community: str = "") -> list[dict[str, Any]]:
    """The rows of the year's export (:data:`EXPORT_COLUMNS`): what :func:`export_year` keeps, and what the
    reports page downloads at any time."""
    from engine.formats import format_kroner

    rows: list[dict[str, Any]] = []
    for r in status_reports(session, year, community):
        spent = "; ".join(f"{s.get('party')}: {format_kroner(int(s.get('amount') or 0))}" for s in r["spent"])
        rows.append({**r, "spent_by_party": spent})
    return rows


def document_file(session, document_id: int) -> tuple[str, str, bytes] | None:
    """A kept document as a mail attachment (``mail.send(documents=[id])``): filename, media type, bytes."""
    doc = session.get(Document, document_id)
    return (doc.filename, doc.media_type, doc.content) if doc is not None else None


def register(registry) -> None:
    from engine import mail

    registry.register("documents.render", render)
    registry.register("documents.export_year", export_year)
    mail.set_document_source(document_file)
