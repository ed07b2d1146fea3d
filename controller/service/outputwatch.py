"""While video flows to the cards, ask each what it shows (``GET_OUTPUT``) every ~2 s.

A known field failure: a receiving card that was power-cycled comes back,
answers the bus, reports healthy status — and stays black until the sender
restarts its stream.  The status poll (:mod:`controller.service.watch`)
cannot see it; the card's own frame counter can.  So while the frame loop is
sending video to the cards (its sink ``feeds_cards``, and frames went out
since the last look), a card whose ``frames_shown`` did not move across one
whole interval is filed:

==================  ========  ===================================================
code                severity  raised when / resolved when
==================  ========  ===================================================
``card.no_video``   error     "cabinet 5 receives video but shows none": its frame
                              counter stopped while video flowed / it shows
                              frames again
==================  ========  ===================================================

A counter that went *back* is a card that rebooted: a new baseline, not a
stall.  Nothing is judged while video does not flow (no loop, another sink,
a stalled source) or while a job holds the bus to itself.

The same answers carry the current the card's own sensor measured.  If the
service has a power limiter (the ``power`` getter returns something with a
``measured(address, milliamps_or_None)`` method) every reading goes to it; ``None`` says the card
cannot measure (no sensor, or no ``GET_OUTPUT`` at all: such cards answer
``UNKNOWN_COMMAND``, are asked again only every ``UNSUPPORTED_RETRY_S`` in
case a firmware upgrade brought the command, and are otherwise left alone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from controller.boardcontext import BoardContext
from controller.cardaddress import hex_address
from controller.errors import BusTimeout, LedwardenError
from controller.faultlog import FaultLog, card_source
from controller.protocol import cards as ops
from controller.protocol import commands as c

log = logging.getLogger("ledwarden.outputwatch")

INTERVAL_S = 2.0
#: How long a card that lacks GET_OUTPUT is left before it is asked again (an upgrade may add it).
UNSUPPORTED_RETRY_S = 60.0
#: A card silent this many polls in a row (the card watch files it offline) is asked again
#: only after SILENT_RETRY_S, so a dead card does not cost the bus its retries every round;
#: one silent poll is not enough, since a card power-cycling is silent for half a second.
SILENT_POLLS = 2
SILENT_RETRY_S = 10.0
CODE = "card.no_video"
#: A card that showed at least this share of the frames sent since its last reading shows the
#: picture of now; below it (a congested link, a receiver falling behind) its current reading
#: may be of a picture seconds old, and does not correct the limiter's estimate.
KEEPING_UP = 0.5


@dataclass
class Reading:
    """The last ``GET_OUTPUT`` answer of one card, as ``status`` shows it."""

    supported: bool
    current_ma: int | None = None
    frames_shown: int | None = None
    frames_dropped: int | None = None
    at: float | None = None        # time.time() of the answer
    showing: bool | None = None    # None: not judged yet (no video flowed across an interval)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CurrentReadings(Protocol):
    """Where the cards' measured currents go: the power limiter (:class:`controller.power.PowerLimiter`)."""

    def measured(self, address: int, milliamps: float | None, *,
                 keeping_up: bool = True) -> None:
        """A card's reading of its LEDs' current, or None when it cannot measure; ``keeping_up``
        is False when the card showed too few of the frames sent to be showing the latest."""
        ...


def _no_limiter() -> CurrentReadings | None:
    return None


