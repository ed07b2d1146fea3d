"""The NumPy reference against the spec read literally: scalar arithmetic, known orders.

The reference is the oracle for the C kernel, so it gets its own oracle
here: each pixel worked out with Python integers straight from spec
section 2, and scan orders written out by hand for small modules.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from controller.config import parse_screen
from controller.fastpath import reference

from fastpath_cases import MODES, inputs


def spec_pixel(rgb, lut, gains, coef):
    """Spec section 2 for one pixel, in Python integers (>> floors, as the spec's does)."""
    g = [int(lut[k][rgb[k]]) for k in range(3)]
    if coef is None:
        a = g
    elif np.ndim(coef) == 1:
        a = [(g[c] * int(coef[c]) + 8192) >> 14 for c in range(3)]
    else:
        a = [(sum(g[k] * int(coef[c][k]) for k in range(3)) + 8192) >> 14 for c in range(3)]
    a = [min(max(v, 0), 65535) for v in a]
    return [(a[c] * int(gains[c]) + 32768) >> 16 for c in range(3)]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES), extreme=st.booleans())
def test_correct_is_the_spec_pixel_by_pixel(seed, mode, extreme):
    frame, lut, gains, calib = inputs(seed, (3, 5), mode, extreme)
    out = reference.correct(frame, lut, gains, calib)
    assert out.dtype == np.uint16 and out.shape == (3, 5, 3)
    for y in range(3):
        for x in range(5):
            coef = None if calib is None else calib[y, x]
            assert out[y, x].tolist() == spec_pixel(frame[y, x], lut, gains, coef)


def test_correct_known_answers():
    lut = np.array([np.arange(256) * 257] * 3, dtype=np.uint16)
    frame = np.array([[[255, 128, 0]]], dtype=np.uint8)
    # full gains: the curve passes through
    assert reference.correct(frame, lut, [65536] * 3).tolist() == [[[65535, 32896, 0]]]
    # a matrix that saturates red, goes negative on green and mixes blue
    m = np.array([[[[32767, 1, 0], [-32768, 0, 0], [0, 16384, 16384]]]], dtype=np.int16)
    assert reference.correct(frame, lut, [65536, 65536, 32768], m).tolist() == [[[65535, 0, 16448]]]
    # gain calibration halves; brightness zero blanks
    k = np.full((1, 1, 3), 8192, dtype=np.int16)
    assert reference.correct(frame, lut, [65536] * 3, k).tolist() == [[[32768, 16448, 0]]]
    assert reference.correct(frame, lut, [0] * 3, k).tolist() == [[[0, 0, 0]]]


def _coded(height, width):
    """A 'corrected frame' whose pixel (y, x) holds (y, x, 7): buffers show where pixels went."""
    out = np.zeros((height, width, 3), dtype=np.uint16)
    out[..., 0] = np.arange(height)[:, None]
    out[..., 1] = np.arange(width)[None, :]
    out[..., 2] = 7
    return out


def _positions(buffer):
    return [tuple(p) for p in buffer.reshape(-1, 3)[:, :2].tolist()]


def _screen(cabinet, width=8, height=8, module=(2, 4, 2)):
    w, h, scan = module
    return parse_screen({"screen": {"name": "t", "width": width, "height": height},
                         "modules": {"m": {"width": w, "height": h, "scan": scan}},
                         "cabinets": [{"address": 9, "x": 0, "y": 0, "module": "m", "chain": "rows",
                                       "rotation": 0, "modules_x": 1, "modules_y": 1,
                                       **cabinet}]})


def test_scan_order_within_a_module():
    # 2 wide, 4 high, 1/2 scan: line i drives rows i and i + 2; per column, both groups
    scan = reference.module_scan(_coded(8, 8), _screen({}))
    assert _positions(scan.buffers[9]) == [(0, 0), (2, 0), (0, 1), (2, 1),
                                           (1, 0), (3, 0), (1, 1), (3, 1)]


@pytest.mark.parametrize("module, expected", [
    ((3, 2, 2), [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]),   # scan == height: plain rows
    ((2, 3, 1), [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]),   # 1/1 scan: column by column
])
def test_scan_extremes(module, expected):
    scan = reference.module_scan(_coded(8, 8), _screen({}, module=module))
    assert _positions(scan.buffers[9]) == expected


def test_serpentine_chain_and_rotation():
    cab = {"modules_x": 2, "modules_y": 2, "chain": "serpentine"}
    first_pixel = [p[0] for p in np.split(np.array(_positions(reference.module_scan(
        _coded(8, 8), _screen(cab, module=(2, 2, 2))).buffers[9])), 4)]
    # modules: top-left, top-right, then the second row right to left
    assert [tuple(p) for p in first_pixel] == [(0, 0), (0, 2), (2, 2), (2, 0)]
    rotated = reference.module_scan(_coded(8, 8), _screen({**cab, "rotation": 180},
                                                          module=(2, 2, 2)))
    first = [tuple(p[0]) for p in np.split(np.array(_positions(rotated.buffers[9])), 4)]
    # turned 180°: the module at the cabinet's bottom right comes first, read backwards
    assert first == [(3, 3), (3, 1), (1, 1), (1, 3)]


def test_sums_and_peaks_per_module_and_channel():
    out = _coded(8, 8)
    scan = reference.module_scan(out, _screen({"modules_x": 2}, module=(2, 4, 2)))
    assert scan.sums[9].dtype == np.uint64 and scan.peaks[9].dtype == np.uint16
    # module 0 covers rows 0..3, columns 0..1; module 1 columns 2..3
    assert scan.sums[9].tolist() == [[2 * 6, 4 * 1, 8 * 7], [2 * 6, 4 * 5, 8 * 7]]
    assert scan.peaks[9].tolist() == [[3, 1, 7], [3, 3, 7]]
