"""The picture's stored state: versions kept, rollback, and no torn state after a cut at any
durable step (the process killed between the temporary file and the rename, and everywhere
else), proved with the upgrade harness's ``LEDWARDEN_CUT_AFTER``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from controller.errors import ConfigError, LedwardenError, NotFound
from controller.picture.store import KEEP, PictureStore
from support.picture_screen import matrix, q14

ROOT = Path(__file__).resolve().parents[2]


def test_versions_activation_and_rollback(tmp_path):
    store = PictureStore(tmp_path)
    a, b, c = q14(matrix(1)), q14(matrix(2)), q14(matrix(3))
    assert store.add(1, a, source="a.csv", who="ann", activate=True).active == 1
    assert store.add(1, b, source="b.csv", who="bob", activate=False).active == 1
    index = store.activate(1, 2)
    assert (index.active, index.history) == (2, [1, 2])
    assert np.array_equal(store.load(1, 2), b)
    store.add(1, c, source="c.npz", who="cy", activate=True)
    assert store.rollback(1).active == 2
    assert store.rollback(1).active == 1
    assert store.rollback(1).active is None          # back to the screen file's (or none)
    with pytest.raises(LedwardenError, match="nothing to roll back"):
        store.rollback(1)
    with pytest.raises(NotFound, match="no calibration version 9 .kept: 1, 2, 3."):
        store.activate(1, 9)
    again = PictureStore(tmp_path).index(1)            # what a restart reads
    assert [v["imported_by"] for v in again.versions] == ["ann", "bob", "cy"]
    assert again.versions[2]["source"] == "c.npz" and again.versions[0]["form"] == "matrix"
    assert store.cabinets() == [1]


def test_only_the_last_versions_are_kept_but_never_the_active_one(tmp_path):
    store = PictureStore(tmp_path)
    gain = np.full((4, 4, 3), 16384, np.int16)
    store.add(5, gain, source="first", who="x", activate=True)
    for n in range(2, 9):
        store.add(5, gain, source=f"v{n}", who="x", activate=False)
    index = store.index(5)
    assert len(index.versions) == KEEP
    assert [v["version"] for v in index.versions] == [1, 5, 6, 7, 8]   # 1 is active: kept
    assert sorted(p.name for p in (tmp_path / "calibration" / "0x05").glob("v*.npz")) == [
        "v1.npz", "v5.npz", "v6.npz", "v7.npz", "v8.npz"]


def test_correction_settings_round_trip_and_a_damaged_file_is_named(tmp_path):
    store = PictureStore(tmp_path)
    assert store.correction() == {}
    store.save_correction({"curve": "power", "gamma": 2.4}, "ann")
    saved = PictureStore(tmp_path).correction()
    assert saved["gamma"] == 2.4 and saved["set_by"] == "ann"
    store.clear_correction()
    assert store.correction() == {}
    (tmp_path / "correction.json").write_text("{not json")
    with pytest.raises(ConfigError, match="correction.json: unreadable"):
        store.correction()


CHANGE = """
import sys
import numpy as np
from controller.picture.store import PictureStore
store = PictureStore(sys.argv[1])
store.save_correction({"curve": "power", "gamma": 2.6}, "new")
store.add(1, np.full((16, 32, 3, 3), 0, np.int16) + np.int16(100), source="new.csv", who="new",
          activate=True)
print("done")
"""


def _seed(state: Path) -> None:
    store = PictureStore(state)
    store.save_correction({"curve": "power", "gamma": 2.4}, "old")
    store.add(1, q14(matrix(1)), source="old.csv", who="old", activate=True)


def _check_whole(state: Path) -> tuple[str, str]:
    """Which state a restart finds, per file: old or new, never anything else."""
    store = PictureStore(state)
    gamma = store.correction()["gamma"]
    settings = {2.4: "old", 2.6: "new"}[gamma]
    index = store.index(1)
    array = store.load(1, index.active)
    if index.active == 1:
        assert [v["version"] for v in index.versions] == [1]
        assert np.array_equal(array, q14(matrix(1)))
        return settings, "old"
    assert (index.active, index.history) == (2, [1, 2])
    assert np.all(array == 100)
    return settings, "new"


def test_a_cut_at_any_step_leaves_the_old_state_or_the_new(tmp_path):
    seen = set()
    for cut in range(1, 40):
        state = tmp_path / f"cut{cut}"
        _seed(state)
        env = {**os.environ, "LEDWARDEN_CUT_AFTER": str(cut),
               "LEDWARDEN_STEP_LOG": str(tmp_path / f"steps{cut}.log")}
        run = subprocess.run([sys.executable, "-c", CHANGE, str(state)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        seen.add(_check_whole(state))
        if run.returncode == 0:
            assert "done" in run.stdout
            break
        assert run.returncode == -9, run.stderr          # SIGKILL at the step, as a power cut
    else:
        pytest.fail("the change never completed within 40 steps")
    steps = (tmp_path / f"steps{cut - 1}.log").read_text().splitlines()
    kinds = [line.split("\t")[1] for line in steps]
    assert kinds.count("rename") == 3 and "fsync-dir" in kinds      # temp file, fsync, rename
    # every mix a cut can leave: settings changed first, then the calibration
    assert seen == {("old", "old"), ("new", "old"), ("new", "new")}
    assert json.loads((state / "calibration" / "0x01" / "index.json").read_text())["active"] == 2
