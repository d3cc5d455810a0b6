"""Numbers and dates the Norwegian way in every template: ``1 860 030 kr``, ``01.12.2025``.

The formatters are the ones the PDF letters use (:mod:`engine.formats`), so a page and a letter never
show the same amount differently.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from engine import attachments, clock
from engine.formats import format_date, format_kroner


def kroner(value) -> str:
    return format_kroner(int(value)) if value not in (None, "") else ""


def dato(value) -> str:
    return format_date(value) if value not in (None, "") else ""


def data_value(value, field: dict) -> str:
    """A case's data value as people read it, by the kind its form gives it (see
    ``CachedVersion.data_fields``): an option's words, ``01.12.2025``, ``Ja``/``Nei``, ``2 000 000``
    (four digits and fewer stay as written: years, counts)."""
    from flask_babel import gettext as _

    if value is None or value == "":
        return ""
    if str(value) in field.get("options", {}):
        return field["options"][str(value)]
    kind = field.get("kind")
    if kind == "boolean" and isinstance(value, bool):
        return _("Yes") if value else _("No")
    if kind == "date":
        try:
            return format_date(value)
        except ValueError:
            return str(value)
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return format_kroner(value).removesuffix(" kr").removesuffix("\u00a0kr")
    return str(value)


def tidspunkt(value) -> str:
    """A moment as ``dd.mm.yyyy HH:MM`` in Norwegian time (a datetime or ISO text)."""
    if isinstance(value, str) and "T" in value:
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return dato(value)
    return value.astimezone(clock.LOCAL_TZ).strftime("%d.%m.%Y %H:%M")


def element_name(default: str, process_id: str | None, element_id: str | None = "") -> str:
    """A BPMN element's (or, with no element id, a process's) name in the user's language, if translated."""
    from flask import current_app, g

    from . import select_locale

    language = select_locale()
    if language == "nb" or not process_id:
        return default
    cache = g.setdefault("element_names", {})
    if language not in cache:
        cache[language] = current_app.extensions["samflyt_runtime"].element_names(language)
    names = cache[language]
    key = element_id or ""
    if key in names.get(process_id, {}):
        return names[process_id][key]
    if key:  # a step of a called process (a status report inside the follow-up) shown on the caller's page
        return next((mapping[key] for mapping in names.values() if key in mapping), default)
    return default


def joined(names: list[str]) -> str:
    """``["A", "B", "C"]`` as "A, B and C" in the request's language: a list of names in a sentence."""
    from flask_babel import gettext

    if len(names) < 2:
        return "".join(names)
    return gettext("%(first)s and %(last)s", first=", ".join(names[:-1]), last=names[-1])


def init_app(app: Flask) -> None:
    from .codes import code
    from .i18n import translate

    app.jinja_env.filters.update(kr=kroner, dato=dato, tidspunkt=tidspunkt, reason=translate, element=element_name,
                                 code=code, data_value=data_value)
    # read when a form is drawn, so the help text states the limit the upload is checked against
    app.jinja_env.globals["attachment_limit"] = lambda: attachments.size_text(attachments.max_bytes())
