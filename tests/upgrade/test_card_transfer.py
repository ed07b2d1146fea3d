"""The card firmware engine against simulated cards over TCP: broadcast transfer, repairs,
canary, resume, skips, and a card refusing a run before anything reaches the bus."""

from __future__ import annotations

import threading
import time

import pytest

from card_cases import NEW, OLD, WireChunks, WireLog, firmware, ping, run, states
from controller.errors import UpgradeRejected
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from controller.upgrade.cards.flash import CardFlasher
from controller.upgrade.cards.run import FlashOptions
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator


def event_names(sim: Simulator, address: int) -> list[str]:
    with Bus(sim.url) as bus:
        return [e.name for e in ops.read_events(bus, address)]


def test_one_card_gets_every_chunk_by_broadcast_and_is_confirmed():
    fw = firmware()
    wire = WireLog()
    with Simulator(1, tcp=("127.0.0.1", 0)) as sim:
        report, _ = run(sim, fw, [1], trace=wire)
        after = ping(sim, 1)
        card = sim.cards[0].card
        names = event_names(sim, 1)
    assert report.result == "succeeded" and states(report) == {1: "installed"}
    assert (after.version, after.bank) == (NEW, "B") and not card.on_trial
    assert names[-1] == "firmware_confirmed"
    assert wire.count("FW_CHUNK", broadcast=True) == fw.chunks() and wire.count("FW_CHUNK", False) == 0
    # One card: no broadcast FW_BEGIN or FW_COMMIT, each goes to it with an answer.
    assert wire.count("FW_BEGIN", True) == wire.count("FW_COMMIT", True) == 0
    assert wire.count("FW_COMMIT", False) == wire.count("FW_CONFIRM", False) == 1
    assert report.cards[1].as_dict() | {"detail": ""} == {
        "address": 1, "state": "installed", "version_before": OLD, "bank_before": "A",
        "version_after": NEW, "bank_after": "B", "received": fw.chunks(), "repairs": 0, "detail": ""}


def test_eight_cards_canary_first_then_the_rest_committed_together():
    fw = firmware()
    wire = WireLog()
    with Simulator(8, tcp=("127.0.0.1", 0)) as sim:
        report, _ = run(sim, fw, range(1, 9), trace=wire, canary=2)
        versions = {k.card.version for k in sim.cards}
        on_trial = [k.card.on_trial for k in sim.cards]
    assert report.result == "succeeded" and set(states(report).values()) == {"installed"}
    assert versions == {(2, 0, 0)} and not any(on_trial)
    assert wire.count("FW_CHUNK", True) == fw.chunks()        # each chunk once, for all eight
    assert wire.count("FW_BEGIN", True) == 1 and wire.count("FW_BEGIN", False) == 8
    # Canaries 1 and 2 are committed one by one and confirmed before the rest are committed.
    commits = [i for i, (name, dst) in enumerate(wire.order) if name == "FW_COMMIT"]
    confirms = {dst: i for i, (name, dst) in enumerate(wire.order) if name == "FW_CONFIRM"}
    assert [wire.order[i][1] for i in commits] == [1, 2, 0xFF]
    assert confirms[1] < commits[2] and confirms[2] < commits[2]
    assert sorted(confirms) == list(range(1, 9))


def test_cards_already_on_the_version_are_skipped_unless_forced():
    fw = firmware()
    with Simulator(3, tcp=("127.0.0.1", 0)) as sim:
        assert run(sim, fw, [1, 2, 3])[0].result == "succeeded"
        wire = WireLog()
        again, _ = run(sim, fw, [1, 2, 3], trace=wire)
        assert again.result == "succeeded" and set(states(again).values()) == {"skipped"}
        assert wire.count("FW_BEGIN") == wire.count("FW_CHUNK") == wire.count("FW_COMMIT") == 0
        forced, _ = run(sim, fw, [1, 2], force=True)
        assert states(forced) == {1: "installed", 2: "installed"}
        assert [(ping(sim, a).version, ping(sim, a).bank) for a in (1, 2, 3)] == [
            (NEW, "A"), (NEW, "A"), (NEW, "B")]   # reinstalled into the other bank


def test_a_card_of_another_model_refuses_the_run_before_anything_is_sent():
    wire = WireLog()
    with Simulator(2, tcp=("127.0.0.1", 0), hw_model=0x0B07) as sim:
        with pytest.raises(UpgradeRejected, match="card 0x01 is hw_model 0x0B07") as err:
            run(sim, firmware(), [1, 2], trace=wire)
    assert err.value.reason == "hw-model"
    assert wire.count("FW_BEGIN") == wire.count("FW_CHUNK") == 0


def test_an_interrupted_run_resumes_from_the_cards_fw_status():
    fw = firmware(64 * 1024)                    # 128 chunks
    with Simulator(4, tcp=("127.0.0.1", 0)) as sim:
        wire = WireChunks(sim)
        with Bus(sim.url) as bus:              # the first controller, stopped mid-transfer
            box: list[CardFlasher] = []
            box.append(CardFlasher(bus, fw, range(1, 5), FlashOptions(),
                                   should_stop=lambda: box[0].report.sent >= 48))
            first = box[0].run()
        assert first.result == "stopped" and set(states(first).values()) == {"held"}
        sent_first = wire.count
        with Bus(sim.url) as bus:              # a restarted controller: new bus, new engine
            held = [bus.call(a, c.Cmd.FW_STATUS).received for a in range(1, 5)]
        wire.count = 0
        second, _ = run(sim, fw, range(1, 5))
        assert second.result == "succeeded" and set(states(second).values()) == {"installed"}
    assert 48 <= sent_first < 128 and all(n >= 40 for n in held)
    assert wire.count <= 128 - min(held)        # only what the cards still lacked went out again
    assert wire.count + sent_first < 2 * 128


