"""The boot guard's rules: three failed starts, the health deadline, verdicts that outlive a power cut.

Two tests boot real boards: a real new version whose confirmation cannot be
written (a directory sits where ``health.json.tmp`` goes) must be rolled
back at the deadline — not kept — and a version that crashes at every start
(a slot whose program exits at once, which is what such a build is) must be
rolled back after its third start.  The others call the guard's decision
step, :func:`prepare_boot`, on slot stores in the states a power cut can
leave, and check what it decides and writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import venv

import pytest

from controller.upgrade.bundles import events
from controller.upgrade.bundles.bootguard import Boot, prepare_boot, unrecorded_boot
from controller.upgrade.bundles.slots import BootState, SlotStore
from controller.upgrade.steps import Steps
from support.upgrade_rig import N, N1, ROOT, board_on, bundle, ledwarden

pytestmark = pytest.mark.timeout(300)


def fake_slot(store: SlotStore, name: str, program: str, *, version: str = "9.0.0",
              transaction: str = "T-9", min_version: str = "0") -> None:
    """A complete slot whose controller is ``program``: a build that does only that."""
    root = store.slot_dir(name)
    venv.EnvBuilder(symlinks=True, with_pip=False).create(root / "env")
    package = root / "lib" / "prog" / "host"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text(program)
    site = next((root / "env" / "lib").glob("python3*/site-packages"))
    (site / "prog.pth").write_text("../../../../lib/prog\n")
    (root / "slot.json").write_text(json.dumps({
        "format": 1, "slot": name, "version": version, "transaction": transaction,
        "installed": "2026-01-01T00:00:00Z", "min_version": min_version, "paths": ["env", "lib/prog"]}))


def trial_of(slot: str, version: str = "9.0.0", transaction: str = "T-9", boots: int = 0) -> dict:
    return {"slot": slot, "transaction": transaction, "version": version, "from_version": N,
            "boots": boots, "time": "2026-01-01T00:00:00Z"}


def test_a_version_that_crashes_at_every_start_is_rolled_back_after_three(tmp_path):
    board = board_on((N,)).copy(tmp_path / "board")
    store = SlotStore(board.state)
    fake_slot(store, "b", "import sys\nsys.exit(3)\n")
    state = store.load()
    store.save(BootState(current="b", previous="a", floor=state.floor, trial=trial_of("b")), Steps())
    with board.running() as run:
        doc = run.settled(60)
    assert doc["running"] == {"slot": "a", "version": N, "guarded": True}
    assert doc["last_transaction"]["outcome"] == "rolled-back"
    assert doc["last_transaction"]["reason"] == ("9.0.0 was started 3 times without confirming "
                                                 "its health")
    log = board.log()
    assert [f"starting slot b on trial (start {n} of 3" in log for n in (1, 2, 3)] == [True] * 3
    assert "start 4 of 3" not in log
    assert board.journal()[-1]["code"] == "upgrade.controller.rolled-back"


def test_a_confirmation_that_cannot_be_recorded_is_not_a_success(tmp_path):
    board = board_on((N,)).copy(tmp_path / "board")
    ledwarden("controller", "install", str(bundle(N1)), "--state", str(board.state))
    (board.state / "slots" / "b" / "health.json.tmp").mkdir()    # the write will fail
    with board.running(confirm_within=12) as run:
        seen, deadline = None, time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                seen = run.client.get("/api/v1/upgrade/controller")
            except Exception:
                time.sleep(0.2)
                continue
            if seen["running"]["slot"] == "b" and seen["confirmation"]["state"] == "error":
                break
            time.sleep(0.2)
        assert seen["confirmation"]["state"] == "error", seen
        assert "could not be recorded" in seen["confirmation"]["detail"]
        assert seen["trial"]["slot"] == "b"                 # not confirmed by the guard either
        doc = run.settled(60)
    assert doc["running"] == {"slot": "a", "version": N, "guarded": True}
    assert doc["last_transaction"]["reason"] == f"{N1} did not confirm its health within 12 s"
    assert "verdict could not be recorded" in board.log()


def test_a_verdict_written_before_a_power_cut_is_honoured_without_counting(tmp_path):
    store = SlotStore(tmp_path)
    fake_slot(store, "a", "", version="1.0.0", transaction="T-1")
    fake_slot(store, "b", "", version="2.0.0", transaction="T-2", min_version="1.5.0")
    store.save(BootState(current="b", previous="a", floor="1.0.0",
                         trial=trial_of("b", "2.0.0", "T-2", boots=1)), Steps())
    store.record_health("b", "T-2", True, "all good", "2.0.0", Steps())
    boot = prepare_boot(store, Steps())
    assert (boot.slot, boot.trial) == ("b", None)
    state = store.load()
    assert state.trial is None and state.floor == "1.5.0" and state.last["outcome"] == "confirmed"
    assert [e["code"] for e in events.read(tmp_path)] == ["upgrade.controller.confirmed"]


def test_a_failed_verdict_or_a_third_start_reverts_and_a_fresh_trial_is_counted(tmp_path):
    store = SlotStore(tmp_path)
    fake_slot(store, "a", "", version="1.0.0", transaction="T-1")
    fake_slot(store, "b", "", version="2.0.0", transaction="T-2")
    store.save(BootState(current="b", previous="a", trial=trial_of("b", "2.0.0", "T-2")), Steps())
    boot = prepare_boot(store, Steps())
    assert (boot.slot, boot.trial["boots"]) == ("b", 1)
    assert store.load().trial["boots"] == 1             # counted on disk before the start
    store.record_health("b", "T-2", False, "card 0x03 does not answer", "2.0.0", Steps())
    boot = prepare_boot(store, Steps())
    assert (boot.slot, boot.trial) == ("a", None)
    last = store.load().last
    assert last["reason"] == "2.0.0 failed its health check: card 0x03 does not answer"
    assert last["back_to"] == "a"

    store.save(BootState(current="a", previous=None, trial=trial_of("a", "1.0.0", "T-1", boots=3)),
               Steps())
    boot = prepare_boot(store, Steps())
    assert (boot.slot, boot.trial) == (None, None)       # no previous slot: the base installation
    assert store.load().last["back_to"] == "base"


def test_leftovers_are_removed_and_an_unreadable_state_falls_back_to_a_confirmed_slot(tmp_path):
    store = SlotStore(tmp_path)
    fake_slot(store, "a", "", version="1.0.0", transaction="T-1")
    fake_slot(store, "b", "", version="2.0.0", transaction="T-2")
    store.record_health("a", "T-1", True, "ok", "1.0.0", Steps())
    (store.root / ".new-T-3" / "wheels").mkdir(parents=True)
    (store.root / ".old-T-3").mkdir()
    (store.root / "state.json").write_text("{ torn")
    boot = prepare_boot(store, Steps())
    assert boot.slot == "a"
    assert sorted(p.name for p in store.root.iterdir()) == [".lock", "a", "b", "state.json"]


def test_when_nothing_can_be_written_the_guard_starts_the_last_good_version(tmp_path):
    store = SlotStore(tmp_path)
    fake_slot(store, "a", "", version="1.0.0", transaction="T-1")
    fake_slot(store, "b", "", version="2.0.0", transaction="T-2")
    store.save(BootState(current="b", previous="a", trial=trial_of("b", "2.0.0", "T-2")), Steps())
    assert unrecorded_boot(store) == Boot("a", None)      # never an uncounted trial
    store.save(BootState(current="b", previous="a"), Steps())
    assert unrecorded_boot(store) == Boot("b", None)


def old_name(*argv: str) -> subprocess.CompletedProcess:
    """The guard under its name from before the upgrade split, as an older board's unit runs it."""
    return subprocess.run([sys.executable, "-m", "controller.upgrade.bootguard", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_old_module_name_still_runs_the_guard(tmp_path):
    """Boards deployed before the split run ``python -m controller.upgrade.bootguard``: it must
    still start the current slot and hand back its exit status, and still refuse bad options."""
    store = SlotStore(tmp_path)
    fake_slot(store, "b", "import sys\nsys.exit(7)\n")
    store.save(BootState(current="b", previous=None, floor="0"), Steps())
    done = old_name("--state", str(tmp_path), "--", "--screen", "screen.toml")
    assert done.returncode == 7, done.stderr
    assert "starting slot b" in done.stderr
    wrong = old_name("--state", str(tmp_path))
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == ("ledwarden: error: give the controller's options after '--', "
                                    "e.g. -- --screen screen.toml --bus /dev/ttyAMA0")


def test_an_older_installer_smoke_test_still_imports_the_guard():
    """Releases before the split smoke-test a new slot by importing the guard's old name; if that
    failed, such a board would refuse every bundle built after the split."""
    older = "import controller.service.cli, controller.upgrade.bootguard as g; print(g.main.__module__)"
    done = subprocess.run([sys.executable, "-c", older], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "controller.upgrade.bundles.bootguard"
