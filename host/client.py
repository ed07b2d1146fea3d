"""The host tool's HTTPS client for the controller API, with certificate pinning.

The controller's certificate is self-signed, so the usual CA check cannot
apply; instead :class:`ControllerClient` turns CA verification off and
checks the peer certificate's fingerprint against the pin for
``HOST:PORT`` (``host/pinning.py``) right after the TLS handshake, inside
``connect()`` — before ``http.client`` writes the request line, let alone
the ``Authorization`` header.  A client that sent first and checked later
would hand its bearer token to whoever sits in the middle.

Each request uses a fresh connection.  A handshake costs a few
milliseconds on the board, and it buys a fingerprint check on every
request and no guessing about whether a POST on a connection the server
has meanwhile closed was run or not (a retried POST could start a job
twice).

Failures come back as :class:`~controller.errors.LedwardenError` subclasses
whose messages say what happened and what to check; an HTTP error status
comes back as :class:`ApiError` carrying the server's own sentence from its
``{"error": "..."}`` body.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from controller.errors import LedwardenError
from controller.jsonin import JsonObject
from controller.tlsfp import fingerprint_of_der
from host.pinning import KnownControllers
from host.settings import hostport_of, normalise_url, resolve_target

USER_AGENT = "ledwarden-host/1"


class ControllerUnreachable(LedwardenError, ConnectionError):
    """No conversation with the controller: refused, unresolvable, reset, not HTTPS."""


class ControllerTimeout(LedwardenError, TimeoutError):
    """The controller did not answer within the client's timeout."""


class ApiError(LedwardenError):
    """The controller answered with an HTTP error; ``message`` is its explanation.

    ``retry_after`` is the number of seconds from a ``Retry-After`` header
    (429 when rate-limited, 503 when busy), else None.
    """

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status
        self.message = message
        self.retry_after = retry_after


