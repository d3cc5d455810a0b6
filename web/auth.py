"""Sign-in and sign-out, and the language switch. ``/`` sends a signed-in user to the worklist and anyone
else to sign-in.

Two ways in: local accounts (argon2, rate-limited in :mod:`engine.accounts`), and OpenID Connect when
``SAMFLYT_OIDC_ISSUER``, ``SAMFLYT_OIDC_CLIENT_ID`` and ``SAMFLYT_OIDC_CLIENT_SECRET`` are set -- so a health
community can use ID-porten, Ansattporten, HelseID or Entra ID. The claim named by
``SAMFLYT_OIDC_USER_CLAIM`` (default ``email``) picks the account: ``email`` matches the e-mail address,
any other claim the username. Nobody is created on the fly: an identity without an account is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.integrations.flask_client import OAuth
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from sqlalchemy import select

from engine import accounts
from engine.models import User

from . import LANGUAGES, login_manager

bp = Blueprint("auth", __name__)
#: how long a session lasts unused (``SAMFLYT_SESSION_IDLE_MINUTES``): a working day
DEFAULT_IDLE_MINUTES = 480


def init_oidc(app) -> None:
    """Register the OIDC provider when it is configured (discovery, JWKS and token checks by Authlib).

    One client registry per app: two apps (tests, or two communities in one process) never share a provider.
    """
    oauth = app.extensions["samflyt_oauth"] = OAuth(app)
    issuer = app.config.get("OIDC_ISSUER")
    if issuer and app.config.get("OIDC_CLIENT_ID"):
        oauth.register("oidc", client_id=app.config["OIDC_CLIENT_ID"],
                       client_secret=app.config.get("OIDC_CLIENT_SECRET"),
                       server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
                       client_kwargs={"scope": app.config.get("OIDC_SCOPE", "openid email profile")})
        app.config["OIDC_ENABLED"] = True


@dataclass
class SignedIn(UserMixin):
    """The signed-in person as the views see them (a snapshot of the account, read per request)."""

    username: str
    display_name: str
    roles: frozenset[str]
    organisations: frozenset[str]
    language: str | None
    scopes: frozenset[str] = frozenset()

    def get_id(self) -> str:
        return self.username

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @classmethod
    def from_user(cls, user: User) -> SignedIn:
        return cls(user.username, user.display_name or user.username, frozenset(user.role_names),
                   frozenset(user.organisation_names), user.language, frozenset(user.scope_names))


def runtime():
    return current_app.extensions["samflyt_runtime"]


@login_manager.user_loader
def load_user(username: str) -> SignedIn | None:
    """The signed-in person, if their session is still theirs: the session's generation must be the
    account's (sign-out and a password change raise it) and it must have been used within
    ``SESSION_IDLE_MINUTES`` of real time (not the engine's clock, which tests and
    scenarios move). Otherwise the session is ended here and now."""
    with runtime().Session() as s:
        user = s.scalar(select(User).where(User.username == username, User.active.is_(True)))
        if user is None:
            return None
        now = time.time()
        idle = current_app.config.get("SESSION_IDLE_MINUTES", DEFAULT_IDLE_MINUTES) * 60
        seen = session.get("seen")
        if session.get("generation") != user.session_generation or not isinstance(seen, (int, float)) \
                or now - seen > idle:
            session.clear()
            g.session_ended = True
            return None
        if now - seen > 60:  # refresh now and then, not on every request (each refresh sets a cookie)
            session["seen"] = now
        return SignedIn.from_user(user)


@login_manager.unauthorized_handler
def unauthorized():
    """A page that needs sign-in: a 401 with the sign-in form when an earlier session has ended (so the
    person knows why), else the usual redirect to sign-in that comes back here afterwards, saying why in the
    person's language (Flask-Login's ``login_message``, set in :func:`web.create_app`)."""
    if g.get("session_ended"):
        return render_template("login.html", error=None, ended=True, username="", next_target=request.full_path,
                               oidc_name=_oidc_name()), 401
    flash(str(login_manager.login_message), login_manager.login_message_category)
    return redirect(url_for("auth.login", next=request.full_path))


def _oidc_name() -> str | None:
    return current_app.config.get("OIDC_NAME", "ID-porten") if current_app.config.get("OIDC_ENABLED") else None


def _start_session(user: User) -> None:
    """A fresh session (no fixation) bound to the account's current session generation."""
    session.clear()
    session["generation"] = user.session_generation
    session["seen"] = time.time()
    login_user(SignedIn.from_user(user))


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a link send people elsewhere after sign-in."""
    # browsers read a backslash as a slash (``/\\evil.example`` is ``//evil.example``) and drop tabs and
    # newlines, so any of them, or another control character, makes the target unsafe
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(ord(ch) < 32 or ord(ch) == 127 for ch in target) and not urlsplit(target).netloc):
        return target
    return url_for("tasks.worklist")


@bp.get("/")
def index():
    return redirect(url_for("tasks.worklist") if current_user.is_authenticated else url_for("auth.login"))


@bp.route("/sign-in", methods=["GET", "POST"])
def login():
    error = None
    username = request.form.get("username", "").strip()
    if request.method == "POST":
        with runtime().session() as s:
            result = accounts.sign_in(s, username, request.form.get("password", ""), request.remote_addr)
            if result.user is not None:
                _start_session(result.user)
        if result.user is not None:
            return redirect(_safe_next(request.args.get("next")))
        error = (_("Too many failed attempts. Wait 15 minutes and try again.") if result.reason == "locked"
                 else _("Wrong username or password."))
    status = 401 if error else 200
    return render_template("login.html", error=error, username=username, oidc_name=_oidc_name()), status


def _oidc():
    return current_app.extensions["samflyt_oauth"].oidc


@bp.get("/sign-in/oidc")
def oidc_login():
    if not current_app.config.get("OIDC_ENABLED"):
        abort(404)
    session["oidc_next"] = _safe_next(request.args.get("next"))
    return _oidc().authorize_redirect(url_for("auth.oidc_callback", _external=True))


@bp.get("/sign-in/oidc/callback")
def oidc_callback():
    if not current_app.config.get("OIDC_ENABLED"):
        abort(404)
    try:
        token = _oidc().authorize_access_token()
    except Exception as exc:  # noqa: BLE001 - any failure to verify the identity refuses the sign-in
        current_app.logger.warning("OIDC sign-in failed: %s", exc)
        return render_template("login.html", error=_("Sign-in with %(name)s failed. Try again.",
                                                     name=current_app.config.get("OIDC_NAME", "ID-porten")),
                               username="", oidc_name=None), 401
    claims = token.get("userinfo") or {}
    claim = current_app.config.get("OIDC_USER_CLAIM", "email")
    value = str(claims.get(claim) or "")
    if claim == "email" and claims.get("email_verified") is False:
        # an address the provider has not verified could be anyone's: it must not open that account
        current_app.logger.warning("OIDC sign-in refused: %s is not verified by the provider", value)
        return render_template("login.html", error=_("%(name)s has not verified the e-mail address %(who)s.",
                                                     name=current_app.config.get("OIDC_NAME", "ID-porten"),
                                                     who=value), username="", oidc_name=None), 403
    target = session.pop("oidc_next", None)
    with runtime().session() as s:
        user = accounts.user_for_claim(s, claim, value) if value else None
        if user is not None:
            _start_session(user)
    if user is None:
        return render_template("login.html", error=_("There is no account for %(who)s. Ask an administrator.",
                                                     who=value or claim), username="", oidc_name=None), 403
    return redirect(_safe_next(target))


@bp.post("/sign-out")
@login_required
def logout():
    with runtime().session() as s:
        accounts.end_sessions(s, current_user.username)  # every cookie of this account, on every device
    logout_user()
    session.clear()
    flash(_("You are signed out."))
    return redirect(url_for("auth.login"))


@bp.post("/language")
def language():
    chosen = request.form.get("lang")
    if chosen not in LANGUAGES:
        abort(400)
    session["lang"] = chosen
    if current_user.is_authenticated:
        with runtime().session() as s:
            accounts.set_language(s, current_user.username, chosen)
    return redirect(_safe_next(request.form.get("next")))
