"""The console's session-cookie path against a real controller process with simulated cards.

The role matrix the API's end-to-end test derives from the OpenAPI document
(``test_end_to_end.py``), run again with console sessions instead of bearer
tokens: every state-changing operation refuses a forged session, a session
of too low a role and a session without its CSRF token, and changes
nothing; every reading operation lets a viewer's session in.  Then the live
parts: the wall picture, and the event stream showing a dead LED that the
simulator starts to have once an LED detection has run, and ending at logout.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest

from controller.service import app as app_module
from controller.service.auth import ROLES, TokenStore, role_allows
from controller.service.sessions import COOKIE
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator
from support import controller_process

OPENAPI = app_module.openapi_document()
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE          # loopback, the controller's own self-signed certificate


def request(url: str, method: str = "GET", body: object = None, headers: dict | None = None,
            timeout: float = 60) -> tuple[int, dict, str]:
    """(status, headers, text) of one HTTPS request; errors are answers too."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=TLS, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


class Console:
    """One logged-in console session: its cookie and CSRF token."""

    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        status, headers, text = request(f"{url}/console/login", "POST", {"token": secret})
        assert status == 200, text
        self.session_id = re.search(rf"{COOKIE}=([^;]+)", headers["Set-Cookie"]).group(1)
        self.csrf = json.loads(text)["csrf"]

    def headers(self, csrf: bool = True) -> dict[str, str]:
        out = {"Cookie": f"{COOKIE}={self.session_id}"}
        if csrf:
            out["X-CSRF-Token"] = self.csrf
        return out

    def call(self, method: str, path: str, body: object = None, csrf: bool = True):
        return request(f"{self.url}{path}", method, body, self.headers(csrf))


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    state = tmp / "state"
    state.mkdir()
    store = TokenStore(state / "tokens.db")
    tokens = {role: store.create(f"{role}-1", role) for role in ROLES}
    with Simulator(8, pty=True) as sim:
        proc, url = controller_process.start(state, sim.url, "--fps", "10", "--max-refusals", "1000",
                                             "--watch-interval", "1")
        consoles = {}
        try:
            consoles = {role: Console(url, tokens[role]) for role in ROLES}
            yield {"sim": sim, "url": url, "tokens": tokens, "consoles": consoles, "store": store}
        finally:
            controller_process.stop(proc)
        log = proc.stderr.read()
        # neither tokens nor session ids nor CSRF tokens reach the controller's log
        secrets = [*tokens.values(), *(c.session_id for c in consoles.values()),
                   *(c.csrf for c in consoles.values())]
        assert "Traceback" not in log, log[-3000:]
        assert not any(secret in log for secret in secrets)


def operations(methods: set[str]) -> list[tuple[str, str, str]]:
    return [(method.upper(), re.sub(r"\{[a-z_]+\}", "1", path), op["x-ledwarden-role"])
            for path, ops in OPENAPI["paths"].items() for method, op in ops.items()
            if method in methods]


def card_state(sim) -> list:
    return [(k.platform.pattern, k.card.brightness, k.card.config) for k in sim.cards]


@pytest.mark.parametrize("method,path,role", operations({"post", "put", "patch", "delete"}))
def test_every_state_changing_operation_refuses_a_wrong_session_and_changes_nothing(rig, method,
                                                                                     path, role):
    consoles = rig["consoles"]
    jobs_before = json.loads(consoles["viewer"].call("GET", "/api/v1/jobs")[2])["jobs"]
    cards_before = card_state(rig["sim"])
    body = {"pattern": "red", "level": 1, "yes": True, "unattended": True, "addresses": [1]}
    forged = request(f"{rig['url']}{path}", method, body,
                     {"Cookie": f"{COOKIE}={'x' * 43}", "X-CSRF-Token": consoles[role].csrf})
    assert forged[0] == 401 and "log in again" in forged[2]
    for weaker in [r for r in ROLES if not role_allows(r, role)]:
        status, _, text = consoles[weaker].call(method, path, body)
        assert status == 403 and f"needs the {role!r} role" in text, (weaker, path, text)
    status, _, text = consoles[role].call(method, path, body, csrf=False)
    assert status == 403 and "X-CSRF-Token" in text, (path, text)
    time.sleep(0.2)
    assert json.loads(consoles["viewer"].call("GET", "/api/v1/jobs")[2])["jobs"] == jobs_before
    assert card_state(rig["sim"]) == cards_before


@pytest.mark.parametrize("method,path,role", [op for op in operations({"get"}) if op[2] != "public"])
def test_every_reading_operation_lets_a_session_of_its_role_in(rig, method, path, role):
    path = path.replace("/reports/1", "/reports/x.json")
    for have in ROLES:
        status, _, text = rig["consoles"][have].call(method, path, csrf=False)
        if role_allows(have, role):
            assert status not in (401, 403, 429), (have, path, text)
        else:
            assert status == 403, (have, path, text)


