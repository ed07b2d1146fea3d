"""The DDI agent: poll, report attributes, carry one action from download to a final status.

One action at a time, as hawkBit sends them.  Its progress lives in
``STATE/ddi/action.json``, replaced atomically through
:class:`controller.upgrade.steps.Steps` at each stage, so a restart (the one
every controller install ends with, or a power cut) finds where it was:

    new → downloading → downloaded → installing → (controller: switched) → finished → reported

- ``downloading``: artifacts go into the upload store by SHA-256 and resume
  where they stopped; each is sealed only when its hash is the server's.
- ``downloaded``: every artifact then passes :func:`open_package` — the
  signature check a hand upload gets from the installer and the card job —
  before anything is installed; the server is never trusted to sign.
- ``installing`` is written *before* the install starts.  After a restart in
  this stage the agent asks the installers what became of it
  (:meth:`Installers.outcome`): a switch that happened is never made again,
  one that did not is started again at most :data:`MAX_INSTALL_TRIES` times.
- ``switched`` (controller bundles): the final status waits for the boot
  guard's verdict in the slot state — confirmed, or rolled back with the
  reason — which the restarted service reads.
- ``finished`` holds the final status until the server has taken it.  After a
  restart it is sent again only while the server still offers the action: an
  action the server no longer offers was closed by the report that reached it
  just before the restart, and a second final status would be counted twice
  (gooseBit adds it to the rollout's figures again).
- ``reported`` ids are remembered (:data:`REMEMBERED`, those that failed in
  ``failed``) so an action the server offers again after a lost
  acknowledgement is answered with its own result, never reinstalled.
- ``sw_version``, the software module version of the last action that
  succeeded, is sent with the attributes: gooseBit offers its rollout again to
  any device whose ``sw_version`` differs, and a configData without it clears it.

``skip``/``attempt``/``forced`` and the maintenance window: a ``skip``
download waits; a ``skip`` update or an unavailable window downloads and
verifies, then waits (``scheduled``); ``attempt`` and ``forced`` install when
no other job holds the board — a forced action does not cut off a running
self-test or card upgrade either, it goes first once that ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from controller.errors import LedwardenError, UpgradeRejected
from controller.fleet import swu
from controller.fleet.ddi import (DdiClient, DdiError, Deployment, Poll, Unreachable, action_id_of,
                                  backoff)
from controller.upgrade.package import open_package, peek_manifest
from controller.upgrade.signing import TrustedKeys
from controller.upgrade.steps import Steps
from controller.upgrade.uploads import UploadStore

log = logging.getLogger("ledwarden.fleet")

ACTION = "action.json"
KINDS = ("controller", "card-firmware")
MAX_INSTALL_TRIES = 3
REMEMBERED = 50
SOURCE = "controller"
#: What action.json keeps from one action to the next.
KEPT = ("reported", "failed", "sw_version")
#: Seconds between looks at the installers while an install's fate is pending (a trial being
#: judged): the final status goes out within this of the verdict, not at the next poll.
OUTCOME_CHECK_S = 1.0


class Installers(Protocol):
    """What the service lends the agent: the same installs a hand upload starts."""

    def busy(self) -> str | None:
        """Why nothing can be installed now (a job holds the board), or None."""

    async def install(self, kind: str, upload_id: str, action: dict) -> tuple[bool, str] | None:
        """Install the verified upload.  Card firmware: returns (ok, summary) when the job ends.
        Controller bundle: returns None once switched (the service restarts into the trial),
        having stored ``transaction`` in ``action``; raises LedwardenError when refused."""

    def outcome(self, kind: str, action: dict) -> tuple[bool, str] | None | str:
        """After a restart: (ok, reason) when the install's fate is known, "running" while it
        goes on (a trial not yet judged, a card job resuming), None when it never began."""


class Faults(Protocol):
    def record(self, code: str, severity: str, source: str, details: dict | None = None) -> object: ...


class Agent:
    """The poll loop; :meth:`step` is one poll and what it leads to (the tests call it)."""

    def __init__(self, client: DdiClient, state_dir: Path, uploads: UploadStore,
                 installers: Installers, attributes: Callable[[], dict[str, str]], *,
                 faults: Faults | None = None, steps: Steps | None = None) -> None:
        self.client, self.uploads, self.installers = client, uploads, installers
        self.state_dir = Path(state_dir)
        self.dir = self.state_dir / "ddi"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.attributes, self.faults = attributes, faults
        self.steps = steps or Steps()
        self.failures = 0
        self.sent_attributes: dict | None = None
        self.last_error = ""
        #: (kind, action) while an install's fate is pending after a restart.
        self.pending: tuple[str, dict] | None = None

    # ------------------------------------------------------------ durable state

    def load(self) -> dict:
        try:
            doc = json.loads((self.dir / ACTION).read_text())
            return doc if isinstance(doc, dict) else {"reported": []}
        except FileNotFoundError:
            return {"reported": []}
        except (OSError, ValueError) as exc:
            log.error("%s unreadable (%s); starting afresh", self.dir / ACTION, exc)
            return {"reported": []}

    def save(self, doc: dict) -> None:
        self.steps.replace(self.dir / ACTION, json.dumps(doc, sort_keys=True, indent=1).encode())

    # ------------------------------------------------------------ the loop

    async def run(self, default_sleep_s: int) -> None:
        """Poll forever; the interval is the server's, or a jittered backoff while it is away."""
        sleep: float = default_sleep_s
        while True:
            try:
                sleep = (await self.step()).sleep_s
                self.failures = 0
                if self.pending is not None:
                    await self._await_outcome(sleep)
                    continue
            except (Unreachable, DdiError) as exc:
                self.failures += 1
                self._fault(exc, self.failures)
                sleep = max(sleep if isinstance(exc, DdiError) else 0, backoff(self.failures))
            await asyncio.sleep(sleep)

    async def _await_outcome(self, longest: float) -> None:
        """Look at the pending install every :data:`OUTCOME_CHECK_S` until its fate is known (then
        poll at once, which reports it) or ``longest`` seconds have passed."""
        assert self.pending is not None
        kind, doc = self.pending
        waited = 0.0
        while waited < longest:
            await asyncio.sleep(OUTCOME_CHECK_S)
            waited += OUTCOME_CHECK_S
            if await asyncio.to_thread(self.installers.outcome, kind, doc) != "running":
                return

    def _fault(self, exc: Exception, failures: int) -> None:
        self.last_error = str(exc)
        log.warning("DDI: %s (failure %d in a row)", exc, failures)
        if self.faults is not None and (failures == 1 or failures % 10 == 0):
            self.faults.record("fleet.ddi.unreachable" if isinstance(exc, Unreachable)
                               else "fleet.ddi.refused", "warning", SOURCE,
                               {"message": str(exc), "failures": failures})

    async def step(self) -> Poll:
        self.pending = None
        poll = await self.client.poll()
        doc = self.load()
        attrs = self.attributes()
        if doc.get("sw_version"):
            attrs["sw_version"] = doc["sw_version"]
        if poll.config_data or attrs != self.sent_attributes:
            await self.client.put_config_data(attrs)
            self.sent_attributes = attrs
        if (doc.get("stage") == "finished" and poll.cancel is None
                and action_id_of(poll.deployment) != doc["id"]):
            self._reported(doc, "the server no longer offers it: it took the final status "
                                "sent before a restart")
            doc = self.load()
        just_reported = await self._report_pending(doc)
        if poll.cancel:
            await self._cancel(doc, poll.cancel)
        elif doc.get("stage") in ("installing", "switched"):
            await self._resume(doc)
        elif poll.deployment and action_id_of(poll.deployment) != just_reported:
            # (the poll came before that report: its link to the same action is stale)
            await self._deploy(doc, await self.client.deployment(poll.deployment))
        return poll

    # ------------------------------------------------------------ stages

    async def _report_pending(self, doc: dict) -> str | None:
        """Send the final status waiting in ``doc``; returns the action's id if it did."""
        if doc.get("stage") != "finished":
            return None
        fin = doc["final"]
        await self.client.feedback(doc["id"], "closed", "success" if fin["ok"] else "failure",
                                   details=[fin["reason"]])
        self._reported(doc, "success" if fin["ok"] else f"failure: {fin['reason']}")
        return doc["id"]

    def _reported(self, doc: dict, what: str) -> None:
        """The server has the final status of ``doc``'s action: remember it, start afresh."""
        kept = {k: doc[k] for k in KEPT if k in doc}
        kept["reported"] = (kept.get("reported", []) + [doc["id"]])[-REMEMBERED:]
        if doc["final"]["ok"]:
            kept["sw_version"] = doc.get("version") or kept.get("sw_version")
        else:
            kept["failed"] = (kept.get("failed", []) + [doc["id"]])[-REMEMBERED:]
        kept["failed"] = [a for a in kept.get("failed", []) if a in kept["reported"]]
        self.save(kept)
        log.info("DDI action %s reported: %s", doc["id"], what)

    async def _finish(self, doc: dict, ok: bool, reason: str) -> None:
        """Make the final status durable first, then report it (again after a restart if the
        report is lost): the server hears it once it is true, and at least once."""
        doc.update(stage="finished", final={"ok": ok, "reason": reason})
        self.save(doc)
        if not ok and self.faults is not None:
            self.faults.record("fleet.ddi.failed", "error", SOURCE,
                               {"action": doc["id"], "message": reason})
        await self._report_pending(doc)

    async def _deploy(self, doc: dict, dep: Deployment) -> None:
        if dep.action_id in doc.get("reported", []):
            # The server did not take our final status: say it again, install nothing.
            failed = dep.action_id in doc.get("failed", [])
            await self.client.feedback(dep.action_id, "closed", "failure" if failed else "success",
                                       details=["already finished on this controller" +
                                                (" (it failed)" if failed else "")])
            return
        if doc.get("id") != dep.action_id:
            doc = {**{k: doc[k] for k in KEPT if k in doc}, "id": dep.action_id, "stage": "new",
                   "artifacts": [a.sha256 for a in dep.artifacts], "tries": 0,
                   "version": dep.version}
            self.save(doc)
        if dep.download == "skip":
            return
        if doc["stage"] in ("new", "downloading"):
            if not await self._download(doc, dep):
                return
        if doc["stage"] == "downloaded":
            if dep.update == "skip" or dep.window == "unavailable":
                await self.client.feedback(dep.action_id, "scheduled", details=[
                    "downloaded and verified; waiting for the maintenance window"
                    if dep.window == "unavailable" else "downloaded and verified; update held"])
                return
            busy = self.installers.busy()
            if busy:
                await self.client.feedback(dep.action_id, "proceeding",
                                           details=[f"waiting: {busy}"])
                return
            await self._install(doc)

    async def _download(self, doc: dict, dep: Deployment) -> bool:
        if doc["stage"] == "new":
            doc["stage"] = "downloading"
            self.save(doc)
            await self.client.feedback(dep.action_id, "proceeding", progress=(0, 100), details=[
                f"downloading {len(dep.artifacts)} artifact(s), "
                f"{sum(a.size for a in dep.artifacts)} bytes"])
        total = sum(a.size for a in dep.artifacts) or 1
        done = 0
        for i, art in enumerate(dep.artifacts):
            known = doc["artifacts"][i]
            if known != art.sha256 and (await asyncio.to_thread(self.uploads.status, known))["complete"]:
                done += art.size                      # sealed under its SHA-256 before a restart
                continue
            try:
                sealed = await self.client.download(art, self.uploads)
            except Unreachable:
                raise                                 # resumes on the next poll
            except LedwardenError as exc:             # a hash that does not match, a full disk
                await self._finish(doc, False, f"download of {art.filename} refused: {exc}")
                return False
            if sealed != known:                       # SHA-1 only: now known by its SHA-256
                doc["artifacts"][i] = sealed
                self.save(doc)
            done += art.size
            await self.client.feedback(dep.action_id, "proceeding",
                                       progress=(done * 100 // total, 100),
                                       details=[f"downloaded {art.filename} ({art.size} bytes), "
                                                f"{'SHA-1' if art.sha1 else 'SHA-256'} matches"])
        try:
            kinds = await asyncio.to_thread(self._verify, doc, dep)
        except UpgradeRejected as exc:
            for upload in {*doc["artifacts"], *(a.sha256 for a in dep.artifacts)}:
                await asyncio.to_thread(self.uploads.remove, upload)
            await self._finish(doc, False, f"refused ({exc.reason}): {exc}; nothing was installed")
            return False
        doc.update(stage="downloaded", kinds=kinds)
        self.save(doc)
        await self.client.feedback(dep.action_id, "downloaded", details=["signature verified"])
        return True

    def _verify(self, doc: dict, dep: Deployment) -> list[str]:
        """Each artifact's signature and manifest, with the board's trusted keys, as a hand upload
        is checked; returns the package kinds in order.  An artifact in a ``.swu`` container
        (gooseBit accepts nothing else) is unwrapped first and replaced in ``doc`` by the
        package inside, which then passes the same check: the container is trusted for nothing."""
        trusted = TrustedKeys.from_directory(self.state_dir / "trusted-keys")
        kinds = []
        for i, art in enumerate(dep.artifacts):
            path = self.uploads.path(doc["artifacts"][i])
            if swu.is_swu(path):
                inner = path.with_name(f".unwrapped-{doc['artifacts'][i]}")
                try:
                    swu.unwrap(path, inner)
                    doc["artifacts"][i] = self.uploads.add_file(inner)
                except swu.SwuError as exc:
                    raise UpgradeRejected("container", f"{art.filename}: {exc}") from None
                finally:
                    inner.unlink(missing_ok=True)
                self.save(doc)
                self.uploads.remove(path.name)
                path = self.uploads.path(doc["artifacts"][i])
            kind = peek_manifest(path).get("kind")
            if kind not in KINDS:
                raise UpgradeRejected("kind", f"{art.filename} is a {kind!r} package; this "
                                      f"controller installs {' and '.join(KINDS)} packages")
            with open_package(path, trusted, kind=kind):
                pass
            kinds.append(kind)
        return kinds

    async def _install(self, doc: dict) -> None:
        doc["tries"] = doc.get("tries", 0) + 1
        if doc["tries"] > MAX_INSTALL_TRIES:
            await self._finish(doc, False, f"the install was interrupted {MAX_INSTALL_TRIES} "
                               f"times without finishing; giving up")
            return
        doc["stage"] = "installing"
        self.save(doc)
        for i, (sha, kind) in enumerate(zip(doc["artifacts"], doc["kinds"])):
            if i < doc.get("installed", 0):
                continue
            await self.client.feedback(doc["id"], "proceeding", details=[f"installing {kind}"])
            try:
                result = await self.installers.install(kind, sha, doc)
            except LedwardenError as exc:
                reason = f"{exc.reason}: {exc}" if isinstance(exc, UpgradeRejected) else str(exc)
                await self._finish(doc, False, f"{kind} not installed ({reason}); the running "
                                   f"version is untouched")
                return
            if result is None:                       # a controller switch: judged after restart
                doc["stage"] = "switched"
                self.save(doc)
                return
            if not result[0]:
                await self._finish(doc, False, result[1])
                return
            doc["installed"] = i + 1
            doc["notes"] = doc.get("notes", []) + [result[1]]
            self.save(doc)
        await self._finish(doc, True, "; ".join(doc.get("notes", [])) or "installed")

    async def _resume(self, doc: dict) -> None:
        """After a restart in the middle of an install: never start over what already happened."""
        index = doc.get("installed", 0)
        kind = doc["kinds"][index]
        fate = self.installers.outcome(kind, doc)
        if fate == "running":
            self.pending = (kind, doc)
            return
        if fate is None:
            if doc["stage"] == "switched":
                await self._finish(doc, False, "the switch to the new version left no trace in "
                                   "the slot state; the running version is unchanged")
                return
            await self._install(doc)                 # it never began: begin (counted)
            return
        assert isinstance(fate, tuple)
        ok, reason = fate
        if not ok:
            await self._finish(doc, False, reason)
            return
        doc.update(installed=index + 1, stage="installing", notes=doc.get("notes", []) + [reason])
        self.save(doc)
        if doc["installed"] < len(doc["artifacts"]):
            await self._install(doc)
        else:
            await self._finish(doc, True, "; ".join(doc["notes"]))

    async def _cancel(self, doc: dict, href: str) -> None:
        cancel_id, stop_id = await self.client.cancel_stop_id(href)
        if doc.get("id") == stop_id and doc.get("stage") in ("installing", "switched", "finished"):
            await self.client.feedback(cancel_id, "rejected", details=[
                f"action {stop_id} is past its download and cannot be stopped safely"], cancel=True)
            return
        if doc.get("id") == stop_id:
            for sha in doc.get("artifacts", []):
                await asyncio.to_thread(self.uploads.remove, sha)
            kept = {k: doc[k] for k in KEPT if k in doc}
            self.save(kept | {"reported": (kept.get("reported", []) + [stop_id])[-REMEMBERED:]})
        await self.client.feedback(cancel_id, "closed", "success",
                                   details=[f"action {stop_id} cancelled; nothing was installed"],
                                   cancel=True)
