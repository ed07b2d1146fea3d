"""The project's copy of the specs it implements (``docs/spec/``) is the shared original, byte
for byte.

A clone must be readable alone, so the specs live in the project; the originals stay in
``../shared/spec/`` beside it where the project is developed.  When that directory is there,
the copies must match it.  When it is not (a clone on its own) the check is skipped with a
message, except in CI (``CI`` set), whose checkout always has ``../shared`` beside it: there a
missing original is a broken checkout and fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COPY = ROOT / "docs" / "spec"
SHARED = ROOT.parent / "shared" / "spec"
SPECS = ("wire-protocol.md", "correction.md")


@pytest.mark.parametrize("name", SPECS)
def test_the_copy_is_the_shared_spec(name):
    copy = COPY / name
    assert copy.is_file(), f"{copy} is missing: the project keeps its own copy of each spec"
    original = SHARED / name
    if not original.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{original} is missing, and CI always has ../shared beside the project")
        pytest.skip(f"{SHARED} is not beside this clone, so there is nothing to compare with")
    assert copy.read_bytes() == original.read_bytes(), (
        f"{copy} differs from {original}: copy the shared spec over it (cp {original} {copy})")


def test_the_docs_point_at_the_projects_copy():
    """README and docs/ name docs/spec/…, never a ../shared path a clone does not have."""
    named = [str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
             if "shared/spec" in p.read_text(encoding="utf-8")]
    assert named == []
