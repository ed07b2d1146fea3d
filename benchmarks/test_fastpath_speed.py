"""pytest-benchmark suite for the fast path: ``pytest benchmarks/`` (not part of ``pytest``).

The same kernels ``ledwarden bench`` times, one benchmark each, grouped by
screen and calibration mode so pytest-benchmark's table compares them side
by side: the fused pipeline on all cores and on one, ``correct`` then
``module_scan``, the memory-copy floor and the NumPy reference.  Nothing is
asserted about speed.  ``--benchmark-json`` keeps a run for comparison.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from controller import fastpath
from controller.fastpath import reference
from host.bench import bench_inputs, wall_layout

RESOLUTIONS = [(1920, 1080), (3840, 2160)]
MODES = ["none", "gain", "matrix"]


@lru_cache(maxsize=2)
def _case(size, mode):
    layout = wall_layout(*size)
    return layout, bench_inputs(layout, mode)


@pytest.fixture(params=[(s, m) for s in RESOLUTIONS for m in MODES],
                ids=lambda p: f"{p[0][0]}x{p[0][1]}-{p[1]}")
def case(request, benchmark):
    size, mode = request.param
    benchmark.group = f"{size[0]}x{size[1]} {mode}"
    return _case(size, mode)


def test_fused_all_cores(benchmark, case):
    layout, (frame, lut, gains, calib) = case
    pipe = fastpath.Pipeline(layout, lut, gains, calib)
    benchmark.extra_info["threads"] = pipe.threads
    benchmark(pipe.process, frame)


def test_fused_one_thread(benchmark, case):
    layout, (frame, lut, gains, calib) = case
    benchmark(fastpath.Pipeline(layout, lut, gains, calib, threads=1).process, frame)


def test_correct_then_module_scan(benchmark, case):
    layout, (frame, lut, gains, calib) = case
    out = np.empty(frame.shape, np.uint16)
    benchmark(lambda: fastpath.module_scan(fastpath.correct(frame, lut, gains, calib, out=out), layout))


def test_floor_memory_copy(benchmark, case):
    if fastpath.backend != "cffi":
        pytest.skip("the floor copy is in the C extension")
    from controller.fastpath import _cffi

    layout, (frame, lut, gains, calib) = case
    pipe = _cffi.Pipeline(layout, lut, gains, calib, threads=1)
    read, written = pipe.bytes_touched
    sources = [frame] + ([] if pipe.coef is None else [pipe.coef])
    dst = np.empty(written, np.uint8)
    benchmark.extra_info["bytes_read"], benchmark.extra_info["bytes_written"] = read, written
    benchmark(_cffi.floor_copy, sources, dst)


def test_numpy_reference(benchmark, case):
    layout, (frame, lut, gains, calib) = case
    benchmark.pedantic(lambda: reference.module_scan(reference.correct(frame, lut, gains, calib), layout),
                       rounds=2, iterations=1)


# Current limiting (issue 14): the same pipeline with a per-cabinet scale (every cabinet a
# different one) and with the limiter's update, in the case's group beside the plain runs,
# so pytest-benchmark's table gives the ratios; and the limiter's update alone.

def _scale(layout):
    n = len(layout.cabinets)
    return (65536 - (np.arange(n) * 997) % 32768).astype(np.uint32)


@pytest.mark.parametrize("threads", [None, 1], ids=["all-cores", "one-thread"])
def test_fused_with_scale(benchmark, case, threads):
    layout, (frame, lut, gains, calib) = case
    pipe = fastpath.Pipeline(layout, lut, gains, calib, threads=threads)
    benchmark(pipe.process, frame, _scale(layout))


@pytest.mark.parametrize("threads", [None, 1], ids=["all-cores", "one-thread"])
def test_fused_with_limiter(benchmark, case, threads):
    from host.benchlimit import bench_power

    layout, (frame, lut, gains, calib) = case
    pipe = fastpath.Pipeline(layout, lut, gains, calib, threads=threads)
    limiter = bench_power(layout)

    def frame_with_limiter():
        s = limiter.scale()
        limiter.update(pipe.process(frame, s).sums, s)
    benchmark(frame_with_limiter)


def test_limiter_update_alone(benchmark, case):
    from host.benchlimit import bench_power

    layout, (frame, lut, gains, calib) = case
    sums = fastpath.Pipeline(layout, lut, gains, calib, threads=1).process(frame).sums
    limiter = bench_power(layout)
    benchmark.extra_info["cabinets"] = len(layout.cabinets)
    benchmark(limiter.update, sums, _scale(layout))
