"""Timestamps as the project writes them: UTC, to the second, ``2026-12-04T16:37:26Z``.

Jobs, reports and the slots' history all stamp their records with
:func:`utc_now`, one spelling everywhere, so records from different parts
sort and compare as text and a reader never meets two formats for one thing.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> str:
    """Now, in UTC, as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
