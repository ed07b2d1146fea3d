"""Which backend is live, the fallback when the extension is missing, and threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from controller import fastpath
from controller.fastpath import _cffi, reference

from fastpath_cases import assert_scan_equal, inputs
from test_fastpath_kernel import _wall

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "default", "-c", code], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=60)


def test_the_compiled_backend_is_live_here():
    assert fastpath.backend == "cffi"
    assert fastpath.Pipeline is _cffi.Pipeline and fastpath.reference is reference


def test_policy_numpy_selects_the_reference():
    run = _python("from controller import fastpath; print(fastpath.backend, fastpath.Pipeline.__module__)",
                  LEDWARDEN_FASTPATH="numpy")
    assert run.returncode == 0 and run.stdout.split() == ["numpy", "controller.fastpath.reference"]


def test_a_missing_extension_falls_back_with_a_warning():
    code = ("import sys; sys.modules['controller.fastpath._lw'] = None\n"
            "from controller import fastpath; print(fastpath.backend)")
    run = _python(code)
    assert run.returncode == 0 and run.stdout.strip() == "numpy"
    assert "RuntimeWarning" in run.stderr and "NumPy reference" in run.stderr
    strict = _python(code, LEDWARDEN_FASTPATH="cffi")
    assert strict.returncode != 0 and "controller.fastpath._lw" in strict.stderr


def test_reference_pipeline_matches_the_compiled_one():
    layout = _wall(180, (24, 8, 2))
    frame, lut, gains, calib = inputs(4, (layout.height, layout.width), "gain", extreme=True)
    assert_scan_equal(reference.Pipeline(layout, lut, gains, calib).process(frame),
                      _cffi.Pipeline(layout, lut, gains, calib).process(frame))


def test_threads_default_to_every_available_core():
    layout = _wall(0, (24, 8, 2))
    _, lut, gains, _ = inputs(1, (layout.height, layout.width), "none")
    assert _cffi.Pipeline(layout, lut, gains).threads == len(os.sched_getaffinity(0))
    assert _cffi.Pipeline(layout, lut, gains, threads=5).threads == 5


def test_the_gil_is_released_while_the_kernel_runs():
    """With a 10 s switch interval, the other thread only runs if C lets go of the GIL.

    The counting thread gives the GIL back at every step (``sleep(0)``), so
    the pipeline's thread gets it back as soon as its call returns.
    """
    layout = _wall(0, (160, 90, 45), (4, 4))
    frame, lut, gains, calib = inputs(9, (layout.height, layout.width), "matrix")
    pipe = _cffi.Pipeline(layout, lut, gains, calib, threads=1)
    counter, done = [0], threading.Event()

    def count():
        while not done.is_set():
            counter[0] += 1
            time.sleep(0)

    old = sys.getswitchinterval()
    sys.setswitchinterval(10)
    worker = threading.Thread(target=count)
    try:
        worker.start()
        before = counter[0]
        for _ in range(20):
            pipe.process(frame)
        during = counter[0] - before
    finally:
        done.set()
        sys.setswitchinterval(old)
        worker.join()
    assert during > 10      # held, it would be 0; how many more depends on what else runs


def test_pipelines_on_two_python_threads_agree_with_the_reference():
    layout = _wall(0, (64, 32, 16))
    frame, lut, gains, calib = inputs(2, (layout.height, layout.width), "matrix")
    want = reference.module_scan(reference.correct(frame, lut, gains, calib), layout)
    pipes = [_cffi.Pipeline(layout, lut, gains, calib, threads=2) for _ in range(2)]
    errors = []

    def run(pipe):
        try:
            for _ in range(20):
                assert_scan_equal(want, pipe.process(frame))
        except AssertionError as exc:   # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in pipes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("mode", ["none", "gain", "matrix"])
def test_floor_copy_reads_everything_and_writes_the_buffers(mode):
    layout = _wall(0, (64, 32, 16))
    frame, lut, gains, calib = inputs(3, (layout.height, layout.width), mode)
    pipe = _cffi.Pipeline(layout, lut, gains, calib)
    read, written = pipe.bytes_touched
    assert written == sum(b.nbytes for b in pipe.process(frame).buffers.values())
    assert read == frame.nbytes + (0 if calib is None else calib.nbytes)
    dst = np.zeros(written, np.uint8)
    sources = [frame] + ([] if pipe.coef is None else [pipe.coef])
    _cffi.floor_copy(sources, dst)
    data = np.concatenate([s.reshape(-1).view(np.uint8) for s in sources])
    assert np.array_equal(dst, np.resize(data, written))   # repeated when written > read


def test_the_public_api_says_what_runs_as_the_kernel_does():
    """``ledwarden bench`` reports the machine through the public API, not the private module."""
    assert fastpath.kernels() == _cffi.kernels()
    assert fastpath.build_info() == _cffi.build_info()
    assert fastpath.default_threads() == _cffi.default_threads() == len(os.sched_getaffinity(0))
    sources, dst = [np.arange(10, dtype=np.uint8)], np.zeros(25, np.uint8)
    fastpath.floor_copy(sources, dst)
    assert np.array_equal(dst, np.resize(sources[0], 25))


def test_the_public_api_on_the_numpy_backend_names_no_kernel():
    run = _python("from controller import fastpath\n"
                  "print(fastpath.kernels(), fastpath.default_threads(), fastpath.build_info())\n"
                  "try:\n    fastpath.floor_copy([], None)\n"
                  "except RuntimeError as exc:\n    print(exc)", LEDWARDEN_FASTPATH="numpy")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "('numpy',) 1 NumPy backend: the C extension is not built",
        "fastpath.floor_copy needs the compiled kernel; fastpath.backend is numpy"]
