"""The controller service end to end: a real ``ledwarden controller run`` process on loopback
HTTPS, simulated cards on a pseudo-terminal, and the host tool (in-process) talking to it.

Also the authorisation matrix: every state-changing operation in the OpenAPI
document, tried with no token, a token of too low a role and a revoked token,
is refused and changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from controller.service import app as app_module
from controller.service.auth import TokenStore, access_of, role_allows
from host.cli import main
from host.client import ApiError, ControllerClient
from host.pinning import KnownControllers, PinMismatch
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator
from support import controller_process

OPENAPI = app_module.openapi_document()
DEAD = {(2, 0, 10, 5, 0), (7, 15, 2, 30, 2)}       # card, module, x, y, channel
PLAN = FaultPlan().with_card(3, temp_c=91.5)
for card, *led in DEAD:
    PLAN = PLAN.with_card(card, dead_leds=PLAN.for_card(card).dead_leds | {tuple(led)})


def start_controller(state: Path, bus: str, port: int = 0,
                     max_refusals: int = 1000) -> tuple[subprocess.Popen, str]:
    return controller_process.start(state, bus, "--fps", "10", "--max-refusals", str(max_refusals),
                                    port=port)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    state = tmp / "state"
    state.mkdir()
    store = TokenStore(state / "tokens.db")
    tokens = {role: store.create(f"{role}-1", role) for role in ("viewer", "installer", "service")}
    tokens["revoked"] = store.create("former-installer", "installer")
    store.revoke("former-installer")
    os.environ["LEDWARDEN_CONFIG_DIR"] = str(tmp / "host-config")
    with Simulator(8, pty=True, plan=PLAN) as sim:
        proc, url = start_controller(state, sim.url)
        try:
            yield {"sim": sim, "url": url, "tokens": tokens, "tmp": tmp, "state": state}
        finally:
            controller_process.stop(proc)
    os.environ.pop("LEDWARDEN_CONFIG_DIR", None)


def client(rig, role: str | None) -> ControllerClient:
    return ControllerClient(rig["url"], rig["tokens"][role] if role else None)


def host(rig, role: str, *argv: str) -> tuple[int, object]:
    os.environ["LEDWARDEN_TOKEN"] = rig["tokens"][role]
    try:
        return main(["--controller", rig["url"], *argv])
    finally:
        del os.environ["LEDWARDEN_TOKEN"]


def wait_job(c: ControllerClient, job_id: int, state: str = "done", timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/api/v1/jobs/{job_id}")
        if (state == "done" and job["state"] in ("succeeded", "failed", "cancelled")) or job["state"] == state:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {state}: {job}")


def test_commissioning_through_the_host_tool_reports_the_injected_faults(rig, capsys):
    out = rig["tmp"] / "reports"
    status = host(rig, "installer", "commission", "--yes", "--out", str(out), "--json")
    printed = json.loads(capsys.readouterr().out)
    assert status == 1                              # the hot card fails acceptance
    report = json.loads(Path(printed["saved"]["json"]).read_text())
    assert report["result"] == "fail"
    by_address = {cab["address"]: cab for cab in report["cabinets"]}
    assert all(cab["found"] and cab["config_ok"] for cab in report["cabinets"])
    # sentences are recorded as keys and fields (English text kept), so the page can be Chinese
    assert any(p["key"] == "env.hot" and p["text"].startswith("Cabinet 3 (0x03) runs hot at 91.5 °C")
               for p in by_address[3]["problems"])
    # commissioning and its self-test both find the hot card; the summary says it once
    hot = [m for m in report["summary"] if (m["key"], m.get("subject")) == ("env.hot", "card:0x03")]
    assert len(hot) == 1
    assert any(m["key"] == "commission.not_watched" for m in report["summary"])
    # Dead LEDs placed on the screen. Card 2: serpentine, module 0 at the cabinet's top left.
    assert [(d["screen_x"], d["screen_y"]) for d in by_address[2]["dead_leds"]] == [(256 + 10, 5)]
    # Card 7 is mounted at (512, 128) rotated 180; module 15 (rows chain) is its bottom right,
    # so LED (2, 30) of it sits near the cabinet's top-left corner on the screen.
    assert [(d["screen_x"], d["screen_y"]) for d in by_address[7]["dead_leds"]] == [(512 + 61, 128 + 1)]
    # nobody watched: recorded as not confirmed (None), never as a "yes"
    assert [(p["how"], p["confirmed"]) for p in report["patterns"]] == [("unattended", None)] * 6
    assert all(by_address[a]["brightness"] == round(0.8 * 65535) for a in by_address)
    html = Path(printed["saved"]["html"]).read_text()
    assert "Demo wall" in html and "0x07" in html
    # The cards really hold the screen file's config: cabinet 7 is rotated, chained in rows.
    card7 = rig["sim"].cards[6].card
    assert card7.config[5:7] == (0, 2)


def test_interactive_commissioning_waits_for_each_answer(rig):
    c = client(rig, "installer")
    job = c.post("/api/v1/commission", {"unattended": False})
    answers = [True, True, True, True, True, False]     # the installer sees a bad module-numbers pattern
    for yes in answers:
        waiting = wait_job(c, job["id"], "waiting")
        assert waiting["question"].startswith("Does every cabinet show the")
        c.post(f"/api/v1/jobs/{job['id']}/answer", {"yes": yes})
    done = wait_job(c, job["id"])
    assert done["state"] == "succeeded"
    report = json.loads(c.get_text(f"/api/v1/reports/{done['result']['report']['json']}"))
    assert [p["confirmed"] for p in report["patterns"]] == answers
    assert {p["how"] for p in report["patterns"]} == {"operator"}
    assert next(s for s in report["steps"] if s["name"] == "patterns")["ok"] is False
    assert rig["sim"].cards[0].platform.pattern == 0          # back to normal video afterwards
    with pytest.raises(ApiError, match="not waiting for an answer"):
        c.post(f"/api/v1/jobs/{job['id']}/answer", {"yes": True})


def test_everyday_commands_with_json(rig, capsys):
    assert host(rig, "installer", "pattern", "grid", "--json") == 0
    assert json.loads(capsys.readouterr().out)["broadcast"] is True
    assert {k.platform.pattern for k in rig["sim"].cards} == {5}
    assert host(rig, "installer", "pattern", "normal") == 0
    assert host(rig, "installer", "brightness", "50%", "-a", "1-2", "--json") == 0
    capsys.readouterr()
    assert [k.card.brightness for k in rig["sim"].cards[:2]] == [32768, 32768]
    assert host(rig, "installer", "detect", "-a", "2", "--json") == 0
    job = json.loads(capsys.readouterr().out)
    assert job["result"]["0x02"] == [{"module": 0, "x": 10, "y": 5, "channel": "r"}]
    assert host(rig, "installer", "detect", "-a", "2") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 dead LED on 1 card"      # not "LED(s)"
    assert host(rig, "viewer", "status", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["frame_loop"]["running"] and status["frame_loop"]["frames"] > 0
    assert host(rig, "viewer", "cards", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)["cabinets"]) == 8
    assert host(rig, "viewer", "jobs") == 0
    assert "commission" in capsys.readouterr().out


def state_changing_operations() -> list[tuple[str, str, str]]:
    ops = []
    for path, methods in OPENAPI["paths"].items():
        for method, op in methods.items():
            if method in ("post", "put", "patch", "delete"):
                ops.append((method.upper(), re.sub(r"\{[a-z_]+\}", "1", path), op["x-ledwarden-role"]))
    return ops


def card_state(sim) -> list:
    return [(k.platform.pattern, k.card.brightness, k.card.config) for k in sim.cards]


@pytest.mark.parametrize("method,path,role", state_changing_operations())
def test_every_state_changing_operation_refuses_intruders_and_changes_nothing(rig, method, path, role):
    assert role in ("installer", "service"), f"{path} changes state but needs only {role}"
    viewer = client(rig, "viewer")
    jobs_before = viewer.get("/api/v1/jobs")["jobs"]
    cards_before = card_state(rig["sim"])
    body = {"pattern": "red", "level": 1, "yes": True, "unattended": True, "addresses": [1]}
    weaker = [r for r in ("viewer", "installer", "service") if not role_allows(r, role)]
    for who, status in [(None, 401), ("revoked", 401)] + [(r, 403) for r in weaker]:
        c = client(rig, who)
        with pytest.raises(ApiError) as err:
            if method == "PUT":
                c.put_bytes(path, b"x", {"Content-Type": "application/octet-stream"})
            elif method == "DELETE":
                c.delete(path)
            else:
                c.post(path, body)
        assert err.value.status == status, (who, path)
    time.sleep(0.2)
    assert viewer.get("/api/v1/jobs")["jobs"] == jobs_before
    assert card_state(rig["sim"]) == cards_before


def test_viewer_operations_need_a_token(rig):
    for path, methods in OPENAPI["paths"].items():
        op = methods.get("get")
        if op and op["x-ledwarden-role"] != "public":
            with pytest.raises(ApiError) as err:
                client(rig, None).get(path.replace("{job_id}", "1").replace("{name}", "x.json"))
            assert err.value.status == 401


def test_openapi_document_matches_the_routes_and_their_roles():
    served = {(m.lower(), p): access_of(h) for m, p, h in app_module.ROUTES}
    documented = {(m, p): op["x-ledwarden-role"] for p, ms in OPENAPI["paths"].items()
                  for m, op in ms.items()}
    assert served == documented


def test_a_changed_certificate_is_refused_before_the_token_is_sent(rig, tmp_path):
    port = controller_process.free_port()
    with Simulator(1, pty=True) as sim:
        first_state, second_state = tmp_path / "a", tmp_path / "b"
        for d in (first_state, second_state):
            d.mkdir()
            TokenStore(d / "tokens.db").create("svc", "service")
        known = KnownControllers(tmp_path / "known.json")
        proc, url = start_controller(first_state, sim.url, port)
        try:
            ControllerClient(url, "lw_wrong", known=known).get("/api/v1/health")
        finally:
            controller_process.stop(proc)
        proc, url = start_controller(second_state, sim.url, port)   # a new certificate, same address
        try:
            with pytest.raises(PinMismatch, match="certificate") as err:
                ControllerClient(url, "lw_secret", known=known).get("/api/v1/status")
            assert "ledwarden controller forget" in str(err.value)
        finally:
            controller_process.stop(proc)
        log = proc.stderr.read()
        assert "lw_secret" not in log


def test_refusals_from_one_address_are_rate_limited(tmp_path):
    with Simulator(1, pty=True) as sim:
        TokenStore(tmp_path / "tokens.db").create("inst", "installer")
        proc, url = start_controller(tmp_path, sim.url, max_refusals=3)
        try:
            statuses = []
            for _ in range(5):
                try:
                    ControllerClient(url, "lw_guess", known=KnownControllers(tmp_path / "k.json")).post(
                        "/api/v1/pattern", {"pattern": "red"})
                except ApiError as exc:
                    statuses.append(exc.status)
            assert statuses == [401, 401, 401, 429, 429]
        finally:
            controller_process.stop(proc)
        assert "refused" in proc.stderr.read().lower()


def test_an_empty_or_boolean_address_list_is_refused_not_taken_as_every_card(rig):
    installer = client(rig, "installer")
    for bad in ([], [True], ["1"], [0]):
        with pytest.raises(ApiError) as err:
            installer.post("/api/v1/brightness", {"level": 1, "addresses": bad})
        assert err.value.status == 400 and "non-empty list" in str(err.value)


def test_commission_in_chinese_through_the_host_tool(rig, capsys):
    out = rig["tmp"] / "reports-zh"
    status = host(rig, "installer", "commission", "--yes", "--lang", "zh", "--out", str(out), "--json")
    printed = json.loads(capsys.readouterr().out)
    assert status == 1                              # the hot card still fails acceptance
    report = json.loads(Path(printed["saved"]["json"]).read_text())
    assert report["lang"] == "zh"
    assert '<html lang="zh">' in Path(printed["saved"]["html"]).read_text()
    assert any("号箱体" in line for line in printed["result"]["summary"])
    with pytest.raises(SystemExit):                 # argparse refuses a language there is no page for
        host(rig, "installer", "commission", "--yes", "--lang", "fr")
    with pytest.raises(ApiError, match="no report language 'fr'"):
        client(rig, "installer").post("/api/v1/commission", {"unattended": True, "lang": "fr"})


def test_inspection_files_are_named_by_screen_and_time_and_never_overwritten(rig, capsys):
    out = rig["tmp"] / "inspections"
    out.mkdir()
    runs = client(rig, "service").get("/api/v1/selftest/runs", limit=1)["runs"]
    next_id = (runs[0]["id"] if runs else 0) + 1
    # another wall's run of the same number, saved here before
    foreign = out / f"inspection-{next_id}.json"
    foreign.write_text('{"screen": {"name": "Another wall"}}')
    for _ in range(2):
        assert host(rig, "service", "selftest", "run", "--profile", "quick", "--out", str(out), "--json") in (0, 1)
        capsys.readouterr()
    assert foreign.read_text() == '{"screen": {"name": "Another wall"}}'
    names = sorted(p.name for p in out.iterdir() if p != foreign)
    assert len(names) == 4, names
    assert all(re.fullmatch(r"inspection-demo-wall-\d{8}T\d{6}Z-run\d+\.(json|html)", n) for n in names), names
