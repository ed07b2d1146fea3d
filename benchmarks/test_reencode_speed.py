"""pytest-benchmark suite for the fused re-encode (issue 16 item 3): ``pytest benchmarks/``.

At 1920 × 1080, per calibration mode, in one group so the table shows the
ratios side by side:

* ``correct_alone`` — the fused correction + module scan (``Pipeline.process``),
  what every frame costs today;
* ``fused_reencode`` — frame → correction → the card's inverse curve (γ 2.2)
  → bytes in Colorlight row-packet payloads (``fastpath.Encoder``), what a
  Colorlight or DDP frame costs now;
* ``old_screen_picture`` — what it cost before: ``Pipeline.process``, the
  NumPy :class:`ScreenPicture` gather + table, then the row packets filled.

Both compiled paths run on every core the process may use.  Nothing is
asserted about speed; ``benchmarks/reencode_1080p60.py`` prints the ratio
measured in one run, interleaved, with the 1080p60 end-to-end figures.
"""

from __future__ import annotations

from functools import lru_cache

import pytest

from controller import fastpath
from controller.video.colorlight import RowPackets
from controller.video.picture import ScreenPicture
from host.bench import bench_inputs, wall_layout

MODES = ("none", "gain", "matrix")


@lru_cache(maxsize=3)
def _case(mode: str):
    layout = wall_layout(1920, 1080)
    frame, lut, gains, calib = bench_inputs(layout, mode)
    table = fastpath.encode_table("2.2")
    pipe = fastpath.Pipeline(layout, lut, gains, calib)
    rows = RowPackets(layout.height, layout.width)
    enc = fastpath.Encoder((layout.height, layout.width), lut, gains, calib, table, rows.payloads,
                           threads=pipe.threads)
    return layout, frame, pipe, rows, enc, ScreenPicture(layout, table)


@pytest.fixture(params=MODES)
def case(request, benchmark):
    benchmark.group = f"re-encode 1920x1080 {request.param}"
    return _case(request.param)


def test_correct_alone(benchmark, case):
    _, frame, pipe, *_ = case
    benchmark(pipe.process, frame)


def test_fused_reencode(benchmark, case):
    _, frame, _, rows, enc, _ = case
    benchmark(enc.encode_into, frame, rows.buffer)


def test_old_screen_picture(benchmark, case):
    _, frame, pipe, rows, _, picture = case
    benchmark(lambda: rows.fill(picture.picture(pipe.process(frame))))
