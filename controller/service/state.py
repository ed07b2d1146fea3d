"""What the running controller holds: the screen, the bus, the jobs, the reports.

:class:`Service` is the API's view of the board.  Everything that touches
the bus goes through its :class:`BusOwner`; everything that takes seconds is
a job; reports are files under ``STATE/reports`` so they survive restarts.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from dataclasses import asdict
from pathlib import Path

from controller.config import Layout
from controller.errors import LedwardenError, NotFound
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.report.acceptance import write_acceptance
from controller.service.busowner import BusOwner
from controller.service.commission import CardSettings, Commissioning, card_summary, discover_all
from controller.service.jobs import Job, JobManager
from controller.version import software_version

REPORT_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(json|html)$")


class Service:
    def __init__(self, layout: Layout, settings: CardSettings, owner: BusOwner, state_dir: Path, *,
                 screen_file: str, bus_url: str, fingerprint: str = "", frame_loop=None) -> None:
        self.layout = layout
        self.settings = settings
        self.owner = owner
        self.state_dir = Path(state_dir)
        self.reports_dir = self.state_dir / "reports"
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        self.screen_file = screen_file
        self.bus_url = bus_url
        self.fingerprint = fingerprint
        self.frame_loop = frame_loop
        self.jobs = JobManager()
        self.cards: dict[int, dict] = {}
        self.started = time.time()

    async def start(self) -> None:
        if self.frame_loop is not None:
            await self.frame_loop.start()

    async def stop(self) -> None:
        await self.jobs.shutdown()
        if self.frame_loop is not None:
            await self.frame_loop.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.owner.close)

    # ---------------------------------------------------------------- views

    def controller_info(self) -> dict:
        return {"host": socket.gethostname(), "bus": self.bus_url, "baud": self.owner.bus.baud,
                "fingerprint": self.fingerprint, "software": software_version()}

    def status(self) -> dict:
        active = [j.as_dict(full=False) for j in self.jobs.jobs.values()
                  if j.state in ("queued", "running", "waiting")]
        return {
            "screen": {"name": self.layout.name, "width": self.layout.width,
                       "height": self.layout.height, "cabinets": len(self.layout.cabinets),
                       "file": self.screen_file},
            "bus": {"port": self.bus_url, "baud": self.owner.bus.baud,
                    "operations": self.owner.operations,
                    "dropped_frames": dict(self.owner.bus.deframer.dropped)},
            "frame_loop": self.frame_loop.stats() if self.frame_loop is not None else None,
            "jobs": active,
            "uptime_s": round(time.time() - self.started, 1),
        }

    def cards_view(self) -> dict:
        out = []
        for cab in self.layout.cabinets:
            known = self.cards.get(cab.address)
            stats = self.owner.bus.stats.get(cab.address)
            out.append({"address": cab.address, "x": cab.x, "y": cab.y,
                        "found": known is not None, "card": known,
                        "link": stats.as_dict() if stats else None})
        extra = [{"address": a, "card": k} for a, k in self.cards.items()
                 if a not in {cab.address for cab in self.layout.cabinets}]
        return {"cabinets": out, "unexpected": extra}

    # ---------------------------------------------------------------- jobs

    def start_bus_job(self, kind: str, body, params: dict, who: str) -> Job:
        """Start a job that needs the bus to itself for a while (commissioning, self-tests,
        upgrades …): refused while another such job runs, because interleaving a firmware
        transfer with a detection, say, would make both wrong."""
        running = self.jobs.running_exclusive()
        if running is not None:
            raise LedwardenError(f"job {running.id} ({running.kind}) is still running; wait for "
                                 f"it or cancel it before starting {kind}")
        return self.jobs.start(kind, body, params, who, exclusive=True)

    def start_commissioning(self, unattended: bool, who: str) -> Job:
        async def body(job: Job) -> dict:
            run = Commissioning(job, self.owner, self.layout, self.settings, unattended=unattended,
                                screen_file=self.screen_file, controller_info=self.controller_info())
            report = await run.run()
            for cab in report["cabinets"]:
                if cab["found"]:
                    self.cards[cab["address"]] = {k: cab[k] for k in ("serial", "model", "firmware", "bank")}
            stamp = report["started"].replace(":", "").replace("-", "")
            json_path, html_path = write_acceptance(report, self.reports_dir, f"acceptance-{stamp}")
            job.note(f"report written: {html_path.name}")
            return {"result": report["result"], "summary": report["summary"],
                    "report": {"json": json_path.name, "html": html_path.name}}
        return self.start_bus_job("commission", body, {"unattended": unattended}, who)

    def start_discovery(self, who: str) -> Job:
        async def body(job: Job) -> dict:
            result = await discover_all(self.owner, job)
            self.cards = {k.address: card_summary(k) for k in result.cards}
            return {"cards": [k.as_dict() for k in result.cards], "garbled": result.garbled}
        return self.start_bus_job("discovery", body, {}, who)

    def start_detection(self, addresses: list[int] | None, who: str) -> Job:
        targets = addresses or [cab.address for cab in self.layout.cabinets]

        async def body(job: Job) -> dict:
            result = {}
            for n, address in enumerate(targets):
                job.step(f"LED detection on card 0x{address:02X}", n, len(targets))
                try:
                    dead = await self.owner.run(ops.detect, address)
                    result[f"0x{address:02X}"] = [asdict(d) for d in dead]
                except LedwardenError as exc:
                    result[f"0x{address:02X}"] = {"error": str(exc)}
                    job.note(str(exc))
            job.advance(len(targets), len(targets))
            return result
        return self.start_bus_job("detect", body, {"addresses": targets}, who)

    # ---------------------------------------------------------------- health

    async def health_check(self) -> tuple[bool, str]:
        """Is this controller fit to keep running?  (ok, one-line summary).

        What a freshly upgraded controller must pass before its slot is marked
        good: every configured card answers on the bus.  A controller that
        cannot talk to its cards is no better than the one it replaced.
        """
        missing = []
        for cab in self.layout.cabinets:
            try:
                await self.owner.call(cab.address, c.Cmd.PING)
            except LedwardenError:
                missing.append(f"0x{cab.address:02X}")
        if missing:
            return False, f"{len(missing)} of {len(self.layout.cabinets)} cards do not answer: {', '.join(missing)}"
        return True, f"all {len(self.layout.cabinets)} cards answer"

    # ---------------------------------------------------------------- quick actions

    async def show_pattern(self, request: c.TestPattern, addresses: list[int] | None) -> dict:
        if addresses is None:
            await self.owner.broadcast(c.Cmd.TEST_PATTERN, request)
            return {"broadcast": True, "pattern": c.Pattern(request.pattern).name.lower()}
        results = {}
        for address in addresses:
            try:
                await self.owner.call(address, c.Cmd.TEST_PATTERN, request)
                results[f"0x{address:02X}"] = "ok"
            except LedwardenError as exc:
                results[f"0x{address:02X}"] = {"error": str(exc)}
        return {"broadcast": False, "pattern": c.Pattern(request.pattern).name.lower(),
                "cards": results}

    async def set_brightness(self, level: int, addresses: list[int] | None) -> dict:
        results = {}
        for address in addresses or [cab.address for cab in self.layout.cabinets]:
            try:
                results[f"0x{address:02X}"] = await self.owner.run(ops.write_brightness, address, level)
            except LedwardenError as exc:
                results[f"0x{address:02X}"] = {"error": str(exc)}
        return {"level": level, "cards": results}

    # ---------------------------------------------------------------- reports

    def reports(self) -> list[dict]:
        files = sorted(self.reports_dir.glob("*.json"), reverse=True)
        return [{"name": p.stem, "json": p.name, "html": p.with_suffix(".html").name,
                 "size": p.stat().st_size} for p in files]

    def report_path(self, name: str) -> Path:
        if not REPORT_NAME.match(name):
            raise LedwardenError(f"{name!r} is not a report name")
        path = self.reports_dir / name
        if not path.is_file():
            raise NotFound(f"no report {name!r}")
        return path
