"""The service's single owner of the card bus.

The bus is half-duplex and :class:`~controller.protocol.bus.Bus` is a
blocking engine, so the service runs every bus operation in one dedicated
worker thread, and callers queue for it through a FIFO ``asyncio.Lock``:
jobs that each submit one short operation at a time (one card's detection,
one config write) therefore take turns, and a long commissioning run cannot
starve a status request.  There is no async copy of the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from controller.errors import BusTimeout
from controller.protocol.bus import Bus, BusStatistics

T = TypeVar("T")


class BusOwner:
    """Serialises bus operations from many coroutines onto one thread."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledwarden-bus")
        self.operations = 0
        #: Called with every BusTimeout an operation lets out (the fault log's feed).
        self.on_timeout: Callable[[BusTimeout], None] | None = None

    async def run(self, operation: Callable[..., T], *args, **kwargs) -> T:
        """Run ``operation(bus, *args, **kwargs)`` when it is this caller's turn."""
        return await self._run(lambda: operation(self.bus, *args, **kwargs), file_timeout=True)

    async def _run(self, work: Callable[[], T], *, file_timeout: bool) -> T:
        async with self._lock:
            self.operations += 1
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._executor, work)
            except BusTimeout as exc:
                if file_timeout and self.on_timeout is not None:
                    self.on_timeout(exc)
                raise

    async def call(self, address: int, cmd: int, request=None, *, file_timeout: bool = True,
                   **kwargs):
        """One unicast transaction (see :meth:`Bus.call`).  ``file_timeout=False`` is for a
        caller that files a better fault for the timeout itself (the watch: ``card.offline``)."""
        return await self._run(lambda: self.bus.call(address, cmd, request, **kwargs),
                               file_timeout=file_timeout)

    async def broadcast(self, cmd: int, request=None) -> None:
        await self.run(lambda bus: (bus.broadcast(cmd, request), bus.wait_idle()))

    def statistics(self) -> BusStatistics:
        """The bus's counters copied at one instant (:meth:`Bus.snapshot`, under the bus's
        statistics lock) with the operations this owner ran: what ``status`` and the cards
        view read while the bus thread keeps counting."""
        return replace(self.bus.snapshot(), operations=self.operations)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.bus.close()
