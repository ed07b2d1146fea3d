"""The frame loop's source and video statistics over the API (issue 16, ``docs/video-io.md``).

``GET /api/v1/source`` and ``GET /api/v1/video`` need ``viewer``: they
change nothing.  ``POST /api/v1/source`` needs ``installer``, because it
changes what the wall shows; the caller's token name goes into the fault
log's ``source.changed`` entry.  A controller started with ``--no-frames``
has no loop, so these answer 409 saying so rather than pretend.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from controller.errors import LedwardenError
from controller.service.apikit import SERVICE, body_of, who
from controller.service.auth import requires
from controller.service.state import Service
from controller.service.videosource import SourceSwitch

OPENAPI = Path(__file__).with_name("openapi.d") / "video.json"
SWITCH: web.AppKey[SourceSwitch] = web.AppKey("source_switch", SourceSwitch)


def _switch(request: web.Request) -> SourceSwitch:
    switch = request.app.get(SWITCH)
    if switch is None:
        raise LedwardenError("this controller runs without a frame loop (--no-frames): there "
                             "is no source to show or switch; restart it without --no-frames")
    return switch


@requires("viewer")
async def source_get(request: web.Request) -> web.Response:
    return web.json_response(_switch(request).show())


@requires("installer")
async def source_set(request: web.Request) -> web.Response:
    body = await body_of(request, ("spec",))
    return web.json_response(await _switch(request).set(body.get("spec"), who(request)))


@requires("viewer")
async def video(request: web.Request) -> web.Response:
    """Everything the frame loop knows about video: source, sink, latency, the sink's cards."""
    loop = _switch(request).loop
    return web.json_response({"source": loop.source_stats(), "sink": loop.sink_stats(),
                              "latency": loop.latency(), "cards": loop.video_cards(),
                              "fps": loop.stats()["fps"], "target_fps": loop.fps})


ROUTES = [
    ("GET", "/api/v1/source", source_get),
    ("POST", "/api/v1/source", source_set),
    ("GET", "/api/v1/video", video),
]


def setup(app: web.Application, service: Service) -> None:
    """Attach the source switch to the frame loop; a service run without one (``--no-frames``)
    has no source to switch."""
    if service.frame_loop is not None:
        app[SWITCH] = SourceSwitch(service.frame_loop, service.faults, service.state_dir)
