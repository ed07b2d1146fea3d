"""The bus master against simulated cards, over a real pseudo-terminal and over TCP.

The master and the card firmware share no code; these tests are where they
meet, through bytes on a real port, as cards from another team would.
"""

from __future__ import annotations

import time

import pytest

from controller.errors import BusTimeout, CardError
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

DEAD = frozenset({(0, 10, 5, 0), (3, 63, 31, 2), (3, 0, 0, 1)})
PLAN = (FaultPlan().with_card(2, temp_c=91.0, supply_mv=4300, fan_rpm=0)
        .with_card(4, dead_leds=DEAD).with_card(6, mute=True).with_card(7, link_lost=frozenset({1})))


@pytest.fixture(params=["pty", "tcp"])
def sim_bus(request):
    kind = request.param
    sim = Simulator(8, pty=kind == "pty", tcp=("127.0.0.1", 0) if kind == "tcp" else None, plan=PLAN)
    with sim:
        with Bus(sim.url) as bus:
            yield sim, bus


def test_discovery_finds_every_answering_card(sim_bus):
    sim, bus = sim_bus
    found = ops.discover(bus, range(1, 13))
    assert [k.address for k in found.cards] == [1, 2, 3, 4, 5, 7, 8]   # card 6 is muted
    assert {k.serial for k in found.cards} == {sim.cards[a - 1].serial for a in (1, 2, 3, 4, 5, 7, 8)}
    assert all(k.version == "1.0.0" and k.bank == "A" and k.max_payload == 640 for k in found.cards)
    assert found.garbled == []


def test_every_command_against_a_card(sim_bus):
    sim, bus = sim_bus
    status = bus.call(2, c.Cmd.GET_STATUS)
    assert status.temperature_c == 91.0 and status.supply_mv == 4300 and status.fan_rpm == 0
    assert {"over_temperature", "under_voltage", "fan_fault"} <= set(status.flag_names)
    assert "module_link_lost" in bus.call(7, c.Cmd.GET_STATUS).flag_names
    assert bus.call(1, c.Cmd.GET_STATUS).flag_names == []

    cfg = c.CardConfig(32, 16, 8, 2, 3, chain=1, rotation=2, refresh_hz=1920)
    assert ops.write_config(bus, 1, cfg) == cfg
    assert ops.write_brightness(bus, 1, 0x4000) == 0x4000
    assert bus.call(1, c.Cmd.TEST_PATTERN, c.TestPattern(c.Pattern.GRID, 0x8000)) is None
    assert sim.cards[0].platform.pattern == c.Pattern.GRID
    names = [e.name for e in ops.read_events(bus, 1)]
    assert names[0] == "boot" and "config_written" in names
    with pytest.raises(CardError) as err:
        bus.call(1, c.Cmd.FW_CHUNK, c.FwChunk(0, b"x"))
    assert err.value.code == c.ErrorCode.BAD_STATE
    assert bus.call(1, c.Cmd.FW_STATUS).state == c.FwState.IDLE


def test_detection_finds_the_injected_dead_leds(sim_bus):
    sim, bus = sim_bus
    dead = ops.detect(bus, 4)
    assert {(d.module, d.x, d.y, "rgb".index(d.channel)) for d in dead} == DEAD
    assert "pixel_faults" in bus.call(4, c.Cmd.GET_STATUS).flag_names
    assert ops.detect(bus, 1) == []


def test_a_muted_card_times_out_in_words(sim_bus):
    sim, bus = sim_bus
    with pytest.raises(BusTimeout, match="no card at 0x06 after 4 tries"):
        bus.call(6, c.Cmd.PING)


def test_reboot_and_the_card_comes_back(sim_bus):
    sim, bus = sim_bus
    bus.call(3, c.Cmd.REBOOT)
    deadline = time.monotonic() + 3
    while True:
        try:
            ping = bus.call(3, c.Cmd.PING, retries=0)
            break
        except BusTimeout:
            assert time.monotonic() < deadline, "card 3 did not come back after REBOOT"
    assert ping.uptime_s <= 1
    assert [e.name for e in ops.read_events(bus, 3)].count("boot") == 2


def test_factory_fresh_cards_collide_and_set_address_by_serial_fixes_it():
    with Simulator(4, pty=True, unaddressed=2) as sim, Bus(sim.url, retries=1) as bus:
        found = ops.discover(bus, [1, 2, 3, 4, 0xF0])
        assert [k.address for k in found.cards] == [1, 2]
        assert found.garbled == [0xF0]        # two cards at 0xF0 answer over each other
        for card, address in ((sim.cards[2], 3), (sim.cards[3], 4)):
            bus.broadcast(c.Cmd.SET_ADDRESS, c.SetAddress(card.serial, address))
            bus.wait_idle()
            assert bus.call(address, c.Cmd.PING).serial == card.serial
        assert [k.address for k in ops.discover(bus, [1, 2, 3, 4, 0xF0]).cards] == [1, 2, 3, 4]


def test_a_retried_write_is_executed_once():
    # Lose most answers on the way back, so retries happen; the card's duplicate memory must
    # keep SET_CONFIG (which logs an event each time it runs) from running twice.
    with Simulator(1, tcp=("127.0.0.1", 0), seed=3) as sim, Bus(sim.url, retries=20) as bus:
        before = len(ops.read_events(bus, 1))
        sim.set_plan(FaultPlan(ber=3e-3))   # ~60 % of 37-byte answers garbled
        for i in range(10):
            bus.call(1, c.Cmd.SET_CONFIG, c.CardConfig(64, 32, 16, 4, 4, refresh_hz=1000 + i))
        retries = bus.stats_for(1).retries
        sim.set_plan(FaultPlan())
        events = ops.read_events(bus, 1)[before:]
        assert retries > 0
        assert [e.name for e in events] == ["config_written"] * 10
