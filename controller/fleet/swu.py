"""SWUpdate ``.swu`` containers around a signed ledwarden package: wrap (host, tests) and unwrap (board).

Why this exists: gooseBit, the small DDI server the tests run, accepts only
SWUpdate ``.swu`` or RAUC uploads; it reads the version and the hardware
compatibility from the ``sw-description`` at the head of a ``.swu``.  So a
ledwarden package travels through it wrapped in a ``.swu``: a cpio "newc"
archive holding ``sw-description`` first, then the package as one file.

The container carries no trust.  The board unwraps it and then checks the
inner package's own signature with its trusted keys, exactly as a hand upload
is checked; ``sw-description`` is never believed (it is not signed), and the
SHA-1 gooseBit sends only tells a damaged download apart.

No well-kept cpio library exists for Python (``cpiofile`` was last released in
2011, libarchive needs a C library the board does not ship), so this is a
small reader of the one format SWUpdate writes: "newc" (magic ``070701``) or
its CRC variant (``070702``): a 110-byte ASCII-hex header, the name with its
NUL padded to 4 bytes, the data padded to 4 bytes, ending with ``TRAILER!!!``.
Anything else — another cpio format, a link or device, a path with a
directory, a second package, bytes after the trailer, a size running past the
end — is refused with one sentence, before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path

from controller.errors import LedwardenError

MAGIC_NEWC, MAGIC_CRC = b"070701", b"070702"
HEADER = 110
TRAILER = "TRAILER!!!"
DESCRIPTION = "sw-description"
#: A regular file in cpio's mode bits (S_IFREG).
S_IFMT, S_IFREG = 0o170000, 0o100000
#: The package's name inside the container: a plain file name, no directories.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
#: A sw-description larger than this is not one this project writes.
MAX_DESCRIPTION = 64 * 1024


class SwuError(LedwardenError):
    """A ``.swu`` container that is not the simple one ledwarden writes."""


def is_swu(path: Path) -> bool:
    """True when the file starts like a cpio newc archive (a ledwarden package is a tar)."""
    with open(path, "rb") as f:
        return f.read(6) in (MAGIC_NEWC, MAGIC_CRC)


def description(version: str, hardware: str, package_name: str) -> str:
    """The libconfig ``sw-description`` gooseBit reads: version, hardware compatibility, the file."""
    for what, value in (("version", version), ("hardware", hardware), ("package name", package_name)):
        if not re.fullmatch(r"[A-Za-z0-9._+/-]{1,128}", value):
            raise SwuError(f"the {what} {value!r} cannot go into sw-description; use letters, "
                           f"digits and . _ + / - only")
    return ("software =\n{\n"
            f'  version = "{version}";\n'
            f'  hardware-compatibility = [ "{hardware}" ];\n'
            f'  files: ( {{ filename = "{package_name}"; path = "/var/lib/ledwarden/{package_name}"; }} );\n'
            "};\n")


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def _entry(name: str, data: bytes, ino: int, mode: int = S_IFREG | 0o644) -> bytes:
    raw = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0)
    head = MAGIC_NEWC + b"".join(b"%08X" % v for v in fields)
    return head + raw + b"\0" * _pad(HEADER + len(raw)) + data + b"\0" * _pad(len(data))


def wrap(package: Path, out: Path, *, version: str, hardware: str) -> Path:
    """Write ``out``: a .swu with ``sw-description`` first and ``package`` as its one file."""
    name = package.name
    if not NAME.fullmatch(name):
        raise SwuError(f"the package name {name!r} is not a plain file name; rename it")
    desc = description(version, hardware, name).encode()
    body = _entry(DESCRIPTION, desc, 1) + _entry(name, package.read_bytes(), 2) + \
        _entry(TRAILER, b"", 0, mode=0)
    out.write_bytes(body)
    return out


def _read_entries(blob: bytes) -> list[tuple[str, int, bytes]]:
    """(name, mode, data) of every entry up to the trailer, each header checked."""
    entries: list[tuple[str, int, bytes]] = []
    pos = 0
    while True:
        head = blob[pos:pos + HEADER]
        if len(head) < HEADER:
            raise SwuError(f"the .swu ends inside an entry header at byte {pos}; the download or "
                           f"the container is damaged")
        magic = head[:6]
        if magic not in (MAGIC_NEWC, MAGIC_CRC):
            raise SwuError(f"the .swu entry at byte {pos} is not a cpio 'newc' header; SWUpdate "
                           f"containers use newc only")
        try:
            fields = [int(head[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise SwuError(f"the .swu entry header at byte {pos} holds non-hex digits") from None
        mode, filesize, namesize, check = fields[1], fields[6], fields[11], fields[12]
        name_at = pos + HEADER
        data_at = name_at + namesize + _pad(HEADER + namesize)
        end = data_at + filesize
        if namesize < 2 or end > len(blob):
            raise SwuError(f"the .swu entry at byte {pos} claims more bytes than the file holds")
        raw = blob[name_at:name_at + namesize]
        if raw[-1:] != b"\0" or b"\0" in raw[:-1]:
            raise SwuError(f"the .swu entry name at byte {pos} is not one NUL-terminated name")
        name = raw[:-1].decode("utf-8", "replace")
        data = blob[data_at:end]
        pos = end + _pad(filesize)
        if name == TRAILER:
            if blob[pos:].strip(b"\0"):
                raise SwuError("the .swu has bytes after its trailer; refusing a container that "
                               "hides data")
            return entries
        if magic == MAGIC_CRC and sum(data) & 0xFFFFFFFF != check:
            raise SwuError(f"the .swu entry {name!r} fails its cpio checksum; the container is "
                           f"damaged")
        entries.append((name, mode, data))


def unwrap(swu: Path, dest: Path) -> Path:
    """Check ``swu`` is ``sw-description`` plus exactly one regular file; write that file to
    ``dest`` and return it.  The result still has to pass the package signature check."""
    blob = swu.read_bytes()
    if blob[:6] not in (MAGIC_NEWC, MAGIC_CRC):
        raise SwuError(f"{swu.name} is not a cpio 'newc' archive, so not a .swu container")
    entries = _read_entries(blob)
    if not entries or entries[0][0] != DESCRIPTION:
        raise SwuError("the .swu does not start with sw-description, as SWUpdate requires")
    if len(entries[0][2]) > MAX_DESCRIPTION:
        raise SwuError("the .swu's sw-description is larger than 64 KiB; not a ledwarden container")
    rest = entries[1:]
    if len(rest) != 1:
        raise SwuError(f"the .swu holds {len(rest)} files besides sw-description; a ledwarden "
                       f"container holds exactly one package")
    name, mode, data = rest[0]
    if mode & S_IFMT != S_IFREG:
        raise SwuError(f"the .swu member {name!r} is not a regular file; links and devices are "
                       f"refused")
    if not NAME.fullmatch(name):
        raise SwuError(f"the .swu member name {name!r} is not a plain file name; refused")
    dest.write_bytes(data)
    return dest
