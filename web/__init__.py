"""Samflyt's web application (app factory).

A thin, server-rendered Flask layer over :mod:`engine`: views call the runtime and render; no engine
logic lives here. This first version serves a health page; the task UI comes with its own issue.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app. Configuration comes from ``SAMFLYT_*`` environment variables, then ``test_config``."""
    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SAMFLYT_SECRET_KEY", "dev"),
        DATABASE_URL=os.environ.get("SAMFLYT_DATABASE_URL"),
    )
    app.config.from_prefixed_env("SAMFLYT")
    if test_config:
        app.config.update(test_config)
    if not app.debug and not app.testing and app.config["SECRET_KEY"] == "dev" and os.environ.get(
            "SAMFLYT_ENV") == "production":
        raise RuntimeError("SAMFLYT_SECRET_KEY must be set in production")

    from engine.runtime import Runtime

    app.extensions["samflyt_runtime"] = Runtime(app.config["DATABASE_URL"])

    from . import health

    app.register_blueprint(health.bp)
    return app
