"""The signed container both controller bundles and card firmware packages travel in.

A package is an uncompressed POSIX tar (payloads such as wheels and firmware
images are compressed already, and a plain tar is read front to back, one
entry at a time)::

    manifest.json   the manifest: format, kind, product, version, … and
                    "files": [{"name", "size", "sha256"}, …] in archive order
    manifest.sig    {"algorithm": "ed25519", "key_id": …, "signature": …} over
                    the exact bytes of manifest.json
    <file> …        the payload files, flat names, in the manifest's order

Reading follows RAUC's rule: the signature is checked before anything else in
the package is trusted.  :func:`open_package` reads only the first two tar
members (each size-capped) and verifies the signature, then the manifest's
shape; :meth:`VerifiedPackage.files` streams the payload afterwards, refusing
any entry that is not a plain file with a flat name listed in the manifest, and
any whose size or SHA-256 differ, before a caller may act on it.

Every byte is accounted for, because a package's SHA-256 is what a service
centre publishes and compares: each entry's header must be exactly the bytes
:func:`header` writes for its name and size (ustar, mode 0644, owner 0, time
0; a pax ``path`` record first for a name over 100 bytes), the padding after
its data zeros, and after the last entry come the two zero blocks and the
zeros to the next 10 KiB record that tar writers (ours, Python's, GNU tar)
put at the end, and nothing else.  :class:`_Reader` checks this as the
package is read, so one flipped byte anywhere, a second archive or garbage
appended is refused (``altered``) rather than ignored.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from controller import jsonin
from controller.errors import UpgradeRejected
from controller.upgrade.signing import TrustedKeys, sign

FORMAT = "ledwarden-package/1"
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
MAX_MANIFEST = 256 * 1024
MAX_SIGNATURE = 4096
#: Payload names: flat, no leading dot, nothing a shell or a path join could misread.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def manifest_bytes(manifest: dict) -> bytes:
    """Canonical JSON, so the same manifest always signs to the same bytes."""
    return json.dumps(manifest, sort_keys=True, indent=1).encode() + b"\n"


def build(out: Path, manifest: dict, payload: dict[str, Path | bytes], private_key) -> dict:
    """Write a signed package; the manifest gains ``format`` and the ``files`` list.

    ``payload`` maps each file's name in the package to a path or bytes.
    Returns the manifest as written.
    """
    files = []
    for name, src in payload.items():
        if not SAFE_NAME.match(name):
            raise ValueError(f"{name!r} is not a safe payload name")
        data_hash = (hashlib.sha256(src).hexdigest() if isinstance(src, bytes)
                     else sha256_file(Path(src)))
        size = len(src) if isinstance(src, bytes) else Path(src).stat().st_size
        files.append({"name": name, "size": size, "sha256": data_hash})
    manifest = {**manifest, "format": FORMAT, "files": files}
    body = manifest_bytes(manifest)
    entries = [(MANIFEST, body), (SIGNATURE, sign(body, private_key)), *payload.items()]
    tmp = Path(out).with_name(Path(out).name + ".part")
    with open(tmp, "wb") as f:
        for name, src in entries:
            size = len(src) if isinstance(src, bytes) else Path(src).stat().st_size
            f.write(header(name, size))
            if isinstance(src, bytes):
                f.write(src)
            else:
                with open(src, "rb") as data:
                    copied = _copy(data, f)
                if copied != size:
                    raise ValueError(f"{src} changed size while it was packed")
            f.write(bytes(-size % BLOCK))
        f.write(bytes(end_length(f.tell())))
    tmp.replace(out)
    return manifest


def header(name: str, size: int) -> bytes:
    """The header blocks the package writer puts before an entry, and the only ones it accepts.

    This is what Python's tarfile writes in PAX format for a plain file of this
    name and size with mode 0644, owner 0 and time 0 (so packages built by
    earlier versions, which let tarfile write them, are still accepted); a
    test pins the bytes, so a Python whose tarfile writes otherwise is noticed
    before a board refuses a package built elsewhere.
    """
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def end_length(offset: int) -> int:
    """Bytes of zeros after the last entry's padding at ``offset``: two end blocks, then up to the
    next whole 10 KiB record, as tar writers do."""
    return 2 * BLOCK + (-(offset + 2 * BLOCK) % tarfile.RECORDSIZE)


def _copy(src: BinaryIO, dst: BinaryIO) -> int:
    copied = 0
    while block := src.read(CHUNK):
        dst.write(block)
        copied += len(block)
    return copied


@dataclass
class VerifiedPackage:
    """A package whose manifest is signed by a trusted key; payload still to be checked."""

    path: Path
    manifest: dict
    key_id: str
    _reader: "_Reader"

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    def files(self) -> Iterator[tuple[dict, _HashingReader]]:
        """Yield (manifest entry, reader) per payload file, in order.

        The reader must be consumed fully before the next iteration; after a
        file's bytes are read its size and hash are checked, and a mismatch
        raises :class:`UpgradeRejected` — so a caller writing the bytes to a
        staging place must treat them as untrusted until the next step.  Use
        :meth:`read` or :meth:`verify_all` unless you stream somewhere yourself.
        When the iteration ends, the package's end has been checked too.
        """
        expected = list(self.manifest["files"])
        for entry in expected:
            member = self._reader.next()
            if member is None:
                raise UpgradeRejected("truncated", f"the package ends before {entry['name']}: "
                                      f"it is truncated; download it again")
            if member.name != entry["name"]:
                raise UpgradeRejected("payload", f"the package holds {member.name!r} where the "
                                      f"manifest lists {entry['name']!r}")
            reader = _HashingReader(self._reader.extract(member), entry)
            yield entry, reader
            reader.finish()
        extra = self._reader.next()
        if extra is not None:
            raise UpgradeRejected("payload", f"the package holds {extra.name!r}, which the "
                                  f"signed manifest does not list")

    def verify_all(self) -> int:
        """Read and check every payload file without keeping it; the payload's size in bytes."""
        total = 0
        for entry, reader in self.files():
            while reader.read(CHUNK):
                pass
            total += entry["size"]
        return total

    def read(self, name: str, max_size: int = 64 * 1024 * 1024) -> bytes:
        """The bytes of one (small) payload file, verified; the others are verified too."""
        found = None
        for entry, reader in self.files():
            if entry["name"] == name:
                if entry["size"] > max_size:
                    raise UpgradeRejected("oversized", f"{name} is {entry['size']} bytes, more "
                                          f"than {max_size}")
                found = reader.read()
            else:
                while reader.read(CHUNK):
                    pass
        if found is None:
            raise UpgradeRejected("manifest", f"the package has no {name}")
        return found

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> "VerifiedPackage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _altered(what: str) -> UpgradeRejected:
    return UpgradeRejected("altered", f"{what}: it was altered or is not a ledwarden package; "
                           f"download it again")