def test_the_wall_picture_is_the_reports_drawing_of_the_live_wall(rig):
    viewer = rig["consoles"]["viewer"]
    status, headers, svg = viewer.call("GET", "/console/wall.svg?lang=zh")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    assert svg.startswith("<svg") and "0x08" in svg and "lw-hatch" in svg
    assert request(f"{rig['url']}/console/wall.svg")[0] == 401
    assert viewer.call("GET", "/console/wall.svg?lang=fr")[0] == 400
    assert viewer.call("GET", "/console/wall.svg?width=400")[2].startswith(
        '<svg xmlns="http://www.w3.org/2000/svg" class="wall" width="400"')
    for bad in ("100", "99999", "wide"):
        assert viewer.call("GET", f"/console/wall.svg?width={bad}")[0] == 400


def read_events(url: str, console: Console, until, timeout: float = 60) -> list[dict | str]:
    """Read ``GET /console/events`` until ``until(events)`` holds; each event is the snapshot
    (a dict) or the name of a data-less event."""
    req = urllib.request.Request(f"{url}/console/events", headers=console.headers(csrf=False))
    events: list[dict | str] = []
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(req, context=TLS, timeout=timeout) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        name = None
        while time.monotonic() < deadline:
            line = resp.readline().decode()
            if not line:
                break
            if line.startswith("event: "):
                name = line[7:].strip()
            elif line.startswith("data: "):
                events.append(json.loads(line[6:]) if name == "snapshot" else name)
                if until(events):
                    return events
    raise AssertionError(f"the stream ended or timed out before the condition held: {events[-3:]}")


def test_a_dead_led_appears_in_the_event_stream_once_detection_has_run(rig):
    sim, url = rig["sim"], rig["url"]
    viewer = rig["consoles"]["viewer"]
    sim.set_plan(FaultPlan().with_card(5, dead_leds=frozenset({(0, 3, 4, 1)})))
    installer = rig["consoles"]["installer"]
    status, _, text = installer.call("POST", "/api/v1/detect", {"addresses": [5]})
    assert status == 202, text

    def dead_on_card_5(events):
        snap = events[-1]
        return isinstance(snap, dict) and any(c["address"] == "0x05" and c["dead_leds"] == 1
                                              and c["status"] is not None for c in snap["cards"])
    events = read_events(url, viewer, dead_on_card_5)
    snap = events[-1]
    assert len(snap["cards"]) == 8 and snap["screen"]["cabinets"] == 8
    card5 = next(c for c in snap["cards"] if c["address"] == "0x05")
    assert 0 < card5["link"]["answered_pct"] <= 100 and card5["link"]["p99_ms"] > 0
    assert card5["status"]["temperature_c"] is not None and card5["found"]
    assert any(j["kind"] == "detect" for j in snap["jobs"])
    svg = viewer.call("GET", "/console/wall.svg")[2]
    assert svg.count('class="dead-led') == 1


def test_the_event_stream_ends_at_logout(rig):
    url = rig["url"]
    console = Console(url, rig["tokens"]["viewer"])
    ended: list = []

    def follow():
        ended.extend(read_events(url, console, lambda events: events[-1] == "ended"))
    reader = threading.Thread(target=follow)
    reader.start()
    time.sleep(1)
    assert console.call("POST", "/console/logout")[0] == 200
    reader.join(timeout=30)
    assert not reader.is_alive() and ended[-1] == "ended"
    assert console.call("GET", "/console/events", csrf=False)[0] == 401


def test_the_wall_shows_the_dead_leds_the_quarterly_inspection_found(rig):
    sim, url = rig["sim"], rig["url"]
    sim.set_plan(FaultPlan().with_card(6, dead_leds=frozenset({(2, 1, 1, 0)})))
    status, _, text = rig["consoles"]["installer"].call("POST", "/api/v1/selftest/run",
                                                       {"profile": "quarterly"})
    assert status == 202, text

    def dead_on_card_6(events):
        snap = events[-1]
        return isinstance(snap, dict) and any(c["address"] == "0x06" and c["dead_leds"] == 1
                                              for c in snap["cards"])
    events = read_events(url, rig["consoles"]["viewer"], dead_on_card_6, timeout=240)
    assert any(j["kind"] == "selftest" and j["state"] in ("succeeded", "failed")
               for j in events[-1]["jobs"])
    # the inspection looked at every card after the detection did: card 5's LED, no longer
    # dead in the simulator, is gone from the wall; card 6's is the one marker
    assert next(c for c in events[-1]["cards"] if c["address"] == "0x05")["dead_leds"] == 0
    svg = rig["consoles"]["viewer"].call("GET", "/console/wall.svg")[2]
    assert svg.count('class="dead-led') == 1


def test_revoking_the_token_ends_its_open_event_stream(rig):
    url, store = rig["url"], rig["store"]
    secret = store.create("soon-revoked", "viewer")
    console = Console(url, secret)
    ended: list = []

    def follow():
        ended.extend(read_events(url, console, lambda events: events[-1] == "ended", timeout=90))
    reader = threading.Thread(target=follow)
    reader.start()
    time.sleep(1)
    store.revoke("soon-revoked")
    reader.join(timeout=90)
    assert not reader.is_alive() and ended[-1] == "ended"
    assert console.call("GET", "/api/v1/jobs")[0] == 401
