"""The mail outbox against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes
from email.policy import default

import pytest
from sqlalchemy import select

from engine import clock
from engine.mail import MailError, SmtpSettings, dispatch_outbox, enqueue, outbox
from engine.models import AuditEvent


def test_messages_are_sent_once_with_a_stable_message_id(rt, smtp):
    inbox, settings = smtp()
    with rt.session() as s:
        enqueue(s, "ada@horten.kommune.no", "task_reminder", {"name": "Ada", "task": "Statusrapport",
                                                               "process": "Tilskudd", "due": "01.12.2025"})
        enqueue(s, "per@example.org", "task_overdue", {"name": "Per", "task": "Sluttrapport", "process": "Tilskudd",
                                                         "due": "01.12.2025"}, language="en")
    assert dispatch_outbox(rt.WriteSession, settings) == (2, 0)
    assert dispatch_outbox(rt.WriteSession, settings) == (0, 0)  # nothing twice
    received = [message_from_bytes(m.content, policy=default) for m in inbox.messages]
    assert [m["Subject"] for m in received] == ["Påminnelse: «Statusrapport» har frist 01.12.2025",
                                                'Overdue: "Sluttrapport"']
    assert "Oppgaven «Statusrapport» i «Tilskudd» har frist 01.12.2025." in received[0].get_content()
    assert [e.rcpt_tos for e in inbox.messages] == [["ada@horten.kommune.no"], ["per@example.org"]]
    assert [m["Message-ID"] for m in received] == [m["message_id"] for m in outbox(rt.Session)]
    with rt.Session() as s:
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.action == "mail_sent")).all()) == 2


def test_a_refusing_server_is_retried_with_backoff_then_accepts(rt, smtp):
    inbox, settings = smtp(refuse=2)
    with rt.session() as s:
        enqueue(s, "ada@horten.kommune.no", "notification", {"subject": "Hei", "text": "Til info"})
    t0 = clock.now()
    with clock.frozen_at(t0):
        assert dispatch_outbox(rt.WriteSession, settings, backoff=timedelta(seconds=30)) == (0, 0)
        assert dispatch_outbox(rt.WriteSession, settings) == (0, 0)  # not due again yet
    with clock.frozen_at(t0 + timedelta(seconds=31)):
        assert dispatch_outbox(rt.WriteSession, settings, backoff=timedelta(seconds=30)) == (0, 0)  # refused again
    with clock.frozen_at(t0 + timedelta(seconds=31 + 61)):
        assert dispatch_outbox(rt.WriteSession, settings) == (1, 0)
    [row] = outbox(rt.Session)
    assert (row["status"], row["attempts"], len(inbox.messages)) == ("sent", 3, 1)


def test_after_max_attempts_a_message_is_shown_as_failed(rt, smtp):
    _, settings = smtp(refuse=99)
    with rt.session() as s:
        enqueue(s, "ada@horten.kommune.no", "notification", {"subject": "Hei", "text": "Til info"})
    for attempt in range(3):
        with clock.frozen_at(clock.now() + timedelta(hours=attempt + 1)):
            result = dispatch_outbox(rt.WriteSession, settings, max_attempts=3)
    assert result == (0, 1)
    [row] = outbox(rt.Session, status="failed")
    assert row["attempts"] == 3 and "451" in row["last_error"]


def test_bad_messages_are_refused_when_written(rt):
    with rt.session() as s:
        with pytest.raises(MailError):
            enqueue(s, "not-an-address", "notification", {})
        with pytest.raises(MailError):
            enqueue(s, "a@b.no", "no_such_template", {})
        with pytest.raises(MailError):
            enqueue(s, "a@b.no", "notification", {}, language="de")


def test_the_scheduler_process_sends_the_outbox(tmp_path, smtp):
    import os
    import subprocess
    import sys

    from engine import db
    from engine.runtime import Runtime

    inbox, settings = smtp()
    url = f"sqlite:///{tmp_path / 'mail.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    runtime = Runtime(engine)
    with runtime.session() as s:
        enqueue(s, "siri@helsefellesskap.no", "notification", {"subject": "Sakliste", "text": "Møte 25.09."},
                language="nn")
    env = {**os.environ, "SAMFLYT_SMTP_HOST": settings.host, "SAMFLYT_SMTP_PORT": str(settings.port)}
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "--db", url, "scheduler", "--once"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [e.rcpt_tos for e in inbox.messages] == [["siri@helsefellesskap.no"]]
    assert [m["status"] for m in outbox(runtime.Session)] == ["sent"]


def test_a_title_with_a_line_break_still_makes_a_one_line_subject(rt, smtp):
    inbox, settings = smtp()
    with rt.session() as s:
        enqueue(s, "ada@horten.kommune.no", "task_reminder", {"name": "Ada", "task": "Status-\nrapport",
                                                               "process": "Tilskudd", "due": "01.12.2025"})
    assert dispatch_outbox(rt.WriteSession, settings) == (1, 0)
    assert message_from_bytes(inbox.messages[0].content, policy=default)["Subject"] == \
        "Påminnelse: «Status- rapport» har frist 01.12.2025"


def test_an_unreachable_server_ends_the_pass_and_nothing_is_lost(rt):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = SmtpSettings(host="127.0.0.1", port=port, timeout=2)
    with rt.session() as s:
        for i in range(3):
            enqueue(s, f"user{i}@example.org", "notification", {"subject": "Hei", "text": "Til info"})
    assert dispatch_outbox(rt.WriteSession, settings) == (0, 0)
    assert [m["attempts"] for m in outbox(rt.Session)] == [1, 0, 0]  # one try, then the pass stopped
    assert all(m["status"] == "pending" for m in outbox(rt.Session))


def test_a_bpmn_service_task_sends_mail_in_its_own_transaction(rt, deploy, smtp, monkeypatch):
    from engine.unit_of_work import Unit
    from tests.bpmn_builder import chain, definitions, end, process, service_task, start, user_task

    inbox, settings = smtp()
    notify = service_task("notify", "mail.send", "sent", to=("str", "applicant_email"),
                          subject=("str", "'Søknaden er mottatt'"), text=("str", "f'Vi har mottatt «{title}».'"))
    deploy({"n.bpmn": definitions(process("notify_applicant", start(), user_task("register"), notify, end(),
                                          chain("start", "register", "notify", "end")))})
    first = rt.start("notify_applicant", {"applicant_email": "ada@horten.kommune.no", "title": "Felles forløp"})
    original = Unit.save_all

    class PowerCut(BaseException):
        """The process dies: not an error the engine's safety net handles (see test_failure_paths)."""

    def crash(self):
        original(self)
        raise PowerCut("power cut")

    monkeypatch.setattr(Unit, "save_all", crash)  # a step that never commits sends nothing
    with pytest.raises(PowerCut):
        rt.complete(rt.tasks(first)[0].id, "ada", {})
    monkeypatch.undo()
    assert outbox(rt.Session) == []
    view = rt.complete(rt.tasks(first)[0].id, "ada", {})
    assert view.status == "completed" and view.data["sent"]["message_id"].startswith("<")
    assert dispatch_outbox(rt.WriteSession, settings) == (1, 0)
    received = message_from_bytes(inbox.messages[0].content, policy=default)
    assert received["Subject"] == "Søknaden er mottatt"
    assert received.get_content().strip() == "Vi har mottatt «Felles forløp»."


