"""The per-cabinet scale (``Pipeline.process(frame, scale)``): bit-exact on every kernel.

The scale is an extension of the spec, defined by
:func:`controller.fastpath.reference.scaled_gains` and documented in
``docs/correction.md``.  These tests hold the compiled kernel to the NumPy
reference over drawn screens, inputs and scales (the edges 0, 1, 65535 and
65536 mixed in), check that a full scale is the same picture as none, that a
scale above 1.0 or of the wrong shape is refused with nothing changed, and
that the scale of one frame does not leak into the next.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from controller.config import parse_screen
from controller.fastpath import _cffi, reference

from fastpath_cases import MODES, assert_scan_equal, inputs, layouts, scales

KERNELS = _cffi.kernels()
PROPERTY = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(layout=layouts(), seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES),
       extreme=st.booleans(), threads=st.sampled_from([1, 2, 3]))
def test_scaled_pipeline_matches_reference(layout, seed, mode, extreme, threads):
    frame, lut, gains, calib = inputs(seed, (layout.height, layout.width), mode, extreme)
    scale = scales(seed, len(layout.cabinets), extreme)
    want = reference.Pipeline(layout, lut, gains, calib).process(frame, scale)
    for kernel in KERNELS:
        pipe = _cffi.Pipeline(layout, lut, gains, calib, threads=threads, kernel=kernel)
        assert_scan_equal(want, pipe.process(frame, scale))
        # the next frame without a scale is the unscaled picture: nothing is left behind
        assert_scan_equal(reference.module_scan(reference.correct(frame, lut, gains, calib), layout),
                          pipe.process(frame))


@PROPERTY
@given(layout=layouts(), seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES))
def test_full_scale_is_the_unscaled_picture(layout, seed, mode):
    frame, lut, gains, calib = inputs(seed, (layout.height, layout.width), mode, extreme=True)
    full = np.full(len(layout.cabinets), 65536, np.uint32)
    want = reference.module_scan(reference.correct(frame, lut, gains, calib), layout)
    assert_scan_equal(want, reference.Pipeline(layout, lut, gains, calib).process(frame, full))
    for kernel in KERNELS:
        assert_scan_equal(want, _cffi.Pipeline(layout, lut, gains, calib, kernel=kernel)
                          .process(frame, full))


def _wall():
    """Four cabinets of two 20x6 modules, 2 x 2, covering the frame."""
    cabs = [{"address": 1 + k, "x": 40 * (k % 2), "y": 6 * (k // 2), "module": "m", "modules_x": 2,
             "modules_y": 1, "chain": "serpentine", "rotation": 180 * (k // 2)} for k in range(4)]
    return parse_screen({"screen": {"name": "w", "width": 80, "height": 12},
                         "modules": {"m": {"width": 20, "height": 6, "scan": 6}}, "cabinets": cabs})


def test_scaled_gains_rounding_is_the_documented_one():
    gains = np.array([65536, 65535, 1])
    assert reference.scaled_gains(gains, 65536).tolist() == [65536, 65535, 1]
    assert reference.scaled_gains(gains, 32768).tolist() == [32768, 32768, 1]  # 0.5 rounds up
    assert reference.scaled_gains(gains, 0).tolist() == [0, 0, 0]
    assert reference.scaled_gains(gains, 1).tolist() == [1, 1, 0]


def test_zero_scale_blanks_only_its_cabinet():
    layout = _wall()
    frame, lut, gains, calib = inputs(3, (layout.height, layout.width), "gain")
    gains = np.array([65536, 65536, 65536])
    scale = np.array([65536, 0, 65536, 65536], np.uint32)
    for kernel in KERNELS:
        scan = _cffi.Pipeline(layout, lut, gains, calib, kernel=kernel).process(frame, scale)
        second = layout.cabinets[1].address
        assert not scan.buffers[second].any() and not scan.sums[second].any()
        assert all(scan.sums[c.address].any() for c in layout.cabinets if c.address != second)


@pytest.mark.parametrize("backend", ["numpy", "cffi"])
@pytest.mark.parametrize("bad, words", [
    (np.array([65537, 0, 0, 0], np.uint32), "cabinet 1 has 65537"),
    (np.array([1, 2, 3], np.uint32), "one value per cabinet"),
    (np.array([1.0, 2, 3, 4]), "dtype must be uint32"),
    ([65536] * 4, "expected a numpy array"),
])
def test_bad_scales_are_refused_and_change_nothing(backend, bad, words):
    layout = _wall()
    frame, lut, gains, calib = inputs(5, (layout.height, layout.width), "none")
    cls = reference.Pipeline if backend == "numpy" else _cffi.Pipeline
    pipe = cls(layout, lut, gains, calib)
    before = {a: b.copy() for a, b in pipe.process(frame).buffers.items()}
    with pytest.raises(ValueError, match=words):
        pipe.process(np.zeros_like(frame), bad)
    if backend == "cffi":   # the compiled pipeline's buffers were not touched
        assert all(np.array_equal(before[a], b) for a, b in pipe._result.buffers.items())
