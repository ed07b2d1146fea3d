"""Argument types shared by the board's, the simulator's and the host's commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable


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
