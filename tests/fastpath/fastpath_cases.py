"""Hypothesis strategies and input builders shared by the fast-path tests.

Layouts are packed shelf by shelf so every drawn layout is valid; inputs
come from a NumPy generator seeded by Hypothesis (fast to draw, still
reproducible) with the extremes the spec calls out mixed in on purpose:
saturating curves, zero and unit gains, gain coefficients 0 and 32767,
matrix rows exactly at the bound with negative entries.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from controller.config import Layout, parse_screen

SCANS = (1, 2, 4, 8, 16, 32)
MODES = ("none", "gain", "matrix")
GAIN_EXTREMES = (0, 1, 32767, 32768, 65535, 65536)
#: Matrix rows on or near the bound |M0| + |M1| + |M2| <= 32768, signs mixed.
BOUND_ROWS = np.array([
    [-32768, 0, 0], [0, -32768, 0], [0, 0, -32768], [32767, 1, 0], [16384, 16384, 0],
    [16384, -16384, 0], [-10000, -10000, -12768], [32767, 0, 0], [-1, 32767, 0],
    [10923, 10923, 10922], [0, 0, 0], [-16384, 32767 - 16384 + 1, 0],
], dtype=np.int16)


@st.composite
def module_types(draw, max_height: int = 64):
    scan = draw(st.sampled_from([s for s in SCANS if s <= max_height]))
    groups = draw(st.integers(1, max(1, min(3, max_height // scan))))
    return {"width": draw(st.integers(1, 24)), "height": scan * groups, "scan": scan}


@st.composite
def layouts(draw, max_width: int = 120, max_height: int = 80, max_cabinets: int = 6) -> Layout:
    """A valid screen: 1–3 module types, cabinets packed on shelves with gaps."""
    types = {f"m{i}": draw(module_types(max_height)) for i in range(draw(st.integers(1, 3)))}
    width = draw(st.integers(16, max_width))
    height = draw(st.integers(8, max_height))
    cabinets, x, y, shelf = [], 0, 0, 0
    addresses = draw(st.permutations(range(1, 241)))
    for _ in range(draw(st.integers(2, max_cabinets))):
        name = draw(st.sampled_from(sorted(types)))
        m = types[name]
        mx, my = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        w, h = mx * m["width"], my * m["height"]
        x += draw(st.integers(0, 3))
        if x + w > width:
            x, y, shelf = 0, y + shelf + draw(st.integers(0, 2)), 0
        if x + w > width or y + h > height:   # a one-module cabinet may still fit
            mx, my, w, h = 1, 1, m["width"], m["height"]
        if x + w > width or y + h > height:
            continue
        cabinets.append({"address": addresses[len(cabinets)], "x": x, "y": y, "module": name,
                         "modules_x": mx, "modules_y": my,
                         "chain": draw(st.sampled_from(["rows", "serpentine"])),
                         "rotation": draw(st.sampled_from([0, 180]))})
        x += w
        shelf = max(shelf, h)
    if not cabinets:   # one cabinet of the first type always fits a corner
        name, m = next(iter(types.items()))
        if m["width"] <= width and m["height"] <= height:
            cabinets.append({"address": 1, "x": width - m["width"], "y": height - m["height"],
                             "module": name, "modules_x": 1, "modules_y": 1,
                             "chain": "rows", "rotation": draw(st.sampled_from([0, 180]))})
        else:
            width, height = max(width, m["width"]), max(height, m["height"])
            cabinets.append({"address": 1, "x": 0, "y": 0, "module": name, "modules_x": 1,
                             "modules_y": 1, "chain": "rows", "rotation": 0})
    return parse_screen({"screen": {"name": "drawn", "width": width, "height": height},
                         "modules": types, "cabinets": cabinets})


def inputs(seed: int, shape: tuple[int, int], mode: str, extreme: bool = False):
    """(frame, lut, gains, calib) for a frame of ``shape`` and a calibration mode."""
    rng = np.random.default_rng(seed)
    h, w = shape
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lut = rng.integers(0, 65536, (3, 256), dtype=np.uint16)
    gains = rng.integers(0, 65537, 3)
    if extreme:
        lut[:, rng.integers(0, 256, 64)] = 65535
        lut[:, rng.integers(0, 256, 16)] = 0
        frame[rng.random((h, w)) < 0.3] = 255
        gains = rng.choice(GAIN_EXTREMES, 3)
    calib = None
    if mode == "gain":
        calib = rng.integers(0, 32768, (h, w, 3), dtype=np.int16)
        if extreme:
            calib[rng.random((h, w, 3)) < 0.2] = 32767
            calib[rng.random((h, w, 3)) < 0.2] = 0
    elif mode == "matrix":
        m = rng.integers(-32768, 32768, (h, w, 3, 3)).astype(np.int64)
        total = np.abs(m).sum(axis=-1, keepdims=True)
        m = np.where(total > 32768, np.trunc(m * 32768 / np.maximum(total, 1)), m)
        calib = m.astype(np.int16)
        if extreme:   # a third of the rows exactly at (or on the edge of) the bound
            pick = rng.random((h, w, 3)) < 0.35
            calib[pick] = BOUND_ROWS[rng.integers(0, len(BOUND_ROWS), int(pick.sum()))]
    return frame, lut, gains, calib


def assert_scan_equal(expected, actual) -> None:
    assert list(expected.buffers) == list(actual.buffers)
    for field in ("buffers", "sums", "peaks"):
        for address, want in getattr(expected, field).items():
            got = getattr(actual, field)[address]
            assert got.dtype == want.dtype and got.shape == want.shape, (field, address)
            mismatch = np.argwhere(got != want)
            assert not len(mismatch), f"{field}[{address}] differs first at {mismatch[0].tolist()}"


#: Per-cabinet scales the limiter can send: off, the smallest step, full, just below full.
SCALE_EXTREMES = (0, 1, 32768, 65535, 65536)


def scales(seed: int, cabinets: int, extreme: bool = False) -> np.ndarray:
    """``uint32[cabinets]`` in 0 … 65536; with ``extreme``, the edges and runs of equal values
    (neighbouring cabinets sharing a scale is what the kernel's per-run fold caches)."""
    rng = np.random.default_rng(seed ^ 0x5CA1E)
    scale = rng.integers(0, 65537, cabinets).astype(np.uint32)
    if extreme:
        scale = rng.choice(SCALE_EXTREMES, cabinets).astype(np.uint32)
    return scale
