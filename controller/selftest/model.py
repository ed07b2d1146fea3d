"""What a check is and what it gives back.

Findings carry a message *key* and its *fields*, not a sentence, so the
report can say them in English or in Chinese (``controller.report.i18n``
holds the words); the English text is also kept in the finding for logs, the
command line and the fault log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from controller.report.findings import finding_text
from controller.report.i18n import t

OUTCOMES = ("pass", "warn", "fail", "error")
#: How bad an outcome is; a run's result is its worst check.
RANK = {"pass": 0, "warn": 1, "error": 2, "fail": 3}


def worst(outcomes) -> str:
    """The worst of some outcomes (pass < warn < error < fail); none at all is a pass."""
    return max(outcomes, key=RANK.__getitem__, default="pass")


class FindingView(TypedDict):
    """A finding as a stored report and the API hold it."""

    outcome: str
    subject: str
    key: str
    fields: dict[str, Any]
    text: str


class CheckDescription(TypedDict):
    """A check as ``/api/v1/selftest/checks`` lists it, in the language asked for."""

    id: str
    title: str
    measures: str
    limits: str


@dataclass
class Finding:
    """One sentence a check found: outcome, i18n key with its fields, and the subject it is about,
    so it can be rendered in either language and filed as a fault."""

    outcome: str
    key: str
    fields: dict[str, Any]
    subject: str = "controller"

    def text(self, lang: str = "en") -> str:
        """The sentence in ``lang``, rendered from the key and fields, never stored, so a report can
        be re-read in the other language."""
        return finding_text({"key": self.key, "fields": self.fields}, lang)

    def as_dict(self) -> FindingView:
        """The finding as the stored report keeps it, with its English text for readers of the raw
        JSON."""
        return {"outcome": self.outcome, "subject": self.subject, "key": self.key,
                "fields": self.fields, "text": self.text()}


@dataclass
class CheckResult:
    """What one check found; the runner adds its id and duration."""

    findings: list[Finding] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def add(self, outcome: str, key: str, subject: str = "controller", **fields) -> Finding:
        """Record a finding; ``fields`` fill the sentence's placeholders and travel into the report."""
        finding = Finding(outcome, key, fields, subject)
        self.findings.append(finding)
        return finding

    @property
    def outcome(self) -> str:
        """The check's outcome is its worst finding."""
        return worst(f.outcome for f in self.findings)


CheckFunction = Callable[["object", CheckResult], Awaitable[None]]


@dataclass(frozen=True)
class Check:
    """A registered check: its id (also its i18n key ``check.<id>``) and its coroutine."""

    id: str
    run: CheckFunction

    def describe(self, lang: str = "en") -> CheckDescription:
        """What the check measures and its limits, as ``selftest list`` and the API show them."""
        return {"id": self.id, "title": t(f"check.{self.id}", lang),
                "measures": t(f"check.{self.id}.measures", lang),
                "limits": t(f"check.{self.id}.limits", lang)}