def test_a_card_on_trial_is_checked_and_confirmed_by_the_next_run():
    """A run stopped after FW_COMMIT left card 2 on trial: a run with another version leaves
    it alone and says why; the next run with the same firmware confirms it — and the broadcast
    FW_BEGIN and FW_COMMIT that then go to the five others must not touch card 2."""
    fw, other = firmware(8 * 1024), firmware(8 * 1024, version="3.0.0", seed=9)
    with Simulator(6, tcp=("127.0.0.1", 0)) as sim:
        with Bus(sim.url) as bus:
            bus.call(2, c.Cmd.FW_BEGIN, fw.begin())
            ops.fw_status_when_erased(bus, 2)
            for i in range(fw.chunks()):
                bus.call(2, c.Cmd.FW_CHUNK, fw.chunk(i))
            bus.call(2, c.Cmd.FW_COMMIT)
        deadline = time.monotonic() + 3
        while not sim.cards[1].card.on_trial:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        refused, _ = run(sim, other, [2])
        assert refused.result == "failed" and "runs firmware 2.0.0 on trial" in refused.cards[2].detail
        assert sim.cards[1].card.on_trial
        wire = WireLog()
        resumed, _ = run(sim, fw, range(1, 7), trace=wire)
        card2 = sim.cards[1].card
        assert set(states(resumed).values()) == {"installed"}
        # Card 2 would hear a broadcast FW_BEGIN: the others get theirs one by one.
        assert wire.count("FW_BEGIN", True) == 0 and wire.count("FW_BEGIN", False) == 5
        assert wire.count("FW_COMMIT", True) == 1 and ("FW_ABORT", 2) in wire.order
        assert (card2.version, card2.active_bank, card2.on_trial) == ((2, 0, 0), 1, False)
        assert card2.flash.bank_ok(0) and card2.flash.bank_info(0)[1] == (1, 0, 0)


def test_cards_outside_a_run_keep_their_fallback_bank_and_commit_nothing():
    """Run 1 for all eight stops once every card holds the image; run 2 is for cards 1-5
    alone: 6-8 must hear no FW_BEGIN (it would erase their fallback bank) and must drop the
    image they still hold before the broadcast FW_COMMIT (or they would switch to it)."""
    fw = firmware(16 * 1024)
    with Simulator(8, tcp=("127.0.0.1", 0)) as sim:
        with Bus(sim.url) as bus:
            box: list[CardFlasher] = []
            box.append(CardFlasher(bus, fw, range(1, 9),
                                   should_stop=lambda: box[0].report.phase == "canary"))
            first = box[0].run()
            assert first.result == "stopped" and first.group_begin
            assert bus.call(7, c.Cmd.FW_STATUS).state == c.FwState.COMPLETE
        wire = WireLog()
        second, _ = run(sim, fw, range(1, 6), trace=wire, others=[6, 7, 8])
        time.sleep(0.4)      # had 6-8 taken the FW_COMMIT, they would have rebooted by now
        with Bus(sim.url) as bus:
            for k in sim.cards[5:]:
                assert (k.card.version, k.card.active_bank, k.card.on_trial) == ((1, 0, 0), 0, False)
                assert bus.call(k.position, c.Cmd.FW_STATUS).state == c.FwState.IDLE
        assert set(states(second).values()) == {"installed"}
        assert wire.count("FW_BEGIN", True) == 0 and wire.count("FW_COMMIT", True) == 1
        assert {dst for name, dst in wire.order if name == "FW_ABORT"} >= {6, 7, 8}


@pytest.mark.parametrize("ber", [5e-5])
def test_chunks_lost_to_line_noise_are_repaired(ber):
    fw = firmware(64 * 1024)
    with Simulator(4, tcp=("127.0.0.1", 0), plan=FaultPlan(ber=ber), seed=11) as sim:
        report, _ = run(sim, fw, range(1, 5))
        flipped = sim.bus.line_stats()["flipped_bits"]
    assert flipped > 0 and report.rounds >= 1
    assert report.broadcast_chunks > fw.chunks()      # the shared losses went out again
    assert report.result == "succeeded" and set(states(report).values()) == {"installed"}


def test_a_stop_request_from_another_thread_stops_between_frames():
    fw = firmware(64 * 1024)
    with Simulator(2, tcp=("127.0.0.1", 0)) as sim, Bus(sim.url) as bus:
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        report = CardFlasher(bus, fw, [1, 2], should_stop=stop.is_set).run()
    assert report.result == "stopped" and report.failure == "stopped on request"
    assert set(states(report).values()) == {"held"}


def test_cards_nothing_was_sent_to_are_reported_as_not_started():
    """Issue 15 item 21: a run refused for a card of another model called the other cards
    "held … resumes from what the card holds" although nothing had been sent to them."""
    with Simulator(3, tcp=("127.0.0.1", 0), hw_model=0x0B07) as sim, Bus(sim.url) as bus:
        flasher = CardFlasher(bus, firmware(), [1, 2, 3])
        with pytest.raises(UpgradeRejected):
            flasher.run()
    report = flasher.report
    assert states(report) == {1: "failed", 2: "not-started", 3: "not-started"}
    assert report.result == "failed" and report.failure.startswith("card 0x01 failed: card 0x01 is hw_model")
    for address in (2, 3):
        assert report.cards[address].detail == ("not started: nothing was sent to it, because the "
                                                 "run ended before its transfer began")
