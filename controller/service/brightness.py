"""The wall's current brightness: set by hand or by the schedule, kept on the controller.

Brightness is the cards' dimming level (``docs/correction.md``,
"Brightness"); the screen file's ``[correction] brightness`` is only the
level commissioning starts from.  What the wall should show *now* is state:
a hand setting (for the whole wall or some cards), the schedule
(:mod:`controller.brightness_schedule`), or, when neither was ever given,
the screen file's default.  :class:`WallBrightness` holds that state in
``STATE/brightness.json`` (written beside and renamed over, so a power cut
leaves the old or the new file, never half of one), runs the schedule, and
answers the one question every other part asks: which level should this card
hold now (:meth:`WallBrightness.level`).  The ``cards.config`` self-test
check and commissioning compare and write that, so setting the wall to 40 %
no longer makes the next self-test fail.

A hand setting lasts until the schedule's next entry, which then fades from
it.  Fades are ``SET_BRIGHTNESS`` broadcasts through the bus owner, one short
operation each, at most one a second and at most 64 a fade, so jobs that
share the bus keep their turns.  Every change is an event in the fault log
(``brightness.set``, ``schedule.changed``, severity info, resolved at once so
each change is its own entry) naming who made it.

The clock is injected (``clock``: epoch seconds; ``tz``: the schedule's time
zone, local by default), so a test walks a simulated day through :meth:`tick`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TypedDict

from controller.brightness import LEVEL_MAX, level_of_percent, percent_of_level
from controller.brightness_schedule import STEP_MIN_S, Schedule
from controller.cardaddress import hex_address
from controller.cardresults import per_card, to_json
from controller.errors import ConfigError, LedwardenError
from controller.faultlog.model import iso
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.report.page import write_atomic
from controller.service.busowner import BusOwner
from controller.service.quickactions import CardFailure

log = logging.getLogger("ledwarden.brightness")

STATE_FILE = "brightness.json"
#: How often the schedule is looked at, in seconds (a fade step is never shorter).
TICK_S = 1.0
#: The fault log's source for brightness events: the controller's own decision, no one card's.
SOURCE = "controller"


class BrightnessSet(TypedDict):
    """The answer to ``POST /brightness``: each card's read-back level, or why it failed."""

    level: int
    percent: float
    until: str | None
    cards: dict[str, int | CardFailure]


@dataclass(frozen=True)
class Hand:
    """A level set by hand, who set it and when, holding until ``until`` (epoch s; None: no end)."""

    level: int
    until: float | None
    who: str
    at: float

    def holds(self, now: float) -> bool:
        return self.until is None or now < self.until

    def as_view(self) -> dict:
        return {"percent": percent_of_level(self.level), "level": self.level,
                "until": None if self.until is None else iso(self.until), "by": self.who,
                "at": iso(self.at)}


