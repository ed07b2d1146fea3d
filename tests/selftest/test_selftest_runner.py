"""Self-test profiles against simulated cards: each injected fault is named by the right
check, a second run is compared with the first, and findings feed the fault log."""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
import pytest
from conftest import demo_plan

from controller.selftest import checks_controller
from controller.selftest.runner import compare, compared_with, run_profile


def quarterly(rig, **kw):
    return rig.run(run_profile(rig.service.board, "quarterly",
                               trigger="manual", who="test", **kw))


def quick(rig):
    return rig.run(run_profile(rig.service.board, "quick", trigger="manual", who="test"))


def commission(rig) -> dict:
    async def go():
        job = rig.service.start_commissioning(True, "test")
        await job.task
        return job
    job = rig.run(go())
    assert job.state == "succeeded", job.error
    return job.result


def findings(report, outcome=("warn", "fail", "error")) -> set[tuple[str, str, str]]:
    return {(ch["id"], f["key"], f["subject"]) for ch in report["checks"] for f in ch["findings"]
            if f["outcome"] in outcome}


def check(report, check_id) -> dict:
    return next(ch for ch in report["checks"] if ch["id"] == check_id)


#: What a loaded test machine, not the link, may add: round trips over bus.link's limit.
MACHINE_SLOW = "link.slow"


def passed(report, check_id) -> bool:
    """The check passed, or warned only that round trips were slow: the simulated cards share
    this machine's two cores, and a loaded CI box stretches their answers, not the cable."""
    ch = check(report, check_id)
    return ch["outcome"] == "pass" or (
        ch["outcome"] == "warn" and {f["key"] for f in ch["findings"]} == {MACHINE_SLOW})


def test_quarterly_names_each_injected_fault_and_the_second_run_compares(rig):
    commission(rig)
    first = quarterly(rig)
    assert first["result"] == "fail"
    assert check(first, "cards.environment")["outcome"] == "fail"
    assert ("cards.environment", "env.hot", "card:0x03") in findings(first)
    leds = check(first, "cards.leds")
    assert ("cards.leds", "leds.dead", "card:0x02/module:0") in findings(first), leds
    assert ("cards.leds", "leds.dead", "card:0x07/module:15") in findings(first), leds
    # the commissioning report is the baseline: the dead LEDs it found are not new
    assert check(first, "cards.leds")["outcome"] == "warn"
    for ok in ("cards.present", "cards.config", "bus.link", "fastpath.golden", "storage", "clock"):
        assert passed(first, ok), check(first, ok)
    hot = next(f for f in check(first, "cards.environment")["findings"] if f["key"] == "env.hot")
    assert hot["text"].startswith("Cabinet 3 (0x03) runs hot") and "91.5 °C" in hot["text"]
    assert first["comparison"]["previous_profile"] == "commissioning"
    # commissioning detected two dead LEDs: its acceptance report is the baseline they compare with
    dead = first["comparison"]["dead_leds"]
    assert dead is not None and (dead["previous"], dead["now"], dead["new"], dead["fixed"]) == (2, 2, [], [])
    assert dead["baseline"]["kind"] == "acceptance"
    cab3 = first["cabinets"][2]
    assert cab3["status"]["temperature_c"] == 91.5 and cab3["problems"]

    rig.sim.set_plan(demo_plan().with_card(6, fan_rpm=0)
                     .with_card(5, dead_leds=frozenset({(4, 20, 12, 0)})))
    second = quarterly(rig)
    comparison = second["comparison"]
    assert comparison["previous_id"] == first["id"]
    new = {(f["check"], f["key"], f["subject"]) for f in comparison["new_findings"]}
    assert ("cards.environment", "env.fan", "card:0x06") in new
    # one finding per module, at its worst: the new LED fails its module and is not also a warning
    assert ("cards.leds", "leds.dead_new", "card:0x05/module:4") in new
    assert ("cards.leds", "leds.dead", "card:0x05/module:4") not in findings(second)
    assert [f for f in comparison["fixed_findings"] if f["key"] != MACHINE_SLOW] == []
    assert comparison["dead_leds"]["previous"] == 2 and comparison["dead_leds"]["now"] == 3
    assert [(d["address"], d["module"]) for d in comparison["dead_leds"]["new"]] == [(5, 4)]
    assert check(second, "cards.leds")["outcome"] == "fail"
    led = second["cabinets"][4]["dead_leds"][0]
    assert led["new"] is True and (led["screen_x"], led["screen_y"]) != (None, None)
    assert [h["id"] for h in second["history"]] == [first["history"][0]["id"], first["id"], second["id"]]

    rig.sim.set_plan(demo_plan())
    third = quarterly(rig)
    fixed = {(f["check"], f["key"], f["subject"]) for f in third["comparison"]["fixed_findings"]}
    assert ("cards.environment", "env.fan", "card:0x06") in fixed


