"""Every invalid input raises ValueError naming the argument, and nothing is written.

Run against both backends: the compiled one must refuse exactly what the
reference refuses, before C sees a pointer.
"""

from __future__ import annotations

import numpy as np
import pytest

from controller.config import parse_screen
from controller.fastpath import _cffi, reference

from fastpath_cases import BOUND_ROWS, inputs

BACKENDS = [pytest.param(reference, id="numpy"), pytest.param(_cffi, id="cffi")]
H, W = 4, 6


def good(mode="matrix"):
    return inputs(11, (H, W), mode)


def _bad_frames():
    frame = good()[0]
    return [frame.astype(np.uint16), frame[..., :2], frame[0], frame.tolist(),
            frame.astype(">u2").view(np.uint8)[..., ::2][:, :, :0]]


def _bad_luts():
    lut = good()[1]
    return [lut.astype(np.int32), lut[:2], lut[:, :255], lut.astype(">u2"), lut.tolist()]


def _bad_gains():
    return [[65536, 65536], [0, 0, 65537], [-1, 0, 0], [1.0, 1.0, 1.0], "abc", [[1, 2, 3]]]


def _bad_calibs():
    calib = good("matrix")[3]
    gain = good("gain")[3]
    over = calib.copy()
    over[2, 3, 1] = [16384, -16384, 1]         # row sum 32769: one past the bound
    negative = gain.copy()
    negative[1, 4, 2] = -1
    return [(calib.astype(np.int32), "dtype must be int16"),
            (calib[:, :, :2], "shape must be"),
            (calib[:3], "shape must be"),
            (gain[..., None], "shape must be"),
            (over, r"matrix row G at pixel \(y=2, x=3\) is \[16384, -16384, 1\], absolute sum 32769"),
            (negative, r"gain at pixel \(y=1, x=4\) channel B is -1")]


def _assert_untouched(out):
    assert (out == 12345).all(), "an invalid call wrote to out"


@pytest.mark.parametrize("impl", BACKENDS)
@pytest.mark.parametrize("case", range(5))
def test_correct_rejects_bad_frames(impl, case):
    _, lut, gains, calib = good()
    out = np.full((H, W, 3), 12345, np.uint16)
    with pytest.raises(ValueError, match="^frame: "):
        impl.correct(_bad_frames()[case], lut, gains, calib, out=out)
    _assert_untouched(out)


@pytest.mark.parametrize("impl", BACKENDS)
@pytest.mark.parametrize("case", range(5))
def test_correct_rejects_bad_luts(impl, case):
    frame, _, gains, calib = good()
    out = np.full((H, W, 3), 12345, np.uint16)
    with pytest.raises(ValueError, match="^lut: "):
        impl.correct(frame, _bad_luts()[case], gains, calib, out=out)
    _assert_untouched(out)


@pytest.mark.parametrize("impl", BACKENDS)
@pytest.mark.parametrize("gains", _bad_gains())
def test_correct_rejects_bad_gains(impl, gains):
    frame, lut, _, calib = good()
    out = np.full((H, W, 3), 12345, np.uint16)
    with pytest.raises(ValueError, match="^gains: "):
        impl.correct(frame, lut, gains, calib, out=out)
    _assert_untouched(out)


@pytest.mark.parametrize("impl", BACKENDS)
@pytest.mark.parametrize("case", range(6))
def test_correct_rejects_bad_calibration(impl, case):
    frame, lut, gains, _ = good()
    calib, message = _bad_calibs()[case]
    out = np.full((H, W, 3), 12345, np.uint16)
    with pytest.raises(ValueError, match="^calib: .*" + message):
        impl.correct(frame, lut, gains, calib, out=out)
    _assert_untouched(out)


@pytest.mark.parametrize("impl", BACKENDS)
def test_calibration_exactly_at_the_bound_is_accepted(impl):
    frame, lut, gains, calib = good()
    calib[...] = BOUND_ROWS[np.arange(H * W * 3).reshape(H, W, 3) % len(BOUND_ROWS)]
    assert np.array_equal(impl.correct(frame, lut, gains, calib),
                          reference.correct(frame, lut, gains, calib))


@pytest.mark.parametrize("impl", BACKENDS)
def test_correct_rejects_bad_out(impl):
    frame, lut, gains, calib = good()
    for out, message in [(np.zeros((H, W, 3), np.int32), "dtype"), (np.zeros((H, W + 1, 3), np.uint16), "shape"),
                         (np.zeros((H, 2 * W, 3), np.uint16)[:, ::2], "C-contiguous")]:
        out[...] = 12345
        with pytest.raises(ValueError, match=f"^out: .*{message}"):
            impl.correct(frame, lut, gains, calib, out=out)
        _assert_untouched(out)
    shared = np.full((H, W, 3), 12345, np.uint16)
    with pytest.raises(ValueError, match="^out: shares memory"):
        impl.correct(shared.view(np.uint8)[..., :3], lut, gains, None, out=shared)
    _assert_untouched(shared)


LAYOUT = parse_screen({"screen": {"name": "t", "width": W, "height": H},
                       "modules": {"m": {"width": 3, "height": 2, "scan": 1}},
                       "cabinets": [{"address": 4, "x": 0, "y": 0, "module": "m", "modules_x": 2,
                                     "modules_y": 2, "chain": "rows", "rotation": 0}]})


@pytest.mark.parametrize("impl", BACKENDS)
def test_module_scan_rejects_bad_inputs(impl):
    out = np.zeros((H, W, 3), np.uint16)
    with pytest.raises(ValueError, match="^layout: "):
        impl.module_scan(out, {"screen": {}})
    for bad in (out[:, :-1], out.astype(np.uint8), out[..., 0], out.tolist()):
        with pytest.raises(ValueError, match="^out: "):
            impl.module_scan(bad, LAYOUT)


@pytest.mark.parametrize("impl", BACKENDS)
def test_pipeline_rejects_bad_construction(impl):
    _, lut, gains, calib = good()
    with pytest.raises(ValueError, match="^layout: "):
        impl.Pipeline("screen.toml", lut, gains, calib)
    with pytest.raises(ValueError, match="^lut: "):
        impl.Pipeline(LAYOUT, lut[:2], gains, calib)
    with pytest.raises(ValueError, match="^gains: "):
        impl.Pipeline(LAYOUT, lut, [70000, 0, 0], calib)
    with pytest.raises(ValueError, match="^calib: "):
        impl.Pipeline(LAYOUT, lut, gains, calib[:-1])
    for threads in (0, -2, 1.5, True, "2"):
        with pytest.raises(ValueError, match="^threads: "):
            impl.Pipeline(LAYOUT, lut, gains, calib, threads=threads)
    with pytest.raises(ValueError, match="^kernel: "):
        impl.Pipeline(LAYOUT, lut, gains, calib, kernel="sse9")


@pytest.mark.parametrize("impl", BACKENDS)
def test_pipeline_rejects_bad_frames_and_keeps_the_last_result(impl):
    frame, lut, gains, calib = good()
    pipe = impl.Pipeline(LAYOUT, lut, gains, calib)
    result = pipe.process(frame)
    before = {a: b.copy() for a, b in result.buffers.items()}
    for bad in (frame[:, :-1], frame.astype(np.int16), frame[..., 0], None):
        with pytest.raises(ValueError, match="^frame: "):
            pipe.process(bad)
    for address, buffer in result.buffers.items():   # the compiled pipeline's own buffers too
        assert np.array_equal(buffer, before[address])
