"""Samflyt's web application (app factory).

A thin, server-rendered Flask layer over :mod:`engine`: views call the runtime and render; no engine
logic lives here, so the CLI, the scheduler and the pages always agree. Blueprints: ``auth`` (sign-in,
language), ``tasks`` (worklists, task forms), ``instances`` (instance pages), ``start`` (starting a
process), ``admin``, ``health``. Packages add their own pages through the ``samflyt.blueprints`` entry-point
group: each entry is a callable that receives the app (registers blueprints, adds menu entries).

Configuration comes from ``SAMFLYT_*`` environment variables (``SAMFLYT_SECRET_KEY``,
``SAMFLYT_DATABASE_URL``, ``SAMFLYT_ENV=production``...), then the mapping given to :func:`create_app`.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, render_template, request, session
from flask_babel import Babel
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from engine import attachments, plugins
from engine.errors import StepFailedError

#: Files one form post may carry at the attachment size limit (``MAX_CONTENT_LENGTH`` is derived from it).
UPLOADS_PER_REQUEST = 4
#: Room for the text fields of a form besides its files.
FORM_SLACK_BYTES = 1024 * 1024
LANGUAGES = {"nb": "Norsk bokmål", "nn": "Norsk nynorsk", "en": "English"}
csrf = CSRFProtect()
login_manager = LoginManager()


def select_locale() -> str:
    """The language of this request: chosen in this session, else the user's, else bokmål."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    if current_user.is_authenticated and current_user.language in LANGUAGES:
        return current_user.language
    return "nb"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app. ``SECRET_KEY`` is required outside debug, testing and ``samflyt serve`` (whose
    sessions then last until it stops)."""
    app = Flask(__name__, instance_relative_config=False)
    production = os.environ.get("SAMFLYT_ENV") == "production"
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SAMFLYT_SECRET_KEY"),
        DATABASE_URL=os.environ.get("SAMFLYT_DATABASE_URL"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=production,
        BABEL_DEFAULT_LOCALE="nb",
        BABEL_DEFAULT_TIMEZONE="Europe/Oslo",
        WORKLIST_PAGE_SIZE=25,
        SESSION_IDLE_MINUTES=480,  # a session unused this long (real time) has ended
        # the request limit follows the attachment limit, so an oversized upload is refused before it is
        # read into memory: room for a few files of the largest size plus the form fields
        MAX_CONTENT_LENGTH=UPLOADS_PER_REQUEST * attachments.max_bytes() + FORM_SLACK_BYTES,
    )
    app.config.from_prefixed_env("SAMFLYT")
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        if production or not (app.debug or app.testing or app.config.get("DEV_SERVER")):
            raise RuntimeError("set SAMFLYT_SECRET_KEY: sessions cannot be signed without it")
        app.config["SECRET_KEY"] = os.urandom(32).hex()

    from engine.runtime import open_runtime

    app.extensions["samflyt_runtime"] = open_runtime(app.config["DATABASE_URL"])
    from . import security

    security.bound_url_integers(app)  # before any route is added, so every <int:...> is bounded
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    from flask_babel import lazy_gettext as _

    # Flask-Login's own message is English; flashed as text in the language of the request that asks
    login_manager.login_message = _("Sign in to see this page.")
    login_manager.localize_callback = str
    Babel(app, locale_selector=select_locale)

    from . import admin, auth, formatting, health, instances, menu, start, tasks

    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    auth.init_oidc(app)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(instances.bp)
    app.register_blueprint(start.bp)
    app.register_blueprint(admin.bp)
    for register in plugins.load_group("samflyt.blueprints"):
        register(app)
    security.init_app(app)
    formatting.init_app(app)

    @app.context_processor
    def languages() -> dict[str, Any]:
        return {"languages": LANGUAGES, "current_language": select_locale(),
                "menu": menu.menu_items(app, current_user)}

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError):
        return render_template("error.html", code=400, reason="csrf"), 400

    @app.errorhandler(StepFailedError)
    def step_failed(error: StepFailedError):
        """A step that failed unexpectedly (engine/services/core.py's safety net): a conflict, not a crash."""
        return render_template("error.html", code=409, reason="step_failed"), 409

    for code in (403, 404, 405, 413, 500):
        app.register_error_handler(code, lambda error, code=code: (
            render_template("error.html", code=code, reason=None), code))

    @app.before_request
    def language_from_query() -> None:
        if request.args.get("lang") in LANGUAGES:
            session["lang"] = request.args["lang"]

    return app
