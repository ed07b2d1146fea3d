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


def test_an_answer_naming_a_question_already_answered_is_refused_and_not_taken(tmp_path):
    """Two browsers show the same question; the second Yes must not answer the next question."""
    store = TokenStore(tmp_path / "tokens.db")
    secret = store.create("inst", "installer")
    service = StubService()
    app = web.Application(middlewares=[errors_as_json, auth_middleware(store, RateLimiter(limit=1000))])
    app[SERVICE] = service
    for method, path, handler in app_module.CORE_ROUTES:
        app.router.add_route(method, path, handler)
    answers = []

    async def two_questions(job):
        answers.append(await job.ask("first?"))
        answers.append(await job.ask("second?"))

    async def go():
        async with TestClient(TestServer(app)) as c:
            job = service.jobs.start("commission", two_questions, {}, "inst")

            async def answer(body):
                resp = await c.post(f"/api/v1/jobs/{job.id}/answer", json=body,
                                    headers={"Authorization": f"Bearer {secret}"})
                return resp.status, await resp.json()

            while job.question != "first?":
                await asyncio.sleep(0.01)
            assert job.as_dict()["question_no"] == 1
            first = await answer({"yes": True, "question_no": 1})
            while job.question != "second?":
                await asyncio.sleep(0.01)
            stale = await answer({"yes": False, "question_no": 1})
            wrong_type = await answer({"yes": False, "question_no": "1"})
            second = await answer({"yes": False, "question_no": 2})
            await job.task
            return first[0], stale, wrong_type[0], second[0], job.state
    first, stale, wrong_type, second, state = asyncio.run(go())
    assert (first, wrong_type, second, state) == (200, 400, 200, "succeeded")
    assert stale[0] == 409
    assert stale[1]["error"] == ("job 1 no longer asks question 1 (it was answered already); "
                                 "it now asks: second?")
    assert answers == [True, False]
