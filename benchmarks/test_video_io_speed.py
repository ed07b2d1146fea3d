"""pytest-benchmark suite for the video sinks' per-frame work: ``pytest benchmarks/``.

What a DDP or Colorlight sink adds to a frame on top of the fast path: the
screen's 8-bit picture from the card buffers (:class:`ScreenPicture`), then
the packets (DDP datagrams; Colorlight row packets refilled in place).  The
fused pipeline is timed beside them so the table shows the ratio.  Sending is
not timed here (it depends on the network); ``ColorlightSink.stats()`` keeps
each frame's send time.  Nothing is asserted about speed.
"""

from __future__ import annotations

from functools import lru_cache

import pytest

from controller import fastpath
from controller.video.colorlight import RowPackets
from controller.video.ddp import ddp_packets
from controller.video.picture import ScreenPicture
from host.bench import bench_inputs, wall_layout

# one bench cabinet (about what one 5A-75 drives), and a full-HD wall
RESOLUTIONS = [(480, 270), (1920, 1080)]


@lru_cache(maxsize=2)
def _case(size):
    layout = wall_layout(*size)
    frame, lut, gains, calib = bench_inputs(layout, "none")
    pipe = fastpath.Pipeline(layout, lut, gains, calib)
    picture = ScreenPicture(layout)
    return layout, pipe, frame, picture, picture.picture(pipe.process(frame))


@pytest.fixture(params=RESOLUTIONS, ids=lambda s: f"{s[0]}x{s[1]}")
def case(request, benchmark):
    benchmark.group = f"video out {request.param[0]}x{request.param[1]}"
    return _case(request.param)


def test_fused_pipeline(benchmark, case):
    _, pipe, frame, _, _ = case
    benchmark(pipe.process, frame)


def test_screen_picture_8_bit(benchmark, case):
    _, pipe, frame, picture, _ = case
    scan = pipe.process(frame)
    benchmark(picture.picture, scan)


def test_ddp_datagrams(benchmark, case):
    *_, rgb = case
    benchmark(lambda: ddp_packets(rgb.tobytes(), 0))


def test_colorlight_row_packets(benchmark, case):
    layout, *_, rgb = case
    rows = RowPackets(layout.height, layout.width)

    def fill_and_walk():
        rows.fill(rgb)
        for _ in rows.frames():
            pass
    benchmark(fill_and_walk)
