"""``ledwarden demo --upgrades``: a controller upgraded N → N+1, then saved from a broken N+2.

What runs, all on this machine, with the real commands:

1. the service centre's side: a signing key (``keys generate``), and three
   bundles built from this source tree (``bundle build``): N = 1.0.0,
   N+1 = 1.1.0, and N+2 = 1.2.0, built from a copy of the tree whose
   ``Service.health_check`` always reports failure — a build that starts
   fine but cannot vouch for the wall, the kind of bug a lab test misses;
2. the board: a fresh state directory that trusts the key (``controller
   trust add``), eight simulated cards, and the boot guard running the
   factory installation (this checkout, version 0.1.0), which commissions
   the wall — the health check compares the cards with the screen file;
3. N installed into slot A from the bundle on the board itself
   (``controller install``, as when a board is provisioned) and the guard
   restarted: N runs from slot A on trial and confirms;
4. ``ledwarden upgrade controller`` with N+1: upload, install into slot B,
   restart, confirmed; then with N+2: installed into slot A, started on
   trial, fails its health check three times, and the guard rolls back to
   N+1 — the command says so and exits 1.

Nothing outside a temporary directory and ``--out`` is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from controller.errors import ConfigError, LedwardenError
from controller.jsonin import JsonObject
from controller.upgrade.bundles.bundle import copy_source, default_source
from host.client import ApiError, ControllerClient, ControllerTimeout, ControllerUnreachable
from hw.sim.server import Simulator

SCREEN = Path(__file__).with_name("demo_wall.toml")
CARDS = 8
N, N1, N2 = "1.0.0", "1.1.0", "1.2.0"
MIN_VERSION = {N: "0", N1: N, N2: N1}
#: Seconds a new version has to confirm its health (the board's default is 180).
CONFIRM_WITHIN = 60.0
BROKEN = "this build is deliberately broken (demo): it reports that no card answers"


def broken_source(dest: Path, version: str) -> Path:
    """A copy of this source tree at ``version`` whose health check always fails."""
    tree = copy_source(default_source(), dest, version)
    path = tree / "controller" / "service" / "state.py"
    text = path.read_text()
    found = re.search(r"(?m)^( *)async def health_check\(self[^\n]*:\n", text)
    if found is None:
        raise ConfigError(f"cannot find Service.health_check in {path} to break it")
    line = f'{found.group(1)}    return False, "{BROKEN}"\n'
    path.write_text(text[:found.end()] + line + text[found.end():])
    return tree


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_controller(state: Path, bus: str, port: int, *, guarded: bool = True,
                     confirm_within: float = 60.0, max_starts: int | None = None,
                     log=None) -> subprocess.Popen:
    """The controller on loopback at ``port``: under the boot guard, or plain (unguarded)."""
    run = ["--screen", str(SCREEN), "--bus", bus, "--listen", f"127.0.0.1:{port}", "--no-frames"]
    if guarded:
        starts = ["--max-starts", str(max_starts)] if max_starts else []
        argv = [sys.executable, "-m", "controller.upgrade.bundles.bootguard", "--state", str(state),
                "--confirm-within", str(confirm_within), *starts, "--", *run]
    else:
        argv = [sys.executable, "-m", "host.cli", "controller", "run", "--state", str(state), *run]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)


def stop_controller(proc: subprocess.Popen) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def wait_settled(client: ControllerClient, timeout: float = 90.0) -> JsonObject:
    """Poll until the controller answers with no trial pending and runs what state.json says."""
    deadline = time.monotonic() + timeout
    doc = None
    while time.monotonic() < deadline:
        try:
            doc = client.get("/api/v1/upgrade/controller")
        except (ControllerUnreachable, ControllerTimeout, ApiError):
            time.sleep(0.2)
            continue
        if doc["trial"] is None and (doc["running"]["slot"] or "base") == doc["current"]:
            return doc
        time.sleep(0.2)
    raise LedwardenError(f"the controller did not settle within {timeout:g} s: {doc}")


def _ledwarden(*argv: str) -> str:
    return subprocess.run([sys.executable, "-m", "host.cli", *argv], check=True,
                          capture_output=True, text=True).stdout


class _GuardLog:
    """The guard's own lines from its log file, shown after each step."""

    def __init__(self, path: Path) -> None:
        self.path, self.seen = path, 0

    def show(self) -> None:
        lines = self.path.read_text(errors="replace").splitlines()
        for line in lines[self.seen:]:
            if line.startswith("ledwarden boot guard:"):
                print(f"    [board] {line[len('ledwarden boot guard: '):][:160]}")
        self.seen = len(lines)


