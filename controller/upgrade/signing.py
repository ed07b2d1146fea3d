"""Ed25519 keys for signing update manifests, and the board's set of trusted public keys.

Private keys stay with the service centre (``ledwarden keys generate`` writes
them with mode 0600); the board holds public keys only, one ``NAME.pub`` file
each in its trusted-keys directory, so a stolen board signs nothing.  A key is
named by its id, the first 16 hex digits of the SHA-256 of its raw public
bytes, which is what signatures carry and what error messages show.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controller import jsonin
from controller.errors import ConfigError, UpgradeRejected

ALGORITHM = "ed25519"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate(directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` (private, PKCS#8 PEM, 0600) and ``NAME.pub``; refuse to overwrite."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"{name!r} is not a key name; use letters, digits, '-' and '_'")
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    for p in (private_path, public_path):
        if p.exists():
            raise ConfigError(f"{p} already exists; choose another name or move it away first")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_bytes(public_pem(private.public_key()))
    return private_path, public_path


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key (make one with "
                          f"'ledwarden keys generate')")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a board accepts signatures from, by key id."""

    keys: dict[str, Ed25519PublicKey]

    @classmethod
    def from_directory(cls, directory: Path) -> "TrustedKeys":
        directory = Path(directory)
        keys = {}
        for path in sorted(directory.glob("*.pub")) if directory.is_dir() else []:
            key = load_public(path)
            keys[key_id(key)] = key
        return cls(keys)

    @classmethod
    def of(cls, *keys: Ed25519PublicKey) -> "TrustedKeys":
        return cls({key_id(k): k for k in keys})

    def verify(self, message: bytes, signature_doc: bytes) -> str:
        """Check a ``manifest.sig`` document over ``message``; return the signer's key id.

        Raises :class:`UpgradeRejected` saying whether the signature is missing,
        from a key this board does not trust, or does not match.
        """
        try:
            doc = jsonin.loads(signature_doc)
            kid, algorithm = str(doc["key_id"]), doc["algorithm"]
            signature = base64.b64decode(doc["signature"], validate=True)
        except (ValueError, KeyError, TypeError):
            raise UpgradeRejected("unsigned", "the signature block is not readable; the bundle "
                                  "is damaged or was not made by 'ledwarden bundle'") from None
        if algorithm != ALGORITHM:
            raise UpgradeRejected("bad-signature", f"signature algorithm {algorithm!r} is not "
                                  f"supported (only {ALGORITHM})")
        key = self.keys.get(kid)
        if key is None:
            known = ", ".join(sorted(self.keys)) or "none"
            raise UpgradeRejected("untrusted-key", f"signed by key {kid}, which this board does "
                                  f"not trust (trusted: {known}); sign with a trusted key or "
                                  f"install its public key first")
        try:
            key.verify(signature, message)
        except InvalidSignature:
            raise UpgradeRejected("bad-signature", f"the signature by key {kid} does not match "
                                  f"the manifest: the bundle was altered after signing") from None
        return kid


def sign(message: bytes, private: Ed25519PrivateKey) -> bytes:
    """The ``manifest.sig`` document for ``message``."""
    return json.dumps({"algorithm": ALGORITHM, "key_id": key_id(private.public_key()),
                       "signature": base64.b64encode(private.sign(message)).decode()},
                      sort_keys=True).encode()
