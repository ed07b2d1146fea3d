"""What a self-test check found, in words: finding sentences and check descriptions in either language.

A check does not write sentences: it records a message key and the numbers
behind it (``{"key": "env.hot", "fields": {"temp_c": 91.5, ...}}``), so the
same JSON prints in English for the customer and in Chinese for the vendor's
engineer, and two inspections can be compared by key rather than by text.
The sentences live in the ``finding.*`` and ``check.*`` entries of
:mod:`.i18n`; this module fills them in.

Two things a signed page must not do: crash, and print ``{temp_c}``.  So a
key this code does not know yet (a check added after this release) prints
the sentence the check supplied in ``text``, or else its key and fields; a
field the check forgot prints as a dash.  Counts read right in one place:
a placeholder with a word after a colon (``{count:dead_led}``) prints the
number with the word's singular or plural (``1 dead LED``, ``3 dead LEDs``;
Chinese templates write their measure word instead).  Where more than the
noun changes, a ``.one`` variant of the sentence is used when the number it
counts is 1 (Chinese has the same variants, which simply state the 1).

The commissioning job records its sentences the same way (:func:`message`),
so an acceptance report, too, prints wholly in either language.  Errors
from the bus reach a page as a *reason* a customer understands
(:func:`error_fields`); the protocol's own words stay in the JSON.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from controller.errors import CardError, FrameError, LedwardenError
from controller.jsonin import JsonObject
from controller.report.html import Markup, el
from controller.report.i18n import TABLES, check_lang, fmt_number, fmt_time, label, plural, t
from controller.report.wall import address_text

#: Outcomes of a check or a finding, in the order the report's ``counts`` list them.
OUTCOMES = ("pass", "warn", "fail", "error")

#: Fields holding ISO 8601 stamps, printed like every other time on the page.
TIME_FIELDS = frozenset({"now", "built", "last", "last_run"})

#: The field whose value 1 selects a sentence's ``.one`` variant, where it is not ``count``.
COUNTED_BY = {"link.ok": "cards", "cards.ok": "cards", "config.ok": "cards", "env.ok": "cards"}

#: Fields whose value is a code from elsewhere, printed as its label of this kind.
CODE_FIELDS = {"reason": "reason", "result": "result", "patterns": "pattern", "pattern": "pattern",
               "fault_log": "value"}


def message(key: str, subject: str | None = None, **fields: Any) -> JsonObject:
    """A sentence recorded as a key and its fields (like a self-test finding), English text kept too.

    The text is for logs and the terminal; pages build the sentence from the
    key in their own language.  ``subject`` (``card:0x03``) says what the
    sentence is about, so one condition found twice is said once.
    """
    out: dict[str, Any] = {"key": key, "fields": fields}
    if subject is not None:
        out["subject"] = subject
    out["text"] = finding_text(out, "en")
    return out


def message_text(item: Any, lang: str) -> str:
    """A recorded sentence in ``lang``: a :func:`message` dict, or a plain string as given (old reports)."""
    return finding_text(item, lang) if isinstance(item, Mapping) else str(item)


def error_fields(exc: BaseException) -> dict[str, str]:
    """A bus or card error as finding fields: ``reason``, which the page words for a customer,
    and ``error``, the protocol's own words (address, tries, command), kept for the engineer."""
    if isinstance(exc, TimeoutError):
        reason = "no_answer"
    elif isinstance(exc, CardError):
        reason = "refused"
    elif isinstance(exc, FrameError):
        reason = "garbled"
    elif isinstance(exc, LedwardenError):
        reason = "bus_error"
    else:
        reason = "internal"
    return {"reason": reason, "error": str(exc)}


def finding_text(finding: Mapping[str, Any], lang: str) -> str:
    """One finding as a sentence in ``lang``: its key's sentence filled with its fields.

    Falls back to the finding's own ``text``, then to ``key: field=value, …``,
    so a finding from a newer check still prints something true.
    """
    table = TABLES[check_lang(lang)]
    key = finding.get("key")
    fields = dict(finding.get("fields") or {})
    template = table.get(f"finding.{key}")
    if template is None:
        if finding.get("text"):
            return str(finding["text"])
        shown = ", ".join(f"{name}={format_value(name, value, lang)}" for name, value in fields.items())
        return f"{key or '?'}: {shown}" if shown else str(key or "?")
    one = table.get(f"finding.{key}.one")
    if one is not None and fields.get(COUNTED_BY.get(key or "", "count")) == 1:
        template = one
    return fill(template, fields, lang)


