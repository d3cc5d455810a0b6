"""The process bundles the health community ships (in the installed ``bpmn`` package), for ``samflyt demo``
and for deploying from any directory."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def grant() -> Path:
    """The grant lifecycle: ``grant_round``, ``grant_application``, ``grant_follow_up``, ``grant_reporting``."""
    return Path(str(files("bpmn") / "grant"))


def meetings() -> Path:
    """The committees' meetings: ``committee_meeting`` (agenda, notice, conclusions to the waiting processes)."""
    return Path(str(files("bpmn") / "meetings"))


def agreements() -> Path:
    """The agreement revision cycle: ``agreement_revision`` (mandate, working group, hearing, anchoring, SSU
    approval, signatures, entry into force, evaluations)."""
    return Path(str(files("bpmn") / "agreements"))
