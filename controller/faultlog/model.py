"""What a fault is: its fields, severities, sources and timestamps, with no storage attached.

Kept apart from the store so the API, the exporters and the host tool can
share the vocabulary without opening a database.  Times are ISO-8601 UTC
strings to the second ("2026-11-22T10:00:00Z"): one fixed-width form sorts
as text, so the database can filter and order by it without parsing, and it
is what a person reads in a CSV.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from controller.cardaddress import hex_address
from controller.errors import PayloadError
from controller.jsonin import JsonObject
from controller.timeutil import utc_text

SEVERITIES = ("info", "warning", "error", "critical")
STATES = ("active", "cleared")
#: Longest code or source accepted.  Both are indexed and compared on every
#: fold; the variable part of a fault belongs in ``details``.
MAX_NAME = 96
#: Longest ``details`` kept, as JSON text.  A feed that dumps a whole trace
#: into one fault must not grow a row without bound on an SD card.
MAX_DETAILS = 4096

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_time(text: str) -> str:
    """A date or date-time a person or program gave, as the log's canonical UTC timestamp.

    Accepts ``2026-11-22`` (midnight UTC), ``2026-11-22T10:00``,
    ``2026-11-22T10:00:00Z`` and offsets such as ``+01:00``; a time without
    a zone is taken as UTC, because the controller keeps UTC and a service
    engineer's laptop may be in any zone.
    """
    raw = text.strip()
    try:
        if _DATE_ONLY.fullmatch(raw):
            when = dt.datetime.strptime(raw, "%Y-%m-%d")
        else:
            when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        return utc_text(when)
    except (ValueError, OverflowError):     # OverflowError: 0001-01-01T00:00+01:00 is before year 1
        raise PayloadError(f"{text!r} is not a date or time: use e.g. 2026-11-22 or "
                           "2026-11-22T10:00:00Z") from None


def card_source(address: int, module: int | None = None) -> str:
    """The source name of a card, or of one module on it: ``card:0x03``, ``card:0x03/module:2``.

    One spelling everywhere matters: folding matches sources as text, so
    ``card:3`` and ``card:0x03`` would be two faults for one card.
    """
    if not isinstance(address, int) or not 0 <= address <= 0xFF:
        raise PayloadError(f"card address must be 0..255, not {address!r}")
    source = f"card:{hex_address(address)}"
    if module is None:
        return source
    if not isinstance(module, int) or module < 0:
        raise PayloadError(f"module number must be 0 or more, not {module!r}")
    return f"{source}/module:{module}"


def source_matches(source: str, wanted: str) -> bool:
    """True if ``source`` is ``wanted`` or lies under it: ``card:0x03`` covers its modules.

    Filters and clears take a card to mean the card and everything on it,
    which is what a person replacing a cabinet means.
    """
    return source == wanted or source.startswith(wanted + "/")


def check_severity(severity: str) -> str:
    """``severity`` if it is one the log knows, else a :class:`PayloadError` listing them: a feed
    with a typo is refused, not filed under a level no filter finds."""
    if severity not in SEVERITIES:
        raise PayloadError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    return severity


def severities_from(least: str) -> tuple[str, ...]:
    """The severities at least as bad as ``least``: a filter for "warning and worse"."""
    return SEVERITIES[SEVERITIES.index(check_severity(least)):]


def worse(a: str, b: str) -> str:
    """The more severe of two severities."""
    return max(a, b, key=SEVERITIES.index)


def check_name(kind: str, value: str) -> str:
    """A code or source as filed: a non-empty string of bounded length, so one feed cannot bloat
    every row."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise PayloadError(f"a fault {kind} must be a non-empty string of at most {MAX_NAME} "
                           f"characters, not {value!r}")
    return value


def details_json(details: JsonObject | None) -> str:
    """``details`` as stored: sorted JSON, anything unserialisable as text, capped in size.

    ``default=str`` because details come from many feeds (bytes from a card,
    an exception, a path) and a fault must never be lost to a TypeError on
    the way in.
    """
    if details is None:
        details = {}
    if not isinstance(details, dict):
        details = {"value": details}
    text = json.dumps(details, sort_keys=True, default=str, ensure_ascii=False)
    if len(text) > MAX_DETAILS:
        text = json.dumps({"truncated": text[:MAX_DETAILS - 64]}, ensure_ascii=False)
    return text


@dataclass(frozen=True)
class Fault:
    """One fault episode: a condition from its first sighting until it is cleared.

    A condition that repeats while active is the same episode (``count``
    grows, ``last_seen`` moves); once cleared, a recurrence is a new
    episode with a new id, so the history says how often it came back.
    """

    id: int
    code: str
    severity: str
    source: str
    first_seen: str
    last_seen: str
    count: int
    state: str
    details: dict[str, Any]
    cleared_at: str | None = None
    cleared_by: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fault as the API and the exports show it, every field by name."""
        return asdict(self)
