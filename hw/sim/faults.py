"""Fault injection for the simulated bus: what can go wrong, and how it is said.

Faults come from the command line (``--ber 1e-4 --hot 3:92 …``) or from a
TOML file that the simulator re-reads whenever it changes, so faults can be
switched on and off while a test or a demo runs ("on demand")::

    ber = 1e-4            # bit error rate on the line, both directions
    drop_rate = 0.0       # probability that a byte is lost
    insert_rate = 0.0     # probability that a stray byte appears after a byte

    [cards.3]
    mute = true           # the card hears but never answers
    temp_c = 92.0         # over-temperature
    supply_mv = 4300      # under-voltage
    fan_rpm = 0           # fan failure (a fitted fan that stopped)
    link_lost = [2]       # modules whose data link is lost
    dead_leds = [[0, 10, 5, "r"], [1, 3, 3, "g"]]   # [module, x, y, channel]
    power_cut_after_chunks = 100   # cut power once after hearing this many FW_CHUNK frames
    drop_off_after_chunks = 100    # leave the bus once after hearing this many FW_CHUNK frames …
    drop_off_for_s = 2.0           # … for this long (omit: until the fault is cleared)
    bad_flash_byte = 4096          # this byte of a bank reads back with bit 0 flipped when written
    watchdog_reset = true          # one watchdog reset when this is loaded
    no_get_output = true           # answers GET_OUTPUT with UNKNOWN_COMMAND (an older card)
    no_sensor = true               # GET_OUTPUT reports no current sensor (0xFFFFFFFF)
    stays_black_after_s = 5.0      # power-cycles once, this long after being set, and then
                                   # shows no video until the sender restarts its stream

The chunk-counting faults fire once: the count starts when the fault is set,
and the fault fires again only after it has been cleared (or changed) and set
anew, so a card that lost its transfer to a power cut can receive it again.

Line noise is a Poisson process over the bits on the wire: the distance to
the next flipped bit is drawn from a geometric distribution, so a bit error
rate of 1e-4 flips one bit in 10 000 on average however the bytes are
chunked, and costs nothing per byte when it is off.
"""

from __future__ import annotations

import math
import random
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from controller.errors import ConfigError

CHANNELS = {"r": 0, "g": 1, "b": 2}


@dataclass(frozen=True)
class CardFaults:
    mute: bool = False
    temp_c: float | None = None
    supply_mv: int | None = None
    fan_rpm: int | None = None
    link_lost: frozenset[int] = frozenset()
    dead_leds: frozenset[tuple[int, int, int, int]] = frozenset()  # module, x, y, channel
    power_cut_after_chunks: int | None = None
    drop_off_after_chunks: int | None = None
    drop_off_for_s: float | None = None     # None: off the bus until the fault is cleared
    bad_flash_byte: int | None = None       # offset in a bank of a flash cell that flips bit 0
    watchdog_reset: bool = False
    no_get_output: bool = False             # GET_OUTPUT answered UNKNOWN_COMMAND
    no_sensor: bool = False                 # GET_OUTPUT without a current reading
    stays_black_after_s: float | None = None  # power cycle, then black until the sender restarts


@dataclass(frozen=True)
class FaultPlan:
    ber: float = 0.0
    drop_rate: float = 0.0
    insert_rate: float = 0.0
    cards: dict[int, CardFaults] = field(default_factory=dict)

    def for_card(self, address: int) -> CardFaults:
        return self.cards.get(address, CardFaults())

    def with_card(self, address: int, **changes) -> FaultPlan:
        cards = dict(self.cards)
        cards[address] = replace(self.for_card(address), **changes)
        return replace(self, cards=cards)

    def merged(self, other: FaultPlan) -> FaultPlan:
        """``other`` on top of this plan: line rates and card entries it sets win."""
        cards = dict(self.cards)
        cards.update(other.cards)
        return FaultPlan(ber=other.ber or self.ber, drop_rate=other.drop_rate or self.drop_rate,
                         insert_rate=other.insert_rate or self.insert_rate, cards=cards)


def _rate(name: str, value) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"fault {name}={value!r} is not a number") from None
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"fault {name}={rate} must be a probability in [0, 1)")
    return rate


def parse_dead_led(spec, where: str) -> tuple[int, int, int, int]:
    """``[module, x, y, channel]`` with channel r, g, b or 0..2."""
    try:
        module, x, y, *rest = spec
        channel = rest[0] if rest else "r"
        channel = CHANNELS[channel.lower()] if isinstance(channel, str) else int(channel)
        led = (int(module), int(x), int(y), channel)
    except (ValueError, TypeError, KeyError):
        raise ConfigError(f"{where}: dead LED {spec!r} must be [module, x, y, channel r/g/b]") from None
    if min(led) < 0 or led[3] > 2:
        raise ConfigError(f"{where}: dead LED {spec!r} has a negative position or bad channel")
    return led


