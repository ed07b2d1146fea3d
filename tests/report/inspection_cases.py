"""Inspection reports shaped like the self-test runner's, and the message keys its spec defines.

``SPEC_CHECKS`` and ``SPEC_FINDINGS`` are written from the runner's spec
(the handoff of issue 5), not read from the string tables, so a key the
tables lack or misspell fails the tests instead of passing unnoticed.
"""

from __future__ import annotations

from report_cases import cabinet

SPEC_CHECKS = ("bus.link", "cards.present", "cards.config", "cards.environment", "cards.leds",
               "cards.events", "cards.firmware", "fastpath.golden", "frameloop.budget", "storage", "clock")

_CARD = {"cabinet": 3, "address": "0x03"}

#: Every finding key of the spec with sample fields (card findings carry cabinet and address).
SPEC_FINDINGS: dict[str, dict] = {
    "link.failed": {**_CARD, "failed": 3, "count": 20},
    "link.retries": {**_CARD, "retries": 4, "bad_frames": 2, "count": 20},
    "link.slow": {**_CARD, "rtt_ms": 23.4, "limit_ms": 20},
    "link.ok": {"cards": 15, "count": 20, "rtt_ms": 4.25},
    "cards.missing": {**_CARD},
    "cards.model": {**_CARD, "model": "0x0B02", "expected": "0x0A01"},
    "cards.firmware": {**_CARD, "version": "1.0.1", "expected": "1.0.0"},
    "cards.trial": {**_CARD, "version": "1.1.0"},
    "cards.unexpected": {"address": "0x11", "serial": "4C57202600000011"},
    "cards.ok": {"cards": 16},
    "config.differs": {**_CARD, "fields": ["gamma", "scan"]},
    "config.brightness": {**_CARD, "percent": "61", "expected": "100"},
    # the bus error's own words stay in the JSON ("error"); the page words its reason
    "config.unreadable": {**_CARD, "reason": "no_answer"},
    "config.ok": {"cards": 16},
    "env.hot": {**_CARD, "temp_c": 91.5, "limit_c": 85},
    "env.warm": {**_CARD, "temp_c": 74.0, "limit_c": 70},
    "env.supply": {**_CARD, "supply_mv": 4380, "limit_mv": 4500},
    "env.fan": {**_CARD, "fan_rpm": 0},
    "env.module_link": {**_CARD},
    "env.ok": {"cards": 16, "max_temp_c": 48.5},
    "leds.dead": {**_CARD, "module": 9, "count": 3},
    "leds.new": {**_CARD, "count": 2},
    "leds.dead_new": {**_CARD, "module": 4, "count": 3, "new": 2},
    "leds.flagged": {**_CARD},
    "leds.ok": {},
    "events.watchdog": {**_CARD, "count": 2},
    "events.rollback": {**_CARD, "count": 2},
    "events.over_temperature": {**_CARD, "count": 5},
    "events.under_voltage": {**_CARD, "count": 6},
    "events.fan_fault": {**_CARD, "count": 7},
    "events.module_link_lost": {**_CARD, "count": 8},
    "events.boot": {**_CARD, "count": 9},
    "events.ok": {},
    "firmware.mixed": {"n": 2, "versions": ["1.0.0", "1.0.1"]},
    "firmware.ok": {"version": "1.0.0"},
    "fastpath.mismatch": {"backend": "c-avx2", "count": 17},
    "fastpath.ok": {"backend": "c-avx2"},
    "frameloop.overruns": {"overruns": 12, "frames": 3600, "budget_ms": 16.7, "p99_ms": 18.2},
    "frameloop.ok": {"frames": 3600, "fps": 60, "budget_ms": 16.7, "p99_ms": 9.75},
    "frameloop.off": {},
    "storage.low": {"free_mb": 420, "path": "/var/lib/ledwarden", "limit_mb": 500},
    "storage.readonly": {"path": "/var/lib/ledwarden"},
    "storage.faultlog": {},
    "storage.ok": {"free_mb": 12000},
    "clock.before_build": {"now": "2020-01-01T00:00:05Z", "built": "2026-10-01T12:00:00Z"},
    "clock.backwards": {"now": "2026-11-20T09:00:00Z", "last": "2026-11-21T10:00:00Z"},
    "clock.ok": {"now": "2026-11-22T10:00:31Z"},
    "check.error": {"reason": "bus_error"},
    # the acceptance report's sentences (commissioning), same mechanism
    "commission.answering": {"present": 7, "total": 8},
    "commission.dead_leds": {**_CARD, "count": 4},
    "commission.no_dead_leds": {},
    "commission.not_watched": {"patterns": ["red", "module_numbers"]},
    "commission.not_confirmed": {"patterns": ["grid"]},
    "commission.garbled": {**_CARD},
    "commission.unexpected_garbled": {"address": "0x11"},
    "commission.config_failed": {**_CARD, "reason": "no_answer"},
    "commission.detect_failed": {**_CARD, "reason": "refused"},
    "commission.status_failed": {**_CARD, "reason": "garbled"},
    "commission.config_invalid": {**_CARD},
    "step.discovery": {"present": 7, "total": 8, "unexpected": 1},
    "step.config": {"ok": 6, "total": 7},
    "step.patterns": {"confirmed": 5, "total": 6},
    "step.patterns_unwatched": {"total": 6},
    "step.detect": {"count": 4, "cards": 8},
    "step.status": {"cards": 8},
    "step.selftest": {"id": 2, "result": "warn", "pass": 8, "warn": 1, "fail": 0, "error": 0},
}


