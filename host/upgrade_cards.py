"""``ledwarden upgrade cards PACKAGE``: receiving-card firmware through the controller.

1. reads the package's manifest to say what it is (given ``--key``, verifies
   the whole package locally first; the controller verifies it regardless);
2. uploads it, resuming whatever the controller already holds of it;
3. starts the upgrade job (``--cards``, ``--canary``, ``--force``) and follows
   it: per-card progress, redrawn as a grid on a terminal, one line per
   change otherwise;
4. prints a summary table.  Exit status 0 only if every card ended installed
   or skipped.

Run it again after an interruption and it continues from what the cards
hold; if the controller restarted meanwhile and resumed the upgrade itself,
this follows that job.  Without a package it shows the plan kept for
resuming and the last job.  Needs the ``service`` role (``viewer`` to show).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from controller.cardaddress import hex_address
from controller.cliout import Progress, emit_json, table
from controller.errors import LedwardenError, UpgradeRejected
from controller.upgrade import package, signing
from controller.upgrade.cards import firmware
from host.buscli import parse_addresses
from host.client import ApiError, ControllerTimeout, ControllerUnreachable
from host.remote import client_for
from host.upload import upload_file

API = "/api/v1/upgrade/cards"
KIND = "upgrade-cards"
POLL_S = 0.25
FINISHED = ("succeeded", "failed", "cancelled")
SHORT = {"pending": "pending", "receiving": "receiving", "received": "received",
         "booting": "booting", "checking": "checking", "installed": "INSTALLED",
         "skipped": "skipped", "rolled-back": "ROLLED BACK", "failed": "FAILED", "held": "held",
         "not-started": "not started"}


def read_manifest(path: Path, keys: list[Path]) -> dict:
    """What the package says it is: verified with ``keys`` when given, else only read."""
    if keys:
        trusted = signing.TrustedKeys.of(*[signing.load_public(k) for k in keys])
        return firmware.open_firmware(path, trusted).describe() | {"verified": True}
    try:
        manifest = package.peek_manifest(path)
    except UpgradeRejected as exc:
        raise LedwardenError(f"{path} is not a card firmware package ({exc}); build one with "
                             f"'ledwarden bundle build-firmware'") from None
    if manifest.get("kind") != firmware.KIND:
        raise LedwardenError(f"{path} is a {manifest.get('kind')!r} package, not card firmware "
                             f"(for controller bundles use 'ledwarden upgrade controller')")
    return manifest | {"verified": False}


class CardBoard:
    """Draws a job's per-card progress: a redrawn grid on a terminal, change lines otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet
        self.lines = 0
        self.last: dict[int, str] = {}
        self.phase = None

    def __call__(self, job: dict) -> None:
        if self.quiet:
            return
        progress = job.get("progress") or {}
        cards = progress.get("cards") or []
        if self.tty:
            self._redraw(progress, cards)
            return
        if progress.get("phase") and progress["phase"] != self.phase:
            self.phase = progress["phase"]
            print(f"phase: {self.phase}", file=sys.stderr)
        for card in cards:
            if self.last.get(card["address"]) != card["state"]:
                self.last[card["address"]] = card["state"]
                extra = f": {card['detail']}" if card["detail"] and card["state"] in (
                    "failed", "rolled-back", "skipped") else ""
                print(f"card {hex_address(card['address'])} {card['state']}{extra}", file=sys.stderr)

    def _redraw(self, progress: dict, cards: list[dict]) -> None:
        width = shutil.get_terminal_size((100, 24)).columns
        out = [f"{progress.get('step', '')[:width - 1]}"]
        chunks = max(progress.get("chunks") or 1, 1)
        cells = [f"{hex_address(k['address'])} " + (f"receiving {100 * k['received'] // chunks:3d}%"
                                            if k["state"] == "receiving"
                                            else f"{SHORT.get(k['state'], k['state']):<14}")
                 for k in cards]
        per_line = max(1, width // 21)
        out += ["  ".join(cells[i:i + per_line]) for i in range(0, len(cells), per_line)]
        sys.stderr.write(("\x1b[F\x1b[2K" * self.lines) + "\n".join(out) + "\n")
        sys.stderr.flush()
        self.lines = len(out)


def follow_upgrade(client, job: dict, board: CardBoard) -> dict:
    """Poll the job to its end.  Across a controller restart, follow the job that resumed the
    upgrade: job ids start again at 1 in a new process, so it is found through the plan."""
    upload = job["params"]["upload"]
    lost = False
    while True:
        try:
            if lost:
                plan = client.get(API)["plan"] or {}
                if plan.get("upload") != upload or plan.get("job") is None:
                    raise LedwardenError("the controller restarted and no longer works on this "
                                         "upgrade; see 'ledwarden upgrade cards'")
                job, lost = {"id": plan["job"]}, False
            job = client.get(f"/api/v1/jobs/{job['id']}")
            if job["kind"] != KIND or job["params"].get("upload") != upload:
                lost = True   # restarted between two polls: another job has this id now
                continue
        except (ControllerUnreachable, ControllerTimeout):
            lost = True
            time.sleep(1.0)   # restarting: it resumes the upgrade by itself
            continue
        except ApiError as exc:
            if exc.status != 404:
                raise
            lost = True
            time.sleep(POLL_S)
            continue
        board(job)
        if job["state"] in FINISHED:
            return job
        time.sleep(POLL_S)


def summary(job: dict) -> str:
    result = job.get("result") or {}
    cards = result.get("cards") or (job.get("progress") or {}).get("cards") or []
    rows = [(hex_address(k['address']), k["version_before"], k["version_after"] or "",
             k["bank_after"] or k["bank_before"] or "", k["state"], k["repairs"],
             k["detail"][:70]) for k in cards]
    lines = [table(rows, ["card", "before", "after", "bank", "state", "repairs", "detail"])]
    counts: dict[str, int] = {}
    for k in cards:
        counts[k["state"]] = counts.get(k["state"], 0) + 1
    tally = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    if result:
        lines.append(f"{tally} in {result['seconds']:.1f} s; {result['broadcast_chunks']} chunk "
                     f"broadcasts, {result['unicast_chunks']} chunks repaired card by card")
    else:
        lines.append(tally)
    return "\n".join(lines)


def cmd_cards(args: argparse.Namespace) -> int:
    client = client_for(args)
    if args.package is None:
        doc = client.get(API)
        if args.json:
            emit_json(doc)
            return 0
        plan = doc["plan"]
        if plan is None:
            print("no card firmware upgrade has run on this controller")
        else:
            pkg = plan["package"]
            print(f"last upgrade: card firmware {pkg['version']} for hw_model "
                  f"{pkg['hw_model_hex']} to {len(plan['addresses'])} cards, {plan['state']} "
                  f"(phase {plan['phase']}, job {plan['job']}, by {plan['started_by']})")
            if plan.get("failure"):
                print(f"  {plan['failure']}")
        if doc["job"]:
            print(summary(doc["job"]))
        return 0

    def say(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr)

    path = Path(args.package)
    if not path.is_file():
        raise LedwardenError(f"no firmware package at {path}")
    manifest = read_manifest(path, [Path(k) for k in args.key or []])
    say(f"{path.name}: card firmware {manifest.get('version')} for hw_model "
        f"0x{manifest.get('hw_model', 0):04X}, {manifest.get('size')} bytes"
        f"{' (verified)' if manifest['verified'] else ''}")
    upload_id = upload_file(client, path, progress=Progress("upload", enabled=not args.json),
                            resumed=lambda n: say(f"the controller already holds {n} bytes of it"))
    body = {"upload": upload_id, "canary": args.canary, "force": args.force}
    if args.cards:
        body["addresses"] = args.cards
    job = client.post(API, body)
    say(f"job {job['id']}: upgrading {len(job['params']['addresses'])} cards, canary "
        f"{job['params']['canary']} first")
    job = follow_upgrade(client, job, CardBoard(quiet=args.json))
    result = job.get("result") or {}
    outcome = result.get("result") or job["state"]
    if args.json:
        emit_json({"outcome": outcome, "job": job})
    else:
        print(summary(job))
        if job["state"] != "succeeded":
            print(f"ledwarden: card upgrade {job['state']}: {job['error']}", file=sys.stderr)
    return 0 if job["state"] == "succeeded" else 1


def register_actions(actions: argparse._SubParsersAction) -> None:
    """Add ``cards`` to the ``upgrade`` group."""
    p = actions.add_parser("cards", help="upgrade receiving cards' firmware from a package",
                           description="Upgrade receiving cards' firmware through the controller: "
                                       "upload the package, broadcast it to every card at once, "
                                       "commit the canary first, then the rest. Running it again "
                                       "continues an interrupted upgrade.")
    p.add_argument("package", nargs="?", metavar="PACKAGE",
                   help="a package from 'ledwarden bundle build-firmware' (omit it to show the "
                        "last upgrade)")
    p.add_argument("--cards", type=parse_addresses, metavar="ADDRESSES",
                   help="which cards, e.g. 1-64 or 1-8,12 (default: every cabinet of the screen)")
    p.add_argument("--canary", type=int, default=1, metavar="N",
                   help="cards committed, booted, checked and confirmed before the rest "
                        "(default 1)")
    p.add_argument("--force", action="store_true",
                   help="also upgrade cards already running this version")
    p.add_argument("--key", action="append", metavar="KEY.pub",
                   help="verify the package locally with this public key before uploading")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_cards)
