"""A real ``ledwarden controller run`` process on loopback, for the end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from controller.service.auth import TokenStore

ROOT = Path(__file__).resolve().parents[2]
SCREEN = ROOT / "host" / "demo_wall.toml"      # eight cabinets at addresses 1..8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(state: Path, bus: str, *options: str, port: int = 0,
          screen: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Start the controller on ``screen`` (default the demo screen); returns the process and its
    URL, read from the first line it prints (which it prints once it serves)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "controller", "run", "--screen", str(screen or SCREEN),
         "--bus", bus,
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


@dataclass
class Running:
    """A started controller: its URL, a token, its state directory and its process."""

    url: str
    token: str
    state: Path
    proc: subprocess.Popen


@contextmanager
def running(tmp: Path, bus: str, role: str, *options: str, name: str | None = None,
            screen: Path | None = None) -> Iterator[Running]:
    """A controller on ``bus`` with a new state directory under ``tmp`` and a token of ``role``;
    the host tool keeps its configuration under ``tmp`` too.  Stopped cleanly at the end, unless
    the test stopped it itself."""
    state = tmp / "state"
    state.mkdir()
    token = TokenStore(state / "tokens.db").create(name or f"{role}-1", role)
    saved = os.environ.get("LEDWARDEN_CONFIG_DIR")
    os.environ["LEDWARDEN_CONFIG_DIR"] = str(tmp / "host-config")
    proc, url = start(state, bus, *options, screen=screen)
    try:
        yield Running(url, token, state, proc)
    finally:
        if proc.poll() is None:
            stop(proc)
        if saved is None:
            os.environ.pop("LEDWARDEN_CONFIG_DIR", None)
        else:
            os.environ["LEDWARDEN_CONFIG_DIR"] = saved