class OutputWatch:
    """Polls ``GET_OUTPUT`` of every cabinet's card while video flows, and files
    ``card.no_video``; see the module's docstring.

    Like :class:`~controller.service.watch.CardWatch` it is handed the board
    (the bus, the layout, the fault log, the frame loop) and asks the service
    only two things, as callables because both change while it runs:
    ``bus_busy`` (a job holds the bus to itself: stand aside) and ``power``
    (the current limiter, set after the service is built, or None).
    """

    def __init__(self, board: BoardContext, interval_s: float = INTERVAL_S, *,
                 bus_busy: Callable[[], bool] = lambda: False,
                 power: Callable[[], CurrentReadings | None] = _no_limiter) -> None:
        if board.faults is None:
            raise LedwardenError("the output watch needs a fault log to file what it sees")
        #: The board it watches; replaced whole (``dataclasses.replace``) when its frame loop is.
        self.board = board
        self.faults: FaultLog = board.faults
        self.bus_busy = bus_busy
        self.power = power
        self.interval_s = interval_s
        self.readings: dict[int, Reading] = {}
        self._skip_until: dict[int, float] = {}
        self._silent: dict[int, int] = {}
        self._loop_frames: int | None = None
        #: The frame loop's frame count at each card's last reading.
        self._sent_at: dict[int, int | None] = {}
        self._task: asyncio.Task | None = None

    def video_flows(self) -> bool:
        """Did the frame loop send frames to the cards since the last look?"""
        loop = self.board.frame_loop
        # The board types its loop by the counters it reads (FrameStats); the sink is FrameLoop's.
        if loop is None or not getattr(getattr(loop, "sink", None), "feeds_cards", False):
            self._loop_frames = None
            return False
        frames = loop.stats()["frames"]
        before, self._loop_frames = self._loop_frames, frames
        return before is not None and frames > before

    async def poll_once(self) -> None:
        """One round: every cabinet's card, unless a job holds the bus to itself."""
        flowing = self.video_flows()
        if not flowing:
            return
        for cab in self.board.layout.cabinets:
            if self.bus_busy():
                self._loop_frames = None   # the next round only sets a baseline
                return
            await self._poll_card(cab.address)

    async def _poll_card(self, address: int) -> None:
        now = time.monotonic()
        if self._skip_until.get(address, 0.0) > now:
            return
        try:
            reply = await self.board.bus.run(ops.read_output, address)
        except BusTimeout:
            self._silent[address] = self._silent.get(address, 0) + 1
            if self._silent[address] >= SILENT_POLLS:
                self._skip_until[address] = now + SILENT_RETRY_S
            return
        except LedwardenError as exc:
            log.info("output watch: card %d: %s", address, exc)
            return
        self._silent.pop(address, None)
        self._feed_power(address, reply, self._keeping_up(address, reply))
        if reply is None:
            self.readings[address] = Reading(supported=False, at=time.time())
            self._skip_until[address] = now + UNSUPPORTED_RETRY_S
            return
        await self._judge(address, reply)

    async def _judge(self, address: int, reply: c.OutputReply) -> None:
        before = self.readings.get(address)
        reading = Reading(True, reply.milliamps, reply.frames_shown, reply.frames_dropped,
                          time.time())
        self.readings[address] = reading
        if before is None or before.frames_shown is None or reply.frames_shown < before.frames_shown:
            return                          # a first look, or the card rebooted: a new baseline
        source = card_source(address)
        if reply.frames_shown > before.frames_shown:
            reading.showing = True
            if before.showing is not True:
                await asyncio.to_thread(self.faults.resolve, CODE, source)
            return
        reading.showing = False
        dropped = reply.frames_dropped - (before.frames_dropped or 0)
        await asyncio.to_thread(
            self.faults.record, CODE, "error", source,
            {"text": f"cabinet {address} receives video but shows none",
             "frames_shown": reply.frames_shown, "frames_dropped": reply.frames_dropped,
             "dropped_since_last_look": max(0, dropped),
             "hint": "power-cycled cards stay black until the sender restarts: restart the "
                     "controller's frame loop, or check the card's video cable"})

    def _keeping_up(self, address: int, reply: c.OutputReply | None) -> bool:
        """Did the card show at least ``KEEPING_UP`` of the frames sent since its last reading?
        Unknown (a first reading, a reboot, no frame loop) counts as not keeping up."""
        loop = self.board.frame_loop
        sent = None if loop is None else loop.stats()["frames"]
        before_sent, self._sent_at[address] = self._sent_at.get(address), sent
        before = self.readings.get(address)
        if (reply is None or sent is None or before_sent is None or before is None
                or before.frames_shown is None or reply.frames_shown < before.frames_shown):
            return False
        return reply.frames_shown - before.frames_shown >= KEEPING_UP * (sent - before_sent)

    def _feed_power(self, address: int, reply: c.OutputReply | None, keeping_up: bool) -> None:
        power = self.power()
        if power is None:
            return
        try:
            power.measured(address, None if reply is None else reply.milliamps,
                           keeping_up=keeping_up)
        except Exception as exc:  # noqa: BLE001 - another part's bug must not stop the watch
            log.warning("power limiter refused card %d's reading: %r", address, exc)

    def status(self) -> dict[str, Any]:
        """Per card (``"0x05"``), the last reading; for ``status``."""
        return {hex_address(a): r.as_dict() for a, r in sorted(self.readings.items())}

    async def run_forever(self) -> None:
        while True:
            try:
                await self.poll_once()
            except LedwardenError as exc:
                log.warning("output watch round failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run_forever(),
                                                            name="output-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
