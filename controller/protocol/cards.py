"""Operations on cards that take more than one transaction.

Discovery, LED-fault detection with the pixel scan, reading a card's whole
event log, reading its output (``GET_OUTPUT``, absent on older cards),
writing a config with read-back, and the link soak.  Each is a
plain function over a :class:`~controller.protocol.bus.Bus` so the command
line, the service's jobs and the self-tests share one implementation.
Progress, where an operation takes seconds, is reported through an optional
``progress(done, total)`` callable.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from controller.errors import BusTimeout, CardError, LedwardenError
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from controller.cardaddress import CARD_ADDRESSES, hex_address
from controller.protocol.framing import encoded_size

Progress = Callable[[int, int], None]
ALL_ADDRESSES = CARD_ADDRESSES
DETECT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class CardInfo:
    """What discovery learns of one card (from its PING answer)."""

    address: int
    hw_model: int
    version: str
    serial: int
    bank: str
    uptime_s: int
    max_payload: int

    @classmethod
    def from_ping(cls, address: int, ping: c.PingReply) -> CardInfo:
        return cls(address, ping.hw_model, ping.version, ping.serial, ping.bank, ping.uptime_s,
                   ping.max_payload)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Discovery:
    cards: list[CardInfo]
    #: Addresses that answered only with garbled frames: probably two cards sharing an address.
    garbled: list[int]


class Scan:
    """Discovery that is fast on a sparse bus and still right on a noisy line.

    Most of a scan is silence: 232 empty addresses of 240, each waiting out
    its answer window once per try.  So the first pass gives every address
    one try, and a silent address gets its retries only if the pass may have
    lost something: garbled frames reached us, or the *witness* -- the first
    card that answered -- counted bad frames on the line while the pass ran.
    Every card hears every frame, so a request corrupted on its way to a
    silent address shows in the witness's ``rx_bad``.  An answer that came
    after its window (a busy card, a stalled host) counts the same way: some
    address may have been silent only for being late.  Addresses scanned
    before there was a witness, and garbled ones, always get their retries.
    """

    def __init__(self, bus: Bus, retries: int = 1) -> None:
        self.bus, self.retries = bus, retries
        self.found: dict[int, CardInfo] = {}
        self.garbled: set[int] = set()
        self._unsure: list[int] = []      # silent before a witness, or garbled
        self._silent: list[int] = []      # silent while the witness listened
        self._dropped = 0
        self._witness: tuple[int, int | None] | None = None   # address, rx_bad when it was found
        self._late = self._late_answers()

    def _ping(self, address: int, retries: int) -> bool:
        """PING once (with ``retries``); True if the address is settled (found or plainly silent)."""
        bad_before = self.bus.deframer.dropped_total
        try:
            ping = self.bus.call(address, c.Cmd.PING, retries=retries)
        except BusTimeout:
            dropped = self.bus.deframer.dropped_total - bad_before
            self._dropped += dropped
            if dropped:
                self.garbled.add(address)
            return not dropped
        self.garbled.discard(address)
        self.found[address] = CardInfo.from_ping(address, ping)
        return True

    def first_pass(self, addresses: Iterable[int], progress: Progress | None = None,
                   total: int | None = None) -> None:
        addresses = list(addresses)
        for done, address in enumerate(addresses, 1):
            settled = self._ping(address, 0)
            if address in self.found and self._witness is None:
                self._witness = (address, self._rx_bad(address))
            elif not settled or address not in self.found:
                (self._silent if settled and self._witness else self._unsure).append(address)
            if progress:
                progress(done, total or len(addresses))

    def _rx_bad(self, address: int) -> int | None:
        try:
            status: c.StatusReply = self.bus.call(address, c.Cmd.GET_STATUS, retries=self.retries)
            return status.rx_bad
        except LedwardenError:
            return None

    def _late_answers(self) -> int:
        return sum(stats.late for stats in self.bus.stats.values())

    def line_was_clean(self) -> bool:
        """Did the first pass hear no bad frame and no late answer, and did the witness count
        no bad frame?"""
        if (self._witness is None or self._witness[1] is None or self._dropped
                or self._late_answers() != self._late):
            return False
        after = self._rx_bad(self._witness[0])
        return after is not None and after == self._witness[1]

    def to_recheck(self) -> list[int]:
        """The silent addresses that must get their retries (after :meth:`first_pass`)."""
        if self.retries < 1:
            return []
        suspect = self._unsure + ([] if self.line_was_clean() else self._silent)
        return sorted(a for a in set(suspect) if a not in self.found)

    def recheck(self, addresses: Iterable[int], progress: Progress | None = None,
                offset: int = 0, total: int | None = None) -> None:
        addresses = list(addresses)
        for done, address in enumerate(addresses, 1):
            self._ping(address, self.retries - 1)     # the first pass was the first try
            if progress:
                progress(offset + done, total or len(addresses))

    def result(self) -> Discovery:
        return Discovery([self.found[a] for a in sorted(self.found)], sorted(self.garbled))


def discover(bus: Bus, addresses: Iterable[int] = ALL_ADDRESSES, *, retries: int = 1,
             progress: Progress | None = None) -> Discovery:
    """PING every address; a garbled silence is reported apart from a plain one (see :class:`Scan`)."""
    addresses = list(addresses)
    scan = Scan(bus, retries)
    scan.first_pass(addresses, progress)
    again = scan.to_recheck()
    scan.recheck(again, progress, offset=len(addresses), total=len(addresses) + len(again))
    return scan.result()


def write_config(bus: Bus, address: int, config: c.CardConfig) -> c.CardConfig:
    """Write a card's config and read it back; a read-back that differs is an error."""
    bus.call(address, c.Cmd.SET_CONFIG, config)
    back: c.CardConfig = bus.call(address, c.Cmd.GET_CONFIG)
    if back != config:
        raise LedwardenError(f"card {hex_address(address)} stored a different config than written: "
                             f"wrote {config}, read back {back}")
    return back


