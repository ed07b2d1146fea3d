"""What the controller-upgrade tests share: real bundles, boards with real slots, booting them.

Building a bundle (``pip wheel`` of the project and its dependencies) takes
about ten seconds and installing a slot about ten more, so everything here is
built once per test session and cached in one temporary directory; tests
work on copies (:meth:`Board.copy`, which hard-links the slots' installed
files — nothing writes into those in place — and copies everything else).

Boards: ``fresh_board()`` is a state directory that trusts the test key,
has a ``service`` token, and whose simulated cards were commissioned by the
base installation (the health check compares the cards with the screen
file).  ``board_on((N,))`` adds N in slot A, installed and confirmed through
the boot guard; ``board_on((N, N1))`` then N+1 in slot B.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from controller.service.auth import TokenStore
from controller.upgrade import signing
from host.client import ControllerClient
from host.demo_upgrade import (MIN_VERSION, N, N1, N2, broken_source, free_port, start_controller,
                               stop_controller, wait_settled)
from host.pinning import KnownControllers
from hw.sim.server import Simulator

ROOT = Path(__file__).resolve().parents[2]
CARDS = 8
#: Seconds each slow preparation took, for the docs and the report.
TIMES: dict[str, float] = {}

__all__ = ["N", "N1", "N2", "ROOT", "Board", "board_on", "bundle", "fresh_board", "ledwarden", "signing_key",
           "workdir", "TIMES"]


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="ledwarden-upgrade-tests-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def signing_key() -> tuple[Path, Path]:
    """(private, public) key files of the test service centre."""
    return signing.generate(workdir() / "keys", "centre")


@functools.cache
def bundle(version: str) -> Path:
    """A real bundle of this checkout at ``version``; N2 is the deliberately broken build."""
    out = workdir() / f"ledwarden-{version}.lwb"
    source = broken_source(workdir() / f"src-{version}", version) if version == N2 else ROOT
    t0 = time.monotonic()
    ledwarden("bundle", "build", "--version", version, "--min-version", MIN_VERSION[version],
              "--key", str(signing_key()[0]), "--out", str(out), "--source", str(source), "--json")
    TIMES[f"bundle build {version}"] = round(time.monotonic() - t0, 1)
    return out


def ledwarden(*argv: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """The command line in its own process, as on the board."""
    done = subprocess.run([sys.executable, "-m", "host.cli", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"ledwarden {' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return done


@dataclass
class Board:
    """A board's state directory and its simulated cards' flash, under ``root``."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def cards(self) -> Path:
        return self.root / "cards"

    @property
    def token(self) -> str:
        return (self.root / "service.token").read_text().strip()

    def copy(self, dest: Path) -> "Board":
        """A copy to change: installed slot files hard-linked, the rest (databases, journal,
        state files) copied, because those are written in place."""
        def copy(src: str, dst: str) -> None:
            rel = Path(src).relative_to(self.root).parts
            if len(rel) > 4 and rel[:2] == ("state", "slots") and rel[3] in ("env", "lib"):
                os.link(src, dst)
            else:
                shutil.copy2(src, dst)
        shutil.copytree(self.root, dest, symlinks=True, copy_function=copy)
        return Board(Path(dest))

    def client(self, port: int) -> ControllerClient:
        return ControllerClient(f"https://127.0.0.1:{port}", self.token,
                                known=KnownControllers(self.root / "known.json"),
                                on_new_pin=lambda *a: None)

    @contextmanager
    def running(self, *, guarded: bool = True, confirm_within: float = 60.0,
                max_starts: int | None = None) -> Iterator["Running"]:
        """The controller (under the boot guard unless ``guarded`` is false) and the cards."""
        port = free_port()
        with Simulator(CARDS, pty=True, state_dir=self.cards) as sim, \
                open(self.root / "controller.log", "ab") as log:
            def start() -> subprocess.Popen:
                return start_controller(self.state, sim.url, port, guarded=guarded,
                                        confirm_within=confirm_within, max_starts=max_starts,
                                        log=log)
            run = Running(self, start(), self.client(port), sim, start)
            try:
                yield run
            finally:
                stop_controller(run.proc)

    def log(self) -> str:
        path = self.root / "controller.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def journal(self) -> list[dict]:
        path = self.state / "upgrade-events.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@dataclass
class Running:
    board: Board
    proc: subprocess.Popen
    client: ControllerClient
    sim: Simulator
    start: Callable[[], subprocess.Popen]

    def settled(self, timeout: float = 90.0) -> dict:
        return wait_settled(self.client, timeout)

    def restart(self) -> bool:
        """Start the controller again if it has exited, as systemd's ``Restart=always`` does;
        True if it had to."""
        if self.proc.poll() is None:
            return False
        self.proc = self.start()
        return True


@functools.cache
def fresh_board() -> Board:
    """Trusts the test key, has a service token, and its cards are commissioned."""
    board = Board(workdir() / "fresh")
    board.state.mkdir(parents=True)
    ledwarden("controller", "trust", "add", str(signing_key()[1]), "--state", str(board.state))
    (board.root / "service.token").write_text(
        TokenStore(board.state / "tokens.db").create("service-centre", "service"))
    t0 = time.monotonic()
    with board.running(guarded=False) as run:
        run.settled(30)
        job = run.client.post("/api/v1/commission", {"unattended": True})
        while job["state"] not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.2)
            job = run.client.get(f"/api/v1/jobs/{job['id']}")
        # unattended: nothing failed, but nobody watched the patterns (issue 15 item 5)
        assert job["state"] == "succeeded" and job["result"]["result"] == "unwatched", job
    TIMES["commissioning"] = round(time.monotonic() - t0, 1)
    return board


@functools.cache
def board_on(versions: tuple[str, ...]) -> Board:
    """A board that installed ``versions`` in turn (offline) and confirmed each."""
    before = fresh_board() if len(versions) == 1 else board_on(versions[:-1])
    board = before.copy(workdir() / "-".join(versions))
    t0 = time.monotonic()
    ledwarden("controller", "install", str(bundle(versions[-1])), "--state", str(board.state))
    TIMES[f"offline install {versions[-1]}"] = round(time.monotonic() - t0, 1)
    with board.running() as run:
        doc = run.settled()
    assert doc["running"]["version"] == versions[-1], (doc, board.log())
    assert doc["last_transaction"]["outcome"] == "confirmed", doc
    return board