def test_a_crash_between_sending_and_marking_resends_once_with_the_same_message_id(rt, smtp, monkeypatch):
    import engine.mail

    inbox, settings = smtp()
    with rt.session() as s:
        enqueue(s, "ada@horten.kommune.no", "notification", {"subject": "Vedtak", "text": "Søknaden er innvilget"})

    def crash(*args, **kwargs):
        raise SystemExit("killed after the server took the message")

    t0 = clock.now()
    monkeypatch.setattr(engine.mail, "_audit", crash)  # the marking transaction never commits
    with clock.frozen_at(t0), pytest.raises(SystemExit):
        dispatch_outbox(rt.WriteSession, settings)
    monkeypatch.undo()
    assert len(inbox.messages) == 1
    [row] = outbox(rt.Session)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    with clock.frozen_at(t0 + timedelta(minutes=1)):  # still inside the sending lease: not sent again
        assert dispatch_outbox(rt.WriteSession, settings) == (0, 0)
    with clock.frozen_at(t0 + timedelta(minutes=6)):  # the lease ran out: sent once more
        assert dispatch_outbox(rt.WriteSession, settings) == (1, 0)
    with clock.frozen_at(t0 + timedelta(hours=1)):
        assert dispatch_outbox(rt.WriteSession, settings) == (0, 0)
    ids = [message_from_bytes(m.content, policy=default)["Message-ID"] for m in inbox.messages]
    assert len(ids) == 2 and ids[0] == ids[1] == row["message_id"]


def test_a_document_goes_out_attached_to_its_mail(rt, connectors, deploy, smtp):
    """An award letter's PDF, attached by ``mail.send(documents=[...])``, arrives as an attachment, byte for
    byte; a document that does not exist is a clear error of the step, and no mail is written."""
    from community.connectors import documents
    from community.records import Document
    from tests.bpmn_builder import chain, definitions, end, process, service_task, start

    documents.register(connectors)  # the documents connectors tell mail.send where documents are kept

    with rt.session() as s:
        s.add(Document(kind="award_letter", filename="tildelingsbrev-7.pdf", media_type="application/pdf",
                       content=b"%PDF-1.7 demo", created_at=clock.now()))
    inbox, settings = smtp()
    mail_task = service_task("send", "mail.send", result="sent", to=("str", "'ada@horten.kommune.no'"),
                             subject=("str", "'Tilskudd innvilget'"), text=("str", "'Brevet er vedlagt.'"),
                             documents=("any", "[doc]"))
    deploy({"m.bpmn": definitions(process("mailer", start(), mail_task, end(), chain("start", "send", "end")))})
    with rt.Session() as s:
        doc_id = s.scalar(select(Document.id))
    iid = rt.start("mailer", data={"doc": doc_id})
    assert rt.instance(iid).data["sent"]["attachments"] == ["tildelingsbrev-7.pdf"]
    assert dispatch_outbox(rt.WriteSession, settings) == (1, 0)
    [received] = [message_from_bytes(m.content, policy=default) for m in inbox.messages]
    [part] = list(received.iter_attachments())
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "tildelingsbrev-7.pdf", "application/pdf", b"%PDF-1.7 demo")
    assert "Brevet er vedlagt." in received.get_body(("plain",)).get_content()
    broken = rt.instance(rt.start("mailer", data={"doc": 999999}))
    assert broken.status == "error" and "no document 999999 to attach" in broken.error["message"]
    assert len(outbox(rt.Session)) == 1
