"""The main menu's entries that packages plugging into the web app add (``samflyt.blueprints``).

The web app knows its own pages (tasks, start, administration); a domain package adds its pages and the
menu entries that lead to them, so the base layout names no page it does not own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask

MENU_KEY = "samflyt_menu"


@dataclass(frozen=True)
class MenuItem:
    """A link in the main menu: ``label`` is a lazy gettext string, so it is read in the request's language."""

    endpoint: str
    label: Any
    #: shown to signed-out visitors too (a public page)
    public: bool = False
    #: who sees it when signed in; ``None``: everyone signed in
    shown_to: Callable[[Any], bool] | None = None

    def visible(self, user: Any) -> bool:
        if not user.is_authenticated:
            return self.public
        return self.shown_to is None or bool(self.shown_to(user))


def add_menu_item(app: Flask, item: MenuItem) -> None:
    app.extensions.setdefault(MENU_KEY, []).append(item)


def menu_items(app: Flask, user: Any) -> list[MenuItem]:
    """The plugged-in entries ``user`` sees, in the order they were added."""
    return [item for item in app.extensions.get(MENU_KEY, []) if item.visible(user)]
