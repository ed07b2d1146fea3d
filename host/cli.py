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
import os
import select
import sys
import traceback
from collections.abc import Sequence

from controller.errors import LedwardenError
from host.pinning import register_forget
from host.settings import add_target_arguments

#: Modules that contribute subcommands, in the order ``--help`` lists them.
SUBCOMMAND_MODULES = (
    "host.demo",
    "host.remote",
    "host.brightnesscli",
    "host.selftestcli",
    "host.faultscli",
    "host.picturecli",
    "host.calibratecli",
    "host.sourcecli",
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
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an unexpected error (or set {DEBUG_ENV}=1)")
    add_target_arguments(parser.add_argument_group("controller (for status, cards, commission, … )"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        actions = importlib.import_module(name).register(sub)
        if name == "controller.service.cli":
            # ``controller forget`` drops a pin kept on this laptop: host code, so the board's
            # module (which must not import the laptop's) leaves it to be added here
            register_forget(actions)
    for group, (summary, modules) in COMMAND_GROUPS.items():
        if not modules:
            continue
        parser_ = sub.add_parser(group, help=summary, description=summary[0].upper() + summary[1:] + ".")
        actions = parser_.add_subparsers(dest="action", metavar="ACTION", required=True)
        for name in modules:
            importlib.import_module(name).register_actions(actions)
    return parser


#: Exit statuses besides 0 (done), 1 (refused or failed, said in one line) and argparse's 2 (the
#: command line itself is wrong); docs/service.md lists them.
EXIT_BUG = 70           # sysexits.h EX_SOFTWARE: an error ledwarden did not expect
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as shells report `yes | head -1`

#: ``LEDWARDEN_DEBUG=1`` (or ``--debug``) shows the traceback of an unexpected error.
DEBUG_ENV = "LEDWARDEN_DEBUG"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every way it can end becomes an exit status and at most one line on stderr.

    This is the only place that turns exceptions into words, so no command can end in a
    traceback: the project's own errors and the operating system's (a port in use, a directory
    that cannot be made) print ``ledwarden: error: …``; a reader that stopped reading (``| head``)
    ends the command quietly, as Unix tools do; anything else is a bug and says so.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
        logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        status = int(args.func(args) or 0)
        sys.stdout.flush()      # a closed pipe shows here, not in the interpreter's exit
        return status
    except SystemExit:          # argparse's --help (0) and usage errors (2) keep their status
        _flush_quietly()
        raise
    except BrokenPipeError as exc:
        if not _stdout_gone():  # another pipe or socket broke: an error like any other
            _error(f"error: {describe_os_error(exc)}")
            return 1
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except LedwardenError as exc:
        _error(f"error: {exc}")
        return 1
    except OSError as exc:
        _error(f"error: {describe_os_error(exc)}")
        return 1
    except Exception as exc:  # noqa: BLE001 - the one place every other error becomes a sentence
        if debug:
            traceback.print_exc()
        _error(f"internal error: {type(exc).__name__}: {exc}; this is a bug; please report it "
               f"with the output of the same command run with --debug")
        return EXIT_BUG


def describe_os_error(exc: OSError) -> str:
    """``Permission denied: /var/lib/ledwarden`` rather than ``[Errno 13] …``."""
    text = exc.strerror or str(exc)
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{text}: {' -> '.join(names)}" if names else text


def _error(text: str) -> None:
    try:
        _flush_quietly()
        print(f"ledwarden: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass                    # stderr itself is gone: the exit status still tells


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except (OSError, ValueError):
        pass


def _stdout_gone() -> bool:
    """Whether stdout's reader has gone (the write end of a pipe with no reader reports an
    error to ``poll``).  A stdout that is not a real file (tests swap it) counts as gone."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush of what is still buffered
    cannot fail a second time (the recipe in Python's ``signal`` documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass                    # not a real file (tests swap sys.stdout): nothing to flush later


if __name__ == "__main__":
    sys.exit(main())