def card_faults_from_table(address: int, table: dict) -> CardFaults:
    where = f"faults for card {address}"
    known = set(CardFaults.__dataclass_fields__)
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    values = dict(table)
    if "link_lost" in values:
        values["link_lost"] = frozenset(int(m) for m in values["link_lost"])
    if "dead_leds" in values:
        values["dead_leds"] = frozenset(parse_dead_led(d, where) for d in values["dead_leds"])
    for name, low in (("power_cut_after_chunks", 1), ("drop_off_after_chunks", 1),
                      ("bad_flash_byte", 0)):
        if name in values and (not isinstance(values[name], int) or values[name] < low):
            raise ConfigError(f"{where}: {name}={values[name]!r} must be a whole number >= {low}")
    if "drop_off_for_s" in values:
        try:
            values["drop_off_for_s"] = float(values["drop_off_for_s"])
        except (TypeError, ValueError):
            values["drop_off_for_s"] = -1.0
        if values["drop_off_for_s"] <= 0:
            raise ConfigError(f"{where}: drop_off_for_s must be a positive number of seconds "
                              f"(leave it out to stay off the bus until the fault is cleared)")
    if "stays_black_after_s" in values:
        value = values["stays_black_after_s"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{where}: stays_black_after_s={value!r} must be a number of "
                              f"seconds >= 0 (0: power-cycle at once)")
        values["stays_black_after_s"] = float(value)
    for name in ("no_get_output", "no_sensor"):
        if name in values and not isinstance(values[name], bool):
            raise ConfigError(f"{where}: {name}={values[name]!r} must be true or false")
    return CardFaults(**values)


def plan_from_mapping(data: dict, source: str = "faults") -> FaultPlan:
    known = {"ber", "drop_rate", "insert_rate", "cards"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    cards = {}
    for key, table in data.get("cards", {}).items():
        try:
            address = int(key, 0) if isinstance(key, str) else int(key)
        except ValueError:
            raise ConfigError(f"{source}: card key {key!r} is not an address") from None
        cards[address] = card_faults_from_table(address, table)
    return FaultPlan(ber=_rate("ber", data.get("ber", 0.0)),
                     drop_rate=_rate("drop_rate", data.get("drop_rate", 0.0)),
                     insert_rate=_rate("insert_rate", data.get("insert_rate", 0.0)),
                     cards=cards)


def load_plan(path: str | Path) -> FaultPlan:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read fault file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"fault file {path} is not valid TOML: {exc}") from None
    return plan_from_mapping(data, str(path))


class LineNoise:
    """Applies the plan's line faults to bytes crossing the bus in one direction."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._left: dict[str, int | None] = {"bit": None, "drop": None, "insert": None}
        self.flipped_bits = 0
        self.dropped_bytes = 0
        self.inserted_bytes = 0

    def _gap(self, rate: float) -> int:
        """Units before the next event: geometric with success probability ``rate``."""
        return int(math.log(1.0 - self.rng.random()) / math.log1p(-rate))

    def _events(self, kind: str, rate: float, units: int) -> list[int]:
        """Positions in ``0..units-1`` hit by the process, carrying the remainder over."""
        if rate <= 0:
            self._left[kind] = None
            return []
        hits = []
        left = self._left[kind]
        if left is None:
            left = self._gap(rate)
        pos = left
        while pos < units:
            hits.append(pos)
            pos += 1 + self._gap(rate)
        self._left[kind] = pos - units
        return hits

    def apply(self, data: bytes, plan: FaultPlan) -> bytes:
        if not (plan.ber or plan.drop_rate or plan.insert_rate) or not data:
            return data
        out = bytearray(data)
        for bit in self._events("bit", plan.ber, len(out) * 8):
            out[bit >> 3] ^= 1 << (bit & 7)
            self.flipped_bits += 1
        drops = set(self._events("drop", plan.drop_rate, len(out)))
        inserts = set(self._events("insert", plan.insert_rate, len(out)))
        if not drops and not inserts:
            return bytes(out)
        result = bytearray()
        for i, byte in enumerate(out):
            if i in drops:
                self.dropped_bytes += 1
            else:
                result.append(byte)
            if i in inserts:
                result.append(self.rng.randrange(256))
                self.inserted_bytes += 1
        return bytes(result)
