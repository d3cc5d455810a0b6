"""The health community's pages: open calls (public) and the grant overviews for AU, SSU and the
secretariat. Plugged into the web app through the ``samflyt.blueprints`` entry point (:func:`register`),
so ``web`` names no page of the domain."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _

from web.codes import add_code_groups
from web.menu import MenuItem, add_menu_item

from . import calls, codes, grants


def register(app: Flask) -> None:
    """Add the blueprints and their menu entries to ``app``."""
    app.register_blueprint(grants.bp)
    app.register_blueprint(calls.bp)
    add_code_groups(app, codes.groups)
    add_menu_item(app, MenuItem("calls.overview", _("Open calls"), public=True))
    add_menu_item(app, MenuItem("grants.calls", _("Grants"),
                                shown_to=lambda user: bool(user.roles & grants.READERS)))
