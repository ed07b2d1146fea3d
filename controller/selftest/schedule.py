"""The quarterly inspection on a calendar kept across reboots, catching up a missed run.

It follows systemd's ``OnCalendar=quarterly`` with ``Persistent=true``: the
calendar points are 00:00 local time on 1 January, April, July and October;
the time of the last scheduled run is stored durably; when the service
starts (or wakes) and a calendar point has passed since that time, the run
is due at once — a controller that was off on 1 April inspects when it comes
back.  A board with no record yet counts from its first start, as systemd
does for a timer with no stamp file, so a new install does not inspect on its
first boot.

The service's scheduler (:class:`Scheduler`) is the default; boards that
prefer systemd's timer run ``controller run --schedule off`` and install
``deploy/systemd/ledwarden-selftest.timer``.  Either way a run that cannot
start (the bus is busy with an upgrade) is retried a few minutes later
rather than skipped.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from controller.errors import LedwardenError
from controller.jsonin import JsonObject
from controller.timeutil import local_now, local_text

log = logging.getLogger("ledwarden.schedule")

QUARTER_MONTHS = (1, 4, 7, 10)
STAMP_KEY = "schedule.quarterly.last"
RETRY_S = 300
#: Sleep in slices so a clock set forward (NTP after a cold start) is noticed soon.
SLICE_S = 60


def next_point(after: datetime) -> datetime:
    """The first quarterly calendar point strictly after ``after`` (naive local time)."""
    year = after.year
    for month in QUARTER_MONTHS + (13,):
        y, m = (year + 1, 1) if month == 13 else (year, month)
        point = datetime(y, m, 1)
        if point > after:
            return point
    raise AssertionError("unreachable")


def due(last: datetime, now: datetime) -> datetime:
    """When the next scheduled run is due: the first point after ``last``, or now if it passed."""
    point = next_point(last)
    return now if point <= now else point


class Scheduler:
    """Starts the quarterly profile when due; the stamp lives in the self-test history."""

    def __init__(self, history, start_run, *, clock=local_now) -> None:
        self.history = history
        self.start_run = start_run          # async () -> job; raises LedwardenError when busy
        self.clock = clock
        self._task: asyncio.Task | None = None

    def last(self) -> datetime:
        """When the last quarterly run started; the first call stamps now, so a new board waits a
        quarter rather than inspecting at first boot."""
        stamp = self.history.setting(STAMP_KEY)
        if stamp is None:
            stamp = local_text(self.clock())
            self.history.set_setting(STAMP_KEY, stamp)
        return datetime.fromisoformat(stamp)

    def status(self) -> JsonObject:
        """The last and next run, as ``/api/v1/selftest/schedule`` answers."""
        last = self.last()
        return {"mode": "builtin", "calendar": "quarterly", "persistent": True,
                "last": local_text(last),
                "next": local_text(due(last, self.clock()))}

    async def run_forever(self) -> None:
        """Sleep until the next run is due, start it, stamp it; a busy bus postpones it by a retry
        interval rather than skipping the quarter."""
        while True:
            now = self.clock()
            when = due(self.last(), now)
            if when > now:
                await asyncio.sleep(min(SLICE_S, (when - now).total_seconds()))
                continue
            try:
                job = await self.start_run()
            except LedwardenError as exc:
                log.warning("scheduled inspection could not start (%s); retrying in %d s", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)
                continue
            # Stamp when the run starts: a run killed by a power cut is not repeated in a loop
            # at every boot; its absence from the history shows what happened.
            self.history.set_setting(STAMP_KEY, local_text(self.clock()))
            log.info("scheduled quarterly inspection started as job %s", job.id)

    def start(self) -> None:
        """Run the schedule as a task on the service's event loop."""
        self._task = asyncio.get_running_loop().create_task(self.run_forever(), name="schedule")

    async def stop(self) -> None:
        """Cancel the schedule's task and wait for it, so shutdown leaves no task behind."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)



