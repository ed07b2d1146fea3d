"""Card upgrades under the simulator's faults: a power cut and a card dropping off mid-transfer,
firmware that never gets confirmed (rolled back by the card itself), and a corrupted image."""

from __future__ import annotations

import pytest

from card_cases import NEW, OLD, WireLog, firmware, ping, run, states
from controller.protocol import cards as ops
from controller.protocol.bus import Bus
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

FOUR = [1, 2, 3, 4]


def on(sim: Simulator) -> list[tuple[str, str]]:
    return [(ping(sim, a).version, ping(sim, a).bank) for a in FOUR]


def test_a_power_cut_mid_transfer_costs_that_card_a_new_begin():
    fw = firmware(64 * 1024)
    plan = FaultPlan().with_card(3, power_cut_after_chunks=40)
    with Simulator(4, tcp=("127.0.0.1", 0), plan=plan) as sim:
        report, _ = run(sim, fw, FOUR)
        with Bus(sim.url) as bus:
            boots = [e.name for e in ops.read_events(bus, 3)].count("boot")
        assert on(sim) == [(NEW, "B")] * 4
    assert report.result == "succeeded" and set(states(report).values()) == {"installed"}
    assert any("0x03 lost its transfer" in n for n in report.notes)
    assert boots >= 3                       # factory boot, the power cut, the new firmware


def test_a_card_that_drops_off_for_a_while_catches_up_where_its_bitmap_says():
    fw = firmware(64 * 1024)
    plan = FaultPlan().with_card(2, drop_off_after_chunks=30, drop_off_for_s=1.2)
    with Simulator(4, tcp=("127.0.0.1", 0), plan=plan) as sim:
        report, _ = run(sim, fw, FOUR, drop_grace_s=4.0)
        assert on(sim) == [(NEW, "B")] * 4
    assert report.result == "succeeded"
    assert any("0x02 does not answer" in n for n in report.notes)
    # It kept what it heard before it left: only the rest went to it again.
    assert 0 < report.cards[2].repairs + report.broadcast_chunks - fw.chunks() < fw.chunks() - 25


def test_a_card_that_drops_off_for_good_stops_the_run_before_any_commit():
    fw = firmware(32 * 1024)
    wire = WireLog()
    plan = FaultPlan().with_card(2, drop_off_after_chunks=20)
    with Simulator(4, tcp=("127.0.0.1", 0), plan=plan) as sim:
        report, _ = run(sim, fw, FOUR, trace=wire, drop_grace_s=1.0)
        sim.set_plan(FaultPlan())
        assert on(sim) == [(OLD, "A")] * 4
    assert report.result == "failed" and report.failure.startswith("card 0x02 failed: dropped off")
    assert states(report) == {1: "held", 2: "failed", 3: "held", 4: "held"}
    assert wire.count("FW_COMMIT") == 0


@pytest.mark.parametrize("behaviour", ["crash", "hang", "unhealthy"])
def test_firmware_that_is_never_confirmed_is_rolled_back_by_the_card_and_reported(behaviour):
    fw = firmware(32 * 1024, behaviour=behaviour)
    wire = WireLog()
    with Simulator(4, tcp=("127.0.0.1", 0)) as sim:
        report, _ = run(sim, fw, FOUR, trace=wire)
        with Bus(sim.url) as bus:
            events = [e.name for e in ops.read_events(bus, 1)]
        assert on(sim) == [(OLD, "A")] * 4
        assert not sim.cards[0].card.on_trial
    canary = report.cards[1]
    assert canary.state == "rolled-back" and (canary.version_after, canary.bank_after) == (OLD, "A")
    assert "trial-boot rule" in canary.detail and report.failure.startswith("card 0x01 rolled-back")
    assert states(report) == {1: "rolled-back", 2: "held", 3: "held", 4: "held"}
    assert wire.count("FW_CONFIRM") == 0 and wire.count("FW_COMMIT") == 1   # the canary's alone
    assert events[-1] == "firmware_rolled_back" and events.count("boot") >= 5
    if behaviour == "unhealthy":
        assert "module_link_lost" in canary.detail
    else:
        assert "did not start" in canary.detail and wire.count("REBOOT") == 0


def test_an_image_the_canary_cannot_store_is_refused_at_commit():
    fw = firmware(32 * 1024)
    with Simulator(4, tcp=("127.0.0.1", 0), plan=FaultPlan().with_card(1, bad_flash_byte=5000)) as sim:
        report, _ = run(sim, fw, FOUR)
        assert on(sim) == [(OLD, "A")] * 4
    assert report.cards[1].state == "failed" and "VERIFY_FAILED" in report.cards[1].detail
    assert states(report) == {1: "failed", 2: "held", 3: "held", 4: "held"}


def test_an_image_one_card_of_a_group_commit_cannot_store_is_reported_for_that_card():
    fw = firmware(32 * 1024)
    wire = WireLog()
    plan = FaultPlan().with_card(4, bad_flash_byte=12345)
    with Simulator(5, tcp=("127.0.0.1", 0), plan=plan) as sim:
        report, _ = run(sim, fw, [1, 2, 3, 4, 5], trace=wire)
        assert (ping(sim, 4).version, ping(sim, 4).bank) == (OLD, "A")
    assert wire.count("FW_COMMIT", True) == 1       # cards 2..5 were committed by one broadcast
    assert states(report) == {1: "installed", 2: "installed", 3: "installed", 4: "failed",
                              5: "installed"}
    assert "VERIFY_FAILED" in report.cards[4].detail and report.result == "failed"
