"""Power estimation and current limiting from frame content (issue 14, ``docs/power.md``).

An LED cabinet draws a quiescent current (drivers, receiving card) plus, per
channel, a current proportional to the light it shows; the fast path already
sums every module's drive values per channel (``ScanResult.sums``), so the
current each cabinet draws for a frame is a weighted sum of numbers the
kernel computed anyway.  The screen file's ``[power]`` table gives the
weights (:class:`ModulePower`) and the budgets: one per cabinet (its supply,
DC amps) and one for the wall (the building's circuit, AC amps at the mains
voltage through the supplies' efficiency).

:class:`PowerLimiter` turns the estimate into a per-cabinet gain scale that
the next frame is corrected with (``Pipeline.process(frame, scale)``):

- **attack, at once** — a frame whose estimate is over budget makes the
  very next frame's scale low enough for it; and a frame that, corrected
  with the scale it was given, would still draw more than a budget allows
  by over ``SECOND_LOOK_MARGIN`` (a cut to a brighter picture) is corrected
  again with a scale that fits before it is sent
  (:meth:`PowerLimiter.second_look`), so no such frame reaches the cards;
  the second pass costs one correction at each cut;
- **hold, 0.5 s** — after the last time the scale had to drop it stays put,
  so content that flickers around the budget does not flicker the picture;
- **release, 2 s** — then it rises linearly, full range in 2 s, never above
  what the current content allows: slow enough not to be seen as pumping,
  fast enough that a bright scene after a dark one recovers within seconds.

Cabinet budgets are applied first, then the wall's by one common factor over
what the cabinets may draw: the brightest picture that keeps both, dimmed
evenly so the wall does not show a patchwork.  Limiting that lasts more than
10 s files ``power.limiting`` for the cabinet (``card:0xNN``) or the wall
(``controller``), cleared when it stops.

Cards that report their LEDs' current (``GET_OUTPUT``) correct the estimate
through :meth:`PowerLimiter.measured`: the ratio of the card's reading to the
estimate at the time, bounded to 0.5 … 2, scales that cabinet's LED current
from then on.  A card that cannot report (``None``) leaves the limiter on its
estimate alone, which ``status`` says.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

import numpy as np

from controller.config import Layout
from controller.errors import ConfigError
from controller.faultlog.model import card_source
from controller.jsonin import JsonObject

#: Envelope of the limiter, seconds (attack is one frame: the next one).
HOLD_S = 0.5
#: A frame over budget by more than this share, at the scale it was given, is corrected again
#: (``second_look``); below it the next frame's scale is soon enough and no pass is spent.
SECOND_LOOK_MARGIN = 0.01
RELEASE_S = 2.0
#: Limiting longer than this files ``power.limiting``.
FAULT_AFTER_S = 10.0
#: A card's reading may move the estimate by at most this factor either way.
CORRECTION_BOUNDS = (0.5, 2.0)
#: Time constant of the estimate a card's reading is compared with (its sensor averages too).
READING_AVERAGE_S = 0.5
#: A reading corrects the estimate only if the estimate varied less than this share across that
#: window: right after a cut the card may still show the frame before (or its sensor average
#: it), and a reading compared with the wrong picture would mis-scale the cabinet by up to the
#: bounds (measured with benchmarks/power_accuracy.py, docs/power.md).
READING_STEADY = 0.05
FULL_DRIVE = 65535
Q16 = 65536


@dataclass(frozen=True)
class ModulePower:
    """One module type's electrical model: ``current_ma[c]`` is what the whole module draws on
    channel c with every pixel at full drive (65535), on top of ``quiescent_ma``, from a
    ``supply_v`` supply."""

    name: str
    current_ma: tuple[float, float, float]
    quiescent_ma: float
    supply_v: float


@dataclass(frozen=True)
class CabinetPower:
    address: int
    module: ModulePower
    modules: int
    budget_a: float | None      # DC amps at the module supply; None: only the wall limits it

    @property
    def quiescent_a(self) -> float:
        return self.modules * self.module.quiescent_ma / 1000


@dataclass(frozen=True)
class PowerModel:
    """The validated ``[power]`` table, cabinets in the layout's order."""

    cabinets: tuple[CabinetPower, ...]
    wall_budget_a: float | None     # AC amps at mains_v
    mains_v: float | None
    psu_efficiency: float | None
    #: How far a cabinet may draw above the model (LED bins, sense resistors), as a fraction:
    #: the limiter keeps that much headroom until a card's reading corrects the estimate.
    model_tolerance: float = 0.0

    def ac_per_dc_amp(self, cab: CabinetPower) -> float:
        """Mains amps per amp the cabinet draws at its supply voltage."""
        assert self.mains_v and self.psu_efficiency
        return cab.module.supply_v / (self.psu_efficiency * self.mains_v)


