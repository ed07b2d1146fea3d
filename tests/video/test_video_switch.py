"""Switching the frame loop's source while frames flow, and the loop's video statistics.

In-process: a real pipeline at identity settings and a sink that turns the
cards' buffers back into the screen's picture, so each frame shown can be
compared with the source it came from.  The switch must land between two
frames (every frame is wholly one source's), close the source it replaces,
and reset the per-source counters; latency is measured for frames that
arrived (DDP here), from arrival to the sink's return.
"""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from controller import fastpath
from controller.config import loads_screen
from controller.errors import ConfigError
from controller.fastpath.settings import gains_from, power_lut
from controller.service.frameloop import FrameLoop, frame_source
from controller.video.picture import ScreenPicture
from test_video_ddp import SCREEN, H, W, random_frame, spec_send


class PictureSink:
    """Keeps the picture of every frame it is handed (a real sink: it rebuilds the screen)."""

    name = "pictures"

    def __init__(self, layout) -> None:
        self.screen = ScreenPicture(layout)
        self.shown: list[np.ndarray] = []
        self.closed = False

    def send(self, scan, frame_no: int) -> None:
        self.shown.append(self.screen.picture(scan))

    def close(self) -> None:
        self.closed = True


def solid(colour) -> np.ndarray:
    picture = np.empty((H, W, 3), np.uint8)
    picture[:] = colour
    return picture


def test_a_switch_lands_between_frames_and_closes_the_old_source():
    layout = loads_screen(SCREEN)
    pipeline = fastpath.Pipeline(layout, power_lut(1.0), gains_from(1.0), threads=1)
    sink = PictureSink(layout)
    listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listen.bind(("127.0.0.1", 0))
    port = listen.getsockname()[1]
    listen.close()
    ddp = frame_source(f"ddp://127.0.0.1:{port}", W, H)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    frame = random_frame(3)

    async def run() -> tuple[int, dict, dict]:
        loop = FrameLoop(layout, pipeline, ddp, sink, fps=100, source_name="ddp:")
        await loop.start()
        try:
            for _ in range(100):  # until DDP frames have been shown with their latency measured
                spec_send(sender, ("127.0.0.1", port), frame.tobytes())
                await asyncio.sleep(0.02)
                if loop.latency()["frames"] >= 3:
                    break
            before = loop.stats()
            await loop.set_source(frame_source("pattern:red", W, H), "pattern:red")
            switched_at = len(sink.shown)
            await asyncio.sleep(0.2)
            return switched_at, before, loop.stats()
        finally:
            await loop.stop()

    try:
        switched_at, before, after = asyncio.run(run())
    finally:
        sender.close()
    red, black = solid((255, 0, 0)), solid((0, 0, 0))
    assert all(any(np.array_equal(p, want) for want in (frame, red, black)) for p in sink.shown)
    assert all(np.array_equal(p, red) for p in sink.shown[switched_at + 1:])
    assert len(sink.shown) > switched_at + 5
    assert ddp.stopping.is_set() and sink.closed  # the old source was closed, the sink at stop
    lat = before["latency"]
    assert lat["frames"] >= 3 and 0 < lat["p50_ms"] <= lat["p99_ms"] < 1000
    assert before["source_stats"]["source"] == "ddp:" and before["source_stats"]["produced"] >= 3
    assert after["source_stats"]["source"] == "pattern:red" and after["source"] == "pattern:red"
    assert after["source_stats"]["frames"] < after["frames"]          # counters restarted
    sink_stats = after["sink_stats"]
    assert sink_stats["frames"] == after["frames"] and sink_stats["send_p99_ms"] is not None
    assert after["video_cards"] == []                                  # no discovery on this sink


def test_an_unknown_pattern_fails_when_the_source_is_made_not_at_its_first_frame():
    """A live switch opens the source and then hands it over: a bad name must fail the opening."""
    with pytest.raises(ConfigError, match="patterns are bars, gradient"):
        frame_source("pattern:plaid", W, H)


def test_a_live_source_with_nothing_yet_keeps_the_picture_on_the_wall():
    """Switching to DDP before any sender speaks: the wall keeps red, it does not go black."""
    layout = loads_screen(SCREEN)
    pipeline = fastpath.Pipeline(layout, power_lut(1.0), gains_from(1.0), threads=1)
    sink = PictureSink(layout)
    listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listen.bind(("127.0.0.1", 0))
    port = listen.getsockname()[1]
    listen.close()

    async def run() -> int:
        loop = FrameLoop(layout, pipeline, frame_source("pattern:red", W, H), sink, fps=50,
                         source_name="pattern:red")
        await loop.start()
        try:
            await asyncio.sleep(0.1)
            await loop.set_source(frame_source(f"ddp://127.0.0.1:{port}", W, H), "ddp:")
            switched_at = len(sink.shown)
            await asyncio.sleep(0.3)
            return switched_at
        finally:
            await loop.stop()
    switched_at = asyncio.run(run())
    red = solid((255, 0, 0))
    assert len(sink.shown) > switched_at + 5
    assert all(np.array_equal(p, red) for p in sink.shown)
