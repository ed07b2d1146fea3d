"""Debian's ``prometheus`` and ``promtool`` for the tests in ``tests/deploy/``."""

from __future__ import annotations

import os
import shutil

import pytest

HOW = "apt-get install prometheus (Debian's package ships both prometheus and promtool)"


def tool(name: str) -> str:
    """The path of a Prometheus tool.  Missing, it skips the test on a developer's machine and
    fails it in CI (``CI`` set), where ``.ci/run`` installs the package."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed, and CI must run this test: {HOW}")
    pytest.skip(f"{name} is not installed ({HOW}); CI runs this test")
