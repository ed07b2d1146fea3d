"""The wall's brightness over the API: read it, set it by hand, set or clear its schedule.

``GET /brightness`` (viewer) shows the current brightness in percent, where
it comes from (hand, schedule, screen file) and the schedule with its next
entry.  ``POST /brightness`` (installer) sets it by hand, in ``percent``
(or, as before, a card ``level``), on every cabinet or some cards, each read
back; it holds until the schedule's next entry.  ``POST
/brightness/schedule`` sets the schedule and ``DELETE`` clears it
(installer).  What the numbers mean: :mod:`controller.service.brightness`.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from controller.brightness import LEVEL_MAX, is_percent, level_of_percent
from controller.brightness_schedule import Schedule
from controller.errors import ConfigError, PayloadError
from controller.service.apikit import SERVICE, addresses_in, body_of, number_in, who
from controller.service.auth import requires

OPENAPI = Path(__file__).with_name("openapi.d") / "brightness.json"


@requires("viewer")
async def brightness_get(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].brightness.view())


@requires("installer")
async def brightness_set(request: web.Request) -> web.Response:
    """Exactly one of ``percent`` (0..100) and ``level`` (0..65535): one number, one meaning."""
    body = await body_of(request, ("percent", "level", "addresses"))
    if ("percent" in body) == ("level" in body):
        raise PayloadError('give the brightness as "percent" (0..100) or as a card "level" '
                           '(0..65535), one of the two')
    if "percent" in body:
        if not is_percent(body["percent"]):
            raise PayloadError("percent must be a number 0..100")
        level = level_of_percent(body["percent"])
    else:
        level = number_in(body, "level", 0, LEVEL_MAX)
    service = request.app[SERVICE]
    return web.json_response(await service.brightness.set_by_hand(level, addresses_in(body),
                                                                  who(request)))


@requires("installer")
async def schedule_set(request: web.Request) -> web.Response:
    body = await body_of(request, ("entries", "fade_s"))
    try:
        schedule = Schedule.from_dict(body)
    except ConfigError as exc:
        raise PayloadError(str(exc)) from None
    return web.json_response(await request.app[SERVICE].brightness.set_schedule(schedule,
                                                                                who(request)))


@requires("installer")
async def schedule_clear(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SERVICE].brightness.set_schedule(None, who(request)))


ROUTES = [
    ("GET", "/api/v1/brightness", brightness_get),
    ("POST", "/api/v1/brightness", brightness_set),
    ("POST", "/api/v1/brightness/schedule", schedule_set),
    ("DELETE", "/api/v1/brightness/schedule", schedule_clear),
]
