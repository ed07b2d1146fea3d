"""Commissioning a screen: from a bus of cards and a screen file to a signed-off acceptance report.

The steps, each recorded in the report:

1. **discover** every address and compare with the screen file — missing,
   unexpected, duplicated (garbled) and wrong-model cards, said in words an
   installer acts on;
2. **configure** each card (module geometry, scan, chain, rotation, refresh)
   and its brightness, reading every value back;
3. **patterns** red, green, blue, white, grid, module numbers, each confirmed
   by the installer looking at the wall (or ``--yes`` for unattended runs);
4. **detect** dead LEDs on every card and place them on the screen;
5. **status** of every card (temperature, supply, fan, flags);
6. the **report**: JSON and one HTML page with a picture of the wall.

Card-level settings that the spec leaves to the project live in the screen
file's optional ``[cards]`` table (``model``, ``refresh_hz``,
``brightness``, ``firmware``); see :class:`CardSettings`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from controller.config import Cabinet, Layout
from controller.errors import BusTimeout, ConfigError, LedwardenError
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.service.busowner import BusOwner
from controller.service.jobs import Job, utc_now

PATTERNS = ("red", "green", "blue", "white", "grid", "module_numbers")
HOT_C = 85.0
DISCOVERY_BATCH = 16


@dataclass(frozen=True)
class CardSettings:
    """The screen file's ``[cards]`` table: what every card on this screen should be."""

    model: int | None = None          # expected hw_model; None accepts any
    firmware: str | None = None       # expected card firmware version; None accepts any
    refresh_hz: int = 3840
    brightness: float = 1.0           # 0 … 1

    @classmethod
    def from_screen_file(cls, data: dict) -> CardSettings:
        table = data.get("cards", {})
        if not isinstance(table, dict):
            raise ConfigError("[cards] must be a table")
        unknown = set(table) - {"model", "firmware", "refresh_hz", "brightness"}
        if unknown:
            raise ConfigError(f"[cards]: unknown keys {sorted(unknown)}; known: model, firmware, "
                              f"refresh_hz, brightness")
        settings = cls(**table)
        if not 0.0 <= float(settings.brightness) <= 1.0:
            raise ConfigError(f"[cards] brightness = {settings.brightness} must be between 0 and 1")
        if not 30 <= settings.refresh_hz <= 7680:
            raise ConfigError(f"[cards] refresh_hz = {settings.refresh_hz} must be 30 … 7680")
        return settings

    @property
    def level(self) -> int:
        return round(float(self.brightness) * 0xFFFF)


def card_config(cab: Cabinet, settings: CardSettings) -> c.CardConfig:
    """The config block a cabinet's card must hold."""
    return c.CardConfig(cab.module.width, cab.module.height, cab.module.scan, cab.modules_x,
                        cab.modules_y, chain=0 if cab.chain == "rows" else 1,
                        rotation=0 if cab.rotation == 0 else 2, refresh_hz=settings.refresh_hz)


def grid_position(layout: Layout, cab: Cabinet) -> tuple[int, int]:
    """1-based (row, column) of a cabinet, counting distinct cabinet tops and lefts."""
    rows = sorted({k.y for k in layout.cabinets})
    cols = sorted({k.x for k in layout.cabinets})
    return rows.index(cab.y) + 1, cols.index(cab.x) + 1


def card_summary(info: ops.CardInfo) -> dict:
    """How a found card is shown in reports and the API: serial and model in hex."""
    return {"serial": f"{info.serial:016X}", "model": f"0x{info.hw_model:04X}",
            "firmware": info.version, "bank": info.bank}


def cabinet_entry(cab: Cabinet) -> dict:
    """A cabinet as the reports hold it (acceptance and inspection alike, so ``wall_svg`` draws
    both), before anything is known of its card."""
    return {"address": cab.address, "x": cab.x, "y": cab.y, "width": cab.width,
            "height": cab.height,
            "module": {"name": cab.module.name, "width": cab.module.width,
                       "height": cab.module.height, "scan": cab.module.scan},
            "modules_x": cab.modules_x, "modules_y": cab.modules_y, "chain": cab.chain,
            "rotation": cab.rotation, "found": False, "serial": None, "model": None,
            "firmware": None, "bank": None, "config_ok": False, "brightness": None,
            "status": None, "dead_leds": [], "problems": []}


