"""Card firmware upgrades as a service job: the package, the plan on disk, resuming, the fault log.

``POST /api/v1/upgrade/cards`` names a completed upload (``uploads.py``).  The
package is verified against the board's trusted keys (``STATE/trusted-keys``,
managed with ``ledwarden controller trust``) *before* the job starts, so a
refused package is an immediate 4xx and not a failed job; then
:class:`~controller.upgrade.cards.flash.CardFlasher` runs in the bus owner's
thread, holding the bus for the whole run.

**The plan** (``STATE/card-upgrade.json``) records what was asked — upload,
targets, canary, force — with the phase reached and each card's pre-upgrade
baseline (status faults and config, which a card's health check after a
restart must still be compared against), rewritten atomically as the run
moves on.  ``state`` is ``running`` while a job works on it and
``succeeded``, ``failed``, ``cancelled`` or ``abandoned`` after.

**Resume.**  Everything else a later run needs is on the cards (FW_STATUS,
version, bank, trial flag), so resuming is simply running again:

- a service that starts and finds a plan still ``running`` (it stopped or
  crashed mid-run) starts the job again by itself, at most
  :data:`MAX_AUTO_RESUMES` times in a row, so a half-upgraded wall does not
  wait for a person, and a card left on trial gets its health check and
  confirmation rather than a rollback;
- ``ledwarden upgrade cards PACKAGE`` run again continues the same way, and
  while a job for the same upload is running it is handed that job to follow.

**Fault log.**  Each card's end becomes ``upgrade.card.installed`` (info),
``upgrade.card.rolled-back`` or ``upgrade.card.failed`` (error), source
``card:0xNN``, details with the versions and the reason; an installed card
clears its earlier upgrade faults.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path
from typing import Any

from controller.errors import LedwardenError, UpgradeRejected
from controller.faultlog import FaultLog, card_source
from controller.protocol import commands as c
from controller.timeutil import utc_now
from controller.upgrade.cards.firmware import CardFirmware, open_firmware
from controller.upgrade.cards.flash import CardFlasher
from controller.upgrade.cards.run import (FAILED, FINAL, INSTALLED, ROLLED_BACK, FlashOptions,
                                          FlashReport)
from controller.upgrade.signing import TrustedKeys
from controller.upgrade.uploads import UploadStore

log = logging.getLogger("ledwarden.upgrade")

KIND = "upgrade-cards"
PLAN = "card-upgrade.json"
TRUSTED_KEYS = "trusted-keys"
MAX_AUTO_RESUMES = 3
#: Seconds after start-up before an interrupted upgrade resumes: the API is up to follow it.
RESUME_DELAY_S = 1.0


class CardUpgradeFailed(LedwardenError):
    """A run ended with cards not upgraded; the job's result still holds the full report."""


