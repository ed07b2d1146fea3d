"""How the command line prints: readable tables for people, ``--json`` for programs,
and a progress line on stderr for anything that takes seconds.

The laptop's commands (``host/``) and the board's own (``controller token|trust|install|slots``)
print alike, so this lives below both, beside :mod:`controller.cliargs`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def emit_json(data: Any) -> None:
    """One indented JSON document on stdout; ``default=str`` so paths and dates need no care."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def add_json_flag(parser: argparse._ActionsContainer, help: str = "print JSON") -> None:
    """Give ``parser`` the ``--json`` switch every command has, under the name :func:`emit` reads."""
    parser.add_argument("--json", action="store_true", help=help)


def wants_json(args: argparse.Namespace) -> bool:
    """Whether this run prints for a program; commands without the flag always print for people."""
    return bool(getattr(args, "json", False))


def emit(args: argparse.Namespace, data: T, show: Callable[[T], int | None]) -> int:
    """Print ``data`` as JSON under ``--json``, else let ``show`` draw it for a person.

    The one place that chooses between the two, so no command can print a
    table into a pipe that asked for JSON.  Returns ``show``'s exit status
    (None counts as 0); the JSON branch returns 0, because a program reads
    the outcome from the document itself.
    """
    if wants_json(args):
        emit_json(data)
        return 0
    return show(data) or 0


def notice(args: argparse.Namespace, text: str) -> None:
    """A line for the person watching, on stderr; nothing under ``--json``, so the document stays alone."""
    if not wants_json(args):
        print(text, file=sys.stderr)


def table(rows: Sequence[Sequence], headers: Sequence[str]) -> str:
    """A plain aligned text table; numbers align right."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [bool(rows) and all(isinstance(r[i], (int, float)) for r in rows)
               for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(row, widths, numeric)).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second.

    Silent when stderr is not a terminal or when ``enabled`` is false (``--json``),
    so logs and pipes stay clean.
    """

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
