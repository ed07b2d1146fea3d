"""The controller's certificate: made once, kept, private key private, fingerprint as served."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import socket
import ssl
import stat

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controller.errors import LedwardenError
from controller.service.tls import (
    certificate_fingerprint,
    ensure_certificate,
    server_ssl_context,
)
from controller.tlsfp import fingerprint_of_der
from support.https_server import ServerThread


def served_der(port: int) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


def test_certificate_made_once_then_reused(tmp_path):
    cert, key = ensure_certificate(tmp_path)
    assert (cert, key) == (tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem")
    first = (cert.read_bytes(), key.read_bytes(), certificate_fingerprint(tmp_path))
    # A later start, even with other hostnames, keeps the identity hosts have pinned.
    ensure_certificate(tmp_path, ("wall-7.example", "10.0.0.9"))
    assert (cert.read_bytes(), key.read_bytes(), certificate_fingerprint(tmp_path)) == first


def test_key_is_private_and_certificate_is_a_p256_server_certificate(tmp_path):
    cert_path, key_path = ensure_certificate(tmp_path, ("wall.local", "192.168.4.20", "::1"))
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    assert not list(key_path.parent.glob(".*tmp*")), "temporary files left behind"
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["wall.local"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.168.4.20"),
                                                       ipaddress.ip_address("::1")]
    assert cert.public_key().curve.name == "secp256r1"
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert life.days >= 3650
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert key.public_key() == cert.public_key()


def test_default_hostnames(tmp_path):
    cert = x509.load_pem_x509_certificate(ensure_certificate(tmp_path)[0].read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_loose_key_permissions_are_tightened(tmp_path):
    _, key = ensure_certificate(tmp_path)
    key.chmod(0o644)
    ensure_certificate(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_half_written_pair_is_replaced_with_a_warning(tmp_path, caplog):
    cert, key = ensure_certificate(tmp_path)
    old = certificate_fingerprint(tmp_path)
    cert.unlink()  # as if power failed between writing the key and the certificate
    with caplog.at_level(logging.WARNING, logger="ledwarden.tls"):
        ensure_certificate(tmp_path)
    assert certificate_fingerprint(tmp_path) != old
    assert "NEW TLS certificate" in caplog.text


def test_mismatched_key_is_replaced(tmp_path):
    cert, key = ensure_certificate(tmp_path)
    other = tmp_path / "other"
    ensure_certificate(other)
    key.write_bytes((other / "tls" / "key.pem").read_bytes())
    ensure_certificate(tmp_path)
    c = x509.load_pem_x509_certificate(cert.read_bytes())
    k = serialization.load_pem_private_key(key.read_bytes(), None)
    assert c.public_key() == k.public_key()


def test_fingerprint_format_is_openssh_style():
    der = b"not really a certificate"
    want = base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    assert fingerprint_of_der(der) == "SHA256:" + want
    assert len(fingerprint_of_der(der)) == len("SHA256:") + 43


def test_fingerprint_without_certificate_says_so(tmp_path):
    with pytest.raises(LedwardenError, match="controller run"):
        certificate_fingerprint(tmp_path)


def test_fingerprint_matches_what_a_real_server_serves(tmp_path):
    async def hello(request):
        return web.json_response({"ok": True})
    app = web.Application()
    app.router.add_get("/", hello)
    server = ServerThread(app, server_ssl_context(tmp_path))
    try:
        der = served_der(server.port)
    finally:
        server.stop()
    assert fingerprint_of_der(der) == certificate_fingerprint(tmp_path)


def test_server_context_refuses_tls_1_1(tmp_path):
    ctx = server_ssl_context(tmp_path)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
