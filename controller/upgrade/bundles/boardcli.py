"""``ledwarden controller boot|install|slots``: the upgrade commands run on the board itself.

``boot`` is the boot guard (what ``ledwarden.service`` runs, through the
lighter ``python -m controller.upgrade.bundles.bootguard``); ``install`` installs a
bundle from a file without the API — provisioning a board, or a USB stick
in the field — through exactly the same transaction as an upgrade over the
network; ``slots`` shows both slots and the trial.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from controller.cliargs import DEFAULT_STATE, board_admin_parent, existing_state
from controller.cliout import Progress, emit, table, wants_json
from controller.upgrade.bundles import bootguard, installer
from controller.upgrade.bundles.slots import SlotStore


def _install(args: argparse.Namespace) -> int:
    bar = Progress("install", enabled=not wants_json(args))

    def progress(step: str, done: int, total: int) -> None:
        bar.label = step[:40]
        bar(done, total)

    state = Path(args.state)
    result = installer.Installer(state, running_version=installer.running_version(state),
                                 progress=progress).install(Path(args.bundle))
    return emit(args, result.as_dict(), lambda _: print(
        f"installed {result.version} in slot {result.slot} (transaction "
        f"{result.transaction}, {result.seconds} s); it starts on trial at the service's "
        f"next start: 'systemctl restart ledwarden'"))


def show_slots(doc: dict) -> str:
    """The slots as people read them (also used by the host's upgrade command)."""
    rows = []
    for name, slot in doc["slots"].items():
        health = slot["health"] or {}
        rows.append((name, slot["role"], slot["version"] or "-", slot["installed"] or "-",
                     "yes" if slot["confirmed"] else ("FAILED" if health.get("healthy") is False else "no"),
                     slot["transaction"] or "-"))
    lines = [table(rows, ["slot", "role", "version", "installed", "confirmed", "transaction"])]
    lines.append(f"current: {doc['current']}   previous: {doc['previous']}   "
                 f"anti-rollback floor: {doc['floor']}")
    if doc["trial"]:
        t = doc["trial"]
        lines.append(f"on trial: slot {t['slot']} ({t['version']}), started {t['boots']} time(s), "
                     f"transaction {t['transaction']}")
    last = doc["last_transaction"]
    if last:
        lines.append(f"last transaction {last['transaction']}: {last.get('from_version')} -> "
                     f"{last['version']} {last['outcome']}"
                     + (f" ({last['reason']})" if last.get("reason") else ""))
    if doc.get("problem"):
        lines.append(f"PROBLEM: {doc['problem']}")
    return "\n".join(lines)


def _slots(args: argparse.Namespace) -> int:
    doc = SlotStore(existing_state(args)).describe()
    return emit(args, doc, lambda d: print(show_slots(d)))


def register(controller_sub) -> None:
    """Add ``boot``, ``install`` and ``slots`` to the ``controller`` command's subparsers."""
    boot = controller_sub.add_parser(
        "boot", help="the boot guard: run the current slot's controller, roll back a bad version",
        description=bootguard.__doc__.split("\n\n")[0])
    bootguard.add_arguments(boot, DEFAULT_STATE)
    boot.set_defaults(func=bootguard.run_from_args)

    common = board_admin_parent()
    inst = controller_sub.add_parser(
        "install", parents=[common], help="install a controller bundle from a file (on the board)",
        description="Install a signed controller bundle into the inactive slot, offline; the "
                    "service starts it on trial at its next start.")
    inst.add_argument("bundle", metavar="BUNDLE")
    inst.set_defaults(func=_install)
    slots = controller_sub.add_parser("slots", parents=[common],
                                      help="both slots, their versions and the trial")
    slots.set_defaults(func=_slots)