def write_brightness(bus: Bus, address: int, level: int) -> int:
    """Set a card's brightness and read it back."""
    bus.call(address, c.Cmd.SET_BRIGHTNESS, c.Brightness(level))
    answer: c.Brightness = bus.call(address, c.Cmd.GET_BRIGHTNESS)
    back = answer.level
    if back != level:
        raise LedwardenError(f"card {hex_address(address)} reads back brightness {back}, wrote {level}")
    return back


@dataclass(frozen=True)
class DeadLed:
    module: int
    x: int
    y: int
    channel: str


def pixel_scan(bus: Bus, address: int, config: c.CardConfig | None = None, *,
               progress: Progress | None = None) -> list[DeadLed]:
    """Read the last detection's fault bitmaps of every module, in as few answers as fit."""
    config = config or bus.call(address, c.Cmd.GET_CONFIG)
    rows_per = c.pixel_scan_rows_that_fit(config.module_w)
    if rows_per == 0:
        raise LedwardenError(f"card {hex_address(address)}: modules {config.module_w} pixels wide do "
                             f"not fit one PIXEL_SCAN answer")
    dead: list[DeadLed] = []
    steps = config.modules * -(-config.module_h // rows_per)
    done = 0
    for module in range(config.modules):
        for first in range(0, config.module_h, rows_per):
            count = min(rows_per, config.module_h - first)
            reply = bus.call(address, c.Cmd.PIXEL_SCAN, c.PixelScan(module, first, count))
            dead += [DeadLed(module, x, y, ch) for x, y, ch in reply.faults()]
            done += 1
            if progress:
                progress(done, steps)
    return dead


def detect(bus: Bus, address: int, *, progress: Progress | None = None) -> list[DeadLed]:
    """Run open/short detection on every module and return the dead LEDs found."""
    config = bus.call(address, c.Cmd.GET_CONFIG)
    bus.call(address, c.Cmd.DETECT_START)
    deadline = time.monotonic() + DETECT_TIMEOUT_S
    while bus.call(address, c.Cmd.GET_STATUS).status & c.StatusFlag.DETECTING:
        if time.monotonic() > deadline:
            raise LedwardenError(f"card {hex_address(address)} still detecting after "
                                 f"{DETECT_TIMEOUT_S:.0f} s; the spec allows 200 ms")
        time.sleep(0.02)
    return pixel_scan(bus, address, config, progress=progress)


#: How often an erasing card is asked whether it is done, and the longest an erase may take:
#: a 512 KiB bank in 64 KiB blocks at the flash datasheet's maximum of 2 s each (typically
#: 150 ms each; docs/firmware.md, "Flash timing"), with margin.
ERASE_POLL_S = 0.02
ERASE_TIMEOUT_S = 20.0


def fw_status_when_erased(bus: Bus, address: int, *,
                          timeout_s: float = ERASE_TIMEOUT_S) -> c.FwStatusReply:
    """``FW_STATUS`` of a card, once it has erased the bank its transfer goes to.

    A card answers ``FW_BEGIN`` before erasing (NOR flash takes seconds for
    a bank, far past the answer deadline) and answers ``BUSY`` to
    ``FW_STATUS`` and ``FW_CHUNK`` until the erase is done, so no chunk may
    go out before this returns.  Raises the card's ``BUSY`` as
    :class:`CardError` if it is still erasing after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status: c.FwStatusReply = bus.call(address, c.Cmd.FW_STATUS)
            return status
        except CardError as exc:
            if exc.code != c.ErrorCode.BUSY or time.monotonic() >= deadline:
                raise
        bus.pause(ERASE_POLL_S)


def read_output(bus: Bus, address: int) -> c.OutputReply | None:
    """A card's ``GET_OUTPUT`` answer: measured LED current, video frames shown and dropped.

    ``None`` when the card answers ``UNKNOWN_COMMAND``: the command came after
    the first edition of the spec, and a card without it is "not supported",
    never a fault (spec section 5), so callers go on without the measurement.
    Any other refusal, and a timeout, is raised as usual.
    """
    try:
        reply: c.OutputReply = bus.call(address, c.Cmd.GET_OUTPUT)
    except CardError as exc:
        if exc.code == c.ErrorCode.UNKNOWN_COMMAND:
            return None
        raise
    return reply


def read_events(bus: Bus, address: int, first: int = 0) -> list[c.Event]:
    """Every event the card still holds from index ``first`` on."""
    events: list[c.Event] = []
    while True:
        batch = bus.call(address, c.Cmd.GET_EVENTS, c.GetEvents(first)).events
        events += batch
        if len(batch) < c.MAX_EVENTS_PER_ANSWER:
            return events
        first = batch[-1].index + 1


@dataclass
class SoakResult:
    """Outcome of :func:`soak`: what a noisy line cost and what it delivered."""

    transactions: int
    completed: int
    failed: int
    wrong_answers: int       # answers accepted whose content was not what the card holds
    retries: int
    timeouts: int
    bad_frames: int
    seconds: float
    frame_bytes: int         # wire bytes of every completed request and its answer, counted once
    baud: int

    @property
    def goodput(self) -> float:
        """Completed frame bytes as a fraction of what the line carries in the same time."""
        capacity = self.seconds * self.baud / 10
        return self.frame_bytes / capacity if capacity else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "goodput": round(self.goodput, 4)}


def soak(bus: Bus, address: int, count: int, *, seed: int | None = None,
         progress: Progress | None = None) -> SoakResult:
    """Run ``count`` verified transactions against one card to measure the link.

    Alternates writes of random brightness levels with reads that must give
    the last level written, and PINGs whose serial must not change, so a
    corrupt frame that slipped through would show up as a wrong answer.
    The card's brightness is restored at the end.
    """
    rng = random.Random(seed)
    stats = bus.stats_for(address)
    before = (stats.retries, stats.timeouts, stats.bad_frames)
    original = bus.call(address, c.Cmd.GET_BRIGHTNESS).level
    serial = bus.call(address, c.Cmd.PING).serial
    level: int | None = original
    completed = failed = wrong = frame_bytes = 0
    sizes = {cmd: encoded_size(0) + encoded_size(n) for cmd, n in (
        (c.Cmd.PING, c.PingReply.FORMAT.size), (c.Cmd.GET_BRIGHTNESS, 2))}
    sizes[c.Cmd.SET_BRIGHTNESS] = encoded_size(2) + encoded_size(0)
    started = time.monotonic()
    for i in range(count):
        step = i % 3
        try:
            if step == 0:
                new = rng.randrange(0x10000)
                bus.call(address, c.Cmd.SET_BRIGHTNESS, c.Brightness(new))
                level, cmd = new, c.Cmd.SET_BRIGHTNESS
            elif step == 1:
                cmd = c.Cmd.GET_BRIGHTNESS
                read = bus.call(address, cmd).level
                wrong += level is not None and read != level
                level = read
            else:
                cmd = c.Cmd.PING
                wrong += bus.call(address, cmd).serial != serial
            completed += 1
            frame_bytes += sizes[cmd]
        except (BusTimeout, CardError):
            failed += 1
            if step == 0:
                level = None  # the card may or may not have applied a write whose answer was lost
        if progress and (i + 1) % 100 == 0:
            progress(i + 1, count)
    seconds = time.monotonic() - started
    bus.call(address, c.Cmd.SET_BRIGHTNESS, c.Brightness(original), retries=10)
    return SoakResult(count, completed, failed, wrong, stats.retries - before[0],
                      stats.timeouts - before[1], stats.bad_frames - before[2], seconds,
                      frame_bytes, bus.baud)
