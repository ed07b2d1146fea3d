"""``/metrics`` (issue 17 item 3): the collector reads what the watch, the bus, the fault log and
the slot store hold, over simulated cards, and a scrape never puts a transaction on the bus."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.config import load_screen
from controller.protocol.bus import Bus
from controller.screenmap import CardSettings
from controller.service import api_metrics
from controller.service import app as app_module
from controller.service.busowner import BusOwner
from controller.service.metrics import exposition, registry_for
from controller.service.state import Service
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

ROOT = Path(__file__).resolve().parents[2]
SCREEN = ROOT / "host" / "demo_wall.toml"      # eight cabinets at addresses 1..8


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, keyed by name and labels; the parser refuses a malformed
    exposition, so parsing is itself a check of the format."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


@pytest.fixture
def service(tmp_path):
    plan = (FaultPlan().with_card(3, temp_c=61.5).with_card(4, fan_rpm=0)
            .with_card(5, supply_mv=4310).with_card(6, mute=True))
    with Simulator(8, pty=True, plan=plan) as sim:
        layout = load_screen(SCREEN)
        settings = CardSettings.from_screen_file(tomllib.loads(SCREEN.read_text()))
        svc = Service(layout, settings, BusOwner(Bus(sim.url)), tmp_path / "state",
                      screen_file=str(SCREEN), bus_url=sim.url, schedule="off",
                      watch_interval_s=30)
        loop = asyncio.new_event_loop()
        try:
            yield svc, loop
        finally:
            loop.run_until_complete(svc.stop())
            loop.close()


def test_the_watch_s_last_poll_is_what_a_scrape_shows_and_the_scrape_stays_off_the_bus(service):
    svc, loop = service
    registry = registry_for(svc)
    before = samples(exposition(registry).decode())
    assert not any(name == "ledwarden_cabinet_temperature_celsius" for name, _ in before), \
        "nothing is made up before the watch has polled"
    assert value(before, "ledwarden_cabinet_up", cabinet="3") == 0

    assert svc.watch is not None
    loop.run_until_complete(svc.watch.poll_once())
    requests = svc.owner.statistics().links[3].requests
    found = samples(exposition(registry).decode())
    assert svc.owner.statistics().links[3].requests == requests, "a scrape must not ask the card"

    assert value(found, "ledwarden_cabinet_temperature_celsius", cabinet="3") == 61.5
    assert value(found, "ledwarden_cabinet_fan_rpm", cabinet="4") == 0
    assert value(found, "ledwarden_cabinet_supply_volts", cabinet="5") == pytest.approx(4.31)
    assert value(found, "ledwarden_cabinet_up", cabinet="6") == 0
    assert ("ledwarden_cabinet_temperature_celsius", frozenset({("cabinet", "6")})) not in found
    assert value(found, "ledwarden_cabinet_up", cabinet="1") == 1
    assert value(found, "ledwarden_cabinet_status_flag", cabinet="4", flag="fan_fault") == 1
    assert value(found, "ledwarden_cabinet_status_flag", cabinet="1", flag="fan_fault") == 0
    assert value(found, "ledwarden_link_requests_total", cabinet="3") == requests
    assert value(found, "ledwarden_link_timeouts_total", cabinet="6") > 0
    assert value(found, "ledwarden_link_round_trip_seconds", cabinet="3", quantile="0.99") > 0
    assert value(found, "ledwarden_faults_active", code="card.offline", severity="error") == 1
    assert value(found, "ledwarden_faults_active", code="card.fan_fault", severity="error") == 1
    assert value(found, "ledwarden_faults_active_by_severity", severity="critical") == 0
    # no frame loop (as with --no-frames) and no [power]: the families are there, empty
    assert not any(name.startswith("ledwarden_frameloop_fps") for name, _ in found)
    # the base installation runs, no trial: versions as _info
    assert value(found, "ledwarden_upgrade_trial") == 0
    assert value(found, "ledwarden_upgrade_slot_info", slot="a", role="empty", version="",
                 confirmed="false") == 1
    assert any(name == "ledwarden_build_info" for name, _ in found)


def test_every_name_has_the_one_prefix_and_counters_end_in_total(service):
    svc, loop = service
    loop.run_until_complete(svc.watch.poll_once())
    families = list(text_string_to_metric_families(exposition(registry_for(svc)).decode()))
    assert families
    for family in families:
        assert family.name.startswith("ledwarden_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name


def test_the_route_is_in_the_openapi_document_behind_a_viewer_token():
    doc = app_module.openapi_document()
    op = doc["paths"]["/metrics"]["get"]
    assert op["x-ledwarden-role"] == "viewer"
    assert "text/plain" in op["responses"]["200"]["content"]
    assert ("GET", "/metrics", api_metrics.metrics) in app_module.ROUTES


POWER = """
[power]
cabinet_budget_a = 2.5
[power.modules.p25]
current_ma = [900, 700, 800]
quiescent_ma = 120
supply_v = 4.5
"""


def test_frame_loop_limiter_inspection_and_trial_read_from_the_parts(tmp_path):
    """A running frame loop with a current limiter on a tight budget, a real quarterly
    inspection that finds the simulated dead LEDs, and a controller upgrade on trial."""
    from controller import fastpath
    from controller.fastpath.settings import gains_from, power_lut
    from controller.power import PowerLimiter, parse_power
    from controller.selftest.runner import run_profile
    from controller.service.frameloop import FrameLoop, NullSink, frame_source
    from controller.upgrade.bundles.slots import BootState

    layout = load_screen(SCREEN)
    data = tomllib.loads(SCREEN.read_text() + POWER)
    model = parse_power(data, layout)
    assert model is not None
    power = PowerLimiter(model, layout)
    pipeline = fastpath.Pipeline(layout, power_lut(2.2), gains_from(1.0), threads=1)
    frames = FrameLoop(layout, pipeline, frame_source("pattern:bars", layout.width, layout.height),
                       NullSink(), fps=30, source_name="pattern:bars", power=power)
    plan = FaultPlan().with_card(2, dead_leds={(0, 10, 5, 0), (1, 3, 3, 2)})
    with Simulator(8, pty=True, plan=plan) as sim:
        svc = Service(layout, CardSettings.from_screen_file(data), BusOwner(Bus(sim.url)),
                      tmp_path / "state", screen_file=str(SCREEN), bus_url=sim.url,
                      schedule="off", frame_loop=frames)
        svc.power = power
        # a trial as the installer leaves it in state.json (the boot guard's pointer)
        slots = svc.state_dir / "slots"
        slots.mkdir()
        (slots / "state.json").write_text(json.dumps(
            {**BootState().__dict__, "current": "a",
             "trial": {"slot": "a", "transaction": "t1", "version": "0.2.0",
                       "from_version": "0.1.0", "boots": 1, "from_slot": None,
                       "time": "2026-12-05T08:00:00Z"}}))
        loop = asyncio.new_event_loop()
        try:
            async def scenario():
                await svc.start()
                await run_profile(svc.board, "quarterly", trigger="test", who="test")
                while frames.frames < 10:
                    await asyncio.sleep(0.05)
            loop.run_until_complete(scenario())
            found = samples(exposition(registry_for(svc)).decode())
        finally:
            loop.run_until_complete(svc.stop())
            loop.close()
    assert value(found, "ledwarden_cabinet_dead_leds", cabinet="2") == 2
    assert value(found, "ledwarden_cabinet_dead_leds", cabinet="1") == 0
    assert value(found, "ledwarden_selftest_last_outcome", profile="quarterly", outcome="fail") == 1
    assert ("ledwarden_selftest_last_run_timestamp_seconds",
            frozenset({("profile", "quarterly")})) in found
    assert value(found, "ledwarden_frameloop_running") == 1
    assert value(found, "ledwarden_frameloop_frames_total") >= 10
    assert value(found, "ledwarden_frameloop_frame_seconds_count") >= 10
    assert 0 < value(found, "ledwarden_frameloop_frame_seconds", quantile="0.5") \
        <= value(found, "ledwarden_frameloop_frame_seconds", quantile="0.99")
    assert value(found, "ledwarden_frameloop_frame_seconds_sum") > 0
    assert value(found, "ledwarden_cabinet_current_budget_amperes", cabinet="1") == 2.5
    # bars at full drive on a 2.5 A budget: the limiter dims every cabinet
    assert value(found, "ledwarden_cabinet_current_limiting", cabinet="1") == 1
    assert value(found, "ledwarden_cabinet_current_scale_ratio", cabinet="1") < 1
    assert value(found, "ledwarden_upgrade_trial") == 1
    assert value(found, "ledwarden_upgrade_trial_since_timestamp_seconds") == 1796457600


def exposed_names(text: str) -> set[str]:
    """Every series name the collector can produce, empty families included (they still carry
    their ``# TYPE`` line)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ("_total",), "info": ("_info",),
                    "summary": ("", "_count", "_sum")}.get(family.type, ("",))
        names.update(family.name + s for s in suffixes)
    return names


def test_the_alert_rules_and_the_dashboard_use_only_names_the_controller_exposes(service):
    """A typo in a rule is an alert that never fires: every ``ledwarden_*`` name in the rules,
    their tests and the Grafana dashboard must be one the collector yields."""
    import re
    svc, _ = service
    exposed = exposed_names(exposition(registry_for(svc)).decode())
    files = [ROOT / "deploy" / "prometheus" / "ledwarden-rules.yml",
             ROOT / "deploy" / "prometheus" / "ledwarden-rules.test.yml",
             ROOT / "deploy" / "grafana" / "ledwarden-wall.json"]
    for path in files:
        used = set(re.findall(r"\bledwarden_[a-z_]+", path.read_text())) - {"ledwarden_rules"}
        assert used, path
        assert used <= exposed, f"{path.name} uses names /metrics does not have: {used - exposed}"
    json.loads(files[2].read_text())