class CardUpgrades:
    """The service's card-upgrade state: the plan file and the job working on it."""

    def __init__(self, service, uploads: Callable[[], UploadStore], faults: FaultLog) -> None:
        self.service = service
        #: Where each card's outcome is filed (installed, failed, rolled back), handed in
        #: rather than looked up on the service, so a run without a fault log cannot happen.
        self.faults = faults
        self._uploads = uploads   # looked up when needed: the store is set up by another module
        self.path = Path(service.state_dir) / PLAN
        #: Set when the service shuts down: its jobs are then cancelled, but the plan stays
        #: "running" so that the next start resumes it.
        self.shutting_down = False

    @property
    def uploads(self) -> UploadStore:
        return self._uploads()

    # ------------------------------------------------------------ the plan file

    def plan(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("%s is unreadable (%s); starting without it", self.path, exc)
            return None

    def _save(self, plan: dict) -> None:
        plan["updated"] = utc_now()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(plan, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def status(self) -> dict:
        job = next((j for j in sorted(self.service.jobs.jobs.values(), key=lambda j: -j.id)
                    if j.kind == KIND), None)
        return {"plan": self.plan(), "job": job.as_dict() if job else None}

    # ------------------------------------------------------------ starting

    def firmware(self, upload_id: str) -> CardFirmware:
        """The upload, verified as a card firmware package (raises UpgradeRejected, NotFound)."""
        trusted = TrustedKeys.from_directory(Path(self.service.state_dir) / TRUSTED_KEYS)
        return open_firmware(self.uploads.path(upload_id), trusted)

    def start(self, upload_id: str, addresses: list[int] | None, canary: int, force: bool,
              who: str, *, resumes: int = 0):
        """Start (or, for the same upload, join) the upgrade job; returns (job, joined)."""
        running = self.service.jobs.running(KIND)
        if running is not None and running.params.get("upload") == upload_id:
            return running, True
        if not self.service.trial_judged.is_set():
            raise LedwardenError("this controller is on trial after a software upgrade and has not "
                                 "confirmed its health yet; upgrade the cards once it has "
                                 "('ledwarden upgrade controller' shows it)")
        try:
            fw = self.firmware(upload_id)
        except UpgradeRejected:
            self.uploads.remove(upload_id)   # refused now is refused again: keep no copy of it
            raise
        cabinets = [cab.address for cab in self.service.layout.cabinets]
        targets = sorted(set(cabinets if addresses is None else addresses))
        others = sorted(set(cabinets) - set(targets))
        old = self.plan()
        carried = (old or {}).get("baselines", {}) if (old or {}).get("upload") == upload_id else {}
        plan: dict[str, Any] = {"upload": upload_id, "package": fw.describe(), "addresses": targets,
                "canary": canary, "force": force, "started_by": who, "resumes": resumes,
                "state": "running", "phase": "checking", "baselines": carried, "job": None}
        params = {"upload": upload_id, "version": fw.version_text, "addresses": targets,
                  "canary": canary, "force": force, "resumes": resumes}
        job = self.service.start_bus_job(KIND, lambda job: self._run(job, fw, plan, others),
                                         params, who, role="service")
        plan["job"] = job.id
        self._save(plan)
        return job, False

    # ------------------------------------------------------------ the job

    async def _run(self, job, fw: CardFirmware, plan: dict, others: list[int]) -> dict:
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        seen: dict[str, Any] = {"notes": 0, "phase": None}
        baselines = {int(a): (b["flags"], c.CardConfig(*b["config"]) if b["config"] else None)
                     for a, b in plan["baselines"].items()}

        def progress(report: FlashReport) -> None:   # in the bus thread
            snapshot = report.as_dict()
            notes = report.notes[seen["notes"]:]
            seen["notes"] = len(report.notes)
            loop.call_soon_threadsafe(self._show, job, snapshot, notes)
            if report.phase != seen["phase"]:
                seen["phase"] = report.phase
                plan["phase"] = report.phase
                for card in report.cards.values():
                    if card.version_before is not None and str(card.address) not in plan["baselines"]:
                        plan["baselines"][str(card.address)] = {
                            "flags": card.flags_before,
                            "config": list(astuple(card.config_before)) if card.config_before
                            else None}
                try:
                    self._save(plan)
                except OSError as exc:   # the upgrade goes on; only resuming would suffer
                    log.error("cannot write %s (%s): an interrupted upgrade could not resume "
                              "by itself", self.path, exc)

        options = FlashOptions(canary=plan["canary"], force=plan["force"])

        def work(bus) -> FlashReport:
            return CardFlasher(bus, fw, plan["addresses"], options, others=others,
                               baselines=baselines, progress=progress,
                               should_stop=stop.is_set).run()

        job.step(f"card firmware {fw.version_text} to {len(plan['addresses'])} cards", 0,
                 len(plan["addresses"]))
        running = asyncio.ensure_future(self.service.owner.run(work))
        try:
            report = await asyncio.shield(running)
        except asyncio.CancelledError:
            stop.set()   # the engine stops at its next frame; the bus is released after it
            await asyncio.wait([running])
            if not self.shutting_down:
                plan["state"] = "cancelled"
            self._save(plan)
            raise
        except LedwardenError as exc:
            plan["state"], plan["failure"] = "failed", str(exc)
            self._save(plan)
            if isinstance(exc, UpgradeRejected):    # a card of another model: as at the start
                self.uploads.remove(plan["upload"])
            raise
        result = report.as_dict()
        job.result = result
        self._record_faults(report, job.id)
        plan["state"], plan["phase"] = report.result, "done"
        plan["failure"] = report.failure
        self._save(plan)
        if report.result == "succeeded":
            self.uploads.remove(plan["upload"])
            job.note(f"{report.count(INSTALLED)} cards installed {fw.version_text}, "
                     f"{report.count('skipped')} already had it, in {report.seconds:.1f} s")
            return result
        raise CardUpgradeFailed(f"card firmware {fw.version_text}: {report.failure}")

    @staticmethod
    def _show(job, snapshot: dict, notes: list[str]) -> None:
        """The report as job progress: per-card states for the host's table."""
        for note in notes:
            job.note(note)
        cards = snapshot["cards"]
        finished = sum(k["state"] in FINAL for k in cards)
        if snapshot["phase"] in ("transferring", "repairing") and snapshot["stream"]["of"]:
            step = (f"{snapshot['phase']}: chunk {snapshot['stream']['sent']} of "
                    f"{snapshot['stream']['of']} (broadcast)")
            done, total = snapshot["stream"]["sent"], snapshot["stream"]["of"]
        else:
            step, done, total = snapshot["phase"], finished, len(cards)
        job.progress = {"done": done, "total": total, "step": step, "phase": snapshot["phase"],
                        "cards": cards, "chunks": snapshot["chunks"], "stream": snapshot["stream"]}

    def _record_faults(self, report: FlashReport, job_id: int) -> None:
        faults = self.faults
        for card in report.cards.values():
            source = card_source(card.address)
            details = {"version": report.version, "from": card.version_before,
                       "now": card.version_after, "reason": card.detail, "job": job_id}
            if card.state == INSTALLED:
                faults.record("upgrade.card.installed", "info", source, details)
                for code in ("upgrade.card.failed", "upgrade.card.rolled-back"):
                    faults.resolve(code, source, by=f"job {job_id}: {report.version} installed")
            elif card.state == ROLLED_BACK:
                faults.record("upgrade.card.rolled-back", "error", source, details)
            elif card.state == FAILED:
                faults.record("upgrade.card.failed", "error", source, details)

    # ------------------------------------------------------------ after a restart

    async def resume_interrupted(self) -> None:
        """Start again an upgrade the previous service left running (see the module docs)."""
        plan = self.plan()
        if plan is None or plan.get("state") != "running":
            return
        if plan.get("resumes", 0) >= MAX_AUTO_RESUMES:
            plan["state"] = "abandoned"
            plan["failure"] = (f"interrupted {plan['resumes'] + 1} times; not resuming by itself "
                               f"again: run 'ledwarden upgrade cards PACKAGE' to continue")
            self._save(plan)
            log.error("card upgrade: %s", plan["failure"])
            return
        try:
            who = plan["started_by"].split(" (resumed")[0] + " (resumed after a restart)"
            job, _ = self.start(plan["upload"], plan["addresses"], plan["canary"], plan["force"],
                                who, resumes=plan.get("resumes", 0) + 1)
        except LedwardenError as exc:
            plan["state"], plan["failure"] = "abandoned", f"could not resume: {exc}"
            self._save(plan)
            log.error("card upgrade: %s", plan["failure"])
            return
        log.warning("card upgrade interrupted by a restart: resumed as job %d", job.id)
