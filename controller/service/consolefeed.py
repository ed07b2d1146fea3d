"""What the console shows live: the wall as the reports draw it, and one snapshot pushed by SSE.

The watch (:mod:`.watch`) keeps each card's last status and when it last
answered, the jobs (:mod:`.jobs`) keep their state, progress and question,
the fault log keeps its counts, and a finished LED detection job keeps its
result.  Nothing here asks the bus: the console reads what those parts
already hold, so ten open consoles cost the bus nothing.

:class:`LiveFeed` builds one small snapshot of it all once a second while
someone is listening, and wakes every ``GET /console/events`` stream when the
snapshot changed; each stream then sends it as one server-sent event.  One
snapshot for all listeners, not one per listener, keeps the cost of a
console on a small board flat.

The wall itself is the reports' picture (:func:`controller.report.wall.wall_svg`)
drawn from the live state, served as ``GET /console/wall.svg``: the page
reloads it when the snapshot's ``wall`` part changes, so the engineer in the
plant room and the acceptance report show the same wall the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable

from controller.cardaddress import hex_address
from controller.cardresults import is_error
from controller.jsonin import JsonObject
from controller.protocol.bus import LinkStats
from controller.report.wall import wall_svg
from controller.screenmap import cabinet_entry
from controller.selftest.profiles import PROFILES
from controller.service.jobs import JobState
from controller.service.state import Service

log = logging.getLogger("ledwarden.console")

#: How often the shared snapshot is rebuilt while anyone listens.
TICK_S = 1.0
#: The most active faults a snapshot carries (the most recently seen); the page says how many more.
MAX_FAULTS = 50
#: A comment line this often keeps proxies and the browser from closing a quiet stream.
KEEPALIVE_S = 15.0


class InspectionLeds:
    """The dead LEDs of the newest stored self-test that ran LED detection (the quarterly
    inspection), read from the history only when a newer run appears."""

    def __init__(self) -> None:
        self._newest: int | None = None
        self.started = ""
        self.by_address: dict[int, list[JsonObject]] = {}

    def refresh(self, service: Service) -> None:
        history = service.history
        runs = [run for name, p in PROFILES.items() if p.detect for run in history.runs(1, name)]
        if not runs:
            return
        newest = max(runs, key=lambda run: run["id"])
        if newest["id"] != self._newest:
            report = history.report(newest["id"])
            self._newest, self.started = newest["id"], newest["started"]
            self.by_address = {cab["address"]: list(cab.get("dead_leds") or [])
                               for cab in report.get("cabinets", []) if "address" in cab}


def dead_leds(service: Service, inspection: InspectionLeds | None = None) -> dict[int, list[JsonObject]]:
    """Each card's dead LEDs from the newest look at it: a LED detection job, or the newest
    self-test that ran detection, whichever started later (module-local or placed on the screen,
    as the wall drawing takes both); a card nothing has looked at is left out."""
    out: dict[int, list[JsonObject]] = {}
    seen: dict[int, str] = {}
    if inspection is not None:
        out.update(inspection.by_address)
        seen = dict.fromkeys(out, inspection.started)
    for job in sorted(service.jobs.jobs.values(), key=lambda j: j.id):
        if job.kind != "detect" or job.state != JobState.SUCCEEDED or not isinstance(job.result, dict):
            continue
        for key, leds in job.result.items():
            address = int(key, 16)
            if not is_error(leds) and (job.started or "") >= seen.get(address, ""):
                out[address] = list(leds)
    return out


def wall_cabinets(service: Service, inspection: InspectionLeds | None = None) -> list[JsonObject]:
    """The screen file's cabinets as the report's wall drawing takes them, with what is known now:
    answering (the watch heard it, or a discovery found it), its status, its dead LEDs."""
    watch = service.watch
    answered = watch.answered if watch is not None else {}
    statuses = watch.last_status if watch is not None else {}
    dead = dead_leds(service, inspection)
    cabinets = []
    for cab in service.layout.cabinets:
        entry = cabinet_entry(cab)
        status = statuses.get(cab.address)
        entry["found"] = cab.address in answered or (watch is None and cab.address in service.cards)
        if status is not None:
            entry["status"] = {"temperature_c": status.temperature_c, "supply_mv": status.supply_mv,
                               "fan_rpm": status.fan_rpm, "flags": list(status.flag_names)}
        entry["dead_leds"] = dead.get(cab.address, [])
        card = service.cards.get(cab.address) or {}
        entry["firmware"] = card.get("firmware")
        cabinets.append(entry)
    return cabinets


def link_quality(stats: LinkStats | None) -> JsonObject | None:
    """A card's link in three figures: the share of transactions that got an answer, the retries
    it took, and the 99th-percentile round trip (``None`` before the bus has talked to it)."""
    if stats is None or not stats.requests:
        return None
    view = stats.as_dict()
    return {"answered_pct": round(100 * (1 - stats.failures / stats.requests), 1),
            "retries": stats.retries, "p99_ms": (view["rtt_ms"] or {}).get("p99")}


def wall_picture(service: Service, lang: str, inspection: InspectionLeds | None = None,
                 width: int = 960) -> str:
    """``GET /console/wall.svg``: the live wall drawn as the reports draw it, ``width`` wide."""
    layout = service.layout
    screen = {"name": layout.name, "width": layout.width, "height": layout.height}
    return wall_svg(screen, wall_cabinets(service, inspection), lang=lang, max_width_px=width)


def snapshot(service: Service, inspection: InspectionLeds | None = None) -> JsonObject:
    """What every open console shows, in one small JSON object: the cards, the jobs, the active
    faults and their counts, and a digest of the wall (so the page knows when to redraw it)."""
    cards = [{"address": hex_address(c["address"]), "found": c["found"], "status": c["status"],
              "dead_leds": len(c["dead_leds"]), "firmware": c["firmware"]}
             for c in wall_cabinets(service, inspection)]
    wall = hashlib.sha256(json.dumps(cards, sort_keys=True, default=str).encode()).hexdigest()[:16]
    links = service.board.bus.statistics().links       # after the digest: not part of the picture
    for card, cab in zip(cards, service.layout.cabinets, strict=True):
        card["link"] = link_quality(links.get(cab.address))
    jobs = [j.as_dict(full=False) for j in sorted(service.jobs.jobs.values(),
                                                   key=lambda j: j.id, reverse=True)][:20]
    active = service.faults.list(state="active", limit=MAX_FAULTS)     # from memory, not SQLite
    return {"screen": {"name": service.layout.name, "cabinets": len(cards)}, "wall": wall,
            "cards": cards, "jobs": jobs, "faults": service.faults.counts(),
            "active_faults": [f.as_dict() for f in active]}


class LiveFeed:
    """One snapshot for every listener, rebuilt each ``tick_s`` while anyone listens."""

    def __init__(self, service: Service, tick_s: float = TICK_S) -> None:
        self.service = service
        self.tick_s = tick_s
        self.listeners = 0
        self.current: JsonObject | None = None
        self.text = ""
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self.closed = False
        self.inspection = InspectionLeds()

    async def _run(self) -> None:
        while self.listeners:
            fresh: JsonObject | None
            try:
                await asyncio.to_thread(self.inspection.refresh, self.service)  # SQLite, off the loop
                fresh = snapshot(self.service, self.inspection)
            except Exception:           # a bug must not end every console's stream
                log.exception("console snapshot failed")
                fresh = self.current
            if fresh != self.current and fresh is not None:
                self.current, self.text = fresh, json.dumps(fresh, default=str)
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(self.tick_s)
        self._task = None

    def _ensure_running(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="console-feed")

    async def stream(self, still_allowed: Callable[[], bool]) -> AsyncIterator[str | None]:
        """Yield the snapshot's JSON text now and whenever it changes, ``None`` as a keep-alive
        after :data:`KEEPALIVE_S` of quiet; stops when ``still_allowed()`` turns false (the
        session ended or expired)."""
        self.listeners += 1
        try:
            if self.current is None or self._task is None:
                await asyncio.to_thread(self.inspection.refresh, self.service)
                self.current = snapshot(self.service, self.inspection)
                self.text = json.dumps(self.current, default=str)
            self._ensure_running()
            sent = self.text
            yield sent
            while still_allowed() and not self.closed:
                async with self._changed:
                    try:
                        await asyncio.wait_for(self._changed.wait(), KEEPALIVE_S)
                    except TimeoutError:
                        pass
                if not still_allowed() or self.closed:
                    return
                if self.text != sent:
                    sent = self.text
                    yield sent
                else:
                    yield None
        finally:
            self.listeners -= 1

    async def wake(self) -> None:
        """Let every stream check at once whether it may go on (a session just ended)."""
        async with self._changed:
            self._changed.notify_all()

    async def stop(self) -> None:
        """End every stream (the service is stopping) and the snapshot task."""
        self.closed = True
        async with self._changed:
            self._changed.notify_all()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
