"""The self-test API: run a profile, list checks, read the history and the reports.

Running a profile is a bus job (``/api/v1/jobs/{id}`` follows it); reports
come back as the stored JSON or rendered to one HTML page in English or
Chinese (``?lang=zh``), so the host needs nothing but the API to hand the
customer the page.  ``setup`` starts the quarterly schedule unless the board
leaves scheduling to systemd (``controller run --schedule off``).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from controller.errors import PayloadError
from controller.report.i18n import check_lang
from controller.report.inspection import render_inspection_html
from controller.selftest.model import OUTCOMES
from controller.selftest.profiles import CHECKS, PROFILES
from controller.selftest.profiles import profile as get_profile
from controller.selftest.runner import compared_with
from controller.selftest.schedule import Scheduler
from controller.service.apikit import MAX_ID, SERVICE, body_of, int_param, int_query, who
from controller.service.auth import requires
from controller.service.state import Service

OPENAPI = Path(__file__).with_name("openapi.d") / "selftest.json"
SCHEDULER = web.AppKey("selftest_scheduler", Scheduler)
TRIGGERS = ("manual", "schedule")
#: Most runs one list answer carries.
MAX_RUNS = 10000


@requires("viewer")
async def checks(request: web.Request) -> web.Response:
    """What each check measures and its limits, with the profiles that run it: the ``selftest list``
    table, in the language asked for."""
    lang = check_lang(request.query.get("lang", "en"))
    return web.json_response({
        "checks": [CHECKS[c].describe(lang) for c in CHECKS],
        "profiles": {p.name: {"checks": list(p.checks), **p.params()} for p in PROFILES.values()},
        "outcomes": list(OUTCOMES)})


@requires("installer")
async def run(request: web.Request) -> web.Response:
    """Start a self-test profile as a job (202); ``trigger`` tells a scheduled run from a manual one
    in the history."""
    body = await body_of(request, ("profile", "trigger"))
    name = body.get("profile", "quick")
    trigger = body.get("trigger", "manual")
    if not isinstance(name, str):
        raise PayloadError("profile must be a profile name")
    get_profile(name)
    if trigger not in TRIGGERS:
        raise PayloadError(f"trigger must be one of {', '.join(TRIGGERS)}")
    job = request.app[SERVICE].start_selftest(name, trigger, who(request))
    return web.json_response(job.as_dict(full=False), status=202)


@requires("viewer")
async def runs(request: web.Request) -> web.Response:
    """Earlier runs, newest first, optionally of one profile; the limit is capped because the answer
    is built in memory on the board."""
    limit = int_query(request, "limit", 50, 1, MAX_RUNS)
    profile = request.query.get("profile")
    if profile is not None:
        get_profile(profile)
    return web.json_response({"runs": request.app[SERVICE].history.runs(limit, profile)})


@requires("viewer")
async def report(request: web.Request) -> web.Response:
    """One run's stored report as JSON, or rendered as the inspection page (``format=html``) in the
    language asked for; ``against=ID`` compares it with that run instead of the one before it."""
    history = request.app[SERVICE].history
    stored = history.report(int_param(request, "run_id", "self-test run"))
    against = int_query(request, "against", 0, 1, MAX_ID)
    if against:
        # any two inspections, not only a run and the one before it (the web console's "compare")
        stored = compared_with(stored, history.report(against))
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "html"):
        raise PayloadError("format must be json or html")
    lang = check_lang(request.query.get("lang", stored.get("lang", "en")))   # checked for json too
    if fmt == "json":
        return web.json_response(stored)
    return web.Response(text=render_inspection_html(stored, lang=lang), content_type="text/html",
                        charset="utf-8")


@requires("viewer")
async def schedule(request: web.Request) -> web.Response:
    """When the quarterly inspection last ran and runs next, or that systemd's timer (or nobody)
    schedules it."""
    scheduler = request.app.get(SCHEDULER)
    if scheduler is None:
        return web.json_response({"mode": "off", "calendar": "quarterly",
                                  "note": "scheduled by systemd's ledwarden-selftest.timer, or not at all"})
    return web.json_response(scheduler.status())


ROUTES = [
    ("GET", "/api/v1/selftest/checks", checks),
    ("POST", "/api/v1/selftest/run", run),
    ("GET", "/api/v1/selftest/runs", runs),
    ("GET", "/api/v1/selftest/runs/{run_id}", report),
    ("GET", "/api/v1/selftest/schedule", schedule),
]


def setup(app: web.Application, service: Service) -> None:
    """Start the built-in quarterly scheduler with the app, unless the board leaves scheduling to
    systemd's timer."""
    if service.schedule != "builtin":
        return

    async def start_run():
        return service.start_selftest("quarterly", "schedule", "schedule")

    scheduler = Scheduler(service.history, start_run)
    app[SCHEDULER] = scheduler

    async def on_startup(app: web.Application) -> None:
        scheduler.start()

    async def on_cleanup(app: web.Application) -> None:
        await scheduler.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.insert(0, on_cleanup)
