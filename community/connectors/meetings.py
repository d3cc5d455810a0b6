"""Connectors ``meetings.*``: cases waiting for an SSU meeting.

A process does not call meeting code: it enqueues a case (type, title, proposed conclusion, attachments)
and waits for a message carrying the conclusion, correlated by the case number (``YYYY.NN``, as the
secretariat numbers cases, e.g. 2025.35). Until a meetings module exists, the secretariat records the
conclusion in the process (a user task) or with ``samflyt message ssu_decision``.
"""

from __future__ import annotations

from sqlalchemy import select

from community.records import MeetingCase
from engine import clock
from engine.calendar import local_date
from engine.connectors import StepContext
from engine.errors import SamflytError
from engine.serialization import dumps
from engine.texts import _, joined

CASE_TYPES = ("Orientering", "Drøfting", "Beslutning", "Dialog")


class MeetingError(SamflytError):
    """A case that cannot be enqueued or concluded."""

    code = "meeting"


def next_case_number(session, year: int) -> str:
    numbers = session.scalars(select(MeetingCase.case_number).where(MeetingCase.case_number.like(f"{year}.%")))
    last = max((int(n.split(".")[1]) for n in numbers), default=0)
    return f"{year}.{last + 1:02d}"


def enqueue_case(case_type: str, title: str, proposed_conclusion: str, background: str = "",
                 attachments: list | None = None, reference: str = "", committee: str = "SSU", *,
                 ctx: StepContext) -> dict:
    """Put a case on the list for the committee's next meeting; returns its number as ``case_id``."""
    if case_type not in CASE_TYPES:
        raise MeetingError(_("case type must be one of %(types)s, not %(type)r", types=joined(CASE_TYPES),
                             type=case_type))
    if not title or not proposed_conclusion:
        raise MeetingError(_("a case needs a title and a proposed conclusion"))
    session = ctx.session
    number = next_case_number(session, local_date(clock.now()).year)
    case = MeetingCase(case_number=number, committee=committee, case_type=case_type, title=title,
                       background=background or None, proposed_conclusion=proposed_conclusion,
                       attachments=dumps(list(attachments or [])), reference=reference or None,
                       instance_id=ctx.instance_id)
    session.add(case)
    session.flush()
    return {"case_id": number, "case_type": case_type, "title": title}


def record_conclusion(case_id: str, conclusion: str, *, ctx: StepContext) -> dict:
    """Record the conclusion of the meeting (konklusjon i møtet) on a case."""
    session = ctx.session
    case = session.scalar(select(MeetingCase).where(MeetingCase.case_number == case_id))
    if case is None:
        raise MeetingError(_("no case %(case)s", case=case_id))
    case.status, case.conclusion, case.decided_at = "decided", conclusion, clock.now()
    return {"case_id": case_id, "status": case.status}


def register(registry) -> None:
    registry.register("meetings.enqueue_case", enqueue_case)
    registry.register("meetings.record_conclusion", record_conclusion)
