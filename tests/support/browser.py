"""Debian's Chromium driven by Playwright for Python, for the web console's tests.

Playwright is in the test extras (``pyproject.toml``); its own browser
download is not used: it drives the Chromium Debian packages
(``apt-get install chromium``, which ``.ci/run`` does), so the tests use the
browser the project already depends on.  Without either, a developer's run
skips with the reason and a CI run (``CI`` set) fails, so the browser tests
can never silently stop running there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def _missing(what: str, how: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what}, and CI must run the browser tests: {how}")
    pytest.skip(f"{what} ({how}); CI runs the browser tests")


def chromium_path() -> str:
    """Debian's Chromium, or a skip (a failure in CI) saying how to get it."""
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    _missing("Chromium is not installed", "apt-get install chromium, as .ci/run does")
    raise AssertionError("unreachable")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright's sync API), closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed", "pip install -e '.[test]'")
    path = chromium_path()
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
