"""Receiving-card firmware packages: one image, its manifest, an Ed25519 signature.

A firmware package is the signed container of :mod:`controller.upgrade.package`
with kind ``card-firmware`` and one payload file, ``firmware.bin``.  Its
manifest says what the image is for and what it must hash to::

    {"kind": "card-firmware", "hw_model": 2561, "version": "2.0.0",
     "size": 262144, "sha256": "…", "notes": "…",
     "format": …, "files": [{"name": "firmware.bin", …}]}

``size`` and ``sha256`` repeat what the ``files`` entry says on purpose: they
are the values the card receives in ``FW_BEGIN`` and checks at
``FW_COMMIT``, and :func:`open_firmware` refuses a package where the two
disagree, so what the card verifies is exactly what the signature covers.

Order of checks (RAUC's): the signature first (``open_package``), then the
manifest's fields, then the image's size and hash, and only then may a caller
put a byte of it on the bus.  Whether a given card may take the image (its
``hw_model``) is checked per card by :meth:`CardFirmware.check_card`, against
the card's own ``PING`` answer.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from controller import jsonin
from controller.cardaddress import hex_address
from controller.errors import ConfigError, UpgradeRejected
from controller.protocol import commands as c
from controller.upgrade import package
from controller.upgrade.signing import TrustedKeys

KIND = "card-firmware"
PAYLOAD = "firmware.bin"
#: The largest image a card bank takes (docs/firmware.md: banks of 512 KiB).  A card
#: with smaller banks refuses a larger image itself, with BAD_VALUE at FW_BEGIN.
MAX_IMAGE = 512 * 1024
#: The spec's largest FW_CHUNK payload: fewest frames, least overhead per byte.
CHUNK_SIZE = 512
_VERSION = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,5})$")


def parse_version(text: str) -> tuple[int, int, int]:
    """``"2.0.13"`` → ``(2, 0, 13)``, within what PING and FW_BEGIN can carry."""
    found = _VERSION.match(str(text).strip())
    if found:
        major, minor, patch = (int(g) for g in found.groups())
        if major <= 255 and minor <= 255 and patch <= 0xFFFF:
            return major, minor, patch
    raise ConfigError(f"firmware version {text!r} must be MAJOR.MINOR.PATCH with major and minor "
                      f"0..255 and patch 0..65535 (what a card reports in PING)")


def version_text(version: tuple[int, int, int]) -> str:
    return "%d.%d.%d" % version


@dataclass(frozen=True)
class CardFirmware:
    """A verified firmware image: signature, manifest and bytes all checked."""

    hw_model: int
    version: tuple[int, int, int]
    image: bytes = field(repr=False)
    sha256: bytes
    key_id: str
    notes: str = ""

    @property
    def version_text(self) -> str:
        return version_text(self.version)

    @property
    def size(self) -> int:
        return len(self.image)

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> int:
        return math.ceil(self.size / chunk_size)

    def chunk(self, index: int, chunk_size: int = CHUNK_SIZE) -> c.FwChunk:
        return c.FwChunk(index, self.image[index * chunk_size:(index + 1) * chunk_size])

    def begin(self, chunk_size: int = CHUNK_SIZE) -> c.FwBegin:
        """The FW_BEGIN request: the same bytes each time, so a card resumes rather than restarts."""
        return c.FwBegin(self.size, self.hw_model, *self.version, chunk_size, self.sha256)

    def check_card(self, address: int, ping: c.PingReply) -> None:
        """Refuse a card of another model before anything is sent to it."""
        if ping.hw_model != self.hw_model:
            raise UpgradeRejected("hw-model", f"card {hex_address(address)} is hw_model "
                                  f"0x{ping.hw_model:04X} but this firmware is for "
                                  f"0x{self.hw_model:04X}: leave the card out (--cards) or use "
                                  f"the firmware for its model")

    def describe(self) -> dict:
        return {"hw_model": self.hw_model, "hw_model_hex": f"0x{self.hw_model:04X}",
                "version": self.version_text, "size": self.size, "sha256": self.sha256.hex(),
                "key_id": self.key_id, "notes": self.notes}


def build_firmware(out: Path, image: bytes | Path, *, hw_model: int, version: str, private_key,
                   notes: str = "") -> dict:
    """Write a signed firmware package for ``image``; returns the manifest written."""
    data = image if isinstance(image, bytes) else Path(image).read_bytes()
    if not 1 <= len(data) <= MAX_IMAGE:
        raise ConfigError(f"a card firmware image must be 1 to {MAX_IMAGE} bytes (one bank); "
                          f"this one is {len(data)}")
    if not 0 <= hw_model <= 0xFFFF:
        raise ConfigError(f"hw_model {hw_model} must be 0..0xFFFF")
    manifest = {"kind": KIND, "hw_model": hw_model, "version": version_text(parse_version(version)),
                "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "notes": notes}
    return package.build(Path(out), manifest, {PAYLOAD: data}, private_key)


def open_firmware(path: Path, trusted: TrustedKeys) -> CardFirmware:
    """Verify a firmware package and return its image; raises :class:`UpgradeRejected`."""
    with package.open_package(Path(path), trusted, kind=KIND) as pkg:
        manifest, key_id = pkg.manifest, pkg.key_id
        hw_model, version, size, digest = _fields(manifest)
        if [e["name"] for e in manifest["files"]] != [PAYLOAD]:
            raise UpgradeRejected("manifest", f"a card firmware package holds exactly {PAYLOAD}; "
                                  f"this one lists {[e['name'] for e in manifest['files']]}")
        image = pkg.read(PAYLOAD, max_size=MAX_IMAGE)
    if len(image) != size or hashlib.sha256(image).hexdigest() != digest:
        raise UpgradeRejected("payload", f"{PAYLOAD} does not match the size and SHA-256 the "
                              f"manifest gives for the card: the package is inconsistent; "
                              f"build it again with 'ledwarden bundle build-firmware'")
    return CardFirmware(hw_model, version, image, bytes.fromhex(digest), key_id,
                        str(manifest.get("notes", "")))


def _fields(manifest: dict) -> tuple[int, tuple[int, int, int], int, str]:
    stated_model, stated_size = manifest.get("hw_model"), manifest.get("size")
    hw_model, size = jsonin.whole_number(stated_model), jsonin.whole_number(stated_size)
    digest = manifest.get("sha256")
    if hw_model is None or not 0 <= hw_model <= 0xFFFF:
        raise UpgradeRejected("manifest", f"the manifest's hw_model {stated_model!r} is not 0..0xFFFF")
    try:
        version = parse_version(manifest.get("version", ""))
    except ConfigError as exc:
        raise UpgradeRejected("manifest", f"the manifest's {exc}") from None
    if size is None or not 1 <= size <= MAX_IMAGE:
        raise UpgradeRejected("oversized", f"the image is {stated_size!r} bytes; a card bank takes 1 to "
                              f"{MAX_IMAGE}")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise UpgradeRejected("manifest", "the manifest's sha256 is not 64 lowercase hex digits")
    return hw_model, version, size, digest