# ------------------------------------------------------------------ the screen file

class _Reader:
    """Number reads from one table with every problem collected, as ``config.py`` does."""

    def __init__(self, raw: Any, where: str, problems: list[str]) -> None:
        self.where, self.problems = where, problems
        self.raw: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        self.seen: set[str] = set()
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be a table, not {type(raw).__name__}")

    def number(self, key: str, *, required: bool = True, positive: bool = False,
               at_most: float | None = None) -> float | None:
        self.seen.add(key)
        if key not in self.raw:
            if required:
                self.problems.append(f"{self.where}: {key} is missing")
            return None
        value = self.raw[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.problems.append(f"{self.where}: {key} must be a number, not {value!r}")
            return None
        if value < 0 or (positive and value == 0) or (at_most is not None and value > at_most):
            rule = "above 0" if positive else "at least 0"
            if at_most is not None:
                rule += f" and at most {at_most:g}"
            self.problems.append(f"{self.where}: {key} = {value:g} is out of range ({rule})")
            return None
        return float(value)

    def currents(self, key: str) -> tuple[float, float, float] | None:
        self.seen.add(key)
        value = self.raw.get(key)
        ok = (isinstance(value, list) and len(value) == 3
              and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                      and math.isfinite(v) and v >= 0 for v in value))
        if not ok or not isinstance(value, list):
            self.problems.append(f"{self.where}: {key} must be three currents in mA, [r, g, b], "
                                 f"each at least 0, not {value!r}")
            return None
        return float(value[0]), float(value[1]), float(value[2])

    def no_other_keys(self, *tables: str) -> None:
        for key in self.raw:
            if key not in self.seen and key not in tables:
                self.problems.append(f"{self.where}: unknown key {key!r}")


def parse_power(data: Mapping[str, Any], layout: Layout, source: str = "<screen>") -> PowerModel | None:
    """The screen file's ``[power]`` table for ``layout``, or None when it has none.

    Every problem is named at once (table, cabinet, rule) in one
    :class:`ConfigError`, as the rest of the screen file is.
    """
    raw = data.get("power")
    if raw is None:
        return None
    problems: list[str] = []
    top = _Reader(raw, "[power]", problems)
    cabinet_budget = top.number("cabinet_budget_a", required=False, positive=True)
    wall_budget = top.number("wall_budget_a", required=False, positive=True)
    with_wall = wall_budget is not None
    mains_v = top.number("mains_v", required=with_wall, positive=True)
    efficiency = top.number("psu_efficiency", required=with_wall, positive=True, at_most=1.0)
    tolerance_pct = top.number("model_tolerance_pct", required=False, at_most=20.0) or 0.0
    top.no_other_keys("modules", "cabinets")

    modules: dict[str, ModulePower] = {}
    raw_modules = top.raw.get("modules", {})
    if not isinstance(raw_modules, Mapping):
        problems.append("[power.modules]: must be a table of module types ([power.modules.NAME])")
        raw_modules = {}
    known = {m.name for m in layout.modules}
    for name, body in raw_modules.items():
        where = f"[power.modules.{name}]"
        if name not in known:
            problems.append(f"{where}: no module type {name!r} in [modules] "
                            f"(known: {', '.join(sorted(known))})")
            continue
        t = _Reader(body, where, problems)
        current, quiescent = t.currents("current_ma"), t.number("quiescent_ma")
        supply = t.number("supply_v", positive=True)
        t.no_other_keys()
        if current is not None and quiescent is not None and supply is not None:
            modules[name] = ModulePower(name, current, quiescent, supply)

    overrides = _overrides(top.raw.get("cabinets", []), layout, problems)
    cabinets = []
    for index, cab in enumerate(layout.cabinets, start=1):
        label = f"cabinet {index} (address {cab.address})"
        model = modules.get(cab.module.name)
        if model is None:
            if cab.module.name not in raw_modules:
                problems.append(f"{label}: module type {cab.module.name!r} has no power model; "
                                f"add [power.modules.{cab.module.name}]")
            continue
        power = CabinetPower(cab.address, model, cab.module_count,
                             overrides.get(cab.address, cabinet_budget))
        headroom = 1 + tolerance_pct / 100
        if power.budget_a is not None and power.budget_a <= power.quiescent_a * headroom:
            problems.append(f"{label}: budget {power.budget_a:g} A is not above its quiescent "
                            f"current {power.quiescent_a:g} A ({power.modules} modules × "
                            f"{model.quiescent_ma:g} mA"
                            + (f", plus model_tolerance_pct {tolerance_pct:g} %" if tolerance_pct
                               else "") + "); rule: a budget must leave room for light")
        cabinets.append(power)
    if cabinet_budget is None and wall_budget is None and not overrides and not problems:
        problems.append("[power]: no budget; give cabinet_budget_a, wall_budget_a or a "
                        "[[power.cabinets]] budget_a")
    result = PowerModel(tuple(cabinets), wall_budget, mains_v, efficiency, tolerance_pct / 100)
    if wall_budget is not None and mains_v and efficiency and not problems:
        quiescent = sum(c.quiescent_a * result.ac_per_dc_amp(c) for c in cabinets)
        if wall_budget <= quiescent:
            problems.append(f"[power]: wall_budget_a {wall_budget:g} A is not above the wall's "
                            f"quiescent current {quiescent:.3g} A at {mains_v:g} V; rule: a "
                            f"budget must leave room for light")
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        err = ConfigError(f"{source}: {len(problems)} {noun} in the screen file's [power]:\n  "
                          + "\n  ".join(problems))
        err.problems = [f"{source}: {p}" for p in problems]
        raise err
    return result


