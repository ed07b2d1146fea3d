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
from typing import Any, Literal, NotRequired, TypedDict

from controller.cardaddress import hex_address
from controller.config import Layout
from controller.errors import LedwardenError, NotFound
from controller.faultlog import FaultLog
from controller.power import PowerLimiter
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.report.acceptance import write_acceptance
from controller.report.findings import message
from controller.report.i18n import check_lang
from controller.report.page import report_stem
from controller.screenmap import CardSettings, card_summary
from controller.selftest.history import History
from controller.selftest.profiles import profile as get_profile
from controller.selftest.runner import run_profile
from controller.service.brightness import CardFailure, WallBrightness
from controller.service.busowner import BusOwner
from controller.service.commission import Commissioning, add_findings, discover_all
from controller.service.jobs import QUESTION_TIMEOUT_S, UNFINISHED, Job, JobManager, JobState
from controller.service.outputwatch import OutputWatch
from controller.service.watch import CardWatch, bus_timeout_recorder
from controller.version import software_version

#: How a self-test outcome is filed in the fault log.
SEVERITY = {"warn": "warning", "fail": "error", "error": "warning"}
REPORT_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(json|html)$")


class PatternShown(TypedDict):
    """The answer to ``POST /pattern``: a broadcast has no per-card answers to report."""

    broadcast: bool
    pattern: str
    cards: NotRequired[dict[str, Literal["ok"] | CardFailure]]