def print_new_pin(hostport: str, fingerprint: str) -> None:
    """The default notice when a controller is pinned for the first time (cf. SSH's)."""
    print(f"ledwarden: permanently added the certificate of {hostport} ({fingerprint}) to the "
          "known controllers; it should match the fingerprint `ledwarden controller run` "
          "printed on the controller.", file=sys.stderr)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that runs ``check(der)`` after the handshake, before any request."""

    def __init__(self, host: str, port: int, *, timeout: float, context: ssl.SSLContext,
                 check: Callable[[bytes], None]) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._check = check

    def connect(self) -> None:
        super().connect()  # TCP connect and the full TLS handshake
        try:
            cert = self.sock.getpeercert(binary_form=True)
            if cert is None:        # no TLS session or no certificate: nothing to pin
                raise ssl.SSLError("the controller sent no certificate")
            self._check(cert)
        except BaseException:
            self.sock.close()
            self.sock = None
            raise


def _client_context() -> ssl.SSLContext:
    # No CA verification and no hostname check: the pin replaces both, and
    # is stricter than either (one exact certificate, not any a CA signed).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class ControllerClient:
    """Blocking JSON-over-HTTPS calls to one controller.

    ``known`` defaults to the user's ``known_controllers.json``; there is
    no way to switch pinning off.  ``on_new_pin(hostport, fingerprint)`` is
    called when a controller is seen for the first time (default: a notice
    on stderr).
    """

    def __init__(self, url: str, token: str | None, known: KnownControllers | None = None,
                 timeout: float = 30.0,
                 on_new_pin: Callable[[str, str], None] | None = None) -> None:
        self.url = normalise_url(url)
        self.hostport = hostport_of(self.url)
        parts = urlsplit(self.url)
        assert parts.hostname is not None and parts.port is not None  # normalise_url checked
        self._host, self._port = parts.hostname, parts.port
        self.token = token
        self.known = known if known is not None else KnownControllers()
        self.timeout = timeout
        self.on_new_pin = on_new_pin or print_new_pin
        self._context = _client_context()

    def __repr__(self) -> str:  # no token in reprs
        return f"ControllerClient({self.url!r})"

    # -------------------------------------------------------------- public calls

    def get(self, path: str, **params: Any) -> Any:
        return self._json(self._request("GET", self._with_query(path, params)))

    def post(self, path: str, body: JsonObject | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {} if body is None else {"Content-Type": "application/json"}
        return self._json(self._request("POST", path, data, headers))

    def delete(self, path: str) -> Any:
        return self._json(self._request("DELETE", path))

    def get_text(self, path: str) -> str:
        resp, body = self._request("GET", path, accept="text/html, text/plain, */*")
        charset = resp.headers.get_content_charset() or "utf-8"
        return body.decode(charset, errors="replace")

    def post_bytes(self, path: str, data: bytes, **params: Any) -> Any:
        """POST a file as the raw body (a calibration import), with query ``params``."""
        return self._json(self._request("POST", self._with_query(path, params), data,
                                        {"Content-Type": "application/octet-stream"}))

    def put_bytes(self, path: str, data: bytes, headers: dict[str, str]) -> Any:
        return self._json(self._request("PUT", path, data,
                                        {"Content-Type": "application/octet-stream", **headers}))

    # -------------------------------------------------------------- machinery

    @staticmethod
    def _with_query(path: str, params: dict[str, Any]) -> str:
        query = {k: (str(v).lower() if isinstance(v, bool) else v)
                 for k, v in params.items() if v is not None}
        return f"{path}?{urlencode(query)}" if query else path

    def _check_pin(self, der: bytes | None) -> None:
        if not der:
            raise ControllerUnreachable(f"the controller at {self.url} sent no certificate")
        fingerprint = fingerprint_of_der(der)
        if self.known.check_or_remember(self.hostport, fingerprint):
            self.on_new_pin(self.hostport, fingerprint)

    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None, accept: str = "application/json",
                 ) -> tuple[http.client.HTTPResponse, bytes]:
        if not path.startswith("/"):
            raise ValueError(f"API paths start with '/': {path!r}")
        all_headers = {"User-Agent": USER_AGENT, "Accept": accept, **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        conn = _PinnedHTTPSConnection(self._host, self._port, timeout=self.timeout,
                                      context=self._context, check=self._check_pin)
        where = f"the controller at {self.url}"
        try:
            conn.request(method, path, body=body, headers=all_headers)
            resp = conn.getresponse()
            data = resp.read()
        except LedwardenError:
            raise
        except ConnectionRefusedError:
            raise ControllerUnreachable(f"cannot reach {where}: connection refused — is "
                                        "`ledwarden controller run` running, and is that its "
                                        "port?") from None
        except socket.gaierror as exc:
            raise ControllerUnreachable(f"cannot reach {where}: cannot resolve "
                                        f"{self._host!r} ({exc.strerror})") from None
        except TimeoutError:
            raise ControllerTimeout(f"{where} did not answer within {self.timeout:g} s: is the "
                                    "address right and the board up?") from None
        except ssl.SSLError as exc:
            raise ControllerUnreachable(f"TLS with {where} failed ({exc.reason or exc}): is that "
                                        "the controller's HTTPS port?") from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise ControllerUnreachable(f"{where} closed the connection "
                                        f"({exc.__class__.__name__}: {exc}); try again, and "
                                        "check the controller's log if it persists") from None
        except OSError as exc:
            raise ControllerUnreachable(f"cannot reach {where}: "
                                        f"{exc.strerror or exc}") from None
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            raise self._api_error(resp, data)
        return resp, data

    @staticmethod
    def _api_error(resp: http.client.HTTPResponse, data: bytes) -> ApiError:
        message = None
        try:
            doc = json.loads(data)
            if isinstance(doc, dict) and isinstance(doc.get("error"), str):
                message = doc["error"]
        except ValueError:
            pass
        if message is None:
            text = data.decode("utf-8", errors="replace").strip()
            message = resp.reason + (f": {text[:200]}" if text else "")
        retry = resp.headers.get("Retry-After")
        return ApiError(resp.status, message,
                        int(retry) if retry and retry.isdigit() else None)

    def _json(self, answer: tuple[http.client.HTTPResponse, bytes]) -> Any:
        resp, data = answer
        if resp.status == 204 or not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise LedwardenError(f"the controller at {self.url} answered {resp.status} with "
                                 "something that is not JSON") from None


def client_from_args(args: argparse.Namespace, *, require_token: bool = True,
                     **kwargs: Any) -> ControllerClient:
    """A client for the target named by ``add_target_arguments`` options."""
    target = resolve_target(getattr(args, "controller", None), getattr(args, "profile", None),
                            getattr(args, "token_file", None), require_token=require_token)
    return ControllerClient(target.url, target.token, **kwargs)
