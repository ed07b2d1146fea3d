"""The output watch over simulated cards fed by the real frame loop: a card that receives video
but shows none is filed within seconds and cleared when it shows again; measured currents go
to the power limiter; cards without ``GET_OUTPUT`` keep working and are said to lack it."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from controller import fastpath
from controller.config import loads_screen
from controller.fastpath.settings import gains_from, power_lut
from controller.protocol.bus import Bus
from controller.screenmap import CardSettings
from controller.service.busowner import BusOwner
from controller.service.frameloop import FrameLoop, NullSink, UdpSink, frame_source
from controller.service.outputwatch import CODE, OutputWatch
from controller.service.state import Service
from host.remote import output_summary
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

SCREEN = """
[screen]
name = "output watch"
width = 128
height = 64
[modules.p25]
width = 64
height = 32
scan = 16
[[cabinets]]
address = 5
x = 0
y = 0
module = "p25"
modules_x = 2
modules_y = 1
chain = "rows"
rotation = 0
[[cabinets]]
address = 6
x = 0
y = 32
module = "p25"
modules_x = 2
modules_y = 1
chain = "rows"
rotation = 0
"""


class PowerLimiterInput:
    """The limiter's input side as the brief's contract gives it: ``measured(address, mA|None)``,
    and whether the card kept up with the frames sent."""

    def __init__(self) -> None:
        self.readings: list[tuple[int, int | None, bool]] = []

    def measured(self, address: int, milliamps: int | None, *, keeping_up: bool = True) -> None:
        self.readings.append((address, milliamps, keeping_up))

    def status(self) -> None:
        """``status`` asks every limiter for its view; this stand-in has none to give."""
        return None


def new_loop(layout, sim) -> FrameLoop:
    pipeline = fastpath.Pipeline(layout, power_lut(2.2), gains_from(1.0), threads=1)
    return FrameLoop(layout, pipeline, frame_source("pattern:bars", layout.width, layout.height),
                     UdpSink(*sim.video.address), fps=30, source_name="pattern:bars")


def active(service) -> set[tuple[str, str]]:
    return {(f.code, f.source) for f in service.faults.active()}


async def until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return bool(check())


@pytest.fixture
def wall(tmp_path):
    layout = loads_screen(SCREEN)
    plan = FaultPlan().with_card(2, no_get_output=True)
    with Simulator(pty=True, video=("127.0.0.1", 0), screen=layout, plan=plan, seed=3) as sim:
        service = Service(layout, CardSettings(), BusOwner(Bus(sim.url)), tmp_path / "state",
                          screen_file="screen.toml", bus_url=sim.url,
                          frame_loop=new_loop(layout, sim), schedule="off", watch_interval_s=30)
        try:
            yield layout, sim, service
        finally:        # a test that failed before its own stop must not keep the port locked
            service.owner.close()


def use_loop(service, loop) -> None:
    """Hand the service another frame loop, as a restarted sender would (the board is frozen,
    so the service and its output watch are handed a new one)."""
    service.board = dataclasses.replace(service.board, frame_loop=loop)
    if service.output_watch is not None:
        service.output_watch.board = service.board


def watch_of(service, **kwargs) -> OutputWatch:
    """An output watch over the service's board, asking the service what the service's own asks."""
    return OutputWatch(service.board, bus_busy=service.board_jobs.bus_busy,
                       power=lambda: service.power, **kwargs)


def test_a_card_that_stays_black_is_found_within_seconds_and_cleared_when_it_shows(wall, capsys):
    layout, sim, service = wall
    service.power = power = PowerLimiterInput()
    assert isinstance(service.output_watch, OutputWatch)
    watch = service.output_watch

    async def scenario() -> float:
        await service.start()
        try:
            assert await until(lambda: (r := watch.readings.get(5)) and r.showing, 8.0), \
                watch.status()
            assert not watch.readings[6].supported          # UNKNOWN_COMMAND: not a fault
            injected = time.monotonic()
            sim.set_plan(FaultPlan().with_card(2, no_get_output=True)
                         .with_card(1, stays_black_after_s=0.0))
            assert await until(lambda: (CODE, "card:0x05") in active(service), 10.0)
            found_after = time.monotonic() - injected
            # the black card's reading is of no picture sent now: it must not correct the limiter
            assert [up for a, _, up in power.readings if a == 5][-1] is False
            fault = next(f for f in service.faults.active() if f.code == CODE)
            assert fault.details["text"] == "cabinet 5 receives video but shows none"
            assert fault.details["frames_shown"] == 0 and fault.details["frames_dropped"] > 0
            line = output_summary(service.status()["card_output"])
            assert "0 of 2 cards showing video; NOT showing: 0x05" in line
            assert "A measured by 1 cards" in line and "1 without GET_OUTPUT" in line
            # the sender restarts: a new loop numbers its frames from 0 again
            await service.frame_loop.stop()
            use_loop(service, new_loop(layout, sim))
            await service.frame_loop.start()
            assert await until(lambda: (CODE, "card:0x05") not in active(service), 10.0)
            assert (CODE, "card:0x06") not in active(service)
            assert service.status()["card_output"]["0x06"]["supported"] is False
            return found_after
        finally:
            await service.stop()
    found_after = asyncio.run(scenario())
    with capsys.disabled():
        print(f"\ncard.no_video filed {found_after:.1f} s after the card went black "
              f"(poll every {watch.interval_s:g} s)")
    assert found_after < 7.0
    fives = [ma for a, ma, _ in power.readings if a == 5]
    assert fives and all(isinstance(ma, int) and ma > 0 for ma in fives)
    assert (6, None, False) in power.readings           # the limiter hears it cannot measure
    # while it showed the frames sent, its readings were taken as of the picture now
    assert any(up for a, _, up in power.readings if a == 5)


def test_nothing_is_judged_while_no_video_flows(wall):
    layout, sim, service = wall
    use_loop(service, FrameLoop(layout, fastpath.Pipeline(layout, power_lut(2.2),
                                                          gains_from(1.0), threads=1),
                                frame_source("pattern:black", 128, 64), NullSink(), fps=30))
    watch = watch_of(service, interval_s=0.1)
    sim.set_plan(FaultPlan().with_card(1, stays_black_after_s=0.0))

    async def scenario() -> None:
        await service.frame_loop.start()
        try:
            for _ in range(5):
                await watch.poll_once()
                await asyncio.sleep(0.2)
            assert watch.readings == {}            # another sink: the cards' counters say nothing
            assert (CODE, "card:0x05") not in active(service)
        finally:
            await service.stop()
    asyncio.run(scenario())


class Flowing:
    """A frame loop whose frames advance between looks, sending to the cards."""

    class sink:
        feeds_cards = True

    def __init__(self) -> None:
        self.frames = 0

    def stats(self) -> dict:
        self.frames += 30
        return {"frames": self.frames}


def test_one_silent_poll_does_not_hold_a_card_back_but_a_dead_card_is_left_alone(wall):
    layout, sim, service = wall
    use_loop(service, Flowing())
    watch = watch_of(service)

    async def scenario() -> None:
        try:
            await watch.poll_once()                      # a baseline of the loop
            sim.set_plan(FaultPlan().with_card(1, mute=True))
            await watch.poll_once()                      # card 5 silent once (a power blip)
            sim.set_plan(FaultPlan())
            await watch.poll_once()
            assert watch.readings[5].supported and 5 not in watch._skip_until
            sim.set_plan(FaultPlan().with_card(1, mute=True))
            await watch.poll_once()
            await watch.poll_once()
            assert 5 in watch._skip_until               # dead twice: asked again in 10 s
            before = service.owner.operations
            await watch.poll_once()
            assert service.owner.operations == before + 1   # only card 6 was asked
        finally:
            use_loop(service, None)
            await service.stop()
    asyncio.run(scenario())


def test_a_limiter_that_fails_does_not_stop_the_watch(wall, caplog):
    layout, sim, service = wall

    class Broken:
        def measured(self, address, milliamps, *, keeping_up=True):
            raise ValueError("limiter bug")
    service.power = Broken()
    use_loop(service, Flowing())
    watch = watch_of(service)

    async def scenario() -> None:
        try:
            await watch.poll_once()
            await watch.poll_once()
            assert watch.readings[5].supported and watch.readings[5].current_ma
        finally:
            use_loop(service, None)
            await service.stop()
    asyncio.run(scenario())
    assert "limiter bug" in caplog.text
