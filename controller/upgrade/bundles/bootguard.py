"""The boot guard: starts the current slot's controller, and takes a bad version back out.

systemd runs the guard (``ledwarden.service``); the guard runs the
controller as its child, from whichever slot ``state.json`` names, and
decides everything that must not depend on the version being judged:

- **Counting starts.**  Before a slot on trial is started, its boot count is
  raised and written (fsync'd, renamed into place) — so a start that crashes,
  hangs the board or loses power still counts.  When a trial slot has been
  started ``max_starts`` (3) times without confirming, the guard reverts.
- **The health deadline.**  A trial version must confirm within
  ``confirm_within`` seconds of each start: the service runs its health
  check (the quick self-test, which talks to every card) and writes the
  verdict to ``slots/X/health.json``.  Confirmed: the guard clears the trial
  and raises the anti-rollback floor.  A failed verdict, or no verdict by the
  deadline: the guard stops the child and reverts.
- **Reverting** points ``current`` back at the previous slot (or the base
  installation when there is none), in one atomic write, records
  ``upgrade.controller.rolled-back`` with the transaction and the reason,
  and starts that version.
- **Handing over.**  When the child exits because an install switched the
  pointer (the service stops itself after an install), the guard starts the
  new current slot.  When a confirmed slot exits on its own, the guard exits
  with its status and systemd restarts the pair (``Restart=always``).

The guard lives in the base installation (``/opt/ledwarden``), which slot
installs never change, and imports only the standard library, ``packaging``
and the slot store, so that no bundle can break the code that judges it —
the same reason RAUC leaves boot counting to the bootloader.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from controller.cliargs import state_dir
from controller.timeutil import utc_now
from controller.upgrade.bundles import events
from controller.upgrade.bundles.slots import BootState, SlotStateError, SlotStore, clean_env, version_of
from controller.upgrade.steps import Steps

log = logging.getLogger("ledwarden.bootguard")

MAX_STARTS = 3
CONFIRM_WITHIN = 180.0
#: How long a child has to stop after SIGTERM before it is killed.
STOP_GRACE = 30.0
POLL_S = 0.2
ENV_SLOT, ENV_TRANSACTION, ENV_WITHIN = ("LEDWARDEN_BOOT_SLOT", "LEDWARDEN_BOOT_TRANSACTION",
                                         "LEDWARDEN_CONFIRM_WITHIN")


@dataclass
class Boot:
    """What to start: ``slot`` None is the base installation; ``trial`` if it is on trial."""

    slot: str | None
    trial: dict | None


# ------------------------------------------------------------------ decisions (durable)

def prepare_boot(store: SlotStore, steps: Steps, max_starts: int = MAX_STARTS) -> Boot:
    """Everything decided before a start, written before the start: leftovers of an
    interrupted install removed, a judged trial settled, the boot counted."""
    with store.lock(steps):
        removed = store.recover(steps)
        if removed:
            log.warning("removed what an interrupted install left behind: %s", ", ".join(removed))
        try:
            state = store.load()
        except SlotStateError as exc:
            slot = fallback_slot(store)
            log.error("%s; starting %s", exc, f"confirmed slot {slot}" if slot else "the base")
            return Boot(slot, None)
        if state.trial:
            trial = state.trial
            verdict = store.verdict(trial["slot"], trial["transaction"])
            if verdict is True:
                state = confirm(store, state, steps)
            elif verdict is False:
                detail = (store.health(trial["slot"]) or {}).get("detail", "")
                state = revert(store, state, steps, f"{trial['version']} failed its health "
                                                    f"check: {detail}")
            elif store.meta(trial["slot"]) is None:
                state = revert(store, state, steps, f"slot {trial['slot']} is incomplete")
            elif trial["boots"] >= max_starts:
                state = revert(store, state, steps, f"{trial['version']} was started "
                                                    f"{trial['boots']} times without confirming "
                                                    f"its health")
            else:
                trial["boots"] += 1
                store.save(state, steps)
        if state.current is not None and store.meta(state.current) is None:
            log.error("state.json names slot %s, which is empty; starting the base", state.current)
            return Boot(None, None)
        return Boot(state.current, state.trial)


def confirm(store: SlotStore, state: BootState, steps: Steps) -> BootState:
    """Keep the trial slot: clear the trial, raise the floor to its min_version."""
    trial = state.trial
    assert trial is not None, "confirm() is only called on a trial"
    meta = store.meta(trial["slot"]) or {}
    floor = max(version_of(state.floor, "the floor"),
                version_of(meta.get("min_version", "0"), "min_version"))
    state.trial, state.floor = None, str(floor)
    state.last = {**_record(trial), "outcome": "confirmed", "time": utc_now()}
    store.save(state, steps)
    events.record(store.state_dir, "confirmed", {**_record(trial), "floor": state.floor}, steps)
    log.info("%s in slot %s confirmed healthy (transaction %s)", trial["version"], trial["slot"],
             trial["transaction"])
    return state


def revert(store: SlotStore, state: BootState, steps: Steps, reason: str) -> BootState:
    """Point ``current`` back at the previous slot (or the base) and say why."""
    trial = state.trial
    assert trial is not None, "revert() is only called on a trial"
    back_meta = store.meta(state.previous) if state.previous else None
    back = state.previous if back_meta else None
    back_version = back_meta["version"] if back_meta else "the base installation"
    state.current, state.previous, state.trial = back, None, None
    state.last = {**_record(trial), "outcome": "rolled-back", "reason": reason,
                  "back_to": back or "base", "back_version": back_version, "time": utc_now()}
    store.save(state, steps)
    events.record(store.state_dir, "rolled-back", {**_record(trial), "reason": reason,
                                                   "back_to": back or "base",
                                                   "back_version": back_version}, steps)
    log.error("rolled back from %s to %s: %s (transaction %s)", trial["version"], back_version,
              reason, trial["transaction"])
    return state


def _record(trial: dict) -> dict:
    return {k: trial.get(k) for k in ("transaction", "slot", "version", "from_version")}


def unrecorded_boot(store: SlotStore) -> Boot:
    """What to start when nothing can be written (a full or read-only disk): never an
    uncounted trial — its previous version, which was good — else what state.json names."""
    try:
        state = store.load()
    except SlotStateError:
        return Boot(fallback_slot(store), None)
    slot = state.previous if state.trial else state.current
    return Boot(slot if slot and store.meta(slot) else None, None)


def fallback_slot(store: SlotStore) -> str | None:
    """With ``state.json`` unreadable: the most recently installed confirmed slot, else the base."""
    confirmed = [(meta["installed"], n) for n in ("a", "b")
                 if store.confirmed(n) and (meta := store.meta(n)) is not None]
    return max(confirmed)[1] if confirmed else None


# ------------------------------------------------------------------ the supervisor

class Guard:
    """Runs ``controller run RUN_ARGS`` from the current slot, for as long as it should run."""

    def __init__(self, state_dir: Path, run_args: list[str], *, confirm_within: float = CONFIRM_WITHIN,
                 max_starts: int = MAX_STARTS) -> None:
        self.store = SlotStore(state_dir)
        self.state_dir = Path(state_dir)
        self.run_args = run_args
        self.confirm_within = confirm_within
        self.max_starts = max_starts
        self.steps = Steps()
        self.child: subprocess.Popen | None = None
        self.stopping = False
        self._stop_by = float("inf")

    def command(self, slot: str | None) -> list[str]:
        python = str(self.store.python(slot)) if slot else sys.executable
        return [python, "-P", "-s", "-m", "host.cli", "controller", "run",
                "--state", str(self.state_dir), *self.run_args]

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        while not self.stopping:
            try:
                boot = prepare_boot(self.store, self.steps, self.max_starts)
            except OSError as exc:
                boot = unrecorded_boot(self.store)
                log.error("cannot write the slot state (%s): starting %s without recording "
                          "anything", exc, f"slot {boot.slot}" if boot.slot else "the base")
            what = f"slot {boot.slot}" if boot.slot else "the base installation"
            if boot.trial:
                what += (f" on trial (start {boot.trial['boots']} of {self.max_starts}, "
                         f"transaction {boot.trial['transaction']})")
            log.info("starting %s", what)
            env = clean_env(**{ENV_SLOT: boot.slot or "base", ENV_WITHIN: str(self.confirm_within),
                               ENV_TRANSACTION: boot.trial["transaction"] if boot.trial else ""})
            try:
                self.child = subprocess.Popen(self.command(boot.slot), env=env)
            except OSError as exc:          # the slot's interpreter is gone
                log.error("cannot start %s: %s", what, exc)
                if boot.trial:
                    time.sleep(1.0)         # counted: the next round reverts in time
                    continue
                return 127
            outcome = self._watch(boot)
            if self.stopping:
                break
            if outcome == "deadline" and boot.trial:    # only a trial has a deadline
                self._try_settle(boot, f"{boot.trial['version']} did not confirm its health "
                                       f"within {self.confirm_within:g} s")
                continue
            if boot.trial and self._try_settle(boot, None) == "unjudged":
                log.warning("%s exited with status %s before confirming its health",
                            what, self.child.returncode)
                time.sleep(1.0)      # then start it again: prepare_boot counts and decides
                continue
            state = self._state()
            if state is not None and (state.current != boot.slot or state.trial):
                continue            # an install switched the pointer: start the new slot
            if boot.trial:
                continue            # judged while it ran (confirmed or reverted): start again
            return self.child.returncode or 0
        return 0

    def _watch(self, boot: Boot) -> str:
        """Wait for the child; on trial, notice its verdict and enforce the deadline."""
        deadline = time.monotonic() + self.confirm_within
        child = self.child
        assert child is not None, "_watch() follows a started child"
        while True:
            try:
                child.wait(timeout=POLL_S)
                return "exited"
            except subprocess.TimeoutExpired:
                pass
            if self.stopping:
                if time.monotonic() > self._stop_by:
                    child.kill()
                continue
            if not boot.trial:
                continue
            if self.store.verdict(boot.trial["slot"], boot.trial["transaction"]) is True:
                self._try_settle(boot, None)
                boot.trial = None            # confirmed: from now on a plain run
            elif time.monotonic() > deadline:
                self._stop_child()
                return "deadline"

    def _try_settle(self, boot: Boot, reason: str | None) -> str:
        """:meth:`_settle`, but a disk that refuses the write does not stop the guard: the
        verdict stays in health.json and the next start settles it (or starts the previous
        version unrecorded, see :func:`unrecorded_boot`)."""
        try:
            return self._settle(boot, reason)
        except OSError as exc:
            log.error("cannot record the outcome of transaction %s: %s",
                      boot.trial and boot.trial["transaction"], exc)
            return "error"

    def _settle(self, boot: Boot, reason: str | None) -> str:
        """Confirm or revert ``boot``'s trial if it is still the one in state.json."""
        with self.store.lock(self.steps):
            state = self._state()
            if (state is None or not state.trial or not boot.trial
                    or state.trial["transaction"] != boot.trial["transaction"]):
                return "settled"
            trial = state.trial
            verdict = self.store.verdict(trial["slot"], trial["transaction"])
            if verdict is True:
                confirm(self.store, state, self.steps)
                return "confirmed"
            if verdict is False:
                detail = (self.store.health(trial["slot"]) or {}).get("detail", "")
                reason = f"{trial['version']} failed its health check: {detail}"
            if reason is None:
                return "unjudged"
            revert(self.store, state, self.steps, reason)
            return "reverted"

    def _state(self) -> BootState | None:
        try:
            return self.store.load()
        except SlotStateError as exc:
            log.error("%s", exc)
            return None

    def _stop_child(self) -> None:
        child = self.child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _on_signal(self, signum, _frame) -> None:
        if not self.stopping:
            self._stop_by = time.monotonic() + STOP_GRACE
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)