def check_title(check_id: str, lang: str) -> str:
    """The check's title, or its id if this release does not know it."""
    return TABLES[check_lang(lang)].get(f"check.{check_id}", str(check_id))


def check_about(check_id: str, part: str, lang: str) -> str | None:
    """What a check ``measures`` or its ``limits``, or ``None`` for a check this release does not know."""
    return TABLES[check_lang(lang)].get(f"check.{check_id}.{part}")


def fill(template: str, fields: Mapping[str, Any], lang: str) -> str:
    """``template`` with each ``{name}`` replaced by :func:`format_value`; a missing field is a dash.

    ``{name:word}`` is a count followed by ``word`` in the singular or plural
    (``word.<word>``/``word.<word>s`` of the tables).  A ``reason`` missing
    from a finding written before reasons existed prints its ``error``.
    """
    out = []
    for literal, name, spec, _conv in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if name == "reason" and name not in fields and "error" in fields:
            name = "error"
        if name not in fields:
            out.append("—")
            continue
        out.append(format_value(name, fields[name], lang))
        if spec:
            n = fields[name]
            out.append(" " + plural(n if isinstance(n, int) else 0, spec, lang))
    return "".join(out)


def format_value(name: str, value: Any, lang: str) -> str:
    """A field as it reads in a sentence: times in UTC, short decimals, int addresses as ``0x03``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return t("value.yes" if value else "value.no", lang)
    if name in TIME_FIELDS and isinstance(value, str):
        return fmt_time(value)
    if name == "address" and isinstance(value, int):
        return address_text(value)
    if name in CODE_FIELDS and isinstance(value, str):
        return label(CODE_FIELDS[name], value, lang)
    if isinstance(value, float):
        # Two decimals below 10 keep a 0.42 ms round trip from reading as 0.
        return fmt_number(value, 2 if abs(value) < 10 else 1)
    if isinstance(value, (list, tuple)):
        return t("fmt.list_sep", lang).join(format_value(name, v, lang) for v in value)
    return str(value)


# --- as list items --------------------------------------------------------------------------------

def outcome_tag(outcome: str | None, lang: str) -> Markup:
    """A small coloured word: passed, warning, failed, could not run (or the code as given)."""
    return el("span", {"class": f"tag {outcome_class(outcome)}"}, label("outcome", outcome, lang))


def outcome_class(outcome: str | None) -> str:
    """``out-fail`` etc.: the page's colour class for an outcome (plain ``warn`` is taken by the page)."""
    return f"out-{outcome}" if outcome in OUTCOMES else "out-other"


def finding_item(finding: Mapping[str, Any], lang: str, *, check: str | None = None,
                 tag: Markup | None = None, outcome: str | None = None) -> Markup:
    """One finding as a list item: its tag, its sentence, and which check it came from when given.

    ``tag`` and ``outcome`` replace the finding's own for the tag and the
    colour (a fixed fault is listed green, whatever it was).
    """
    return el("li", {"class": f"finding {outcome_class(outcome or finding.get('outcome'))}"},
              tag if tag is not None else outcome_tag(finding.get("outcome"), lang),
              el("span", {"class": "text"}, finding_text(finding, lang)),
              el("span", {"class": "of"}, check_title(check, lang)) if check else None)


def led_detection_ran(report: Mapping[str, Any]) -> bool:
    """Whether a run's LED check ran detection, so its cabinets list every dead LED.

    Said by the check itself (``values.dead_leds`` is a count, not None),
    not guessed from the profile's name.
    """
    return any(ch.get("id") == "cards.leds" and (ch.get("values") or {}).get("dead_leds") is not None
               for ch in report.get("checks") or [])
