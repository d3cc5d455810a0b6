"""Connectors ``ledger.*``: the funds ledger of the grant, as entries only.

Money comes from the regional health authority per year (``allocation``); some is set aside (the
partnership conference, up to 100 000 kr a year); awards reserve it; reports turn reservations into
payouts and release what was not spent; at the year's close the unused set-asides are released and
the free balance carries over to the next year. Every figure people see is derived from the entries by
:func:`balances`, so nothing is stored twice and nothing can drift.

Each health community has its own money: an entry belongs to one community (``community``), and every
balance, reservation check and carry-over is per community and year, so two communities in one database
never pay from each other's allocation. Entries for an application always take the community of its
call. A connector called without ``community`` works on the entries kept without one (a database used by
a single community before communities were recorded), never on all of them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.records import LedgerEntry
from engine.connectors import StepContext
from engine.errors import SamflytError
from engine.texts import _

KINDS = ("allocation", "carry_over_in", "carry_over_out", "set_aside", "set_aside_release", "set_aside_spent",
         "reservation", "release", "payout")


class LedgerError(SamflytError):
    """A movement the ledger cannot take: a negative amount, more than is free, a year closed twice."""

    code = "ledger"


def _community_filter(query, community: str | None):
    """``community`` a name: that community's entries; ``""``: the entries kept without a community;
    ``None``: every community together (overview pages only, never a rule about money)."""
    if community is None:
        return query
    return query.where(LedgerEntry.community.is_(None) if community == "" else LedgerEntry.community == community)


def _sums(session: Session, year: int, application_id: int | None = None,
          community: str | None = None) -> dict[str, int]:
    query = select(LedgerEntry.kind, func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.year == year).group_by(LedgerEntry.kind)
    if application_id is not None:
        query = query.where(LedgerEntry.application_id == application_id)
    query = _community_filter(query, community)
    sums = {kind: 0 for kind in KINDS}
    sums.update({kind: int(total) for kind, total in session.execute(query)})
    return sums


def balances(session: Session, year: int, community: str | None = None) -> dict[str, Any]:
    """The year's figures for one community (see :func:`_community_filter`), all derived from its entries.

    ``available``: allocated plus carried in; ``set_aside``: still set aside (spent or not);
    ``reserved``: awarded and not yet paid; ``free``: not yet allocated to anything.
    """
    s = _sums(session, year, community=community)
    set_aside = s["set_aside"] - s["set_aside_release"]
    committed = s["reservation"] - s["release"]
    available = s["allocation"] + s["carry_over_in"]
    return {
        "year": year,
        "community": community,
        "allocated": s["allocation"],
        "carried_in": s["carry_over_in"],
        "available": available,
        "set_aside": set_aside,
        "set_aside_spent": s["set_aside_spent"],
        "reserved": committed - s["payout"],
        "paid": s["payout"],
        "released": s["release"],
        "carried_out": s["carry_over_out"],
        "free": available - set_aside - committed - s["carry_over_out"],
    }


def years(session: Session, community: str | None = None) -> list[int]:
    return list(session.scalars(_community_filter(select(LedgerEntry.year).distinct(), community)
                                .order_by(LedgerEntry.year)))


def communities(session: Session) -> list[str]:
    """The communities with entries in the ledger (``""`` for entries kept without one)."""
    return sorted({c or "" for c in session.scalars(select(LedgerEntry.community).distinct())})


def application_community(session: Session, application_id: int) -> str:
    """The community an application's money belongs to: that of its call."""
    from community.records import GrantApplication, GrantCall

    community = session.scalar(select(GrantCall.community).join(
        GrantApplication, GrantApplication.call_id == GrantCall.id).where(GrantApplication.id == int(application_id)))
    if community is None:
        raise LedgerError(_("no application %(application)s", application=application_id))
    return community


