"""A killed installer's pip must not outlive recovery (issue 15 item 20).

The installer is SIGKILLed while its pip writes the new slot, as the OOM
killer or a ``kill -9`` of the service would stop it.  Its pip used to live
on and, once, re-created ``.new-TXN`` after recovery had removed it.  Now
recovery stops every process that names the staging directory before it
removes it, and nothing writes there afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from controller.upgrade.bundles.slots import SlotStore
from controller.upgrade.steps import Steps
from support.upgrade_rig import N, ROOT, bundle, ledwarden, signing_key


def naming(text: str) -> list[int]:
    """PIDs of the processes whose command line contains ``text``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_recovery_stops_a_killed_installers_pip_and_wins(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    ledwarden("controller", "trust", "add", str(signing_key()[1]), "--state", str(state))
    staging = f"{state}/slots/.new-"
    installer = subprocess.Popen([sys.executable, "-m", "host.cli", "controller", "install",
                                  str(bundle(N)), "--state", str(state)], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not [p for p in naming(staging) if p != installer.pid] and time.monotonic() < deadline:
            assert installer.poll() is None, "the install ended before its pip could be caught"
            time.sleep(0.01)
        assert naming(staging), "pip never started"
        os.kill(installer.pid, signal.SIGKILL)
        installer.wait()

        store, steps = SlotStore(state), Steps()
        with store.lock(steps):
            removed = store.recover(steps)
        assert [name[:5] for name in removed] == [".new-"]
        assert naming(staging) == []            # the orphaned pip is gone, not writing on
        time.sleep(2)
        assert store.leftovers() == [] and store.meta("a") is None
    finally:
        installer.kill()
        for pid in naming(staging):             # only on failure: leave no pip behind
            os.kill(pid, signal.SIGKILL)


def test_a_cancelled_child_takes_its_whole_process_group_with_it(tmp_path):
    """``Steps.run`` ending early (here a timeout) kills the child's grandchildren too."""
    marker = tmp_path / "grandchild-was-here"
    grandchild = f"import time, pathlib; time.sleep(1.5); pathlib.Path({str(marker)!r}).touch()"
    script = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {grandchild!r}]); "
              f"time.sleep(60)")
    t0 = time.monotonic()
    try:
        Steps().run([sys.executable, "-c", script], what="test", timeout=0.5)
    except subprocess.TimeoutExpired:
        pass
    else:
        raise AssertionError("the child should have timed out")
    assert time.monotonic() - t0 < 5
    time.sleep(2)
    assert not marker.exists()
