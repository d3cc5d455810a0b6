"""The engine's texts in the user's language.

The engine and the domain packages mark what they say to people with :func:`engine.texts._`: a
:class:`engine.texts.Text` is English words that also carry their message id and values. Here such a
text is looked up in the catalogues (``web/translations``) for the user's language; any other value is
shown as it is rather than hidden.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext

from engine.texts import Text


def translate(value: Any) -> Any:
    """A :class:`Text` in the user's language (its parameters too, when they are texts); else ``value``."""
    if isinstance(value, Text):
        return gettext(value.msgid, **{name: translate(v) for name, v in value.params.items()})
    return value


def translate_all(messages: Any) -> Any:
    """The same nested structure (field -> messages, row index -> ...) with every text translated."""
    if isinstance(messages, dict):
        return {key: translate_all(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return [translate_all(m) for m in messages]
    return translate(messages)
