"""Overviews for AU, SSU and the secretariat: calls and their applications, the funds ledger per year,
and reports due, overdue and received. Read-only: the numbers come from the domain records and the
human-task index (:mod:`community.connectors.grants`, :mod:`community.connectors.ledger`)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from community.connectors import grants as grant_records
from community.connectors import ledger
from community.connectors.documents import EXPORT_COLUMNS, export_rows
from community.records import GrantApplication, GrantCall
from engine import clock
from engine.calendar import local_date
from engine.errors import SamflytError
from engine.models import HumanTask, ProcessInstance
from web.auth import runtime

from .codes import groups

bp = Blueprint("grants", __name__, url_prefix="/grants", template_folder="templates")
READERS = {"au", "ssu", "secretariat", "admin"}
REPORT_TASKS = ("status_report", "final_report")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.before_request
@login_required
def readers_only():
    if not current_user.roles & READERS:
        abort(403)


def _communities() -> set[str] | None:
    """The communities whose rounds and reports the reader oversees: their own (AU, SSU and the
    secretariat serve one health community; scores and recommendations are its internal work), all for
    admins (``None``). The ledger, public money, is readable for any community."""
    return None if current_user.is_admin else set(current_user.scopes)


@bp.get("")
def calls():
    with runtime().Session() as s:
        return render_template("grants/calls.html", calls=grant_records.calls_overview(s, _communities()))


@bp.get("/calls/<int:call_id>")
def call(call_id: int):
    with runtime().Session() as s:
        try:
            overview = grant_records.round_overview(s, call_id)
        except SamflytError:
            abort(404)
    communities = _communities()
    if communities is not None and overview["call"]["community"] not in communities:
        abort(403)
    return render_template("grants/call.html", **overview)


@bp.get("/ledger")
def ledger_page():
    """One health community's money in one year: the reader's own community unless ``?community=`` names
    another. The grant is public money, so AU, SSU and the secretariat may read any community's ledger;
    there is no sum over communities, since no one can spend it (``?community=`` empty: entries kept
    without a community)."""
    with runtime().Session() as s:
        choices = ledger.communities(s)
        community = request.args.get("community")
        if community is None:
            own = [c for c in choices if c in current_user.scopes]
            community = own[0] if own else (choices[0] if choices else "")
        years = ledger.years(s, community) or [clock.now().year]
        year = request.args.get("year", type=int) or years[-1]
        if year not in years:
            abort(404)
        return render_template("grants/ledger.html", years=years, year=year, community=community,
                               communities=choices, balances=ledger.balances(s, year, community),
                               entries=ledger.entries(s, year, community))


def _spreadsheet(rows: list[dict], columns: list[tuple[str, str]], title: str, name: str, fmt: str,
                 plain_number_keys: set[str] | frozenset[str] = frozenset()) -> Response:
    """``rows`` as an Excel workbook or a CSV file (:mod:`community.documents`), downloaded as ``name``."""
    from community.documents import export_rows_csv, export_rows_xlsx  # WeasyPrint is slow to import

    if fmt == "xlsx":
        body, media = export_rows_xlsx(rows, columns, title, plain_number_keys=plain_number_keys), XLSX
    else:
        body, media = export_rows_csv(rows, columns), "text/csv; charset=utf-8"
    return Response(body, mimetype=media, headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


@bp.get("/ledger.<any(xlsx, csv):fmt>")
def ledger_export(fmt: str):
    """The ledger page's year and community as a spreadsheet (the same entries the page lists)."""
    community = request.args.get("community", "")
    year = request.args.get("year", type=int) or clock.now().year
    with runtime().Session() as s:
        rows = [{"at": local_date(e.at) if e.at else None, "kind": e.kind, "amount": e.amount,
                 "application_id": e.application_id or "", "text": e.purpose or e.reference or ""}
                for e in ledger.entries(s, year, community)]
    words = groups()["ledger"]
    rows = [r | {"kind": words.get(r["kind"], r["kind"])} for r in rows]
    columns = [("at", _("Date")), ("kind", _("Kind")), ("amount", _("Amount")),
               ("application_id", _("Application")), ("text", _("Purpose or reference"))]
    return _spreadsheet(rows, columns, _("Funds ledger %(year)s", year=year), f"ledger-{year}", fmt,
                        {"application_id"})


@bp.get("/reports/export.<any(xlsx, csv):fmt>")
def reports_export(fmt: str):
    """The status reports of a year (``?year=``, this year when not given) as Helse Sør-Øst asks for them,
    at any time: the same rows the yearly export keeps."""
    year = request.args.get("year", type=int) or clock.now().year
    communities = _communities()
    community = request.args.get("community") or ""
    if communities is not None and community not in communities:
        community = sorted(communities)[0] if communities else ""
        if not community:
            abort(403)
    with runtime().Session() as s:
        rows = export_rows(s, year, community)
    return _spreadsheet(rows, EXPORT_COLUMNS, f"Tilskudd {year}", f"tilskudd-{year}", fmt, {"application_id"})


@bp.get("/reports")
def reports():
    now = clock.now()
    with runtime().Session() as s:
        communities = _communities()
        query = select(HumanTask, ProcessInstance.title).join(
            ProcessInstance, ProcessInstance.id == HumanTask.instance_id).where(
            HumanTask.status == "open", HumanTask.spec_name.in_(REPORT_TASKS)).order_by(HumanTask.due_at)
        if communities is not None:  # a report task belongs to its application's call's community
            query = query.join(GrantApplication, GrantApplication.instance_id == HumanTask.instance_id).join(
                GrantCall, GrantCall.id == GrantApplication.call_id).where(GrantCall.community.in_(sorted(communities)))
        due = s.execute(query).all()
        items = [{"task": t, "title": title, "overdue": bool(t.due_at and t.due_at < now)} for t, title in due]
        received = grant_records.reports_overview(s, communities)
    return render_template("grants/reports.html", due=[i for i in items if not i["overdue"]],
                           overdue=[i for i in items if i["overdue"]], received=received, year=now.year)
