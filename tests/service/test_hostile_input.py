"""Hostile requests get a 4xx with a JSON sentence, never a 500 (issue 15, item 17).

Each case is what the attacker's report sent, through the API of a real
controller process with simulated cards: bodies nested thousands of levels
deep, ids of 23 digits (which overflowed SQLite), ``true`` where a number is
meant, a misspelt field, and paths and methods that do not exist.
"""

from __future__ import annotations

import http.client
import json
import ssl
from urllib.parse import urlsplit

import pytest

from controller.service.auth import TokenStore
from hw.sim.server import Simulator
from support import controller_process

HUGE = "1" * 23
DEEP = b'{"pattern": ' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    state = tmp_path_factory.mktemp("hostile") / "state"
    state.mkdir()
    token = TokenStore(state / "tokens.db").create("attacker", "service")
    with Simulator(2, pty=True) as sim:
        proc, url = controller_process.start(state, sim.url, "--fps", "10",
                                             "--max-refusals", "1000")
        try:
            yield url, token
            assert proc.poll() is None
        finally:
            controller_process.stop(proc)


def call(api, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    url, token = api
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=20,
                                       context=ssl._create_unverified_context())
    try:
        conn.request(method, path, body=body, headers={"Authorization": f"Bearer {token}",
                                                       "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        assert resp.getheader("Content-Type", "").startswith("application/json"), data[:200]
        return resp.status, json.loads(data)
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/api/v1/pattern", "/api/v1/brightness", "/api/v1/detect",
                                  "/api/v1/faults/clear", "/api/v1/selftest/run"])
def test_a_deeply_nested_body_is_refused(api, path):
    status, answer = call(api, "POST", path, DEEP)
    assert status == 400, answer
    assert "nests 5001 levels deep, more than the 32 allowed" in answer["error"]


@pytest.mark.parametrize("method,path,what", [
    ("GET", f"/api/v1/faults/{HUGE}", "fault"),
    ("POST", f"/api/v1/faults/{HUGE}/clear", "fault"),
    ("GET", f"/api/v1/selftest/runs/{HUGE}", "self-test run"),
    ("GET", f"/api/v1/jobs/{HUGE}", "job"),
    ("POST", f"/api/v1/jobs/{HUGE}/cancel", "job"),
    ("GET", "/api/v1/faults/9223372036854775808", "fault"),      # one past SQLite's largest id
])
def test_an_id_too_large_to_exist_is_not_found(api, method, path, what):
    status, answer = call(api, method, path, b"{}" if method == "POST" else None)
    assert status == 404, answer
    assert answer["error"].startswith(f"no {what} "), answer


@pytest.mark.parametrize("path,body,says", [
    ("/api/v1/brightness", {"level": True}, "level must be a whole number 0..65535"),
    ("/api/v1/pattern", {"pattern": "red", "level": False}, "level must be a whole number 0..65535"),
    ("/api/v1/pattern", {"pattern": "red", "level": "max"}, "level must be a whole number 0..65535"),
    ("/api/v1/detect", {"addresses": [True]}, "addresses must be a non-empty list"),
    ("/api/v1/upgrade/cards", {"upload": "0" * 64, "canary": True}, "canary must be a whole number"),
    ("/api/v1/commission", {"unattended": "yes"}, "unattended must be true or false"),
    ("/api/v1/brightness", {"level": 10, "adresses": [1]}, "takes only percent, level, addresses, not 'adresses'"),
])
def test_booleans_and_misspelt_fields_are_refused(api, path, body, says):
    status, answer = call(api, "POST", path, json.dumps(body).encode())
    assert status == 400, answer
    assert says in answer["error"], answer


def test_a_whole_number_is_still_accepted(api):
    status, answer = call(api, "POST", "/api/v1/brightness", b'{"level": 300.0, "addresses": [1]}')
    assert status == 200 and answer["level"] == 300, answer


def test_what_aiohttp_refuses_itself_is_json_too(api):
    status, answer = call(api, "GET", "/api/v1/no-such-thing")
    assert status == 404 and "there is no /api/v1/no-such-thing" in answer["error"]
    status, answer = call(api, "PUT", "/api/v1/faults/clear", b"{}")
    assert status == 405 and answer["error"].endswith("it takes POST"), answer
