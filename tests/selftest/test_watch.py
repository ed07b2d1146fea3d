"""The watch between inspections: a card that stops answering, a flag, a logged watchdog reset,
frame-loop overruns — each filed once, folded when it repeats, resolved when it goes away."""

from __future__ import annotations

from dataclasses import replace

from conftest import demo_plan

from controller.selftest.runner import run_profile
from controller.service.watch import CardWatch


def active(rig) -> dict[tuple[str, str], int]:
    return {(f.code, f.source): f.count for f in rig.service.faults.active()}


class FakeLoop:
    def __init__(self) -> None:
        self.overruns = 0

    def stats(self) -> dict:
        return {"overruns": self.overruns, "p99_ms": 40.0, "budget_ms": 33.3}


def test_the_watch_files_and_resolves_card_faults(rig):
    watch = CardWatch(rig.service.board)
    rig.run(watch.poll_once())
    assert ("card.over_temperature", "card:0x03") in active(rig)
    rig.sim.set_plan(demo_plan().with_card(5, mute=True).with_card(4, watchdog_reset=True))
    rig.run(watch.poll_once())
    rig.run(watch.poll_once())
    now = active(rig)
    assert ("card.offline", "card:0x05") in now and now[("card.offline", "card:0x05")] == 2
    assert ("bus.timeout", "card:0x05") not in now      # one condition, one fault (item 13)
    for _ in range(20):                   # card 4 reboots after its watchdog reset, then tells
        if ("card.watchdog_reset", "card:0x04") in active(rig):
            break
        rig.run(watch.poll_once())
    assert ("card.watchdog_reset", "card:0x04") in active(rig)
    rig.sim.set_plan(demo_plan().with_card(3, temp_c=None))
    rig.run(watch.poll_once())
    now = active(rig)
    assert ("card.offline", "card:0x05") not in now
    assert ("card.over_temperature", "card:0x03") not in now
    assert ("card.watchdog_reset", "card:0x04") in now          # an event stays until cleared


def test_overruns_fold_and_clear(rig):
    loop = FakeLoop()
    watch = CardWatch(replace(rig.service.board, frame_loop=loop))
    watch._poll_frames()
    loop.overruns = 5
    watch._poll_frames()
    loop.overruns = 9
    watch._poll_frames()
    assert active(rig)[("frameloop.overrun", "controller")] == 2
    watch._poll_frames()
    assert ("frameloop.overrun", "controller") not in active(rig)


def test_the_watch_stands_aside_while_a_bus_job_runs(rig):
    async def go():
        job = rig.service.start_selftest("quick", "manual", "test")
        before = rig.service.owner.operations
        await CardWatch(rig.service.board, bus_busy=rig.service.board_jobs.bus_busy).poll_once()
        polled = rig.service.owner.operations - before
        await job.task
        return polled
    assert rig.run(go()) == 0


def test_one_muted_card_files_one_fault_with_the_rest_as_its_evidence(rig):
    """Issue 15 item 13: the watch, a job's bus timeouts and a self-test all see card 5 go
    quiet; the fault log holds one fault, ``card.offline``, and the others as its evidence."""
    svc = rig.service
    rig.sim.set_plan(demo_plan().with_card(5, mute=True))

    async def go():
        await CardWatch(svc.board).poll_once()
        job = svc.start_detection([5], "test")            # its timeout goes to the bus-owner hook
        await job.task
        report = await run_profile(svc.board, "quick", trigger="manual", who="test")
        svc.record_selftest_faults(report)
    rig.run(go())
    card5 = svc.faults.list(state=None, source="card:0x05")
    assert [f.code for f in card5] == ["card.offline"]
    evidence = {e["code"] for e in card5[0].details["evidence"]}
    assert {"bus.timeout", "selftest.cards.missing"} <= evidence
    # the card answers again: its one fault is resolved, evidence and all
    rig.sim.set_plan(demo_plan())
    rig.run(CardWatch(svc.board).poll_once())
    assert ("card.offline", "card:0x05") not in active(rig)


def test_the_watch_and_a_self_test_file_a_hot_card_as_one_fault(rig):
    """Issue 13: ``card.over_temperature`` (watch) and ``env.hot`` (self-test) are one
    condition: whichever sees it first opens the fault, the other folds into it."""
    svc = rig.service

    async def go():
        await CardWatch(svc.board).poll_once()
        report = await run_profile(svc.board, "quick", trigger="manual", who="test")
        svc.record_selftest_faults(report)
        await CardWatch(svc.board).poll_once()
    rig.run(go())
    card3 = [f for f in svc.faults.list(state=None, source="card:0x03")
             if f.code in ("card.over_temperature", "selftest.env.hot")]
    assert [f.code for f in card3] == ["card.over_temperature"]
    assert card3[0].count == 3
