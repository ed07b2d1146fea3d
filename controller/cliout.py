"""How the command line prints: readable tables for people, ``--json`` for programs,
and a progress line on stderr for anything that takes seconds.

The laptop's commands (``host/``) and the board's own (``controller token|trust|install|slots``)
print alike, so this lives below both, beside :mod:`controller.cliargs`."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence


def emit_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


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
