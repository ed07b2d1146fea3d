"""Filing self-test findings (controller/faultlog/findings.py): one fault code per condition.

The watch files a hot card as ``card.over_temperature``; the self-test's
``env.hot`` finding is the same condition and must fold into that fault, not
open a ``selftest.env.hot`` beside it.  A run resolves a ``card.*`` fault
only where it looked at the card; ``selftest.*`` faults as before; rows of
the old codes left by an older version are closed by the next run.
"""

from __future__ import annotations

import pytest

from controller.faultlog import FaultLog
from controller.faultlog.findings import CARD_CODES, fault_code, record_selftest_faults

HOT = {"outcome": "fail", "key": "env.hot", "subject": "card:0x03",
       "text": "Cabinet 3 (0x03) runs hot: 91.5 °C"}
WARM = {"outcome": "warn", "key": "env.warm", "subject": "card:0x04", "text": "Cabinet 4 is warm"}
FLAGGED = {"outcome": "warn", "key": "leds.flagged", "subject": "card:0x03", "text": "pixel faults"}


def report(run_id: int, *findings: dict, status=(3, 4), leds: bool | None = None) -> dict:
    """A self-test report as the runner writes it: environment (and LED) checks, cabinets
    whose status was read (``status``), ``leds`` False for a flag look, True for a detection."""
    env = [f for f in findings if f["key"].startswith("env.")]
    checks = [{"id": "cards.environment", "outcome": "fail" if env else "pass", "values": {},
               "findings": env or [{"outcome": "pass", "key": "env.ok", "subject": "controller",
                                    "text": "ok"}]}]
    if leds is not None:
        led = [f for f in findings if f["key"].startswith("leds.")]
        checks.append({"id": "cards.leds", "outcome": "warn" if led else "pass",
                       "values": {"dead_leds": 0 if leds else None}, "findings": led})
    cabinets = [{"address": a, "status": {"temperature_c": 40.0}} for a in status]
    return {"id": run_id, "checks": checks, "cabinets": cabinets}


@pytest.fixture
def faults(tmp_path):
    log = FaultLog(tmp_path / "faults.db")
    yield log
    log.close()


def active(faults: FaultLog) -> dict[tuple[str, str], int]:
    return {(f.code, f.source): f.count for f in faults.active()}


def test_each_condition_the_watch_files_has_one_code():
    assert fault_code("env.hot") == "card.over_temperature"
    assert fault_code("env.supply") == "card.under_voltage"
    assert fault_code("leds.flagged") == "card.pixel_faults"
    assert fault_code("env.warm") == "selftest.env.warm"          # the watch has no "warm"
    assert all(code.startswith("card.") for code, _ in CARD_CODES.values())


def test_a_hot_card_seen_by_the_watch_and_a_self_test_is_one_fault(faults):
    faults.record("card.over_temperature", "error", "card:0x03", {"temperature_c": 91.5})
    record_selftest_faults(faults, report(1, HOT, WARM))
    assert active(faults) == {("card.over_temperature", "card:0x03"): 2,
                              ("selftest.env.warm", "card:0x04"): 1}
    # the other order: the self-test first, then the watch folds into it
    faults.resolve("card.over_temperature", "card:0x03")
    record_selftest_faults(faults, report(2, HOT))
    faults.record("card.over_temperature", "error", "card:0x03", {"temperature_c": 92.0})
    assert active(faults)[("card.over_temperature", "card:0x03")] == 2
    assert [f.code for f in faults.list(state=None) if f.code.startswith("selftest.env.hot")] == []


def test_a_run_resolves_a_card_fault_only_where_it_read_the_status(faults):
    faults.record("card.over_temperature", "error", "card:0x03")
    record_selftest_faults(faults, report(1, status=(4,)))          # card 3 not read: no verdict
    assert ("card.over_temperature", "card:0x03") in active(faults)
    record_selftest_faults(faults, report(2, status=(3, 4)))        # read and cool: resolved
    assert ("card.over_temperature", "card:0x03") not in active(faults)
    cleared = faults.list(state="cleared")
    assert [(f.code, f.cleared_by) for f in cleared] == [("card.over_temperature", "self-test 2")]


def test_a_detection_is_no_verdict_on_the_pixel_fault_flag(faults):
    record_selftest_faults(faults, report(1, FLAGGED, leds=False))
    assert ("card.pixel_faults", "card:0x03") in active(faults)
    record_selftest_faults(faults, report(2, leds=True))            # quarterly: detects instead
    assert ("card.pixel_faults", "card:0x03") in active(faults)
    record_selftest_faults(faults, report(3, leds=False))           # quick: the flag is clear
    assert ("card.pixel_faults", "card:0x03") not in active(faults)


def test_old_codes_in_an_existing_log_stay_readable_and_are_closed_by_the_next_run(faults):
    old = faults.record("selftest.env.hot", "error", "card:0x03",
                        {"text": "hot", "check": "cards.environment", "run": 7})
    record_selftest_faults(faults, report(8, HOT))
    assert active(faults) == {("card.over_temperature", "card:0x03"): 1}
    assert faults.get(old.id).code == "selftest.env.hot"
    assert faults.get(old.id).state == "cleared" and faults.get(old.id).cleared_by == "self-test 8"


def test_a_logged_watchdog_reset_is_one_fault_and_stays_until_cleared(faults):
    """The watch reads it from the card's event log, ``cards.events`` counts it: one
    condition, filed as ``card.watchdog_reset``, which no later run resolves."""
    reset = {"outcome": "fail", "key": "events.watchdog", "subject": "card:0x04", "text": "reset"}
    faults.record("card.watchdog_reset", "error", "card:0x04", {"event_index": 3})
    record_selftest_faults(faults, {"id": 1, "cabinets": [{"address": 4, "status": {}}],
                                    "checks": [{"id": "cards.events", "findings": [reset]}]})
    record_selftest_faults(faults, {"id": 2, "cabinets": [{"address": 4, "status": {}}],
                                    "checks": [{"id": "cards.events", "findings": []}]})
    assert active(faults) == {("card.watchdog_reset", "card:0x04"): 2}


def test_selftest_codes_still_resolve_when_their_check_runs_again(faults):
    record_selftest_faults(faults, report(1, WARM))
    assert ("selftest.env.warm", "card:0x04") in active(faults)
    record_selftest_faults(faults, report(2))
    assert active(faults) == {}