def finding(outcome: str, key: str, subject: str = "controller", **fields) -> dict:
    return {"outcome": outcome, "subject": subject, "key": key, "fields": fields}


def card(address: int) -> dict:
    """Fields every card finding carries; the sample's cabinet n has address n."""
    return {"cabinet": address, "address": f"0x{address:02X}"}


def sample_inspection() -> dict:
    """A failed quarterly inspection of the 4 × 4 sample wall, compared with the one before.

    Cabinet 3 runs hot (new since last time), 7 warm, 6 does not answer;
    four dead LEDs of which two are new (cabinet 5 module 9, cabinet 12),
    one fixed since (cabinet 10); the frame loop check could not run.
    """
    cabinets = []
    for i in range(16):
        address = i + 1
        row, col = divmod(i, 4)
        kwargs: dict = {"temp": 38.5 + (i % 5) * 1.3}
        if address == 3:
            kwargs = {"temp": 91.5, "flags": ["over_temperature"]}
        elif address == 7:
            kwargs = {"temp": 74.0}
        elif address == 6:
            kwargs = {"found": False}
        elif address == 5:
            kwargs = {"dead": [(2, 33, 17, "g"), (9, 5, 30, "r"), (15, 60, 2, "b")]}
        elif address == 12:
            kwargs = {"dead": [(0, 0, 0, "r")]}
        elif address == 14:
            kwargs = {"rotation": 180}
        cabinets.append(cabinet(address, col * 256, row * 128, **kwargs))
    cabinets[4]["dead_leds"][1]["new"] = True
    cabinets[11]["dead_leds"][0]["new"] = True
    new_leds = [{"address": 5, **cabinets[4]["dead_leds"][1]},
                {"address": 12, **cabinets[11]["dead_leds"][0]}]
    for led in new_leds:
        del led["new"]
    hot = finding("fail", "env.hot", "card:0x03", **card(3), temp_c=91.5, limit_c=85)
    checks = [
        {"id": "bus.link", "outcome": "warn", "duration_s": 2.4, "values": {"max_rtt_ms": 6.5},
         "findings": [finding("warn", "link.retries", "card:0x09", **card(9), retries=1, bad_frames=1,
                              count=20)]},
        {"id": "cards.present", "outcome": "fail", "duration_s": 0.8, "values": {},
         "findings": [finding("fail", "cards.missing", "card:0x06", **card(6))]},
        {"id": "cards.config", "outcome": "pass", "duration_s": 1.1, "values": {},
         "findings": [finding("pass", "config.ok", cards=15)]},
        {"id": "cards.environment", "outcome": "fail", "duration_s": 0.1,
         "values": {"max_temperature_c": 91.5},
         "findings": [hot, finding("warn", "env.warm", "card:0x07", **card(7), temp_c=74.0, limit_c=70)]},
        {"id": "cards.leds", "outcome": "fail", "duration_s": 18.6, "values": {"dead_leds": 4},
         "findings": [finding("warn", "leds.dead", "card:0x05/module:2", **card(5), module=2, count=1),
                      finding("warn", "leds.dead", "card:0x05/module:9", **card(5), module=9, count=1),
                      finding("warn", "leds.dead", "card:0x05/module:15", **card(5), module=15, count=1),
                      finding("warn", "leds.dead", "card:0x0C/module:0", **card(12), module=0, count=1),
                      finding("fail", "leds.new", "card:0x05", **card(5), count=1),
                      finding("fail", "leds.new", "card:0x0C", **card(12), count=1)]},
        {"id": "cards.events", "outcome": "warn", "duration_s": 0.6, "values": {},
         "findings": [finding("warn", "events.boot", "card:0x03", **card(3), count=2)]},
        {"id": "cards.firmware", "outcome": "pass", "duration_s": 0.0, "values": {"versions": 1},
         "findings": [finding("pass", "firmware.ok", version="1.0.0")]},
        {"id": "fastpath.golden", "outcome": "pass", "duration_s": 0.3, "values": {},
         "findings": [finding("pass", "fastpath.ok", backend="c-avx2")]},
        {"id": "frameloop.budget", "outcome": "error", "duration_s": 0.0, "values": {},
         "findings": [finding("error", "check.error", error="the frame loop did not answer within 2 s")]},
        {"id": "storage", "outcome": "pass", "duration_s": 0.2, "values": {"free_mb": 12000},
         "findings": [finding("pass", "storage.ok", free_mb=12000)]},
        {"id": "clock", "outcome": "pass", "duration_s": 0.0, "values": {},
         "findings": [finding("pass", "clock.ok", now="2026-11-22T10:00:31Z")]},
    ]
    previous_temps = {3: 70.0, 7: 72.5}
    temperature = []
    for cab in cabinets:
        if not cab["found"]:
            continue
        now = cab["status"]["temperature_c"]
        prev = previous_temps.get(cab["address"], now - 1.5)
        temperature.append({"address": cab["address"], "cabinet": cab["address"], "previous_c": prev,
                            "now_c": now, "delta_c": round(now - prev, 1)})
    return {
        "kind": "inspection", "version": 1, "lang": "en",
        "id": 12, "profile": "quarterly", "trigger": "schedule", "started_by": "svc-anna",
        "screen": {"name": "Lobby wall", "width": 1024, "height": 512, "file": "lobby.toml"},
        "controller": {"software": "0.1.0", "host": "ctrl-lobby", "bus": "/dev/ttyAMA0", "baud": 921600,
                       "fingerprint": "SHA256:3q2+7wAAAAC0fhXr9l7bYzv3mQ5xUQk8o1nq0i0N3cE"},
        "started": "2026-11-22T10:00:00Z", "finished": "2026-11-22T10:00:31Z", "duration_s": 31.2,
        "result": "fail",
        "counts": {"pass": 5, "warn": 2, "fail": 3, "error": 1},
        "checks": checks,
        "cabinets": cabinets,
        "comparison": {
            "previous_id": 11, "previous_started": "2026-08-22T10:00:00Z", "previous_result": "warn",
            "new_findings": [{**hot, "check": "cards.environment"},
                             {**checks[4]["findings"][4], "check": "cards.leds"}],
            "fixed_findings": [{**finding("fail", "env.fan", "card:0x0A", **card(10), fan_rpm=0),
                                "check": "cards.environment"}],
            "dead_leds": {"previous": 3, "now": 4, "new": new_leds,
                          "fixed": [{"address": 10, "module": 4, "x": 3, "y": 3, "channel": "g",
                                     "screen_x": 451, "screen_y": 291}]},
            "temperature": temperature,
        },
        "history": [
            {"id": 8, "started": "2026-02-20T09:30:00Z", "result": "pass", "dead_leds": 1,
             "max_temperature_c": 66.0},
            {"id": 9, "started": "2026-05-21T09:30:00Z", "result": "warn", "dead_leds": None,
             "max_temperature_c": 68.2},
            {"id": 11, "started": "2026-08-22T10:00:00Z", "result": "warn", "dead_leds": 3,
             "max_temperature_c": 72.5},
            {"id": 12, "started": "2026-11-22T10:00:00Z", "result": "fail", "dead_leds": 4,
             "max_temperature_c": 91.5},
        ],
    }


def first_inspection() -> dict:
    """The sample as the first inspection on record: no comparison, no new LEDs, a history of one."""
    report = sample_inspection()
    report["comparison"] = None
    report["history"] = report["history"][-1:]
    for cab in report["cabinets"]:
        for led in cab["dead_leds"]:
            led.pop("new", None)
    return report
