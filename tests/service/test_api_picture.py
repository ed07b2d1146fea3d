"""The picture's API behind the real auth middleware and error handling: viewers read,
installers change, bad input is a 4xx with the reason and changes nothing; and its
OpenAPI fragment names exactly its routes and roles."""

from __future__ import annotations

import asyncio
import json
import tomllib

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.config import loads_screen
from controller.faultlog import FaultLog
from controller.picture.live import Picture
from controller.picture.settings import parse_correction
from controller.picture.store import PictureStore
from controller.service import api_picture
from controller.service.apikit import SERVICE, errors_as_json
from controller.service.auth import ROLES, RateLimiter, TokenStore, access_of, auth_middleware
from support.picture_screen import SCREEN, csv_text, matrix

LAYOUT = loads_screen(SCREEN)


class StubService:
    """Just what the picture routes use of the service."""

    def __init__(self, picture) -> None:
        self.picture = picture


class Rig:
    def __init__(self, tmp_path, wired: bool = True) -> None:
        self.tmp = tmp_path
        self.faults = FaultLog(tmp_path / "faults.db")
        self.store = TokenStore(tmp_path / "tokens.db")
        self.tokens = {role: self.store.create(f"{role}-1", role) for role in ROLES}
        self.picture = Picture(LAYOUT, parse_correction(tomllib.loads(SCREEN), "s.toml", (1, 2)),
                               PictureStore(tmp_path), threads=1, journal=self.faults)
        self.picture.start()
        self.wired = wired

    def app(self) -> web.Application:
        app = web.Application(middlewares=[errors_as_json,
                                           auth_middleware(self.store, RateLimiter(limit=1000))])
        app[SERVICE] = StubService(self.picture if self.wired else None)
        for method, path, handler in api_picture.ROUTES:
            app.router.add_route(method, path, handler)
        return app

    def call(self, role, method, path, **kw):
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

        async def go():
            async with TestClient(TestServer(self.app())) as c:
                resp = await c.request(method, path, headers=headers, **kw)
                return resp.status, json.loads(await resp.text())
        return asyncio.run(go())


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.faults.close()


def test_viewers_read_and_installers_change(rig):
    status, body = rig.call("viewer", "GET", "/api/v1/correction")
    assert status == 200 and body["gamma"] == 2.2 and body["overrides"] == {}
    assert rig.call("viewer", "POST", "/api/v1/correction", json={"gamma": 2.4})[0] == 403
    assert rig.call(None, "GET", "/api/v1/calibration")[0] == 401
    status, body = rig.call("installer", "POST", "/api/v1/correction", json={"gamma": 2.4})
    assert status == 200 and body["gamma"] == 2.4 and body["set_by"] == "installer-1"
    status, body = rig.call("installer", "POST", "/api/v1/calibration/import?cabinet=1&format=csv"
                            "&activate=true&name=cab1.csv", data=csv_text(matrix(1)).encode())
    assert status == 200 and body["active"] == 1 and body["versions"][0]["source"] == "cab1.csv"
    status, body = rig.call("viewer", "GET", "/api/v1/calibration")
    assert [c["in_use"] for c in body["cabinets"]] == [{"from": "stored", "version": 1}, None]
    assert rig.call("installer", "POST", "/api/v1/calibration/rollback", json={"cabinet": 1})[1][
        "active"] is None
    assert rig.call("installer", "POST", "/api/v1/calibration/activate",
                    json={"cabinet": 1, "version": 1})[1]["active"] == 1
    codes = [f.code for f in rig.faults.list(state="all")]
    assert sorted(codes) == sorted(["picture.correction.changed", "picture.calibration.imported",
                                    "picture.calibration.rolled_back",
                                    "picture.calibration.activated"])


@pytest.mark.parametrize("method, path, kw, status, words", [
    ("POST", "/api/v1/correction", {"json": {"gamma": 0}}, 400, "gamma = 0 is out of range"),
    ("POST", "/api/v1/correction", {"json": {"curve": "srgb"}}, 400, "is not one of"),
    ("POST", "/api/v1/correction", {"json": {"white": [1, 2, 1]}}, 400, "white g = 2"),
    ("POST", "/api/v1/correction", {"json": {"brightness": 50}}, 400, "not 'brightness'"),
    ("POST", "/api/v1/correction", {"json": {}}, 400, "say what to change"),
    ("POST", "/api/v1/correction", {"json": {"reset": True, "gamma": 2}}, 400, "reset goes alone"),
    ("POST", "/api/v1/calibration/import?cabinet=1&format=csv", {"data": b"x,y\n"}, 400,
     "the first line must be the header"),
    ("POST", "/api/v1/calibration/import?cabinet=9&format=csv", {"data": b"x"}, 404,
     "the screen has no cabinet 9"),
    ("POST", "/api/v1/calibration/import?cabinet=1&format=png", {"data": b"x"}, 400,
     "?format=csv or ?format=npz"),
    ("POST", "/api/v1/calibration/import?format=csv", {"data": b"x"}, 400, "?cabinet=N"),
    ("POST", "/api/v1/calibration/import?cabinet=1&format=csv", {"data": b"x" * 200_000}, 400,
     "larger than a 32x16 cabinet's calibration can be"),
    ("POST", "/api/v1/calibration/import?cabinet=1&format=npz", {}, 400, "must be the calibration file"),
    ("POST", "/api/v1/calibration/activate", {"json": {"cabinet": 1, "version": 3}}, 404,
     "cabinet 1 has no calibration version 3"),
    ("POST", "/api/v1/calibration/activate", {"json": {"cabinet": 1, "version": True}}, 400,
     "version must be a whole number"),
    ("POST", "/api/v1/calibration/rollback", {"json": {"cabinet": 2}}, 409, "nothing to roll back"),
    ("POST", "/api/v1/calibration/rollback", {"json": {"cabinet": 0}}, 400, "cabinet must be"),
])
def test_bad_input_is_refused_with_the_reason_and_changes_nothing(rig, method, path, kw, status,
                                                                  words):
    before = rig.picture.pipeline
    got, body = rig.call("installer", method, path, **kw)
    assert (got, words in body["error"]) == (status, True), body
    assert rig.picture.pipeline is before
    assert rig.faults.list(state="all") == []


def test_a_service_without_a_live_picture_says_so(tmp_path):
    rig = Rig(tmp_path, wired=False)
    status, body = rig.call("viewer", "GET", "/api/v1/correction")
    assert status == 409 and "without a live picture" in body["error"]
    rig.faults.close()


def test_the_fragment_documents_exactly_these_routes_and_roles():
    doc = json.loads(api_picture.OPENAPI.read_text())
    documented = {(m.upper(), p): op["x-ledwarden-role"] for p, ops in doc["paths"].items()
                  for m, op in ops.items()}
    assert documented == {(m, p): access_of(h) for m, p, h in api_picture.ROUTES}
