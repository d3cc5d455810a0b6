"""Accounts: passwords (argon2), sign-in with rate limiting, language, and saved task-form drafts.

Kept in the engine, not the web layer, so the CLI (``samflyt users password``), the demo and the web app
share one implementation. Failed sign-ins are rows (``sign_in_attempts``): after ``MAX_FAILURES`` failures
for a username within ``WINDOW`` every attempt is refused, right password or not, until the window has
passed -- on every web process at once, since the count lives in the database.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from . import clock
from .errors import NotFoundError, SamflytError
from .models import SignInAttempt, TaskDraft, User

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LANGUAGES = ("nb", "nn", "en")
_hasher = PasswordHasher()


class AccountError(SamflytError):
    """A password or language that cannot be set."""


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: ``user`` when it succeeded, else why not (``locked`` or ``invalid``)."""

    user: User | None
    reason: str | None = None


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise AccountError("a password needs at least 8 characters")
    return _hasher.hash(password)


def set_password(session: Session, username: str, password: str) -> None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"no user '{username}'")
    user.password_hash = hash_password(password)


def new_password() -> str:
    """A random password for a new account (printed once, e.g. by ``samflyt demo``)."""
    return secrets.token_urlsafe(9)


def sign_in(session: Session, username: str, password: str, client: str | None = None) -> SignIn:
    """Check a password, counting failures; the caller commits ``session``."""
    since = clock.now() - WINDOW
    failures = session.scalar(select(func.count()).select_from(SignInAttempt).where(
        SignInAttempt.username == username, SignInAttempt.succeeded.is_(False), SignInAttempt.at >= since))
    if failures >= MAX_FAILURES:
        session.add(SignInAttempt(username=username, client=client, succeeded=False, at=clock.now()))
        return SignIn(None, "locked")
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    ok = False
    if user is not None and user.password_hash:
        try:
            ok = _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
        if ok and _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
    else:
        _hasher.hash(password)  # the same work for unknown names: timing does not tell who exists
    session.add(SignInAttempt(username=username, client=client, succeeded=ok, at=clock.now()))
    if ok:
        session.execute(delete(SignInAttempt).where(SignInAttempt.username == username,
                                                    SignInAttempt.succeeded.is_(False)))
    return SignIn(user if ok else None, None if ok else "invalid")


def set_language(session: Session, username: str, language: str) -> None:
    if language not in LANGUAGES:
        raise AccountError(f"language must be one of {', '.join(LANGUAGES)}")
    user = session.scalar(select(User).where(User.username == username))
    if user is not None:
        user.language = language


def user_for_claim(session: Session, claim: str, value: str) -> User | None:
    """The active user an OIDC claim names: ``email`` matches the e-mail address, anything else the username."""
    column = User.email if claim == "email" else User.username
    return session.scalar(select(User).where(func.lower(column) == value.lower(), User.active.is_(True)))


# -- drafts ------------------------------------------------------------------------------------------------
def save_draft(session: Session, task_id: str, username: str, data: dict[str, Any]) -> None:
    draft = session.scalar(select(TaskDraft).where(TaskDraft.task_id == task_id, TaskDraft.username == username))
    if draft is None:
        draft = TaskDraft(task_id=task_id, username=username)
        session.add(draft)
    draft.data, draft.saved_at = json.dumps(data, ensure_ascii=False), clock.now()


def load_draft(session: Session, task_id: str, username: str) -> tuple[dict[str, Any], Any] | None:
    draft = session.scalar(select(TaskDraft).where(TaskDraft.task_id == task_id, TaskDraft.username == username))
    return (json.loads(draft.data), draft.saved_at) if draft is not None else None


def drop_draft(session: Session, task_id: str, username: str) -> None:
    session.execute(delete(TaskDraft).where(TaskDraft.task_id == task_id, TaskDraft.username == username))
