"""SIGKILL while faults are being written, 100 times: no committed fault is lost, the file always
opens, and a repeat loses at most the counts of its last flush interval.

The writer (``crash_writer.py``) prints a line only after the call it reports
has returned, so every line is a promise the file must keep.  After each
kill the test copies the file and its WAL — a faithful picture of the disk,
the process being dead — and opens the copy, which is what the service
does after a crash; the next writer opens the original, so recovery from a
hot WAL is exercised on both sides.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from crash_writer import FLUSH_INTERVAL_S

from controller.faultlog import FaultLog

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("crash_writer.py")

KILLS = 100
SEED = 20261122


def start(db: Path, run: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(WRITER), str(db), str(run), str(run), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline()
    if line != "ready\n":
        proc.kill()
        raise AssertionError(f"writer {run} did not start ({line!r}): {proc.stderr.read()}")
    return proc


def kill(proc: subprocess.Popen) -> list[list[str]]:
    """SIGKILL, then the complete lines the writer printed (a torn last line promises nothing)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines = proc.stdout.read().split("\n")[:-1]
    proc.stdout.close()
    proc.stderr.close()
    return [line.split() for line in lines]


def snapshot(db: Path, into: Path) -> Path:
    into.mkdir()
    for suffix in ("", "-wal"):
        src = db.with_name(db.name + suffix)
        if src.exists():
            shutil.copyfile(src, into / src.name)
    return into / db.name


def test_sigkill_while_writing_loses_no_committed_fault(tmp_path):
    rng = random.Random(SEED)
    db = tmp_path / "faults.db"
    active: dict[int, tuple[str, str]] = {}      # promised and still active
    resolved: set[int] = set()
    rep_count = 0                                # the repeating fault's count known to be on disk
    started = time.monotonic()
    for run in range(KILLS):
        proc = start(db, run)
        time.sleep(rng.uniform(0, 0.15))
        lines = kill(proc)
        reps, flushed, new = [], 0, set()
        for kind, *rest in lines:
            if kind == "new":
                active[int(rest[0])] = (rest[1], rest[2])
                new.add(int(rest[0]))
            elif kind == "resolved":
                resolved.add(int(rest[0]))
                del active[int(rest[0])]
            elif kind == "rep":
                reps.append((int(rest[0]), int(rest[1]), float(rest[2])))
            elif kind == "flushed":
                flushed = int(rest[1])

        log = FaultLog(snapshot(db, tmp_path / f"after-{run}"))     # must open, every time
        try:
            assert log.integrity() == "ok", run
            faults = {f.id: f for f in log.list(state="all", limit=None)}
        finally:
            log.close()
        missing = [i for i in active if i not in faults]
        assert not missing, f"run {run}: committed faults lost: {missing}"
        for i, (code, source) in active.items():
            assert (faults[i].code, faults[i].source) == (code, source), run
        # The kill may land after a resolve committed and before its line: one, of this run.
        unreported = [i for i in active if faults[i].state != "active"]
        assert len(unreported) <= 1 and set(unreported) <= new, (run, unreported)
        for i in unreported:
            resolved.add(i)
            del active[i]
        assert all(faults[i].state == "cleared" for i in resolved if i in faults), run

        if reps:
            rep_id = reps[0][0]
            assert rep_id in faults, f"run {run}: the repeating fault's row is gone"
            on_disk = faults[rep_id].count
            assert on_disk >= max(flushed, rep_count), f"run {run}: flushed counts lost"
            assert on_disk <= reps[-1][1] + 1, f"run {run}: more counts than records"
            lost = [t for _, count, t in reps if count > on_disk]
            if lost:
                # Every record after the last write found the row written less than an
                # interval ago; otherwise it would have written it itself.
                assert lost[-1] - lost[0] < FLUSH_INTERVAL_S + 0.05, (run, on_disk, lost)
            rep_count = on_disk
    elapsed = time.monotonic() - started
    assert len(active) > KILLS, "the writers hardly wrote anything: the test proves nothing"
    print(f"{KILLS} kills in {elapsed:.1f} s, {len(active)} active and {len(resolved)} "
          "resolved faults promised")


@pytest.mark.parametrize("run", range(5))
def test_the_flush_timer_saves_repeats_before_a_kill(tmp_path, run):
    """Nothing but the timer writes the burst's count; after an interval it must be on disk."""
    db = tmp_path / "faults.db"
    proc = start(db, run, "burst")
    try:
        line = proc.stdout.readline().split()
        assert line[0] == "burst"
        time.sleep(FLUSH_INTERVAL_S + 0.4)
    finally:
        kill(proc)
    log = FaultLog(snapshot(db, tmp_path / "after"))
    try:
        assert log.get(int(line[1])).count == int(line[2]) == 50
    finally:
        log.close()