class _Reader:
    """The entries of a package front to back, with every byte between them accounted for.

    Python's tarfile parses each header; this class then compares the header's
    bytes with :func:`header` for the name and size it found, checks that the
    padding after the data is zeros, and at the end that exactly the end
    blocks :func:`end_length` gives follow.  tarfile alone ends an archive at
    the first zero block or the first header it cannot read, so it would
    accept anything after that.
    """

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")
        try:
            self._size = os.fstat(self._f.fileno()).st_size
            try:
                self._tar = tarfile.open(fileobj=self._f, mode="r:")
            except (tarfile.TarError, EOFError, OSError):
                raise UpgradeRejected("manifest", f"{path.name} is not a ledwarden package "
                                      f"(not a tar archive)") from None
        except BaseException:
            self._f.close()
            raise
        self._accounted = 0     # bytes checked so far: every entry up to the end of its padding

    def next(self) -> tarfile.TarInfo | None:
        """The next entry, checked; None at a well-formed end, whose every byte is checked."""
        try:
            member = self._tar.next()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UpgradeRejected("truncated", f"the package is damaged or truncated ({exc}); "
                                  f"download it again") from None
        if member is None:
            self._check_end()
            return None
        _check_member(member)
        expected = header(member.name, member.size)
        if (member.offset != self._accounted or member.offset_data - member.offset != len(expected)
                or self._read_at(member.offset, len(expected)) != expected):
            raise _altered(f"the header of {member.name} is not the one 'ledwarden bundle' writes")
        data_end = member.offset_data + member.size
        padding = self._read_at(data_end, -data_end % BLOCK)
        if padding.strip(b"\0"):
            raise _altered(f"the padding after {member.name} is not zeros")
        self._accounted = data_end + len(padding)
        return member

    def extract(self, member: tarfile.TarInfo) -> IO[bytes]:
        data = self._tar.extractfile(member)
        if data is None:        # a link or a directory: the manifest lists only files
            raise _altered(f"{member.name} is not a regular file")
        return data

    def close(self) -> None:
        self._tar.close()
        self._f.close()

    def _check_end(self) -> None:
        end = self._accounted + end_length(self._accounted)
        if self._size > end:
            raise _altered(f"the package has {self._size - end} bytes after its end")
        tail = self._read_at(self._accounted, end - self._accounted)
        if len(tail) < BLOCK and tail.strip(b"\0"):
            raise UpgradeRejected("truncated", "the package ends inside an entry's header: it is "
                                  "truncated; download it again")
        if tail.strip(b"\0"):
            at = self._accounted + len(tail) - len(tail.lstrip(b"\0"))
            raise _altered(f"the package has other bytes where its end should be (at byte {at})")
        if self._size < end:
            raise UpgradeRejected("truncated", f"the package ends {end - self._size} bytes short "
                                  f"of its end: it is truncated; download it again")

    def _read_at(self, offset: int, length: int) -> bytes:
        """Bytes at ``offset`` without moving tarfile's position; fewer at the end of the file."""
        return os.pread(self._f.fileno(), length, offset) if length > 0 else b""


