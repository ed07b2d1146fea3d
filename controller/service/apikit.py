"""What every API module shares: the service key, JSON bodies, errors as JSON, the caller's name.

The API is split by feature (``app.py`` for the core, ``api_*.py`` for self-tests,
faults and upgrades), each module with its own ``ROUTES`` and its own OpenAPI
fragment; this module is the small common ground they all import, so no
feature module imports another.
"""

from __future__ import annotations

import json

from aiohttp import web

from controller.errors import ConfigError, LedwardenError, NotFound, PayloadError
from controller.service.auth import TOKEN
from controller.service.state import Service

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
    """The request's JSON object body ({} when there is none)."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError as exc:
        raise PayloadError(f"the request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("the request body must be a JSON object")
    return data


def addresses_in(body: dict) -> list[int] | None:
    """The optional ``addresses`` list of a body, checked; None means every configured card."""
    addresses = body.get("addresses")
    if addresses is None:
        return None
    if not isinstance(addresses, list) or not addresses or not all(
            isinstance(a, int) and not isinstance(a, bool) and 1 <= a <= 240 for a in addresses):
        raise PayloadError("addresses must be a non-empty list of card addresses 1..240 "
                           "(leave it out for every card)")
    return addresses


def upload_in(body: dict, holding: str) -> str:
    """The ``upload`` id a body names (a completed upload, by its SHA-256), checked for shape."""
    upload = body.get("upload")
    if not isinstance(upload, str):
        raise PayloadError(f'say which upload holds {holding}: {{"upload": "<its SHA-256>"}}')
    return upload


def who(request: web.Request) -> str:
    """The calling token's name, recorded on jobs and in the fault log."""
    token = request.get(TOKEN)
    return token.name if token else ""


def int_param(request: web.Request, name: str, what: str) -> int:
    """A numeric path parameter, or 404 naming what was not found."""
    try:
        return int(request.match_info[name])
    except ValueError:
        raise NotFound(f"no {what} {request.match_info[name]!r}") from None
