"""The DDI agent inside the service: what it installs with, what it reports, and its status route.

When ``STATE/ddi.toml`` exists (``ledwarden controller ddi set``) the service
starts :class:`controller.fleet.agent.Agent` with the installers a hand
upload uses — the same upload store, the controller install job (A/B
installer, restart, boot guard) and the card upgrade job — so an action from
the server can do nothing a service engineer could not, and is refused for
the same reasons in the same words.  ``GET /api/v1/fleet/ddi`` (viewer)
shows the settings (never the token), the last poll error and the action in
hand.  See docs/fleet.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from controller.errors import ConfigError, LedwardenError
from controller.fleet import settings as ddi_settings
from controller.fleet.agent import Agent
from controller.fleet.ddi import DdiClient
from controller.service.api_upgrade_cards import CARD_UPGRADES
from controller.service.api_upgrade_controller import UPGRADES, UPLOADS
from controller.service.auth import requires
from controller.service.jobs import UNFINISHED, Job, JobState
from controller.service.state import Service
from controller.upgrade.bundles import events
from controller.upgrade.bundles.bundle import board_platform
from controller.version import software_version

log = logging.getLogger("ledwarden.fleet")

OPENAPI = Path(__file__).with_name("openapi.d") / "fleet.json"
#: {"agent": Agent} once started (the app is frozen by then, so the holder is set up front).
AGENT = web.AppKey("ddi_agent", dict)
#: Seconds after start-up before the first poll; on a trial the poll also waits for the health
#: check's verdict, which goes first (nothing can be installed before it anyway).
FIRST_POLL_S = 1.0
WHO = "ddi"


class ServiceInstallers:
    """The agent's :class:`controller.fleet.agent.Installers`, on this service's jobs."""

    def __init__(self, app: web.Application, service: Service) -> None:
        self.app, self.service = app, service

    def busy(self) -> str | None:
        if not self.service.trial_judged.is_set():
            return "the controller is on trial after an upgrade and has not confirmed its health"
        job = next((j for j in self.service.jobs.jobs.values() if j.state in UNFINISHED), None)
        return f"job {job.id} ({job.kind}) is running" if job else None

    async def install(self, kind: str, upload_id: str, action: dict) -> tuple[bool, str] | None:
        action["started"] = time.time()
        if kind == "controller":
            job = self.app[UPGRADES].start(upload_id, f"{WHO} action {action['id']}")
            await _finished(job)
            if job.state != JobState.SUCCEEDED:
                raise LedwardenError(job.error or f"the install job ended {job.state}")
            action["transaction"] = job.result.get("transaction")
            return None                      # the job restarts the service into the trial
        job, _ = self.app[CARD_UPGRADES].start(upload_id, None, 1, False,
                                               f"{WHO} action {action['id']}")
        await _finished(job)
        if job.state == JobState.SUCCEEDED:
            return True, (job.log[-1] if job.log else "card firmware installed")
        return False, job.error or f"the card upgrade ended {job.state}"

    def outcome(self, kind: str, action: dict) -> tuple[bool, str] | None | str:
        since = action.get("started", 0)
        if kind == "controller":
            return _controller_outcome(self.service.state_dir, action["artifacts"][
                action.get("installed", 0)], since)
        plan = self.app[CARD_UPGRADES].plan()
        if plan is None or plan.get("upload") != action["artifacts"][action.get("installed", 0)]:
            return None
        if plan.get("state") == "running":
            return "running"
        if plan.get("state") == "succeeded":
            return True, f"card firmware {plan['package'].get('version')} installed"
        return False, plan.get("failure") or f"the card upgrade ended {plan.get('state')}"


def _controller_outcome(state_dir: Path, upload_id: str, since: float) -> tuple[bool, str] | None | str:
    """What the upgrade journal says of the bundle ``upload_id`` installed after ``since``."""
    txn = None
    for e in events.read(state_dir):
        d = e.get("details", {})
        if e["time"] < since - 1:
            continue
        if txn is None and d.get("bundle") == upload_id:
            if e["code"].endswith(".installed"):
                txn = d.get("transaction")
            elif e["code"].endswith((".rejected", ".failed")):
                return False, f"{d.get('reason', 'failed')}: {d.get('message', '')}".strip(": ")
        elif txn is not None and d.get("transaction") == txn:
            if e["code"].endswith(".confirmed"):
                return True, f"{d.get('version')} confirmed healthy by the boot guard (slot {d.get('slot')})"
            if e["code"].endswith(".rolled-back"):
                return False, (f"{d.get('version')} rolled back to {d.get('back_version')}: "
                               f"{d.get('reason')}")
    return "running" if txn is not None else None


async def _finished(job: Job) -> None:
    assert job.task is not None
    await asyncio.wait({job.task})


def attributes(service: Service) -> dict[str, str]:
    """The configData attributes: flat strings, as hawkBit shows them."""
    out = {"model": f"ledwarden-controller/{board_platform()}", "controller": software_version(),
           "serial": service.controller_info().get("fingerprint", "")[:23],
           "screen": service.layout.name, "cabinets": str(len(service.layout.cabinets))}
    for address, card in sorted(service.cards.items()):
        if card.get("firmware"):
            out[f"card.{address}"] = f"{card.get('firmware')} (model {card.get('model')})"
    return out


@requires("viewer")
async def status(request: web.Request) -> web.Response:
    """Whether the board polls a DDI server, the last error and the action in hand."""
    agent = request.app[AGENT].get("agent")
    if agent is None:
        return web.json_response({"enabled": False})
    action = await asyncio.to_thread(agent.load)
    return web.json_response({"enabled": True, **agent.client.settings.as_dict(),
                              "last_error": agent.last_error or None,
                              "failures_in_a_row": agent.failures,
                              "requests": agent.client.requests, "bytes": agent.client.bytes,
                              "action": {k: action.get(k) for k in ("id", "stage", "final")},
                              "reported": action.get("reported", [])})


ROUTES = [("GET", "/api/v1/fleet/ddi", status)]


def setup(app: web.Application, service: Service) -> None:
    """Start the agent when the board is configured for it; a broken configuration is logged
    and filed, and the service runs on without it."""
    app[AGENT] = {}
    try:
        settings = ddi_settings.load(service.state_dir)
        token = ddi_settings.load_token(service.state_dir) if settings else ""
    except ConfigError as exc:
        log.error("DDI client off: %s", exc)
        service.faults.record("fleet.ddi.config", "error", "controller", {"message": str(exc)})
        return
    if settings is None:
        return
    tasks: list[asyncio.Task] = []
    sessions: list[aiohttp.ClientSession] = []

    async def on_startup(app: web.Application) -> None:
        session = aiohttp.ClientSession()
        sessions.append(session)
        agent = Agent(DdiClient(settings, token, session), service.state_dir, app[UPLOADS],
                      ServiceInstallers(app, service), lambda: attributes(service),
                      faults=service.faults)
        app[AGENT]["agent"] = agent

        async def run() -> None:
            await asyncio.sleep(FIRST_POLL_S)
            await service.trial_judged.wait()
            await agent.run(settings.poll_s)
        tasks.append(asyncio.create_task(run(), name="ddi-agent"))

    async def on_cleanup(app: web.Application) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for session in sessions:
            await session.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
