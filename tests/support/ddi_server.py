"""A DDI server written from hawkBit's DDI API document, for what gooseBit does not serve.

Its answers are the document's published examples (``GET /{tenant}/controller/v1/{id}``,
``deploymentBase``, ``cancelAction``, ``configData``, ``feedback``) with our action's
artifacts filled in; it records every request the device makes, serves downloads with
``Range`` and can cut a download after N bytes once, as a dropped mobile link would.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

TENANT, TARGET, TOKEN = "DEFAULT", "hall-a-wall", "7b1f2c9d0e4a5b6c8d9e0f1a2b3c4d5e"


@dataclass
class Action:
    id: str
    files: list[Path]
    update: str = "forced"
    download: str = "forced"
    window: str | None = None


@dataclass
class DdiServer:
    sleep: str = "00:00:30"
    action: Action | None = None
    cancel: tuple[str, str] | None = None        # (cancel id, stop id)
    ask_config: bool = True
    cut_once_after: int | None = None
    ignore_range: bool = False
    wrong_hash: bool = False
    #: Like gooseBit: each artifact carries a SHA-1 only.
    sha1_only: bool = False
    garbage: bool = False
    requests: list[tuple[str, str, dict]] = field(default_factory=list)
    feedback: list[tuple[str, dict]] = field(default_factory=list)
    config: list[dict] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    url: str = ""
    #: Like hawkBit: an action closed by the device is no longer offered (False: offered again,
    #: as after an acknowledgement the device never received).
    close_on_feedback: bool = True
    #: Bytes a second a download is served at (None: as fast as it goes), so a test can stop
    #: the device in the middle of one.
    rate: int | None = None
    #: Seconds a closed feedback waits before it is recorded, and again before it is answered:
    #: a window in which the device can die before the server took its final status (then it
    #: is dropped, as if lost on the way) or after (it counts, the answer is lost).
    final_delay: float = 0.0
    #: time.monotonic() of each download request and of each closed feedback's arrival.
    download_times: list[float] = field(default_factory=list)
    closed_arrivals: list[float] = field(default_factory=list)

    def base(self) -> str:
        return f"{self.url}/{TENANT}/controller/v1/{TARGET}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        p = f"/{TENANT}/controller/v1/{TARGET}"
        app.router.add_get(p, self.root)
        app.router.add_put(p + "/configData", self.config_data)
        app.router.add_get(p + "/deploymentBase/{id}", self.deployment)
        app.router.add_post(p + "/deploymentBase/{id}/feedback", self.post_feedback)
        app.router.add_get(p + "/cancelAction/{id}", self.cancel_action)
        app.router.add_post(p + "/cancelAction/{id}/feedback", self.post_feedback)
        app.router.add_get(p + "/softwaremodules/{m}/artifacts/{name}", self.artifact)
        return app

    @web.middleware
    async def _auth(self, request, handler):
        self.requests.append((request.method, request.path, dict(request.headers)))
        if request.headers.get("Authorization") != f"TargetToken {TOKEN}":
            return web.json_response({"message": "unauthorized"}, status=401)
        return await handler(request)

    async def root(self, request):
        if self.garbage:
            return web.Response(text="<html>proxy error</html>", content_type="text/html")
        links = {}
        if self.cancel:
            links["cancelAction"] = {"href": f"{self.base()}/cancelAction/{self.cancel[0]}"}
        elif self.action:
            links["deploymentBase"] = {"href": f"{self.base()}/deploymentBase/{self.action.id}?c=-2129030598"}
        if self.ask_config:
            links["configData"] = {"href": f"{self.base()}/configData"}
        return web.json_response({"config": {"polling": {"sleep": self.sleep}}, "_links": links})

    async def config_data(self, request):
        body = await request.json()
        self.config.append(body)
        self.ask_config = False
        return web.Response(status=200)

    async def deployment(self, request):
        a = self.action
        assert a is not None and request.match_info["id"] == a.id
        arts = []
        for i, f in enumerate(a.files):
            data = f.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            if self.wrong_hash:
                sha = hashlib.sha256(b"something else").hexdigest()
            href = f"{self.base()}/softwaremodules/{i}/artifacts/{f.name}"
            hashes = {"sha1": hashlib.sha1(data).hexdigest(), "md5": hashlib.md5(data).hexdigest(),
                      "sha256": sha}
            if self.sha1_only:
                hashes = {"sha1": hashlib.sha1(b"something else" if self.wrong_hash else data
                                               ).hexdigest()}
            arts.append({"filename": f.name, "hashes": hashes,
                         "size": len(data),
                         "_links": {"download": {"href": href}, "download-http": {"href": href},
                                    "md5sum-http": {"href": href + ".MD5SUM"}}})
        doc = {"id": a.id, "deployment": {"download": a.download, "update": a.update,
                                          "chunks": [{"part": "bApp", "version": "1.0",
                                                      "name": "ledwarden", "artifacts": arts}]},
               "actionHistory": {"status": "RUNNING", "messages": []}}
        if a.window:
            doc["deployment"]["maintenanceWindow"] = a.window
        return web.json_response(doc)

    async def post_feedback(self, request):
        doc = await request.json()
        final = doc["status"]["execution"] == "closed" and "/cancelAction/" not in request.path
        if final and self.final_delay:
            self.closed_arrivals.append(time.monotonic())
            await asyncio.sleep(self.final_delay)
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=503)      # the device died first: lost on the way
        self.feedback.append((request.path, doc))
        if self.close_on_feedback and doc["status"]["execution"] in ("closed", "rejected"):
            if "/cancelAction/" in request.path:
                self.cancel = None
                if doc["status"]["execution"] == "closed":
                    self.action = None
            else:
                self.action = None
        if final and self.final_delay:
            await asyncio.sleep(self.final_delay)
        return web.Response(status=200)

    async def cancel_action(self, request):
        assert self.cancel and request.match_info["id"] == self.cancel[0]
        return web.json_response({"id": self.cancel[0], "cancelAction": {"stopId": self.cancel[1]}})

    async def artifact(self, request):
        self.download_times.append(time.monotonic())
        f = self.action.files[int(request.match_info["m"])]
        data = f.read_bytes()
        rng = request.headers.get("Range")
        start = 0
        if rng and not self.ignore_range:
            self.ranges.append(rng)
            start = int(rng.removeprefix("bytes=").rstrip("-"))
        body = data[start:]
        resp = web.StreamResponse(status=206 if start else 200)
        resp.content_length = len(body)
        if start:
            resp.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        await resp.prepare(request)
        if self.cut_once_after is not None:
            cut, self.cut_once_after = self.cut_once_after, None
            await resp.write(body[:cut])
            request.transport.close()          # the link drops mid-download
            return resp
        if self.rate:
            piece = max(1, self.rate // 10)
            for at in range(0, len(body), piece):
                try:
                    await resp.write(body[at:at + piece])
                except ConnectionResetError:         # the device died mid-download
                    return resp
                await asyncio.sleep(0.1)
        else:
            await resp.write(body)
        await resp.write_eof()
        return resp

    def closed(self) -> list[dict]:
        return [fb["status"] for path, fb in self.feedback if fb["status"]["execution"] == "closed"]


class Serving:
    """``server`` on 127.0.0.1 in a thread of its own, for a controller process to poll."""

    def __init__(self, server: DdiServer) -> None:
        self.server = server

    def __enter__(self) -> DdiServer:
        import asyncio
        import threading
        ready = threading.Event()
        self.loop = asyncio.new_event_loop()

        async def start():
            self.runner = web.AppRunner(self.server.app())
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", 0).start()
            self.server.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
            ready.set()

        def main():
            self.loop.run_until_complete(start())
            self.loop.run_forever()
            self.loop.run_until_complete(self.runner.cleanup())

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert ready.wait(10)
        return self.server

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
