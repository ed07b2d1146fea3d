"""mypy over the whole project, at the levels ``pyproject.toml``'s ``[tool.mypy]`` sets.

The bus master (``controller/protocol/``) and the fast path
(``controller/fastpath/``) are the seams everything else stands on, so
they are checked strictly: every function typed, no ``Any`` leaking out.
The rest of ``controller/``, ``host/`` and ``hw/sim/`` is checked with
``check_untyped_defs``: the bodies of untyped functions too, so a ``None``
that is not handled or a wrong argument shows up before a customer's
wall does.  The card firmware has its own check against MicroPython's
stubs (``tests/hw/test_micropython.py``); the tests are not checked.

Without mypy the check is skipped on a developer's machine and fails in CI
(``CI`` set).  The cache lives in ``.venv/mypy-cache`` so a run after a
small change takes seconds.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cache_dir() -> Path:
    venv = ROOT / ".venv"
    return venv / "mypy-cache" if venv.is_dir() else Path(tempfile.gettempdir()) / "ledwarden-mypy-cache"


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("mypy") is None:
        if os.environ.get("CI"):
            pytest.fail("mypy is not installed, and CI must run this test: pip install -e '.[test]'")
        pytest.skip("mypy is not installed (pip install -e '.[test]'); CI runs this test")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(_cache_dir()), *args],
        cwd=ROOT, capture_output=True, text=True)


def test_the_project_type_checks():
    done = _mypy()
    assert done.returncode == 0, f"mypy found errors:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("module, added, code", [
    # strict: an untyped function in the bus master is refused
    ("controller/protocol/framing.py", "\ndef untyped(x):\n    return x\n", "no-untyped-def"),
    ("controller/fastpath/plan.py", "\ndef untyped(x):\n    return x\n", "no-untyped-def"),
    # everywhere else: the body of an untyped function is still checked
    ("controller/jsonin.py", "\ndef untyped():\n    n: int = 'one'\n    return n\n", "assignment"),
    ("host/settings.py", "\ndef untyped():\n    n: int = 'one'\n    return n\n", "assignment"),
    ("hw/sim/faults.py", "\ndef untyped():\n    n: int = 'one'\n    return n\n", "assignment"),
    # Bus.call's overloads map a command to its answer: a field the answer lacks is caught
    ("controller/protocol/cards.py",
     "\ndef wrong(bus: Bus) -> int:\n    return bus.call(1, c.Cmd.GET_CONFIG).serial\n", "attr-defined"),
])
def test_the_check_catches_an_error_at_each_level(tmp_path, module, added, code):
    """The same run, with one module given a flaw its level must catch (``--shadow-file``)."""
    source = ROOT / module
    shadow = tmp_path / source.name
    shadow.write_text(source.read_text() + added)
    done = _mypy("--shadow-file", str(source), str(shadow))
    assert done.returncode == 1 and f"[{code}]" in done.stdout, done.stdout + done.stderr
