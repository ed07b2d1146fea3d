"""Taking a package apart and putting a tampered one together, for the refusal tests."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Every entry of a package with its bytes, in order."""
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


def write(path: Path, entries) -> Path:
    """A tar of ``(TarInfo or name, bytes)`` entries; links and other non-files carry no bytes."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            info = tarfile.TarInfo(info) if isinstance(info, str) else info
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path