def _overrides(raw: Any, layout: Layout, problems: list[str]) -> dict[int, float]:
    """``[[power.cabinets]]``: ``address`` and ``budget_a`` for cabinets with their own supply."""
    if not isinstance(raw, list):
        problems.append("[[power.cabinets]]: must be an array of tables")
        return {}
    addresses = {cab.address for cab in layout.cabinets}
    out: dict[int, float] = {}
    for index, body in enumerate(raw, start=1):
        where = f"[[power.cabinets]] entry {index}"
        t = _Reader(body, where, problems)
        t.seen.add("address")
        address = t.raw.get("address")
        budget = t.number("budget_a", positive=True)
        t.no_other_keys()
        if isinstance(address, bool) or not isinstance(address, int) or address not in addresses:
            problems.append(f"{where}: address {address!r} is not a cabinet of this screen")
        elif address in out:
            problems.append(f"{where}: address {address} has a budget already")
        elif budget is not None:
            out[address] = budget
    return out


# ------------------------------------------------------------------ the limiter

class FaultSink(Protocol):
    """What the limiter files faults into (:class:`controller.faultlog.FaultLog` is one)."""

    def record(self, code: str, severity: str, source: str, details: JsonObject | None = None) -> Any: ...

    def resolve(self, code: str, source: str) -> Any: ...


class CabinetPowerStatus(TypedDict):
    address: int
    estimate_a: float           # what the last frame draws, DC at the module supply
    model_a: float              # the same from the power model alone, before the card's correction
    measured_a: float | None    # the card's last reading; None when it cannot report or has not
    budget_a: float | None
    scale: float                # the gain factor the next frame gets, 0 … 1
    limiting: bool
    basis: str                  # "estimate" or "estimate corrected by the card's reading"


class PowerStatus(TypedDict):
    wall_estimate_a: float | None   # AC at mains_v; None without a wall budget
    wall_budget_a: float | None
    limiting: bool
    note: str
    cabinets: list[CabinetPowerStatus]


