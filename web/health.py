"""Health endpoint for load balancers and docker-compose: checks that the database answers."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    runtime = current_app.extensions["samflyt_runtime"]
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - report, never raise, from a health check
        return jsonify(status="error", database=str(exc.__class__.__name__)), 503
    return jsonify(status="ok", database=runtime.engine.dialect.name)