class _HashingReader(io.RawIOBase):
    """Reads one payload member, hashing as it goes; :meth:`finish` checks size and hash."""

    def __init__(self, raw: IO[bytes], entry: dict) -> None:
        self._raw, self._entry = raw, entry
        self._hash, self._size = hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._raw.read(n)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UpgradeRejected("truncated", f"{self._entry['name']} is cut short ({exc}); "
                                  f"the package is truncated") from None
        self._hash.update(data)
        self._size += len(data)
        if self._size > self._entry["size"]:
            raise UpgradeRejected("payload", f"{self._entry['name']} is longer than the manifest says")
        return data

    def finish(self) -> None:
        while self.read(CHUNK):
            pass
        if self._size != self._entry["size"] or self._hash.hexdigest() != self._entry["sha256"]:
            raise UpgradeRejected("payload", f"{self._entry['name']} does not match its SHA-256 "
                                  f"in the signed manifest: the payload was altered or damaged")


def _check_member(member: tarfile.TarInfo) -> None:
    if not member.isreg():
        raise UpgradeRejected("unsafe-path", f"the package entry {member.name!r} is not a plain "
                              f"file (links and devices are refused)")
    if not SAFE_NAME.match(member.name):
        raise UpgradeRejected("unsafe-path", f"the package entry {member.name!r} has a name that "
                              f"could escape the install directory (only flat names are allowed)")


def _read_small(reader: _Reader, name: str, limit: int) -> bytes:
    member = reader.next()
    if member is None:
        reason = "unsigned" if name == SIGNATURE else "truncated"
        raise UpgradeRejected(reason, f"the package has no {name} where it should be: it is "
                              f"{'unsigned' if reason == 'unsigned' else 'not a ledwarden package or truncated'}")
    if member.name != name:
        reason = "unsigned" if name == SIGNATURE else "manifest"
        raise UpgradeRejected(reason, f"expected {name} as entry {1 if name == MANIFEST else 2} "
                              f"of the package, found {member.name!r}"
                              + ("; the package is unsigned" if reason == "unsigned" else ""))
    if member.size > limit:
        raise UpgradeRejected("oversized", f"{name} is {member.size} bytes, more than {limit}")
    try:
        data = reader.extract(member).read()
    except (tarfile.TarError, EOFError, OSError):
        data = b""
    if len(data) != member.size:
        raise UpgradeRejected("truncated", f"{name} is cut short: the package is truncated; "
                              f"download it again")
    return data


def peek_manifest(path: Path) -> dict:
    """The manifest as the package states it, **not verified**: for what a host prints before
    it uploads (the board verifies everything).  :class:`UpgradeRejected` if there is none."""
    path = Path(path)
    try:
        reader = _Reader(path)
    except OSError as exc:
        raise UpgradeRejected("manifest", f"{path.name} cannot be read ({exc.strerror})") from None
    try:
        manifest = jsonin.loads(_read_small(reader, MANIFEST, MAX_MANIFEST))
    except ValueError as exc:
        raise UpgradeRejected("manifest", f"{path.name} has no readable manifest ({exc})") from None
    finally:
        reader.close()
    if not isinstance(manifest, dict):
        raise UpgradeRejected("manifest", f"{path.name}: the manifest is not a JSON object")
    return manifest


def open_package(path: Path, trusted: TrustedKeys, *, kind: str,
                 max_size: int = 1 << 30) -> VerifiedPackage:
    """Open a package and verify its signature, then its manifest's shape.

    Nothing but the first two tar headers and the manifest's bytes are read
    before the signature is verified.  Raises :class:`UpgradeRejected`.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UpgradeRejected("truncated", f"cannot read {path}: {exc.strerror}") from None
    if size > max_size:
        raise UpgradeRejected("oversized", f"{path.name} is {size} bytes; this board accepts at "
                              f"most {max_size}")
    reader = _Reader(path)
    try:
        body = _read_small(reader, MANIFEST, MAX_MANIFEST)
        signature = _read_small(reader, SIGNATURE, MAX_SIGNATURE)
        kid = trusted.verify(body, signature)
        manifest = _parse_manifest(body, kind)
    except BaseException:
        reader.close()
        raise
    return VerifiedPackage(path, manifest, kid, reader)


def _parse_manifest(body: bytes, kind: str) -> dict:
    try:
        manifest = jsonin.loads(body)
    except ValueError as exc:
        raise UpgradeRejected("manifest", f"the signed manifest is not acceptable JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UpgradeRejected("manifest", f"the manifest's format is not {FORMAT}")
    if manifest.get("kind") != kind:
        raise UpgradeRejected("kind", f"this is a {manifest.get('kind')!r} package, not {kind!r}")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and SAFE_NAME.match(e["name"])
            and jsonin.whole_number(e.get("size")) is not None and e["size"] >= 0
            and isinstance(e.get("sha256"), str) and len(e["sha256"]) == 64 for e in files):
        raise UpgradeRejected("unsafe-path", "the manifest's file list is malformed or names a "
                              "file outside the install directory")
    if len({e["name"] for e in files}) != len(files):
        raise UpgradeRejected("manifest", "the manifest lists a file twice")
    return manifest
