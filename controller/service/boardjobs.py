"""The jobs that hold the bus to themselves: commissioning, discovery, detection, self-tests.

Each takes minutes and needs the wall undisturbed, so each runs as an
*exclusive* job (:meth:`BoardJobs.start_bus_job`): a second one is refused
while one runs, because interleaving a firmware transfer with a detection,
say, would make both wrong.  The watch stands aside meanwhile
(``CardWatch(bus_busy=…)``).

:class:`BoardJobs` is handed the board (:class:`~controller.boardcontext.BoardContext`),
the service's bus owner (commissioning's scan needs the bus itself), the job
manager and the service's record of identified cards, and nothing else of
the service.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from controller.boardcontext import BoardContext
from controller.cardresults import per_card, to_json
from controller.cardaddress import hex_address
from controller.errors import LedwardenError
from controller.faultlog.findings import record_selftest_faults
from controller.protocol import cards as ops
from controller.report.acceptance import write_acceptance
from controller.report.findings import message
from controller.report.i18n import check_lang
from controller.report.page import report_stem
from controller.screenmap import card_summary
from controller.selftest.profiles import profile as get_profile
from controller.selftest.runner import run_profile
from controller.service.busowner import BusOwner
from controller.service.commission import Commissioning, add_findings, discover_all
from controller.service.jobs import Job, JobBody, JobManager, JobState


class BoardJobs:
    """Starts the board's exclusive jobs; ``known`` (address → card summary) is the service's
    record of identified cards, updated in place by discovery and commissioning."""

    def __init__(self, board: BoardContext, owner: BusOwner, jobs: JobManager,
                 known: dict[int, dict[str, Any]]) -> None:
        self.board = board
        self.owner = owner
        self.jobs = jobs
        self.known = known

    def start_bus_job(self, kind: str, body: JobBody, params: dict[str, Any], who: str,
                      role: str = "installer") -> Job:
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

    def bus_busy(self) -> bool:
        """Whether an exclusive job holds the bus (what the watch asks before each card)."""
        return self.jobs.running_exclusive() is not None

    # ------------------------------------------------------------ commissioning

    def start_commissioning(self, unattended: bool, who: str, lang: str = "en") -> Job:
        """Commission the screen, close with the ``commissioning`` self-test, write the
        acceptance report; the cards it found become the known cards."""
        check_lang(lang)             # an unknown language is refused before a job exists
        board = self.board

        async def body(job: Job) -> dict:
            # The level each card is to hold: the wall's current brightness when the service
            # keeps one, else the screen file's commissioning default.
            wanted = (board.brightness.level if board.brightness is not None
                      else lambda _address: board.settings.default_level)
            run = Commissioning(job, self.owner, board.layout, board.settings, wanted,
                                unattended=unattended, screen_file=board.screen_file,
                                controller_info=board.controller_info(), lang=lang)
            report = await run.run()
            await self._commissioning_selftest(report, job, who)
            for cab in report["cabinets"]:
                if cab["found"]:
                    self.known[cab["address"]] = {k: cab[k] for k in ("serial", "model", "firmware", "bank")}
            stem = report_stem("acceptance", report["screen"]["name"], report["started"])
            json_path, html_path = write_acceptance(report, board.reports_dir, stem)
            job.note(f"report written: {html_path.name}")
            return {"result": report["result"], "summary": run.summary_text(),
                    "report": {"json": json_path.name, "html": html_path.name}}
        return self.start_bus_job("commission", body, {"unattended": unattended, "lang": lang}, who)

    async def _commissioning_selftest(self, report: dict, job: Job, who: str) -> None:
        """The ``commissioning`` self-test profile closes commissioning: the link, the settings
        just written, the controller's own health; it is also the first entry of the history
        that quarterly inspections compare with."""
        inspection = await run_profile(self.board, "commissioning", trigger="commissioning",
                                       who=who, job=job)
        await self._file(inspection)
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

    # ------------------------------------------------------------ discovery and detection

    def start_discovery(self, who: str) -> Job:
        """Scan every address; what answers becomes the known cards."""
        async def body(job: Job) -> dict:
            result = await discover_all(self.owner, job)
            self.known.clear()
            self.known.update({k.address: card_summary(k) for k in result.cards})
            return {"cards": [k.as_dict() for k in result.cards], "garbled": result.garbled}
        return self.start_bus_job("discovery", body, {}, who)

    def start_detection(self, addresses: list[int] | None, who: str) -> Job:
        """LED detection on the given cards (default: every card); each card's dead LEDs or
        its error in its place (:mod:`controller.cardresults`)."""
        targets = self.board.targets(addresses)

        async def body(job: Job) -> dict:
            results = await per_card(
                targets, lambda address: self.board.bus.run(ops.detect, address),
                before=lambda n, address: job.step(f"LED detection on card {hex_address(address)}",
                                                   n, len(targets)),
                on_error=lambda address, exc: job.note(str(exc)))
            job.advance(len(targets), len(targets))
            return to_json(results, lambda dead: [asdict(d) for d in dead])
        return self.start_bus_job("detect", body, {"addresses": targets}, who)

    # ------------------------------------------------------------ self-tests

    def start_selftest(self, profile: str, trigger: str, who: str) -> Job:
        """Run a self-test profile as a bus job; its report goes to the history, its findings
        to the fault log."""
        get_profile(profile)         # an unknown name is refused before a job exists

        async def body(job: Job) -> dict:
            report = await run_profile(self.board, profile, trigger=trigger, who=who, job=job)
            await self._file(report)
            return {"id": report["id"], "result": report["result"], "counts": report["counts"],
                    "summary": [f["text"] for ch in report["checks"] for f in ch["findings"]
                                if f["outcome"] != "pass"]}
        return self.start_bus_job("selftest", body, {"profile": profile, "trigger": trigger}, who)

    async def _file(self, report: dict) -> None:
        """A run's findings into the fault log (in a worker thread: a new fault waits for
        its fsync)."""
        if self.board.faults is not None:
            await asyncio.to_thread(record_selftest_faults, self.board.faults, report)


__all__ = ["BoardJobs"]
