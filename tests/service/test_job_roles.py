"""Who may steer a job: the role that may start it (an installer cannot cancel an upgrade)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.service import app as app_module
from controller.service.apikit import SERVICE, errors_as_json
from controller.service.auth import ROLES, RateLimiter, TokenStore, auth_middleware
from controller.service.jobs import JobManager


class StubService:
    """Just what the job routes use of the service."""

    def __init__(self) -> None:
        self.jobs = JobManager()


def test_cancelling_needs_the_role_that_started_the_job(tmp_path):
    store = TokenStore(tmp_path / "tokens.db")
    tokens = {role: store.create(f"{role}-1", role) for role in ROLES}
    service = StubService()
    app = web.Application(middlewares=[errors_as_json, auth_middleware(store, RateLimiter(limit=1000))])
    app[SERVICE] = service
    for method, path, handler in app_module.CORE_ROUTES:
        app.router.add_route(method, path, handler)

    async def forever(job):
        await asyncio.sleep(3600)

    async def go():
        async with TestClient(TestServer(app)) as c:
            upgrade = service.jobs.start("upgrade-cards", forever, {}, "svc", role="service")
            detect = service.jobs.start("detect", forever, {}, "inst")

            async def cancel(role, job):
                resp = await c.post(f"/api/v1/jobs/{job.id}/cancel",
                                    headers={"Authorization": f"Bearer {tokens[role]}"})
                return resp.status, await resp.json()

            status, body = await cancel("installer", upgrade)
            assert status == 403 and "'service' role" in body["error"]
            await asyncio.sleep(0.05)
            assert upgrade.state == "running"
            assert (await cancel("installer", detect))[0] == 200
            assert (await cancel("service", upgrade))[0] == 200
            await asyncio.gather(upgrade.task, detect.task, return_exceptions=True)
            assert (upgrade.state, detect.state) == ("cancelled", "cancelled")
    asyncio.run(go())
