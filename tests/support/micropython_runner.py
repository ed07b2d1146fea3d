"""Run code under real MicroPython: the WebAssembly port from npm, driven by Node.

Why this and not a stub check: a type check against MicroPython's stubs
passed firmware that crashed on its first boot (``Flash.__new__``,
``Exception.__init__``).  Only the interpreter knows its semantics.  The
package ``@micropython/micropython-webassembly-pyscript`` is MicroPython
1.27 compiled to WebAssembly; ``micropython/run.mjs`` beside this file copies
a folder into the interpreter's own filesystem (flat, as a card keeps its
modules), imports one module there and calls its ``main()``.  Its heap is set like a board's, so a
firmware that needs more RAM than a card has fails here too.

``ensure()`` installs the pinned package with ``npm ci`` on first use.
Without Node or npm a test skips with a message on a developer's machine
and fails in CI (``CI`` set), where ``.ci/run`` installs Node.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent / "micropython"
PACKAGE = HARNESS / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
#: A RP2040 board's MicroPython heap is about 192 KiB (264 KiB of RAM, less the port's own).
BOARD_HEAP = 192 * 1024


@dataclass
class Run:
    """One interpreter run: exit status, what it printed, and the files it left in out/."""

    status: int
    stdout: str
    stderr: str
    out: Path

    def file(self, name: str) -> str:
        path = self.out / name
        return path.read_text() if path.exists() else ""


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what}; CI must run the firmware under MicroPython (.ci/run installs Node)")
    pytest.skip(f"{what}: the firmware's MicroPython tests need Node.js and npm (CI runs them)")


def ensure() -> None:
    """Node present and the pinned MicroPython installed (``npm ci``, once); else skip or fail."""
    if shutil.which("node") is None:
        _missing("node is not installed")
    if (PACKAGE / "micropython.mjs").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        _missing("npm is not installed")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                          cwd=HARNESS, capture_output=True, text=True, timeout=300)
    if done.returncode or not (PACKAGE / "micropython.mjs").exists():
        _missing(f"npm ci in {HARNESS} failed: {(done.stderr or done.stdout).strip()[-400:]}")


def run(board: Path, main: str, *, heap: int = BOARD_HEAP, timeout: float = 300) -> Run:
    """Copy the files of ``board`` into MicroPython's filesystem and run ``main.main()`` there."""
    ensure()
    done = subprocess.run(["node", str(HARNESS / "run.mjs"), "--board", str(board), "--main", main,
                           "--heap", str(heap)], capture_output=True, text=True, timeout=timeout)
    if done.returncode == 2:
        raise RuntimeError(f"the MicroPython harness failed: {done.stderr.strip()[-800:]}")
    return Run(done.returncode, done.stdout, done.stderr, board / "out")
