"""Connectors ``ledger.*``: the funds ledger of the grant, as entries only.

Money comes from the regional health authority per year (``allocation``); some is set aside (the
partnership conference, up to 100 000 kr a year); awards reserve it; reports turn reservations into
payouts and release what was not spent; at the year's close the unused set-asides are released and
the free balance carries over to the next year. Every figure people see is derived from the entries by
:func:`balances`, so nothing is stored twice and nothing can drift.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import SamflytError
from ..records import LedgerEntry

KINDS = ("allocation", "carry_over_in", "carry_over_out", "set_aside", "set_aside_release", "set_aside_spent",
         "reservation", "release", "payout")


class LedgerError(SamflytError):
    """A movement the ledger cannot take: a negative amount, more than is free, a year closed twice."""


def _session() -> Session:
    from ..unit_of_work import current_unit

    return current_unit().session


def _instance_id() -> int | None:
    from ..unit_of_work import current_instance_id

    return current_instance_id()


def _sums(session: Session, year: int, application_id: int | None = None) -> dict[str, int]:
    query = select(LedgerEntry.kind, func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.year == year).group_by(LedgerEntry.kind)
    if application_id is not None:
        query = query.where(LedgerEntry.application_id == application_id)
    sums = {kind: 0 for kind in KINDS}
    sums.update({kind: int(total) for kind, total in session.execute(query)})
    return sums


def balances(session: Session, year: int) -> dict[str, int]:
    """The year's figures, all derived from its entries.

    ``available``: allocated plus carried in; ``set_aside``: still set aside (spent or not);
    ``reserved``: awarded and not yet paid; ``free``: not yet allocated to anything.
    """
    s = _sums(session, year)
    set_aside = s["set_aside"] - s["set_aside_release"]
    committed = s["reservation"] - s["release"]
    available = s["allocation"] + s["carry_over_in"]
    return {
        "year": year,
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


def years(session: Session) -> list[int]:
    return list(session.scalars(select(LedgerEntry.year).distinct().order_by(LedgerEntry.year)))


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


def add_entry(session: Session, year: int, kind: str, amount: int, **fields: Any) -> LedgerEntry:
    if kind not in KINDS:
        raise LedgerError(f"unknown ledger entry kind '{kind}'")
    if amount is None or int(amount) < 0:
        raise LedgerError(f"a ledger amount must be a whole, non-negative number of kroner, not {amount!r}")
    entry = LedgerEntry(year=int(year), kind=kind, amount=int(amount), instance_id=_instance_id(), **fields)
    session.add(entry)
    session.flush()
    return entry


def _require_free(session: Session, year: int, amount: int, what: str) -> None:
    free = balances(session, year)["free"]
    if amount > free:
        raise LedgerError(f"not enough free grant money in {year} for {what}: {amount} kr asked, {free} kr free")


# -- connectors ------------------------------------------------------------------------------------------
def allocate(year: int, amount: int, reference: str = "") -> dict:
    """Record money allocated for ``year`` (e.g. from the allocation letter of Helse Sør-Øst)."""
    entry = add_entry(_session(), year, "allocation", amount, reference=reference or None)
    return {"entry_id": entry.id, **balances(_session(), year)}


def set_aside(year: int, amount: int, purpose: str) -> dict:
    """Set money aside for a purpose (e.g. up to 100 000 kr for the partnership conference)."""
    session = _session()
    _require_free(session, year, amount, purpose)
    entry = add_entry(session, year, "set_aside", amount, purpose=purpose)
    return {"entry_id": entry.id, **balances(session, year)}


def spend_set_aside(year: int, amount: int, purpose: str) -> dict:
    """Record spending from a set-aside (it stays set aside; what is left is released at year end)."""
    session = _session()
    s = _sums(session, year)
    left = s["set_aside"] - s["set_aside_release"] - s["set_aside_spent"]
    if amount > left:
        raise LedgerError(f"only {left} kr is set aside and unspent in {year}, not {amount} kr")
    entry = add_entry(session, year, "set_aside_spent", amount, purpose=purpose)
    return {"entry_id": entry.id, **balances(session, year)}


def reserve(year: int, amount: int, application_id: int | None = None, purpose: str = "",
            reference: str = "") -> dict:
    """Reserve awarded money in a budget year; refuses more than is free.

    Usually for an application; without one (``purpose`` instead) for measures SSU decided outside an
    application round, such as the coordinator positions in the Vestfold papers.
    """
    if application_id is None and not purpose:
        raise LedgerError("a reservation needs an application or a purpose")
    session = _session()
    _require_free(session, year, amount, f"application {application_id}" if application_id else purpose)
    entry = add_entry(session, year, "reservation", amount, application_id=application_id, purpose=purpose or None,
                      reference=reference or None)
    reserved = open_reservation(session, application_id, year) if application_id else amount
    return {"entry_id": entry.id, "reserved": reserved}


def pay(application_id: int, year: int, amount: int, reference: str = "") -> dict:
    """Pay out from an application's reservation (what its report shows was spent)."""
    session = _session()
    left = open_reservation(session, application_id, year)
    if amount > left:
        raise LedgerError(f"application {application_id} has {left} kr reserved in {year}, cannot pay {amount} kr")
    add_entry(session, year, "payout", amount, application_id=application_id, reference=reference or None)
    return {"paid": amount, "reserved": open_reservation(session, application_id, year)}


