"""``ledwarden upgrade controller BUNDLE``: upgrade a controller's software and say how it ended.

What it does, in the order a service engineer would check it by hand:

1. reads the bundle's manifest (and, given ``--key``, verifies the whole
   bundle locally first, so a bad file is caught before a slow upload);
2. uploads it with a progress bar, resuming from whatever the board already
   holds of it (``host/upload.py``);
3. starts the install job and follows it: signature, checks, the inactive
   slot, the switch — a refused bundle ends here with the board's reason;
4. waits, through the controller's restart, until the new version has either
   confirmed its health (kept) or been rolled back by the boot guard, and
   reports which: ``upgraded 1.0.0 → 1.1.0, confirmed healthy`` or
   ``1.2.0 failed its health check: …; rolled back to 1.1.0``.

Exit status 0 only for a confirmed upgrade.  Without a bundle it shows both
slots.  Needs a token with the ``service`` role (``viewer`` to show).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from controller.cliout import Progress, emit_json
from controller.errors import LedwardenError, UpgradeRejected
from controller.upgrade import package, signing
from controller.upgrade.bundles.boardcli import show_slots
from controller.upgrade.bundles.bundle import KIND, check_contents
from host.client import ApiError, ControllerTimeout, ControllerUnreachable
from host.remote import client_for, follow
from host.upload import upload_file

STATUS = "/api/v1/upgrade/controller"
POLL_S = 1.0


def read_manifest(path: Path, keys: list[Path]) -> dict:
    """The bundle's manifest: verified with every payload file when ``keys`` are given, else
    only read (for what to print; the board verifies it regardless)."""
    if keys:
        trusted = signing.TrustedKeys.of(*[signing.load_public(k) for k in keys])
        with package.open_package(path, trusted, kind=KIND) as pkg:
            check_contents(pkg.manifest)
            pkg.verify_all()
            return pkg.manifest
    try:
        return package.peek_manifest(path)
    except UpgradeRejected as exc:
        raise LedwardenError(f"{path} is not a ledwarden bundle ({exc}); build one with "
                             f"'ledwarden bundle build'") from None


def wait_for_outcome(client, transaction: str, timeout: float, say) -> dict:
    """Poll through the restart until the guard has judged ``transaction``; return the status."""
    deadline = time.monotonic() + timeout
    seen_down = False
    last_note = ""
    while time.monotonic() < deadline:
        try:
            doc = client.get(STATUS)
        except (ControllerUnreachable, ControllerTimeout):
            if not seen_down:
                say("the controller is restarting …")
                seen_down = True
            time.sleep(POLL_S)
            continue
        except ApiError as exc:
            if exc.status < 500:
                raise
            time.sleep(POLL_S)
            continue
        last = doc.get("last_transaction") or {}
        if last.get("transaction") == transaction and last.get("outcome") in ("confirmed", "rolled-back"):
            # Done when the slot the verdict chose is the one answering.
            if doc["running"]["slot"] == (last["slot"] if last["outcome"] == "confirmed"
                                          else last.get("back_to")):
                return doc
        trial = doc.get("trial") or {}
        if trial.get("transaction") == transaction and doc["running"]["slot"] == trial["slot"]:
            note = (f"{trial['version']} is running on trial (start {trial['boots']}): "
                    f"{doc['confirmation']['detail'] or 'checking its health'}")
            if note != last_note:
                say(note)
                last_note = note
        time.sleep(POLL_S)
    raise LedwardenError(f"no verdict on transaction {transaction} after {timeout:g} s: the "
                         f"controller may still be checking its health; see 'ledwarden upgrade "
                         f"controller' (without a bundle) for its slots, and its log")


def cmd_upgrade(args: argparse.Namespace) -> int:
    client = client_for(args)
    if args.bundle is None:
        doc = client.get(STATUS)
        if args.json:
            emit_json(doc)
        else:
            r = doc["running"]
            print(f"running {r['version']} from {'slot ' + r['slot'] if r['slot'] not in (None, 'base') else 'the base installation'}"
                  f"{'' if r['guarded'] else ' (not under the boot guard: upgrades are refused)'}")
            print(show_slots(doc))
        return 0

    def say(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr)

    bundle = Path(args.bundle)
    if not bundle.is_file():
        raise LedwardenError(f"no bundle at {bundle}")
    manifest = read_manifest(bundle, [Path(k) for k in args.key or []])
    before = client.get(STATUS)
    say(f"{bundle.name}: ledwarden {manifest.get('version')} for {manifest.get('platform')}, "
        f"{bundle.stat().st_size / 2**20:.1f} MiB{' (verified)' if args.key else ''}; the "
        f"controller runs {before['running']['version']}")
    upload_id = upload_file(client, bundle, progress=Progress("upload", enabled=not args.json),
                            resumed=lambda n: say(f"the controller already holds {n / 2**20:.1f} "
                                                  f"MiB of it: resuming there"))
    job = follow(client, client.post(STATUS, {"upload": upload_id}), quiet=args.json)
    if job["state"] != "succeeded":
        if args.json:
            emit_json({"outcome": "refused", "job": job})
        else:
            print(f"ledwarden: upgrade {job['state']}: {job['error']}", file=sys.stderr)
        return 1
    result = job["result"]
    say(f"installed {result['version']} in slot {result['slot']} (transaction "
        f"{result['transaction']}); waiting for it to confirm its health")
    doc = wait_for_outcome(client, result["transaction"], args.timeout, say)
    last = doc["last_transaction"]
    outcome = {"outcome": last["outcome"], "transaction": last["transaction"],
               "from_version": result["from_version"], "version": result["version"],
               "running": doc["running"]["version"], "reason": last.get("reason"),
               "status": doc}
    if args.json:
        emit_json(outcome)
    elif last["outcome"] == "confirmed":
        print(f"upgraded {result['from_version']} → {result['version']}, confirmed healthy "
              f"(transaction {last['transaction']})")
    else:
        print(f"{last['reason']}; rolled back to {last['back_version']} "
              f"(transaction {last['transaction']})")
    return 0 if last["outcome"] == "confirmed" else 1


def register_actions(actions: argparse._SubParsersAction) -> None:
    """Add ``controller`` to the ``upgrade`` group."""
    p = actions.add_parser("controller", help="upgrade the controller's software from a bundle",
                           description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("bundle", nargs="?", metavar="BUNDLE",
                   help="a bundle from 'ledwarden bundle build' (omit it to show the slots)")
    p.add_argument("--key", action="append", metavar="KEY.pub",
                   help="verify the bundle locally with this public key before uploading")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="how long to wait for the new version's verdict (default 600)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_upgrade)
