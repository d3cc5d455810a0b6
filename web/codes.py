"""Stored codes shown as words: audit actions, application statuses, ledger and report kinds.

The engine and the grant records store short English codes (``timer_fired``, ``carry_over_in``) so that
queries, exports and the CLI stay stable; people read them in their own language. A code without a
translation here is shown as it is rather than hidden, so a new one is visible, not lost.
"""

from __future__ import annotations

from flask_babel import gettext as _


def _groups() -> dict[str, dict[str, str]]:
    # Built per call: gettext answers in the language of the request being rendered.
    return {
        "action": {
            "start": _("started"), "claim": _("claimed the task"), "unclaim": _("gave the task back"),
            "assign": _("reassigned the task"), "complete": _("completed"),
            "complete_refused": _("tried to complete (refused)"), "cancel": _("cancelled the case"),
            "retry": _("ran the failed step again"), "error": _("error"), "timer_fired": _("deadline reached"),
            "message_delivered": _("message received"), "message_undeliverable": _("message not delivered"),
            "event_not_caught": _("event not caught"), "due_date_invalid": _("invalid due date"),
            "task_reminder": _("reminder sent"), "task_overdue": _("overdue notice sent"),
            "mail_sent": _("e-mail sent"), "mail_failed": _("e-mail failed"), "connector": _("ran a connector"),
            "deploy": _("deployed"), "user_saved": _("user saved"), "scope_saved": _("organisations placed"),
            "community_saved": _("organisations placed"),
        },
        "application": {
            "submitted": _("Submitted"), "returned": _("Returned to the applicant"), "registered": _("Registered"),
            "granted": _("Granted"), "rejected": _("Rejected"), "refused_late": _("Refused: too late"),
            "withdrawn": _("Withdrawn"), "completed": _("Completed"),
        },
        "ledger": {
            "allocation": _("Allocation"), "carry_over_in": _("Carried over from last year"),
            "carry_over_out": _("Carried over to next year"), "set_aside": _("Set aside"),
            "set_aside_release": _("Set-aside released"), "set_aside_spent": _("Set-aside spent"),
            "reservation": _("Reserved"), "release": _("Released"), "payout": _("Paid out"),
        },
        # the five priority groups of the national framework for health communities (domain.md)
        "priority_group": {"children_young": _("Children and young people"),
                           "chronic_multiple": _("People with multiple chronic conditions"),
                           "mental_substance": _("Severe mental illness and substance use problems"),
                           "frail_elderly": _("Frail elderly people"),
                           "pregnancy_birth": _("Pregnancy, childbirth and postnatal care")},
        "report_kind": {"status": _("Status report"), "deviation": _("Deviation report"),
                        "final": _("Final report")},
        "report_state": {"submitted": _("Submitted"), "approved": _("Approved"), "returned": _("Returned")},
    }


def code(value: str | None, group: str) -> str:
    """``{{ entry.kind|code("ledger") }}``: the code's words in the user's language, else the code."""
    if value in (None, ""):
        return ""
    return _groups().get(group, {}).get(value, value)
