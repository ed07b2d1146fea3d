"""The fingerprint of a controller's TLS certificate, as both ends spell it.

The board prints it when it starts (``controller/service/tls.py``) and the
laptop pins it on first use and compares it on every connection
(``host/pinning.py``, ``host/client.py``): one function, below both, so the two
can never disagree on the spelling an installer reads aloud.
"""

from __future__ import annotations

import base64
import hashlib


def fingerprint_of_der(der: bytes) -> str:
    """``SHA256:`` + unpadded base64 of SHA-256(der), as OpenSSH prints host keys."""
    digest = hashlib.sha256(der).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")