def test_quick_is_fast_reads_no_leds_and_runs_with_the_screen_showing(rig):
    t0 = time.monotonic()
    report = quick(rig)
    # seconds on an idle machine (docs/selftest.md); the bound only catches a quick profile
    # that grew a slow check, with room for a loaded CI box
    assert time.monotonic() - t0 < 30
    assert check(report, "cards.leds")["values"]["dead_leds"] is None
    assert ("cards.environment", "env.hot", "card:0x03") in findings(report)
    assert {k.platform.pattern for k in rig.sim.cards} == {0}       # nothing drawn on the wall


def test_findings_become_faults_and_resolve_when_gone(rig):
    """A hot card is filed under the watch's code for the condition (one fault per condition,
    issue 13): ``card.over_temperature``, not ``selftest.env.hot``."""
    svc = rig.service
    svc.record_selftest_faults(quick(rig))
    active = {(f.code, f.source) for f in svc.faults.active()}
    assert ("card.over_temperature", "card:0x03") in active
    assert not any(code == "selftest.env.hot" for code, _ in active)
    rig.sim.set_plan(demo_plan().with_card(3, temp_c=None))
    svc.record_selftest_faults(quick(rig))
    assert ("card.over_temperature", "card:0x03") not in {(f.code, f.source) for f in svc.faults.active()}
    cleared = svc.faults.list(state="cleared")
    assert any(f.code == "card.over_temperature" and f.cleared_by.startswith("self-test")
               for f in cleared)


def test_card_events_since_the_last_run_are_counted_once(rig):
    quick(rig)
    rig.sim.set_plan(demo_plan().with_card(4, watchdog_reset=True))
    deadline = time.monotonic() + 5
    report = quick(rig)
    while ("cards.events", "events.watchdog", "card:0x04") not in findings(report):
        assert time.monotonic() < deadline, findings(report)
        report = quick(rig)
    assert check(report, "cards.events")["outcome"] == "fail"
    again = quick(rig)
    assert ("cards.events", "events.watchdog", "card:0x04") not in findings(again)


def test_a_missing_card_fails_presence_and_is_not_asked_again(rig):
    rig.sim.set_plan(demo_plan().with_card(8, mute=True))
    report = quick(rig)
    assert ("cards.present", "cards.missing", "card:0x08") in findings(report)
    assert not any(subject == "card:0x08" for cid, _, subject in findings(report)
                   if cid not in ("cards.present",))


def test_a_damaged_fast_path_is_caught(rig, monkeypatch):
    real = checks_controller.fastpath.Pipeline

    class Miscompiled(real):
        def process(self, frame):
            result = super().process(frame)
            first = next(iter(result.buffers))
            broken = dict(result.buffers)
            broken[first] = np.array(result.buffers[first])
            broken[first][7] ^= 1
            return type(result)(broken, result.sums, result.peaks)

    monkeypatch.setattr(checks_controller.fastpath, "Pipeline", Miscompiled)
    report = quick(rig)
    golden = check(report, "fastpath.golden")
    assert golden["outcome"] == "fail" and golden["values"]["bytes_differing"] >= 1


def test_a_clock_before_the_build_fails_and_a_crashing_check_is_an_error(rig, monkeypatch, tmp_path):
    future = tmp_path / "stamp"
    future.write_text("")
    os.utime(future, (time.time() + 86400 * 30,) * 2)
    monkeypatch.setattr(checks_controller, "BUILD_STAMP", future)
    report = quick(rig)
    assert ("clock", "clock.before_build", "controller") in findings(report)
    monkeypatch.setattr(checks_controller, "BUILD_STAMP", tmp_path / "missing")
    report = quick(rig)
    assert check(report, "clock")["outcome"] == "error"
    assert check(report, "storage")["outcome"] == "pass"    # the run went on


def test_the_history_survives_a_restart_of_the_service(rig):
    first = quick(rig)
    rig.run(rig.service.stop())
    rig.service = rig.new_service()
    assert rig.service.history.report(first["id"])["result"] == first["result"]
    second = quick(rig)
    assert second["comparison"]["previous_id"] == first["id"]


def test_a_selftest_job_refuses_to_overlap_another_bus_job(rig):
    async def go():
        job = rig.service.start_selftest("quick", "manual", "test")
        with pytest.raises(Exception, match="still running"):
            rig.service.start_selftest("quick", "manual", "test")
        await job.task
        return job
    job = rig.run(go())
    assert job.state == "succeeded" and job.result["id"] >= 1
    assert asyncio.iscoroutinefunction(run_profile)