class WallBrightness:
    """The wall's wanted brightness, its schedule, and the broadcasts that bring cards to it."""

    def __init__(self, owner: BusOwner, addresses: list[int], default_level: int, state_dir: Path,
                 faults=None, *, clock: Callable[[], float] = time.time, tz: tzinfo | None = None,
                 tick_s: float = TICK_S) -> None:
        self.owner, self.addresses, self.default_level = owner, list(addresses), default_level
        self.path = Path(state_dir) / STATE_FILE
        self.faults, self.clock, self.tz, self.tick_s = faults, clock, tz, tick_s
        self.hand: Hand | None = None
        self.cards: dict[int, Hand] = {}
        self.schedule: Schedule | None = None
        self.schedule_by: dict = {}
        #: The level the last broadcast or whole-wall write gave every card (None: not known).
        self.applied: int | None = None
        #: A level on its way to the cards (a broadcast queued for the bus), so a check that reads
        #: a card meanwhile accepts either.
        self.pending: int | None = None
        self.last_sent: float | None = None
        #: Broadcasts sent by the schedule since start (status shows it; tests count it).
        self.broadcasts = 0
        self._task: asyncio.Task | None = None
        self._load()

    # ---------------------------------------------------------------- persistence

    def _load(self) -> None:
        """Read the state file; a damaged one is set aside (and said), not fatal: a wall at its
        screen-file default beats a controller that will not start."""
        try:
            data = json.loads(self.path.read_text())
            hand = data.get("hand")
            self.hand = Hand(**hand) if hand else None
            self.cards = {int(a): Hand(**h) for a, h in data.get("cards", {}).items()}
            sched = data.get("schedule")
            if sched:
                self.schedule_by = {"by": sched.pop("by", ""), "at": sched.pop("at", None)}
                self.schedule = Schedule.from_dict(sched)
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError, ConfigError) as exc:
            aside = self.path.with_suffix(".json.damaged")
            try:
                self.path.replace(aside)
                kept = f"it was moved to {aside.name}"
            except OSError as why:
                kept = f"it could not be moved aside either ({why.strerror or why})"
            self.hand, self.cards, self.schedule = None, {}, None
            text = (f"the brightness state {self.path} could not be read ({exc}); {kept}, and "
                    f"the wall starts at the screen file's brightness")
            log.error("%s", text)
            if self.faults is not None:
                self.faults.record("brightness.state_unreadable", "warning", SOURCE, {"text": text})

    def _save(self) -> None:
        sched = None if self.schedule is None else self.schedule.as_dict() | self.schedule_by
        data = {"hand": self.hand and asdict(self.hand),
                "cards": {str(a): asdict(h) for a, h in self.cards.items()}, "schedule": sched}
        write_atomic(self.path, json.dumps(data, indent=1) + "\n")

    def _journal(self, code: str, who: str, details: dict) -> None:
        """One event per change: recorded and resolved at once, so the next is an entry of its own."""
        if self.faults is None:
            return
        self.faults.record(code, "info", SOURCE, details | {"by": who})
        self.faults.resolve(code, SOURCE, by=who or "controller")

    # ---------------------------------------------------------------- what the wall should show

    def _local(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, self.tz)

    def _next_entry(self, now: float) -> float | None:
        if self.schedule is None:
            return None
        return self.schedule.next_at(self._local(now))[0].timestamp()

    def wall(self, now: float | None = None) -> tuple[int, str, bool]:
        """The whole wall's wanted level now, where it comes from (``hand``, ``schedule``,
        ``screen file``), and whether a fade is under way."""
        now = self.clock() if now is None else now
        if self.hand is not None and self.hand.holds(now):
            return self.hand.level, "hand", False
        if self.schedule is not None:
            local = self._local(now)
            start = None
            if self.hand is not None and self.hand.until is not None:
                began = self.schedule.current(local)[0].timestamp()
                if abs(began - self.hand.until) < 1:      # the hand held until this very entry
                    start = percent_of_level(self.hand.level)
            percent, fading = self.schedule.percent_at(local, start)
            return level_of_percent(percent), "schedule", fading
        return self.default_level, "screen file", False

    def level(self, address: int | None = None) -> int:
        """The level a card (or, with no address, the wall) should hold now: what commissioning
        writes and the ``cards.config`` check compares."""
        now = self.clock()
        hand = self.cards.get(address) if address is not None else None
        if hand is not None and hand.holds(now):
            return hand.level
        return self.wall(now)[0]

    def accepts(self, address: int, level: int) -> bool:
        """Whether a card reading ``level`` holds what it should: the wanted level, or during a
        fade the step last sent or on its way (a check reads cards between two steps)."""
        now = self.clock()
        hand = self.cards.get(address)
        if hand is not None and hand.holds(now):
            return level == hand.level
        return level in {self.wall(now)[0], self.applied, self.pending}

    def fraction(self, address: int | None = None) -> float:
        """The cards' dimming now as 0..1 (the step a fade is at, else the wanted level): the
        power limiter multiplies its estimate of a cabinet's current by it."""
        now = self.clock()
        hand = self.cards.get(address) if address is not None else None
        if hand is not None and hand.holds(now):
            return hand.level / LEVEL_MAX
        level = self.applied if self.applied is not None else self.wall(now)[0]
        return level / LEVEL_MAX

    def view(self) -> dict:
        """What ``status`` and ``GET /brightness`` show: percent first, where it comes from, the
        schedule and its next entry."""
        now = self.clock()
        level, source, fading = self.wall(now)
        nxt = None
        if self.schedule is not None:
            at, entry = self.schedule.next_at(self._local(now))
            nxt = {"at": iso(at.timestamp()), "time": entry.time, "percent": entry.percent}
        cards = {hex_address(a): h.as_view() for a, h in sorted(self.cards.items()) if h.holds(now)}
        return {"percent": percent_of_level(level), "level": level, "source": source,
                "fading": fading, "hand": self.hand.as_view() if source == "hand" and self.hand
                else None, "cards": cards, "default_percent": percent_of_level(self.default_level),
                "schedule": None if self.schedule is None else self.schedule.as_dict() | self.schedule_by,
                "next": nxt, "broadcasts": self.broadcasts}

    # ---------------------------------------------------------------- changes

    async def set_by_hand(self, level: int, addresses: list[int] | None, who: str) -> BrightnessSet:
        """Write ``level`` to the given cards (default: every cabinet), each read back, and hold
        it until the schedule's next entry."""
        now = self.clock()
        until = self._next_entry(now)
        async def write(address: int) -> int:
            return await self.owner.run(ops.write_brightness, address, level)
        results: dict[str, int | CardFailure] = to_json(
            await per_card(addresses or self.addresses, write))
        hand = Hand(level, until, who, now)
        if addresses is None:
            self.hand, self.cards, self.applied, self.last_sent = hand, {}, level, now
        else:
            self.cards.update({a: hand for a in addresses})
        await asyncio.to_thread(self._save)
        where = "every cabinet" if addresses is None else ", ".join(map(hex_address, addresses))
        await asyncio.to_thread(self._journal, "brightness.set", who, {
            "text": f"brightness {percent_of_level(level):g} % on {where} by hand"
                    + (f" until {iso(until)}" if until else ""),
            "percent": percent_of_level(level), "cards": where})
        return {"level": level, "percent": percent_of_level(level),
                "until": None if until is None else iso(until), "cards": results}

    async def set_schedule(self, schedule: Schedule | None, who: str) -> dict:
        """Replace the schedule (None clears it).  A new schedule takes over at once (hand
        settings end: whoever sets a schedule wants it in force); clearing it keeps the wall at
        the level it shows now, as a hand setting with no end."""
        now = self.clock()
        if schedule is None:
            if self.schedule is not None:
                level = self.wall(now)[0]
                self.hand = Hand(level, None, who, now)
                # cards set by hand until an entry that no longer exists: until changed instead
                self.cards = {a: Hand(h.level, None, h.who, h.at) for a, h in self.cards.items()
                              if h.holds(now)}
            self.schedule, self.schedule_by = None, {}
            text = "brightness schedule cleared"
        else:
            self.schedule, self.schedule_by = schedule, {"by": who, "at": iso(now)}
            if self.cards:
                self.applied = None     # the cards set by hand are brought to the schedule too
            self.hand, self.cards = None, {}
            text = (f"brightness schedule {' '.join(map(str, schedule.entries))}, "
                    f"fade {schedule.fade_s:g} s")
        await asyncio.to_thread(self._save)
        await asyncio.to_thread(self._journal, "schedule.changed", who, {
            "text": text, "schedule": None if schedule is None else schedule.as_dict()})
        return self.view()

    # ---------------------------------------------------------------- running the schedule

    def _expire(self, now: float) -> None:
        """Drop hand settings whose time is over (kept through the fade that starts from them)."""
        fade = self.schedule.fade_s if self.schedule is not None else 0.0
        over = [a for a, h in self.cards.items() if not h.holds(now)]
        wall_over = (self.hand is not None and self.hand.until is not None
                     and now >= self.hand.until + fade)
        if over or wall_over:
            for a in over:
                del self.cards[a]
            if over:
                self.applied = None     # those cards still hold their own level: broadcast again
            if wall_over:
                self.hand = None
            self._save()

    async def tick(self) -> int | None:
        """Bring the cards to the wanted level if they are not there: one broadcast, at most one
        a second.  Returns the level sent, or None.  The screen file's default is not pushed:
        commissioning writes it, and a controller nobody has told anything leaves cards alone."""
        now = self.clock()
        await asyncio.to_thread(self._expire, now)
        level, source, _ = self.wall(now)
        if level == self.applied or (self.applied is None and source == "screen file"):
            return None
        if self.last_sent is not None and 0 <= now - self.last_sent < STEP_MIN_S:
            return None           # (a clock set back is no reason to stop sending)
        self.pending = level
        try:
            await self.owner.broadcast(c.Cmd.SET_BRIGHTNESS, c.Brightness(level))
        except LedwardenError as exc:
            log.warning("brightness broadcast of %d failed (%s); trying again", level, exc)
            return None
        finally:
            self.pending = None
        self.applied, self.last_sent = level, now
        self.broadcasts += 1
        for address, hand in list(self.cards.items()):   # cards set by hand keep their level
            if hand.holds(now):
                try:
                    await self.owner.call(address, c.Cmd.SET_BRIGHTNESS, c.Brightness(hand.level))
                except LedwardenError as exc:
                    log.warning("card %s keeps no hand brightness: %s", hex_address(address), exc)
        return level

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="brightness")

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:     # a bad tick must not end the schedule; the next one tries again
                log.exception("brightness schedule tick failed")
            await asyncio.sleep(self.tick_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
