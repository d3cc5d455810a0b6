"""Connectors ``grants.*``: the records of calls, applications, reviews, decisions and reports.

The grant processes (``bpmn/grant/``) decide *when* something happens; these connectors keep the
records people query and enforce the rules that belong to the records rather than to one diagram:
intake is open only until a deadline's timer closed it (and a late submission is refused with a clear
reason), a recommendation must list every application of the intake and fit within the frame after the
sustainability cut, and waits until every application of the intake is checked and reviewed (so that SSU's
decision finds each one waiting for it), a review is recorded once per member. Each runs in the transaction
of the step that calls it (the step context ``ctx``, :class:`engine.connectors.StepContext`).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.records import BudgetLine, GrantApplication, GrantCall, GrantConflict, GrantReport, GrantReview
from engine import clock
from engine.calendar import deadline as legal_deadline
from engine.calendar import local_date
from engine.connectors import StepContext
from engine.errors import SamflytError
from engine.formats import format_kroner
from engine.models import HumanTask, Organisation, Role, User
from engine.serialization import dumps
from engine.texts import _, joined

#: The priority groups of the grant (domain.md), as codes used in forms and records.
PRIORITY_GROUPS = {
    "children_young": "Barn og unge",
    "chronic_multiple": "Personer med flere kroniske lidelser",
    "mental_substance": "Alvorlige psykiske lidelser og rusproblemer",
    "frail_elderly": "Skrøpelige eldre",
    "pregnancy_birth": "Gravide, fødende og barselomsorg",
}
REPORT_KINDS = ("status", "deviation", "final")
#: whose members may not review an application (besides those named in it or who declared a conflict)
CONFLICT_RULES = ("applicant", "parties")


class GrantError(SamflytError):
    """A grant record that cannot be written as asked."""

    code = "grant"


def _iso(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _call(session: Session, call_id: int) -> GrantCall:
    call = session.get(GrantCall, int(call_id))
    if call is None:
        raise GrantError(_("no call %(call)s", call=call_id))
    return call


def _application(session: Session, application_id: int) -> GrantApplication:
    row = session.get(GrantApplication, int(application_id))
    if row is None:
        raise GrantError(_("no application %(application)s", application=application_id))
    return row


def intake_closes_at(day: date) -> datetime:
    """The last moment of a call deadline: the end of that day in Norway, moved past weekends and holidays."""
    return clock.to_utc(legal_deadline(day), end_of_day=True)


# -- calls -----------------------------------------------------------------------------------------------
def community_choices(username: str = "", *, ctx: StepContext) -> dict:
    """The health communities a call can belong to, as form choices: the drafter's own (``username``, the
    AU member who opened the round), or for an admin or someone placed in none, every community an
    administrator has placed organisations in; ``own`` is preselected when the drafter has exactly one.
    Without any community the grant cannot run (its AU tasks are bound to the call's community), so that is
    an error saying what to do."""
    session = ctx.session
    names = sorted(set(session.scalars(select(Organisation.scope).where(Organisation.scope.is_not(None)))))
    if not names:
        raise GrantError(_("no health community has organisations yet: an administrator places them with "
                           "'samflyt users community NAME ORG...' or on the admin page"))
    user = session.scalar(select(User).where(User.username == username)) if username else None
    own = sorted(user.scope_names) if user is not None else []
    if own and not (user is not None and "admin" in user.role_names):
        names = own  # an AU member drafts calls for their own community, never into another's queue and money
    return {"options": [{"value": name, "label": name} for name in names],
            "own": own[0] if len(own) == 1 else ""}


def call_community(call_id: int | None = None, *, ctx: StepContext) -> dict:
    """The community of the call an application answers, known from its start: the case is that
    community's from its draft on (``""`` for a call that does not exist; submitting to it is refused); and
    for a call granting one year at a time, the first and last day the project period may hold."""
    call = ctx.session.get(GrantCall, int(call_id)) if call_id else None
    one_year = call is not None and not call.multi_year
    return {"community": call.community if call is not None else "",
            # one year at a time: the project period the application form holds the dates to
            "period_from": f"{call.year}-01-01" if one_year else None,
            "period_until": f"{call.year}-12-31" if one_year else None}


def open_call_choices(*, ctx: StepContext) -> dict:
    """The calls taking applications now, as the start form's choices (``samflyt.startOptions``): an applicant
    chooses a call by its title and community, and a call that is closed or does not exist is refused."""
    today = local_date(ctx.now())
    return {"open_calls": [{"value": c["call_id"], "label": f"{c['title']} ({c['community']})"}
                           for c in open_calls(ctx.session, today)]}


def create_call(title: str, year: int, frame: int, deadlines: list, criteria: list, community: str,
                priority_groups: list | None = None, sustainability_cut_percent: int = 0,
                reviewers_per_application: int = 3, description: str = "", conflict_rule: str = "applicant",
                multi_year: bool = True, *, ctx: StepContext) -> dict:
    """Publish a call: its criteria, deadlines (ISO dates) and frame in kroner; whose members may not review
    (``conflict_rule``, see :func:`review_plan`) and whether a project may span several years."""
    days = sorted({_iso(d) for d in deadlines or []} - {None})
    if not days:
        raise GrantError(_("a call needs at least one application deadline"))
    if int(frame) < 0:
        raise GrantError(_("the frame must be a non-negative number of kroner"))
    if not 0 <= int(sustainability_cut_percent) <= 100:
        raise GrantError(_("the sustainability cut is a percentage between 0 and 100"))
    if int(reviewers_per_application) < 1:
        raise GrantError(_("each application needs at least one reviewer"))
    unknown = set(priority_groups or []) - set(PRIORITY_GROUPS)
    if unknown:
        raise GrantError(_("unknown priority group(s): %(groups)s", groups=joined(sorted(unknown))))
    if conflict_rule not in CONFLICT_RULES:
        raise GrantError(_("unknown conflict of interest rule %(rule)r", rule=conflict_rule))
    session = ctx.session
    call = GrantCall(community=community, title=title, year=int(year), description=description or None,
                     criteria=dumps(list(criteria or [])), priority_groups=dumps(list(priority_groups or [])),
                     frame=int(frame), sustainability_cut_percent=int(sustainability_cut_percent),
                     reviewers_per_application=int(reviewers_per_application),
                     conflict_rule=conflict_rule, multi_year=bool(multi_year),
                     deadlines=dumps([d.isoformat() for d in days]), closed_deadlines="[]", status="published",
                     instance_id=ctx.instance_id, published_at=clock.now())
    session.add(call)
    session.flush()
    return {"call_id": call.id, "deadlines": [d.isoformat() for d in days],
            "intake_closes": [intake_closes_at(d).isoformat() for d in days]}


def close_intake(call_id: int, deadline: str, *, ctx: StepContext) -> dict:
    """Close intake for one deadline of a call (its timer fired); returns the applications it received."""
    session = ctx.session
    call = _call(session, call_id)
    day = _iso(deadline)
    closed = set(json.loads(call.closed_deadlines))
    closed.add(day.isoformat())
    call.closed_deadlines = dumps(sorted(closed))
    if closed >= set(json.loads(call.deadlines)):
        call.status = "closed"
    received = session.scalars(select(GrantApplication.id).where(
        GrantApplication.call_id == call.id, GrantApplication.deadline == day,
        GrantApplication.status.not_in(("withdrawn", "refused_late"))).order_by(GrantApplication.id)).all()
    return {"deadline": day.isoformat(), "applications": list(received), "call_closed": call.status == "closed"}


def open_deadline(call: GrantCall, now: datetime) -> date | None:
    """The deadline a submission at ``now`` belongs to: the first one not closed and not passed."""
    closed = set(json.loads(call.closed_deadlines))
    for text in json.loads(call.deadlines):
        day = date.fromisoformat(text)
        if text not in closed and now <= intake_closes_at(day):
            return day
    return None


# -- applications ----------------------------------------------------------------------------------------
def submit_application(call_id: int, title: str, applicant_organisation: str, partner_organisations: list,
                       budget: list, start_date: str, end_date: str, plan: dict | None = None,
                       contact_name: str = "", contact_email: str = "", application_id: int | None = None, *,
                       ctx: StepContext) -> dict:
    """Record a signed application as submitted to the call's open intake, or refuse it with a reason.

    A refusal is an answer, not a failure: ``{"accepted": false, "reason": ...}`` lets the process tell the
    applicant why, and the application is kept on record as ``refused_late`` so AU sees that it came.
    An application that comes back after being returned keeps the intake it was first submitted to, also
    after that intake closed (AU may still check it), but not once AU's recommendation for that intake has
    gone to SSU: the decision is made, and an application that entered then would wait for a decision
    that never comes. It then joins the call's next open intake, or is refused when there is none.
    """
    session = ctx.session
    call = _call(session, call_id)
    row = _application(session, application_id) if application_id else None
    day = row.deadline if row is not None and row.deadline else open_deadline(call, clock.now())
    reason = None
    if day is None:
        last = max(date.fromisoformat(d) for d in json.loads(call.deadlines))
        reason = (f"Søknadsfristen for «{call.title}» gikk ut {legal_deadline(last).strftime('%d.%m.%Y')}, "
                  "og mottaket er stengt. Søknaden kan ikke sendes inn.")
    elif day.isoformat() in json.loads(call.recommended_deadlines or "[]"):
        later = open_deadline(call, clock.now())
        if later is not None:
            day = later  # its own intake is settled: it joins the call's next open intake instead
        else:
            reason = (f"Søknadene til fristen {legal_deadline(day).strftime('%d.%m.%Y')} i «{call.title}» er "
                      "ferdig vurdert, og innstillingen er sendt til SSU. Søknaden kan ikke sendes inn på nytt "
                      "til denne fristen, og utlysningen har ingen senere frist som er åpen.")
    lines = _budget_lines(budget)
    start, end = _iso(start_date), _iso(end_date)
    if start and end and end < start:
        raise GrantError(_("the project cannot end before it starts"))
    if reason is None and not call.multi_year and (
            (start and start.year != call.year) or (end and end.year != call.year)
            or any(line["year"] != call.year for line in lines)):
        reason = (f"«{call.title}» gir tilskudd for ett år om gangen: prosjektperioden og budsjettet må ligge "
                  f"innenfor {call.year}. Søknaden kan ikke sendes inn slik.")
    partners = [p for p in dict.fromkeys(partner_organisations or []) if p and p != applicant_organisation]
    if row is None:
        row = GrantApplication(call_id=call.id, instance_id=ctx.instance_id)
        session.add(row)
    row.title, row.applicant_organisation = title, applicant_organisation
    row.partner_organisations = dumps(partners)
    row.plan = dumps(plan or {})
    row.contact_name, row.contact_email = contact_name or None, contact_email or None
    row.start_date, row.end_date = start, end
    row.amount_applied = sum(line["amount"] for line in lines)
    row.submitted_at = clock.now()
    if reason:
        row.status, row.decision_reason = "refused_late", reason
    else:
        row.deadline, row.status = day, "submitted"
    session.flush()
    for old in session.scalars(select(BudgetLine).where(BudgetLine.application_id == row.id)):
        session.delete(old)
    for line in lines:
        session.add(BudgetLine(application_id=row.id, **line))
    if reason:
        return {"accepted": False, "application_id": row.id, "reason": reason, "status": row.status,
                "community": call.community}
    return {"accepted": True, "application_id": row.id, "deadline": day.isoformat(), "reason": None,
            "status": row.status, "amount_applied": row.amount_applied, "community": call.community,
            "year": call.year, "criteria": json.loads(call.criteria),
            "reviewers_per_application": call.reviewers_per_application, "parties": [applicant_organisation, *partners]}


def _budget_lines(budget: list) -> list[dict[str, Any]]:
    lines = []
    for i, item in enumerate(budget or []):
        try:
            amount, year = int(item["amount"]), int(item["year"])
        except (KeyError, TypeError, ValueError):
            raise GrantError(_("budget line %(line)s needs a party, a year and a whole amount in kroner",
                                line=i + 1)) from None
        if amount < 0:
            raise GrantError(_("budget line %(line)s: the amount cannot be negative (%(amount)s kr)", line=i + 1,
                               amount=amount))
        if not item.get("party"):
            raise GrantError(_("budget line %(line)s needs the party that spends it", line=i + 1))
        lines.append({"party": item["party"], "year": year, "amount": amount, "purpose": item.get("purpose")})
    if not lines:
        raise GrantError(_("an application needs a budget with at least one line"))
    return lines


def return_application(application_id: int, comments: str = "", *, ctx: StepContext) -> dict:
    """AU found the application incomplete: it is back with the applicant, and does not hold up the
    recommendation for its intake until it is submitted again."""
    row = _application(ctx.session, application_id)
    row.status, row.decision_reason = "returned", comments or None
    return {"application_id": row.id, "status": row.status}


def register_application(application_id: int, *, ctx: StepContext) -> dict:
    """AU found the application complete: it is registered for assessment."""
    row = _application(ctx.session, application_id)
    row.status = "registered"
    return {"application_id": row.id, "status": row.status}


def publish(application_id: int, *, ctx: StepContext) -> dict:
    """Put the application on the public list of received applications (title, applicant, amount)."""
    row = _application(ctx.session, application_id)
    row.published, row.published_at = True, clock.now()
    return {"title": row.title, "applicant": row.applicant_organisation, "amount_applied": row.amount_applied}


def withdraw(application_id: int | None = None, reason: str = "", *, ctx: StepContext) -> dict:
    """The applicant withdrew the application; it stays on record as withdrawn."""
    if not application_id:
        return {"withdrawn": False}
    row = _application(ctx.session, application_id)
    row.status, row.decision_reason = "withdrawn", reason or None
    return {"withdrawn": True}


def public_list(session: Session, call_id: int | None = None) -> list[dict[str, Any]]:
    """The published applications: what anyone may see (title, applicant, amount applied for)."""
    query = select(GrantApplication).where(GrantApplication.published.is_(True)).order_by(GrantApplication.id)
    if call_id is not None:
        query = query.where(GrantApplication.call_id == call_id)
    return [{"application_id": a.id, "title": a.title, "applicant": a.applicant_organisation,
             "amount_applied": a.amount_applied, "status": a.status} for a in session.scalars(query)]


# -- reviews ---------------------------------------------------------------------------------------------
def review_plan(application_id: int, reviewers: int = 3, *, ctx: StepContext) -> dict:
    """How many reviews to ask for: up to ``reviewers``, limited to the committee members of the call's
    health community without a conflict of interest in this application.

    Conflict of interest is personal (forvaltningsloven § 6): a member may not review when they declared a
    conflict in the application, are named in it (its contact person), or belong to an organisation the
    call's rule excludes -- the main applicant's (``conflict_rule = "applicant"``), or with ``"parties"``
    every organisation in the application. A hospital member of an independent committee may so review a
    municipality's application the hospital co-signs. Each member found to have a conflict is recorded
    (:class:`GrantConflict`), and the review tasks exclude them by name and by organisation
    (``samflyt.excludeUsersField``, ``samflyt.excludeOrganisationsField``); members of another community
    could not claim the task either (``samflyt.communityField``), so they are not counted.
    """
    session = ctx.session
    row = _application(session, application_id)
    call = session.get(GrantCall, row.call_id)
    community = call.community
    parties = {row.applicant_organisation, *json.loads(row.partner_organisations)}
    excluded_organisations = parties if call.conflict_rule == "parties" else {row.applicant_organisation}
    members = session.scalars(select(User).join(User.roles).where(Role.name == "committee", User.active.is_(True))
                              ).unique().all()
    # a call from before communities were placed may name one no organisation is in: then every member counts
    placed = session.scalar(select(Organisation.id).where(Organisation.scope == community).limit(1)) is not None
    conflicts = {c.username: c for c in session.scalars(select(GrantConflict).where(
        GrantConflict.application_id == row.id))}
    for member in members:
        if member.username in conflicts:
            continue
        reason = conflict_found(member, row, excluded_organisations)
        if reason is not None:
            conflicts[member.username] = GrantConflict(application_id=row.id, username=member.username,
                                                       reason=reason[1], source=reason[0], declared_at=ctx.now())
            session.add(conflicts[member.username])
    eligible = sorted(u.username for u in members
                      if (not placed or community in u.scope_names) and u.username not in conflicts)
    count = min(int(reviewers), len(eligible))
    if count == 0:
        raise GrantError(_("no committee member without a conflict of interest can review application %(application)s",
                           application=row.id))
    return {"slots": list(range(1, count + 1)), "parties": sorted(excluded_organisations), "eligible": eligible,
            "excluded_users": sorted(conflicts)}


def conflict_found(member: User, application: GrantApplication, organisations: set[str]) -> tuple[str, str] | None:
    """Why ``member`` has a conflict of interest in ``application`` by the rules, as ``(source, reason)``:
    named in it (its contact, by e-mail or by name), or a member of one of ``organisations``; else ``None``."""
    email = (application.contact_email or "").strip().lower()
    name = (application.contact_name or "").strip().lower()
    if (email and (member.email or "").strip().lower() == email) or (
            name and (member.display_name or "").strip().lower() == name):
        return "named", "Kontaktperson i søknaden"
    clash = sorted(member.organisation_names & organisations)
    if clash:
        return "organisation", f"Medlem av {', '.join(clash)}"
    return None


def declare_conflict(session: Session, application_id: int, username: str, reason: str) -> GrantApplication:
    """Record that committee member ``username`` stands aside in an application, for ``reason``; the page
    then keeps them out of its open review tasks (:meth:`engine.runtime.Runtime.exclude_person`). Only a
    committee member of the call's community, once per application."""
    row = _application(session, application_id)
    user = session.scalar(select(User).where(User.username == username))
    community = session.get(GrantCall, row.call_id).community
    if user is None or "committee" not in user.role_names or (
            user.scope_names and community not in user.scope_names):
        raise GrantError(_("only a member of the evaluation committee of %(community)s can declare a conflict of "
                           "interest in this application", community=community))
    reason = " ".join((reason or "").split())
    if not reason:
        raise GrantError(_("say why you have a conflict of interest"))
    if session.scalar(select(GrantConflict.id).where(GrantConflict.application_id == row.id,
                                                     GrantConflict.username == username)) is None:
        session.add(GrantConflict(application_id=row.id, username=username, reason=reason[:2000],
                                  source="declared", declared_at=clock.now()))
    return row


def conflicts_of(session: Session, application_id: int) -> list[dict[str, Any]]:
    """Who stood aside in an application and why, for the case page of AU and the secretariat."""
    return [{"username": c.username, "reason": c.reason, "source": c.source, "declared_at": c.declared_at}
            for c in session.scalars(select(GrantConflict).where(
                GrantConflict.application_id == application_id).order_by(GrantConflict.id))]


def record_reviews(application_id: int, reviews: list, *, ctx: StepContext) -> dict:
    """Record the committee's reviews; a member who declared a conflict is recorded without scores."""
    session = ctx.session
    row = _application(session, application_id)
    averages = []
    for review in reviews or []:
        conflict = bool(review.get("conflict_of_interest"))
        scores = [] if conflict else list(review.get("scores") or [])
        for s in scores:
            if not 1 <= int(s.get("score", 0)) <= 5:
                raise GrantError(_("a score must be between 1 and 5, not %(score)r", score=s.get("score")))
        average = round(100 * sum(int(s["score"]) for s in scores) / len(scores)) if scores else None
        if average is not None:
            averages.append(average)
        reviewer = review.get("reviewer") or "unknown"
        if conflict and session.scalar(select(GrantConflict.id).where(
                GrantConflict.application_id == row.id, GrantConflict.username == reviewer)) is None:
            # declared in the review itself rather than on the case page: on record all the same
            session.add(GrantConflict(application_id=row.id, username=reviewer, reason=(
                review.get("comment") or "Meldt i vurderingen")[:2000], source="declared", declared_at=ctx.now()))
        session.add(GrantReview(application_id=row.id, reviewer=reviewer,
                                conflict_of_interest=conflict, scores=dumps(scores), average_score_x100=average,
                                comment=review.get("comment")))
    mean = round(sum(averages) / len(averages)) / 100 if averages else None
    return {"reviews": len(reviews or []), "average_score": mean}


def _average(session: Session, application_id: int) -> float | None:
    value = session.scalar(select(func.avg(GrantReview.average_score_x100)).where(
        GrantReview.application_id == application_id, GrantReview.average_score_x100.is_not(None)))
    return round(float(value) / 100, 2) if value is not None else None


def available_for_recommendation(session: Session, call: GrantCall, excluding_deadline: date | None) -> int:
    """The frame after the sustainability cut, less what earlier intakes of the call were granted."""
    after_cut = call.frame * (100 - call.sustainability_cut_percent) // 100
    used = session.scalar(select(func.coalesce(func.sum(GrantApplication.amount_granted), 0)).where(
        GrantApplication.call_id == call.id, GrantApplication.granted.is_(True),
        GrantApplication.deadline != excluding_deadline))
    return after_cut - int(used or 0)


def review_summary(call_id: int, deadline: str, *, ctx: StepContext) -> dict:
    """Applications registered for one intake with their average score, best first, and the money left."""
    session = ctx.session
    call = _call(session, call_id)
    day = _iso(deadline)
    rows = session.scalars(select(GrantApplication).where(
        GrantApplication.call_id == call.id, GrantApplication.deadline == day,
        GrantApplication.status == "registered").order_by(GrantApplication.id)).all()
    items = [{"application_id": a.id, "title": a.title, "applicant": a.applicant_organisation,
              "amount_applied": a.amount_applied, "average_score": _average(session, a.id)} for a in rows]
    items.sort(key=lambda i: (-(i["average_score"] or 0), i["application_id"]))
    return {"applications": items, "frame": call.frame, "cut_percent": call.sustainability_cut_percent,
            "available": available_for_recommendation(session, call, day), "not_ready": not_ready(session, call, day)}


def recommend(call_id: int, deadline: str, recommendation: list, *, ctx: StepContext) -> dict:
    """Check and record AU's recommendation (innstilling) for one intake.

    It must list every registered application of the intake once, with a rank and a proposed amount
    between 0 and the amount applied for, and the proposed total must fit in what is available after the
    sustainability cut. It is refused while an application of the intake still waits for AU's completeness
    check or for its reviews (:func:`not_ready`, named in the reason): SSU's decision must find every
    application waiting for it. A recommendation that does not pass is not recorded; the reason goes back
    to AU. One that passes settles the intake (no application enters it any more) and returns the ranked
    list the SSU case carries.
    """
    session = ctx.session
    call = _call(session, call_id)
    summary = review_summary(call_id, deadline, ctx=ctx)
    expected = {a["application_id"]: a for a in summary["applications"]}
    given = {int(r["application_id"]): r for r in recommendation or []}
    problems = []
    unfinished = not_ready(session, call, _iso(deadline))
    if unfinished:
        problems.append("Innstillingen kan ikke sendes før alle søknader til fristen er ferdig vurdert. Ikke ferdig: "
                        + "; ".join(f"søknad {u['application_id']} «{u['title']}» ({u['waiting_for']})"
                                    for u in unfinished) + ".")
    if set(given) != set(expected):
        missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
        if missing:
            problems.append(f"Innstillingen mangler søknad {', '.join(map(str, missing))}.")
        if extra:
            problems.append(f"Søknad {', '.join(map(str, extra))} hører ikke til denne søknadsrunden.")
    for app_id, r in given.items():
        amount = int(r.get("proposed_amount") or 0)
        if app_id in expected and not 0 <= amount <= expected[app_id]["amount_applied"]:
            problems.append(f"Foreslått beløp for søknad {app_id} må være mellom 0 og omsøkt beløp.")
    total = sum(int(r.get("proposed_amount") or 0) for r in given.values())
    if total > summary["available"]:
        problems.append(f"Foreslått sum {total} kr er mer enn rammen etter bærekraftskuttet "
                        f"({call.sustainability_cut_percent} %): {summary['available']} kr er tilgjengelig.")
    if problems:
        return {"valid": False, "error": " ".join(problems), "total": total, "available": summary["available"]}
    ranked = []
    for app_id, r in sorted(given.items(), key=lambda item: (int(item[1].get("rank") or 0), item[0])):
        row = _application(session, app_id)
        row.recommended_amount, row.recommended_rank = int(r.get("proposed_amount") or 0), int(r.get("rank") or 0)
        ranked.append({"rank": row.recommended_rank, "application_id": row.id, "title": row.title,
                       "applicant": row.applicant_organisation, "amount_applied": row.amount_applied,
                       "proposed_amount": row.recommended_amount,
                       "average_score": expected[app_id]["average_score"],
                       "justification": r.get("justification") or ""})
    ranking = " ".join(f"{r['rank']}. «{r['title']}» ({r['applicant']}): omsøkt {format_kroner(r['amount_applied'])}, "
                       f"foreslått {format_kroner(r['proposed_amount'])}." for r in ranked)
    settled = set(json.loads(call.recommended_deadlines or "[]")) | {_iso(deadline).isoformat()}
    call.recommended_deadlines = dumps(sorted(settled))
    return {"valid": True, "error": None, "total": total, "available": summary["available"], "ranked": ranked,
            "ranking": (f"Foreslått til sammen {format_kroner(total)} av {format_kroner(summary['available'])} "
                        f"tilgjengelig etter bærekraftskuttet ({call.sustainability_cut_percent} %). "
                        + (f"Prioritert liste: {ranking}" if ranked else "Ingen søknader til denne fristen.")),
            "community": call.community, "call_title": call.title, "year": call.year,
            "deadline": _iso(deadline).isoformat()}


#: the applicant's tasks in ``grant_application``: an application at one of them is back with the applicant
APPLICANT_STEPS = ("fill_application", "cosign_application", "submit_application")


def _with_applicant(session: Session, instance_id: int | None) -> bool:
    if instance_id is None:
        return False
    return bool(session.scalar(select(func.count()).select_from(HumanTask).where(
        HumanTask.instance_id == instance_id, HumanTask.status == "open", HumanTask.spec_name.in_(APPLICANT_STEPS))))


def not_ready(session: Session, call: GrantCall, day: date | None) -> list[dict[str, Any]]:
    """Applications of one intake that cannot be decided yet: submitted and not yet checked by AU, or
    registered with the committee's reviews still open. A decision made before they are ready would reach
    nobody (the application does not yet wait for it), so the recommendation waits for them."""
    rows = session.scalars(select(GrantApplication).where(
        GrantApplication.call_id == call.id, GrantApplication.deadline == day,
        GrantApplication.status.in_(("submitted", "registered"))).order_by(GrantApplication.id)).all()
    out = []
    for a in rows:
        if a.status == "submitted":
            if _with_applicant(session, a.instance_id):
                continue  # returned by an older version of the process, which did not mark it returned
            out.append({"application_id": a.id, "title": a.title, "waiting_for": "venter på kontroll i AU"})
        elif not session.scalar(select(func.count()).select_from(GrantReview).where(
                GrantReview.application_id == a.id)):
            out.append({"application_id": a.id, "title": a.title, "waiting_for": "vurderingene er ikke ferdige"})
    return out


def check_decisions(call_id: int, deadline: str, decisions: list, *, ctx: StepContext) -> dict:
    """Check SSU's decisions for one intake before they go out: one per registered application, amounts
    not negative, granted ones with an amount, and the total within the money available."""
    session = ctx.session
    call = _call(session, call_id)
    summary = review_summary(call_id, deadline, ctx=ctx)
    expected = {a["application_id"] for a in summary["applications"]}
    problems = []
    seen: dict[int, dict] = {}
    for d in decisions or []:
        app_id = int(d.get("application_id") or 0)
        if app_id in seen:
            problems.append(f"Søknad {app_id} har mer enn ett vedtak.")
        seen[app_id] = d
        if int(d.get("amount") or 0) < 0:
            problems.append(f"Beløpet for søknad {app_id} kan ikke være negativt.")
        if d.get("granted") and not int(d.get("amount") or 0):
            problems.append(f"Søknad {app_id} er innvilget uten beløp.")
    missing, extra = sorted(expected - set(seen)), sorted(set(seen) - expected)
    if missing:
        problems.append(f"Vedtaket mangler søknad {', '.join(map(str, missing))}.")
    withdrawn = [a for a in extra if (row := session.get(GrantApplication, a)) is not None
                 and row.call_id == call.id and row.status == "withdrawn"]
    if withdrawn:
        problems.append(f"Søknad {', '.join(map(str, withdrawn))} er trukket og skal ikke ha vedtak.")
    if set(extra) - set(withdrawn):
        problems.append(f"Søknad {', '.join(str(a) for a in extra if a not in withdrawn)} hører ikke til denne "
                        "søknadsfristen.")
    total = sum(int(d.get("amount") or 0) for d in seen.values() if d.get("granted"))
    available = available_for_recommendation(session, call, _iso(deadline))
    if total > available:
        problems.append(f"Innvilget sum {total} kr er mer enn de {available} kr som er tilgjengelig.")
    return {"valid": not problems, "error": " ".join(problems) or None, "granted_total": total}


# -- decisions and reports -------------------------------------------------------------------------------
def record_decision(application_id: int, granted: bool, amount: int = 0, case_id: str = "", reason: str = "", *,
                    ctx: StepContext) -> dict:
    """Record SSU's decision on an application; returns what the letter needs."""
    session = ctx.session
    row = _application(session, application_id)
    if int(amount or 0) < 0:
        raise GrantError(_("a granted amount cannot be negative"))
    row.granted, row.amount_granted = bool(granted), int(amount or 0) if granted else 0
    row.status = "granted" if granted else "rejected"
    row.decision_case, row.decision_reason, row.decided_at = case_id or None, reason or None, clock.now()
    call = session.get(GrantCall, row.call_id)
    budget = [{"party": b.party, "year": b.year, "amount": b.amount} for b in session.scalars(
        select(BudgetLine).where(BudgetLine.application_id == row.id).order_by(BudgetLine.year, BudgetLine.id))]
    return {"application": {"id": row.id, "title": row.title, "applicant_organisation": row.applicant_organisation,
                            "partner_organisations": json.loads(row.partner_organisations),
                            "contact_name": row.contact_name or "", "contact_email": row.contact_email or ""},
            "granted": row.granted, "amount": row.amount_granted, "budget": budget, "community": call.community,
            "year": call.year, "date": local_date(clock.now()).isoformat(), "case_id": case_id or "",
            "reason": reason or ""}


def record_report(application_id: int, kind: str, content: dict, period: int | None = None,
                  spent_total: int | None = None, submitted_by: str = "", *, ctx: StepContext) -> dict:
    """Record a status, deviation or final report as submitted."""
    if kind not in REPORT_KINDS:
        raise GrantError(_("a report is one of %(kinds)s, not %(kind)r", kinds=joined(REPORT_KINDS), kind=kind))
    if spent_total is not None and int(spent_total) < 0:
        raise GrantError(_("spent amounts cannot be negative"))
    session = ctx.session
    row = _application(session, application_id)
    report = GrantReport(application_id=row.id, kind=kind, period=period, content=dumps(content or {}),
                         spent_total=spent_total, submitted_by=submitted_by or None, submitted_at=clock.now())
    session.add(report)
    session.flush()
    return {"report_id": report.id}


def handle_report(report_id: int, approved: bool, comment: str = "", *, ctx: StepContext) -> dict:
    """AU approved a report or returned it to the recipient."""
    report = ctx.session.get(GrantReport, int(report_id))
    if report is None:
        raise GrantError(_("no report %(report)s", report=report_id))
    report.state, report.au_comment, report.handled_at = ("approved" if approved else "returned"), comment or None, \
        clock.now()
    return {"report_id": report.id, "state": report.state}


def complete_project(application_id: int, *, ctx: StepContext) -> dict:
    row = _application(ctx.session, application_id)
    row.status = "completed"
    return {"application_id": row.id, "status": row.status}


def status_reports(session: Session, year: int, community: str = "") -> list[dict[str, Any]]:
    """The approved (else latest) status report of each project for ``year``, with its economy; with
    ``community``, only that community's projects (each community reports its own money)."""
    query = select(GrantReport).where(GrantReport.kind == "status", GrantReport.period == year)
    if community:
        query = query.join(GrantApplication, GrantApplication.id == GrantReport.application_id).join(
            GrantCall, GrantCall.id == GrantApplication.call_id).where(GrantCall.community == community)
    reports = session.scalars(query.order_by(GrantReport.application_id, GrantReport.id)).all()
    latest: dict[int, GrantReport] = {}
    for r in reports:
        if r.application_id not in latest or latest[r.application_id].state != "approved":
            latest[r.application_id] = r
    out = []
    for app_id, r in sorted(latest.items()):
        a = session.get(GrantApplication, app_id)
        content = json.loads(r.content)
        out.append({"application_id": app_id, "title": a.title, "applicant_organisation": a.applicant_organisation,
                    "granted": a.amount_granted or 0, "spent": content.get("spent", []),
                    "spent_total": r.spent_total or 0, "implementation": content.get("implementation", ""),
                    "goal_attainment": content.get("goal_attainment", ""),
                    "benefit_realisation": content.get("benefit_realisation", ""), "status": r.state})
    return out


def register(registry) -> None:
    for name, func_ in {"grants.create_call": create_call, "grants.close_intake": close_intake,
                        "grants.submit_application": submit_application,
                        "grants.register_application": register_application, "grants.publish": publish,
                        "grants.return_application": return_application,
                        "grants.withdraw": withdraw, "grants.review_plan": review_plan,
                        "grants.community_choices": community_choices,
                        "grants.open_call_choices": open_call_choices, "grants.call_community": call_community,
                        "grants.record_reviews": record_reviews, "grants.review_summary": review_summary,
                        "grants.recommend": recommend, "grants.check_decisions": check_decisions,
                        "grants.record_decision": record_decision,
                        "grants.record_report": record_report, "grants.handle_report": handle_report,
                        "grants.complete_project": complete_project}.items():
        registry.register(name, func_)


# -- read models for the overview pages (no connector: nothing here writes) ------------------------------
def calls_overview(session: Session, communities: set[str] | None = None) -> list[dict[str, Any]]:
    """Every call (of ``communities``, when given) with its deadlines and how many applications it has per
    status."""
    out = []
    query = select(GrantCall).order_by(GrantCall.year.desc(), GrantCall.id.desc())
    if communities is not None:
        query = query.where(GrantCall.community.in_(sorted(communities)))
    for call in session.scalars(query):
        counts = dict(session.execute(select(GrantApplication.status, func.count()).where(
            GrantApplication.call_id == call.id).group_by(GrantApplication.status)).all())
        out.append({"call_id": call.id, "title": call.title, "year": call.year, "community": call.community,
                    "frame": call.frame, "deadlines": json.loads(call.deadlines), "status": call.status,
                    "applications": sum(counts.values()), "by_status": counts, "instance_id": call.instance_id})
    return out


def open_calls(session: Session, today: date | None = None) -> list[dict[str, Any]]:
    """The calls taking applications now, soonest deadline first: what an applicant reads before applying
    (description, criteria, priority groups, frame, the deadlines still ahead). A call whose every deadline
    has closed, or passed, is not listed; the public list of its received applications stays readable."""
    today = today or local_date(clock.now())
    out = []
    for call in session.scalars(select(GrantCall).where(GrantCall.status == "published")):
        announcement = public_call(session, call.id, today)
        ahead = [d for d in announcement["deadlines"] if d["open"]]
        if ahead:
            out.append({**announcement, "open_deadlines": ahead})
    return sorted(out, key=lambda c: (c["open_deadlines"][0]["holds_until"], c["call_id"]))


def public_call(session: Session, call_id: int, today: date | None = None) -> dict[str, Any]:
    """What anyone may read about a call: the announcement, not the assessment. Each deadline says the day
    the intake really holds to -- one on a holiday or weekend holds until the next working day (Public
    Administration Act § 30) -- and whether it is still open (not closed by its timer, and not passed)."""
    today = today or local_date(clock.now())
    call = _call(session, call_id)
    closed = set(json.loads(call.closed_deadlines))
    deadlines = []
    for announced in sorted(json.loads(call.deadlines)):
        holds_until = legal_deadline(date.fromisoformat(announced))
        deadlines.append({"announced": announced, "holds_until": holds_until.isoformat(),
                          "open": announced not in closed and holds_until >= today})
    return {"call_id": call.id, "title": call.title, "year": call.year, "community": call.community,
            "description": call.description or "", "criteria": json.loads(call.criteria),
            "priority_groups": json.loads(call.priority_groups), "frame": call.frame, "deadlines": deadlines}


def round_overview(session: Session, call_id: int) -> dict[str, Any]:
    """A call's applications with status, score, amounts applied for, recommended and granted."""
    call = _call(session, call_id)
    rows = session.scalars(select(GrantApplication).where(GrantApplication.call_id == call.id)
                           .order_by(GrantApplication.deadline, GrantApplication.recommended_rank,
                                     GrantApplication.id)).all()
    applications = [{"application_id": a.id, "instance_id": a.instance_id, "title": a.title,
                     "applicant": a.applicant_organisation, "deadline": a.deadline, "status": a.status,
                     "average_score": _average(session, a.id), "amount_applied": a.amount_applied,
                     "recommended": a.recommended_amount, "rank": a.recommended_rank,
                     "granted": a.amount_granted if a.granted else None} for a in rows]
    return {"call": {"call_id": call.id, "title": call.title, "year": call.year, "community": call.community,
                     "frame": call.frame, "cut_percent": call.sustainability_cut_percent,
                     "after_cut": call.frame * (100 - call.sustainability_cut_percent) // 100,
                     "deadlines": json.loads(call.deadlines), "closed": json.loads(call.closed_deadlines),
                     "instance_id": call.instance_id},
            "applications": applications,
            "totals": {"applied": sum(a["amount_applied"] for a in applications),
                       "recommended": sum(a["recommended"] or 0 for a in applications),
                       "granted": sum(a["granted"] or 0 for a in applications)}}


def reports_overview(session: Session, communities: set[str] | None = None) -> list[dict[str, Any]]:
    """Reports received (for calls of ``communities``, when given), newest first, with their project."""
    query = (select(GrantReport, GrantApplication.title, GrantApplication.applicant_organisation)
             .join(GrantApplication, GrantApplication.id == GrantReport.application_id)
             .order_by(GrantReport.submitted_at.desc()))
    if communities is not None:
        query = query.join(GrantCall, GrantCall.id == GrantApplication.call_id).where(
            GrantCall.community.in_(sorted(communities)))
    rows = session.execute(query).all()
    return [{"report_id": r.id, "kind": r.kind, "period": r.period, "state": r.state, "title": title,
             "applicant": org, "spent_total": r.spent_total, "submitted_at": r.submitted_at,
             "application_id": r.application_id} for r, title, org in rows]
