"""Commissioning a screen: from a bus of cards and a screen file to a signed-off acceptance report.

The steps, each recorded in the report:

1. **discover** every address and compare with the screen file — missing,
   unexpected, duplicated (garbled) and wrong-model cards, said in words an
   installer acts on;
2. **configure** each card (module geometry, scan, chain, rotation, refresh)
   and its brightness, reading every value back;
3. **patterns** red, green, blue, white, grid, module numbers, each confirmed
   by the installer looking at the wall; with ``--yes`` nobody looks, and the
   report says so (each pattern "not watched", the verdict "PASS · NOT
   WATCHED", a sentence in the summary) rather than claiming a confirmation;
4. **detect** dead LEDs on every card and place them on the screen;
5. **status** of every card (temperature, supply, fan, flags);
6. the **report**: JSON and one HTML page with a picture of the wall.

Every sentence the report holds (summary, problems, step details) is a key
and its fields (:func:`~controller.report.findings.message`), the same keys
as the self-test's findings where the condition is the same, so the page
prints in English or Chinese and one condition found twice is said once.

Card-level settings that the spec leaves to the project live in the screen
file's optional ``[cards]`` table (``model``, ``refresh_hz``, ``firmware``);
see :class:`~controller.screenmap.CardSettings`.  The brightness written is
the wall's current one (``service.brightness``: by hand, scheduled, or the
screen file's ``[correction] brightness``), the level the self-test then
expects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from controller.cardaddress import hex_address
from controller.config import Layout
from controller.errors import BusTimeout, LedwardenError
from controller.limits import HOT_C, SUPPLY_MIN_MV
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.report.findings import error_fields, message, message_text
from controller.report.i18n import check_lang
from controller.screenmap import (CardSettings, cabinet_entry, card_config, card_summary, card_where,
                                  led_on_screen)
from controller.service.busowner import BusOwner
from controller.service.jobs import Job
from controller.timeutil import utc_now

PATTERNS = ("red", "green", "blue", "white", "grid", "module_numbers")
DISCOVERY_BATCH = 16


async def discover_all(owner: BusOwner, job: Job) -> ops.Discovery:
    """Scan every card address (:class:`~controller.protocol.cards.Scan`), a batch at a time so
    other jobs get the bus in between."""
    addresses = list(ops.ALL_ADDRESSES)
    scan = ops.Scan(owner.bus)
    job.step("discovery", 0, len(addresses))
    for i in range(0, len(addresses), DISCOVERY_BATCH):
        await owner.run(lambda bus, batch=addresses[i:i + DISCOVERY_BATCH]: scan.first_pass(batch))
        job.advance(min(i + DISCOVERY_BATCH, len(addresses)), len(addresses))
    again = await owner.run(lambda bus: scan.to_recheck())
    total = len(addresses) + len(again)
    for i in range(0, len(again), DISCOVERY_BATCH):
        await owner.run(lambda bus, batch=again[i:i + DISCOVERY_BATCH]: scan.recheck(batch))
        job.advance(len(addresses) + min(i + DISCOVERY_BATCH, len(again)), total)
    return scan.result()


class Commissioning:
    """One commissioning run; ``await run()`` returns the acceptance report dict."""

    def __init__(self, job: Job, owner: BusOwner, layout: Layout, settings: CardSettings,
                 brightness: Callable[[int], int], *, unattended: bool, screen_file: str,
                 controller_info: dict, lang: str = "en") -> None:
        self.job, self.owner, self.layout, self.settings = job, owner, layout, settings
        #: The level each card is to hold (address → level): the wall's current brightness.
        self.brightness = brightness
        self.unattended = unattended
        self.lang = check_lang(lang)
        self.steps: list[dict] = []
        self.cabinets = {cab.address: cabinet_entry(cab) for cab in layout.cabinets}
        self.unexpected: list[dict] = []
        self.patterns: list[dict] = []
        self.report: dict[str, Any] = {
            "kind": "acceptance", "version": 1, "lang": self.lang,
            "screen": {"name": layout.name, "width": layout.width, "height": layout.height,
                       "file": screen_file},
            "controller": controller_info, "started": utc_now(),
        }

    def _step(self, name: str, ok: bool | None, detail: dict, t0: float) -> None:
        """Record a step; ``ok`` is None for a step nobody checked (patterns with ``--yes``)."""
        self.steps.append({"name": name, "ok": ok, "detail": detail,
                           "duration_s": round(time.monotonic() - t0, 1)})
        self.job.note(f"{name}: {detail['text']}")

    def _where(self, address: int) -> dict:
        return card_where(self.layout, address)

    def _problem(self, address: int, key: str, **fields) -> None:
        problem = message(key, **self._where(address), **fields)
        self.cabinets[address]["problems"].append(problem)
        self.job.note(problem["text"])

    # ---------------------------------------------------------------- steps

    async def discover(self) -> list[int]:
        t0 = time.monotonic()
        result = await discover_all(self.owner, self.job)
        found = {k.address: k for k in result.cards}
        garbled = result.garbled
        for address, info in found.items():
            entry = self.cabinets.get(address)
            if entry is None:
                self.unexpected.append({
                    "address": address, "serial": f"{info.serial:016X}",
                    "model": f"0x{info.hw_model:04X}",
                    "problem": message("cards.unexpected", f"card:{hex_address(address)}",
                                       address=hex_address(address), serial=f"{info.serial:016X}")})
                continue
            entry.update(found=True, **card_summary(info))
            if self.settings.model is not None and info.hw_model != self.settings.model:
                self._problem(address, "cards.model", model=f"0x{info.hw_model:04X}",
                              expected=f"0x{self.settings.model:04X}")
        for address in garbled:
            if address in self.cabinets:
                self._problem(address, "commission.garbled")
            else:
                self.unexpected.append({"address": address, "serial": None, "model": None,
                                        "problem": message("commission.unexpected_garbled",
                                                           f"card:{hex_address(address)}",
                                                           address=hex_address(address))})
        for cab in self.layout.cabinets:
            if cab.address not in found and cab.address not in garbled:
                self._problem(cab.address, "cards.missing")
        present = [cab.address for cab in self.layout.cabinets if cab.address in found]
        ok = len(present) == len(self.layout.cabinets) and not self.unexpected and not garbled
        self._step("discovery", ok, message("step.discovery", present=len(present),
                                            total=len(self.layout.cabinets),
                                            unexpected=len(self.unexpected)), t0)
        return present

    async def configure(self, present: list[int]) -> None:
        t0 = time.monotonic()
        failures = 0
        for n, address in enumerate(present, 1):
            self.job.step(f"configuring card {hex_address(address)}", n - 1, len(present))
            cab = self.layout.cabinet(address)
            try:
                await self.owner.run(ops.write_config, address, card_config(cab, self.settings))
                level = await self.owner.run(ops.write_brightness, address, self.brightness(address))
                self.cabinets[address].update(config_ok=True, brightness=level)
            except LedwardenError as exc:
                failures += 1
                self._problem(address, "commission.config_failed", **error_fields(exc))
        self._step("config", failures == 0,
                   message("step.config", ok=len(present) - failures, total=len(present)), t0)

    async def show_patterns(self) -> None:
        t0 = time.monotonic()
        all_ok = True
        normal = c.TestPattern(c.Pattern.NORMAL)
        async with self.job.restoring("normal video",
                                      lambda: self.owner.broadcast(c.Cmd.TEST_PATTERN, normal)):
            for n, name in enumerate(PATTERNS):
                self.job.step(f"pattern {name}", n, len(PATTERNS))
                await self.owner.broadcast(c.Cmd.TEST_PATTERN, c.TestPattern(c.Pattern[name.upper()]))
                if self.unattended:
                    # Nobody looked: not a confirmation, and recorded as such (None, not True).
                    confirmed, how = None, "unattended"
                else:
                    label = name.replace("_", " ")
                    confirmed = await self.job.ask(f"Does every cabinet show the {label} pattern, "
                                                   f"with no dark, wrong-coloured or flickering area?")
                    how = "operator"
                all_ok &= confirmed is not False
                self.patterns.append({"pattern": name, "confirmed": confirmed, "how": how})
        if self.unattended:
            self._step("patterns", None, message("step.patterns_unwatched", total=len(PATTERNS)), t0)
        else:
            self._step("patterns", all_ok, message("step.patterns", total=len(PATTERNS),
                                                   confirmed=sum(bool(p["confirmed"]) for p in self.patterns)),
                       t0)

    async def detect(self, present: list[int]) -> int:
        t0 = time.monotonic()
        total = 0
        for n, address in enumerate(present, 1):
            self.job.step(f"LED detection on card {hex_address(address)}", n - 1, len(present))
            cab = self.layout.cabinet(address)
            try:
                dead = await self.owner.run(ops.detect, address)
            except LedwardenError as exc:
                self._problem(address, "commission.detect_failed", **error_fields(exc))
                continue
            entries = []
            for led in dead:
                sx, sy = led_on_screen(cab, led)
                entries.append({"module": led.module, "x": led.x, "y": led.y,
                                "channel": led.channel, "screen_x": sx, "screen_y": sy})
            self.cabinets[address]["dead_leds"] = entries
            total += len(entries)
        self._step("detect", True, message("step.detect", count=total, cards=len(present)), t0)
        return total

    async def read_status(self, present: list[int]) -> None:
        t0 = time.monotonic()
        for address in present:
            try:
                s = await self.owner.call(address, c.Cmd.GET_STATUS)
            except (BusTimeout, LedwardenError) as exc:
                self._problem(address, "commission.status_failed", **error_fields(exc))
                continue
            self.cabinets[address]["status"] = {"temperature_c": s.temperature_c,
                                                "supply_mv": s.supply_mv, "fan_rpm": s.fan_rpm,
                                                "flags": s.flag_names}
            flags = s.status
            # The self-test's keys: the same condition found again by it is then said once.
            if flags & c.StatusFlag.OVER_TEMPERATURE:
                self._problem(address, "env.hot", temp_c=s.temperature_c, limit_c=HOT_C)
            if flags & c.StatusFlag.UNDER_VOLTAGE:
                self._problem(address, "env.supply", supply_mv=s.supply_mv, limit_mv=SUPPLY_MIN_MV)
            if flags & c.StatusFlag.FAN_FAULT:
                self._problem(address, "env.fan", fan_rpm=s.fan_rpm)
            if flags & c.StatusFlag.MODULE_LINK_LOST:
                self._problem(address, "env.module_link")
            if flags & c.StatusFlag.CONFIG_INVALID:
                self._problem(address, "commission.config_invalid")
        self._step("status", True, message("step.status", cards=len(present)), t0)

    # ---------------------------------------------------------------- whole run

    async def run(self) -> dict:
        t0 = time.monotonic()
        present = await self.discover()
        await self.configure(present)
        await self.show_patterns()
        dead = await self.detect(present)
        await self.read_status(present)
        cabinets = [self.cabinets[cab.address] for cab in self.layout.cabinets]
        problems = [p for cab in cabinets for p in cab["problems"]]
        failed = bool(problems or self.unexpected) or any(s["ok"] is False for s in self.steps)
        summary = [message("commission.answering", present=len(present), total=len(cabinets))]
        summary += [u["problem"] for u in self.unexpected]
        summary += problems
        for cab in cabinets:
            if cab["dead_leds"]:
                summary.append(message("commission.dead_leds", **self._where(cab["address"]),
                                       count=len(cab["dead_leds"])))
        if not dead:
            summary.append(message("commission.no_dead_leds"))
        unwatched = [p["pattern"] for p in self.patterns if p["confirmed"] is None]
        if unwatched:
            summary.append(message("commission.not_watched", patterns=unwatched))
        rejected = [p["pattern"] for p in self.patterns if p["confirmed"] is False]
        if rejected:
            summary.append(message("commission.not_confirmed", patterns=rejected))
        self.report.update(
            finished=utc_now(), duration_s=round(time.monotonic() - t0, 1),
            result=verdict(failed, bool(unwatched)), summary=summary, cabinets=cabinets,
            unexpected=self.unexpected, patterns=self.patterns, steps=self.steps,
            signatures=["installer", "customer"])
        return self.report

    def summary_text(self) -> list[str]:
        """The summary in the report's language, for the job's result and the terminal."""
        return [message_text(line, self.lang) for line in self.report.get("summary", [])]


def add_findings(report: dict, findings: list[dict]) -> None:
    """Self-test findings (warnings, failures) into an acceptance report: each into the summary
    and onto its cabinet's problems, unless the same condition (key and subject) is there.

    Commissioning and its closing self-test both see a hot card; the
    customer reads it once, under the one key both use.
    """
    said = {(m.get("key"), m.get("subject")) for m in report["summary"] if isinstance(m, dict)}
    cabinets = {f"card:{hex_address(cab['address'])}": cab for cab in report["cabinets"]}
    for f in findings:
        condition = (f["key"], f.get("subject"))
        if condition in said:
            continue
        said.add(condition)
        line = {"key": f["key"], "fields": f["fields"], "subject": f.get("subject"), "text": f["text"]}
        report["summary"].append(line)
        cab = cabinets.get(str(f.get("subject")).split("/")[0])
        if cab is not None:
            cab["problems"].append(line)


def verdict(failed: bool, unwatched: bool) -> str:
    """``fail``; ``unwatched`` when nothing failed but nobody watched the patterns; else ``pass``.

    An unattended run cannot vouch for what the wall showed, so it never
    earns a plain pass: the badge says the patterns were not watched.
    """
    return "fail" if failed else "unwatched" if unwatched else "pass"
