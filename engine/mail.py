"""Mail: an outbox written in the step's transaction, and a dispatcher that sends it over SMTP.

A notification is a row in ``outbox_messages`` added in the same transaction as the step that caused it
(:func:`enqueue`), so a step that rolls back sends nothing and a committed one is never forgotten. The
dispatcher (:func:`dispatch_outbox`, run by the scheduler) sends due rows one transaction each with
``smtplib``, marks them sent, retries failures with exponential backoff and, after ``max_attempts``, marks
them ``failed`` for an operator to see. A crash between sending and marking may resend a message once;
it carries the same Message-ID, fixed when the row was written, so receivers can drop the duplicate.

Texts come from templates per language: bokmål (``nb``, the default), nynorsk (``nn``) and English.
"""

from __future__ import annotations

import functools
import logging
import os
import smtplib
import socket
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from . import clock
from .connectors.context import StepContext
from .db import for_update
from .errors import SamflytError
from .models import AuditEvent, OutboxAttachment, OutboxMessage
from .serialization import dumps
from .texts import _, joined

log = logging.getLogger("samflyt.mail")

LANGUAGES = ("nb", "nn", "en")
DEFAULT_LANGUAGE = "nb"

#: The templates: ``NAME.LANGUAGE.txt`` (``task_reminder.nn.txt``), Jinja text; the first line is the
#: subject, a blank line follows, the rest is the body. ``{{ name }}`` is filled from the context.
TEMPLATE_DIR = Path(__file__).parent / "mail_templates"


class _Visible(jinja2.Undefined):
    """A placeholder the context does not fill stays visible (``{{ name }}``) instead of failing."""

    def __str__(self) -> str:
        return "{{ " + str(self._undefined_name) + " }}"


_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), undefined=_Visible,
                                autoescape=False, keep_trailing_newline=True)


def template_languages(template: str) -> list[str]:
    """The languages ``template`` is written in (``nb``, ``nn``, ``en``), in that order."""
    have = {p.name.split(".")[1] for p in TEMPLATE_DIR.glob(f"{template}.*.txt") if p.name.count(".") == 2}
    return [lang for lang in LANGUAGES if lang in have] + sorted(have - set(LANGUAGES))


@functools.cache
def _parts(template: str, language: str) -> tuple[jinja2.Template, jinja2.Template]:
    source, _filename, _uptodate = _templates.loader.get_source(_templates, f"{template}.{language}.txt")
    subject, _blank, body = source.partition("\n")
    return _templates.from_string(subject), _templates.from_string(body[1:] if body.startswith("\n") else body)


class MailError(SamflytError):
    """A message that cannot be written: unknown template or language, or a missing address."""

    code = "mail"


def render(template: str, language: str | None, context: dict[str, Any]) -> tuple[str, str, str]:
    """(language, subject, body) for ``template``; unknown placeholders stay visible instead of failing."""
    language = language or DEFAULT_LANGUAGE
    languages = template_languages(template) if template.isidentifier() else []
    if not languages:
        raise MailError(_("unknown mail template '%(template)s'", template=template))
    if language not in languages:
        raise MailError(_("mail template '%(template)s' has no language '%(language)s' (have %(languages)s)",
                          template=template, language=language, languages=joined(languages)))
    subject, body = _parts(template, language)
    values = {k: str(v) for k, v in context.items()}
    return language, " ".join(subject.render(values).split()), body.render(values)  # a header is one line


#: (filename, media type, bytes) of a file sent with a message
Attachment = tuple[str, str, bytes]


def enqueue(session: Session, to: str, template: str, context: dict[str, Any], language: str | None = None,
            instance_id: int | None = None, task_id: str | None = None,
            attachments: Sequence[Attachment] = ()) -> OutboxMessage:
    """Add a message to the outbox in the caller's transaction, with copies of ``attachments``."""
    if not to or "@" not in to:
        raise MailError(_("not a mail address: %(address)r", address=to))
    for filename, media_type, content in attachments:
        if not filename or "/" not in media_type or not isinstance(content, bytes):
            raise MailError(_("not a file to attach: %(name)r (%(type)r)", name=filename, type=media_type))
    language, subject, body = render(template, language, context)
    domain = os.environ.get("SAMFLYT_MAIL_DOMAIN", "samflyt.local")
    row = OutboxMessage(message_id=f"<{uuid.uuid4()}@{domain}>", to_address=to, subject=subject, body=body,
                        language=language, template=template, instance_id=instance_id, task_id=task_id,
                        status="pending", attempts=0, next_attempt_at=clock.now(), created_at=clock.now())
    session.add(row)
    if attachments:
        session.flush()
        session.add_all(OutboxAttachment(outbox_id=row.id, filename=filename, media_type=media_type, content=content)
                        for filename, media_type, content in attachments)
    return row


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = "samflyt@localhost"
    timeout: float = 30.0

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        """From ``SAMFLYT_SMTP_HOST``, ``_PORT``, ``_STARTTLS``, ``_USERNAME``, ``_PASSWORD``, ``_SENDER``."""
        host = os.environ.get("SAMFLYT_SMTP_HOST")
        if not host:
            return None
        return cls(host=host, port=int(os.environ.get("SAMFLYT_SMTP_PORT", "25")),
                   starttls=os.environ.get("SAMFLYT_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
                   username=os.environ.get("SAMFLYT_SMTP_USERNAME") or None,
                   password=os.environ.get("SAMFLYT_SMTP_PASSWORD") or None,
                   sender=os.environ.get("SAMFLYT_SMTP_SENDER", "samflyt@localhost"))


def _send(settings: SmtpSettings, row: OutboxMessage, attachments: Sequence[Attachment] = ()) -> None:
    message = EmailMessage()
    message["Message-ID"] = row.message_id
    message["From"] = settings.sender
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at)
    message["Content-Language"] = row.language
    message.set_content(row.body)
    for filename, media_type, content in attachments:
        maintype, _, subtype = media_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout,
                      local_hostname=socket.getfqdn()) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(message)


