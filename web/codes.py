"""Stored codes shown as words: the engine's audit actions here, and the groups packages add.

The engine and the domain's records store short English codes (``timer_fired``, ``carry_over_in``) so that
queries, exports and the CLI stay stable; people read them in their own language. A package adds its own
groups with :func:`add_code_groups` (the grant's application statuses, ledger kinds...). A code without a
translation is shown as it is rather than hidden, so a new one is visible, not lost.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app
from flask_babel import gettext as _

CODES_KEY = "samflyt_code_groups"


def add_code_groups(app: Flask, groups: Callable[[], dict[str, dict[str, str]]]) -> None:
    """Let ``groups`` (called per use, so gettext answers in the request's language) name more codes."""
    app.extensions.setdefault(CODES_KEY, []).append(groups)


def _groups() -> dict[str, dict[str, str]]:
    # Built per call: gettext answers in the language of the request being rendered.
    return {
        "action": {
            "start": _("started"), "claim": _("claimed the task"), "unclaim": _("gave the task back"),
            "assign": _("reassigned the task"), "complete": _("completed"), "exclude": _("stood aside in the case"),
            "complete_refused": _("tried to complete (refused)"), "cancel": _("cancelled the case"),
            "retry": _("ran the failed step again"), "error": _("error"), "timer_fired": _("deadline reached"),
            "message_delivered": _("message received"), "message_undeliverable": _("message not delivered"),
            "message_held": _("message kept until the case runs again"),
            "event_not_caught": _("event not caught"), "due_date_invalid": _("invalid due date"),
            "task_reminder": _("reminder sent"), "task_overdue": _("overdue notice sent"),
            "mail_sent": _("e-mail sent"), "mail_failed": _("e-mail failed"), "connector": _("ran a connector"),
            "deploy": _("deployed"), "user_saved": _("user saved"), "scope_saved": _("organisations placed"),
        },
    }


def code(value: str | None, group: str) -> str:
    """``{{ entry.kind|code("ledger") }}``: the code's words in the user's language, else the code."""
    if value in (None, ""):
        return ""
    groups = _groups()
    for more in current_app.extensions.get(CODES_KEY, []):
        for name, words in more().items():
            groups.setdefault(name, {}).update(words)
    return groups.get(group, {}).get(value, value)