class Service:
    def __init__(self, layout: Layout, settings: CardSettings, owner: BusOwner, state_dir: Path, *,
                 screen_file: str, bus_url: str, fingerprint: str = "", frame_loop=None,
                 schedule: str = "builtin", watch_interval_s: float = 0.0,
                 question_timeout_s: float = QUESTION_TIMEOUT_S, picture=None) -> None:
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
        #: The live picture (controller.picture.live.Picture), None when not wired (tests).
        self.picture = picture
        #: The current limiter (``controller.power``), when the screen file has ``[power]``:
        #: the watch hands it the cards' current readings (``measured``), status shows it.
        self.power: PowerLimiter | None = None
        self.schedule = schedule          # "builtin": the service runs the quarterly inspection
        self.jobs = JobManager(question_timeout_s)
        #: Set unless this start is a controller upgrade on trial still waiting for its health
        #: verdict (``api_upgrade_controller``); card upgrades wait for it.
        self.trial_judged = asyncio.Event()
        self.trial_judged.set()
        self.cards: dict[int, dict] = {}
        self.started = time.time()
        # A damaged fault log is moved aside, not fatal: a controller that runs the wall and
        # starts a new log beats one that will not start.  The note is the first fault filed.
        self.faults, note = FaultLog.open_or_recover(self.state_dir / "faults.db")
        if note:
            self.faults.record("faultlog.recovered", "warning", "controller", {"text": note})
        self.history = History(self.state_dir / "selftest.db")
        self.owner.on_timeout = bus_timeout_recorder(self.faults)
        self.watch = CardWatch(self, watch_interval_s) if watch_interval_s else None
        #: GET_OUTPUT every ~2 s while video flows to the cards: card.no_video, measured current.
        self.output_watch = OutputWatch(self) if frame_loop is not None and watch_interval_s else None
        #: The wall's current brightness (hand or schedule); the checks compare cards with it.
        self.brightness = WallBrightness(owner, [cab.address for cab in layout.cabinets],
                                         settings.default_level, self.state_dir, self.faults)

    async def start(self) -> None:
        if self.frame_loop is not None:
            await self.frame_loop.start()
        if self.watch is not None:
            self.watch.start()
        if self.output_watch is not None:
            self.output_watch.start()
        self.brightness.start()

    async def stop(self) -> None:
        await self.brightness.stop()
        if self.watch is not None:
            await self.watch.stop()
        if self.output_watch is not None:
            await self.output_watch.stop()
        await self.jobs.shutdown()
        if self.frame_loop is not None:
            await self.frame_loop.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.owner.close)
        await asyncio.get_running_loop().run_in_executor(None, self.faults.close)
        self.history.close()

    # ---------------------------------------------------------------- views

    def controller_info(self) -> dict:
        return {"host": socket.gethostname(), "bus": self.bus_url, "baud": self.owner.bus.baud,
                "fingerprint": self.fingerprint, "software": software_version()}

    def status(self) -> dict:
        active = [j.as_dict(full=False) for j in self.jobs.jobs.values()
                  if j.state in UNFINISHED]
        return {
            "screen": {"name": self.layout.name, "width": self.layout.width,
                       "height": self.layout.height, "cabinets": len(self.layout.cabinets),
                       "file": self.screen_file},
            "bus": {"port": self.bus_url, "baud": self.owner.bus.baud,
                    "operations": self.owner.operations,
                    "dropped_frames": dict(self.owner.bus.deframer.dropped)},
            "frame_loop": self.frame_loop.stats() if self.frame_loop is not None else None,
            "power": self.power.status() if self.power is not None else None,
            "card_output": (self.output_watch.status() if self.output_watch is not None
                            else None),
            "jobs": active,
            "brightness": self.brightness.view(),
            "faults": self.faults.counts(),
            "last_selftest": next(iter(self.history.runs(1)), None),
            "uptime_s": round(time.time() - self.started, 1),
        }

    def cards_view(self) -> dict:
        """Each cabinet's card: ``found`` if a discovery or commissioning identified it or the
        watch's latest poll got an answer (``last_answer``, UTC)."""
        out = []
        answered = self.watch.answered if self.watch is not None else {}
        for cab in self.layout.cabinets:
            known = self.cards.get(cab.address)
            stats = self.owner.bus.stats.get(cab.address)
            heard = answered.get(cab.address)
            out.append({"address": cab.address, "x": cab.x, "y": cab.y,
                        "found": known is not None or heard is not None, "card": known,
                        "last_answer": None if heard is None else time.strftime(
                            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(heard)),
                        "link": stats.as_dict() if stats else None})
        extra = [{"address": a, "card": k} for a, k in self.cards.items()
                 if a not in {cab.address for cab in self.layout.cabinets}]
        return {"cabinets": out, "unexpected": extra}

    # ---------------------------------------------------------------- jobs

    def start_bus_job(self, kind: str, body, params: dict, who: str, role: str = "installer") -> Job:
        """Start a job that needs the bus to itself for a while (commissioning, self-tests,
        upgrades …): refused while another such job runs, because interleaving a firmware
        transfer with a detection, say, would make both wrong."""
        running = self.jobs.running_exclusive()
        if running is not None:
            waiting = ", waiting for an answer" if running.state == JobState.WAITING else ""
            raise LedwardenError(f"job {running.id} ({running.kind}) is still running{waiting}: "
                                 f"follow it with 'ledwarden jobs attach {running.id}' or cancel "
                                 f"it with 'ledwarden jobs cancel {running.id}' before starting "
                                 f"{kind}")
        return self.jobs.start(kind, body, params, who, exclusive=True, role=role)

    def start_commissioning(self, unattended: bool, who: str, lang: str = "en") -> Job:
        check_lang(lang)             # an unknown language is refused before a job exists

        async def body(job: Job) -> dict:
            run = Commissioning(job, self.owner, self.layout, self.settings, self.brightness.level,
                                unattended=unattended,
                                screen_file=self.screen_file, controller_info=self.controller_info(),
                                lang=lang)
            report = await run.run()
            await self._commissioning_selftest(report, job, who)
            for cab in report["cabinets"]:
                if cab["found"]:
                    self.cards[cab["address"]] = {k: cab[k] for k in ("serial", "model", "firmware", "bank")}
            stem = report_stem("acceptance", report["screen"]["name"], report["started"])
            json_path, html_path = write_acceptance(report, self.reports_dir, stem)
            job.note(f"report written: {html_path.name}")
            return {"result": report["result"], "summary": run.summary_text(),
                    "report": {"json": json_path.name, "html": html_path.name}}
        return self.start_bus_job("commission", body, {"unattended": unattended, "lang": lang}, who)

    async def _commissioning_selftest(self, report: dict, job: Job, who: str) -> None:
        """The ``commissioning`` self-test profile closes commissioning: the link, the settings
        just written, the controller's own health; it is also the first entry of the history
        that quarterly inspections compare with."""
        inspection = await run_profile(self, self.history, "commissioning", trigger="commissioning",
                                       who=who, job=job)
        await asyncio.to_thread(self.record_selftest_faults, inspection)
        attention = [f for ch in inspection["checks"] for f in ch["findings"] if f["outcome"] != "pass"]
        bad = any(f["outcome"] in ("fail", "error") for f in attention)
        report["steps"].append({"name": "selftest", "ok": not bad,
                                "detail": message("step.selftest", id=inspection["id"],
                                                  result=inspection["result"], **inspection["counts"]),
                                "duration_s": inspection["duration_s"]})
        report["selftest"] = {"id": inspection["id"], "result": inspection["result"]}
        add_findings(report, attention)
        if bad:
            report["result"] = "fail"

    def start_discovery(self, who: str) -> Job:
        async def body(job: Job) -> dict:
            result = await discover_all(self.owner, job)
            self.cards = {k.address: card_summary(k) for k in result.cards}
            return {"cards": [k.as_dict() for k in result.cards], "garbled": result.garbled}
        return self.start_bus_job("discovery", body, {}, who)

    def start_detection(self, addresses: list[int] | None, who: str) -> Job:
        targets = addresses or [cab.address for cab in self.layout.cabinets]

        async def body(job: Job) -> dict:
            result: dict[str, list[dict[str, Any]] | CardFailure] = {}
            for n, address in enumerate(targets):
                job.step(f"LED detection on card {hex_address(address)}", n, len(targets))
                try:
                    dead = await self.owner.run(ops.detect, address)
                    result[hex_address(address)] = [asdict(d) for d in dead]
                except LedwardenError as exc:
                    result[hex_address(address)] = {"error": str(exc)}
                    job.note(str(exc))
            job.advance(len(targets), len(targets))
            return result
        return self.start_bus_job("detect", body, {"addresses": targets}, who)

    # ---------------------------------------------------------------- health

    async def health_check(self) -> tuple[bool, str]:
        """Is this controller fit to keep running?  (ok, one-line summary).

        What a freshly upgraded controller must pass before its slot is marked
        good: the quick self-test, which talks to every card and checks the
        fast path, the storage and the clock.  Only failures that the last
        run before it did not have count: a wall with a hot cabinet must
        still be upgradable, but a controller that cannot talk to a card it
        talked to before, or whose fast path is wrong, is no better than the
        one it replaced.  With no earlier run every failure counts.
        """
        before = self.history.previous()
        report = await run_profile(self, self.history, "quick", trigger="upgrade", who="boot guard")
        await asyncio.to_thread(self.record_selftest_faults, report)
        known = set() if before is None else {
            (ch["id"], f["key"], f["subject"]) for ch in before["checks"] for f in ch["findings"]
            if f["outcome"] in ("fail", "error")}
        new = [f["text"] for ch in report["checks"] for f in ch["findings"]
               if f["outcome"] in ("fail", "error") and (ch["id"], f["key"], f["subject"]) not in known]
        summary = f"quick self-test {report['id']}: {report['result']}"
        if new:
            return False, f"{summary}, new since self-test {before['id'] if before else '—'}: {'; '.join(new)}"
        return True, summary + (" (no failure that was not there before)" if report["result"] == "fail" else "")

    # ---------------------------------------------------------------- self-tests

    def start_selftest(self, profile: str, trigger: str, who: str) -> Job:
        """Run a self-test profile as a bus job; its report goes to the history."""
        get_profile(profile)         # an unknown name is refused before a job exists

        async def body(job: Job) -> dict:
            report = await run_profile(self, self.history, profile, trigger=trigger, who=who, job=job)
            await asyncio.to_thread(self.record_selftest_faults, report)
            return {"id": report["id"], "result": report["result"], "counts": report["counts"],
                    "summary": [f["text"] for ch in report["checks"] for f in ch["findings"]
                                if f["outcome"] != "pass"]}
        return self.start_bus_job("selftest", body, {"profile": profile, "trigger": trigger}, who)

    def record_selftest_faults(self, report: dict) -> None:
        """Every warning and failure becomes (or folds into) a fault; faults of checks that
        ran and no longer find them are resolved."""
        seen = set()
        for check in report["checks"]:
            for f in check["findings"]:
                if f["outcome"] == "pass":
                    continue
                code = f"selftest.{f['key']}"
                seen.add((code, f["subject"]))
                self.faults.record(code, SEVERITY[f["outcome"]], f["subject"],
                                   {"text": f["text"], "check": check["id"], "run": report["id"]})
        ran = {check["id"] for check in report["checks"]}
        for fault in self.faults.active():
            if (fault.code.startswith("selftest.") and (fault.code, fault.source) not in seen
                    and fault.details.get("check") in ran):
                self.faults.resolve(fault.code, fault.source, by=f"self-test {report['id']}")

    # ---------------------------------------------------------------- quick actions

    async def show_pattern(self, request: c.TestPattern,
                           addresses: list[int] | None) -> PatternShown:
        """Show a test pattern on the given cards, or on every card at once (a broadcast)."""
        name = c.Pattern(request.pattern).name.lower()
        if addresses is None:
            await self.owner.broadcast(c.Cmd.TEST_PATTERN, request)
            return {"broadcast": True, "pattern": name}
        results: dict[str, Literal["ok"] | CardFailure] = {}
        for address in addresses:
            try:
                await self.owner.call(address, c.Cmd.TEST_PATTERN, request)
                results[hex_address(address)] = "ok"
            except LedwardenError as exc:
                results[hex_address(address)] = {"error": str(exc)}
        return {"broadcast": False, "pattern": name, "cards": results}

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
