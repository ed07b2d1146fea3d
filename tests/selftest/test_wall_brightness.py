"""The wall's current brightness against simulated cards: the 40 % bug, the schedule's fades on a
simulated clock, a hand setting until the next entry, persistence, the journal."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone

import pytest

from controller.brightness import level_of_percent
from controller.brightness_schedule import FADE_STEPS_MAX, Schedule
from controller.selftest.runner import run_profile
from controller.service.brightness import STATE_FILE, WallBrightness

UTC = timezone.utc


def epoch(hhmmss: str) -> float:
    h, m, s = map(int, hhmmss.split(":"))
    return datetime(2026, 12, 5, h, m, s, tzinfo=UTC).timestamp()


class Clock:
    """A simulated wall clock: epoch seconds that move only when the test says."""

    def __init__(self, start: str) -> None:
        self.now = epoch(start)

    def __call__(self) -> float:
        return self.now


def wall(rig, clock: Clock, state=None) -> WallBrightness:
    svc = rig.service
    return WallBrightness(svc.owner, [cab.address for cab in svc.layout.cabinets],
                          svc.settings.default_level, state or rig.state, svc.faults,
                          clock=clock, tz=UTC)


def card_levels(rig) -> set[int]:
    return {k.card.brightness for k in rig.sim.cards}


def reaches(rig, level: int, within_s: float = 2.0) -> bool:
    """Whether every simulated card holds ``level`` soon (the simulator runs in its own thread,
    and a broadcast has no answer to wait for)."""
    deadline = time.monotonic() + within_s
    while card_levels(rig) != {level}:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def config_check(report) -> dict:
    return next(ch for ch in report["checks"] if ch["id"] == "cards.config")


def commission(rig) -> dict:
    async def go():
        job = rig.service.start_commissioning(True, "test")
        await job.task
        return job
    job = rig.run(go())
    assert job.state == "succeeded", job.error
    return job.result


def test_brightness_set_by_hand_then_a_selftest_passes_cards_config(rig):
    svc = rig.service
    commission(rig)
    assert card_levels(rig) == {level_of_percent(80)}               # the screen file's default
    rig.run(svc.brightness.set_by_hand(level_of_percent(40), None, "installer-1"))
    assert card_levels(rig) == {26214}                              # each card read back
    report = rig.run(run_profile(svc.board, "quick", trigger="manual", who="test"))
    assert [f["key"] for f in config_check(report)["findings"]] == ["config.ok"]
    # a card someone changed behind the controller's back is still found, in percent
    rig.sim.cards[4].card.brightness = level_of_percent(80)
    report = rig.run(run_profile(svc.board, "quick", trigger="manual", who="test"))
    (finding,) = config_check(report)["findings"]
    assert finding["text"] == "Cabinet 5 (0x05): brightness 80 %, the wall is set to 40 %"


def test_commissioning_writes_the_current_brightness_not_the_screen_files(rig):
    svc = rig.service
    assert svc.brightness.level() == level_of_percent(80)         # the demo's [correction] default
    rig.run(svc.brightness.set_by_hand(level_of_percent(25), None, "installer-1"))
    rig.sim.cards[0].card.brightness = 7
    commission(rig)
    assert card_levels(rig) == {level_of_percent(25)}
    report = svc.history.report(svc.history.runs(1)[0]["id"])      # commissioning's self-test
    assert [f["key"] for f in config_check(report)["findings"]] == ["config.ok"]


def test_a_scheduled_fade_on_a_simulated_clock(rig):
    clock = Clock("21:58:00")
    wb = wall(rig, clock)
    rig.run(wb.set_schedule(Schedule.parse(["07:00=80", "22:00=30"], 60), "installer-1"))
    sent: list[tuple[float, int]] = []
    while clock.now < epoch("22:02:00"):           # the service ticks each second; 4 a second here
        level = rig.run(wb.tick())
        if level is not None:
            sent.append((clock.now, level))
            assert reaches(rig, level)              # the broadcast reached every card
        clock.now += 0.25
    # the schedule takes over at once (80 % holds before 22:00), then fades
    assert sent[0] == (epoch("21:58:00"), level_of_percent(80))
    fade = sent[1:]
    assert fade[0][0] == epoch("22:00:00") and fade[-1][1] == level_of_percent(30)
    assert len(fade) <= FADE_STEPS_MAX and len(fade) == 60            # 60 s: one step a second
    assert all(b[0] - a[0] >= 1.0 for a, b in zip(sent, sent[1:]))
    assert all(b[1] < a[1] for a, b in zip(fade, fade[1:]))            # downwards only
    assert fade[-1][0] <= epoch("22:01:00")
    assert wb.view()["source"] == "schedule" and wb.broadcasts == 61


def test_a_long_fade_is_at_most_64_broadcasts(rig):
    clock = Clock("06:59:00")
    wb = wall(rig, clock)
    rig.run(wb.set_schedule(Schedule.parse(["07:00=90", "22:00=10"], 600), "installer-1"))
    clock.now = epoch("21:59:59")
    rig.run(wb.tick())
    sent = []
    while clock.now < epoch("22:11:00"):
        clock.now += 1
        level = rig.run(wb.tick())
        if level is not None:
            sent.append(level)
    assert len(sent) == FADE_STEPS_MAX and sent[-1] == level_of_percent(10)


def test_a_hand_setting_holds_until_the_next_entry_which_fades_from_it(rig):
    clock = Clock("12:00:00")
    wb = wall(rig, clock)
    rig.run(wb.set_schedule(Schedule.parse(["07:00=80", "22:00=30"], 60), "installer-1"))
    answer = rig.run(wb.set_by_hand(level_of_percent(50), None, "installer-2"))
    assert answer["until"] == "2026-12-05T22:00:00Z" and card_levels(rig) == {level_of_percent(50)}
    clock.now = epoch("21:59:59")
    assert rig.run(wb.tick()) is None and wb.view()["source"] == "hand"
    clock.now = epoch("22:00:00")
    assert rig.run(wb.tick()) == level_of_percent(50 - 20 / 60)     # from the hand's 50 %, not 80 %
    clock.now = epoch("22:01:00")
    assert rig.run(wb.tick()) == level_of_percent(30)
    assert wb.hand is None and wb.view()["source"] == "schedule"
    assert json.loads((rig.state / STATE_FILE).read_text())["hand"] is None


def test_a_card_set_by_hand_keeps_its_level_through_a_fade(rig):
    clock = Clock("21:59:00")
    wb = wall(rig, clock)
    rig.run(wb.set_schedule(Schedule.parse(["07:00=80", "22:00=30", "23:00=20"], 10), "i"))
    rig.run(wb.set_by_hand(level_of_percent(5), [2], "installer-2"))
    rig.run(wb.tick())
    assert rig.sim.cards[1].card.brightness == level_of_percent(5)
    assert rig.sim.cards[0].card.brightness == level_of_percent(80)
    assert wb.level(2) == level_of_percent(5) and wb.fraction(2) == pytest.approx(0.05, abs=1e-4)
    assert wb.fraction() == pytest.approx(0.8, abs=1e-4)
    clock.now = epoch("22:00:00")                     # card 2's hand ends with the entry
    assert reaches(rig, rig.run(wb.tick()))


def test_the_state_survives_a_restart_and_a_damaged_file_is_set_aside(rig, tmp_path):
    clock = Clock("12:00:00")
    wb = wall(rig, clock, tmp_path)
    rig.run(wb.set_schedule(Schedule.parse(["07:00=80", "22:00=30"], 60), "installer-1"))
    rig.run(wb.set_by_hand(level_of_percent(45), [3], "installer-2"))
    again = wall(rig, clock, tmp_path)
    assert again.view() == wb.view() | {"broadcasts": 0}
    assert again.view()["cards"]["0x03"]["by"] == "installer-2"
    assert again.view()["schedule"]["by"] == "installer-1"
    (tmp_path / STATE_FILE).write_text('{"hand": {"level": "x"')          # a torn write
    third = wall(rig, clock, tmp_path)
    assert third.view()["source"] == "screen file" and third.view()["percent"] == 80
    assert (tmp_path / "brightness.json.damaged").exists()
    assert any(f.code == "brightness.state_unreadable" for f in rig.service.faults.active())


def test_service_restart_keeps_the_hand_setting(rig):
    rig.run(rig.service.brightness.set_by_hand(level_of_percent(40), None, "installer-1"))
    rig.run(rig.service.stop())
    rig.service = rig.new_service()
    view = rig.service.status()["brightness"]
    assert (view["percent"], view["source"], view["hand"]["by"]) == (40, "hand", "installer-1")


def test_every_change_is_an_event_naming_who(rig):
    svc = rig.service
    rig.run(svc.brightness.set_by_hand(level_of_percent(40), None, "installer-1"))
    rig.run(svc.brightness.set_schedule(Schedule.parse(["07:00=80"], 0), "service-2"))
    rig.run(svc.brightness.set_schedule(None, "service-2"))
    events = [(f.code, f.details["by"], f.state) for f in svc.faults.list(state="all")
              if f.code in ("brightness.set", "schedule.changed")]
    assert sorted(events) == [("brightness.set", "installer-1", "cleared"),
                              ("schedule.changed", "service-2", "cleared"),
                              ("schedule.changed", "service-2", "cleared")]
    assert svc.faults.counts()["active"] == 0 or all(
        f.code not in ("brightness.set", "schedule.changed") for f in svc.faults.active())
    # clearing the schedule keeps the wall where it is
    assert svc.brightness.view()["source"] == "hand" and svc.brightness.view()["percent"] == 80


def test_a_new_schedule_brings_cards_set_by_hand_along_and_a_clock_set_back_does_not_stall(rig):
    clock = Clock("12:00:00")
    wb = wall(rig, clock)
    rig.run(wb.set_schedule(Schedule.parse(["07:00=80"], 0), "i"))
    rig.run(wb.tick())
    rig.run(wb.set_by_hand(level_of_percent(5), [2], "installer-2"))
    clock.now += 5
    rig.run(wb.set_schedule(Schedule.parse(["07:00=80", "22:00=30"], 0), "i"))
    assert reaches(rig, rig.run(wb.tick()))                      # card 2 back with the wall
    assert wb.accepts(2, level_of_percent(80)) and not wb.accepts(2, level_of_percent(5))
    clock.now = epoch("22:30:00")
    assert rig.run(wb.tick()) == level_of_percent(30)
    clock.now = epoch("21:59:59")                                # NTP sets the clock back
    assert rig.run(wb.tick()) == level_of_percent(80)            # not "sent 31 min from now"


def test_a_fade_shares_the_bus_with_a_selftest_and_the_check_accepts_its_steps(rig):
    commission(rig)
    clock = Clock("21:59:59")
    wb = rig.service.brightness          # the self-test reads this one, through the board context
    wb.clock, wb.tz = clock, UTC         # the rig never starts the service: no ticker of its own
    rig.run(wb.set_schedule(Schedule.parse(["07:00=80", "22:00=30"], 20), "installer-1"))
    done, steps = asyncio.Event(), []

    async def fader():
        # A simulated second every 100 ms of real time: ten steps a second, ten times what the
        # service sends, so the self-test meets several.  (Every 20 ms the simulated cards,
        # which write each new level to their flash file, fall behind a loaded machine.)
        while not done.is_set() and clock.now < epoch("22:00:30"):
            level = await wb.tick()
            if level is not None:
                steps.append(level)
            clock.now += 1
            await asyncio.sleep(0.1)

    async def go():
        task = asyncio.create_task(fader())
        try:
            return await run_profile(rig.service.board, "quick", trigger="manual",
                                     who="test")
        finally:
            done.set()
            await task
    report = rig.run(go())
    assert [f["key"] for f in config_check(report)["findings"]] == ["config.ok"]
    assert len(steps) > 3               # the fade went on while the self-test held its turns