# ------------------------------------------------------------------ command line

def add_arguments(p: argparse.ArgumentParser, default_state: str) -> None:
    p.add_argument("--state", default=default_state, metavar="DIR", type=state_dir,
                   help=f"the controller's state directory (default {default_state})")
    p.add_argument("--confirm-within", type=float, default=CONFIRM_WITHIN, metavar="S",
                   help=f"seconds a new version has to pass its health check after each start "
                        f"(default {CONFIRM_WITHIN:g})")
    p.add_argument("--max-starts", type=int, default=MAX_STARTS, metavar="N",
                   help=f"starts a new version gets to confirm before it is rolled back "
                        f"(default {MAX_STARTS})")
    p.add_argument("run_args", nargs=argparse.REMAINDER, metavar="-- RUN-OPTIONS",
                   help="options for 'ledwarden controller run' (--screen, --bus, --listen, …)")


def run_from_args(args: argparse.Namespace) -> int:
    run_args = list(args.run_args)
    if run_args[:1] == ["--"]:
        run_args = run_args[1:]
    if "--state" in run_args or any(a.startswith("--state=") for a in run_args):
        print("ledwarden: error: give --state before '--'; the guard passes it to the controller",
              file=sys.stderr)
        return 2
    if not run_args:
        print("ledwarden: error: give the controller's options after '--', e.g. "
              "-- --screen screen.toml --bus /dev/ttyAMA0", file=sys.stderr)
        return 2
    if args.max_starts < 1 or args.confirm_within <= 0:
        print("ledwarden: error: --max-starts must be at least 1 and --confirm-within positive",
              file=sys.stderr)
        return 2
    for name in ("ledwarden.bootguard", "ledwarden.upgrade"):  # what a guard does is always said
        logging.getLogger(name).setLevel(min(logging.INFO, logging.getLogger(name).getEffectiveLevel()))
    return Guard(Path(args.state), run_args, confirm_within=args.confirm_within,
                 max_starts=args.max_starts).run()


def main(argv: list[str] | None = None) -> int:
    """``python -m controller.upgrade.bundles.bootguard``: the guard without the rest of the CLI, which
    is what the systemd unit runs (it starts in a fraction of the time and memory)."""
    p = argparse.ArgumentParser(prog="ledwarden-boot-guard", description=__doc__.split("\n\n")[0])
    add_arguments(p, "/var/lib/ledwarden")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="ledwarden boot guard: %(levelname)s %(message)s")
    return run_from_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