def _community_for(session: Session, community: str, application_id: int | None) -> str:
    """The community of a movement: the application's, which a ``community`` given as well must match."""
    if application_id is None:
        return community or ""
    own = application_community(session, application_id)
    if community and community != own:
        raise LedgerError(_("application %(application)s belongs to %(own)s, not %(community)s",
                            application=application_id, own=own, community=community))
    return own


def open_reservation(session: Session, application_id: int, year: int) -> int:
    s = _sums(session, year, application_id)
    return s["reservation"] - s["release"] - s["payout"]


def reservations_by_application(session: Session) -> dict[int, dict[int, dict[str, int]]]:
    """application id -> year -> reserved / paid / released (for the round and ledger pages)."""
    out: dict[int, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    rows = session.execute(select(LedgerEntry.application_id, LedgerEntry.year, LedgerEntry.kind,
                                  func.sum(LedgerEntry.amount)).where(LedgerEntry.application_id.is_not(None))
                           .group_by(LedgerEntry.application_id, LedgerEntry.year, LedgerEntry.kind))
    for application_id, year, kind, total in rows:
        out[application_id][year][kind] = int(total)
    return out


def add_entry(ctx: StepContext, year: int, kind: str, amount: int, **fields: Any) -> LedgerEntry:
    """Write one entry in the step's transaction, marked with the step's instance."""
    if kind not in KINDS:
        raise LedgerError(_("unknown ledger entry kind '%(kind)s'", kind=kind))
    if amount is None or int(amount) < 0:
        raise LedgerError(_("a ledger amount must be a whole, non-negative number of kroner, not %(amount)r",
                            amount=amount))
    community = fields.pop("community", None) or None
    entry = LedgerEntry(year=int(year), kind=kind, amount=int(amount), community=community,
                        instance_id=ctx.instance_id, **fields)
    ctx.session.add(entry)
    ctx.session.flush()
    return entry


def _require_free(session: Session, year: int, amount: int, what: str, community: str) -> None:
    free = balances(session, year, community)["free"]
    if amount > free:
        where = f" ({community})" if community else ""
        raise LedgerError(_("not enough free grant money in %(year)s%(where)s for %(what)s: %(amount)s kr asked, "
                            "%(free)s kr free", year=year, where=where, what=what, amount=amount, free=free))


# -- connectors ------------------------------------------------------------------------------------------
def allocate(year: int, amount: int, reference: str = "", community: str = "", *, ctx: StepContext) -> dict:
    """Record money allocated to ``community`` for ``year`` (e.g. from the allocation letter of Helse Sør-Øst)."""
    session = ctx.session
    entry = add_entry(ctx, year, "allocation", amount, reference=reference or None, community=community)
    return {"entry_id": entry.id, **balances(session, year, community or "")}


def set_aside(year: int, amount: int, purpose: str, community: str = "", *, ctx: StepContext) -> dict:
    """Set money aside for a purpose (e.g. up to 100 000 kr for the partnership conference)."""
    session = ctx.session
    _require_free(session, year, amount, purpose, community or "")
    entry = add_entry(ctx, year, "set_aside", amount, purpose=purpose, community=community)
    return {"entry_id": entry.id, **balances(session, year, community or "")}


#: what the yearly process sets aside each year, and how much at most (domain.md: up to 100 000 kr a year)
CONFERENCE = "Partnerskapskonferansen"
CONFERENCE_AMOUNT = 100_000


def conference_set_aside(year: int, community: str = "", amount: int = CONFERENCE_AMOUNT, *,
                         ctx: StepContext) -> dict:
    """Set aside up to ``amount`` of ``year``'s free money for the partnership conference, once a year: the
    yearly process does it when the reporting year starts and again for the next year when it closes, so it
    is never a job someone must remember. A year that already has it (set aside by hand before, or by the
    other call) keeps what it has; a year with less free money sets aside what there is, and one with none
    sets aside nothing (the next call, after the allocation, does it)."""
    session = ctx.session
    query = _community_filter(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.year == year, LedgerEntry.kind == "set_aside",
        LedgerEntry.purpose.like(f"{CONFERENCE}%")), community or "")
    if session.scalar(query):
        return {**balances(session, year, community or ""), "conference": 0, "already": True}
    portion = max(0, min(int(amount), balances(session, year, community or "")["free"]))
    if portion:
        add_entry(ctx, year, "set_aside", portion, purpose=f"{CONFERENCE} {year}", community=community)
    return {**balances(session, year, community or ""), "conference": portion, "already": False}