def run(args: argparse.Namespace) -> int:
    from host.cli import main  # the real host tool, in-process

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ledwarden-upgrade-demo-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["LEDWARDEN_CONFIG_DIR"] = str(tmp / "host-config")
        keys, state = tmp / "keys", tmp / "board"
        print("== the service centre: a signing key and three bundles\n")
        print(f"$ ledwarden keys generate --name demo-centre --dir {keys}")
        main(["keys", "generate", "--name", "demo-centre", "--dir", str(keys)])
        bundles = {}
        for version in (N, N1, N2):
            bundles[version] = tmp / f"ledwarden-{version}.lwb"
            extra = []
            if version == N2:
                extra = ["--source", str(broken_source(tmp / "broken-src", version))]
                print(f"\n(N+2 is built from a copy of the source whose health check always "
                      f"fails: \"{BROKEN}\")")
            print(f"\n$ ledwarden bundle build --version {version} --min-version "
                  f"{MIN_VERSION[version]} --key {keys}/demo-centre.key --out {bundles[version].name}")
            if main(["bundle", "build", "--version", version, "--min-version", MIN_VERSION[version],
                     "--key", str(keys / "demo-centre.key"), "--out", str(bundles[version]), *extra]):
                return 1

        print("\n== the board: trust the key, commission the wall with the factory installation\n")
        print(_ledwarden("controller", "trust", "add", str(keys / "demo-centre.pub"), "--state",
                         str(state)).strip())
        token = json.loads(_ledwarden("controller", "token", "create", "--role", "service",
                                      "--name", "service-centre", "--state", str(state),
                                      "--json"))["secret"]
        os.environ["LEDWARDEN_TOKEN"] = token
        port = free_port()
        url = f"https://127.0.0.1:{port}"
        client = ControllerClient(url, token, on_new_pin=lambda *a: None)
        guard_log_path = tmp / "guard.log"
        guard_log = _GuardLog(guard_log_path)
        with Simulator(CARDS, pty=True, state_dir=tmp / "cards") as sim, \
                open(guard_log_path, "ab") as log:
            guard = start_controller(state, sim.url, port, confirm_within=CONFIRM_WITHIN, log=log)
            try:
                wait_settled(client)
                guard_log.show()
                print(f"$ ledwarden --controller {url} commission --yes --out {args.out} --json > /dev/null")
                with open(os.devnull, "w") as devnull, redirect_stdout(devnull):
                    main(["--controller", url, "commission", "--yes", "--out", args.out, "--json"])
                print("commissioned")
                stop_controller(guard)

                print(f"\n== provisioning: N = {N} into slot A on the board, then restart\n")
                print(f"$ ledwarden controller install {bundles[N].name} --state {state}")
                print(_ledwarden("controller", "install", str(bundles[N]), "--state", str(state)).strip())
                guard = start_controller(state, sim.url, port, confirm_within=CONFIRM_WITHIN,
                                         log=log)
                doc = wait_settled(client, CONFIRM_WITHIN + 30)
                guard_log.show()
                print(f"the controller runs {doc['running']['version']} from slot "
                      f"{doc['running']['slot']}: {doc['last_transaction']['outcome']}")

                outcomes = []
                for version in (N1, N2):
                    print(f"\n== upgrade to {version}{' (broken)' if version == N2 else ''}\n")
                    print(f"$ ledwarden --controller {url} upgrade controller {bundles[version].name}")
                    outcomes.append(main(["--controller", url, "upgrade", "controller",
                                          str(bundles[version])]))
                    guard_log.show()
                print(f"\n$ ledwarden --controller {url} upgrade controller")
                main(["--controller", url, "upgrade", "controller"])
            finally:
                stop_controller(guard)
    print(f"\nN → N+1 {'confirmed' if outcomes[0] == 0 else 'FAILED'}; broken N+2 "
          f"{'rolled back automatically' if outcomes[1] == 1 else 'NOT rolled back'} "
          f"({time.monotonic() - t0:.0f} s in all)")
    return 0 if outcomes == [0, 1] else 1
