"""Accounts: passwords (argon2), sign-in with rate limiting, language, and saved task-form drafts.

Kept in the engine, not the web layer, so the CLI (``samflyt users password``), the demo and the web app
share one implementation. Failed sign-ins are rows (``sign_in_attempts``), counted within ``WINDOW`` on every
web process at once, since the count lives in the database:

- ``MAX_FAILURES`` for one username from one address locks that pair: the guesser is stopped, while the
  account's owner, signing in from elsewhere, is not;
- ``MAX_CLIENT_FAILURES`` from one address locks the address for every name, so trying many accounts
  from one place is as slow as trying one;
- ``MAX_ACCOUNT_FAILURES`` for one username from anywhere locks the account itself: a distributed
  guess is stopped too, but locking someone out now costs many addresses instead of five tries.

Sessions are revocable: ``users.session_generation`` goes into the session at sign-in and
:func:`end_sessions` (sign-out, a password change) raises it, so every earlier cookie stops working.
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
MAX_CLIENT_FAILURES = 20
MAX_ACCOUNT_FAILURES = 50
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
    user.session_generation = (user.session_generation or 0) + 1  # a new password ends the old sessions


def end_sessions(session: Session, username: str) -> int:
    """End every session of ``username`` on every process (sign-out does this); returns the new generation."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"no user '{username}'")
    user.session_generation = (user.session_generation or 0) + 1
    return user.session_generation


def new_password() -> str:
    """A random password for a new account (printed once, e.g. by ``samflyt demo``)."""
    return secrets.token_urlsafe(9)


def sign_in(session: Session, username: str, password: str, client: str | None = None) -> SignIn:
    """Check a password, counting failures; the caller commits ``session``."""
    if _locked(session, username, client):
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


def _locked(session: Session, username: str, client: str | None) -> bool:
    """Whether the pair, the address or the account has failed too often within ``WINDOW``."""
    recent = select(func.count()).select_from(SignInAttempt).where(
        SignInAttempt.succeeded.is_(False), SignInAttempt.at >= clock.now() - WINDOW)
    if session.scalar(recent.where(SignInAttempt.username == username)) >= MAX_ACCOUNT_FAILURES:
        return True
    if client is None:  # no address known (CLI, tests): the account's own count is all there is
        return session.scalar(recent.where(SignInAttempt.username == username)) >= MAX_FAILURES
    if session.scalar(recent.where(SignInAttempt.client == client)) >= MAX_CLIENT_FAILURES:
        return True
    return session.scalar(recent.where(SignInAttempt.username == username,
                                       SignInAttempt.client == client)) >= MAX_FAILURES


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
