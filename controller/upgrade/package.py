"""The signed container both controller bundles and card firmware packages travel in.

A package is an uncompressed POSIX tar (payloads such as wheels and firmware
images are compressed already, and a plain tar can be read front to back
without seeking)::

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
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from controller.errors import UpgradeRejected
from controller.upgrade.signing import TrustedKeys, sign

FORMAT = "ledwarden-package/1"
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
MAX_MANIFEST = 256 * 1024
MAX_SIGNATURE = 4096
#: Payload names: flat, no leading dot, nothing a shell or a path join could misread.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
CHUNK = 1 << 20


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
    tmp = Path(out).with_name(Path(out).name + ".part")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, body)
        _add_bytes(tar, SIGNATURE, sign(body, private_key))
        for name, src in payload.items():
            if isinstance(src, bytes):
                _add_bytes(tar, name, src)
            else:
                info = tarfile.TarInfo(name)
                info.size, info.mode = Path(src).stat().st_size, 0o644
                with open(src, "rb") as f:
                    tar.addfile(info, f)
    tmp.replace(out)
    return manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


@dataclass
class VerifiedPackage:
    """A package whose manifest is signed by a trusted key; payload still to be checked."""

    path: Path
    manifest: dict
    key_id: str
    _tar: tarfile.TarFile
    _fileobj: BinaryIO

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    def files(self) -> Iterator[tuple[dict, BinaryIO]]:
        """Yield (manifest entry, reader) per payload file, in order.

        The reader must be consumed fully before the next iteration; after a
        file's bytes are read its size and hash are checked, and a mismatch
        raises :class:`UpgradeRejected` — so a caller writing the bytes to a
        staging place must treat them as untrusted until the next step.  Use
        :meth:`read` or :meth:`verify_all` unless you stream somewhere yourself.
        """
        expected = list(self.manifest["files"])
        for entry in expected:
            member = self._next_member()
            if member is None:
                raise UpgradeRejected("truncated", f"the package ends before {entry['name']}: "
                                      f"it is truncated; download it again")
            _check_member(member)
            if member.name != entry["name"]:
                raise UpgradeRejected("payload", f"the package holds {member.name!r} where the "
                                      f"manifest lists {entry['name']!r}")
            reader = _HashingReader(self._tar.extractfile(member), entry)
            yield entry, reader
            reader.finish()
        extra = self._next_member()
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
        self._tar.close()
        self._fileobj.close()

    def __enter__(self) -> "VerifiedPackage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next_member(self) -> tarfile.TarInfo | None:
        try:
            return self._tar.next()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UpgradeRejected("truncated", f"the package is damaged or truncated ({exc}); "
                                  f"download it again") from None


class _HashingReader(io.RawIOBase):
    """Reads one payload member, hashing as it goes; :meth:`finish` checks size and hash."""

    def __init__(self, raw: BinaryIO, entry: dict) -> None:
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


def _read_small(tar: tarfile.TarFile, name: str, limit: int) -> bytes:
    try:
        member = tar.next()
    except (tarfile.TarError, EOFError, OSError):
        member = None
    if member is None:
        reason = "unsigned" if name == SIGNATURE else "truncated"
        raise UpgradeRejected(reason, f"the package has no {name} where it should be: it is "
                              f"{'unsigned' if reason == 'unsigned' else 'not a ledwarden package or truncated'}")
    if member.name != name or not member.isreg():
        reason = "unsigned" if name == SIGNATURE else "manifest"
        raise UpgradeRejected(reason, f"expected {name} as entry {1 if name == MANIFEST else 2} "
                              f"of the package, found {member.name!r}"
                              + ("; the package is unsigned" if reason == "unsigned" else ""))
    if member.size > limit:
        raise UpgradeRejected("oversized", f"{name} is {member.size} bytes, more than {limit}")
    data = tar.extractfile(member).read()
    if len(data) != member.size:
        raise UpgradeRejected("truncated", f"{name} is cut short: the package is truncated")
    return data


def peek_manifest(path: Path) -> dict:
    """The manifest as the package states it, **not verified**: for what a host prints before
    it uploads (the board verifies everything).  :class:`UpgradeRejected` if there is none."""
    try:
        with open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
            manifest = json.loads(_read_small(tar, MANIFEST, MAX_MANIFEST))
    except (OSError, ValueError, tarfile.TarError) as exc:
        raise UpgradeRejected("manifest", f"{Path(path).name} has no readable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise UpgradeRejected("manifest", f"{Path(path).name}: the manifest is not a JSON object")
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
    f = open(path, "rb")
    try:
        try:
            tar = tarfile.open(fileobj=f, mode="r|")
        except tarfile.TarError:
            raise UpgradeRejected("manifest", f"{path.name} is not a ledwarden package "
                                  f"(not a tar archive)") from None
        body = _read_small(tar, MANIFEST, MAX_MANIFEST)
        signature = _read_small(tar, SIGNATURE, MAX_SIGNATURE)
        kid = trusted.verify(body, signature)
        manifest = _parse_manifest(body, kind)
    except BaseException:
        f.close()
        raise
    return VerifiedPackage(path, manifest, kid, tar, f)


def _parse_manifest(body: bytes, kind: str) -> dict:
    try:
        manifest = json.loads(body)
    except ValueError:
        raise UpgradeRejected("manifest", "the signed manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UpgradeRejected("manifest", f"the manifest's format is not {FORMAT}")
    if manifest.get("kind") != kind:
        raise UpgradeRejected("kind", f"this is a {manifest.get('kind')!r} package, not {kind!r}")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and SAFE_NAME.match(e["name"])
            and isinstance(e.get("size"), int) and e["size"] >= 0
            and isinstance(e.get("sha256"), str) and len(e["sha256"]) == 64 for e in files):
        raise UpgradeRejected("unsafe-path", "the manifest's file list is malformed or names a "
                              "file outside the install directory")
    if len({e["name"] for e in files}) != len(files):
        raise UpgradeRejected("manifest", "the manifest lists a file twice")
    return manifest
