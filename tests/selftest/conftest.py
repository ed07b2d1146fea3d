"""A service in-process over simulated cards on a pseudo-terminal, for the self-test tests."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest

from controller.config import load_screen
from controller.protocol.bus import Bus
from controller.screenmap import CardSettings
from controller.service.busowner import BusOwner
from controller.service.state import Service
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

ROOT = Path(__file__).resolve().parents[2]
SCREEN = ROOT / "host" / "demo_wall.toml"


def demo_plan() -> FaultPlan:
    """The demo's faults: card 3 runs hot, dead LEDs on cards 2 and 7."""
    plan = FaultPlan().with_card(3, temp_c=91.5)
    plan = plan.with_card(2, dead_leds={(0, 10, 5, 0)})
    return plan.with_card(7, dead_leds={(15, 2, 30, 2)})


class Rig:
    """Simulated cards plus a Service; ``run(coro)`` runs it on one event loop."""

    def __init__(self, sim: Simulator, state: Path) -> None:
        self.sim, self.state = sim, state
        self.loop = asyncio.new_event_loop()
        self.service = self.new_service()

    def new_service(self) -> Service:
        layout = load_screen(SCREEN)
        settings = CardSettings.from_screen_file(tomllib.loads(SCREEN.read_text()))
        return Service(layout, settings, BusOwner(Bus(self.sim.url)), self.state,
                       screen_file=str(SCREEN), bus_url=self.sim.url, schedule="off")

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.service.stop())
        self.loop.close()


@pytest.fixture
def rig(tmp_path):
    with Simulator(8, pty=True, plan=demo_plan()) as sim:
        r = Rig(sim, tmp_path / "state")
        try:
            yield r
        finally:
            r.close()
