"""Checks that ask the receiving cards: link, presence, settings, environment, LEDs, events.

Each check is a coroutine over the run's :class:`~controller.selftest.runner.Inspection`
(``ix``), which carries what earlier checks learned: the PING answers of
``cards.present`` are what ``cards.firmware`` compares, and the status that
``cards.environment`` reads is what the report's wall picture is tinted by.
Every bus operation goes through the board's queued bus (``ix.owner``: in
the service, its bus owner), a card at a time, so a status request from the
API still gets its turn during an inspection.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import fields as dc_fields

from controller.brightness import percent_of_level
from controller.cardaddress import hex_address
from controller.errors import LedwardenError
from controller.limits import HOT_C, SUPPLY_MIN_MV, WARM_C
from controller.percentile import percentile
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from controller.report.findings import error_fields
from controller.screenmap import card_config, card_summary, led_on_screen
from controller.selftest.model import CheckResult

RTT_LIMIT_MS = 20.0

#: Card events and how a run that sees them since the last one rates them.
EVENT_OUTCOMES = {
    c.EventCode.WATCHDOG_RESET: ("fail", "events.watchdog"),
    c.EventCode.FIRMWARE_ROLLED_BACK: ("fail", "events.rollback"),
    c.EventCode.OVER_TEMPERATURE: ("warn", "events.over_temperature"),
    c.EventCode.UNDER_VOLTAGE: ("warn", "events.under_voltage"),
    c.EventCode.FAN_FAULT: ("warn", "events.fan_fault"),
    c.EventCode.MODULE_LINK_LOST: ("warn", "events.module_link_lost"),
    c.EventCode.BOOT: ("pass", "events.boot"),
}


def _ping_many(bus: Bus, address: int, count: int) -> dict:
    """``count`` PINGs timed in the bus thread, with what the link cost meanwhile."""
    stats = bus.stats_for(address)
    before = (stats.retries, stats.bad_frames)
    rtts, failed = [], 0
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            bus.call(address, c.Cmd.PING)
            rtts.append((time.perf_counter() - t0) * 1000)
        except LedwardenError:
            failed += 1
    rtts.sort()
    p95 = percentile(rtts, 0.95)
    return {"count": count, "failed": failed, "retries": stats.retries - before[0],
            "bad_frames": stats.bad_frames - before[1],
            "rtt_p95_ms": None if p95 is None else round(p95, 2),
            "rtt_max_ms": round(rtts[-1], 2) if rtts else None}


async def bus_link(ix, result: CheckResult) -> None:
    count = ix.params["pings"]
    worst_rtt = 0.0
    for cab in ix.layout.cabinets:
        m = await ix.owner.run(_ping_many, cab.address, count)
        result.values[hex_address(cab.address)] = m
        where = ix.where(cab.address)
        if m["failed"] == count:
            continue                      # not there at all: cards.present says so
        if m["failed"]:
            result.add("fail", "link.failed", **where, failed=m["failed"], count=count)
        elif m["retries"] or m["bad_frames"]:
            result.add("warn", "link.retries", **where, retries=m["retries"],
                       bad_frames=m["bad_frames"], count=count)
        if m["rtt_p95_ms"] is not None and m["rtt_p95_ms"] > RTT_LIMIT_MS:
            result.add("warn", "link.slow", **where, rtt_ms=m["rtt_p95_ms"], limit_ms=RTT_LIMIT_MS)
        worst_rtt = max(worst_rtt, m["rtt_max_ms"] or 0.0)
    if not result.findings:
        result.add("pass", "link.ok", cards=len(ix.layout.cabinets), count=count,
                   rtt_ms=round(worst_rtt, 1))


async def cards_present(ix, result: CheckResult) -> None:
    expected_model, expected_fw = ix.settings.model, ix.settings.firmware
    for cab in ix.layout.cabinets:
        where = ix.where(cab.address)
        try:
            ping = await ix.owner.call(cab.address, c.Cmd.PING)
        except LedwardenError:
            result.add("fail", "cards.missing", **where)
            continue
        info = ops.CardInfo.from_ping(cab.address, ping)
        ix.cards[cab.address] = info
        ix.cabinet(cab.address).update(found=True, **card_summary(info))
        if expected_model is not None and info.hw_model != expected_model:
            result.add("fail", "cards.model", **where, model=f"0x{info.hw_model:04X}",
                       expected=f"0x{expected_model:04X}")
        if expected_fw is not None and info.version != expected_fw:
            result.add("warn", "cards.firmware", **where, version=info.version, expected=expected_fw)
    if ix.params["discover"]:
        configured = {cab.address for cab in ix.layout.cabinets}
        others = [a for a in ops.ALL_ADDRESSES if a not in configured]
        found = await ix.owner.run(ops.discover, others)
        for info in found.cards:
            result.add("warn", "cards.unexpected", f"card:{hex_address(info.address)}",
                       address=hex_address(info.address), serial=f"{info.serial:016X}")
    result.values["present"] = len(ix.cards)
    result.values["configured"] = len(ix.layout.cabinets)
    if not result.findings:
        result.add("pass", "cards.ok", cards=len(ix.cards))


async def cards_config(ix, result: CheckResult) -> None:
    for address in ix.present():
        cab, where = ix.layout.cabinet(address), ix.where(address)
        try:
            stored = await ix.owner.call(address, c.Cmd.GET_CONFIG)
            level = (await ix.owner.call(address, c.Cmd.GET_BRIGHTNESS)).level
        except LedwardenError as exc:
            result.add("fail", "config.unreadable", **where, **error_fields(exc))
            continue
        want = card_config(cab, ix.settings)
        differ = [f.name for f in dc_fields(want) if getattr(stored, f.name) != getattr(want, f.name)]
        if differ:
            result.add("fail", "config.differs", **where, fields=", ".join(differ))
        if not ix.brightness_ok(address, level):
            # percent as people read it (40, not 40.0), the unit every view of brightness uses
            result.add("fail", "config.brightness", **where, percent=f"{percent_of_level(level):g}",
                       expected=f"{percent_of_level(ix.brightness_wanted(address)):g}")
        ix.cabinet(address)["brightness"] = level
        ix.cabinet(address)["config_ok"] = not differ
    if not result.findings:
        result.add("pass", "config.ok", cards=len(ix.present()))


async def cards_environment(ix, result: CheckResult) -> None:
    hottest = None
    for address in ix.present():
        where = ix.where(address)
        try:
            s = await ix.owner.call(address, c.Cmd.GET_STATUS)
        except LedwardenError as exc:
            result.add("error", "check.error", **where, **error_fields(exc))
            continue
        ix.status[address] = s
        ix.cabinet(address)["status"] = {"temperature_c": s.temperature_c, "supply_mv": s.supply_mv,
                                         "fan_rpm": s.fan_rpm, "flags": s.flag_names}
        hottest = s.temperature_c if hottest is None else max(hottest, s.temperature_c)
        if s.temperature_c >= HOT_C or s.status & c.StatusFlag.OVER_TEMPERATURE:
            result.add("fail", "env.hot", **where, temp_c=s.temperature_c, limit_c=HOT_C)
        elif s.temperature_c >= WARM_C:
            result.add("warn", "env.warm", **where, temp_c=s.temperature_c, limit_c=WARM_C)
        if s.supply_mv < SUPPLY_MIN_MV or s.status & c.StatusFlag.UNDER_VOLTAGE:
            result.add("fail", "env.supply", **where, supply_mv=s.supply_mv, limit_mv=SUPPLY_MIN_MV)
        if s.status & c.StatusFlag.FAN_FAULT:
            result.add("fail", "env.fan", **where, fan_rpm=s.fan_rpm)
        if s.status & c.StatusFlag.MODULE_LINK_LOST:
            result.add("fail", "env.module_link", **where)
    result.values["max_temperature_c"] = hottest
    if not result.findings:
        result.add("pass", "env.ok", cards=len(ix.present()), max_temp_c=hottest)


async def cards_leds(ix, result: CheckResult) -> None:
    baseline = ix.dead_led_baseline()        # {(address, module, x, y, channel)} or None
    total = 0
    for address in ix.present():
        cab, where = ix.layout.cabinet(address), ix.where(address)
        if not ix.params["detect"]:
            status = ix.status.get(address) or await ix.owner.call(address, c.Cmd.GET_STATUS)
            if status.status & c.StatusFlag.PIXEL_FAULTS:
                result.add("warn", "leds.flagged", **where)
            continue
        try:
            dead = await ix.owner.run(ops.detect, address)
        except LedwardenError as exc:
            result.add("error", "check.error", **where, **error_fields(exc))
            continue
        entries = []
        for led in dead:
            sx, sy = led_on_screen(cab, led)
            is_new = baseline is not None and (address, led.module, led.x, led.y, led.channel) not in baseline
            entries.append({"module": led.module, "x": led.x, "y": led.y, "channel": led.channel,
                            "screen_x": sx, "screen_y": sy, "new": is_new})
        ix.cabinet(address)["dead_leds"] = entries
        total += len(entries)
        # One finding per module, at its worst: a module with new dead LEDs fails (and says how
        # many are new), one with only known ones warns; never both for the same LEDs.
        for module in sorted({e["module"] for e in entries}):
            here = [e for e in entries if e["module"] == module]
            new = sum(e["new"] for e in here)
            subject = {**where, "subject": f"{where['subject']}/module:{module}"}
            if new:
                result.add("fail", "leds.dead_new", **subject, module=module, count=len(here), new=new)
            else:
                result.add("warn", "leds.dead", **subject, module=module, count=len(here))
    result.values["dead_leds"] = total if ix.params["detect"] else None
    result.values["baseline"] = ix.baseline_source
    if not result.findings:
        result.add("pass", "leds.ok")


async def cards_events(ix, result: CheckResult) -> None:
    for address in ix.present():
        where, serial = ix.where(address), f"{ix.cards[address].serial:016X}"
        first = ix.history.event_cursor(serial)
        try:
            events = await ix.owner.run(ops.read_events, address, first)
        except LedwardenError as exc:
            result.add("error", "check.error", **where, **error_fields(exc))
            continue
        if first and not events:
            # A card whose log restarted (replaced, or its flash cleared) has nothing at our
            # cursor any more: read it from the start next time rather than never again.
            held = await ix.owner.run(ops.read_events, address, 0)
            if held and held[-1].index < first - 1:
                ix.next_cursors[serial] = 0
                continue
        counts = Counter(e.code for e in events)
        for code, (outcome, key) in EVENT_OUTCOMES.items():
            if counts.get(code):
                result.add(outcome, key, **where, count=counts[code])
        if events:
            ix.next_cursors[serial] = events[-1].index + 1
        result.values[hex_address(address)] = {c.Event(0, 0, code, 0).name: n
                                               for code, n in counts.items()}
    if not any(f.outcome != "pass" for f in result.findings):
        result.add("pass", "events.ok")


async def cards_firmware(ix, result: CheckResult) -> None:
    versions = Counter(info.version for info in ix.cards.values())
    for address, info in ix.cards.items():
        if info.bank and ix.status.get(address) and ix.status[address].status & c.StatusFlag.TRIAL_FIRMWARE:
            result.add("warn", "cards.trial", **ix.where(address), version=info.version)
    if len(versions) > 1:
        listed = ", ".join(f"{v} ({n})" for v, n in versions.most_common())
        result.add("warn", "firmware.mixed", n=len(versions), versions=listed)
    elif versions:
        result.add("pass", "firmware.ok", version=next(iter(versions)))
    result.values["versions"] = dict(versions)
