"""The controller's HTTPS JSON API (aiohttp).

Every handler declares the least role that may call it (``requires``) or is
explicitly ``public``; the auth middleware refuses everything else, so a
new endpoint cannot be reachable by accident.  The routes are described in
``openapi.json`` beside this module, served at ``/api/v1/openapi.json``, and
a test checks that the two agree.  Errors are JSON ``{"error": sentence}``.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

from aiohttp import web

from controller.brightness import LEVEL_MAX
from controller.errors import PayloadError
from controller.jsonin import JsonObject
from controller.protocol import commands as c
from controller.service.apikit import (MAX_ID, SERVICE, addresses_in, body_of, errors_as_json,
                                      int_param, number_in, routed, who)
from controller.service.auth import (TOKEN, RateLimiter, TokenStore, auth_middleware, public, requires,
                                     role_allows)
from controller.service import api_console
from controller.service.connguard import ConnectionGuard
from controller.service.sessions import SessionStore
from controller.service.state import Service
from controller.version import software_version

log = logging.getLogger("ledwarden.api")
#: The names a pattern goes by in a request: ``module-numbers`` as the host spells it, or
#: ``module_numbers`` as the protocol does (the OpenAPI document lists the same).
PATTERNS = {form: p for p in c.Pattern for form in {p.name.lower(), p.name.lower().replace("_", "-")}}

OPENAPI = Path(__file__).with_name("openapi.json")

#: Feature modules that add API routes: each has ``ROUTES``, ``OPENAPI`` (the path of its
#: OpenAPI fragment) and optionally ``setup(app, service)`` to attach its own state.
ROUTE_MODULES: tuple[str, ...] = ("controller.service.api_faults", "controller.service.api_selftest",
                                  "controller.service.api_brightness",
                                  "controller.service.api_upgrade_controller",
                                  "controller.service.api_upgrade_cards",
                                  "controller.service.api_picture",
                                  "controller.service.api_video", "controller.service.api_fleet",
                                  "controller.service.api_metrics")


# ------------------------------------------------------------------ handlers

@public
async def health(request: web.Request) -> web.Response:
    """Unauthenticated, so a load balancer or the installer's first ``curl`` can tell the service is
    up before any token exists."""
    return web.json_response({"ok": True, "software": software_version()})


@public
async def openapi(request: web.Request) -> web.Response:
    """The API's own description, public so a client can be generated or checked without a token."""
    return web.json_response(openapi_document())


#: The HTTPS site's connection guard (None when the app is served without one, as in tests).
CONNECTIONS: web.AppKey[ConnectionGuard | None] = web.AppKey("connections")


@requires("viewer")
async def status(request: web.Request) -> web.Response:
    """One answer with everything the ``status`` command shows: screen, bus, frame loop, jobs,
    faults and the connection guard's counts."""
    service = request.app[SERVICE]
    guard = request.app.get(CONNECTIONS)
    return web.json_response(service.status() | {"software": software_version(),
                                                  "connections": guard and guard.stats()})


@requires("viewer")
async def cards(request: web.Request) -> web.Response:
    """The screen file's cabinets joined with what the bus has seen of each card, and any card the
    screen file does not name."""
    return web.json_response(request.app[SERVICE].cards_view())


@requires("viewer")
async def jobs_list(request: web.Request) -> web.Response:
    """The recent jobs without their logs and results, so polling the list stays cheap."""
    jobs = request.app[SERVICE].jobs.jobs.values()
    return web.json_response({"jobs": [j.as_dict(full=False) for j in jobs]})


def _job_id(request: web.Request) -> int:
    return int_param(request, "job_id", "job")


@requires("viewer")
async def job_get(request: web.Request) -> web.Response:
    """One job in full, log and result included: what ``jobs N`` and a following client read."""
    return web.json_response(request.app[SERVICE].jobs.get(_job_id(request)).as_dict())


def _controlled_job(request: web.Request):
    """The job a request answers or cancels, if the caller's role may: the role that may start
    a job may steer it (an installer cannot cancel an upgrade half-way)."""
    job = request.app[SERVICE].jobs.get(_job_id(request))
    token = request.get(TOKEN)
    if not (token and role_allows(token.role, job.role)):
        raise web.HTTPForbidden(text=json.dumps({"error": f"job {job.id} ({job.kind}) needs the "
                                                          f"{job.role!r} role"}),
                                content_type="application/json")
    return job


@requires("installer")
async def job_answer(request: web.Request) -> web.Response:
    """Answer the question a waiting job asks (a test pattern seen or not); only the role that may
    start the job may steer it."""
    body = await body_of(request, ("yes", "question_no"))
    if not isinstance(body.get("yes"), bool):
        raise PayloadError('answer with {"yes": true} or {"yes": false}')
    question_no = None if "question_no" not in body else number_in(body, "question_no", 1, MAX_ID)
    job = _controlled_job(request)
    job.answer(body["yes"], question_no)
    return web.json_response(job.as_dict(full=False))


@requires("installer")
async def job_cancel(request: web.Request) -> web.Response:
    """Cancel a job at its next step; a cancelled job leaves the cards as its last finished step
    left them."""
    job = await request.app[SERVICE].jobs.cancel(_controlled_job(request))
    return web.json_response(job.as_dict(full=False))


