"""The simulator: wire timing, fault injection (command line, file, on demand), power and state."""

from __future__ import annotations

import hashlib
import random
import time

import pytest

from controller.errors import BusTimeout, ConfigError
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from hw.sim.bus import collide
from hw.sim.faults import FaultPlan, LineNoise, load_plan, plan_from_mapping
from hw.sim.server import Simulator


def test_line_noise_hits_the_configured_bit_error_rate():
    noise = LineNoise(random.Random(1))
    plan = FaultPlan(ber=1e-3)
    for _ in range(2000):
        noise.apply(bytes(50), plan)
    expected = 2000 * 50 * 8 * 1e-3
    assert abs(noise.flipped_bits - expected) < 4 * expected ** 0.5


def test_line_noise_drops_and_inserts_bytes():
    noise = LineNoise(random.Random(2))
    out = noise.apply(bytes(range(256)) * 40, FaultPlan(drop_rate=0.01, insert_rate=0.01))
    assert noise.dropped_bytes > 50 and noise.inserted_bytes > 50
    assert len(out) == 256 * 40 - noise.dropped_bytes + noise.inserted_bytes


def test_a_quiet_line_passes_bytes_untouched():
    data = bytes(range(256))
    assert LineNoise(random.Random(3)).apply(data, FaultPlan()) is data


def test_colliding_answers_are_garbled():
    a, b = b"\x02\x01\x02\x05\x00", b"\x03\x01\x03\x06\x07\x00"
    assert collide([a]) == a
    assert collide([a, b]) == bytes(x & y for x, y in zip(a, b)) + b[len(a):]


def test_fault_file_is_validated_in_words(tmp_path):
    bad = tmp_path / "faults.toml"
    bad.write_text("ber = 2\n")
    with pytest.raises(ConfigError, match="ber=2.0 must be a probability"):
        load_plan(bad)
    bad.write_text("[cards.3]\nhot = true\n")
    with pytest.raises(ConfigError, match="faults for card 3: unknown keys \\['hot'\\]"):
        load_plan(bad)
    bad.write_text("[cards.3]\ndead_leds = [[0, 1]]\n")
    with pytest.raises(ConfigError, match="dead LED"):
        load_plan(bad)
    with pytest.raises(ConfigError, match="cannot read fault file"):
        load_plan(tmp_path / "missing.toml")
    plan = plan_from_mapping({"cards": {"2": {"dead_leds": [[1, 2, 3, "b"]], "mute": True}}})
    assert plan.for_card(2).dead_leds == {(1, 2, 3, 2)} and plan.for_card(2).mute


def test_fault_file_is_reread_while_running(tmp_path):
    faults = tmp_path / "faults.toml"
    faults.write_text("")
    with Simulator(2, tcp=("127.0.0.1", 0), fault_file=faults) as sim, Bus(sim.url) as bus:
        assert bus.call(2, c.Cmd.GET_STATUS).flag_names == []
        faults.write_text("[cards.2]\ntemp_c = 95.5\nfan_rpm = 0\n")
        deadline = time.monotonic() + 3
        while "over_temperature" not in bus.call(2, c.Cmd.GET_STATUS).flag_names:
            assert time.monotonic() < deadline, "the changed fault file was not picked up"
            time.sleep(0.05)
        status = bus.call(2, c.Cmd.GET_STATUS)
        assert status.temperature_c == 95.5 and "fan_fault" in status.flag_names
        names = [e.name for e in ops.read_events(bus, 2)]
        assert "over_temperature" in names and "fan_fault" in names
        faults.write_text("this is not toml [")       # a broken file keeps the last good faults
        time.sleep(0.3)
        assert "over_temperature" in bus.call(2, c.Cmd.GET_STATUS).flag_names


def test_wire_time_is_modelled_at_the_baud_rate():
    # A PING round trip is 15 + 23 bytes on the wire: 0.41 ms at 921 600 baud, 3.3 ms at 115 200.
    times = {}
    for baud in (921_600, 115_200):
        with Simulator(1, tcp=("127.0.0.1", 0), baud=baud) as sim, Bus(sim.url, baud) as bus:
            for _ in range(20):
                bus.call(1, c.Cmd.PING)
            times[baud] = min(bus.stats_for(1).rtt_s)
    assert times[115_200] >= 38 * 10 / 115_200
    assert times[115_200] - times[921_600] >= 0.8 * 38 * 10 * (1 / 115_200 - 1 / 921_600)


def test_power_cut_during_a_firmware_transfer_leaves_the_card_on_its_bank():
    image = bytes(random.Random(4).randrange(256) for _ in range(8192))
    begin = c.FwBegin(len(image), 0x0A01, 1, 1, 0, 512, hashlib.sha256(image).digest())
    plan = FaultPlan().with_card(1, power_cut_after_chunks=5)
    with Simulator(1, tcp=("127.0.0.1", 0), plan=plan) as sim, Bus(sim.url, retries=0) as bus:
        bus.call(1, c.Cmd.FW_BEGIN, begin)
        ops.fw_status_when_erased(bus, 1)
        for i in range(4):
            bus.call(1, c.Cmd.FW_CHUNK, c.FwChunk(i, image[i * 512:(i + 1) * 512]))
        assert bus.call(1, c.Cmd.FW_STATUS).received == 4
        with pytest.raises(BusTimeout):  # the 5th chunk cuts the power
            bus.call(1, c.Cmd.FW_CHUNK, c.FwChunk(4, image[2048:2560]))
        sim.set_plan(FaultPlan())
        deadline = time.monotonic() + 3
        while True:
            try:
                ping = bus.call(1, c.Cmd.PING)
                break
            except BusTimeout:
                assert time.monotonic() < deadline, "the card did not come back after the power cut"
        assert (ping.version, ping.bank) == ("1.0.0", "A")
        assert bus.call(1, c.Cmd.FW_STATUS).state == c.FwState.IDLE
        assert [e.name for e in ops.read_events(bus, 1)].count("boot") == 2


def test_watchdog_reset_is_logged():
    with Simulator(1, tcp=("127.0.0.1", 0)) as sim, Bus(sim.url) as bus:
        sim.set_plan(FaultPlan().with_card(1, watchdog_reset=True))
        deadline = time.monotonic() + 3
        names: list[str] = []
        while "watchdog_reset" not in names:
            assert time.monotonic() < deadline, "no watchdog_reset event"
            time.sleep(0.05)
            try:
                names = [e.name for e in ops.read_events(bus, 1)]
            except BusTimeout:
                pass  # the card is restarting
        assert names[-2:] == ["watchdog_reset", "boot"]


def test_flash_state_survives_a_simulator_restart(tmp_path):
    for _ in range(2):
        with Simulator(2, tcp=("127.0.0.1", 0), state_dir=tmp_path) as sim, Bus(sim.url) as bus:
            cards = ops.discover(bus, [1, 2, 9]).cards
            if [k.address for k in cards] == [1, 2]:
                bus.broadcast(c.Cmd.SET_ADDRESS, c.SetAddress(sim.cards[1].serial, 9))
                bus.wait_idle()
                assert bus.call(9, c.Cmd.PING).serial == sim.cards[1].serial
            else:
                assert [k.address for k in cards] == [1, 9]


def test_simulator_refuses_impossible_setups():
    with pytest.raises(ConfigError, match="1 to 240 cards"):
        Simulator(0, pty=True)
    with pytest.raises(ConfigError, match="--unaddressed"):
        Simulator(2, pty=True, unaddressed=3)
