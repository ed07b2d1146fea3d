"""The controller's TLS identity: one self-signed certificate, made at first start.

A controller beside a video wall has no public name and no CA to vouch for
it, so it makes its own certificate the first time it starts and keeps it in
``STATE/tls/`` for good.  Trust comes from the host tool pinning the
certificate's fingerprint on first use (``host/pinning.py``), the way SSH
pins host keys — which is why the certificate must never change behind an
installer's back: later starts reuse the files, and a new hostname or a new
IP address does *not* trigger a new certificate (the client checks the
fingerprint, not the names in it).

The key is EC P-256: every TLS client handles it, and generating it on a
Pi takes milliseconds where RSA takes seconds.  The fingerprint format is
OpenSSH's (``SHA256:`` + unpadded base64 of the SHA-256 of the DER), so an
installer reading two fingerprints aloud is comparing a familiar thing.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controller.errors import LedwardenError
from controller.timeutil import utc_clock
from controller.tlsfp import fingerprint_of_der

log = logging.getLogger("ledwarden.tls")

DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1")
#: Ten years: the board outlives any sensible rotation schedule, and a pinned
#: certificate that expires would only teach installers to forget pins.
VALIDITY = dt.timedelta(days=3650)


def _paths(state_dir: Path) -> tuple[Path, Path]:
    tls_dir = Path(state_dir) / "tls"
    return tls_dir / "cert.pem", tls_dir / "key.pem"


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` so that ``path`` is either absent, old or complete — never half.

    The file is created with its final mode (no window where a key is
    world-readable), flushed to the card, then renamed over the target; the
    directory is synced so the rename survives a power cut.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _san(hostnames: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for name in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(names)


def _generate(hostnames: Sequence[str]) -> tuple[bytes, bytes]:
    """A fresh key and a self-signed server certificate naming ``hostnames``; PEM bytes."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ledwarden"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"ledwarden controller {hostnames[0]}"[:64]),
    ])
    # A day of slack: a board without a battery-backed clock may start a little
    # behind the laptop that connects to it.
    start = utc_clock() - dt.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(_san(hostnames), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _usable(cert_path: Path, key_path: Path) -> bool:
    """True if both files load and the key belongs to the certificate."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        log.warning("TLS files in %s cannot be used (%s)", cert_path.parent, exc)
        return False
    same = (cert.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
            == key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    if not same:
        log.warning("%s does not belong to %s", key_path, cert_path)
    return same


def ensure_certificate(state_dir: Path,
                       hostnames: Sequence[str] = DEFAULT_HOSTNAMES) -> tuple[Path, Path]:
    """Return ``(cert.pem, key.pem)`` under ``state_dir/tls``, creating them on first start.

    Existing usable files are kept whatever ``hostnames`` says now, so pins
    stay valid.  Only a missing, unreadable or mismatched pair is replaced —
    with a warning, because every host that pinned the old certificate will
    refuse the new one until an installer confirms it.  The key is written
    before the certificate, so a power cut in between leaves no certificate
    and the next start simply tries again.
    """
    if not hostnames:
        raise ValueError("the certificate needs at least one hostname or IP address")
    cert_path, key_path = _paths(state_dir)
    if cert_path.exists() and key_path.exists() and _usable(cert_path, key_path):
        if key_path.stat().st_mode & 0o077:
            log.warning("%s was readable by others; restricting it to the owner", key_path)
            key_path.chmod(0o600)
        return cert_path, key_path
    replacing = cert_path.exists() or key_path.exists()
    cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_pem, key_pem = _generate(list(hostnames))
    _write_atomic(key_path, key_pem, 0o600)
    _write_atomic(cert_path, cert_pem, 0o644)
    fingerprint = certificate_fingerprint(state_dir)
    if replacing:
        log.warning("made a NEW TLS certificate %s: hosts that knew the old one will refuse "
                    "this controller until told to forget it", fingerprint)
    else:
        log.info("made the controller's TLS certificate %s for %s",
                 fingerprint, ", ".join(hostnames))
    return cert_path, key_path


def server_ssl_context(state_dir: Path,
                       hostnames: Sequence[str] = DEFAULT_HOSTNAMES) -> ssl.SSLContext:
    """A TLS 1.2+ server context with the controller's certificate (made if missing)."""
    cert_path, key_path = ensure_certificate(state_dir, hostnames)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def certificate_fingerprint(state_dir: Path) -> str:
    """The fingerprint of the certificate in ``state_dir``, for ``controller run`` to print.

    Reads only: it does not create a certificate, so it cannot mint an
    identity as a side effect of someone asking what the identity is.
    """
    cert_path, _ = _paths(state_dir)
    try:
        pem = cert_path.read_bytes()
    except FileNotFoundError:
        raise LedwardenError(f"no TLS certificate in {cert_path.parent}: the controller makes "
                             "one at first start (`ledwarden controller run`)") from None
    cert = x509.load_pem_x509_certificate(pem)
    return fingerprint_of_der(cert.public_bytes(serialization.Encoding.DER))
