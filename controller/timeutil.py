"""Timestamps as the project writes them: UTC, to the second, ``2026-12-04T16:37:26Z``.

Jobs, reports, the fault log, tokens and the slots' history all stamp their
records with :func:`utc_text` (or :func:`utc_now`), one spelling everywhere,
so records from different parts sort and compare as text and a reader never
meets two formats for one thing.  File names and ids that carry a time use
:func:`utc_compact` (``20261204T163726Z``: no colons, which some file
systems and URLs refuse).  People read :func:`readable` in reports.

The one exception is the quarterly self-test schedule, which follows the
site's calendar and so keeps local wall-clock time (:func:`local_now`,
:func:`local_text`).
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo

_ISO = "%Y-%m-%dT%H:%M:%SZ"
_COMPACT = "%Y%m%dT%H%M%SZ"


def utc_clock() -> datetime:
    """Now as an aware UTC datetime, for code that does arithmetic before it writes a stamp."""
    return datetime.now(timezone.utc)


def _utc(when: float | datetime | None) -> datetime:
    """An epoch second count, a datetime (a naive one read as local time) or None (now), in UTC."""
    if when is None:
        return utc_clock()
    if isinstance(when, datetime):
        return when.astimezone(timezone.utc)
    return datetime.fromtimestamp(when, timezone.utc)


def utc_text(when: float | datetime | None = None) -> str:
    """``when`` (epoch seconds or a datetime; default now) as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return _utc(when).strftime(_ISO)


def epoch_of(text: str) -> float:
    """A stamp ``utc_text`` wrote (or any ISO 8601 time; naive read as UTC) as epoch seconds, for
    the metrics, whose timestamps are Unix time; :class:`ValueError` if it is not a time."""
    when = datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def utc_now() -> str:
    """Now, in UTC, as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return utc_text()


def utc_compact(when: float | datetime | None = None) -> str:
    """``when`` (default now) as ``YYYYMMDDTHHMMSSZ``, for ids and file names."""
    return _utc(when).strftime(_COMPACT)


def readable(when: datetime) -> str:
    """``2026-11-22 10:03:12 UTC`` for a person; a time without a zone is shown as given, unlabelled.

    Reports write the zone out rather than convert to the site's: the
    controller does not know it, and a signed document must not guess it.
    """
    if when.tzinfo is None:
        return when.strftime("%Y-%m-%d %H:%M:%S")
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def local_now() -> datetime:
    """Now as naive local wall-clock time: the quarterly schedule is kept in the site's calendar."""
    return datetime.now()


def zone_time(epoch: float, tz: tzinfo | None) -> datetime:
    """``epoch`` as wall-clock time in the site's zone ``tz`` (None: the board's own zone), aware:
    a brightness schedule follows the site's day."""
    return datetime.fromtimestamp(epoch, tz)


def local_text(when: datetime) -> str:
    """A local wall-clock time as ``YYYY-MM-DDTHH:MM:SS``, the schedule's stored form."""
    return when.isoformat(timespec="seconds")
