"""The live picture over the API: correction settings and per-cabinet calibration.

Reading needs ``viewer``; every change needs ``installer`` and is filed in the
fault log's journal with the caller's token name (:mod:`controller.picture.live`).
A refused change (a gamma of 0, a calibration row past the bound, a file for
another cabinet size) is a 4xx naming the rule, and the running picture is
unchanged: the new pipeline is built and checked before anything is written or
swapped.

A calibration file is sent as the raw body of ``POST /calibration/import``
(``?cabinet=N&format=csv|npz``), read as a stream up to what a calibration of
that cabinet's size can take, so a cabinet's CSV of a few megabytes passes the
API's 1 MiB limit on JSON bodies without a resumable upload (and without the
``service`` role those need: importing calibration is an installer's job).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from controller import jsonin
from controller.cardaddress import ADDR_FIRST_CARD, ADDR_LAST_CARD
from controller.errors import LedwardenError, NotFound, PayloadError
from controller.jsonin import JsonObject
from controller.picture import calibration
from controller.service.apikit import SERVICE, body_of, int_query, number_in, who
from controller.service.auth import requires

OPENAPI = Path(__file__).with_name("openapi.d") / "picture.json"
FORMATS = ("csv", "npz")


def _picture(request: web.Request):
    picture = request.app[SERVICE].picture
    if picture is None:
        raise LedwardenError("this controller runs without a live picture (started without the "
                             "screen's correction); restart it with `ledwarden controller run`")
    return picture


@requires("viewer")
async def correction_get(request: web.Request) -> web.Response:
    return web.json_response(_picture(request).correction_view())


@requires("installer")
async def correction_set(request: web.Request) -> web.Response:
    body = await body_of(request, ("curve", "gamma", "white", "reset"))
    if not body:
        raise PayloadError('say what to change: {"curve": …}, {"gamma": …}, {"white": [r, g, b]} '
                           'or {"reset": true}')
    if "reset" in body and not isinstance(body["reset"], bool):
        raise PayloadError("reset must be true or false")
    return web.json_response(await _picture(request).set_correction(body, who(request)))


@requires("viewer")
async def calibration_list(request: web.Request) -> web.Response:
    return web.json_response(_picture(request).calibration_view())


def _cabinet_in(body: JsonObject) -> int:
    return number_in(body, "cabinet", ADDR_FIRST_CARD, ADDR_LAST_CARD)


@requires("installer")
async def calibration_import(request: web.Request) -> web.Response:
    """The body is the file; it is read only up to what the cabinet's calibration can take."""
    picture = _picture(request)
    if "cabinet" not in request.query:
        raise PayloadError("say which cabinet the file is for: ?cabinet=N (its card address)")
    address = int_query(request, "cabinet", 0, ADDR_FIRST_CARD, ADDR_LAST_CARD)
    fmt = request.query.get("format", "")
    if fmt not in FORMATS:
        raise PayloadError(f"say the file's format: ?format=csv or ?format=npz, not {fmt[:20]!r}")
    activate = request.query.get("activate", "false")
    if activate not in ("true", "false"):
        raise PayloadError("activate must be true or false")
    try:
        cab = picture.layout.cabinet(address)
    except KeyError:
        raise NotFound(f"the screen has no cabinet {address}") from None
    limit = cab.width * cab.height * (calibration.MAX_CSV_BYTES_PER_PIXEL if fmt == "csv"
                                      else calibration.MAX_NPZ_BYTES_PER_PIXEL) + 4096
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise PayloadError(f"the file is larger than a {cab.width}x{cab.height} cabinet's "
                               f"calibration can be ({limit} bytes): is it for this cabinet?")
        chunks.append(chunk)
    if not size:
        raise PayloadError("the request body must be the calibration file (CSV or .npz)")
    source = request.query.get("name", fmt)[:200]
    answer = await picture.import_calibration(address, b"".join(chunks), fmt, who(request),
                                              activate=activate == "true", source=source)
    return web.json_response(answer)


@requires("installer")
async def calibration_activate(request: web.Request) -> web.Response:
    body = await body_of(request, ("cabinet", "version"))
    version = jsonin.whole_number(body.get("version"))
    if version is None or version < 1:
        raise PayloadError("version must be a whole number from 1 (see GET /api/v1/calibration)")
    return web.json_response(await _picture(request).activate(_cabinet_in(body), version,
                                                              who(request)))


@requires("installer")
async def calibration_rollback(request: web.Request) -> web.Response:
    body = await body_of(request, ("cabinet",))
    return web.json_response(await _picture(request).rollback(_cabinet_in(body), who(request)))


ROUTES = [
    ("GET", "/api/v1/correction", correction_get),
    ("POST", "/api/v1/correction", correction_set),
    ("GET", "/api/v1/calibration", calibration_list),
    ("POST", "/api/v1/calibration/import", calibration_import),
    ("POST", "/api/v1/calibration/activate", calibration_activate),
    ("POST", "/api/v1/calibration/rollback", calibration_rollback),
]