def release(application_id: int, year: int, amount: int | None = None, reference: str = "") -> dict:
    """Release an application's unspent reservation (all of it when ``amount`` is not given)."""
    session = _session()
    left = open_reservation(session, application_id, year)
    amount = left if amount is None else amount
    if amount > left:
        raise LedgerError(f"application {application_id} has {left} kr reserved in {year}, cannot release {amount}")
    if amount:
        add_entry(session, year, "release", amount, application_id=application_id, reference=reference or None)
    return {"released": amount, "free": balances(session, year)["free"]}


def settle(application_id: int, year: int, spent: int, release_rest: bool = False, reference: str = "") -> dict:
    """Pay what a project's approved report shows was spent in a funded year (up to its reservation).

    With ``release_rest`` (the year is over for the project: next year has its own decision), what was
    not spent is released: it becomes free money of that year and carries over at the year's close.
    """
    session = _session()
    if int(spent) < 0:
        raise LedgerError("spent amounts cannot be negative")
    left = open_reservation(session, application_id, year)
    paid = min(int(spent), left)
    if paid:
        add_entry(session, year, "payout", paid, application_id=application_id, reference=reference or None)
    released = left - paid if release_rest else 0
    if released:
        add_entry(session, year, "release", released, application_id=application_id, reference=reference or None)
    return {"year": year, "paid": paid, "released": released, "overspent": int(spent) - paid}


def close_application(application_id: int, spent: int = 0, reference: str = "") -> dict:
    """At the final report: pay what was spent since the last settlement, oldest reservation first, and
    release every reservation still open."""
    session = _session()
    if int(spent) < 0:
        raise LedgerError("spent amounts cannot be negative")
    years_ = sorted(set(session.scalars(select(LedgerEntry.year).where(LedgerEntry.application_id == application_id))))
    to_pay, paid, released = int(spent), 0, 0
    for year in years_:
        left = open_reservation(session, application_id, year)
        pay_now = min(to_pay, left)
        if pay_now:
            add_entry(session, year, "payout", pay_now, application_id=application_id, reference=reference or None)
        if left - pay_now:
            add_entry(session, year, "release", left - pay_now, application_id=application_id,
                      reference=reference or None)
        to_pay, paid, released = to_pay - pay_now, paid + pay_now, released + left - pay_now
    return {"paid": paid, "released": released, "overspent": to_pay}


def carry_over(year: int) -> dict:
    """Close ``year``: release unused set-asides and carry the free balance over to ``year + 1``."""
    session = _session()
    if session.scalar(select(func.count()).where(LedgerEntry.year == year, LedgerEntry.kind == "carry_over_out")):
        raise LedgerError(f"{year} is already closed")
    s = _sums(session, year)
    unused = s["set_aside"] - s["set_aside_release"] - s["set_aside_spent"]
    if unused:
        add_entry(session, year, "set_aside_release", unused, purpose="unused set-aside at year end")
    free = balances(session, year)["free"]
    add_entry(session, year, "carry_over_out", free, reference=f"to {year + 1}")
    add_entry(session, year + 1, "carry_over_in", free, reference=f"from {year}")
    return {"year": year, "carried_over": free, "released_set_aside": unused}


def ledger_balances(year: int) -> dict:
    """The year's balances (see :func:`balances`)."""
    return balances(_session(), year)


def register(registry) -> None:
    for name, func_ in {"ledger.allocate": allocate, "ledger.set_aside": set_aside,
                        "ledger.spend_set_aside": spend_set_aside, "ledger.reserve": reserve, "ledger.pay": pay,
                        "ledger.release": release, "ledger.carry_over": carry_over, "ledger.settle": settle,
                        "ledger.close_application": close_application,
                        "ledger.balances": ledger_balances}.items():
        registry.register(name, func_)


def entries(session: Session, year: int) -> list[LedgerEntry]:
    """The year's ledger entries in the order they were made (for the ledger page)."""
    return list(session.scalars(select(LedgerEntry).where(LedgerEntry.year == year).order_by(LedgerEntry.id)))
