"""Tokens, roles, the auth middleware, the rate limiter and ``controller token …``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import stat

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.errors import LedwardenError
from controller.service import tokens_cli
from controller.service.auth import (
    PUBLIC,
    TOKEN,
    ROLES,
    RateLimiter,
    TokenError,
    TokenInfo,
    TokenStore,
    UnknownToken,
    access_of,
    auth_middleware,
    public,
    requires,
    role_allows,
)


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path):
    return TokenStore(tmp_path / "tokens.db")


# ------------------------------------------------------------------ the store

def test_created_secret_authenticates_with_its_name_and_role(store):
    secret = store.create("alice", "installer")
    assert secret.startswith("lw_") and len(secret) == 3 + 43
    info = store.authenticate(secret)
    assert isinstance(info, TokenInfo)
    assert (info.name, info.role, info.revoked) == ("alice", "installer", False)
    assert info.created.endswith("Z") and dt.datetime.fromisoformat(info.created)


def test_unknown_and_near_miss_secrets_do_not_authenticate(store):
    secret = store.create("alice", "viewer")
    assert store.authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.authenticate("lw_" + "x" * 43) is None
    assert store.authenticate("") is None
    assert store.authenticate(secret + " ") is None


def test_only_hashes_are_stored(tmp_path, store):
    secrets = [store.create(f"t{i}", role) for i, role in enumerate(ROLES)]
    assert all(store.authenticate(s) for s in secrets)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("tokens.db")]
    assert files
    blob = b"".join(p.read_bytes() for p in files)  # the WAL too
    for s in secrets:
        assert s.encode() not in blob
        assert s[3:].encode() not in blob
    assert stat.S_IMODE((tmp_path / "tokens.db").stat().st_mode) == 0o600


def test_revoke_stops_the_token_and_keeps_it_listed(store):
    secret = store.create("bob", "service")
    info = store.revoke("bob")
    assert info.revoked and info.name == "bob"
    assert store.authenticate(secret) is None
    assert [(t.name, t.revoked) for t in store.list()] == [("bob", True)]
    with pytest.raises(UnknownToken, match="no active token named 'bob'"):
        store.revoke("bob")
    # the name is free again once revoked
    store.create("bob", "viewer")
    assert [(t.name, t.role, t.revoked) for t in store.list()] == [
        ("bob", "service", True), ("bob", "viewer", False)]


def test_revoke_unknown_is_a_ledwarden_error(store):
    with pytest.raises(LedwardenError, match="token list"):
        store.revoke("nobody")


def test_bad_role_refused(store):
    with pytest.raises(TokenError, match="viewer, installer, service"):
        store.create("carol", "admin")
    assert store.list() == []


@pytest.mark.parametrize("name", ["", "has space", "-dash-first", "x" * 65, "new\nline"])
def test_bad_name_refused(store, name):
    with pytest.raises(TokenError, match="bad token name"):
        store.create(name, "viewer")


def test_duplicate_name_refused(store):
    store.create("dave", "viewer")
    with pytest.raises(TokenError, match="already exists") as err:
        store.create("dave", "service")
    assert isinstance(err.value, ValueError)
    assert [(t.name, t.role) for t in store.list()] == [("dave", "viewer")]


def test_list_shows_roles(store):
    for role in ROLES:
        store.create(f"{role}-1", role)
    assert [(t.name, t.role) for t in store.list()] == [(f"{r}-1", r) for r in ROLES]


def test_last_used_written_at_most_once_a_minute(tmp_path):
    now = [dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)]
    store = TokenStore(tmp_path / "tokens.db", now=lambda: now[0])
    secret = store.create("erin", "viewer")
    assert store.list()[0].last_used is None
    assert store.authenticate(secret).last_used == "2026-05-01T12:00:00Z"
    now[0] += dt.timedelta(seconds=59)
    assert store.authenticate(secret).last_used == "2026-05-01T12:00:00Z"
    now[0] += dt.timedelta(seconds=1)
    assert store.authenticate(secret).last_used == "2026-05-01T12:01:00Z"


def test_second_store_on_same_file_sees_revocation(tmp_path):
    """The CLI and the service are separate processes; nothing may be cached."""
    service_side = TokenStore(tmp_path / "tokens.db")
    cli_side = TokenStore(tmp_path / "tokens.db")
    secret = cli_side.create("frank", "installer")
    assert service_side.authenticate(secret)
    cli_side.revoke("frank")
    assert service_side.authenticate(secret) is None


def test_role_order():
    assert role_allows("service", "viewer") and role_allows("installer", "installer")
    assert not role_allows("viewer", "installer") and not role_allows("installer", "service")
    assert not role_allows("root", "viewer") and not role_allows("service", "root")


def test_requires_records_role_and_rejects_unknown():
    @requires("installer")
    async def h(request):
        ...
    assert access_of(h) == "installer"
    assert access_of(public(lambda r: None)) == PUBLIC
    with pytest.raises(ValueError):
        requires("admin")


# ------------------------------------------------------------------ the middleware

def make_app(store: TokenStore, limiter: RateLimiter, hits: list[str]) -> web.Application:
    @requires("viewer")
    async def status(request):
        hits.append("status")
        return web.json_response({"token": request[TOKEN].name})

    @requires("installer")
    async def pattern(request):
        hits.append("pattern")
        return web.json_response({"ok": True})

    @requires("service")
    async def upgrade(request):
        hits.append("upgrade")
        return web.json_response({"ok": True})

    @public
    async def health(request):
        hits.append("health")
        return web.json_response({"ok": True})

    async def forgotten(request):
        hits.append("forgotten")
        return web.json_response({"ran": True})

    class Faults(web.View):
        @requires("viewer")
        async def get(self):
            hits.append("faults-get")
            return web.json_response([])

        @requires("service")
        async def delete(self):
            hits.append("faults-delete")
            return web.json_response({"cleared": True})

    app = web.Application(middlewares=[auth_middleware(store, limiter)])
    app.router.add_get("/api/v1/status", status)
    app.router.add_post("/api/v1/pattern", pattern)
    app.router.add_post("/api/v1/upgrade", upgrade)
    app.router.add_get("/api/v1/health", health)
    app.router.add_post("/api/v1/forgotten", forgotten)
    app.router.add_view("/api/v1/faults", Faults)
    return app


class Setup:
    def __init__(self, tmp_path) -> None:
        self.store = TokenStore(tmp_path / "tokens.db")
        self.clock = Clock()
        self.limiter = RateLimiter(clock=self.clock)
        self.hits: list[str] = []
        self.tokens = {role: self.store.create(f"{role}-tok", role) for role in ROLES}
        self.revoked = self.store.create("gone", "service")
        self.store.revoke("gone")

    def run(self, scenario):
        """Run ``await scenario(client)`` against the app on a real local server."""
        async def go():
            async with TestClient(TestServer(make_app(self.store, self.limiter, self.hits))) as c:
                return await scenario(c)
        return asyncio.run(go())


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def answer(resp) -> tuple[int, dict]:
    return resp.status, await resp.json()


@pytest.fixture
def setup(tmp_path):
    return Setup(tmp_path)


@pytest.mark.parametrize("role,path,method", [
    ("viewer", "/api/v1/status", "GET"),
    ("installer", "/api/v1/pattern", "POST"),
    ("service", "/api/v1/upgrade", "POST"),
    ("viewer", "/api/v1/faults", "GET"),
    ("service", "/api/v1/faults", "DELETE"),
])
def test_each_role_and_those_above_it_get_in(setup, role, path, method):
    async def scenario(c):
        results = []
        for have in ROLES[ROLES.index(role):]:
            resp = await c.request(method, path, headers=bearer(setup.tokens[have]))
            results.append(resp.status)
        return results
    assert setup.run(scenario) == [200] * (len(ROLES) - ROLES.index(role))


def test_success_puts_the_token_on_the_request(setup):
    async def scenario(c):
        return await answer(await c.get("/api/v1/status", headers=bearer(setup.tokens["service"])))
    assert setup.run(scenario) == (200, {"token": "service-tok"})


@pytest.mark.parametrize("headers,error", [
    ({}, "this needs a token"),
    ({"Authorization": "Basic dXNlcjpwdw=="}, "malformed"),
    ({"Authorization": "Bearer "}, "malformed"),
    ({"Authorization": "Bearer lw_wrongwrongwrongwrongwrongwrongwrongwrongwro"}, "unknown or"),
    ({"Authorization": "Bearer nonsense"}, "unknown or"),
])
def test_missing_malformed_and_unknown_tokens_get_401(setup, headers, error):
    async def scenario(c):
        resp = await c.post("/api/v1/pattern", headers=headers)
        return resp.status, (await resp.json())["error"], resp.headers.get("WWW-Authenticate")
    status, message, challenge = setup.run(scenario)
    assert status == 401 and error in message
    assert challenge.startswith("Bearer")
    assert setup.hits == []


def test_revoked_token_gets_401(setup):
    async def scenario(c):
        return await answer(await c.post("/api/v1/upgrade", headers=bearer(setup.revoked)))
    status, body = setup.run(scenario)
    assert status == 401 and "revoked" in body["error"]
    assert setup.hits == []


def test_low_role_gets_403_naming_roles_and_token(setup):
    async def scenario(c):
        return [await answer(await c.post("/api/v1/upgrade",
                                          headers=bearer(setup.tokens["installer"]))),
                await answer(await c.post("/api/v1/pattern",
                                          headers=bearer(setup.tokens["viewer"]))),
                await answer(await c.delete("/api/v1/faults",
                                            headers=bearer(setup.tokens["installer"])))]
    assert setup.run(scenario) == [
        (403, {"error": "this needs the 'service' role; your token 'installer-tok' has 'installer'"}),
        (403, {"error": "this needs the 'installer' role; your token 'viewer-tok' has 'viewer'"}),
        (403, {"error": "this needs the 'service' role; your token 'installer-tok' has 'installer'"}),
    ]
    assert setup.hits == []


def test_public_needs_no_token(setup):
    async def scenario(c):
        return await answer(await c.get("/api/v1/health"))
    assert setup.run(scenario) == (200, {"ok": True})


def test_unmarked_handler_fails_closed(setup, caplog):
    async def scenario(c):
        return [await answer(await c.post("/api/v1/forgotten",
                                          headers=bearer(setup.tokens["service"]))),
                await answer(await c.post("/api/v1/forgotten"))]
    with caplog.at_level(logging.ERROR, logger="ledwarden.auth"):
        results = setup.run(scenario)
    assert [status for status, _ in results] == [500, 500]
    assert "access rule" in results[0][1]["error"]
    assert setup.hits == []
    assert "forgotten" in caplog.text and "neither" in caplog.text


def test_unknown_path_needs_a_token_before_it_is_a_404(setup):
    async def scenario(c):
        return [(await c.get("/api/v1/nope")).status,
                (await c.get("/api/v1/nope", headers=bearer(setup.tokens["viewer"]))).status,
                (await c.put("/api/v1/status", headers=bearer(setup.tokens["viewer"]))).status]
    assert setup.run(scenario) == [401, 404, 405]


def test_each_refusal_is_logged_with_address_method_path_and_token(setup, caplog):
    async def scenario(c):
        await c.get("/api/v1/status")
        await c.post("/api/v1/upgrade", headers=bearer(setup.tokens["viewer"]))
        await c.post("/api/v1/pattern", headers=bearer(setup.revoked))
        await c.get("/api/v1/status", headers=bearer(setup.tokens["viewer"]))  # fine: no log
    with caplog.at_level(logging.WARNING, logger="ledwarden.auth"):
        setup.run(scenario)
    records = [r for r in caplog.records if r.name == "ledwarden.auth"]
    assert len(records) == 3
    assert all(r.levelno == logging.WARNING and "127.0.0.1" in r.getMessage() for r in records)
    assert "GET /api/v1/status" in records[0].getMessage()
    assert "POST /api/v1/upgrade" in records[1].getMessage()
    assert "'viewer-tok'" in records[1].getMessage()
    assert "POST /api/v1/pattern" in records[2].getMessage()


def test_rate_limit_after_five_refusals(setup, caplog):
    wrong = bearer("lw_guess")

    async def scenario(c):
        statuses = [(await c.get("/api/v1/status", headers=wrong)).status for i in range(5)]
        blocked = await c.get("/api/v1/status", headers=wrong)
        # a good token and a public route from the same address are not locked out
        good = await c.get("/api/v1/status", headers=bearer(setup.tokens["service"]))
        health = await c.get("/api/v1/health")
        setup.clock.t += 59
        still = await c.get("/api/v1/status", headers=wrong)
        setup.clock.t += 1.5
        after = await c.get("/api/v1/status", headers=wrong)
        return (statuses, blocked.status, blocked.headers.get("Retry-After"),
                (await blocked.json())["error"], good.status, health.status,
                still.status, still.headers.get("Retry-After"), after.status)
    with caplog.at_level(logging.WARNING, logger="ledwarden.auth"):
        result = setup.run(scenario)
    statuses, blocked, retry, error, good, health, still, still_retry, after = result
    assert statuses == [401] * 5
    assert (blocked, retry) == (429, "60")
    assert "too many refused requests" in error
    assert (good, health) == (200, 200)
    assert (still, still_retry) == (429, "1")
    assert after == 401
    assert setup.hits == ["status", "health"]
    assert "blocking a token from 127.0.0.1" in caplog.text


def test_wrong_tokens_from_127_0_0_1_never_lock_out_a_valid_token(setup):
    """Issue 15 item 12: the board's own timer-driven self-test shares 127.0.0.1 with whoever
    types wrong tokens there; fresh guesses are slowed per address, the valid token passes."""
    async def scenario(c):
        guesses = [(await c.get("/api/v1/status", headers=bearer(f"lw_guess{i}"))).status
                   for i in range(4 * 5 + 1)]
        no_token = (await c.get("/api/v1/status")).status
        valid = [(await c.get("/api/v1/status", headers=bearer(setup.tokens["installer"]))).status
                 for _ in range(3)]
        return guesses, no_token, valid
    guesses, no_token, valid = setup.run(scenario)
    assert guesses == [401] * 20 + [429]
    assert no_token == 429
    assert valid == [200] * 3


def test_403s_count_towards_the_limit_and_successes_do_not_reset_it(setup):
    async def scenario(c):
        out = []
        for _ in range(4):
            out.append((await c.post("/api/v1/upgrade", headers=bearer(setup.tokens["viewer"]))).status)
            out.append((await c.get("/api/v1/status", headers=bearer(setup.tokens["viewer"]))).status)
        out.append((await c.post("/api/v1/upgrade", headers=bearer(setup.tokens["viewer"]))).status)
        out.append((await c.get("/api/v1/status", headers=bearer(setup.tokens["viewer"]))).status)
        out.append((await c.post("/api/v1/upgrade", headers=bearer(setup.tokens["viewer"]))).status)
        return out
    # what the viewer token may do keeps running; what it may not is slowed to 429
    assert setup.run(scenario) == [403, 200] * 4 + [403, 200, 429]


def test_refusals_spread_over_more_than_a_minute_do_not_block():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    for _ in range(10):
        assert limiter.record_failure("10.0.0.1") is False
        clock.t += 15.1
    assert limiter.retry_after("10.0.0.1") is None


def test_limiter_is_per_address():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert [limiter.record_failure("10.0.0.1") for _ in range(5)] == [False] * 4 + [True]
    assert limiter.retry_after("10.0.0.1") == 60
    assert limiter.retry_after("10.0.0.2") is None


def test_limiter_memory_is_bounded():
    limiter = RateLimiter(clock=Clock(), max_clients=100)
    for i in range(1000):
        limiter.record_failure(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._failures) <= 100


# ------------------------------------------------------------------ controller token …

def cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ledwarden controller")
    sub = parser.add_subparsers(dest="controller_command", required=True)
    tokens_cli.register(sub)
    return parser.parse_args(argv)


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    args = cli(*argv)
    status = args.func(args)
    return status, capsys.readouterr().out


def test_cli_create_list_revoke(tmp_path, capsys):
    state = ["--state", str(tmp_path)]
    status, out = run_cli(capsys, "token", "create", "--role", "installer", "--name", "hall-a", *state)
    assert status == 0
    secret = next(line for line in out.splitlines() if line.startswith("lw_"))
    assert "LEDWARDEN_TOKEN" in out and "only this once" in out
    store = TokenStore(tmp_path / "tokens.db")
    assert store.authenticate(secret).role == "installer"

    status, out = run_cli(capsys, "token", "list", *state)
    assert status == 0 and "hall-a" in out and "installer" in out and "active" in out
    assert secret not in out

    status, out = run_cli(capsys, "token", "list", "--json", *state)
    [entry] = json.loads(out)
    assert (entry["name"], entry["role"], entry["revoked"]) == ("hall-a", "installer", False)
    assert "secret" not in entry

    status, out = run_cli(capsys, "token", "revoke", "hall-a", *state)
    assert status == 0 and "Revoked token 'hall-a'" in out
    assert store.authenticate(secret) is None
    _, out = run_cli(capsys, "token", "list", "--json", *state)
    assert json.loads(out)[0]["revoked"] is True


def test_cli_create_json_has_the_secret_once(tmp_path, capsys):
    _, out = run_cli(capsys, "token", "create", "--role", "service", "--name", "hq", "--json",
                     "--state", str(tmp_path))
    doc = json.loads(out)
    assert doc["role"] == "service" and doc["name"] == "hq"
    assert TokenStore(tmp_path / "tokens.db").authenticate(doc["secret"]).name == "hq"


def test_cli_rejects_unknown_role_at_parse_time(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli("token", "create", "--role", "admin", "--name", "x", "--state", str(tmp_path))
    assert "invalid choice" in capsys.readouterr().err


def test_cli_errors_are_ledwarden_errors(tmp_path, capsys):
    state = ["--state", str(tmp_path)]
    run_cli(capsys, "token", "create", "--role", "viewer", "--name", "dup", *state)
    with pytest.raises(LedwardenError, match="already exists"):
        run_cli(capsys, "token", "create", "--role", "viewer", "--name", "dup", *state)
    with pytest.raises(LedwardenError, match="no active token"):
        run_cli(capsys, "token", "revoke", "ghost", *state)


def test_cli_default_state_dir():
    assert cli("token", "list").state == "/var/lib/ledwarden"
