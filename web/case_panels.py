"""What packages plugging into the web app (``samflyt.blueprints``) add to an instance page: facts about the
case (an amount granted) and the documents it made (a letter), each a link the package serves.

The instance page is generic; what a case's documents are, and which facts matter, is the domain's to say,
so the page asks the providers registered here rather than naming any record of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask

PANELS_KEY = "samflyt_case_panels"


@dataclass
class CasePanel:
    """Facts (label, value), documents (label, url) and actions (label, url: a page where the reader does
    something about the case, e.g. declare a conflict of interest) of one case; labels in the request's
    language."""

    facts: list[tuple[str, str]] = field(default_factory=list)
    documents: list[tuple[str, str]] = field(default_factory=list)
    actions: list[tuple[str, str]] = field(default_factory=list)


def add_case_panel(app: Flask, provider: Callable[[int], CasePanel | None]) -> None:
    """Register ``provider(instance_id)``; called only for someone who may see the instance."""
    app.extensions.setdefault(PANELS_KEY, []).append(provider)


def case_panel(app: Flask, instance_id: int) -> CasePanel:
    """Every provider's facts and documents for the instance, in the order the providers were added."""
    merged = CasePanel()
    for provider in app.extensions.get(PANELS_KEY, []):
        panel = provider(instance_id)
        if panel is not None:
            merged.facts += panel.facts
            merged.documents += panel.documents
            merged.actions += panel.actions
    return merged