def test_health_check_counts_only_failures_new_since_the_last_run(rig):
    ok, detail = rig.run(rig.service.health_check())
    assert not ok and "0x03" in detail           # no earlier run: the hot card counts
    ok, detail = rig.run(rig.service.health_check())
    assert ok, detail                             # the same hot card: not new
    rig.sim.set_plan(demo_plan().with_card(6, mute=True))
    ok, detail = rig.run(rig.service.health_check())
    assert not ok and "Cabinet 6 (0x06) does not answer" in detail


def test_card_upgrades_wait_while_an_upgraded_controller_is_on_trial(rig):
    from controller.errors import LedwardenError
    from controller.upgrade.cards.job import CardUpgrades

    rig.service.trial_judged.clear()
    upgrades = CardUpgrades(rig.service, lambda: None, rig.service.faults)
    with pytest.raises(LedwardenError, match="on trial"):
        upgrades.start("0" * 64, None, 1, False, "test")


def _run(**checks) -> dict:
    """A stored run with the given findings per check id (``cards_events`` → ``cards.events``)."""
    return {"id": 1, "started": "2026-11-22T10:00:00Z", "result": "fail", "profile": "quarterly", "cabinets": [],
            "checks": [{"id": cid.replace("_", "."), "findings": fs} for cid, fs in checks.items()]}


def _f(outcome, key, subject, **fields) -> dict:
    return {"outcome": outcome, "key": key, "subject": subject, "fields": fields, "text": key}


def test_fixed_means_the_condition_is_gone_not_that_an_event_count_changed():
    hot = _f("fail", "env.hot", "card:0x03", temp_c=91.5)
    events = _f("warn", "events.over_temperature", "card:0x03", count=1)
    before = _run(cards_environment=[hot], cards_events=[events])
    still_hot = compare(_run(cards_environment=[hot], cards_events=[]), before)
    assert still_hot["fixed_findings"] == [] and still_hot["new_findings"] == []
    cooled = compare(_run(cards_environment=[], cards_events=[]), before)
    assert [f["key"] for f in cooled["fixed_findings"]] == ["env.hot"]


def test_a_module_that_gains_a_dead_led_is_worse_not_fixed_and_new():
    known = _f("warn", "leds.dead", "card:0x02/module:9", module=9, count=2)
    gained = _f("fail", "leds.dead_new", "card:0x02/module:9", module=9, count=3, new=1)
    cmp = compare(_run(cards_leds=[gained]), _run(cards_leds=[known]))
    assert [f["key"] for f in cmp["new_findings"]] == ["leds.dead_new"] and cmp["fixed_findings"] == []
    calm = compare(_run(cards_leds=[known]), _run(cards_leds=[gained]))
    assert calm["new_findings"] == [] and calm["fixed_findings"] == []


def _inspected(run_id: int, *leds: tuple[int, int, int, int, str]) -> dict:
    """A stored quarterly run whose LED check ran detection and found ``leds`` (card, module, x, y,
    channel), each marked new (as if against an empty baseline)."""
    cabinets = {}
    for address, module, x, y, channel in leds:
        cabinets.setdefault(address, []).append({"module": module, "x": x, "y": y,
                                                 "channel": channel, "new": True})
    return {"id": run_id, "started": f"2026-11-{run_id:02d}T10:00:00Z", "result": "fail",
            "profile": "quarterly",
            "cabinets": [{"address": a, "dead_leds": d, "status": None} for a, d in cabinets.items()],
            "checks": [{"id": "cards.leds", "values": {"dead_leds": len(leds)}, "findings": []}]}


def test_any_two_inspections_compare_with_the_new_marks_redone():
    first = _inspected(1, (2, 0, 1, 1, "r"))
    second = _inspected(2, (2, 0, 1, 1, "r"), (3, 1, 5, 5, "g"))
    third = _inspected(3, (2, 0, 1, 1, "r"), (3, 1, 5, 5, "g"), (4, 2, 7, 7, "b"))
    against_first = compared_with(third, first)
    assert against_first["comparison"]["previous_id"] == 1
    assert [d["address"] for d in against_first["comparison"]["dead_leds"]["new"]] == [3, 4]
    marks = {cab["address"]: [d["new"] for d in cab["dead_leds"]] for cab in against_first["cabinets"]}
    assert marks == {2: [False], 3: [True], 4: [True]}
    against_second = compared_with(third, second)
    assert [d["address"] for d in against_second["comparison"]["dead_leds"]["new"]] == [4]
    assert third["cabinets"][0]["dead_leds"][0]["new"] is True          # the stored run unchanged
    # a run that did not look for dead LEDs has nothing to call new
    blind = {**first, "checks": []}
    assert compared_with(third, blind)["comparison"]["dead_leds"] is None
    assert all(not d["new"] for cab in compared_with(third, blind)["cabinets"] for d in cab["dead_leds"])
