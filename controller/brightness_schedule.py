"""The brightness schedule: daily ``HH:MM → percent`` entries, each reached by a fade.

Pure computation, no I/O and no clock of its own: the caller passes the time
(a :class:`~datetime.datetime`, naive local time or aware), so a test can
walk a simulated day in a loop and the service (``controller/service/
brightness.py``) runs the same code on the wall clock.

An entry takes effect at its time of day and holds until the next entry (the
last one of the day holds past midnight until the first).  From its time the
brightness fades from where it was to the entry's percentage over ``fade_s``
seconds, in at most :data:`FADE_STEPS_MAX` steps and at most one step a
second: every step is a ``SET_BRIGHTNESS`` broadcast on the card bus, which
other jobs share, and which every card writes to its flash (the firmware
keeps its level across power cuts), so a fade is a few dozen writes, not a
thousand.  64 steps of a 16-bit level are too fine for the eye to see jump.

A hand setting overrides the schedule until the next entry's time
(:meth:`Schedule.next_at`); that entry then fades from the hand setting.

Times that do not exist or exist twice on a day the clocks change are what
:mod:`datetime` makes of them; walls mostly run in places that keep one time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from controller.brightness import is_percent
from controller.errors import ConfigError

#: Most steps one fade takes (each a broadcast and a flash write on every card).
FADE_STEPS_MAX = 64
#: Least time between two steps of a fade, in seconds (so at most one broadcast a second).
STEP_MIN_S = 1.0
#: Longest fade: 6 hours.  A longer "fade" is a schedule with more entries.
FADE_MAX_S = 6 * 3600
#: Most entries a day: one every quarter of an hour is already more than any wall needs.
ENTRIES_MAX = 96
_ENTRY = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*=\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*$")
_TIME = re.compile(r"^(\d{2}):(\d{2})$")


@dataclass(frozen=True, order=True)
class Entry:
    """From ``minute`` (of the day, 0..1439) the wall is at ``percent`` of full."""

    minute: int
    percent: float

    @property
    def time(self) -> str:
        return f"{self.minute // 60:02d}:{self.minute % 60:02d}"

    def __str__(self) -> str:
        return f"{self.time}={self.percent:g}"


def minute_of(text: str) -> int:
    """``"07:30"`` → 450; a time that is not one (``25:00``, ``07:75``, ``7:30``) is refused
    with why.  Two digits each, as the API's schema says; the command line pads ``7:00``."""
    m = _TIME.match(text.strip())
    if not m:
        raise ConfigError(f"{text!r} is not a time of day: write HH:MM, such as 07:00")
    hours, minutes = int(m[1]), int(m[2])
    if hours > 23:
        raise ConfigError(f"{text} is not a time of day: hours go 00..23 (midnight is 00:00)")
    if minutes > 59:
        raise ConfigError(f"{text} is not a time of day: minutes go 00..59")
    return hours * 60 + minutes


def parse_entry(text: str) -> Entry:
    """``"07:00=80"`` (or ``80%``) → an entry; anything else is refused saying what is wrong."""
    m = _ENTRY.match(text)
    if not m:
        raise ConfigError(f"{text!r} is not a schedule entry: write TIME=PERCENT, such as 07:00=80")
    return entry(minute_of(f"{int(m[1]):02d}:{m[2]}"), float(m[3]))


