"""What the simulator adds for card upgrades, checked directly on the bus: a bank erase runs
in the background for its datasheet time, work done for a broadcast keeps a card busy,
chunk-counting faults fire once, the fault file's new keys, and images marked with a
behaviour."""

from __future__ import annotations

import time

import pytest

from card_cases import firmware
from controller.errors import BusTimeout, CardError, ConfigError
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from hw.sim.faults import FaultPlan, plan_from_mapping
from hw.sim.images import behaviour_of, sim_image
from hw.sim.server import Simulator


def test_a_card_erasing_for_a_broadcast_answers_at_once_and_is_busy_until_the_erase_is_done():
    fw = firmware(256 * 1024)                      # erase: four 64 KiB blocks of 150 ms
    with Simulator(2, tcp=("127.0.0.1", 0)) as sim, Bus(sim.url) as bus:
        started = time.monotonic()
        bus.broadcast(c.Cmd.FW_BEGIN, fw.begin())
        bus.call(1, c.Cmd.FW_BEGIN, fw.begin())   # identical: resumes, answered at once
        answered = time.monotonic() - started
        with pytest.raises(CardError, match="BUSY: erasing the bank"):
            bus.call(1, c.Cmd.FW_STATUS)
        with pytest.raises(CardError, match="BUSY"):
            bus.call(1, c.Cmd.FW_CHUNK, fw.chunk(0))
        ops.fw_status_when_erased(bus, 1)
        erased = time.monotonic() - started
        started = time.monotonic()
        assert bus.call(2, c.Cmd.FW_STATUS).received == 0   # erased in parallel: done by now
        second = time.monotonic() - started
    assert answered < 0.1 and 0.6 <= erased < 1.5 and second < 0.03


def test_a_broadcast_fw_commit_reboots_every_card_holding_the_image():
    fw = firmware(4 * 1024)
    with Simulator(3, tcp=("127.0.0.1", 0)) as sim, Bus(sim.url) as bus:
        bus.broadcast(c.Cmd.FW_BEGIN, fw.begin())
        for address in (1, 2, 3):
            ops.fw_status_when_erased(bus, address)
        for i in range(fw.chunks()):
            bus.broadcast(c.Cmd.FW_CHUNK, fw.chunk(i))
        bus.call(3, c.Cmd.FW_ABORT)
        bus.broadcast(c.Cmd.FW_COMMIT)
        bus.wait_idle()
        deadline = time.monotonic() + 2
        while not all(k.card.version == (2, 0, 0) for k in sim.cards[:2]):
            assert time.monotonic() < deadline, "the broadcast FW_COMMIT rebooted nobody"
            time.sleep(0.02)
        assert [k.card.on_trial for k in sim.cards] == [True, True, False]


def test_chunk_counting_faults_fire_once_per_setting():
    fw = firmware(8 * 1024)
    plan = FaultPlan().with_card(1, power_cut_after_chunks=3)
    with Simulator(1, tcp=("127.0.0.1", 0), plan=plan) as sim, Bus(sim.url, retries=0) as bus:
        bus.call(1, c.Cmd.FW_BEGIN, fw.begin())
        ops.fw_status_when_erased(bus, 1)
        bus.call(1, c.Cmd.FW_CHUNK, fw.chunk(0))
        bus.call(1, c.Cmd.FW_CHUNK, fw.chunk(1))
        with pytest.raises(BusTimeout):
            bus.call(1, c.Cmd.FW_CHUNK, fw.chunk(2))      # the third cuts the power
        time.sleep(0.7)
        bus.call(1, c.Cmd.FW_BEGIN, fw.begin())         # back, the transfer gone: again
        ops.fw_status_when_erased(bus, 1)
        for i in range(fw.chunks()):                    # the same setting does not cut again
            bus.call(1, c.Cmd.FW_CHUNK, fw.chunk(i))
        assert bus.call(1, c.Cmd.FW_STATUS).state == c.FwState.COMPLETE
        sim.set_plan(FaultPlan().with_card(1, drop_off_after_chunks=1, drop_off_for_s=0.5))
        with pytest.raises(BusTimeout):
            bus.call(1, c.Cmd.FW_CHUNK, fw.chunk(0))   # heard, then off the bus
        with pytest.raises(BusTimeout):
            bus.call(1, c.Cmd.PING)
        time.sleep(0.6)
        assert bus.call(1, c.Cmd.FW_STATUS).state == c.FwState.COMPLETE   # its RAM survived


def test_the_fault_file_takes_the_new_keys_and_refuses_nonsense():
    plan = plan_from_mapping({"cards": {"2": {"drop_off_after_chunks": 10, "drop_off_for_s": 1.5,
                                              "bad_flash_byte": 4096}}})
    assert (plan.for_card(2).drop_off_after_chunks, plan.for_card(2).drop_off_for_s,
            plan.for_card(2).bad_flash_byte) == (10, 1.5, 4096)
    with pytest.raises(ConfigError, match="drop_off_after_chunks=0 must be a whole number >= 1"):
        plan_from_mapping({"cards": {"2": {"drop_off_after_chunks": 0}}})
    with pytest.raises(ConfigError, match="drop_off_for_s must be a positive number"):
        plan_from_mapping({"cards": {"2": {"drop_off_for_s": "soon"}}})


def test_images_carry_their_behaviour(tmp_path):
    for name in (None, "crash", "hang", "unhealthy"):
        image = sim_image(5000, seed=4, behaviour=name)
        (tmp_path / "bank.bin").write_bytes(image)
        assert len(image) == 5000 and behaviour_of(tmp_path / "bank.bin") == name
    (tmp_path / "bank.bin").write_bytes(b"ledwarden-sim-behaviour=explode;" + bytes(100))
    assert behaviour_of(tmp_path / "bank.bin") is None            # unknown: a healthy card
    assert sim_image(64, seed=1) != sim_image(64, seed=2)
    with pytest.raises(ValueError, match="not one of crash, hang, unhealthy"):
        sim_image(100, behaviour="slow")
