"""One condition, one fault: what a fault explains is its evidence, not a fault of its own.

A card that stops answering makes every feed complain at once: the bus owner
files the timed-out transaction, the watch files the card as offline, and a
self-test files a missing card, an unreadable config and failed checks.
Those are one condition.  :data:`EXPLAINED_BY` names, for each symptom code,
the fault that explains it on the same card; :class:`~controller.faultlog.FaultLog`
applies it on every ``record``:

* a symptom arriving while its cause is active on that card is added to
  the cause's ``details["evidence"]`` (the last :data:`MAX_EVIDENCE` kept,
  ``evidence_count`` counting all) and files nothing;
* a cause that becomes active absorbs the symptoms of its card that were
  filed before it (they are closed, "explained by" it, as its evidence).
"""

from __future__ import annotations

from controller.jsonin import JsonObject

#: symptom code → the code of the fault that explains it on the same card
EXPLAINED_BY: dict[str, str] = {
    "bus.timeout": "card.offline",
    "selftest.cards.missing": "card.offline",
    "selftest.config.unreadable": "card.offline",
    "selftest.check.error": "card.offline",
    "selftest.link.failed": "card.offline",
}
MAX_EVIDENCE = 10


def card_of(source: str) -> str | None:
    """``card:0x05/module:1`` → ``card:0x05``; None for sources that are not a card."""
    head = source.split("/", 1)[0]
    return head if head.startswith("card:") else None


def explains(cause: str, code: str) -> bool:
    """Whether a fault with ``code`` is a consequence of an active ``cause`` (a lost card explains
    its bus timeouts), so it is filed as evidence under the cause instead of as a fault of its
    own."""
    return EXPLAINED_BY.get(code) == cause


def with_evidence(details: JsonObject, code: str, source: str, evidence: JsonObject,
                  when: str) -> JsonObject:
    """The cause's details with one more piece of evidence (bounded)."""
    items = list(details.get("evidence", []))
    items.append({"code": code, "source": source, "at": when, **evidence})
    return {**details, "evidence": items[-MAX_EVIDENCE:],
            "evidence_count": int(details.get("evidence_count", 0)) + 1}
