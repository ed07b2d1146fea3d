"""The frame loop itself playing a video file out as DDP: what `controller run --source
file:clip --sink ddp://…` does, with a receiver written here from the DDP description."""

from __future__ import annotations

import asyncio
import itertools
import socket

import numpy as np

from controller import fastpath
from controller.config import loads_screen
from controller.fastpath.settings import gains_from, power_lut
from controller.service.frameloop import FrameLoop, frame_sink, frame_source
from test_video_ddp import SCREEN, H, W, spec_receive
from test_video_files import make_clip


def test_the_loop_plays_a_clip_out_as_ddp_exactly(tmp_path):
    layout = loads_screen(SCREEN)
    clip = make_clip(tmp_path / "teal.mov", [(0, 128, 128)], width=W, height=H)
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    source = frame_source(f"file:{clip}", W, H)
    sink = frame_sink(f"ddp://127.0.0.1:{listener.getsockname()[1]}", layout)
    pipeline = fastpath.Pipeline(layout, power_lut(1.0), gains_from(1.0), threads=1)
    expected = np.empty((H, W, 3), np.uint8)
    expected[:] = (0, 128, 128)

    async def run() -> list[bytes]:
        loop = FrameLoop(layout, pipeline, source, sink, fps=30, source_name="file")
        await loop.start()
        pictures = []
        try:
            for _ in range(60):   # black until the decoder's first picture, then teal
                picture, _ = await asyncio.to_thread(spec_receive, listener, W * H * 3)
                pictures.append(picture)
                if picture == expected.tobytes():
                    break
        finally:
            await loop.stop()
        return pictures

    try:
        pictures = asyncio.run(run())
    finally:
        source.close()
        listener.close()
    assert pictures[-1] == expected.tobytes()
    assert all(p in (bytes(W * H * 3), expected.tobytes()) for p in pictures)


def test_the_loop_sends_8_bit_sinks_the_fused_re_encode_and_follows_a_live_change():
    """The loop hands the DDP sink the frame (``send_frame``): with a receiver gamma, calibration
    and a pipeline swapped mid-run (a live settings change), every picture is
    ``reference.correct_encode`` of the frame under the pipeline in force, nothing in between."""
    layout = loads_screen(SCREEN)
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    frame = np.random.default_rng(5).integers(0, 256, (H, W, 3), dtype=np.uint8)
    source = itertools.repeat(frame)
    sink = frame_sink(f"ddp://127.0.0.1:{listener.getsockname()[1]}?gamma=2.2", layout)
    calib = np.random.default_rng(6).integers(12000, 18000, (H, W, 3), dtype=np.int16)
    table = fastpath.encode_table("2.2")
    settings = [(power_lut(2.2), gains_from(0.9), calib), (power_lut(1.8), gains_from(0.5), None)]
    pipes = [fastpath.Pipeline(layout, *s, threads=2) for s in settings]
    wants = [fastpath.reference.correct_encode(frame, *s, table).tobytes() for s in settings]

    async def run() -> list[bytes]:
        loop = FrameLoop(layout, pipes[0], source, sink, fps=60, source_name="test")
        await loop.start()
        got = []
        try:
            for n in range(12):
                if n == 4:
                    loop.use_pipeline(pipes[1])
                assert loop.error is None, loop.error
                got.append((await asyncio.to_thread(spec_receive, listener, W * H * 3))[0])
        finally:
            await loop.stop()
        return got

    try:
        pictures = asyncio.run(run())
    finally:
        listener.close()
    assert pictures[0] == wants[0] and pictures[-1] == wants[1]
    assert all(p in wants for p in pictures)
    assert sink.encoder._for is pipes[1]     # the fused path ran, rebuilt for the new pipeline
