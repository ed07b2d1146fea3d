"""Receiving-card firmware upgrades over the API: start one from an upload, see the plan.

The host tool uploads a firmware package (``uploads.py``, resumable, named by
its SHA-256), then ``POST /api/v1/upgrade/cards`` starts the bus job
(:mod:`controller.upgrade.cards.job`); per-card progress is the job's
``progress.cards``, the full report its ``result`` — on failure too.
``GET /api/v1/upgrade/cards`` shows the plan kept for resuming and the latest
job.  Starting needs the ``service`` role; reading, ``viewer``.

``setup`` resumes, shortly after start-up, an upgrade the previous service
left running.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from controller.errors import PayloadError
from controller.service.api_upgrade_controller import UPLOADS
from controller.service.apikit import addresses_in, body_of, number_in, upload_in, who
from controller.service.auth import requires
from controller.service.state import Service
from controller.upgrade.cards.job import RESUME_DELAY_S, CardUpgrades

OPENAPI = Path(__file__).with_name("openapi.d") / "upgrade-cards.json"
CARD_UPGRADES = web.AppKey("card_upgrades", CardUpgrades)


@requires("viewer")
async def status(request: web.Request) -> web.Response:
    """The last card firmware upgrade's plan and job: what ``upgrade cards`` without a package
    shows."""
    return web.json_response(request.app[CARD_UPGRADES].status())


@requires("service")
async def start(request: web.Request) -> web.Response:
    """Start a card firmware upgrade from an upload (202); a repeat for the same upload joins
    the running job (200) rather than starting a second."""
    body = await body_of(request, ("upload", "addresses", "canary", "force"))
    upload = upload_in(body, "the firmware package")
    canary, force = number_in(body, "canary", 1, 240, default=1), body.get("force", False)
    if not isinstance(force, bool):
        raise PayloadError("force must be true or false")
    job, joined = request.app[CARD_UPGRADES].start(upload, addresses_in(body), canary, force,
                                                   who(request))
    return web.json_response(job.as_dict(full=False), status=200 if joined else 202)


ROUTES = [
    ("GET", "/api/v1/upgrade/cards", status),
    ("POST", "/api/v1/upgrade/cards", start),
]


def setup(app: web.Application, service: Service) -> None:
    """Serve card upgrades, and resume one a restart interrupted, once a controller upgrade's trial
    is judged so the two never share the bus."""
    upgrades = CardUpgrades(service, lambda: app[UPLOADS], service.faults)
    app[CARD_UPGRADES] = upgrades
    tasks: list[asyncio.Task] = []

    async def resume_later() -> None:
        await asyncio.sleep(RESUME_DELAY_S)
        await service.trial_judged.wait()    # after a controller upgrade: once it is judged
        await upgrades.resume_interrupted()

    async def on_startup(app: web.Application) -> None:
        tasks.append(asyncio.create_task(resume_later(), name="card-upgrade-resume"))

    async def on_cleanup(app: web.Application) -> None:
        upgrades.shutting_down = True   # before the service stops its jobs: a restart, not a cancel
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
