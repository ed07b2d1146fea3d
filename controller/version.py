"""The installed software's version, as packaging recorded it."""

from __future__ import annotations

from importlib import metadata


def software_version() -> str:
    try:
        return metadata.version("ledwarden")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
