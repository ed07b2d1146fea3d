"""Colorlight end-to-end latency, measured (not a timed test): ``pytest -s benchmarks/test_video_latency.py``.

A video file is decoded, corrected and sent by the frame loop to the card
emulator of ``tests/video`` on a veth pair in a network namespace, for a
few seconds at 30 fps.  Latency is the loop's own: from the moment a decoded
picture is handed over to the moment the sink returns, i.e. after its last
row, the 5 ms gap the cards need and the display packet.  Printed per size:
latency p50/p99, send time p50/p99, slow frames, the source's drops and
repeats, and how many frames the emulator showed.  Needs root and iproute2
(skips otherwise), like the emulator tests.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "video"))
from test_video_colorlight import Emulator, netns  # noqa: E402,F401 - netns is a fixture

from controller import fastpath  # noqa: E402
from controller.fastpath.settings import gains_from, power_lut  # noqa: E402
from controller.service.frameloop import FrameLoop, frame_source  # noqa: E402
from controller.video.colorlight import ColorlightSink  # noqa: E402
from host.bench import wall_layout  # noqa: E402

SIZES = [(480, 270), (960, 540)]
SECONDS = 6.0


def clip(path: Path, width: int, height: int, frames: int = 30) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        rng = np.random.default_rng(5)
        for _ in range(frames):
            picture = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_colorlight_end_to_end_latency(netns, tmp_path, size):
    width, height = size
    layout = wall_layout(width, height)
    emulator = netns.run(Emulator, size=(width, height))
    sink = netns.run(ColorlightSink, layout, "clhost")
    source = frame_source(f"file:{clip(tmp_path / 'clip.mov', width, height)}", width, height)
    pipeline = fastpath.Pipeline(layout, power_lut(2.2), gains_from(1.0))

    async def run() -> dict:
        loop = FrameLoop(layout, pipeline, source, sink, fps=30, source_name="file")
        await loop.start()
        await asyncio.sleep(SECONDS)
        stats = loop.stats()
        await loop.stop()
        return stats
    try:
        stats = asyncio.run(run())
    finally:
        emulator.close()
    lat, snk, src = stats["latency"], stats["sink_stats"], stats["source_stats"]
    print(f"\ncolorlight {width}x{height} @30 fps, {stats['frames']} frames in {SECONDS:g} s: "
          f"latency p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms ({lat['frames']} new frames); "
          f"send p50 {snk['send_p50_ms']} ms, p99 {snk['send_p99_ms']} ms, slow {snk['slow_frames']}, "
          f"send errors {snk['send_errors']}; source dropped {src['dropped']}, repeated "
          f"{src['repeated']}; loop overruns {stats['overruns']}; emulator showed "
          f"{len(emulator.shown)}")
    assert stats["error"] is None and lat["frames"] > 0