#: While a message is being sent it is not due again; if the dispatcher dies between sending and
#: marking, the message is sent once more after this (with the same Message-ID).
SENDING_LEASE = timedelta(minutes=5)


def dispatch_outbox(sessions: sessionmaker[Session], settings: SmtpSettings, max_attempts: int = 5,
                    backoff: timedelta = timedelta(seconds=30), limit: int = 200) -> tuple[int, int]:
    """Send the outbox messages due when the call starts; returns (sent, failed for good) counts.

    Each message is claimed in one short transaction, sent outside any transaction (a slow mail server
    never holds a database lock), and marked in another. A server that cannot be reached ends the pass;
    a refusal (4xx) is retried with exponential backoff, a rejection (5xx) or a message that cannot be
    built fails at once.
    """
    started = clock.now()
    sent = failed = 0
    for _turn in range(limit):
        with sessions() as session, session.begin():
            query = (select(OutboxMessage).where(OutboxMessage.status == "pending",
                                                 OutboxMessage.next_attempt_at <= started)
                     .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(1))
            row = session.scalar(for_update(query, session.get_bind(), skip_locked=True))
            if row is None:
                break
            row.attempts += 1
            row.next_attempt_at = started + SENDING_LEASE
            session.flush()
            files = [(a.filename, a.media_type, a.content) for a in session.scalars(
                select(OutboxAttachment).where(OutboxAttachment.outbox_id == row.id).order_by(OutboxAttachment.id))]
            session.expunge(row)
        error, permanent, unreachable = None, False, False
        try:
            _send(settings, row, files)
        except smtplib.SMTPResponseException as exc:
            error, permanent = f"{exc.smtp_code} {exc.smtp_error!r}", 500 <= exc.smtp_code < 600
        except (OSError, smtplib.SMTPException) as exc:
            error, unreachable = f"{exc.__class__.__name__}: {exc}", True
        except (ValueError, TypeError) as exc:  # a message that cannot be built will never be sent
            error, permanent = f"{exc.__class__.__name__}: {exc}", True
        with sessions() as session, session.begin():
            row = session.get(OutboxMessage, row.id)
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", clock.now(), None
                sent += 1
                _audit(session, "mail_sent", row)
            else:
                row.last_error = error
                if permanent or row.attempts >= max_attempts:
                    row.status = "failed"
                    failed += 1
                    _audit(session, "mail_failed", row, error=error)
                else:
                    row.next_attempt_at = started + backoff * (2 ** (row.attempts - 1))
        if unreachable:
            log.warning("mail server unreachable (%s); trying again later", error)
            break
    return sent, failed


def _audit(session: Session, action: str, row: OutboxMessage, **details: Any) -> None:
    session.add(AuditEvent(at=clock.now(), actor="system", action=action, instance_id=row.instance_id,
                           task_id=row.task_id, details=dumps({"outbox_id": row.id, "to": row.to_address,
                                                               "message_id": row.message_id, "subject": row.subject,
                                                               "attempts": row.attempts, **details})))


def outbox(sessions: sessionmaker[Session], status: str | None = None) -> list[dict[str, Any]]:
    with sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if status:
            query = query.where(OutboxMessage.status == status)
        files: dict[int, list[str]] = {}
        for outbox_id, filename in session.execute(select(OutboxAttachment.outbox_id, OutboxAttachment.filename)
                                                   .order_by(OutboxAttachment.id)):
            files.setdefault(outbox_id, []).append(filename)
        return [{"id": m.id, "to": m.to_address, "subject": m.subject, "status": m.status, "attempts": m.attempts,
                 "last_error": m.last_error, "message_id": m.message_id, "attachments": files.get(m.id, []),
                 "sent_at": m.sent_at.isoformat() if m.sent_at else None} for m in session.scalars(query)]


def send_mail(to: str, template: str = "notification", language: str = DEFAULT_LANGUAGE, subject: str = "",
              text: str = "", context: dict | None = None, documents: list | None = None, *,
              ctx: StepContext) -> dict:
    """Connector ``mail.send``: put a message in the outbox, in the transaction of the step that sends it.

    ``subject`` and ``text`` fill the ``notification`` template; ``context`` fills any other template.
    ``documents``: ids of generated documents (``documents.render``) to attach, e.g. the award letter's PDF.
    ``ctx`` (not a BPMN parameter) is the step's context: its session and instance.
    """
    session = ctx.session
    files = []
    for document_id in documents or []:
        found = _document_source(session, int(document_id)) if _document_source else None
        if found is None:
            raise MailError(_("no document %(document)s to attach", document=document_id))
        files.append(found)
    row = enqueue(session, to, template, {**(context or {}), "subject": subject, "text": text}, language,
                  instance_id=ctx.instance_id, attachments=files)
    session.flush()
    return {"outbox_id": row.id, "message_id": row.message_id, "attachments": [f[0] for f in files]}


#: Where ``mail.send(documents=[...])`` finds a document's file: set by the connectors that make and keep
#: documents (:mod:`engine.connectors.documents`), so the mail module knows no document store of its own.
_document_source: Callable[[Session, int], Attachment | None] | None = None


def set_document_source(source: Callable[[Session, int], Attachment | None]) -> None:
    global _document_source
    _document_source = source


def register_connectors(registry) -> None:
    """The engine's generic connectors (no domain knowledge): ``mail.send``."""
    registry.register("mail.send", send_mail)
