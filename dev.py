#!/usr/bin/env python3
"""Quick start: ``python3 dev.py demo`` runs the demo, ``python3 dev.py test`` the tests.

Why a Python script and not make or a shell script: the only things a fresh
machine is promised are Python 3.11+, a C compiler and the package registries.
Each command creates (or reuses) the project's virtual environment in
``.venv/``, installs the project with its test extras when ``pyproject.toml``
or ``setup.py`` changed since the last install, then runs the command inside
it.  Anything after the command name is passed on (``python3 dev.py test -k
codec``).

Three more commands check what stands in for hardware (``docs/hardware.md``):

- ``schematic`` regenerates the bus interface's KiCad netlist and SVG
  (``hw/schematics/``) and checks them against ``controller/board.py``;
- ``micropython`` runs the card firmware under real MicroPython (1.27,
  WebAssembly, from npm: needs Node.js) byte for byte against CPython,
  including the board entry on a stand-in ``machine``, and type-checks it
  against MicroPython's stubs;
- ``arm`` cross-compiles the fast path for ARM64 and checks it bit for bit
  against the NumPy reference under qemu.

They are in ``test`` too; on their own, a tool that is missing (the
cross compiler, qemu, the stubs) fails the check instead of skipping it, as
in CI.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".ledwarden-install-stamp"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def _install_fingerprint() -> str:
    """Hash of everything that decides what ``pip install`` must do."""
    h = hashlib.sha256()
    for name in ("pyproject.toml", "setup.py"):
        p = ROOT / name
        if p.exists():
            h.update(name.encode() + b"\0" + p.read_bytes())
    for c in sorted((ROOT / "controller" / "fastpath").glob("*.[ch]")):
        h.update(c.name.encode() + b"\0" + c.read_bytes())
    return h.hexdigest()


def ensure_env() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"ledwarden needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"dev.py: creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    want = _install_fingerprint()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    print("dev.py: installing ledwarden and its test dependencies (once)", flush=True)
    quiet = [] if os.environ.get("CI") else ["-q"]
    subprocess.run([str(PY), "-m", "pip", "install", *quiet, "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", *quiet, "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(want)


#: The hardware checks: command -> (what it checks, the tests that check it).
CHECKS = {
    "schematic": ("bus interface netlist and drawing", [
        "tests/hw/test_schematic.py", "tests/hw/test_bus_interface_failsafe.py"]),
    "micropython": ("card firmware on MicroPython", [
        "tests/hw/test_micropython.py", "tests/hw/test_firmware_on_micropython.py",
        "tests/hw/test_firmware_main.py", "tests/hw/test_card_cpu_time.py"]),
    "arm": ("fast path on ARM64 under qemu", ["tests/arm"]),
}


def check(cmd: str, rest: list[str]) -> int:
    """One hardware check: regenerate what it checks (schematic), then its tests, timed."""
    what, tests = CHECKS[cmd]
    start = time.monotonic()
    if cmd == "schematic":
        for module in ("hw.schematics.bus_interface", "hw.schematics.render_svg"):
            print(f"dev.py schematic: python -m {module}", flush=True)
            if subprocess.run([str(PY), "-m", module], cwd=ROOT).returncode:
                print(f"dev.py schematic: {module} failed (is skidl installed? pip install -e '.[test]')")
                return 1
    print(f"dev.py {cmd}: checking the {what}: pytest {' '.join(tests)}", flush=True)
    env = dict(os.environ, CI=os.environ.get("CI") or "1")  # a missing tool fails, as in CI
    code = subprocess.run([str(PY), "-m", "pytest", "-rs", *tests, *rest], cwd=ROOT, env=env).returncode
    verdict = "passed" if code == 0 else f"FAILED (pytest exit {code})"
    print(f"dev.py {cmd}: {verdict} in {time.monotonic() - start:.1f} s")
    return code


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", *CHECKS):
        print(__doc__.strip().splitlines()[0])
        print(f"Hardware checks: python3 dev.py {' | '.join(CHECKS)} (see docs/hardware.md)")
        return 2
    ensure_env()
    cmd, rest = argv[0], argv[1:]
    if cmd in CHECKS:
        return check(cmd, rest)
    if cmd == "demo":
        args = [str(BIN / "ledwarden"), "demo", *rest]
    else:
        args = [str(PY), "-m", "pytest", *rest]
    return subprocess.run(args, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
