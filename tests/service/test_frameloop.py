"""The frame loop: sources, sinks (null and the simulated cards' video input), statistics."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from controller import fastpath
from controller.config import loads_screen
from controller.errors import ConfigError
from controller.fastpath.settings import gains_from, power_lut
from controller.service.frameloop import FrameLoop, NullSink, UdpSink, frame_sink, frame_source
from hw.sim.server import VideoInput

SCREEN = """
[screen]
name = "two cabinets"
width = 128
height = 32
[modules.m]
width = 32
height = 16
scan = 8
[[cabinets]]
address = 1
x = 0
y = 0
module = "m"
modules_x = 2
modules_y = 2
chain = "serpentine"
rotation = 0
[[cabinets]]
address = 2
x = 64
y = 0
module = "m"
modules_x = 2
modules_y = 2
chain = "rows"
rotation = 180
"""


@pytest.fixture
def layout():
    return loads_screen(SCREEN)


def pipeline(layout):
    return fastpath.Pipeline(layout, power_lut(2.2), gains_from(1.0), threads=1)


def test_pattern_sources_have_the_screen_size_and_bars_scroll():
    bars = frame_source("pattern:bars", 64, 8)
    a, b = next(bars), next(bars)
    assert a.shape == (8, 64, 3) and a.dtype == np.uint8 and not np.array_equal(a, b)
    red = next(frame_source("pattern:red", 4, 2))
    assert (red == (255, 0, 0)).all()
    with pytest.raises(ConfigError, match="patterns are"):
        next(frame_source("pattern:plaid", 4, 2))


def test_registration_and_region_patterns_for_calibration_from_photos():
    from controller.picture.photocal.photos import registration_lit
    whole = next(frame_source("pattern:registration", 64, 32))
    assert np.array_equal(whole.any(axis=2), registration_lit(64, 32))
    part = next(frame_source("pattern:registration:32,0,32,32", 64, 32))
    assert not part[:, :32].any() and np.array_equal(part[:, 32:].any(axis=2), registration_lit(32, 32))
    green = next(frame_source("pattern:green:0,16,8,16", 64, 32))
    assert (green[16:, :8] == (0, 255, 0)).all() and green.sum() == 255 * 8 * 16
    for spec, words in (("pattern:registration:40,0,32,32", "outside the 64x32 screen"),
                        ("pattern:red:1,2", "a region is X,Y,W,H"),
                        ("pattern:bars:0,0,8,8", "only registration and the solid colours"),
                        ("pattern:registration:0,0,4,4", "too small")):
        with pytest.raises(ConfigError, match=words):
            frame_source(spec, 64, 32)          # at once: a live switch must fail, not a frame


def test_npy_file_and_folder_sources_loop(tmp_path):
    frames = np.random.default_rng(1).integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    np.save(tmp_path / "stack.npy", frames)
    src = frame_source(str(tmp_path / "stack.npy"), 5, 4)
    got = [next(src) for _ in range(4)]
    assert np.array_equal(got[3], frames[0]) and np.array_equal(got[2], frames[2])
    folder = tmp_path / "clips"
    folder.mkdir()
    np.save(folder / "b.npy", frames[1])
    np.save(folder / "a.npy", frames[0])
    src = frame_source(str(folder), 5, 4)
    assert np.array_equal(next(src), frames[0]) and np.array_equal(next(src), frames[1])


def test_bad_sources_and_sinks_are_said_in_words(tmp_path):
    np.save(tmp_path / "small.npy", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ConfigError, match=r"must be uint8\[4\]\[5\]\[3\]"):
        frame_source(str(tmp_path / "small.npy"), 5, 4)
    with pytest.raises(ConfigError, match="no such file"):
        frame_source(str(tmp_path / "missing.npy"), 5, 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no .npy or image"):
        frame_source(str(tmp_path / "empty"), 5, 4)
    with pytest.raises(ConfigError, match="use null or udp"):
        frame_sink("tcp://x:1")
    assert isinstance(frame_sink("null"), NullSink)


def test_loop_runs_at_its_rate_and_feeds_the_cards_video_input(layout):
    video = VideoInput("127.0.0.1", 0)
    sink = UdpSink(*video.address)
    loop = FrameLoop(layout, pipeline(layout), frame_source("pattern:bars", 128, 32), sink, fps=50)

    async def run():
        await loop.start()
        await asyncio.sleep(0.6)
        stats = loop.stats()
        await loop.stop()
        return stats
    stats = asyncio.run(run())
    video.close()
    assert stats["running"] and 20 <= stats["frames"] <= 32
    assert stats["p50_ms"] is not None and stats["p99_ms"] >= stats["p50_ms"]
    assert stats["backend"] == fastpath.backend and stats["resolution"] == "128x32"
    card_bytes = 64 * 32 * 3 * 2          # uint16 per channel
    for address in (1, 2):
        counts = video.cards[address]
        assert counts["frames"] >= stats["frames"] - 2
        assert counts["bytes"] >= (stats["frames"] - 2) * card_bytes


def test_a_failing_pipeline_stops_the_loop_and_says_why(layout):
    class Broken:
        threads = 1

        def process(self, frame):
            raise ValueError("frame: wrong shape")
    loop = FrameLoop(layout, Broken(), frame_source("pattern:red", 128, 32), NullSink(), fps=50)

    async def run():
        await loop.start()
        await asyncio.sleep(0.1)
        stats = loop.stats()
        await loop.stop()
        return stats
    stats = asyncio.run(run())
    assert not stats["running"] and "wrong shape" in stats["error"]
    with pytest.raises(ConfigError, match="--fps"):
        FrameLoop(layout, Broken(), iter(()), NullSink(), fps=0)
