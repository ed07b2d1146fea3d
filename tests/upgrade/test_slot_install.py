"""What an offline ``controller install`` leaves in a slot, run the way people type it.

Issue 15 items 18 and 19: a relative ``--state`` broke every install (the
smoke test runs the new slot's interpreter from another working directory),
and a finished slot still named the staging directory it was built in
(``.new-TXN``) in its scripts' ``#!`` lines and its ``pyvenv.cfg``, although
a slot must not refer to its own location.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.upgrade_rig import N, ROOT, bundle, signing_key


@pytest.fixture(scope="module", params=["short", "long"])
def installed(request, tmp_path_factory):
    """A board that installed bundle N with ``--state state`` typed relative to its directory.

    Under the long path the staging interpreter's path is too long for ``#!`` (127 bytes), so
    pip writes its scripts' other, ``sh``, form of launcher, which must be made relative too.
    """
    board = tmp_path_factory.mktemp("relative-board")
    if request.param == "long":
        board = board / ("a-directory-name-long-enough-to-push-the-interpreter-path-past-"
                         "the-127-bytes-of-a-shebang-line")
        board.mkdir()
    env = os.environ | {"PYTHONPATH": str(ROOT)}

    def ledwarden(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "host.cli", *argv], cwd=board, env=env,
                              capture_output=True, text=True)

    (board / "state").mkdir()
    assert ledwarden("controller", "trust", "add", str(signing_key()[1]), "--state", "state").returncode == 0
    done = ledwarden("controller", "install", str(bundle(N)), "--state", "state", "--json")
    return board / "state", done


def test_a_relative_state_directory_installs(installed):
    state, done = installed
    assert done.returncode == 0, done.stderr
    assert (state / "slots" / "a" / "slot.json").is_file()


def test_nothing_in_a_slot_names_its_staging_directory(installed):
    state, done = installed
    assert done.returncode == 0, done.stderr
    slot = state / "slots" / "a"
    if "a-directory-name-long-enough" in str(slot):     # pip did write its sh launchers here
        staged = slot.parent / ".new-20261204T154742Z-d4cc14" / "env" / "bin" / "python"
        assert len(str(staged)) > 127
    naming = [str(path.relative_to(slot)) for path in slot.rglob("*")
              if path.is_file() and not path.is_symlink() and b"/.new-" in path.read_bytes()]
    assert naming == []
    script = slot / "lib" / next(p.name for p in (slot / "lib").iterdir()
                                 if p.name.startswith("ledwarden-")) / "bin" / "ledwarden"
    version = subprocess.run([str(script), "--help"], cwd="/", capture_output=True, text=True)
    assert version.returncode == 0 and "Maintenance controller for LED video walls" in version.stdout
