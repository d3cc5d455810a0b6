"""Amounts and dates the Norwegian way, for letters, exports and pages alike (``1 860 030 kr``, ``01.12.2025``).

Light on purpose (no PDF or spreadsheet libraries), so the web layer can format without loading them.
"""

from __future__ import annotations

from datetime import date, datetime

from engine.clock import LOCAL_TZ
from engine.errors import SamflytError

NBSP = "\u00a0"


class DocumentError(SamflytError):
    """A document that cannot be produced: unknown template, missing or malformed value."""


# --- formatters ------------------------------------------------------------------------------------


def format_kroner(amount: int) -> str:
    """Whole kroner the Norwegian way: ``1860030`` -> ``"1 860 030 kr"`` (the spaces are U+00A0).

    Negative amounts get an ASCII minus (``-50 000 kr``). Only integers are accepted: money in this
    system is whole kroner, and a float or ``None`` here is a bug upstream.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise DocumentError(f"an amount in kroner must be a whole number, got {amount!r}")
    grouped = f"{abs(amount):,}".replace(",", NBSP)
    return f"{'-' if amount < 0 else ''}{grouped}{NBSP}kr"


def format_date(value: date | datetime | str) -> str:
    """A date as ``dd.mm.yyyy``: ``"2025-12-01"`` or ``date(2025, 12, 1)`` -> ``"01.12.2025"``.

    Accepts a :class:`date`, a :class:`datetime` (aware ones are converted to Norwegian time first) or
    ISO 8601 text (a date or a datetime).
    """
    return _as_date(value).strftime("%d.%m.%Y")


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise DocumentError(f"not an ISO date: {value!r} (expected e.g. 2025-12-01)") from None
    if isinstance(value, datetime):
        return value.astimezone(LOCAL_TZ).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    raise DocumentError(f"not a date: {value!r}")
