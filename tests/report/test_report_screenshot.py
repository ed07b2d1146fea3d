"""The report pages as a browser draws them: headless Chromium, then a look at the pixels.

The unit tests check the markup; only a real browser shows that the CSS
lays it out and the SVG paints — a stray unit or a broken attribute gives a
blank or garbled page that every markup test still passes.  The check is
deliberately coarse: the wall is where it should be, mostly painted, in the
fill colours of normal, warm and hot cabinets, with the hatch of the missing
one and red, green and blue dead-LED markers on it.  The inspection page
also shows its verdict and outcome tags above the wall and rings the new
dead LEDs (seen as the ink a ring adds against the same run without them).

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run``
installs it).  Without it, or without Pillow, the test is skipped on a
developer's machine and fails in CI (the ``CI`` environment variable), so
it can never silently stop running there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from controller.report import render_acceptance_html, render_inspection_html
from controller.report.wall import CHANNEL_COLOURS, FILLS
from inspection_cases import sample_inspection
from report_cases import sample_report

WINDOW = (1280, 1600)


def _missing(what: str, how: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed, and CI must run this test: {how}")
    pytest.skip(f"{what} is not installed ({how}); CI runs this test")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    _missing("chromium", "apt-get install chromium, as .ci/run does")


def _image_module():
    try:
        from PIL import Image
    except ImportError:
        _missing("Pillow", "add pillow to the test extras in pyproject.toml")
    return Image


def screenshot(html: str, workdir: Path, window: tuple[int, int] = WINDOW) -> np.ndarray:
    """Render ``html`` at the window size in a fresh, offline-minded Chromium; RGB array."""
    chromium, image = _chromium(), _image_module()
    workdir.mkdir(parents=True, exist_ok=True)
    page, png = workdir / "report.html", workdir / "shot.png"
    page.write_text(html, encoding="utf-8")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={workdir / 'profile'}", f"--window-size={window[0]},{window[1]}",
           f"--screenshot={png}", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.exists(), f"chromium wrote no screenshot (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    with image.open(png) as im:
        return np.asarray(im.convert("RGB"))


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])


def mask(pixels: np.ndarray, hex_colour: str, tolerance: int = 6) -> np.ndarray:
    return (np.abs(pixels.astype(int) - rgb(hex_colour)) <= tolerance).all(axis=-1)


def find_wall(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """The wall's bounding box: the rows and columns with much normal-cabinet tint.

    The legend's swatch and the page's other tinted bits have little, so
    they fall under the thresholds.
    """
    normal = mask(pixels, FILLS["normal"])
    assert normal.sum() > 100_000, "the cabinets' fill is (almost) not on the screenshot"
    ys, xs = np.nonzero(normal.sum(axis=1) > 100)[0], np.nonzero(normal.sum(axis=0) > 50)[0]
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    assert right - left > 700 and bottom - top > 300, (left, top, right, bottom)
    return top, bottom, left, right


def assert_page_and_wall_painted(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """Not blank; the sample wall with its tints, hatch and markers; returns the wall's box."""
    # Not blank: a designed page has many colours (anti-aliased text alone gives dozens).
    distinct = np.unique(pixels.reshape(-1, 3)[::7], axis=0)
    assert len(distinct) > 200

    top, bottom, left, right = find_wall(pixels)
    wall = pixels[top:bottom + 1, left:right + 1]
    white = (wall >= 250).all(axis=-1)
    assert white.mean() < 0.05, "the wall area is mostly unpainted"

    # Hot and warm cabinets, one full cabinet each (a 16th of the wall, less grid and labels).
    area = wall.shape[0] * wall.shape[1]
    for level in ("hot", "warm"):
        assert mask(wall, FILLS[level]).sum() > area / 16 * 0.6, level
    # The missing cabinet's hatch: both of its greys.
    assert mask(wall, "#a3adbb", 10).sum() > 500 and mask(wall, "#eceff3", 4).sum() > 500

    # Dead-LED markers in their colours, on the wall (a marker outline is a few dozen pixels).
    for channel in ("r", "g", "b"):
        assert mask(wall, CHANNEL_COLOURS[channel], 24).sum() >= 20, channel
    return top, bottom, left, right


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_page_shows_the_wall_with_its_tints_and_markers(lang, tmp_path):
    pixels = screenshot(render_acceptance_html(sample_report(), lang=lang), tmp_path)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    top, _, _, _ = assert_page_and_wall_painted(pixels)
    # The verdict badge above the wall is the FAIL red.
    header = pixels[:top]
    assert mask(header, "#b91c1c", 12).sum() > 300


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_inspection_page_shows_the_wall_of_its_run(lang, tmp_path):
    # Taller window: the summary's findings come before the wall.
    window = (1280, 2400)
    pixels = screenshot(render_inspection_html(sample_inspection(), lang=lang), tmp_path, window)
    assert pixels.shape[:2] == (window[1], window[0])
    top, bottom, left, right = assert_page_and_wall_painted(pixels)
    above = pixels[:top]
    assert mask(above, "#b91c1c", 12).sum() > 300, "no FAIL badge above the wall"
    # The outcome tags of the summary: failed (red on pink) and warning (amber) backgrounds.
    assert mask(above, "#fee2e2", 3).sum() > 300 and mask(above, "#fef3c7", 3).sum() > 300
    # The two new dead LEDs are ringed in ink on the wall: dark pixels beyond the labels' share.
    wall = pixels[top:bottom + 1, left:right + 1]
    plain = sample_inspection()
    for cab in plain["cabinets"]:
        for led in cab["dead_leds"]:
            led.pop("new", None)
    unringed = screenshot(render_inspection_html(plain, lang=lang), tmp_path / "plain", window)
    t2, b2, l2, r2 = find_wall(unringed)
    ink = mask(wall, "#0f172a", 30).sum() - mask(unringed[t2:b2 + 1, l2:r2 + 1], "#0f172a", 30).sum()
    assert ink > 2 * 40, f"the rings of two new dead LEDs add only {ink} ink pixels"