def describe(layout: Layout, cab: Cabinet) -> str:
    index = layout.cabinets.index(cab) + 1
    row, col = grid_position(layout, cab)
    return f"cabinet {index} (address 0x{cab.address:02X}, row {row} column {col})"


def led_on_screen(cab: Cabinet, led: ops.DeadLed) -> tuple[int, int]:
    """Screen pixel of a module-local LED: undo the module order and the rotation."""
    row, col = divmod(led.module, cab.modules_x)
    if cab.chain == "serpentine" and row % 2:
        col = cab.modules_x - 1 - col
    cx, cy = col * cab.module.width + led.x, row * cab.module.height + led.y
    if cab.rotation == 180:
        cx, cy = cab.width - 1 - cx, cab.height - 1 - cy
    return cab.x + cx, cab.y + cy


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

    def __init__(self, job: Job, owner: BusOwner, layout: Layout, settings: CardSettings, *,
                 unattended: bool, screen_file: str, controller_info: dict) -> None:
        self.job, self.owner, self.layout, self.settings = job, owner, layout, settings
        self.unattended = unattended
        self.steps: list[dict] = []
        self.cabinets = {cab.address: cabinet_entry(cab) for cab in layout.cabinets}
        self.unexpected: list[dict] = []
        self.patterns: list[dict] = []
        self.report: dict[str, Any] = {
            "kind": "acceptance", "version": 1, "lang": "en",
            "screen": {"name": layout.name, "width": layout.width, "height": layout.height,
                       "file": screen_file},
            "controller": controller_info, "started": utc_now(),
        }

    def _step(self, name: str, ok: bool, detail: str, t0: float) -> None:
        self.steps.append({"name": name, "ok": ok, "detail": f"{detail} ({time.monotonic() - t0:.1f} s)"})
        self.job.note(f"{name}: {detail}")

    def _problem(self, address: int, text: str) -> None:
        self.cabinets[address]["problems"].append(text)
        self.job.note(text)

    # ---------------------------------------------------------------- steps

    async def discover(self) -> list[int]:
        t0 = time.monotonic()
        result = await discover_all(self.owner, self.job)
        found = {k.address: k for k in result.cards}
        garbled = result.garbled
        cab_by_address = {cab.address: cab for cab in self.layout.cabinets}
        for address, info in found.items():
            entry = self.cabinets.get(address)
            if entry is None:
                self.unexpected.append({
                    "address": address, "serial": f"{info.serial:016X}",
                    "model": f"0x{info.hw_model:04X}",
                    "problem": f"a card at 0x{address:02X} (serial {info.serial:016X}) is not in the "
                               f"screen file: add a cabinet for it or give it a free address"})
                continue
            entry.update(found=True, **card_summary(info))
            if self.settings.model is not None and info.hw_model != self.settings.model:
                self._problem(address, f"{describe(self.layout, cab_by_address[address])} has card "
                                       f"model 0x{info.hw_model:04X}, the screen file expects "
                                       f"0x{self.settings.model:04X}: fit the right card")
        for address in garbled:
            if address in self.cabinets:
                self._problem(address, f"{describe(self.layout, cab_by_address[address])}: several "
                                       f"cards answer at address 0x{address:02X}: give each its own "
                                       f"with 'ledwarden bus set-address --serial S --to A'")
            else:
                self.unexpected.append({"address": address, "serial": None, "model": None,
                                        "problem": f"several cards answer at 0x{address:02X}, which "
                                                   f"is not in the screen file"})
        for cab in self.layout.cabinets:
            if cab.address not in found and cab.address not in garbled:
                self._problem(cab.address, f"{describe(self.layout, cab)} does not answer: check "
                                           f"its power and its bus cable")
        present = [cab.address for cab in self.layout.cabinets if cab.address in found]
        ok = len(present) == len(self.layout.cabinets) and not self.unexpected and not garbled
        self._step("discovery", ok, f"{len(present)} of {len(self.layout.cabinets)} cabinets answer, "
                                    f"{len(self.unexpected)} unexpected", t0)
        return present

    async def configure(self, present: list[int]) -> None:
        t0 = time.monotonic()
        failures = 0
        for n, address in enumerate(present, 1):
            self.job.step(f"configuring card 0x{address:02X}", n - 1, len(present))
            cab = self.layout.cabinet(address)
            try:
                await self.owner.run(ops.write_config, address, card_config(cab, self.settings))
                level = await self.owner.run(ops.write_brightness, address, self.settings.level)
                self.cabinets[address].update(config_ok=True, brightness=level)
            except LedwardenError as exc:
                failures += 1
                self._problem(address, f"{describe(self.layout, cab)}: config not stored: {exc}")
        self._step("config", failures == 0,
                   f"{len(present) - failures} of {len(present)} cards configured and read back", t0)

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
                    confirmed, how = True, "--yes (unattended)"
                else:
                    label = name.replace("_", " ")
                    confirmed = await self.job.ask(f"Does every cabinet show the {label} pattern, "
                                                   f"with no dark, wrong-coloured or flickering area?")
                    how = "operator"
                all_ok &= confirmed
                self.patterns.append({"pattern": name, "confirmed": confirmed, "how": how})
        self._step("patterns", all_ok, f"{sum(p['confirmed'] for p in self.patterns)} of "
                                       f"{len(PATTERNS)} patterns confirmed", t0)

    async def detect(self, present: list[int]) -> int:
        t0 = time.monotonic()
        total = 0
        for n, address in enumerate(present, 1):
            self.job.step(f"LED detection on card 0x{address:02X}", n - 1, len(present))
            cab = self.layout.cabinet(address)
            try:
                dead = await self.owner.run(ops.detect, address)
            except LedwardenError as exc:
                self._problem(address, f"{describe(self.layout, cab)}: LED detection failed: {exc}")
                continue
            entries = []
            for led in dead:
                sx, sy = led_on_screen(cab, led)
                entries.append({"module": led.module, "x": led.x, "y": led.y,
                                "channel": led.channel, "screen_x": sx, "screen_y": sy})
            self.cabinets[address]["dead_leds"] = entries
            total += len(entries)
        self._step("detect", True, f"{total} dead LEDs on {len(present)} cards", t0)
        return total

    async def read_status(self, present: list[int]) -> None:
        t0 = time.monotonic()
        for address in present:
            cab = self.layout.cabinet(address)
            try:
                s = await self.owner.call(address, c.Cmd.GET_STATUS)
            except (BusTimeout, LedwardenError) as exc:
                self._problem(address, f"{describe(self.layout, cab)}: status unreadable: {exc}")
                continue
            self.cabinets[address]["status"] = {"temperature_c": s.temperature_c,
                                                "supply_mv": s.supply_mv, "fan_rpm": s.fan_rpm,
                                                "flags": s.flag_names}
            where = describe(self.layout, cab)
            flags = s.status
            if flags & c.StatusFlag.OVER_TEMPERATURE:
                self._problem(address, f"{where} runs hot: {s.temperature_c:.1f} °C (limit "
                                       f"{HOT_C:.0f} °C): check its fan and ventilation")
            if flags & c.StatusFlag.UNDER_VOLTAGE:
                self._problem(address, f"{where} has a low supply: {s.supply_mv} mV (needs "
                                       f"4500 mV): check its power supply and cabling")
            if flags & c.StatusFlag.FAN_FAULT:
                self._problem(address, f"{where}: its fan has stopped ({s.fan_rpm} rpm): replace it")
            if flags & c.StatusFlag.MODULE_LINK_LOST:
                self._problem(address, f"{where}: a module's data link is lost: check the ribbon "
                                       f"cables between its modules")
            if flags & c.StatusFlag.CONFIG_INVALID:
                self._problem(address, f"{where}: its stored config is invalid")
        self._step("status", True, f"status read from {len(present)} cards", t0)

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
        failed = bool(problems or self.unexpected) or not all(s["ok"] for s in self.steps)
        summary = [f"{len(present)} of {len(cabinets)} cabinets answer"]
        summary += [u["problem"] for u in self.unexpected]
        summary += problems
        for cab in cabinets:
            if cab["dead_leds"]:
                summary.append(f"{len(cab['dead_leds'])} dead LED(s) on cabinet "
                               f"{cabinets.index(cab) + 1} (address 0x{cab['address']:02X})")
        if not dead:
            summary.append("no dead LEDs")
        self.report.update(
            finished=utc_now(), duration_s=round(time.monotonic() - t0, 1),
            result="fail" if failed else "pass", summary=summary, cabinets=cabinets,
            unexpected=self.unexpected, patterns=self.patterns, steps=self.steps,
            signatures=["installer", "customer"])
        return self.report
