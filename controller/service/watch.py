"""Between inspections: the controller watches the cards and the frame loop and files faults.

Every ``interval_s`` the watch asks each configured card for its status and
any new events, and reads the frame loop's overrun count; what it sees goes
to the fault log (:mod:`controller.faultlog`), where a condition that
persists folds into one row and one that goes away is resolved:

==========================  ========  ===============================================
code                        severity  raised when / resolved when
==========================  ========  ===============================================
``card.offline``            error     a card does not answer / it answers again
``card.over_temperature``   error     its status flag is set / the flag clears
``card.under_voltage``      error     likewise
``card.fan_fault``          error     likewise
``card.module_link_lost``   error     likewise
``card.config_invalid``     error     likewise
``card.pixel_faults``       warning   likewise (run the quarterly inspection to locate them)
``card.watchdog_reset``     error     the card logged one (stays until cleared)
``card.firmware_rolled_back`` error   the card logged one (stays until cleared)
``bus.timeout``             warning   any bus operation ran out of tries (folded per card;
                                      the evidence of ``card.offline`` while that is active)
``frameloop.overrun``       warning   frames overran their budget in an interval /
                                      an interval without overruns
==========================  ========  ===============================================

The self-test files its findings of the same conditions under these
``card.*`` codes (:data:`controller.faultlog.findings.CARD_CODES`), so a hot
card seen by both is one fault.

The watch stands aside while a job holds the bus to itself (commissioning,
an inspection, a firmware upgrade), so a card rebooting into new firmware is
not filed as gone.  Its polls are single transactions that queue with
everything else, so the API stays responsive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from controller.boardcontext import BoardContext
from controller.cardaddress import hex_address
from controller.errors import BusTimeout, LedwardenError
from controller.faultlog import FaultLog, card_source
from controller.protocol import cards as ops
from controller.protocol import commands as c

log = logging.getLogger("ledwarden.watch")

FLAG_FAULTS = {
    c.StatusFlag.OVER_TEMPERATURE: ("card.over_temperature", "error"),
    c.StatusFlag.UNDER_VOLTAGE: ("card.under_voltage", "error"),
    c.StatusFlag.FAN_FAULT: ("card.fan_fault", "error"),
    c.StatusFlag.MODULE_LINK_LOST: ("card.module_link_lost", "error"),
    c.StatusFlag.CONFIG_INVALID: ("card.config_invalid", "error"),
    c.StatusFlag.PIXEL_FAULTS: ("card.pixel_faults", "warning"),
}
EVENT_FAULTS: dict[int, str] = {
    c.EventCode.WATCHDOG_RESET: "card.watchdog_reset",
    c.EventCode.FIRMWARE_ROLLED_BACK: "card.firmware_rolled_back",
}


def bus_timeout_recorder(faults):
    """The BusOwner hook that files an operation that ran out of tries."""
    def record(exc: BusTimeout) -> None:
        try:
            faults.record("bus.timeout", "warning", card_source(exc.address),
                          {"text": str(exc), "command": exc.command, "tries": exc.tries})
        except LedwardenError as err:          # the log must never break the bus
            log.warning("could not file a bus timeout: %s", err)
    return record


class CardWatch:
    """Polls every configured card and the frame loop every ``interval_s`` and files faults.

    It is handed the :class:`~controller.boardcontext.BoardContext` (the bus,
    the layout, the fault log, the frame loop) and ``bus_busy``, which says
    whether a job holds the bus to itself: the watch then stands aside.  It
    needs nothing else of the service, so a test runs it over a board alone.
    """

    def __init__(self, board: BoardContext, interval_s: float = 30.0, *,
                 bus_busy: Callable[[], bool] = lambda: False) -> None:
        if board.faults is None:
            raise LedwardenError("the card watch needs a fault log to file what it sees")
        self.board = board
        self.faults: FaultLog = board.faults
        self.interval_s = interval_s
        self.bus_busy = bus_busy
        self._event_next: dict[int, int] = {}
        self._overruns: int | None = None
        self._task: asyncio.Task | None = None
        #: When (``time.time()``) each card last answered the watch; dropped when it stops, so
        #: ``ledwarden cards`` shows as seen what the watch hears, not only what a discovery found.
        self.answered: dict[int, float] = {}
        #: Each answering card's last ``GET_STATUS`` reply, dropped with ``answered``: what
        #: ``/metrics`` shows (temperature, supply, fan, flags), so a scrape never touches the bus.
        self.last_status: dict[int, c.StatusReply] = {}

    async def poll_once(self) -> None:
        """One round over every configured card and the frame loop."""
        for cab in self.board.layout.cabinets:
            if self.bus_busy():
                return
            await self._poll_card(cab.address)
        self._poll_frames()

    async def _poll_card(self, address: int) -> None:
        faults, source = self.faults, card_source(address)
        try:
            status = await self.board.bus.call(address, c.Cmd.GET_STATUS, file_timeout=False)
        except BusTimeout as exc:
            self.answered.pop(address, None)
            self.last_status.pop(address, None)
            await asyncio.to_thread(faults.record, "card.offline", "error", source,
                                    {"text": f"card {hex_address(address)} stopped answering: {exc}"})
            return
        except LedwardenError as exc:
            log.info("watch: card %s: %s", hex_address(address), exc)
            return
        self.answered[address] = time.time()
        self.last_status[address] = status
        await asyncio.to_thread(self._file_status, source, status)
        await self._poll_events(address, source)

    def _file_status(self, source: str, status: c.StatusReply) -> None:
        """(In a worker thread: a new fault waits for its fsync.)"""
        faults = self.faults
        faults.resolve("card.offline", source)
        for flag, (code, severity) in FLAG_FAULTS.items():
            if status.status & flag:
                faults.record(code, severity, source,
                              {"temperature_c": status.temperature_c, "supply_mv": status.supply_mv,
                               "fan_rpm": status.fan_rpm, "flags": status.flag_names})
            else:
                faults.resolve(code, source)

    async def _poll_events(self, address: int, source: str) -> None:
        first = self._event_next.get(address)
        try:
            events = await self.board.bus.run(ops.read_events, address, first or 0)
        except LedwardenError:
            return
        if events:
            self._event_next[address] = events[-1].index + 1
        if first is None:
            return            # the first look only learns where the log ends
        for event in events:
            code = EVENT_FAULTS.get(event.code)
            if code:
                await asyncio.to_thread(self.faults.record, code, "error", source,
                                        {"event_index": event.index, "uptime_s": event.uptime_s,
                                         "argument": event.argument})

    def _poll_frames(self) -> None:
        loop = self.board.frame_loop
        if loop is None:
            return
        stats = loop.stats()
        if self._overruns is not None:
            new = stats["overruns"] - self._overruns
            if new > 0:
                self.faults.record("frameloop.overrun", "warning", "controller",
                                   {"overruns": new, "p99_ms": stats["p99_ms"],
                                    "budget_ms": stats["budget_ms"]})
            else:
                self.faults.resolve("frameloop.overrun", "controller")
        self._overruns = stats["overruns"]

    async def run_forever(self) -> None:
        while True:
            try:
                await self.poll_once()
            except LedwardenError as exc:
                log.warning("watch round failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run_forever(), name="card-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
