"""The quarterly calendar: points, catch-up after a missed run, no run on a first boot."""

from __future__ import annotations

import asyncio
from datetime import datetime

from controller.errors import LedwardenError
from controller.selftest import schedule as sch
from controller.selftest.history import History


def test_calendar_points_are_the_first_of_each_quarter():
    assert sch.next_point(datetime(2026, 11, 22, 9)) == datetime(2027, 1, 1)
    assert sch.next_point(datetime(2027, 1, 1)) == datetime(2027, 4, 1)
    assert sch.next_point(datetime(2027, 3, 31, 23, 59)) == datetime(2027, 4, 1)
    assert sch.next_point(datetime(2027, 9, 30)) == datetime(2027, 10, 1)


def test_a_missed_point_is_due_at_once_like_persistent_true():
    last = datetime(2026, 12, 1)
    assert sch.due(last, datetime(2026, 12, 24)) == datetime(2027, 1, 1)
    # off from Christmas to 10 January: the 1 January run is caught up on start
    assert sch.due(last, datetime(2027, 1, 10, 8)) == datetime(2027, 1, 10, 8)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Job:
    id = 1


def run_briefly(scheduler) -> None:
    async def go():
        scheduler.start()
        await asyncio.sleep(0.05)
        await scheduler.stop()
    asyncio.run(go())


def test_scheduler_runs_when_due_stamps_durably_and_retries_when_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(sch, "SLICE_S", 0.01)
    monkeypatch.setattr(sch, "RETRY_S", 0.01)
    clock = FakeClock(datetime(2026, 11, 22, 10))
    started = []

    async def start_run():
        started.append(clock.now)
        return Job()

    history = History(tmp_path / "selftest.db")
    scheduler = sch.Scheduler(history, start_run, clock=clock)
    run_briefly(scheduler)
    assert started == []                                    # a first boot does not inspect
    assert scheduler.status()["next"] == "2027-01-01T00:00:00"
    history.close()

    clock.now = datetime(2027, 1, 5, 7)                     # the board was off on 1 January
    history = History(tmp_path / "selftest.db")             # … and has rebooted since
    busy = [True]

    async def start_when_free():
        if busy.pop() if busy else False:
            raise LedwardenError("job 3 (card-upgrade) is still running")
        return await start_run()

    scheduler = sch.Scheduler(history, start_when_free, clock=clock)
    run_briefly(scheduler)
    assert started == [datetime(2027, 1, 5, 7)]
    assert history.setting(sch.STAMP_KEY) == "2027-01-05T07:00:00"
    assert scheduler.status()["next"] == "2027-04-01T00:00:00"
    history.close()


def test_the_builtin_calendar_agrees_with_systemds_quarterly_and_the_timer_unit():
    import re
    import shutil
    import subprocess
    from pathlib import Path

    unit = (Path(__file__).resolve().parents[2] / "deploy" / "systemd"
            / "ledwarden-selftest.timer").read_text()
    assert re.search(r"^OnCalendar=quarterly$", unit, re.M)
    assert re.search(r"^Persistent=true$", unit, re.M)
    if shutil.which("systemd-analyze") is None:
        return
    out = subprocess.run(["systemd-analyze", "calendar", "--iterations=6", "quarterly",
                          "--base-time=2026-11-22 10:00"], capture_output=True, text=True,
                         env={"TZ": "UTC", "PATH": "/usr/bin:/bin"}).stdout
    theirs = [datetime.strptime(m, "%Y-%m-%d %H:%M:%S")
              for m in re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", out)
              if not m.startswith("2026-11-22")]
    ours, t = [], datetime(2026, 11, 22, 10)
    for _ in range(len(theirs)):
        t = sch.next_point(t)
        ours.append(t)
    assert theirs and ours == theirs