def entry(minute: int, percent: object) -> Entry:
    """An entry from its parts, checked: the API's form (``{"time": …, "percent": …}``) ends here."""
    if not is_percent(percent):
        raise ConfigError(f"{_clock(minute)}: brightness {percent!r} is not a percentage 0..100")
    assert isinstance(percent, (int, float))      # is_percent says so; for the type checker
    return Entry(minute, float(percent))


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True)
class Schedule:
    """Daily entries (sorted, at distinct times) and the fade that reaches each."""

    entries: tuple[Entry, ...]
    fade_s: float = 0.0

    @classmethod
    def of(cls, entries: list[Entry], fade_s: float) -> Schedule:
        """Check and sort: at least one entry, distinct times, a fade that ends before the next
        entry begins (otherwise the next fade would start from a level never reached)."""
        if not entries:
            raise ConfigError("a schedule needs at least one entry, such as 07:00=80 "
                              "(to remove the schedule, clear it)")
        if len(entries) > ENTRIES_MAX:
            raise ConfigError(f"a schedule holds at most {ENTRIES_MAX} entries, not {len(entries)}")
        ordered = tuple(sorted(entries))
        for a, b in zip(ordered, ordered[1:]):
            if a.minute == b.minute:
                raise ConfigError(f"{a.time} appears twice in the schedule; give each time once")
        if isinstance(fade_s, bool) or not isinstance(fade_s, (int, float)) or not (
                0 <= fade_s <= FADE_MAX_S):
            raise ConfigError(f"the fade must be 0..{FADE_MAX_S} seconds, not {fade_s!r}")
        gaps = [(b.minute - a.minute) % 1440 or 1440
                for a, b in zip(ordered, ordered[1:] + ordered[:1])]
        if fade_s >= min(gaps) * 60:
            raise ConfigError(f"a fade of {fade_s:g} s is not over before the next entry "
                              f"(the closest are {min(gaps)} min apart); give a shorter fade")
        return cls(ordered, float(fade_s))

    @classmethod
    def parse(cls, texts: list[str], fade_s: float) -> Schedule:
        """The command line's form: ``["07:00=80", "22:00=30"]``."""
        return cls.of([parse_entry(t) for t in texts], fade_s)

    @classmethod
    def from_dict(cls, data: object) -> Schedule:
        """The stored and the API's form: ``{"entries": [{"time", "percent"}], "fade_s"}``."""
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise ConfigError('a schedule is {"entries": [{"time": "07:00", "percent": 80}, …], '
                              '"fade_s": 60}')
        unknown = sorted(set(data) - {"entries", "fade_s"})
        if unknown:
            raise ConfigError(f"a schedule takes entries and fade_s, not {unknown[0]!r}")
        entries = []
        for item in data["entries"]:
            if not isinstance(item, dict) or set(item) != {"time", "percent"} or not isinstance(
                    item["time"], str):
                raise ConfigError('each schedule entry is {"time": "HH:MM", "percent": 0..100}')
            entries.append(entry(minute_of(item["time"]), item["percent"]))
        return cls.of(entries, data.get("fade_s", 0))

    def as_dict(self) -> dict:
        return {"entries": [{"time": e.time, "percent": e.percent} for e in self.entries],
                "fade_s": self.fade_s}

    # ---------------------------------------------------------------- time

    def _around(self, now: datetime) -> list[tuple[datetime, Entry]]:
        """Every entry's occurrence yesterday, today and tomorrow, in time order."""
        return sorted(((datetime.combine(now.date() + timedelta(days=d), time(e.minute // 60,
                                                                                e.minute % 60),
                                         tzinfo=now.tzinfo), e)
                       for d in (-1, 0, 1) for e in self.entries), key=lambda x: x[0])

    def current(self, now: datetime) -> tuple[datetime, Entry, Entry]:
        """The entry in force at ``now``: when it began, it, and the entry before it."""
        around = self._around(now)
        i = max(i for i, (at, _) in enumerate(around) if at <= now)
        return around[i][0], around[i][1], around[i - 1][1]

    def next_at(self, now: datetime) -> tuple[datetime, Entry]:
        """The next entry strictly after ``now``: when, and which (a hand setting lasts till then)."""
        return next((at, e) for at, e in self._around(now) if at > now)

    def steps(self) -> int:
        """How many steps a fade takes: one a second at most, :data:`FADE_STEPS_MAX` at most."""
        return max(1, min(FADE_STEPS_MAX, math.floor(self.fade_s / STEP_MIN_S)))

    def percent_at(self, now: datetime, start: float | None = None) -> tuple[float, bool]:
        """The wanted percentage at ``now``, and whether a fade is under way.

        ``start`` is where the fade into the current entry begins: the hand
        setting that held until this entry, or (None) the previous entry's
        percentage.  The fade moves in :meth:`steps` equal steps, the first
        at the entry's time and each ``fade_s / steps`` (at least a second)
        after the one before, so the wanted value changes at most once a
        second and at most 64 times.
        """
        began, current, previous = self.current(now)
        origin = previous.percent if start is None else start
        elapsed = (now - began).total_seconds()
        if self.fade_s <= 0 or elapsed >= self.fade_s:
            return current.percent, False
        n = self.steps()
        done = min(n, math.floor(elapsed / self.fade_s * n) + 1)
        return origin + (current.percent - origin) * done / n, done < n
