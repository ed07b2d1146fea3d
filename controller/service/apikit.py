"""What every API module shares: the service key, JSON bodies, errors as JSON, the caller's name.

The API is split by feature (``app.py`` for the core, ``api_*.py`` for self-tests,
faults and upgrades), each module with its own ``ROUTES`` and its own OpenAPI
fragment; this module is the small common ground they all import, so no
feature module imports another.

It is also the one place requests are parsed, so a class of hostile input is
refused once for every route: :func:`body_of` bounds the JSON's nesting and
refuses fields the call does not take, :func:`number_in` refuses booleans
where numbers are meant, and :func:`int_param` and :func:`int_query` read
whole numbers within a range, so a 23-digit id is a 404 rather than an
``OverflowError`` in SQLite.  The OpenAPI document says the same limits, and
``tests/service/test_openapi_fuzz.py`` holds the two to each other.
"""

from __future__ import annotations

import re

from aiohttp import web

from controller import jsonin
from controller.cardaddress import ADDR_FIRST_CARD, ADDR_LAST_CARD, is_card_address
from controller.errors import ConfigError, LedwardenError, NotFound, PayloadError
from controller.jsonin import JsonObject
from controller.service.auth import TOKEN
from controller.service.state import Service

SERVICE = web.AppKey("service", Service)
#: The largest id a path may name: SQLite's largest row id (jobs, faults and runs count from 1).
MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")
_ID_PARAM = re.compile(r"\{(job_id|fault_id|run_id)\}")


@web.middleware
async def errors_as_json(request: web.Request, handler):
    """Turn the project's errors, and aiohttp's own (no such path, method, too large), into JSON
    answers with the right status: every error the API gives is ``{"error": sentence}``."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return web.json_response({"error": _http_error(request, exc)}, status=exc.status,
                                 headers={k: v for k, v in exc.headers.items() if k == "Allow"})
    except NotFound as exc:
        return web.json_response({"error": str(exc)}, status=404)
    except (PayloadError, ConfigError, ValueError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except LedwardenError as exc:
        return web.json_response({"error": str(exc)}, status=409)


def _http_error(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"there is no {request.path} (see /api/v1/openapi.json for what there is)"
    if exc.status == 405:
        return f"{request.path} does not take {request.method}; it takes {exc.headers.get('Allow')}"
    return exc.text or exc.reason


def routed(path: str) -> str:
    """A route's path as registered: an id parameter matches digits only, so ``/faults/clear``
    is never taken for fault "clear" (and a wrong method there is a 405 naming POST alone)."""
    return _ID_PARAM.sub(r"{\1:[0-9]+}", path)


async def body_of(request: web.Request, fields: tuple[str, ...]) -> JsonObject:
    """The request's JSON object body ({} when there is none), holding only ``fields``.

    Nesting is bounded before parsing (:func:`controller.jsonin.loads`), and a
    field the call does not take is refused rather than ignored: a misspelt
    ``adresses`` must not turn into "every card".
    """
    if not request.can_read_body:
        return {}
    try:
        data = jsonin.loads(await request.read())
    except ValueError as exc:
        raise PayloadError(f"the request body is not acceptable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("the request body must be a JSON object")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        takes = f"takes only {', '.join(fields)}" if fields else "takes no fields"
        raise PayloadError(f"this call {takes}, not {unknown[0]!r}")
    return data


def number_in(body: JsonObject, name: str, lo: int, hi: int, default: int | None = None) -> int:
    """A whole-number field within ``lo..hi`` (``default`` when absent); ``true`` is not 1."""
    value = jsonin.whole_number(body.get(name, default))
    if value is None or not lo <= value <= hi:
        raise PayloadError(f"{name} must be a whole number {lo}..{hi}")
    return value


def addresses_in(body: JsonObject) -> list[int] | None:
    """The optional ``addresses`` list of a body, checked; None means every configured card."""
    addresses = body.get("addresses")
    if addresses is None:
        return None
    numbers = [jsonin.whole_number(a) for a in addresses] if isinstance(addresses, list) else []
    if not numbers or not all(a is not None and is_card_address(a) for a in numbers):
        raise PayloadError(f"addresses must be a non-empty list of card addresses "
                           f"{ADDR_FIRST_CARD}..{ADDR_LAST_CARD} (leave it out for every card)")
    return [a for a in numbers if a is not None]  # none is None, as just checked


def upload_in(body: JsonObject, holding: str) -> str:
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
    """A numeric path parameter (an id, 1..:data:`MAX_ID`), or 404 naming what was not found."""
    raw = request.match_info[name]
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_ID:
        raise NotFound(f"no {what} {raw[:30]!r}")
    return int(raw)


def int_query(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """A whole-number query parameter within ``lo..hi``, ``default`` when absent; else 400."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw):
        raise PayloadError(f"{name} must be a whole number, not {raw[:30]!r}")
    if not lo <= int(raw) <= hi:
        raise PayloadError(f"{name} must be {lo}..{hi}, not {raw}")
    return int(raw)
