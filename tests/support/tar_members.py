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


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1:]


def _first(data: bytes) -> tarfile.TarInfo:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.next()


def _last(data: bytes) -> tarfile.TarInfo:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()[-1]


def _data_end(member: tarfile.TarInfo) -> int:
    return member.offset_data + member.size


#: Byte-level changes that leave every entry's name, size and bytes as they were, so only a
#: reader that accounts for every byte of the file notices them (issue 15, item 16).
UNNOTICED_BY_TAR = {
    "padding": lambda d: _flip(d, _data_end(_first(d)) + 3),
    "first-end-block": lambda d: _flip(d, -(-_data_end(_last(d)) // 512) * 512 + 100),
    "second-end-block": lambda d: _flip(d, -(-_data_end(_last(d)) // 512) * 512 + 512 + 100),
    "record-padding": lambda d: _flip(d, len(d) - 1),
    "checksum-terminator": lambda d: _flip(d, 148 + 7),
    "appended-garbage": lambda d: d + b"garbage\n" * 64,
    "appended-tar": lambda d: d + d,
}
