"""The validator's messages in the user's language.

The engine validates with marshmallow, whose messages are English developer prose ("Missing data for
required field."). Here the known ones become short instructions in bokmål, nynorsk or English, keeping
the numbers they carry; an unknown message is shown as it is rather than hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask_babel import gettext as _

_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^Missing data for required field\.$"), lambda m: _("Fill in this field.")),
    (re.compile(r"^Field may not be null\.$"), lambda m: _("Fill in this field.")),
    (re.compile(r"^Unknown field\.$"), lambda m: _("This field is not part of the form.")),
    (re.compile(r"^Not a valid integer\.$"), lambda m: _("Write a whole number, without decimals.")),
    (re.compile(r"^Not a valid (number|decimal)\.$"), lambda m: _("Write a number.")),
    (re.compile(r"^Not a valid date\.$"), lambda m: _("Write a date as dd.mm.yyyy.")),
    (re.compile(r"^Not a valid datetime\.$"), lambda m: _("Write a date and time.")),
    (re.compile(r"^Not a valid email address\.$"), lambda m: _("Write an e-mail address like name@example.no.")),
    (re.compile(r"^Not a valid boolean\.$"), lambda m: _("Choose yes or no.")),
    (re.compile(r"^Not a valid (string|list)\.$"), lambda m: _("This value has the wrong form.")),
    (re.compile(r"^Must be greater than or equal to (-?[\d.]+)\.$"),
     lambda m: _("The value must be at least %(min)s.", min=m.group(1))),
    (re.compile(r"^Must be less than or equal to (-?[\d.]+)\.$"),
     lambda m: _("The value must be at most %(max)s.", max=m.group(1))),
    (re.compile(r"^Must be greater than or equal to (-?[\d.]+) and less than or equal to (-?[\d.]+)\.$"),
     lambda m: _("The value must be between %(min)s and %(max)s.", min=m.group(1), max=m.group(2))),
    (re.compile(r"^Length must be between (\d+) and (\d+)\.$"),
     lambda m: _("Write between %(min)s and %(max)s characters.", min=m.group(1), max=m.group(2))),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"),
     lambda m: _("Write at least %(min)s characters.", min=m.group(1))),
    (re.compile(r"^Longer than maximum length (\d+)\.$"),
     lambda m: _("Write at most %(max)s characters.", max=m.group(1))),
    (re.compile(r"^Must be one of: .*\.$"), lambda m: _("Choose one of the options.")),
    (re.compile(r"^String does not match expected pattern\.$"), lambda m: _("The value has the wrong format.")),
    # why someone may not work a task (engine.authz, engine.runtime)
    (re.compile(r"^conflict of interest: you are a member of (.+)$"),
     lambda m: _("conflict of interest: you are a member of %(organisations)s", organisations=m.group(1))),
    (re.compile(r"^only members of (.+) may work this task$"),
     lambda m: _("only members of %(organisations)s may work this task", organisations=m.group(1))),
    (re.compile(r"^the case belongs to (.+), and you are not a member of it$"),
     lambda m: _("the case belongs to %(community)s, and you are not a member of it", community=m.group(1))),
    (re.compile(r"^the task needs the role '(.+)'$"), lambda m: _("the task needs the role %(role)s", role=m.group(1))),
    (re.compile(r"^this task is assigned to named users$"), lambda m: _("the task is assigned to someone else")),
    (re.compile(r"^you already have another '(.+)' task in this case$"),
     lambda m: _("you already have another «%(title)s» task in this case", title=m.group(1))),
    (re.compile(r"^claimed by (.+)$"), lambda m: _("claimed by %(name)s", name=m.group(1))),
    (re.compile(r"^the account is deactivated$"), lambda m: _("the account is deactivated")),
    (re.compile(r"^the task is no longer open.*$"), lambda m: _("the task is no longer open")),
    # uploads refused (engine.attachments)
    (re.compile(r"^(.+): files of type (.+) are not accepted \(accepted: (.+)\)$"),
     lambda m: _("%(name)s: files of type %(type)s are not accepted (accepted: %(accepted)s)",
                 name=m.group(1), type=m.group(2), accepted=m.group(3))),
    (re.compile(r"^(.+) is empty$"), lambda m: _("%(name)s is empty", name=m.group(1))),
    (re.compile(r"^(.+) is larger than (\d+ [kM]B)$"),
     lambda m: _("%(name)s is larger than %(size)s", name=m.group(1), size=m.group(2))),
]


def translate(message: str) -> str:
    for pattern, render in _RULES:
        match = pattern.match(message)
        if match:
            return render(match)
    return message


def translate_all(messages: Any) -> Any:
    """The same nested structure (field -> messages, row index -> ...) with every message translated."""
    if isinstance(messages, dict):
        return {key: translate_all(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return [translate_all(m) for m in messages]
    return translate(messages) if isinstance(messages, str) else messages