def spend_set_aside(year: int, amount: int, purpose: str, community: str = "", *, ctx: StepContext) -> dict:
    """Record spending from a set-aside (it stays set aside; what is left is released at year end)."""
    session = ctx.session
    s = _sums(session, year, community=community or "")
    left = s["set_aside"] - s["set_aside_release"] - s["set_aside_spent"]
    if amount > left:
        raise LedgerError(_("only %(left)s kr is set aside and unspent in %(year)s, not %(amount)s kr", left=left,
                            year=year, amount=amount))
    entry = add_entry(ctx, year, "set_aside_spent", amount, purpose=purpose, community=community)
    return {"entry_id": entry.id, **balances(session, year, community or "")}


def reserve(year: int, amount: int, application_id: int | None = None, purpose: str = "",
            reference: str = "", community: str = "", *, ctx: StepContext) -> dict:
    """Reserve awarded money in a budget year of the community; refuses more than it has free.

    Usually for an application (its call's community); without one (``purpose`` instead) for measures SSU
    decided outside an application round, such as the coordinator positions in the Vestfold papers.
    """
    if application_id is None and not purpose:
        raise LedgerError(_("a reservation needs an application or a purpose"))
    session = ctx.session
    community = _community_for(session, community, application_id)
    _require_free(session, year, amount, f"application {application_id}" if application_id else purpose, community)
    entry = add_entry(ctx, year, "reservation", amount, application_id=application_id, purpose=purpose or None,
                      reference=reference or None, community=community)
    reserved = open_reservation(session, application_id, year) if application_id else amount
    return {"entry_id": entry.id, "reserved": reserved, "community": community}


def pay(application_id: int, year: int, amount: int, reference: str = "", community: str = "", *,
        ctx: StepContext) -> dict:
    """Pay out from an application's reservation (what its report shows was spent)."""
    session = ctx.session
    community = _community_for(session, community, application_id)
    left = open_reservation(session, application_id, year)
    if amount > left:
        raise LedgerError(_("application %(application)s has %(left)s kr reserved in %(year)s, cannot pay "
                              "%(amount)s kr", application=application_id, left=left, year=year, amount=amount))
    add_entry(ctx, year, "payout", amount, application_id=application_id, reference=reference or None,
              community=community)
    return {"paid": amount, "reserved": open_reservation(session, application_id, year)}


def release(application_id: int, year: int, amount: int | None = None, reference: str = "",
            community: str = "", *, ctx: StepContext) -> dict:
    """Release an application's unspent reservation (all of it when ``amount`` is not given)."""
    session = ctx.session
    community = _community_for(session, community, application_id)
    left = open_reservation(session, application_id, year)
    amount = left if amount is None else amount
    if amount > left:
        raise LedgerError(_("application %(application)s has %(left)s kr reserved in %(year)s, cannot release "
                            "%(amount)s", application=application_id, left=left, year=year, amount=amount))
    if amount:
        add_entry(ctx, year, "release", amount, application_id=application_id, reference=reference or None,
                  community=community)
    return {"released": amount, "free": balances(session, year, community)["free"]}


