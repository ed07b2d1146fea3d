"""A real ``ledwarden controller run`` process on loopback, for the end-to-end tests."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREEN = ROOT / "host" / "demo_wall.toml"      # eight cabinets at addresses 1..8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(state: Path, bus: str, *options: str, port: int = 0) -> tuple[subprocess.Popen, str]:
    """Start the controller on the demo screen; returns the process and its URL, read from the
    first line it prints (which it prints once it serves)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "controller", "run", "--screen", str(SCREEN), "--bus", bus,
         "--listen", f"127.0.0.1:{port}", "--state", str(state), *options],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if len(line) != 2:
        proc.kill()
        raise AssertionError(f"controller did not start: {proc.stderr.read()}")
    return proc, line[0]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, and the service must shut down cleanly (exit 0)."""
    proc.terminate()
    assert proc.wait(timeout=20) == 0
