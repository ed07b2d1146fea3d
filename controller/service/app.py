"""The controller's HTTPS JSON API (aiohttp).

Every handler declares the least role that may call it (``requires``) or is
explicitly ``public``; the auth middleware refuses everything else, so a
new endpoint cannot be reachable by accident.  The routes are described in
``openapi.json`` beside this module, served at ``/api/v1/openapi.json``, and
a test checks that the two agree.  Errors are JSON ``{"error": sentence}``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web

from controller.errors import ConfigError, LedwardenError, NotFound, PayloadError
from controller.protocol import commands as c
from controller.service.auth import TOKEN, RateLimiter, TokenStore, auth_middleware, public, requires
from controller.service.state import Service
from controller.version import software_version

log = logging.getLogger("ledwarden.api")

OPENAPI = Path(__file__).with_name("openapi.json")
SERVICE = web.AppKey("service", Service)


@web.middleware
async def errors_as_json(request: web.Request, handler):
    """Turn the project's errors into JSON answers with the right status."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except NotFound as exc:
        return web.json_response({"error": str(exc)}, status=404)
    except (PayloadError, ConfigError, ValueError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except LedwardenError as exc:
        return web.json_response({"error": str(exc)}, status=409)


async def body_of(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError as exc:
        raise PayloadError(f"the request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("the request body must be a JSON object")
    return data


def _addresses(service: Service, body: dict) -> list[int] | None:
    addresses = body.get("addresses")
    if addresses is None:
        return None
    if not isinstance(addresses, list) or not all(isinstance(a, int) and 1 <= a <= 240
                                                  for a in addresses):
        raise PayloadError("addresses must be a list of card addresses 1..240")
    return addresses


def _who(request: web.Request) -> str:
    token = request.get(TOKEN)
    return token.name if token else ""


# ------------------------------------------------------------------ handlers

@public
async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "software": software_version()})


@public
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")


@requires("viewer")
async def status(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response(service.status() | {"software": software_version()})


@requires("viewer")
async def cards(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].cards_view())


@requires("viewer")
async def jobs_list(request: web.Request) -> web.Response:
    jobs = request.app[SERVICE].jobs.jobs.values()
    return web.json_response({"jobs": [j.as_dict(full=False) for j in jobs]})


def _job_id(request: web.Request) -> int:
    try:
        return int(request.match_info["job_id"])
    except ValueError:
        raise NotFound(f"no job {request.match_info['job_id']!r}") from None


@requires("viewer")
async def job_get(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].jobs.get(_job_id(request)).as_dict())


@requires("installer")
async def job_answer(request: web.Request) -> web.Response:
    body = await body_of(request)
    if not isinstance(body.get("yes"), bool):
        raise PayloadError('answer with {"yes": true} or {"yes": false}')
    job = request.app[SERVICE].jobs.get(_job_id(request))
    job.answer(body["yes"])
    return web.json_response(job.as_dict(full=False))


@requires("installer")
async def job_cancel(request: web.Request) -> web.Response:
    job = request.app[SERVICE].jobs.get(_job_id(request))
    if job.task and not job.task.done():
        job.task.cancel()
    return web.json_response(job.as_dict(full=False))


@requires("installer")
async def commission(request: web.Request) -> web.Response:
    body = await body_of(request)
    job = request.app[SERVICE].start_commissioning(bool(body.get("unattended", False)), _who(request))
    return web.json_response(job.as_dict(full=False), status=202)


@requires("installer")
async def discover(request: web.Request) -> web.Response:
    job = request.app[SERVICE].start_discovery(_who(request))
    return web.json_response(job.as_dict(full=False), status=202)


@requires("installer")
async def detect(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    job = service.start_detection(_addresses(service, await body_of(request)), _who(request))
    return web.json_response(job.as_dict(full=False), status=202)


@requires("installer")
async def pattern(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = await body_of(request)
    name = str(body.get("pattern", "")).upper().replace("-", "_")
    if name not in c.Pattern.__members__:
        raise PayloadError(f"pattern must be one of "
                           f"{', '.join(p.name.lower() for p in c.Pattern)}")
    level = body.get("level", 0xFFFF)
    result = await service.show_pattern(c.TestPattern(c.Pattern[name], level),
                                        _addresses(service, body))
    return web.json_response(result)


@requires("installer")
async def brightness(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = await body_of(request)
    level = body.get("level")
    if not isinstance(level, int) or not 0 <= level <= 0xFFFF:
        raise PayloadError("level must be an integer 0..65535")
    return web.json_response(await service.set_brightness(level, _addresses(service, body)))


@requires("viewer")
async def reports_list(request: web.Request) -> web.Response:
    return web.json_response({"reports": request.app[SERVICE].reports()})


@requires("viewer")
async def report_get(request: web.Request) -> web.Response:
    path = request.app[SERVICE].report_path(request.match_info["name"])
    content_type = "application/json" if path.suffix == ".json" else "text/html"
    return web.Response(body=path.read_bytes(), content_type=content_type, charset="utf-8")


ROUTES = [
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
    ("POST", "/api/v1/brightness", brightness),
    ("GET", "/api/v1/reports", reports_list),
    ("GET", "/api/v1/reports/{name}", report_get),
]


def make_app(service: Service, tokens: TokenStore, limiter: RateLimiter | None = None) -> web.Application:
    app = web.Application(middlewares=[errors_as_json, auth_middleware(tokens, limiter or RateLimiter())],
                          client_max_size=1024 ** 2)
    app[SERVICE] = service
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)

    async def on_startup(app: web.Application) -> None:
        await service.start()

    async def on_cleanup(app: web.Application) -> None:
        await service.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
