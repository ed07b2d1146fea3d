"""Controller upgrades over the API: resumable uploads, the install job, the slots' state.

The host tool uploads a bundle in chunks (``uploads.py``: resumable, named by
its SHA-256), then ``POST /api/v1/upgrade/controller {"upload": ID}`` starts
the install as a job.  The job runs the installer in a worker thread
(:mod:`controller.upgrade.bundles.installer`: signature, checks, the inactive slot,
the switch) and, when it succeeds, the service stops itself a moment later;
the boot guard then starts the new slot on trial, which confirms its health
or is rolled back (:mod:`controller.upgrade.bundles.bootguard`).  The host follows
all that through ``GET /api/v1/upgrade/controller``.

Only a service started by the boot guard takes installs: without the guard
nothing would start the new slot, and nothing would take a bad one back out.
Changing anything needs the ``service`` role; reading the state, ``viewer``.

``setup`` attaches the upload store as ``app[UPLOADS]`` for the other upgrade
modules (card firmware), and on start runs the trial's health confirmation
(:mod:`controller.upgrade.bundles.confirm`) and forwards the upgrade journal into the
fault log.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from aiohttp import web

from controller.errors import LedwardenError, PayloadError, UpgradeRejected
from controller.jsonin import JsonObject
from controller.service.apikit import body_of, int_query, upload_in, who
from controller.service.auth import requires
from controller.service.jobs import UNFINISHED, Job
from controller.service.state import Service
from controller.timeutil import utc_text
from controller.upgrade.bundles import events
from controller.upgrade.bundles.confirm import Confirmation, forward_journal, restart_soon
from controller.upgrade.bundles.installer import MAX_BUNDLE, Installer
from controller.upgrade.bundles.slots import SlotStore
from controller.upgrade.uploads import UploadConflict, UploadStore
from controller.version import software_version

OPENAPI = Path(__file__).with_name("openapi.d") / "upgrade-controller.json"
#: Seconds the service waits after starting before its first trial health check, so the
#: frame loop and the scheduler are up when the quick self-test looks at them.
SETTLE_S = 2.0
RECENT_EVENTS = 10
#: The upload store (``controller/upgrade/uploads.py``), attached to the app by :func:`setup`
#: for every API module.
UPLOADS = web.AppKey("uploads", UploadStore)


class ControllerUpgrades:
    """The service's controller-upgrade state: its own trial and the install job."""

    def __init__(self, service: Service, uploads: UploadStore) -> None:
        self.service = service
        self.uploads = uploads
        self.store = SlotStore(service.state_dir)
        self.confirmation = Confirmation(service.state_dir)

    def status(self) -> JsonObject:
        """Which slot and version run, the slots, the pending confirmation and the recent upgrade
        events: one answer for ``upgrade controller``."""
        recent = events.read(self.service.state_dir)[-RECENT_EVENTS:]
        return {"running": {"slot": self.confirmation.slot, "version": software_version(),
                            "guarded": self.confirmation.guarded},
                "confirmation": self.confirmation.as_dict(),
                **self.store.describe(),
                "events": [e | {"time": utc_text(e["time"])} for e in recent]}

    def start(self, upload_id: str, who: str) -> Job:
        """Install an uploaded bundle as an exclusive job, refused unless the boot guard runs this
        service and no other job would be cut off by the restart."""
        path = self.uploads.path(upload_id)
        if not self.confirmation.guarded:
            raise UpgradeRejected("not-guarded", "this controller was not started by the boot "
                                  "guard ('ledwarden controller boot'), so nothing would start "
                                  "the new version or roll it back: run the service through the "
                                  "guard (docs/upgrades.md)")
        busy = next((j for j in self.service.jobs.jobs.values()
                     if j.state in UNFINISHED), None)
        if busy is not None:
            raise LedwardenError(f"job {busy.id} ({busy.kind}) is still running, and an upgrade "
                                 f"ends with a restart of the controller that would cut it off: "
                                 f"follow it with 'ledwarden jobs attach {busy.id}' or cancel it "
                                 f"with 'ledwarden jobs cancel {busy.id}' first")
        stop = threading.Event()
        service = self.service

        async def body(job: Job) -> JsonObject:
            loop = asyncio.get_running_loop()

            def progress(step: str, done: int, total: int) -> None:
                loop.call_soon_threadsafe(job.step, step, done, total)

            installer = Installer(service.state_dir, running_version=software_version(),
                                  progress=progress, should_stop=stop.is_set)
            thread = asyncio.ensure_future(asyncio.to_thread(installer.install, path))
            try:
                result = await asyncio.shield(thread)
            except asyncio.CancelledError:
                stop.set()      # the thread stops at its next check, before the switch …
                try:
                    result = await thread
                except BaseException:
                    raise asyncio.CancelledError from None
                # … unless the cancel came after it: the new slot is current, on trial, and
                # only a restart lets the boot guard judge it.  Say so rather than "cancelled".
                job.note(f"the cancel came after the switch to {result.version}; restarting into it")
                restart_soon()
                raise
            except UpgradeRejected as exc:
                raise UpgradeRejected(exc.reason, f"the bundle was refused ({exc.reason}): {exc}; "
                                      f"the controller keeps running {software_version()}") from None
            finally:
                self.uploads.remove(upload_id)
                await forward_journal(service.state_dir, service.faults)
            job.note(f"installed {result.version} in slot {result.slot} in {result.seconds} s "
                     f"(transaction {result.transaction}); restarting into it")
            restart_soon()
            return result.as_dict() | {"restarting": True}

        return service.jobs.start("upgrade-controller", body, {"upload": upload_id}, who,
                                  exclusive=True, role="service")