@requires("installer")
async def commission(request: web.Request) -> web.Response:
    """Start commissioning as a job (202): it takes minutes and asks questions, so the caller
    follows it by id."""
    body = await body_of(request, ("unattended", "lang"))
    unattended = body.get("unattended", False)
    if not isinstance(unattended, bool):
        raise PayloadError("unattended must be true or false")
    lang = body.get("lang", "en")
    if not isinstance(lang, str):
        raise PayloadError('lang must be "en" or "zh", the language of the acceptance report')
    job = request.app[SERVICE].start_commissioning(unattended, who(request), lang=lang)
    return web.json_response(job.as_dict(full=False), status=202)


@requires("installer")
async def discover(request: web.Request) -> web.Response:
    """Start a bus discovery as a job (202); the cards found are remembered for ``/cards``."""
    job = request.app[SERVICE].start_discovery(who(request))
    return web.json_response(job.as_dict(full=False), status=202)


@requires("installer")
async def detect(request: web.Request) -> web.Response:
    """Start LED-fault detection on some or all cards as a job (202): a scan takes seconds a card."""
    service = request.app[SERVICE]
    job = service.start_detection(addresses_in(await body_of(request, ("addresses",))), who(request))
    return web.json_response(job.as_dict(full=False), status=202)


@requires("installer")
async def pattern(request: web.Request) -> web.Response:
    """Show a test pattern now, on the listed cards or by broadcast to all; answers once the cards
    have it."""
    service = request.app[SERVICE]
    body = await body_of(request, ("pattern", "level", "addresses"))
    name = body.get("pattern")
    if not isinstance(name, str) or name not in PATTERNS:
        raise PayloadError(f"pattern must be one of "
                           f"{', '.join(p.name.lower().replace('_', '-') for p in c.Pattern)}")
    level = number_in(body, "level", 0, LEVEL_MAX, default=LEVEL_MAX)
    result = await service.show_pattern(c.TestPattern(PATTERNS[name], level),
                                        addresses_in(body))
    return web.json_response(result)


@requires("viewer")
async def reports_list(request: web.Request) -> web.Response:
    """The acceptance and inspection reports kept on the board, newest first."""
    return web.json_response({"reports": request.app[SERVICE].reports()})


@requires("viewer")
async def report_get(request: web.Request) -> web.Response:
    """One saved report, by the file name ``/reports`` lists; names outside the report folder are
    refused."""
    path = request.app[SERVICE].report_path(request.match_info["name"])
    content_type = "application/json" if path.suffix == ".json" else "text/html"
    return web.Response(body=path.read_bytes(), content_type=content_type, charset="utf-8")


CORE_ROUTES = [
    ("GET", "/api/v1/health", health),
    ("GET", "/api/v1/openapi.json", openapi),
    ("GET", "/api/v1/status", status),
    ("GET", "/api/v1/cards", cards),
    ("GET", "/api/v1/jobs", jobs_list),
    ("GET", "/api/v1/jobs/{job_id}", job_get),
    ("POST", "/api/v1/jobs/{job_id}/answer", job_answer),
    ("POST", "/api/v1/jobs/{job_id}/cancel", job_cancel),
    ("POST", "/api/v1/commission", commission),
    ("POST", "/api/v1/discover", discover),
    ("POST", "/api/v1/detect", detect),
    ("POST", "/api/v1/pattern", pattern),
    ("GET", "/api/v1/reports", reports_list),
    ("GET", "/api/v1/reports/{name}", report_get),
]


def _feature_modules() -> list:
    return [importlib.import_module(name) for name in ROUTE_MODULES]


ROUTES = CORE_ROUTES + [route for module in _feature_modules() for route in module.ROUTES]


def openapi_document() -> JsonObject:
    """The core document with every feature module's fragment merged in: one API, one document."""
    doc = json.loads(OPENAPI.read_text())
    for module in _feature_modules():
        fragment = json.loads(Path(module.OPENAPI).read_text())
        for path, ops in fragment.get("paths", {}).items():
            if path in doc["paths"]:
                raise RuntimeError(f"{module.__name__} documents {path} a second time")
            doc["paths"][path] = ops
        for kind, items in fragment.get("components", {}).items():
            doc["components"].setdefault(kind, {}).update(items)
    return doc


def make_app(service: Service, tokens: TokenStore, limiter: RateLimiter | None = None,
             connections: ConnectionGuard | None = None, sessions: SessionStore | None = None,
             login_limiter: RateLimiter | None = None) -> web.Application:
    """The whole API as one aiohttp application: the connection guard outermost, then JSON errors,
    then authentication, so every refusal is JSON and nothing reaches a handler unauthenticated.
    The web console (:mod:`.api_console`) is served by the same application, its session cookie
    checked by the same middleware."""
    first = [connections.middleware()] if connections is not None else []
    sessions = sessions if sessions is not None else SessionStore()
    app = web.Application(middlewares=[*first, errors_as_json,
                                       auth_middleware(tokens, limiter or RateLimiter(), sessions)],
                          client_max_size=1024 ** 2)
    app[SERVICE] = service
    app[CONNECTIONS] = connections
    for method, path, handler in ROUTES:
        app.router.add_route(method, routed(path), handler)
    api_console.setup(app, tokens, sessions, login_limiter)
    for module in _feature_modules():
        if hasattr(module, "setup"):
            module.setup(app, service)

    async def on_startup(app: web.Application) -> None:
        await service.start()

    async def on_cleanup(app: web.Application) -> None:
        await service.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
