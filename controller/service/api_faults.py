"""The fault log over the API: list, show, clear, export (``docs/faults.md``).

Reading needs ``viewer``; clearing needs ``installer`` (so service
engineers have it too), and records the caller's token name as
``cleared_by``, so the history says who declared a problem handled.  Every
call into the log runs in a worker thread: the log's lock may be held by the
bus worker waiting for an fsync, and the event loop must not wait with it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

from aiohttp import web

from controller.errors import PayloadError
from controller.faultlog.export import FORMATS, to_csv, to_json
from controller.service.apikit import SERVICE, body_of, int_param, int_query, who
from controller.service.auth import requires
from controller.timeutil import utc_text

log = logging.getLogger("ledwarden.faults")

OPENAPI = Path(__file__).with_name("openapi.d") / "faults.json"
#: Most faults one list answer carries; the export has no limit.
MAX_LIMIT = 10000


def _filters(request: web.Request, default_state: str) -> dict[str, str | None]:
    """The list filters from the query string, in the fault log's terms (it checks them)."""
    q = request.query
    return {"state": q.get("state", default_state), "severity": q.get("severity"),
            "source": q.get("source") or None, "since": q.get("since")}


def _limit(request: web.Request) -> int:
    """``limit`` from the query: capped, because one answer is built in memory on the board."""
    return int_query(request, "limit", 1000, 1, MAX_LIMIT)


@requires("viewer")
async def faults_list(request: web.Request) -> web.Response:
    """Faults with the active counts, so a status view needs one call."""
    faults = request.app[SERVICE].faults
    found = await asyncio.to_thread(faults.list, **_filters(request, "active"),
                                    limit=_limit(request))
    counts = await asyncio.to_thread(faults.counts)
    return web.json_response({"faults": [f.as_dict() for f in found], "counts": counts})


@requires("viewer")
async def fault_get(request: web.Request) -> web.Response:
    """One fault; a non-numeric id is a 404 like an unknown one."""
    fault_id = int_param(request, "fault_id", "fault")
    fault = await asyncio.to_thread(request.app[SERVICE].faults.get, fault_id)
    return web.json_response(fault.as_dict())


@requires("installer")
async def fault_clear(request: web.Request) -> web.Response:
    """Clear one fault and answer with it, so the caller sees who cleared it, and when.

    Clearing a cleared fault answers ``cleared: 0`` rather than an error:
    two engineers clearing the same fault is not a mistake worth a failure.
    """
    faults = request.app[SERVICE].faults
    fault_id = int_param(request, "fault_id", "fault")
    cleared = await asyncio.to_thread(faults.clear, fault_id, by=who(request))
    fault = await asyncio.to_thread(faults.get, fault_id)
    if cleared:
        log.info("%s cleared fault %d (%s on %s)", who(request), fault_id, fault.code, fault.source)
    return web.json_response({"cleared": cleared, "fault": fault.as_dict()})


@requires("installer")
async def faults_clear(request: web.Request) -> web.Response:
    """Clear by code and/or source; an empty body is refused, never taken to mean "all"."""
    body = await body_of(request, ("code", "source"))
    code, source = body.get("code"), body.get("source")
    for name, value in (("code", code), ("source", source)):
        if name in body and (not isinstance(value, str) or not value):
            raise PayloadError(f"{name} must be a non-empty string")
    if code is None and source is None:
        raise PayloadError('say which faults to clear: {"code": …}, {"source": …} or both '
                           "(one fault: POST /api/v1/faults/{id}/clear)")
    cleared = await asyncio.to_thread(request.app[SERVICE].faults.clear, code=code,
                                      source=source, by=who(request))
    log.info("%s cleared %d fault(s) (code %s, source %s)", who(request), cleared, code, source)
    return web.json_response({"cleared": cleared})


@requires("viewer")
async def faults_export(request: web.Request) -> web.Response:
    """The log as a file; the name carries the controller and the time, as it travels alone."""
    fmt = request.query.get("format", "csv")
    if fmt not in FORMATS:
        raise PayloadError(f"format must be {' or '.join(FORMATS)}, not {fmt!r}")
    faults = request.app[SERVICE].faults
    found = await asyncio.to_thread(faults.list, **_filters(request, "all"), limit=None)
    host = socket.gethostname()
    stamp = utc_text()
    name = f"faults-{host}-{stamp.replace(':', '').replace('-', '')}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        return web.Response(text=to_csv(found), content_type="text/csv", charset="utf-8",
                            headers=headers)
    return web.Response(text=to_json(found, exported=stamp, controller=host),
                        content_type="application/json", charset="utf-8", headers=headers)


# The fixed paths come before /faults/{fault_id}, so "export" and "clear" are never ids.
ROUTES = [
    ("GET", "/api/v1/faults", faults_list),
    ("GET", "/api/v1/faults/export", faults_export),
    ("POST", "/api/v1/faults/clear", faults_clear),
    ("GET", "/api/v1/faults/{fault_id}", fault_get),
    ("POST", "/api/v1/faults/{fault_id}/clear", fault_clear),
]
