"""The fault log's API: list, show, clear, export, behind the real auth middleware and error
handling, on a real local server; and its OpenAPI fragment against its routes."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.faultlog import FaultLog
from controller.service import api_faults
from controller.service import app as app_module
from controller.service.apikit import SERVICE, errors_as_json
from controller.service.auth import (
    ROLES,
    RateLimiter,
    TokenStore,
    access_of,
    auth_middleware,
)

T0 = 1_800_000_000.0


class StubService:
    """Just what the fault routes use of the service."""

    def __init__(self, faults: FaultLog) -> None:
        self.faults = faults


class Rig:
    def __init__(self, tmp_path) -> None:
        self.faults = FaultLog(tmp_path / "faults.db")
        self.store = TokenStore(tmp_path / "tokens.db")
        self.tokens = {role: self.store.create(f"{role}-1", role) for role in ROLES}

    def app(self) -> web.Application:
        # The same middleware stack as make_app, without the rest of the service.
        app = web.Application(middlewares=[errors_as_json,
                                           auth_middleware(self.store, RateLimiter(limit=1000))])
        app[SERVICE] = StubService(self.faults)
        for method, path, handler in api_faults.ROUTES:
            app.router.add_route(method, path, handler)
        return app

    def call(self, role: str | None, method: str, path: str, **kw):
        """(status, body, headers) of one request; body is JSON when the answer is."""
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

        async def go():
            async with TestClient(TestServer(self.app())) as c:
                resp = await c.request(method, path, headers=headers, **kw)
                text = await resp.text()
                body = json.loads(text) if resp.content_type == "application/json" else text
                return resp.status, body, resp.headers
        return asyncio.run(go())


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.faults.close()


def seed(faults: FaultLog) -> None:
    faults.record("bus.timeout", "warning", "card:0x03", {"tries": 3}, at=T0)
    faults.record("card.overtemp", "critical", "card:0x03/module:1", {"temp_c": 91.5}, at=T0 + 60)
    faults.record("frameloop.overrun", "info", "controller", at=T0 + 120)
    faults.record("card.offline", "error", "card:0x05", at=T0 + 180)
    faults.resolve("card.offline", "card:0x05", at=T0 + 240)


# ------------------------------------------------------------------ reading

def test_list_gives_active_faults_newest_first_with_counts(rig):
    seed(rig.faults)
    status, body, _ = rig.call("viewer", "GET", "/api/v1/faults")
    assert status == 200
    assert [f["code"] for f in body["faults"]] == ["frameloop.overrun", "card.overtemp", "bus.timeout"]
    assert body["counts"] == {"active": 3, "by_severity": {"info": 1, "warning": 1, "error": 0,
                                                           "critical": 1}}
    first = body["faults"][2]
    assert first == {"id": 1, "code": "bus.timeout", "severity": "warning", "source": "card:0x03",
                     "first_seen": "2027-01-15T08:00:00Z", "last_seen": "2027-01-15T08:00:00Z",
                     "count": 1, "state": "active", "details": {"tries": 3}, "cleared_at": None,
                     "cleared_by": ""}


@pytest.mark.parametrize("query,codes", [
    ("state=all", ["card.offline", "frameloop.overrun", "card.overtemp", "bus.timeout"]),
    ("state=cleared", ["card.offline"]),
    ("severity=error&state=all", ["card.offline", "card.overtemp"]),
    ("source=card:0x03", ["card.overtemp", "bus.timeout"]),
    ("since=2027-01-15T08:02:00Z&state=all", ["card.offline", "frameloop.overrun"]),
    ("state=all&limit=1", ["card.offline"]),
])
def test_list_filters(rig, query, codes):
    seed(rig.faults)
    status, body, _ = rig.call("viewer", "GET", f"/api/v1/faults?{query}")
    assert status == 200 and [f["code"] for f in body["faults"]] == codes


@pytest.mark.parametrize("query,error", [
    ("state=open", "state must be active, cleared or all"),
    ("severity=fatal", "severity must be one of"),
    ("since=last-tuesday", "is not a date or time"),
    ("limit=many", "limit must be a whole number"),
    ("limit=0", "limit must be 1..10000"),
])
def test_bad_filters_are_400_with_a_sentence(rig, query, error):
    status, body, _ = rig.call("viewer", "GET", f"/api/v1/faults?{query}")
    assert status == 400 and error in body["error"]


def test_one_fault_or_404(rig):
    seed(rig.faults)
    status, body, _ = rig.call("viewer", "GET", "/api/v1/faults/2")
    assert status == 200 and body["details"] == {"temp_c": 91.5}
    for path in ("/api/v1/faults/99", "/api/v1/faults/abc"):
        status, body, _ = rig.call("viewer", "GET", path)
        assert status == 404 and "no fault" in body["error"]


def test_reading_needs_a_token(rig):
    for path in ("/api/v1/faults", "/api/v1/faults/1", "/api/v1/faults/export"):
        assert rig.call(None, "GET", path)[0] == 401


def test_repeats_not_yet_written_are_shown(rig):
    for _ in range(3):
        rig.faults.record("bus.timeout", "warning", "card:0x03")
    status, body, _ = rig.call("viewer", "GET", "/api/v1/faults/1")
    assert (status, body["count"]) == (200, 3)


# ------------------------------------------------------------------ clearing

def test_an_installer_clears_one_fault_and_is_named(rig):
    seed(rig.faults)
    status, body, _ = rig.call("installer", "POST", "/api/v1/faults/1/clear")
    assert status == 200 and body["cleared"] == 1
    assert (body["fault"]["state"], body["fault"]["cleared_by"]) == ("cleared", "installer-1")
    status, body, _ = rig.call("service", "POST", "/api/v1/faults/1/clear")
    assert (status, body["cleared"], body["fault"]["cleared_by"]) == (200, 0, "installer-1")
    assert rig.call("installer", "POST", "/api/v1/faults/99/clear")[0] == 404


def test_a_viewer_cannot_clear_and_nothing_changes(rig):
    seed(rig.faults)
    status, body, _ = rig.call("viewer", "POST", "/api/v1/faults/1/clear")
    assert status == 403 and "installer" in body["error"]
    status, _, _ = rig.call("viewer", "POST", "/api/v1/faults/clear", json={"code": "bus.timeout"})
    assert status == 403
    assert rig.faults.counts()["active"] == 3


def test_clear_by_code_and_source(rig):
    seed(rig.faults)
    status, body, _ = rig.call("service", "POST", "/api/v1/faults/clear",
                               json={"source": "card:0x03"})
    assert (status, body) == (200, {"cleared": 2})
    assert [f.code for f in rig.faults.active()] == ["frameloop.overrun"]
    assert rig.faults.get(2).cleared_by == "service-1"
    status, body, _ = rig.call("installer", "POST", "/api/v1/faults/clear",
                               json={"code": "frameloop.overrun", "source": "card:0x03"})
    assert body == {"cleared": 0}
    status, body, _ = rig.call("installer", "POST", "/api/v1/faults/clear",
                               json={"code": "frameloop.overrun"})
    assert body == {"cleared": 1} and rig.faults.active() == []


@pytest.mark.parametrize("body,error", [
    ({}, "say which faults to clear"),
    ({"code": ""}, "code must be a non-empty string"),
    ({"source": 3}, "source must be a non-empty string"),
    ([1, 2], "must be a JSON object"),
])
def test_clear_without_a_selector_is_400(rig, body, error):
    seed(rig.faults)
    status, answer, _ = rig.call("installer", "POST", "/api/v1/faults/clear", json=body)
    assert status == 400 and error in answer["error"]
    assert rig.faults.counts()["active"] == 3


# ------------------------------------------------------------------ export

def test_csv_export_of_the_whole_log(rig):
    seed(rig.faults)
    status, text, headers = rig.call("viewer", "GET", "/api/v1/faults/export?format=csv")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"].startswith('attachment; filename="faults-')
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["code"] for r in rows] == ["card.offline", "frameloop.overrun", "card.overtemp",
                                         "bus.timeout"]
    assert rows[0]["state"] == "cleared" and json.loads(rows[2]["details"]) == {"temp_c": 91.5}


def test_json_export_with_a_filter(rig):
    seed(rig.faults)
    status, doc, _ = rig.call("viewer", "GET", "/api/v1/faults/export?format=json&state=active"
                                               "&severity=critical")
    assert status == 200 and doc["exported"].endswith("Z") and doc["controller"]
    assert [f["code"] for f in doc["faults"]] == ["card.overtemp"]


def test_export_refuses_an_unknown_format(rig):
    status, body, _ = rig.call("viewer", "GET", "/api/v1/faults/export?format=xlsx")
    assert status == 400 and "csv or json" in body["error"]


# ------------------------------------------------------------------ the document

def test_the_fragment_documents_exactly_these_routes_and_roles():
    fragment = json.loads(api_faults.OPENAPI.read_text())
    documented = {(m.upper(), p): op["x-ledwarden-role"]
                  for p, ops in fragment["paths"].items() for m, op in ops.items()}
    served = {(m, p): access_of(h) for m, p, h in api_faults.ROUTES}
    assert documented == served
    assert set(served.values()) == {"viewer", "installer"}
    for ops in fragment["paths"].values():
        for op in ops.values():
            assert op["summary"] and "200" in op["responses"] and "403" in op["responses"]


def test_the_service_serves_and_documents_the_fault_routes():
    assert "controller.service.api_faults" in app_module.ROUTE_MODULES
    doc = app_module.openapi_document()
    assert {"/api/v1/faults", "/api/v1/faults/{fault_id}/clear"} <= set(doc["paths"])
    assert "Fault" in doc["components"]["schemas"]
    assert {p for _, p, _ in api_faults.ROUTES} <= {p for _, p, _ in app_module.ROUTES}
