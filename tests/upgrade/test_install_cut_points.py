"""The installer killed after every one of its steps: the board always comes back on a working version.

The harness first runs a real install with ``LEDWARDEN_STEP_LOG`` to list its
steps — every file written, fsync (file, directory, whole file system),
rename, directory made or removed, hard-link copy and child process that
writes (venv, pip).  Then, for each step N, it copies the board, runs the
installer as its own process with ``LEDWARDEN_CUT_AFTER=N`` (it SIGKILLs
itself right after step N), and "reboots": starts the boot guard with the
simulated cards and waits until the controller answers, settled.  Each time
the board must run the old version (cut before the switch) or the new one,
confirmed (cut at or after the switch), with no leftovers, a readable
``state.json`` naming a complete slot, the untouched slot untouched, and
every journal line readable.

The scenario is the board's steady state: 1.1.0 current in slot B, 1.0.0 in
slot A as ``previous``; the install writes 1.0.0 into slot A again (a
permitted downgrade), so it also clears ``previous`` and discards A's old
content — every kind of step the installer has.

A SIGKILL stops the process but not the kernel: data in the page cache
survives.  So this proves the order of the renames and what recovery does
with each intermediate state; that the fsyncs sit where a power cut needs
them is argued in docs/upgrades.md, step by step.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from controller.upgrade.bundles.slots import SlotStore
from controller.upgrade.steps import CUT_ENV, LOG_ENV
from support.upgrade_rig import N, N1, TIMES, Board, board_on, bundle, ledwarden

pytestmark = pytest.mark.timeout(600)
WORKERS = 2


def _tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``path`` with its size and inode: a replaced file shows."""
    out = {}
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            out[os.path.relpath(os.path.join(dirpath, f), path)] = (st.st_size, st.st_ino)
    return out


def _install(board: Board, env_extra: dict) -> int:
    env = os.environ | env_extra
    return ledwarden("controller", "install", str(bundle(N)), "--state", str(board.state),
                     env=env, check=False).returncode


def _check(board: Board, doc: dict, expect: str, before_b: dict, cut: int) -> list[str]:
    problems = []
    where = f"cut after step {cut}"
    if doc["running"]["version"] != expect:
        problems.append(f"{where}: the board came back on {doc['running']['version']}, "
                        f"expected {expect}")
    leftovers = sorted(p.name for p in (board.state / "slots").iterdir()
                       if p.name not in ("a", "b", "state.json", ".lock"))
    if leftovers:
        problems.append(f"{where}: leftovers after the reboot: {leftovers}")
    store = SlotStore(board.state)
    state = store.load()
    meta = store.meta(state.current)
    if meta is None or meta["version"] != expect:
        problems.append(f"{where}: state.json names slot {state.current} holding {meta}")
    if state.previous is not None and store.meta(state.previous) is None:
        problems.append(f"{where}: previous names the empty slot {state.previous}")
    if expect == N1 and _tree(store.slot_dir("b")) != before_b:
        problems.append(f"{where}: slot B (the running version) was changed")
    if expect == N and doc["last_transaction"]["outcome"] != "confirmed":
        problems.append(f"{where}: the new version was not confirmed: {doc['last_transaction']}")
    for line in (board.state / "upgrade-events.jsonl").read_text().splitlines():
        try:
            json.loads(line)
        except ValueError:
            problems.append(f"{where}: unreadable journal line {line!r}")
    return problems


def test_the_board_comes_back_on_a_working_version_after_a_cut_at_every_step(tmp_path):
    template = board_on((N, N1))
    bundle(N)

    # 1. count the steps of a real, uninterrupted install
    counting = template.copy(tmp_path / "count")
    step_log = tmp_path / "steps.txt"
    t0 = time.monotonic()
    assert _install(counting, {LOG_ENV: str(step_log)}) == 0
    TIMES["uninterrupted install (dependencies hard-linked)"] = round(time.monotonic() - t0, 1)
    steps = [line.split("\t") for line in step_log.read_text().splitlines()]
    kinds = {kind for _n, kind, _what in steps}
    assert {"write", "fsync", "rename", "fsync-dir", "mkdir", "rmtree", "run", "sync",
            "link-tree", "venv", "append"} <= kinds, kinds
    switch = max(int(n) for n, kind, what in steps
                 if kind == "rename" and what.endswith("/slots/state.json"))

    # 2. cut after each one, reboot, look
    def cut_and_reboot(cut: int) -> tuple[list[str], float]:
        t = time.monotonic()
        board = template.copy(tmp_path / f"cut-{cut}")
        before_b = _tree(board.state / "slots" / "b")
        status = _install(board, {CUT_ENV: str(cut)})
        if status != -9:
            return [f"cut after step {cut}: the installer exited {status}, not by SIGKILL"], 0.0
        expect = N if cut >= switch else N1
        with board.running() as run:
            try:
                doc = run.settled()
            except Exception as exc:
                return [f"cut after step {cut}: no working controller: {exc}\n{board.log()[-2000:]}"], 0
        return _check(board, doc, expect, before_b, cut), time.monotonic() - t

    t0 = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(cut_and_reboot, range(1, len(steps) + 1)))
    TIMES[f"{len(steps)} cut points ({WORKERS} at a time)"] = round(time.monotonic() - t0, 1)
    problems = [p for found, _t in results for p in found]
    print(f"\ninstall steps: {len(steps)} (switch at step {switch}); figures: {TIMES}")
    assert not problems, "\n".join(problems)
