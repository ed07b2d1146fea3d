"""The service's half of a trial: run the health check, and write the verdict for the boot guard.

The boot guard starts a new version with ``LEDWARDEN_BOOT_SLOT``,
``LEDWARDEN_BOOT_TRANSACTION`` and ``LEDWARDEN_CONFIRM_WITHIN`` in its
environment.  When the service has started and that slot is still the one on
trial in ``state.json``, :meth:`Confirmation.run` asks
``service.health_check()`` — the quick self-test, which talks to every card —
up to :data:`HEALTH_ATTEMPTS` times, and records the verdict in
``slots/X/health.json`` with the transaction id, durably, before it counts:

- healthy and recorded: ``confirmed``; the guard sees it, keeps the slot and
  raises the anti-rollback floor;
- healthy but the write failed (disk full, read-only, I/O error): ``error``,
  logged as an error — *not* a success: the guard has no verdict, so it
  rolls back when the deadline passes, exactly as if the check had failed;
- unhealthy: ``failed``; the verdict is written and the service stops
  itself, so the guard rolls back at once rather than at the deadline.

Also here: forwarding the upgrade journal into the fault log on start, and
the self-restart after an install (the guard starts the new slot).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

from controller.errors import LedwardenError
from controller.faultlog import FaultLog
from controller.upgrade.bundles import events
from controller.upgrade.bundles.bootguard import ENV_SLOT, ENV_TRANSACTION
from controller.upgrade.bundles.slots import SLOTS, SlotStore
from controller.upgrade.steps import Steps
from controller.version import software_version

log = logging.getLogger("ledwarden.upgrade")

HEALTH_ATTEMPTS = 3
HEALTH_RETRY_S = 5.0
#: Longest health summary kept in health.json, state.json and the journal.
MAX_DETAIL = 400
#: Seconds between an install's success and the service stopping itself for the guard.
RESTART_DELAY_S = 1.5


class Confirmation:
    """The running service's own trial, as the API reports it (``as_dict``)."""

    def __init__(self, state_dir, environ=os.environ) -> None:
        self.store = SlotStore(state_dir)
        self.slot = environ.get(ENV_SLOT) or None
        self.transaction = environ.get(ENV_TRANSACTION) or None
        self.state = "not-on-trial"
        self.detail = ""
        self.task: asyncio.Task | None = None

    @property
    def guarded(self) -> bool:
        """Started by the boot guard: only then can an installed slot be started and judged."""
        return self.slot is not None

    def as_dict(self) -> dict:
        return {"state": self.state, "detail": self.detail, "transaction": self.transaction}

    async def run(self, service) -> None:
        if self.slot not in SLOTS or not self.transaction:
            return
        try:
            trial = (await asyncio.to_thread(self.store.load)).trial
        except LedwardenError as exc:
            self.state, self.detail = "error", str(exc)
            log.error("cannot read the slot state to confirm this start: %s", exc)
            return
        if not trial or trial["slot"] != self.slot or trial["transaction"] != self.transaction:
            return
        self.state, self.detail = "checking", "running the health check"
        ok, detail = False, ""
        for attempt in range(1, HEALTH_ATTEMPTS + 1):
            try:
                ok, detail = await service.health_check()
            except Exception as exc:  # a crashing check is a failed check, with its reason
                ok, detail = False, f"the health check itself failed: {exc!r}"
            detail = detail if len(detail) <= MAX_DETAIL else detail[:MAX_DETAIL - 1] + "…"
            log.info("trial health check %d of %d: %s", attempt, HEALTH_ATTEMPTS, detail)
            if ok:
                break
            self.detail = f"attempt {attempt}: {detail}"
            if attempt < HEALTH_ATTEMPTS:
                await asyncio.sleep(HEALTH_RETRY_S)
        try:
            await asyncio.to_thread(self.store.record_health, self.slot, self.transaction, ok,
                                    detail, software_version(), Steps())
        except OSError as exc:
            self.state = "error"
            self.detail = (f"{'healthy' if ok else 'unhealthy'} ({detail}), but the verdict could "
                           f"not be recorded in {self.store.slot_dir(self.slot)}: {exc}; the boot "
                           f"guard will roll back at its deadline")
            log.error("trial %s: %s", self.transaction, self.detail)
            return
        if ok:
            self.state, self.detail = "confirmed", detail
            log.info("trial %s confirmed: %s", self.transaction, detail)
        else:
            self.state, self.detail = "failed", detail
            log.error("trial %s failed its health check (%s); stopping so the boot guard rolls "
                      "back", self.transaction, detail)
            restart_soon(0.2)


def restart_soon(delay: float = RESTART_DELAY_S) -> None:
    """Stop this service in ``delay`` seconds the clean way (SIGTERM to itself): the boot
    guard then starts whatever ``state.json`` now names."""
    asyncio.get_running_loop().call_later(delay, os.kill, os.getpid(), signal.SIGTERM)


async def forward_journal(state_dir: Path, faults: FaultLog) -> None:
    """Copy new upgrade journal lines from ``state_dir`` into the fault log, off the event loop;
    a failure is logged and the lines wait for the next start."""
    try:
        count = await asyncio.to_thread(events.forward, state_dir, faults)
    except Exception as exc:  # the journal stays; the next start tries again
        log.error("could not forward upgrade events to the fault log: %r", exc)
        return
    if count:
        log.info("forwarded %d upgrade event(s) to the fault log", count)