def settle(application_id: int, year: int, spent: int, release_rest: bool = False, reference: str = "",
           community: str = "", *, ctx: StepContext) -> dict:
    """Pay what a project's approved report shows was spent in a funded year (up to its reservation).

    With ``release_rest`` (the year is over for the project: next year has its own decision), what was
    not spent is released: it becomes free money of that year and carries over at the year's close.
    """
    session = ctx.session
    community = _community_for(session, community, application_id)
    if int(spent) < 0:
        raise LedgerError(_("spent amounts cannot be negative"))
    left = open_reservation(session, application_id, year)
    paid = min(int(spent), left)
    if paid:
        add_entry(ctx, year, "payout", paid, application_id=application_id, reference=reference or None,
                  community=community)
    released = left - paid if release_rest else 0
    if released:
        add_entry(ctx, year, "release", released, application_id=application_id, reference=reference or None,
                  community=community)
    return {"year": year, "paid": paid, "released": released, "overspent": int(spent) - paid}


def close_application(application_id: int, spent: int = 0, reference: str = "", community: str = "", *,
                      ctx: StepContext) -> dict:
    """At the final report: pay what was spent since the last settlement, oldest reservation first, and
    release every reservation still open."""
    session = ctx.session
    community = _community_for(session, community, application_id)
    if int(spent) < 0:
        raise LedgerError(_("spent amounts cannot be negative"))
    years_ = sorted(set(session.scalars(select(LedgerEntry.year).where(LedgerEntry.application_id == application_id))))
    to_pay, paid, released = int(spent), 0, 0
    for year in years_:
        left = open_reservation(session, application_id, year)
        pay_now = min(to_pay, left)
        if pay_now:
            add_entry(ctx, year, "payout", pay_now, application_id=application_id, reference=reference or None,
                      community=community)
        if left - pay_now:
            add_entry(ctx, year, "release", left - pay_now, application_id=application_id,
                      reference=reference or None, community=community)
        to_pay, paid, released = to_pay - pay_now, paid + pay_now, released + left - pay_now
    return {"paid": paid, "released": released, "overspent": to_pay}


def carry_over(year: int, community: str = "", *, ctx: StepContext) -> dict:
    """Close ``year`` for ``community``: release its unused set-asides and carry its free balance over to
    ``year + 1``. Another community's year is closed on its own."""
    session = ctx.session
    community = community or ""
    closed = _community_filter(select(func.count()).where(LedgerEntry.year == year,
                                                          LedgerEntry.kind == "carry_over_out"), community)
    if session.scalar(closed):
        raise LedgerError(_("%(year)s is already closed for %(community)s", year=year, community=community)
                          if community else _("%(year)s is already closed", year=year))
    s = _sums(session, year, community=community)
    unused = s["set_aside"] - s["set_aside_release"] - s["set_aside_spent"]
    if unused:
        add_entry(ctx, year, "set_aside_release", unused, purpose="unused set-aside at year end",
                  community=community)
    free = balances(session, year, community)["free"]
    add_entry(ctx, year, "carry_over_out", free, reference=f"to {year + 1}", community=community)
    add_entry(ctx, year + 1, "carry_over_in", free, reference=f"from {year}", community=community)
    return {"year": year, "community": community, "carried_over": free, "released_set_aside": unused}


def ledger_balances(year: int, community: str = "", *, ctx: StepContext) -> dict:
    """The year's balances of ``community`` (see :func:`balances`)."""
    return balances(ctx.session, year, community or "")


def register(registry) -> None:
    for name, func_ in {"ledger.allocate": allocate, "ledger.set_aside": set_aside,
                        "ledger.conference_set_aside": conference_set_aside,
                        "ledger.spend_set_aside": spend_set_aside, "ledger.reserve": reserve, "ledger.pay": pay,
                        "ledger.release": release, "ledger.carry_over": carry_over, "ledger.settle": settle,
                        "ledger.close_application": close_application,
                        "ledger.balances": ledger_balances}.items():
        registry.register(name, func_)


def entries(session: Session, year: int, community: str | None = None) -> list[LedgerEntry]:
    """The year's ledger entries in the order they were made (for the ledger page)."""
    return list(session.scalars(_community_filter(select(LedgerEntry).where(LedgerEntry.year == year), community)
                                .order_by(LedgerEntry.id)))