UPGRADES = web.AppKey("controller_upgrades", ControllerUpgrades)


# ------------------------------------------------------------------ uploads

@requires("service")
async def upload_status(request: web.Request) -> web.Response:
    """How many bytes of an upload the board holds, so an interrupted transfer resumes there."""
    store = request.app[UPLOADS]
    return web.json_response(await asyncio.to_thread(store.status, request.match_info["upload_id"]))


@requires("service")
async def upload_chunk(request: web.Request) -> web.Response:
    """Append a chunk at ``offset``; a wrong offset gets 409 with the size held, so the client
    resends from there rather than corrupting the file."""
    if "offset" not in request.query:
        raise PayloadError("give the chunk's position as ?offset=N (bytes already received; "
                           "GET the upload to learn it)")
    offset = int_query(request, "offset", 0, 0, MAX_BUNDLE)
    data = await request.read()
    store = request.app[UPLOADS]
    try:
        answer = await asyncio.to_thread(store.append, request.match_info["upload_id"], offset, data)
    except UploadConflict as exc:
        return web.json_response({"error": str(exc), "size": exc.size}, status=409)
    return web.json_response(answer)


@requires("service")
async def upload_complete(request: web.Request) -> web.Response:
    """Close an upload once its SHA-256 matches, so nothing is installed from a file that arrived
    damaged."""
    upload_id = request.match_info["upload_id"]
    body = await body_of(request, ("sha256",))
    sha256 = body.get("sha256", upload_id)
    if not isinstance(sha256, str):
        raise PayloadError("sha256 must be a string of 64 hex digits")
    store = request.app[UPLOADS]
    path = await asyncio.to_thread(store.complete, upload_id, sha256)
    return web.json_response({"upload": upload_id, "size": path.stat().st_size, "complete": True})


# ------------------------------------------------------------------ upgrades

@requires("viewer")
async def upgrade_status(request: web.Request) -> web.Response:
    """The controller's upgrade state (see :meth:`ControllerUpgrades.status`), read off the event
    loop."""
    return web.json_response(await asyncio.to_thread(request.app[UPGRADES].status))


@requires("service")
async def upgrade_start(request: web.Request) -> web.Response:
    """Start installing an uploaded bundle (202); the job ends with a restart into the new slot."""
    job = request.app[UPGRADES].start(upload_in(await body_of(request, ("upload",)),
                                                "the bundle to install"),
                                      who(request))
    return web.json_response(job.as_dict(full=False), status=202)


ROUTES = [
    ("GET", "/api/v1/uploads/{upload_id}", upload_status),
    ("PUT", "/api/v1/uploads/{upload_id}", upload_chunk),
    ("POST", "/api/v1/uploads/{upload_id}/complete", upload_complete),
    ("GET", "/api/v1/upgrade/controller", upgrade_status),
    ("POST", "/api/v1/upgrade/controller", upgrade_start),
]


def setup(app: web.Application, service: Service) -> None:
    """Serve uploads and controller upgrades, and after a guarded start run the health check that
    confirms or rolls back the new version."""
    uploads = UploadStore(service.state_dir / "uploads", MAX_BUNDLE)
    upgrades = ControllerUpgrades(service, uploads)
    app[UPLOADS] = uploads
    app[UPGRADES] = upgrades
    tasks: list[asyncio.Task] = []

    async def confirm_later() -> None:
        try:
            await asyncio.sleep(SETTLE_S)
            await upgrades.confirmation.run(service)
        finally:
            service.trial_judged.set()      # judged (or cancelled): card upgrades may go on

    async def on_startup(app: web.Application) -> None:
        tasks.append(asyncio.create_task(forward_journal(service.state_dir, service.faults),
                                         name="upgrade-journal"))
        if upgrades.confirmation.guarded:
            # Hold card upgrades until this start is judged: a long firmware run holds the bus
            # and would push the health check past the boot guard's deadline.
            service.trial_judged.clear()
            tasks.append(asyncio.create_task(confirm_later(), name="upgrade-confirmation"))

    async def on_cleanup(app: web.Application) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
