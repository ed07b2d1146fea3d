"""The ``video.output`` self-test against running frame loops with real sinks.

The Colorlight cases use the card emulator and namespace of
``test_video_colorlight``; each case makes the fault it names (a card set up
for another size, a card that never answers, a cable pulled mid-check, a
power cycle) and checks the finding, so none of these can pass by accident.
"""

from __future__ import annotations

import asyncio
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
from test_video_colorlight import WIDE, Emulator, H, W, netns  # noqa: F401 - netns is a fixture

from controller import fastpath
from controller.config import loads_screen
from controller.fastpath.settings import gains_from, power_lut
from controller.report.findings import finding_text
from controller.selftest.checks_video import video_output
from controller.selftest.model import CheckResult
from controller.selftest.profiles import PROFILES
from controller.service.frameloop import FrameLoop, NullSink, frame_source
from controller.video.colorlight import ColorlightSink


@pytest.fixture
def layout():
    return loads_screen(WIDE)


def check(layout, sink, *, window: float = 0.5, during=None) -> tuple[CheckResult, dict]:
    """Run ``video.output`` over a loop playing bars into ``sink``; ``during`` runs mid-window."""
    pipeline = fastpath.Pipeline(layout, power_lut(1.0), gains_from(1.0), threads=1)

    async def run():
        loop = FrameLoop(layout, pipeline, frame_source("pattern:red", W, H), sink, fps=20)
        await loop.start()
        await asyncio.sleep(0.2)
        result = CheckResult()
        try:
            ix = SimpleNamespace(frame_loop=loop, layout=layout, params={"frame_window_s": window})
            tasks = [video_output(ix, result)]
            if during is not None:
                tasks.append(asyncio.to_thread(during))
            await asyncio.gather(*tasks)
            return result, loop.stats()
        finally:
            await loop.stop()
    return asyncio.run(run())


def keys(result: CheckResult) -> list[tuple[str, str]]:
    return [(f.outcome, f.key) for f in result.findings]


def test_in_every_profile_and_said_in_both_languages():
    assert all("video.output" in p.checks for p in PROFILES.values())
    finding = {"key": "video.card_size", "fields": {"sink": "colorlight:eth1", "card_width": 300,
                                                    "card_height": 16, "width": 600, "height": 16}}
    assert finding_text(finding, "en").startswith("The receiving card on colorlight:eth1 is set up "
                                                  "for 300x16, the screen is 600x16")
    assert "300x16" in finding_text(finding, "zh") and "接收卡" in finding_text(finding, "zh")


def test_without_a_frame_loop_there_is_nothing_to_check(layout):
    result = CheckResult()
    ix = SimpleNamespace(frame_loop=None, layout=layout, params={"frame_window_s": 0.1})
    asyncio.run(video_output(ix, result))
    assert keys(result) == [("pass", "video.off")]


def test_a_sink_that_takes_every_frame_passes(layout):
    result, _ = check(layout, NullSink())
    assert keys(result) == [("pass", "video.ok")] and result.values["frames"] >= 5
    assert result.values["latency_p99_ms"] is not None


def test_a_colorlight_card_that_answers_passes_with_its_firmware(netns, layout):
    emulator = netns.run(Emulator, firmware=(13, 4))
    sink = netns.run(ColorlightSink, layout, "clhost")
    try:
        result, _ = check(layout, sink)
    finally:
        emulator.close()
    assert keys(result) == [("pass", "video.ok"), ("pass", "video.card_ok")]
    assert "firmware 13.4" in result.findings[1].text()


def test_a_card_set_up_for_another_size_fails(netns, layout):
    emulator = netns.run(Emulator, announce=(300, 16))
    sink = netns.run(ColorlightSink, layout, "clhost")
    try:
        result, _ = check(layout, sink)
    finally:
        emulator.close()
    assert ("fail", "video.card_size") in keys(result)
    assert result.findings[-1].fields == {"sink": "colorlight:clhost", "card_width": 300,
                                          "card_height": 16, "width": W, "height": H}


def test_a_card_that_never_answers_fails(netns, layout):
    emulator = netns.run(Emulator, silent=True)
    sink = netns.run(ColorlightSink, layout, "clhost")
    try:
        result, _ = check(layout, sink)
    finally:
        emulator.close()
    assert keys(result) == [("pass", "video.ok"), ("fail", "video.card_missing")]


def test_a_power_cycle_during_the_check_warns(netns, layout):
    emulator = netns.run(Emulator)
    sink = netns.run(ColorlightSink, layout, "clhost", rediscover_s=0.0)
    try:
        result, _ = check(layout, sink, window=1.0, during=emulator.power_cycle)
    finally:
        emulator.close()
    assert ("warn", "video.card_restarted") in keys(result)
    assert "restarted during the check" in next(
        f.text() for f in result.findings if f.key == "video.card_restarted")


def test_a_pulled_cable_fails_the_check_and_the_loop_keeps_running(netns, layout):
    """The interface goes down mid-window: send errors are counted, the loop does not stop, and
    the card keeps the last picture it was sent."""
    emulator = netns.run(Emulator)
    sink = netns.run(ColorlightSink, layout, "clhost")

    def pull() -> None:
        import time
        time.sleep(0.1)
        subprocess.run(["ip", "-n", netns.name, "link", "set", "clhost", "down"], check=True)
    try:
        result, stats = check(layout, sink, window=0.8, during=pull)
    finally:
        emulator.close()
    assert ("fail", "video.send_errors") in keys(result) and stats["running"]
    assert stats["error"] is None and stats["sink_stats"]["send_errors"] > 0
    red = np.zeros((H, W, 3), np.uint8)
    red[..., 0] = 255
    assert np.array_equal(emulator.shown[-1], red)
