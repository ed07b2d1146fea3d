"""The compiled kernel is bit-exact with the NumPy reference, on every kernel this CPU runs.

Property tests draw small screens (several cabinets, both chains, both
rotations, scans 1 … 32, one to three rows per scan line) and inputs with
the spec's extremes mixed in, and compare every byte of the card buffers,
sums and peaks.  Frames stay small so the suite runs in seconds; the
kernel's block and staging logic is exercised all the same because module
widths and line lengths are drawn around its 32-pixel blocks.
"""

from __future__ import annotations

import ctypes
import mmap
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from controller.config import parse_screen
from controller.fastpath import _cffi, reference

from fastpath_cases import MODES, assert_scan_equal, inputs, layouts

KERNELS = _cffi.kernels()
PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), height=st.integers(0, 9), width=st.integers(0, 80),
       mode=st.sampled_from(MODES), extreme=st.booleans())
def test_correct_matches_reference(seed, height, width, mode, extreme):
    frame, lut, gains, calib = inputs(seed, (height, width), mode, extreme)
    want = reference.correct(frame, lut, gains, calib)
    for kernel in KERNELS:
        got = _cffi.correct(frame, lut, gains, calib, kernel=kernel)
        assert np.array_equal(got, want), kernel


@PROPERTY
@given(layout=layouts(), seed=st.integers(0, 2**32 - 1))
def test_module_scan_matches_reference(layout, seed):
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 65536, (layout.height, layout.width, 3), dtype=np.uint16)
    assert_scan_equal(reference.module_scan(out, layout), _cffi.module_scan(out, layout))


@PROPERTY
@given(layout=layouts(), seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES),
       extreme=st.booleans(), threads=st.sampled_from([1, 2, 3]))
def test_pipeline_matches_reference(layout, seed, mode, extreme, threads):
    frame, lut, gains, calib = inputs(seed, (layout.height, layout.width), mode, extreme)
    want = reference.module_scan(reference.correct(frame, lut, gains, calib), layout)
    for kernel in KERNELS:
        pipe = _cffi.Pipeline(layout, lut, gains, calib, threads=threads, kernel=kernel)
        assert_scan_equal(want, pipe.process(frame))


def _wall(rotation, module=(160, 90, 45), cabinets=(2, 2)):
    """A small wall of the bench's kind: full-frame coverage, so the last pixel is read."""
    w, h, scan = module
    cabs = [{"address": 1 + r * cabinets[0] + c, "x": c * 2 * w, "y": r * h, "module": "m",
             "modules_x": 2, "modules_y": 1, "chain": "serpentine", "rotation": rotation}
            for r in range(cabinets[1]) for c in range(cabinets[0])]
    return parse_screen({"screen": {"name": "w", "width": 2 * w * cabinets[0],
                                    "height": h * cabinets[1]},
                         "modules": {"m": {"width": w, "height": h, "scan": scan}},
                         "cabinets": cabs})


@pytest.mark.parametrize("module", [(160, 90, 45), (64, 32, 16), (20, 6, 6), (24, 8, 2), (7, 4, 4)])
@pytest.mark.parametrize("rotation", [0, 180])
@pytest.mark.parametrize("mode", MODES)
def test_pipeline_full_frame_layouts(module, rotation, mode):
    layout = _wall(rotation, module)
    frame, lut, gains, calib = inputs(7, (layout.height, layout.width), mode, extreme=True)
    want = reference.module_scan(reference.correct(frame, lut, gains, calib), layout)
    for kernel in KERNELS:
        assert_scan_equal(want, _cffi.Pipeline(layout, lut, gains, calib, kernel=kernel).process(frame))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs mprotect")
@pytest.mark.parametrize("rotation", [0, 180])
def test_no_byte_outside_the_frame_is_read(rotation):
    """The frame sits between two inaccessible pages: any read past either end would crash."""
    layout = _wall(rotation, (64, 32, 16), (1, 1))
    size = layout.width * layout.height * 3
    page = mmap.PAGESIZE
    body = -(-size // page) * page
    region = mmap.mmap(-1, body + 2 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for start in (base, base + page + body):
        assert libc.mprotect(start, page, 0) == 0, ctypes.get_errno()
    try:
        # flush with the end of the body for the forward walk, with its start for rotation
        offset = page + (body - size if rotation == 0 else 0)
        frame = np.frombuffer(region, np.uint8, size, offset).reshape(layout.height, layout.width, 3)
        frame[...] = np.random.default_rng(3).integers(0, 256, frame.shape, dtype=np.uint8)
        for mode in MODES:
            _, lut, gains, calib = inputs(5, frame.shape[:2], mode)
            want = reference.module_scan(reference.correct(frame, lut, gains, calib), layout)
            for kernel in KERNELS:
                pipe = _cffi.Pipeline(layout, lut, gains, calib, threads=1, kernel=kernel)
                assert_scan_equal(want, pipe.process(frame))
                assert np.array_equal(_cffi.correct(frame, lut, gains, calib, kernel=kernel),
                                      reference.correct(frame, lut, gains, calib))
        del frame
    finally:
        for start in (base, base + page + body):
            libc.mprotect(start, page, 3)


def test_pipeline_reuses_its_buffers():
    layout = _wall(0, (64, 32, 16))
    frame, lut, gains, calib = inputs(1, (layout.height, layout.width), "matrix")
    pipe = _cffi.Pipeline(layout, lut, gains, calib, threads=2)
    first = pipe.process(frame)
    buffer = first.buffers[1]
    assert not buffer.flags.writeable
    second = pipe.process(frame[::-1].copy())
    assert second is first and second.buffers[1] is buffer   # same arrays, new contents
    assert_scan_equal(reference.module_scan(reference.correct(frame[::-1], lut, gains, calib),
                                            layout), second)


def test_non_contiguous_frames_are_accepted():
    layout = _wall(180, (20, 6, 6))
    frame, lut, gains, calib = inputs(2, (layout.height, 2 * layout.width), "gain")
    view = frame[:, ::2]
    want = reference.module_scan(reference.correct(view, lut, gains, calib[:, ::2]), layout)
    assert_scan_equal(want, _cffi.Pipeline(layout, lut, gains, calib[:, ::2]).process(view))


def test_kernels_and_build_are_reported():
    assert KERNELS and all(isinstance(k, str) for k in KERNELS)
    assert "-O3" in _cffi.build_info() and "march=native" not in _cffi.build_info()
