"""The host's HTTPS client against real TLS servers: pinning, errors, where the token comes from."""

from __future__ import annotations

import os
import socket
import ssl
import threading

import pytest
from aiohttp import web

from controller.errors import ConfigError, LedwardenError
from controller.service.auth import TOKEN, RateLimiter, TokenStore, auth_middleware, public, requires
from controller.service.tls import certificate_fingerprint, server_ssl_context
from host.client import (
    ApiError,
    ControllerClient,
    ControllerTimeout,
    ControllerUnreachable,
    client_from_args,
)
from host.pinning import KnownControllers, PinMismatch
from host.settings import Target, add_target_arguments, normalise_url, resolve_target
from support.https_server import ServerThread


# ------------------------------------------------------------------ servers

def make_app(store: TokenStore, seen: list[tuple[str, str, str | None]]) -> web.Application:
    """A small API behind the real auth middleware; ``seen`` logs every request that arrives."""

    @web.middleware
    async def record(request, handler):
        seen.append((request.method, request.path_qs, request.headers.get("Authorization")))
        return await handler(request)

    @requires("viewer")
    async def status(request):
        return web.json_response({"query": dict(request.query), "who": request[TOKEN].name})

    @requires("installer")
    async def echo(request):
        return web.json_response({"got": await request.json()})

    @requires("service")
    async def remove(request):
        return web.Response(status=204)

    @requires("service")
    async def upload(request):
        return web.json_response({"bytes": len(await request.read()),
                                  "range": request.headers.get("Content-Range"),
                                  "type": request.headers.get("Content-Type")})

    @requires("viewer")
    async def report(request):
        return web.Response(text="<h1>Wall 7 — OK</h1>", content_type="text/html")

    @requires("viewer")
    async def broken(request):
        return web.Response(status=502, text="upstream fell over")

    @public
    async def health(request):
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[record, auth_middleware(store, RateLimiter())])
    app.router.add_get("/api/v1/status", status)
    app.router.add_post("/api/v1/echo", echo)
    app.router.add_delete("/api/v1/thing", remove)
    app.router.add_put("/api/v1/upload", upload)
    app.router.add_get("/api/v1/report", report)
    app.router.add_get("/api/v1/broken", broken)
    app.router.add_get("/api/v1/health", health)
    return app


class Controller:
    """A controller-like server with its own state dir (certificate, tokens)."""

    def __init__(self, state, port: int = 0) -> None:
        self.state = state
        self.store = TokenStore(state / "tokens.db")
        self.seen: list[tuple[str, str, str | None]] = []
        self.server = ServerThread(make_app(self.store, self.seen), server_ssl_context(state), port)
        self.port = self.server.port
        self.url = f"https://127.0.0.1:{self.port}"
        self.fingerprint = certificate_fingerprint(state)


@pytest.fixture
def controllers(tmp_path):
    made: list[Controller] = []

    def start(name: str = "a", port: int = 0) -> Controller:
        c = Controller(tmp_path / name, port)
        made.append(c)
        return c
    yield start
    for c in made:
        c.server.stop()


