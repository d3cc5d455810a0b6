"""Texts people read, marked once and spoken in their language where they are shown.

A :class:`Text` *is* its English wording (a ``str``), so logs, the command line and tests read it as they
always did; it also carries its gettext message id (English, with ``%(name)s`` placeholders) and the
values that fill them. Whoever shows it to a person translates it there -- the web UI with
``web.i18n.translate`` -- and nothing parses English prose to find out what it said.

Mark a text with :func:`_`, which Babel extracts (keyword ``_``) into the catalogues in
``web/translations``::

    from engine.texts import _
    raise NotFoundError(_("no user named '%(name)s'", name=username))

A parameter may itself be a :class:`Text`; it is translated too.
"""

from __future__ import annotations

from typing import Any


class Text(str):
    """English text with its message id and parameters: ``Text("claimed by %(name)s", name="kari")``."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, /, **params: Any) -> Text:
        self = super().__new__(cls, msgid % params if params else msgid)
        self.msgid = msgid
        self.params = params
        return self

    def __reduce__(self):  # copy and pickle keep the id and the values, not just the English
        return (_rebuild, (self.msgid, self.params))


def _rebuild(msgid: str, params: dict[str, Any]) -> Text:
    return Text(msgid, **params)


def _(msgid: str, /, **params: Any) -> Text:
    """Mark ``msgid`` as a text to translate and fill its ``%(name)s`` placeholders with ``params``."""
    return Text(msgid, **params)


def as_text(value: Any) -> Text:
    """``value`` as a :class:`Text`: itself if it is one, else its words as they are (not translated)."""
    if isinstance(value, Text):
        return value
    text = str(value)
    # an unmarked message: its own id, with any "%" kept literal when a catalogue is asked about it
    return Text(text)


def joined(values: Any) -> str:
    """Names in a message, comma-separated (``a, b``)."""
    return ", ".join(map(str, values))
