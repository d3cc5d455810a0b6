"""Numbers and dates the Norwegian way in every template: ``1 860 030 kr``, ``01.12.2025``.

The formatters are the ones the PDF letters use (:mod:`engine.formats`), so a page and a letter never
show the same amount differently.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from engine import clock
from engine.formats import format_date, format_kroner


def kroner(value) -> str:
    return format_kroner(int(value)) if value not in (None, "") else ""


def dato(value) -> str:
    return format_date(value) if value not in (None, "") else ""


def tidspunkt(value) -> str:
    """A moment as ``dd.mm.yyyy HH:MM`` in Norwegian time (a datetime or ISO text)."""
    if isinstance(value, str) and "T" in value:
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return dato(value)
    return value.astimezone(clock.LOCAL_TZ).strftime("%d.%m.%Y %H:%M")


def init_app(app: Flask) -> None:
    from .messages import translate

    app.jinja_env.filters.update(kr=kroner, dato=dato, tidspunkt=tidspunkt, reason=translate)