@pytest.fixture
def known(tmp_path):
    return KnownControllers(tmp_path / "config" / "known_controllers.json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ pinning

def test_first_use_pins_and_prints_notice(controllers, known, capsys):
    ctl = controllers()
    token = ctl.store.create("alice", "viewer")
    client = ControllerClient(ctl.url, token, known=known)
    assert client.get("/api/v1/status")["who"] == "alice"
    err = capsys.readouterr().err
    assert f"permanently added the certificate of 127.0.0.1:{ctl.port}" in err
    assert ctl.fingerprint in err
    assert known.load() == {f"127.0.0.1:{ctl.port}": ctl.fingerprint}

    assert client.get("/api/v1/status")["who"] == "alice"
    assert capsys.readouterr().err == ""  # second time: silent


def test_on_new_pin_callback(controllers, known):
    ctl = controllers()
    pinned = []
    ControllerClient(ctl.url, None, known=known,
                     on_new_pin=lambda hp, fp: pinned.append((hp, fp))).get("/api/v1/health")
    assert pinned == [(f"127.0.0.1:{ctl.port}", ctl.fingerprint)]


def test_changed_certificate_refused_before_any_request(controllers, known):
    first = controllers("first")
    token = first.store.create("alice", "service")
    ControllerClient(first.url, token, known=known, on_new_pin=lambda *a: None).get("/api/v1/health")
    port = first.port
    first.server.stop()

    # Same address, reinstalled (or impersonated): a new state dir, a new certificate.
    second = controllers("second", port=port)
    second_token = second.store.create("alice", "service")
    assert second.fingerprint != first.fingerprint
    client = ControllerClient(second.url, second_token, known=known)
    for call in (lambda: client.get("/api/v1/status"),
                 lambda: client.post("/api/v1/echo", {"x": 1}),
                 lambda: client.put_bytes("/api/v1/upload", b"123", {})):
        with pytest.raises(PinMismatch) as err:
            call()
        message = str(err.value)
        assert first.fingerprint in message and second.fingerprint in message
        assert f"ledwarden controller forget 127.0.0.1:{port}" in message
        assert "attack" in message and "reinstalled" in message
    assert second.seen == []  # not one request reached the server
    assert known.load() == {f"127.0.0.1:{port}": first.fingerprint}  # pin unchanged

    # After the installer has checked and forgotten the old pin, it works again.
    assert known.forget(f"127.0.0.1:{port}")
    assert client.get("/api/v1/status")["who"] == "alice"


class RawTLSServer:
    """Accepts one TLS connection and records every byte the client sends after the handshake."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.handshakes = 0
        self.thread = threading.Thread(target=self._serve, args=(ctx,), daemon=True)
        self.thread.start()

    def _serve(self, ctx: ssl.SSLContext) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(5)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            self.handshakes += 1
            try:
                while b"\r\n\r\n" not in self.received:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    self.received += chunk
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
            except (OSError, ssl.SSLError):
                return

    def join(self) -> None:
        self.thread.join(10)
        self.sock.close()


def test_token_is_never_sent_before_the_pin_check(tmp_path, known):
    ctx_a = server_ssl_context(tmp_path / "a")
    ctx_b = server_ssl_context(tmp_path / "b")
    server = RawTLSServer(ctx_a)
    url = f"https://127.0.0.1:{server.port}"
    known.check_or_remember(f"127.0.0.1:{server.port}", certificate_fingerprint(tmp_path / "b"))
    with pytest.raises(PinMismatch):
        ControllerClient(url, "lw_secret-token", known=known).get("/api/v1/status")
    server.join()
    assert server.handshakes == 1 and server.received == b""

    # With the right pin the same client does send it — the test can see a token.
    server = RawTLSServer(ctx_b)
    url = f"https://127.0.0.1:{server.port}"
    known.check_or_remember(f"127.0.0.1:{server.port}", certificate_fingerprint(tmp_path / "b"))
    assert ControllerClient(url, "lw_secret-token", known=known).get("/api/v1/status") == {}
    server.join()
    assert b"Authorization: Bearer lw_secret-token" in server.received


# ------------------------------------------------------------------ calls and errors

@pytest.fixture
def ctl(controllers, known):
    c = controllers()
    known.check_or_remember(f"127.0.0.1:{c.port}", c.fingerprint)
    return c


def client_for(ctl, known, role="service") -> ControllerClient:
    return ControllerClient(ctl.url, ctl.store.create(f"{role}-{len(ctl.store.list())}", role),
                            known=known)


def test_get_post_delete_put_and_text(ctl, known):
    client = client_for(ctl, known)
    assert client.get("/api/v1/status", since=3, all=True, skip=None)["query"] == {
        "since": "3", "all": "true"}
    assert client.post("/api/v1/echo", {"brightness": 0.5}) == {"got": {"brightness": 0.5}}
    assert client.delete("/api/v1/thing") is None
    assert client.put_bytes("/api/v1/upload", b"x" * 1000,
                            {"Content-Range": "bytes 0-999/5000"}) == {
        "bytes": 1000, "range": "bytes 0-999/5000", "type": "application/octet-stream"}
    assert client.get_text("/api/v1/report") == "<h1>Wall 7 — OK</h1>"
    assert all(auth and auth.startswith("Bearer lw_") for _, _, auth in ctl.seen)


def test_api_error_carries_the_servers_message(ctl, known):
    client = client_for(ctl, known, "installer")
    with pytest.raises(ApiError) as err:
        client.delete("/api/v1/thing")
    assert err.value.status == 403
    assert err.value.message.startswith("this needs the 'service' role; your token 'installer-")
    assert str(err.value).endswith("(HTTP 403)")
    assert isinstance(err.value, LedwardenError)


def test_api_error_without_a_token_and_for_non_json_bodies(ctl, known):
    with pytest.raises(ApiError) as err:
        ControllerClient(ctl.url, None, known=known).get("/api/v1/status")
    assert err.value.status == 401 and "needs a token" in err.value.message
    with pytest.raises(ApiError) as err:
        client_for(ctl, known, "viewer").get("/api/v1/broken")
    assert err.value.status == 502 and "upstream fell over" in err.value.message


def test_rate_limited_client_sees_retry_after(ctl, known):
    client = ControllerClient(ctl.url, "lw_wrong", known=known)
    for _ in range(5):
        with pytest.raises(ApiError) as err:
            client.get("/api/v1/status")
        assert err.value.status == 401
    with pytest.raises(ApiError) as err:
        client.get("/api/v1/status")
    assert (err.value.status, err.value.retry_after) == (429, 60)


def test_connection_refused_says_what_to_check(known):
    url = f"https://127.0.0.1:{free_port()}"
    with pytest.raises(ControllerUnreachable) as err:
        ControllerClient(url, "lw_x", known=known).get("/api/v1/status")
    message = str(err.value)
    assert message.startswith(f"cannot reach the controller at {url}: connection refused")
    assert "ledwarden controller run" in message
    assert isinstance(err.value, ConnectionError)


def test_plain_http_port_is_a_tls_error(known):
    sock = socket.create_server(("127.0.0.1", 0))

    def answer_http():
        conn, _ = sock.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()
    t = threading.Thread(target=answer_http, daemon=True)
    t.start()
    url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(ControllerUnreachable, match="TLS with the controller .* HTTPS port"):
        ControllerClient(url, "lw_x", known=known, timeout=5).get("/api/v1/status")
    t.join(5)
    sock.close()
    assert known.load() == {}


def test_silent_server_times_out(known):
    sock = socket.create_server(("127.0.0.1", 0))  # listens, never handshakes
    url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with pytest.raises(ControllerTimeout, match="did not answer within 0.3 s"):
            ControllerClient(url, "lw_x", known=known, timeout=0.3).get("/api/v1/status")
    finally:
        sock.close()


def test_unresolvable_host(known):
    with pytest.raises(ControllerUnreachable, match="cannot resolve"):
        ControllerClient("https://no-such-host.invalid:8443", None, known=known).get("/x")


def test_repr_hides_the_token(known):
    client = ControllerClient("https://127.0.0.1:8443", "lw_topsecret", known=known)
    assert "topsecret" not in repr(client)


# ------------------------------------------------------------------ settings

@pytest.fixture
def config(tmp_path, monkeypatch):
    d = tmp_path / "config"
    d.mkdir(exist_ok=True)
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(d))
    monkeypatch.delenv("LEDWARDEN_TOKEN", raising=False)
    return d


def write_token(path, text="lw_from_file"):
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def test_controller_with_token_file(config, tmp_path):
    f = write_token(tmp_path / "t")
    target = resolve_target("https://Wall-7.local:8443/", None, str(f))
    assert target == Target("https://wall-7.local:8443", "lw_from_file",
                            f"--controller, token from --token-file {f}")
    assert target.hostport == "wall-7.local:8443"
    assert "lw_from_file" not in repr(target)


def test_token_precedence(config, tmp_path, monkeypatch):
    (config / "config.toml").write_text(
        '[profiles.hall]\ncontroller = "https://10.0.0.5:8443"\ntoken_file = "hall.token"\n')
    write_token(config / "hall.token", "lw_profile")
    assert resolve_target(None, "hall", None).token == "lw_profile"
    monkeypatch.setenv("LEDWARDEN_TOKEN", "lw_env")
    assert resolve_target(None, "hall", None).token == "lw_env"
    assert "$LEDWARDEN_TOKEN" in resolve_target(None, "hall", None).source
    f = write_token(tmp_path / "cli.token", "lw_cli")
    assert resolve_target(None, "hall", str(f)).token == "lw_cli"
    assert resolve_target(None, "hall", str(f)).url == "https://10.0.0.5:8443"


def test_default_profile(config):
    (config / "config.toml").write_text(
        'default_profile = "b"\n[profiles.a]\ncontroller = "https://a:1"\n'
        '[profiles.b]\ncontroller = "https://[::1]:8443"\n')
    target = resolve_target(None, None, None, require_token=False)
    assert (target.url, target.token, target.hostport) == ("https://[::1]:8443", None, "[::1]:8443")


def test_no_token_says_how_to_provide_one(config):
    with pytest.raises(LedwardenError) as err:
        resolve_target("https://10.0.0.5:8443", None, None)
    message = str(err.value)
    assert "--token-file" in message and "LEDWARDEN_TOKEN" in message and "token_file" in message


def test_no_controller_and_unknown_profile(config):
    with pytest.raises(LedwardenError, match="which controller"):
        resolve_target(None, None, None)
    (config / "config.toml").write_text('[profiles.a]\ncontroller = "https://a:1"\n')
    with pytest.raises(ConfigError, match=r"no profile 'b' .*profiles: a"):
        resolve_target(None, "b", None)
    with pytest.raises(LedwardenError, match="not both"):
        resolve_target("https://x:1", "a", None)


def test_bad_config_and_token_files(config, tmp_path):
    (config / "config.toml").write_text("[profiles.a\n")
    with pytest.raises(ConfigError, match="config.toml"):
        resolve_target("https://x:1", None, None, require_token=False)
    (config / "config.toml").unlink()
    with pytest.raises(LedwardenError, match="does not exist"):
        resolve_target("https://x:1", None, str(tmp_path / "missing"))
    with pytest.raises(LedwardenError, match="is empty"):
        resolve_target("https://x:1", None, str(write_token(tmp_path / "empty", "")))
    with pytest.raises(LedwardenError, match="does not hold a token"):
        resolve_target("https://x:1", None, str(write_token(tmp_path / "two", "lw_a\nlw_b")))


def test_readable_token_file_warns(config, tmp_path, caplog):
    f = write_token(tmp_path / "t")
    os.chmod(f, 0o644)
    resolve_target("https://x:1", None, str(f))
    assert "chmod 600" in caplog.text


@pytest.mark.parametrize("url,error", [
    ("http://10.0.0.5:8443", "only speaks HTTPS"),
    ("https://10.0.0.5", "no port"),
    ("10.0.0.5:8443", "not a controller address"),
    ("https://10.0.0.5:8443/api", "no path"),
    ("https://10.0.0.5:99999", "not a controller address"),
])
def test_bad_urls(url, error):
    with pytest.raises(ConfigError, match=error):
        normalise_url(url)


def test_there_is_no_token_option(config, tmp_path):
    import argparse
    parser = argparse.ArgumentParser()
    add_target_arguments(parser)
    assert not any(a.dest == "token" for a in parser._actions)
    # argparse would read `--token lw_…` as `--token-file lw_…`: refused without echoing it
    args = parser.parse_args(["--controller", "https://h:1", "--token", "lw_typed_secret"])
    with pytest.raises(LedwardenError, match="looks like a token") as err:
        resolve_target(args.controller, args.profile, args.token_file)
    assert "lw_typed_secret" not in str(err.value)
    f = write_token(tmp_path / "t")
    args = parser.parse_args(["--controller", "https://127.0.0.1:8443", "--token-file", str(f)])
    client = client_from_args(args, known=KnownControllers(config / "k.json"))
    assert (client.url, client.token) == ("https://127.0.0.1:8443", "lw_from_file")


def test_the_first_use_notice_is_the_one_the_docs_quote(controllers, tmp_path, monkeypatch, capsys):
    """Issue 15: docs/security.md quoted a notice no command printed (the host commands had a
    second wording of their own)."""
    from pathlib import Path

    from host.cli import build_parser
    from host.remote import client_for
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    quoted = doc.split("and prints a notice:\n\n```\n", 1)[1].split("\n```", 1)[0]
    ctl = controllers()
    monkeypatch.setenv("LEDWARDEN_TOKEN", ctl.store.create("alice", "viewer"))
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "config"))
    client = client_for(build_parser().parse_args(["--controller", ctl.url, "status"]))
    assert client.get("/api/v1/status")["who"] == "alice"
    assert capsys.readouterr().err == (quoted.replace("10.20.0.5:8443", f"127.0.0.1:{ctl.port}")
                                       .replace("SHA256:…", ctl.fingerprint) + "\n")
