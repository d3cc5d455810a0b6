"""The health community's pages: open calls (public), the grant overviews, and the committees' meetings
and case register for AU, SSU and the secretariat, and the public register of agreements. Plugged into the
web app through the ``samflyt.blueprints`` entry point (:func:`register`), so ``web`` names no page of the domain."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _

from web.case_panels import add_case_panel
from web.codes import add_code_groups
from web.menu import MenuItem, add_menu_item

from . import agreements, applications, calls, case_form, codes, conflicts, documents, grants, meetings  # noqa: F401 (case_form adds its routes to meetings.bp)


def register(app: Flask) -> None:
    """Add the blueprints and their menu entries to ``app``."""
    app.register_blueprint(grants.bp)
    app.register_blueprint(calls.bp)
    app.register_blueprint(meetings.bp)  # with the case form and calendar of ``case_form``
    app.register_blueprint(agreements.bp)
    app.register_blueprint(applications.bp)
    app.register_blueprint(documents.bp)
    app.register_blueprint(conflicts.bp)
    add_case_panel(app, documents.case_panel)
    add_code_groups(app, codes.groups)
    add_menu_item(app, MenuItem("calls.overview", _("Open calls"), public=True))
    add_menu_item(app, MenuItem("agreements.overview", _("Agreements"), public=True))
    add_menu_item(app, MenuItem("applications.mine", _("My applications"), shown_to=applications.shown_to))
    add_menu_item(app, MenuItem("grants.calls", _("Grants"),
                                shown_to=lambda user: bool(user.roles & grants.READERS)))
    add_menu_item(app, MenuItem("meetings.meetings", _("Meetings"),
                                shown_to=lambda user: bool(user.roles & grants.READERS)))
    add_menu_item(app, MenuItem("meetings.follow_ups", _("Follow-ups"),
                                shown_to=lambda user: bool(user.roles & grants.READERS)))
