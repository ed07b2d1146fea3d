"""The console's way in: login, session cookie, CSRF, logout, the login limiter, the headers.

Behind the real auth middleware and the real job routes, on a real local
server.  The test server speaks plain HTTP, where a client's cookie jar
would (rightly) hold back a ``Secure`` cookie, so the cookie is sent by
hand as a browser on HTTPS would send it.
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.service import api_console
from controller.service import app as app_module
from controller.service.api_console import preferred_lang
from controller.service.apikit import SERVICE, errors_as_json
from controller.service.auth import ROLES, RateLimiter, TokenStore, auth_middleware
from controller.service.jobs import JobManager
from controller.service.sessions import COOKIE, SessionStore


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class StubService:
    """Just what the job routes use of the service."""

    def __init__(self) -> None:
        self.jobs = JobManager()


class Rig:
    def __init__(self, tmp_path) -> None:
        self.store = TokenStore(tmp_path / "tokens.db")
        self.tokens = {role: self.store.create(f"{role}-1", role) for role in ROLES}
        self.clock = Clock()
        self.sessions = SessionStore(ttl_s=3600, clock=self.clock)
        self.logins = RateLimiter(limit=5, clock=self.clock)
        self.service = StubService()

    def app(self) -> web.Application:
        # make_app's middleware stack and the console's setup, over the job routes alone.
        app = web.Application(middlewares=[errors_as_json, auth_middleware(
            self.store, RateLimiter(limit=1000), self.sessions)])
        app[SERVICE] = self.service
        for method, path, handler in app_module.CORE_ROUTES:
            app.router.add_route(method, path, handler)
        api_console.setup(app, self.store, self.sessions, self.logins)
        return app

    def run(self, scenario):
        async def go():
            async with TestClient(TestServer(self.app())) as c:
                return await scenario(c)
        return asyncio.run(go())


@pytest.fixture
def rig(tmp_path):
    return Rig(tmp_path)


async def login(c, secret: str) -> tuple[int, dict, str | None, str]:
    """(status, body, the session id the cookie holds, the raw Set-Cookie header)."""
    resp = await c.post("/console/login", json={"token": secret})
    morsel = resp.cookies.get(COOKIE)
    return resp.status, await resp.json(), morsel.value if morsel else None, \
        resp.headers.get("Set-Cookie", "")


def cookie(session_id: str, csrf: str | None = None) -> dict[str, str]:
    headers = {"Cookie": f"{COOKIE}={session_id}"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return headers


async def forever(job):
    await asyncio.sleep(3600)


def test_login_sets_a_strict_session_cookie_and_answers_the_csrf_token(rig):
    async def scenario(c):
        status, body, session_id, raw = await login(c, rig.tokens["installer"])
        jobs = await c.get("/api/v1/jobs", headers=cookie(session_id))
        info = await c.get("/console/session", headers=cookie(session_id))
        return status, body, session_id, raw, jobs.status, await info.json()
    status, body, session_id, raw, jobs, info = rig.run(scenario)
    assert status == 200
    assert (body["name"], body["role"], body["expires_in_s"]) == ("installer-1", "installer", 3600)
    assert len(body["csrf"]) >= 40 and len(session_id) >= 40
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Max-Age=3600", "Path=/"):
        assert attribute in raw
    assert rig.tokens["installer"] not in raw and body["csrf"] not in raw
    assert jobs == 200
    assert (info["role"], info["csrf"]) == ("installer", body["csrf"])


@pytest.mark.parametrize("secret", ["lw_wrongwrongwrongwrongwrongwrongwrongwrong", "", None, 7])
def test_a_wrong_token_opens_no_session(rig, secret):
    async def scenario(c):
        resp = await c.post("/console/login", json={"token": secret})
        return resp.status, await resp.json(), resp.headers.get("Set-Cookie")
    status, body, set_cookie = rig.run(scenario)
    assert status == 401 and "unknown or has been revoked" in body["error"]
    assert set_cookie is None and len(rig.sessions) == 0


def test_login_takes_the_token_from_a_json_body_only(rig):
    async def scenario(c):
        query = await c.post(f"/console/login?token={rig.tokens['viewer']}")
        form = await c.post("/console/login", data={"token": rig.tokens["viewer"]})
        extra = await c.post("/console/login", json={"token": rig.tokens["viewer"], "role": "service"})
        return [(r.status, (await r.json())["error"]) for r in (query, form, extra)]
    results = rig.run(scenario)
    assert [s for s, _ in results] == [400, 400, 400]
    assert "JSON body" in results[0][1] and "not 'role'" in results[2][1]
    assert len(rig.sessions) == 0


def test_forged_and_expired_sessions_are_refused(rig):
    async def scenario(c):
        _, _, session_id, _ = await login(c, rig.tokens["service"])
        forged = await c.get("/api/v1/jobs", headers=cookie("A" * 43))
        before = await c.get("/api/v1/jobs", headers=cookie(session_id))
        rig.clock.t += 3600
        expired = await c.get("/api/v1/jobs", headers=cookie(session_id))
        return [(r.status, (await r.json()).get("error")) for r in (forged, before, expired)]
    (forged, forged_error), (before, _), (expired, expired_error) = rig.run(scenario)
    assert (forged, before, expired) == (401, 200, 401)
    assert "session has expired or has ended: log in again" in forged_error == expired_error


def test_a_state_change_without_the_csrf_token_is_refused_and_changes_nothing(rig):
    async def scenario(c):
        job = rig.service.jobs.start("detect", forever, {}, "x")
        _, body, session_id, _ = await login(c, rig.tokens["installer"])
        url = f"/api/v1/jobs/{job.id}/cancel"
        missing = await c.post(url, headers=cookie(session_id))
        wrong = await c.post(url, headers=cookie(session_id, body["csrf"][:-1] + "x"))
        await asyncio.sleep(0.05)
        state_after_refusals = job.state
        right = await c.post(url, headers=cookie(session_id, body["csrf"]))
        return ([(r.status, (await r.json()).get("error")) for r in (missing, wrong)],
                state_after_refusals, right.status, job.state)
    refusals, state_after, right, state = rig.run(scenario)
    assert [s for s, _ in refusals] == [403, 403]
    assert all("X-CSRF-Token" in error for _, error in refusals)
    assert (state_after, right, state) == ("running", 200, "cancelled")


def test_a_viewer_session_posting_an_installer_action_gets_403(rig):
    async def scenario(c):
        job = rig.service.jobs.start("detect", forever, {}, "x")
        _, body, session_id, _ = await login(c, rig.tokens["viewer"])
        resp = await c.post(f"/api/v1/jobs/{job.id}/cancel", headers=cookie(session_id, body["csrf"]))
        await asyncio.sleep(0.05)
        out = resp.status, (await resp.json())["error"], job.state
        job.task.cancel()
        return out
    assert rig.run(scenario) == (403, "this needs the 'installer' role; your token 'viewer-1' has "
                                      "'viewer'", "running")


def test_revoking_the_token_ends_its_sessions(rig):
    async def scenario(c):
        _, _, session_id, _ = await login(c, rig.tokens["installer"])
        before = (await c.get("/api/v1/jobs", headers=cookie(session_id))).status
        rig.store.revoke("installer-1")
        after = await c.get("/api/v1/jobs", headers=cookie(session_id))
        return before, after.status, (await after.json())["error"]
    before, after, error = rig.run(scenario)
    assert (before, after) == (200, 401) and "revoked" in error
    assert len(rig.sessions) == 0


def test_logout_needs_the_csrf_token_and_ends_the_session(rig):
    async def scenario(c):
        _, body, session_id, _ = await login(c, rig.tokens["viewer"])
        without = (await c.post("/console/logout", headers=cookie(session_id))).status
        still = (await c.get("/api/v1/jobs", headers=cookie(session_id))).status
        out = await c.post("/console/logout", headers=cookie(session_id, body["csrf"]))
        raw = out.headers.get("Set-Cookie", "")
        after = (await c.get("/api/v1/jobs", headers=cookie(session_id))).status
        return without, still, out.status, raw, after
    without, still, out, raw, after = rig.run(scenario)
    assert (without, still, out, after) == (403, 200, 200, 401)
    assert f"{COOKIE}=\"\"" in raw and "Max-Age=0" in raw


def test_failed_logins_are_limited_per_address_and_the_api_is_not(rig, caplog):
    async def scenario(c):
        statuses = [(await c.post("/console/login", json={"token": f"lw_guess{i}"})).status
                    for i in range(5)]
        blocked = await c.post("/console/login", json={"token": rig.tokens["service"]})
        api = (await c.get("/api/v1/jobs",
                           headers={"Authorization": f"Bearer {rig.tokens['viewer']}"})).status
        rig.clock.t += 61
        after = await login(c, rig.tokens["service"])
        return (statuses, blocked.status, blocked.headers.get("Retry-After"),
                (await blocked.json())["error"], api, after[0])
    with caplog.at_level(logging.DEBUG, logger="ledwarden"):
        statuses, blocked, retry, error, api, after = rig.run(scenario)
    assert statuses == [401] * 5
    assert (blocked, retry) == (429, "60") and "too many failed logins" in error
    assert (api, after) == (200, 200)
    # tokens and session ids never reach the log
    assert "blocking console logins from 127.0.0.1" in caplog.text
    assert "lw_guess" not in caplog.text and rig.tokens["service"] not in caplog.text


def test_every_answer_carries_a_strict_content_security_policy(rig):
    async def scenario(c):
        page = await c.get("/console/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
        script = await c.get("/console/app.js")
        api = await c.get("/api/v1/jobs")
        return [(r.status, r.headers) for r in (page, script, api)], await page.text(), script
    results, html, script = rig.run(scenario)
    assert [s for s, _ in results] == [200, 200, 401]
    for _, headers in results:
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert html.startswith("<!doctype html>") and '<html lang="zh">' in html
    # nothing inline for the policy to have to allow: no inline script, style or handler
    assert "<script>" not in html and "<style" not in html and "style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    assert script.content_type == "text/javascript"


@pytest.mark.parametrize("path", ["/console/../app.py", "/console/%2e%2e%2fapp.py",
                                  "/console/api_console.py", "/console/nothere.js"])
def test_only_the_console_files_are_served(rig, path):
    async def scenario(c):
        return (await c.get(path)).status
    assert rig.run(scenario) in (401, 404)


@pytest.mark.parametrize("header,lang", [
    (None, "en"), ("", "en"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("en-GB,en;q=0.9,zh;q=0.8", "en"),
    ("fr-FR,fr;q=0.9,zh-TW;q=0.5,en;q=0.4", "zh"), ("de, en;q=0", "en"), ("zh;q=x, en", "en"),
])
def test_the_language_follows_accept_language(header, lang):
    assert preferred_lang(header) == lang


def test_only_the_pages_and_the_login_are_public():
    from controller.service.auth import PUBLIC, access_of
    access = {(method, path): access_of(handler) for method, path, handler in api_console.ROUTES}
    assert None not in access.values()
    assert {route for route, need in access.items() if need == PUBLIC} == {
        ("GET", "/console"), ("GET", "/console/"),
        ("GET", "/console/{name:[a-z0-9][a-z0-9-]*\\.(?:html|js|css)}"), ("GET", "/console/favicon.svg"),
        ("POST", "/console/login")}
    assert all(need == "viewer" for need in access.values() if need != PUBLIC)
