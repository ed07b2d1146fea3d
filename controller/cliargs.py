"""Argument types shared by the board's, the simulator's and the host's commands."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from controller.cliout import add_json_flag
from controller.errors import NotFound

#: Where the board keeps its state unless told otherwise (docs/deployment.md).
DEFAULT_STATE = "/var/lib/ledwarden"


def state_dir(text: str) -> str:
    """The argparse type of every ``--state``: the directory made absolute when the command is
    parsed, so a relative ``--state`` means the same thing to every process the command starts
    (the installer's smoke test runs the new slot's interpreter from another working directory)."""
    return os.path.abspath(os.path.expanduser(text))


def existing_state(args: argparse.Namespace) -> Path:
    """The state directory of a command that only looks at it: a command that reads must never
    create one, so a misspelt ``--state`` is refused instead of showing an empty new board."""
    path = Path(args.state)
    if not path.is_dir():
        raise NotFound(f"no state directory at {path}; is --state right?")
    return path


def board_admin_parent() -> argparse.ArgumentParser:
    """The parent parser of the board's administration actions (``controller token|trust|install|
    slots``): ``--state DIR`` and ``--json``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state", metavar="DIR", default=DEFAULT_STATE, type=state_dir,
                        help=f"the controller's state directory (default {DEFAULT_STATE})")
    add_json_flag(common)
    return common


def host_port(default_host: str) -> Callable[[str], tuple[str, int]]:
    """An argparse type for ``HOST:PORT`` (``:PORT`` alone means ``default_host``)."""
    def parse(text: str) -> tuple[str, int]:
        host, _, port = text.rpartition(":")
        try:
            number = int(port)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT") from None
        if not 0 <= number <= 65535:
            raise argparse.ArgumentTypeError(f"port {number} is outside 0..65535")
        return host or default_host, number
    return parse


def add_rs485_arguments(group) -> None:
    """``--rs485``, ``--rts-low-for-tx``, ``--rs485-delay``: the same for ``bus`` and ``controller run``."""
    group.add_argument("--rs485", action="store_true",
                       help="drive the transceiver's driver enable with RTS (pyserial RS-485 mode, "
                            "the kernel's TIOCSRS485; on the Pi interface of docs/hardware.md: "
                            "GPIO17, header pin 11)")
    group.add_argument("--rts-low-for-tx", action="store_true",
                       help="with --rs485: RTS low while sending (inverted driver enable)")
    group.add_argument("--rs485-delay", type=float, metavar="S",
                       help="with --rs485: settle time before and after sending, in seconds")


def rs485_from_args(args):
    """The RS485Config the arguments ask for, or None when the port needs no driver enable."""
    from controller.protocol.bus import RS485Config
    if not args.rs485:
        return None
    return RS485Config(rts_level_for_tx=not args.rts_low_for_tx, rts_level_for_rx=args.rts_low_for_tx,
                       delay_before_tx=args.rs485_delay, delay_before_rx=args.rs485_delay)

