"""Security on every request and response.

Responses: a CSP without inline script, no framing, no sniffing, and HSTS in production. Everything the
pages load comes from this server (no CDN), so the policy can be strict.

Requests: input that no page can use and that would fail deep inside (a NUL byte, which PostgreSQL
refuses in text; an id in a URL beyond what an integer column holds) is refused at the door with a 400 or
a 404, before any view reads it, so it never becomes a half-done write or an HTTP 500.
"""

from __future__ import annotations

import os

from flask import Flask, Response, render_template, request
from werkzeug.routing import IntegerConverter, ValidationError

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
#: one year, the value HSTS preload lists ask for
HSTS = "max-age=31536000; includeSubDomains"
#: the largest id a URL may name: the engine's primary keys are 32-bit integer columns on PostgreSQL
MAX_ID = 2**31 - 1


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` that answers 404 for a number no row can have, instead of an overflow in the query."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)

    def to_python(self, value: str) -> int:
        if len(value) > len(str(MAX_ID)):
            raise ValidationError()
        return super().to_python(value)


def bound_url_integers(app: Flask) -> None:
    """Install :class:`BoundedIntegerConverter` as ``int``; call before any blueprint is registered."""
    app.url_map.converters["int"] = BoundedIntegerConverter


def _has_nul() -> bool:
    if "\x00" in request.path or "\x00" in request.query_string.decode("latin-1"):
        return True
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        return True
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        if any("\x00" in key or "\x00" in value for key, value in request.form.items(multi=True)):
            return True
        if any("\x00" in (upload.filename or "") for upload in request.files.values()):
            return True
    return False


def init_app(app: Flask) -> None:
    production = os.environ.get("SAMFLYT_ENV") == "production" or app.config.get("ENV_PRODUCTION", False)

    @app.before_request
    def refuse_nul() -> tuple[str, int] | None:
        # %00 decodes to a NUL in the query and form; a raw one can reach the path too
        if "%00" in request.query_string.decode("latin-1") or _has_nul():
            return render_template("error.html", code=400, reason="nul"), 400
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if production:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response


__all__ = ["bound_url_integers", "init_app"]
