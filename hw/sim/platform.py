"""The simulated hardware under one card's firmware: clock, sensors, LEDs, display.

The firmware in ``hw/firmware`` talks to its board only through a platform
object (``millis``, ``sensors``, ``module_link_ok``, ``detect_leds``,
``show``, ``output``, ``flash_ready``, ``flash_started``, ``booted``).  On a real card
those are drivers; here they read the simulator's clock and the fault plan,
so an injected fault looks to the firmware exactly as the real failure
would, and the flash chip takes its datasheet time (:mod:`hw.sim.nor`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from hw.sim import nor
from hw.sim.faults import CardFaults
from hw.sim.video import CardVideo, LedModel, pattern_sums
from hw.sim.videoproc import SharedCardVideo

#: Healthy readings; each card drifts a little around them so a wall looks alive.
NOMINAL_TEMP_C = 38.0
NOMINAL_SUPPLY_MV = 5050
NOMINAL_FAN_RPM = 2400


class SimPlatform:
    """Platform of one simulated card; ``faults`` is re-read on every call."""

    def __init__(self, index: int, faults: Callable[[], CardFaults],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.index = index
        self._faults = faults
        self._clock = clock
        self._epoch = clock()
        self.pending_work_ms = 0.0
        #: When the flash chip finishes the erase it is working on (ms on ``millis``' scale).
        self.flash_free_ms = 0.0
        self.pattern = 0
        self.level = 0xFFFF
        self.brightness = 0xFFFF
        self.bank = 0
        self.version = (0, 0, 0)
        self.boots = 0
        #: Set by the simulator while the card runs an image marked "unhealthy" (hw.sim.images).
        self.links_down = False
        #: The card's video receiver and its own LED model (hw.sim.video), for GET_OUTPUT.
        self.video: CardVideo | SharedCardVideo = CardVideo()   # shared: sim --video
        self.leds = LedModel()
        #: The card's config block, read when the current is computed (set by the SimCard).
        self.config: Callable[[], tuple] = lambda: (64, 32, 16, 4, 4, 0, 0, 3840)

    # -------- the firmware's platform interface

    def millis(self) -> int:
        return int(self._now_ms())

    def _now_ms(self) -> float:
        return (self._clock() - self._epoch) * 1000

    def flash_free_at(self) -> float:
        """The simulator clock's time at which the chip's current erase ends."""
        return self._epoch + self.flash_free_ms / 1000

    def sensors(self) -> tuple[int, int, int, bool]:
        f = self._faults()
        t = self._clock()
        # A slow, card-specific wander, so readings differ between cards and over time.
        wobble = math.sin(t / 37.0 + self.index)
        temp = f.temp_c if f.temp_c is not None else NOMINAL_TEMP_C + (1.5 * self.index) % 4 + wobble
        supply = f.supply_mv if f.supply_mv is not None else NOMINAL_SUPPLY_MV + int(20 * wobble)
        fan = f.fan_rpm if f.fan_rpm is not None else NOMINAL_FAN_RPM + int(50 * wobble)
        return round(temp * 10), supply, fan, True

    def module_link_ok(self, module_index: int) -> bool:
        return not self.links_down and module_index not in self._faults().link_lost

    def detect_leds(self, module_index: int, width: int, height: int) -> list[tuple[int, int, int]]:
        return sorted((x, y, ch) for m, x, y, ch in self._faults().dead_leds
                      if m == module_index and x < width and y < height)

    def show(self, pattern: int, level: int, brightness: int) -> None:
        self.pattern, self.level, self.brightness = pattern, level, brightness

    def output(self) -> tuple[int | None, int, int] | None:
        """``GET_OUTPUT``'s readings: the LED current by the card's own model of the picture on
        show (a test pattern, or the last whole video frame), frames shown and dropped."""
        f = self._faults()
        if f.no_get_output:
            return None
        shown, dropped = self.video.shown, self.video.dropped
        if f.no_sensor:
            return None, shown, dropped
        w, h, scan, mx, my = self.config()[:5]
        modules = mx * my
        sums = (pattern_sums(self.pattern, self.level, w * h * modules) if self.pattern
                else self.video.sums())
        return round(self.leds.current_ma(sums, scan, modules, self.brightness)), shown, dropped

    def flash_ready(self) -> bool:
        return self._now_ms() >= self.flash_free_ms

    def flash_started(self, op: str, nbytes: int) -> None:
        """An erase runs in the chip while the card goes on (it asks ``flash_ready``); a
        program or a read-and-hash is waited for before the card answers."""
        ms = nor.busy_ms(op, nbytes)
        if op == "erase":
            self.flash_free_ms = self._now_ms() + ms
        else:
            self.pending_work_ms += ms

    def booted(self, bank: int, version: tuple[int, int, int]) -> None:
        major, minor, patch = version
        self.bank, self.version = bank, (major, minor, patch)
        self.boots += 1

    # -------- for the simulator

    def take_work_s(self) -> float:
        """Seconds of simulated work since the last call (and reset)."""
        ms, self.pending_work_ms = self.pending_work_ms, 0.0
        return ms / 1000.0
