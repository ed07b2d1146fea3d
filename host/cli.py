"""The ``ledwarden`` command line: one program, one subcommand per job.

Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds an ``argparse`` parser and sets ``func`` to a callable taking the
parsed arguments and returning the exit status.  ``main(argv=None)`` is the
console entry point and is what tests call in-process.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from controller.errors import LedwardenError
from host.settings import add_target_arguments

#: Modules that contribute subcommands, in the order ``--help`` lists them.
SUBCOMMAND_MODULES = (
    "host.demo",
    "host.remote",
    "host.selftestcli",
    "host.faultscli",
    "host.buscli",
    "hw.sim.cli",
    "controller.service.cli",
    "host.bench",
    "host.keyscli",
)

#: Command groups whose actions come from several modules: ``ledwarden bundle build`` (controller
#: bundles) and ``ledwarden bundle build-firmware`` (card firmware) live apart but share a group.
#: Each module listed exposes ``register_actions(group_subparsers)``.
COMMAND_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bundle": ("build, sign and verify update bundles and card firmware packages",
               ("host.bundlecli", "host.firmwarecli")),
    "upgrade": ("upgrade the controller's software or the cards' firmware",
                ("host.upgrade_controller", "host.upgrade_cards")),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledwarden",
        description="Maintenance controller for LED video walls.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug including bus traffic)")
    add_target_arguments(parser.add_argument_group("controller (for status, cards, commission, … )"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for group, (summary, modules) in COMMAND_GROUPS.items():
        if not modules:
            continue
        parser_ = sub.add_parser(group, help=summary, description=summary[0].upper() + summary[1:] + ".")
        actions = parser_.add_subparsers(dest="action", metavar="ACTION", required=True)
        for name in modules:
            importlib.import_module(name).register_actions(actions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except LedwardenError as exc:
        print(f"ledwarden: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ledwarden: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