class PowerLimiter:
    """Per-cabinet current estimate and gain scale, updated once per frame.

    ``update(sums, applied)`` runs on the frame loop's worker thread after each
    frame; ``scale()`` gives the next frame's scale; ``measured`` and
    ``status`` come from the event loop; one lock keeps them consistent.
    ``clock`` is injectable so tests run the envelope on a synthetic clock;
    ``dimming`` returns the cards' dimming fraction (their own brightness
    setting), which scales the LEDs' current but not the quiescent part.
    """

    def __init__(self, model: PowerModel, layout: Layout, *, faults: FaultSink | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 dimming: Callable[[], float] | None = None) -> None:
        self.model, self.layout, self.faults, self.clock = model, layout, faults, clock
        self.dimming: Callable[[], float] = dimming or (lambda: 1.0)
        cabs = model.cabinets
        n = len(cabs)
        # weights: mA per unit of a module's channel sum
        # weights: mA per unit of a module's channel sum, flat as the sums are (module, channel)
        self._weights = np.concatenate([
            np.tile(np.array(c.module.current_ma) / (FULL_DRIVE * lc.module.width * lc.module.height),
                    c.modules) for c, lc in zip(cabs, layout.cabinets)])
        self._starts = 3 * np.cumsum([0] + [c.modules for c in cabs[:-1]])
        self._source: tuple[Mapping[int, np.ndarray], np.ndarray] | None = None
        self._quiescent = np.array([c.quiescent_a * 1000 for c in cabs])
        self._budget = np.array([math.inf if c.budget_a is None else c.budget_a * 1000 for c in cabs])
        self._room = self._budget - self._quiescent     # mA left for light; > 0 by validation
        # ... and while no reading corrected the estimate: the budget less the model's tolerance
        self._room_uncorrected = self._budget / (1 + model.model_tolerance) - self._quiescent
        self._corrected = np.zeros(n, bool)
        self._ac = (np.array([model.ac_per_dc_amp(c) for c in cabs])
                    if model.wall_budget_a is not None else None)
        self._ac_quiet = 0.0 if self._ac is None else float(np.dot(self._quiescent, self._ac))
        self._state = bytes(n + 1)      # who limited in the last frame (cabinets, wall)
        self._deadline = math.inf       # when the next power.limiting fault falls due
        self._lock = threading.Lock()
        self._gain = np.ones(n)
        self._hold_until = np.full(n, -math.inf)
        self._demand = np.zeros(n)          # LED mA the content asks for at full scale
        self._previous = np.zeros(n)        # the frame before's demand
        self._rise = np.zeros(n)            # how much the frame before's demand rose
        self._estimate = self._quiescent.copy()     # mA drawn by the last frame
        self._model_estimate = self._quiescent.copy()   # the same without the cards' correction
        # uncorrected LED mA of recent frames, averaged only when a reading comes (seconds apart)
        self._recent: deque[tuple[float, np.ndarray]] = deque(maxlen=256)
        self._correction = np.ones(n)
        self._measured: list[float | None] = [None] * n
        self._reports: list[bool | None] = [None] * n    # None: no reading yet
        self._since = np.full(n + 1, np.nan)     # limiting since (nan: not limiting); last: wall
        self._filed = np.zeros(n + 1, bool)
        self._wall_limiting = False
        self._last: float | None = None
        self._index = {c.address: i for i, c in enumerate(cabs)}
        self._next: np.ndarray | None = None

    # -------------------------------------------------------------- per frame

    def scale(self) -> np.ndarray | None:
        """``uint32[cabinets]`` (Q16) for the next frame, or None while nothing is limited."""
        return self._next

    def correct(self, pipeline: Any, frame: np.ndarray) -> tuple[Any, np.ndarray | None]:
        """``(scan, scale)``: ``frame`` through ``pipeline`` with the scale the frames before
        set, and again with a tighter one when it would still draw over a budget
        (:meth:`second_look`), as the frame loop sends it; then call :meth:`update`."""
        scale = self.scale()
        scan = pipeline.process(frame) if scale is None else pipeline.process(frame, scale)
        tighter = self.second_look(scan.sums, scale)
        if tighter is not None:
            scale = tighter
            scan = pipeline.process(frame, scale)
        return scan, scale

    def second_look(self, sums: Mapping[int, np.ndarray],
                    applied: np.ndarray | None) -> np.ndarray | None:
        """The scale this very frame needs, when corrected with ``applied`` it would draw more
        than a budget allows by over ``SECOND_LOOK_MARGIN`` (a cut to a brighter picture, which
        the scale from the frame before could not foresee); None when it fits.  Changes nothing:
        :meth:`update` then takes the frame as sent."""
        raw = np.add.reduceat(self._flat(sums) * self._weights, self._starts) * float(self.dimming())
        with self._lock:
            led = raw * self._correction
            gain = np.ones_like(led) if applied is None else applied * (1.0 / Q16)
            demand = led.copy()
            np.divide(led, gain, out=demand, where=gain > 0)
            target, _ = self._targets_for(demand)
        if not (target * (1 + SECOND_LOOK_MARGIN) < gain).any():
            return None
        return np.floor(np.minimum(gain, target) * Q16).astype(np.uint32)

    def update(self, sums: Mapping[int, np.ndarray], applied: np.ndarray | None) -> None:
        """Take one shown frame's module sums (``ScanResult.sums``) and the scale it was
        corrected with; set the next frame's scale."""
        now = self.clock()
        dim = float(self.dimming())
        raw = np.add.reduceat(self._flat(sums) * self._weights, self._starts) * dim
        with self._lock:
            dt = 0.0 if self._last is None else max(0.0, now - self._last)
            self._last = now
            self._recent.append((now, raw))
            led = raw * self._correction
            self._estimate = self._quiescent + led
            self._model_estimate = self._quiescent + raw
            previous, self._rise = self._demand, self._demand - self._previous
            self._previous = previous
            if applied is None:
                self._demand = led
            else:   # what the content would draw unscaled; a blanked cabinet keeps its last
                shown = applied * (1.0 / Q16)
                self._demand = previous.copy()
                np.divide(led, shown, out=self._demand, where=shown > 0)
            target = self._targets(self._predicted(previous))
            gain = self._gain
            # the content still needs (about) this much limiting: the hold starts again
            self._hold_until[target <= gain * (1 + 1e-4)] = now + HOLD_S
            released = np.minimum(target, gain + dt / RELEASE_S)
            held = np.minimum(target, gain)          # a drop is taken at once (attack)
            self._gain = gain = np.where(now >= self._hold_until, released, held)
            limiting = gain < 1.0
            any_limiting = bool(limiting.any())
            self._next = np.floor(gain * Q16).astype(np.uint32) if any_limiting else None
            changes = []
            # the fault timers only matter when who limits changes or a deadline passes
            state = limiting.tobytes() + bytes([self._wall_limiting])
            if state != self._state or now > self._deadline:
                changes = self._fault_changes(now, limiting)
                self._state = state
                pending = ~self._filed & ~np.isnan(self._since)
                self._deadline = (float(self._since[pending].min()) + FAULT_AFTER_S
                                  if pending.any() else math.inf)
        for change in changes:
            self._file(*change)

    def _predicted(self, previous: np.ndarray) -> np.ndarray:
        """The next frame's demand: this one's, plus its rise when the frame before rose too.

        A fade brightens a little every frame, and a limiter one frame behind
        would let every frame of it overshoot by that step; following a steady
        rise keeps a fade within budget.  A single jump (a cut) is not a trend:
        extrapolating it would darken the picture needlessly for the hold, so a
        rise counts only after a rise, and at most twice the one before it.
        """
        rise = self._demand - previous
        return self._demand + np.where(self._rise > 0,
                                       np.minimum(np.maximum(rise, 0.0), 2 * self._rise), 0.0)

    def _targets(self, demand: np.ndarray) -> np.ndarray:
        """The largest scale per cabinet within its budget for ``demand``, then the wall's;
        notes whether the wall's budget limited."""
        target, self._wall_limiting = self._targets_for(demand)
        return target

    def _targets_for(self, demand: np.ndarray) -> tuple[np.ndarray, bool]:
        """(the largest scale per cabinet within its budget for ``demand``, then the wall's;
        whether the wall's budget limited)."""
        target = np.ones_like(demand)
        room = np.where(self._corrected, self._room, self._room_uncorrected)
        np.divide(room, demand, out=target, where=demand > room)
        if self._ac is not None and self.model.wall_budget_a is not None:
            ac_light = float(np.dot(demand * target, self._ac))
            wall_room = self.model.wall_budget_a * 1000 - self._ac_quiet
            if ac_light > wall_room:
                target *= wall_room / ac_light
                return target, True
        return target, False

    def _fault_changes(self, now: float, limiting: np.ndarray) -> list[tuple[int, bool, float]]:
        """(index, limiting, seconds) for every fault to file or resolve; filed outside the lock."""
        states = np.append(limiting, self._wall_limiting)
        self._since[states & np.isnan(self._since)] = now
        self._since[~states] = np.nan
        resolve = ~states & self._filed
        with np.errstate(invalid="ignore"):
            file = states & ~self._filed & (now - self._since > FAULT_AFTER_S)
        if not (resolve.any() or file.any()):
            return []
        self._filed[resolve] = False
        self._filed[file] = True
        return ([(int(i), False, 0.0) for i in np.flatnonzero(resolve)]
                + [(int(i), True, now - float(self._since[i])) for i in np.flatnonzero(file)])

    def _flat(self, sums: Mapping[int, np.ndarray]) -> np.ndarray:
        """Every module's sums in layout order as one flat array, without a copy when they are
        views into one buffer (the compiled pipeline returns the same ones every frame)."""
        if self._source is not None and self._source[0] is sums:
            return self._source[1]
        arrays = list(sums.values())
        flat = np.concatenate(arrays).reshape(-1)
        base = arrays[0]
        while isinstance(base.base, np.ndarray):
            base = base.base
        first, count = arrays[0], flat.size
        offsets = np.cumsum([0] + [a.nbytes for a in arrays[:-1]])
        if (base.dtype == first.dtype and base.flags.c_contiguous and base.size == count
                and base.ctypes.data == first.ctypes.data
                and all(a.flags.c_contiguous and a.ctypes.data == first.ctypes.data + int(o)
                        for a, o in zip(arrays, offsets))):
            view = base.reshape(-1)
            self._source = (sums, view)
            return view
        return flat

    def _file(self, index: int, on: bool, seconds: float) -> None:
        if self.faults is None:
            return
        wall = index == len(self.model.cabinets)
        source = "controller" if wall else card_source(self.model.cabinets[index].address)
        if not on:
            self.faults.resolve("power.limiting", source)
            return
        if wall:
            details = {"text": f"the wall has been limited to its {self.model.wall_budget_a:g} A "
                               f"budget for {seconds:.0f} s", "budget_a": self.model.wall_budget_a}
        else:
            cab = self.model.cabinets[index]
            details = {"text": f"cabinet {cab.address} has been limited to its {cab.budget_a:g} A "
                               f"budget for {seconds:.0f} s (scale {self._gain[index]:.2f})",
                       "budget_a": cab.budget_a, "scale": round(float(self._gain[index]), 3)}
        self.faults.record("power.limiting", "warning", source, details)

    # -------------------------------------------------------------- readings and views

    def measured(self, address: int, milliamps: float | None, *,
                 keeping_up: bool = True) -> None:
        """A card's reading of its LEDs' current (``GET_OUTPUT``), or None when it cannot report.

        The reading corrects this cabinet's estimate from now on (bounded to
        0.5 … 2 times it) when the picture was steady across the averaging
        window (``READING_STEADY``) and the card is ``keeping_up`` with the
        frames sent: a card that showed only a few of them may be showing a
        picture seconds old, and a correction taken from it would let the
        limiter under-estimate the picture now on its way.  ``None`` drops the
        correction: the limiter then works on its estimate alone, and
        ``status`` says so.
        """
        i = self._index.get(address)
        if i is None:
            return
        with self._lock:
            if milliamps is None:
                self._reports[i], self._measured[i], self._correction[i] = False, None, 1.0
                self._corrected[i] = False
                return
            self._reports[i], self._measured[i] = True, float(milliamps)
            now = self.clock()
            recent = [r[i] for t, r in self._recent if now - t <= READING_AVERAGE_S]
            raw = float(np.mean(recent)) if recent else 0.0
            quiet = float(self._quiescent[i])
            steady = bool(recent) and max(recent) <= (1 + READING_STEADY) * min(recent)
            # only a cabinet showing something, and the same thing for a while, says how its
            # LEDs compare with the model; otherwise the last correction stands
            if raw > max(1.0, 0.01 * quiet) and steady and keeping_up:
                low, high = CORRECTION_BOUNDS
                self._correction[i] = min(high, max(low, (milliamps - quiet) / raw))
                self._corrected[i] = True

    def status(self) -> PowerStatus:
        with self._lock:
            cabinets: list[CabinetPowerStatus] = []
            for i, cab in enumerate(self.model.cabinets):
                measured = self._measured[i]
                cabinets.append({
                    "address": cab.address,
                    "estimate_a": round(float(self._estimate[i]) / 1000, 3),
                    "model_a": round(float(self._model_estimate[i]) / 1000, 3),
                    "measured_a": None if measured is None else round(measured / 1000, 3),
                    "budget_a": cab.budget_a,
                    "scale": round(float(self._gain[i]), 3),
                    "limiting": bool(self._gain[i] < 1.0),
                    "basis": ("estimate corrected by the card's reading" if self._reports[i]
                              else "estimate"),
                })
            silent = [c.address for c, r in zip(self.model.cabinets, self._reports) if not r]
            wall = None
            if self._ac is not None:
                wall = round(float((self._estimate * self._ac).sum()) / 1000, 3)
            if not silent:
                note = "limits on its estimate corrected by every card's current reading"
            elif len(silent) == len(cabinets):
                note = "limits on its estimate alone: no card has reported its current"
            else:
                note = (f"limits on its estimate alone for cabinets "
                        f"{', '.join(map(str, silent))}: they have not reported their current")
            return {"wall_estimate_a": wall, "wall_budget_a": self.model.wall_budget_a,
                    "limiting": bool((self._gain < 1.0).any()), "note": note,
                    "cabinets": cabinets}
